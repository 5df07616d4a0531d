"""A client blocked on a key whose slot moves to another node gets -MOVED, as in Redis Cluster."""
from __future__ import annotations

import hiredis

from tests.nodes import CLUSTER_TIMEOUT, agreed, call, encode_command, raw_connect, read_reply, wait_until


def _primary_ports(node) -> dict[int, int]:
    """slot -> RESP port of its primary, from CLUSTER SLOTS."""
    owners = {}
    for first, last, primary, *_ in call(node, "CLUSTER", "SLOTS"):
        for slot in range(first, last + 1):
            owners[slot] = primary[1]
    return owners


def test_blocked_clients_whose_slot_moves_are_redirected_and_the_rest_keep_waiting(three, node_factory):
    a = three[0]
    owners = _primary_ports(a)
    keys = []
    for i in range(2000):
        key = f"queue:{i}"
        if owners[int(call(a, "CLUSTER", "KEYSLOT", key))] == a.port:
            keys.append(key)
        if len(keys) == 40:
            break
    waiting = {}
    for key in keys:
        sock = raw_connect(a.port, timeout=30)
        sock.sendall(encode_command("BLPOP", key, "0"))
        waiting[key] = sock
    wait_until(lambda: call(a, "INFO", "clients").decode().count("blocked_clients:40") == 1,
               timeout=10, message="40 clients blocked")

    d = node_factory.start(*CLUSTER_TIMEOUT, join=a)
    wait_until(lambda: agreed(three + [d], 4), timeout=30, message=node_factory.logs)
    after = _primary_ports(a)
    moved = [k for k in keys if after[int(call(a, "CLUSTER", "KEYSLOT", k))] == d.port]
    stayed = [k for k in keys if k not in moved]
    assert moved and stayed, "the join should move some of the 40 slots and keep others"
    for key in moved:
        reply = read_reply(waiting[key], timeout=10)
        slot = int(call(a, "CLUSTER", "KEYSLOT", key))
        assert isinstance(reply, hiredis.ReplyError) and str(reply) == f"MOVED {slot} 127.0.0.1:{d.port}"
    for key in stayed:                     # still here: served by a push, as before
        assert call(a, "LPUSH", key, "job") == 1     # the length after the push, as Redis
        assert read_reply(waiting[key], timeout=10) == [key.encode(), b"job"]
    for sock in waiting.values():
        sock.close()
