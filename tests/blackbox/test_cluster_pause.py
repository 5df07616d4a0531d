"""A node paused (SIGSTOP) past node_timeout, as a partitioned minority would be, seen through the protocol."""
from __future__ import annotations

from tests.nodes import agreed, encode_command, nodes_lines, read_reply, wait_until


def _key_owned_by(node, node_id: str) -> bytes:
    with node.client(protocol=2) as r:
        for i in range(10_000):
            key = f"paused:{i}".encode()
            slot = r.execute_command("CLUSTER KEYSLOT", key)
            for first, last, primary, *_ in r.execute_command("CLUSTER SLOTS"):
                if first <= slot <= last and primary[2].decode() == node_id:
                    return key
    raise AssertionError("no key found")


def test_a_write_sent_to_a_paused_node_is_refused_when_it_wakes(three, node_factory):
    # DESIGN: a node that cannot hear a majority for node_timeout stops accepting writes.
    # A write that waited in the socket while the node was stopped must not be acknowledged
    # on wake-up: the others have moved its slots meanwhile.
    agreed(three, 3)
    paused, survivors = three[2], three[:2]
    paused_id = next(line[0] for line in nodes_lines(paused) if "myself" in line[2])
    key = _key_owned_by(paused, paused_id)
    sock = paused.raw(timeout=30)
    paused.pause()
    try:
        sock.sendall(encode_command("SET", key, "written-while-partitioned"))
        wait_until(lambda: agreed(survivors, 2), timeout=20, message=node_factory.logs)
    finally:
        paused.resume()
    reply = read_reply(sock, timeout=30)
    sock.close()
    assert isinstance(reply, Exception) and str(reply).split()[0] in ("CLUSTERDOWN", "MOVED"), reply
