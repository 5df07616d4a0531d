"""Pub/sub across a real 3-node cluster: PUBLISH reaches every node's subscribers; SPUBLISH follows the slot."""
from __future__ import annotations

import hiredis

from tests.nodes import NodeProcess, call, request, wait_until


def test_publish_on_one_node_reaches_subscribers_on_every_node(three):
    clients = [n.client(protocol=2) for n in three]
    subscribers = [c.pubsub() for c in clients]
    try:
        for sub in subscribers:
            sub.subscribe("news")
            wait_until(lambda s=sub: s.get_message(timeout=0.1), timeout=5, message="no subscribe reply")
        # the mesh carries PUBLISH to the other nodes: poll until every subscriber got one
        # (the first publishes may race the peers' SUB connections being ready)
        received: list[list[bytes]] = [[] for _ in subscribers]

        def everyone_heard() -> bool:
            clients[0].publish("news", "hello")
            for box, sub in zip(received, subscribers):
                message = sub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if message is not None:
                    box.append(message["data"])
            return all(received)

        wait_until(everyone_heard, timeout=15, message="a node's subscriber never got the PUBLISH")
        assert all(set(box) == {b"hello"} for box in received)
        # the reply counts this node's receivers only, as Redis Cluster does
        assert clients[1].publish("news", "again") == 1
    finally:
        for sub in subscribers:
            sub.close()
        for c in clients:
            c.close()


def _owner_of(nodes: list[NodeProcess], key: str) -> tuple[NodeProcess, NodeProcess]:
    """(primary of key's slot by CLUSTER SLOTS, some other node)."""
    slot = int(call(nodes[0], "CLUSTER", "KEYSLOT", key))
    for first, last, primary, *_replicas in call(nodes[0], "CLUSTER", "SLOTS"):
        if first <= slot <= last:
            owner = next(n for n in nodes if n.port == primary[1])
            return owner, next(n for n in nodes if n is not owner)
    raise AssertionError(f"no node owns slot {slot}")


def test_spublish_is_routed_by_the_channel_slot(three):
    owner, other = _owner_of(three, "orders")
    slot = int(call(owner, "CLUSTER", "KEYSLOT", "orders"))
    redirect = request(other, "SPUBLISH", "orders", "x")
    assert isinstance(redirect, hiredis.ReplyError)
    assert str(redirect) == f"MOVED {slot} 127.0.0.1:{owner.port}"
    with owner.client(protocol=2) as r:
        sub = r.pubsub()
        sub.ssubscribe("orders")
        wait_until(lambda: sub.get_sharded_message(timeout=0.1), timeout=5, message="no ssubscribe reply")
        assert r.execute_command("SPUBLISH", "orders", "paid") == 1
        message = wait_until(lambda: sub.get_sharded_message(ignore_subscribe_messages=True, timeout=0.1),
                             timeout=5, message="no smessage")
        assert message["type"] == "smessage" and message["data"] == b"paid"
        sub.close()
