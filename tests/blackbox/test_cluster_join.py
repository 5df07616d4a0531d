"""A node started with --join is no cluster of its own: it refuses writes until it holds the cluster's map.

Seen only through the protocol, on real processes. The seed's mesh port is
reserved first and the seed started later, so "still joining" lasts exactly as
long as the test wants, with no timing guesswork.

Decision (documented in mesh/bus.py `_has_cluster_map`): while joining, keyed
writes get `-CLUSTERDOWN The cluster is down` and CLUSTER INFO says
`cluster_state:fail`, as Redis answers when its cluster state is not ok.
Reads are still served from the (empty) local keyspace, as they are in
hypercache's minority partition. (A bare Redis node that is in no cluster yet
answers reads and writes alike with `-CLUSTERDOWN Hash slot not served`,
because it owns no slot; hypercache's joining node still holds its one-member
map until it adopts the cluster's.)
"""
from __future__ import annotations

import hiredis
from tests.nodes import MESH_OFFSET, NodeProcess, encode_command, node_ports, replication_info, request, wait_until

TIMEOUT = ("--node-timeout-ms", "1500")


def raw_reply(node: NodeProcess, *args) -> bytes:
    """The reply bytes exactly as the node wrote them (one short reply)."""
    with node.raw() as sock:
        sock.sendall(encode_command(*args))
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
    return data


def cluster_info(node: NodeProcess) -> dict[str, str]:
    text = request(node, "CLUSTER", "INFO").decode()
    return dict(line.split(":", 1) for line in text.strip().splitlines())


def test_joining_node_refuses_writes_until_it_adopts_the_map(node_factory):
    seed_port, seed_mesh_port = node_ports()          # reserved; nobody listens there yet
    joiner = node_factory.start(*TIMEOUT, join=f"127.0.0.1:{seed_mesh_port}", name="joiner")

    assert raw_reply(joiner, "SET", "foo", "bar") == b"-CLUSTERDOWN The cluster is down\r\n"
    for write in (("INCR", "counter"), ("DEL", "foo"), ("LPUSH", "list", "x"), ("MSET", "a", "1")):
        assert raw_reply(joiner, *write) == b"-CLUSTERDOWN The cluster is down\r\n", write
    assert cluster_info(joiner)["cluster_state"] == "fail"
    # Keyless commands still answer; reads too say the cluster is down (it holds no data yet).
    assert raw_reply(joiner, "PING") == b"+PONG\r\n"
    assert raw_reply(joiner, "GET", "foo") == b"-CLUSTERDOWN The cluster is down\r\n"
    assert request(joiner, "DBSIZE") == 0

    seed = node_factory.start(*TIMEOUT, port=seed_port, name="seed")
    assert seed.mesh_port == seed_mesh_port == seed_port + MESH_OFFSET

    def joined() -> bool:
        infos = [cluster_info(n) for n in (seed, joiner)]
        return (all(i["cluster_state"] == "ok" and i["cluster_size"] == "2" for i in infos)
                and infos[0]["cluster_current_epoch"] == infos[1]["cluster_current_epoch"]
                and replication_info(joiner)["hypercache_slots_loading"] == "0")
    wait_until(joined, timeout=20, message=node_factory.logs)

    # Now it writes the slots it owns and redirects the others, like any member.
    replies = [request(joiner, "SET", f"key:{i}", "v") for i in range(40)]
    assert b"OK" in replies
    moved = [r for r in replies if isinstance(r, hiredis.ReplyError)]
    assert moved and all(str(r).startswith("MOVED ") for r in moved)


def test_cluster_meet_also_waits_for_the_map(node_factory):
    first = node_factory.start(*TIMEOUT, name="first")
    second = node_factory.start(*TIMEOUT, name="second")
    assert raw_reply(second, "SET", "foo", "bar") == b"+OK\r\n"     # a lone node is a one-node cluster
    with second.client(protocol=2) as r:
        r.execute_command("CLUSTER MEET", "127.0.0.1", first.port, first.mesh_port)

    def members_everywhere() -> bool:
        return all(cluster_info(n)["cluster_size"] == "2" and cluster_info(n)["cluster_state"] == "ok"
                   for n in (first, second))
    wait_until(members_everywhere, timeout=20, message=node_factory.logs)
    # Accepting writes again: each key is written here or redirected, never CLUSTERDOWN.
    replies = [request(second, "SET", f"k{i}", "v") for i in range(20)]
    assert all(r == b"OK" or str(r).startswith("MOVED ") for r in replies), replies

