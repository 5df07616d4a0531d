"""Pub/sub across a real 3-node cluster: PUBLISH reaches every node's subscribers; SPUBLISH follows the slot."""
from __future__ import annotations

import hiredis
import pytest

from tests.nodes import NodeProcess, call, request, wait_until


def test_publish_on_one_node_reaches_subscribers_on_every_node(shared_three):
    clients = [n.client(protocol=2) for n in shared_three]
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


def test_spublish_is_routed_by_the_channel_slot(shared_three):
    owner, other = _owner_of(shared_three, "orders")
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


@pytest.mark.alone     # runs alone (Makefile): the peers' link must carry again within 3 s
def test_a_publish_too_big_for_the_mesh_stays_local_and_the_mesh_keeps_carrying(shared_three):
    """Over the mesh's message limit a PUBLISH reaches this node's subscribers only.

    Sent anyway, it made every peer drop its link to the publisher (zmq's
    MAXMSGSIZE), and nothing it published reached them for seconds.
    """
    publisher, listener = shared_three[0].client(protocol=2), shared_three[1].client(protocol=2)
    local = publisher.pubsub()
    remote = listener.pubsub()
    try:
        for sub in (local, remote):
            sub.subscribe("big")
            wait_until(lambda s=sub: s.get_message(timeout=0.1), timeout=5, message="no subscribe reply")
        wait_until(lambda: publisher.publish("big", "warm-up") and
                   remote.get_message(ignore_subscribe_messages=True, timeout=0.2),
                   timeout=15, message="the mesh never carried the warm-up PUBLISH")
        huge = b"x" * (2 << 20)
        assert publisher.publish("big", huge) == 1          # this node's subscriber
        message = wait_until(lambda: local.get_message(ignore_subscribe_messages=True, timeout=0.2),
                             timeout=5, message="the local subscriber never got the big message")
        while message["data"] != huge:                      # warm-up copies may still be queued
            message = wait_until(lambda: local.get_message(ignore_subscribe_messages=True, timeout=0.2),
                                 timeout=5, message="the local subscriber never got the big message")
        publisher.publish("big", "after")
        seen = []

        def after_arrived() -> bool:
            message = remote.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is not None:
                seen.append(message["data"])
            return b"after" in seen
        # the peer's link was not dropped: the next message arrives without a reconnect
        wait_until(after_arrived, timeout=3, message="the peer stopped hearing the publisher")
        assert huge not in seen
        stats = publisher.execute_command("CLUSTER", "INFO")
        assert b"cluster_state:ok" in stats
    finally:
        for sub in (local, remote):
            sub.close()
        publisher.close()
        listener.close()
