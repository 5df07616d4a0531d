"""Type commands in-process through the real Dispatcher: accounting, blocking, pub/sub delivery.

No sockets: tests/unit/typeharness.py composes the node's parts the way
node.py does and runs commands as a connection would.
"""
from __future__ import annotations

import hiredis
import pytest

from hypercache.pubsub import PubSub
from hypercache.reply import Push
from hypercache.session import Session

from tests.unit.typeharness import Harness


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_memory_accounting_follows_in_place_changes(h) -> None:
    c = h.session()
    h.call(c, "RPUSH", "l", "a", "bb", "ccc")
    h.call(c, "LPOP", "l")
    h.call(c, "HSET", "h", "f", "v", "g", "w")
    h.call(c, "HINCRBY", "h", "n", "12345")
    h.call(c, "SADD", "s", "1", "2", "x")
    h.call(c, "SPOP", "s")
    h.call(c, "ZADD", "z", "1", "a", "2", "b")
    h.call(c, "ZINCRBY", "z", "5", "a")
    h.call(c, "LSET", "l", "0", "a much longer element")
    h.call(c, "ZUNIONSTORE", "{z}2", "1", "z")
    h.call(c, "LMOVE", "l", "{l}2", "LEFT", "RIGHT")
    assert h.ctx.store.used_memory == h.expected_memory()
    for cmd in (("DEL", "l"), ("HDEL", "h", "f", "g", "n"), ("SREM", "s", "1", "2", "x"),
                ("ZREM", "z", "a", "b"), ("ZPOPMIN", "{z}2", "10"), ("RPOP", "{l}2", "5")):
        h.call(c, *cmd)
    assert h.ctx.store.key_count == 0
    assert h.ctx.store.used_memory == 0


def test_empty_aggregates_delete_their_key(h) -> None:
    c = h.session()
    h.call(c, "RPUSH", "l", "a")
    h.call(c, "HSET", "h", "f", "v")
    h.call(c, "SADD", "s", "m")
    h.call(c, "ZADD", "z", "1", "m")
    h.call(c, "LREM", "l", "0", "a")
    h.call(c, "HDEL", "h", "f")
    h.call(c, "SMOVE", "s", "{s}2", "m")
    h.call(c, "ZREMRANGEBYRANK", "z", "0", "-1")
    assert h.ctx.store.key_count == 1          # only s2
    assert h.call(c, "SMEMBERS", "{s}2") == [b"m"]


def test_wrongtype_everywhere(h) -> None:
    c = h.session()
    h.call(c, "SET", "str", "x")
    for cmd in (("HGET", "str", "f"), ("LPUSH", "str", "a"), ("SADD", "str", "a"), ("ZADD", "str", "1", "a"),
                ("LRANGE", "str", "0", "-1"), ("SINTER", "str"), ("ZUNION", "1", "str"),
                ("HRANDFIELD", "str"), ("ZSCORE", "str", "a"), ("LMOVE", "str", "{str}x", "LEFT", "LEFT")):
        reply = h.call(c, *cmd)
        assert isinstance(reply, hiredis.ReplyError), cmd
        assert str(reply) == "WRONGTYPE Operation against a key holding the wrong kind of value"


def test_blocked_clients_are_served_in_arrival_order_and_time_out(h) -> None:
    a, b, c, writer = h.session(), h.session(), h.session(3), h.session()
    assert h.raw(a, "BLPOP", "q", "0") == b""          # blocked: no reply yet
    assert h.raw(b, "BRPOP", "q", "0") == b""
    assert h.raw(c, "BLPOP", "q", "1") == b""
    assert h.ctx.blocking.blocked_clients == 3
    assert h.call(writer, "RPUSH", "q", "1", "2") == 2
    assert h.pending(a) == b"*2\r\n$1\r\nq\r\n$1\r\n1\r\n"
    assert h.pending(b) == b"*2\r\n$1\r\nq\r\n$1\r\n2\r\n"
    assert h.pending(c) == b""
    h.time_out(c)
    assert h.pending(c) == b"_\r\n"                  # RESP3 null for a timed-out BLPOP
    assert h.ctx.blocking.blocked_clients == 0
    assert h.ctx.store.key_count == 0


def test_blocked_pop_keeps_waiting_through_a_wrong_type(h) -> None:
    a, writer = h.session(), h.session()
    h.raw(a, "BZPOPMIN", "z", "0")
    h.call(writer, "SET", "z", "string")
    assert h.pending(a) == b""
    h.call(writer, "DEL", "z")
    h.call(writer, "ZADD", "z", "2.5", "m")
    assert h.pending(a) == b"*3\r\n$1\r\nz\r\n$1\r\nm\r\n$3\r\n2.5\r\n"


def test_blmove_to_a_wrong_type_destination_answers_the_error(h) -> None:
    a, writer = h.session(), h.session()
    h.raw(a, "BLMOVE", "{x}src", "{x}dst", "LEFT", "LEFT", "0")
    h.call(writer, "SET", "{x}dst", "string")
    h.call(writer, "RPUSH", "{x}src", "v")
    assert h.pending(a).startswith(b"-WRONGTYPE")
    assert h.call(writer, "LRANGE", "{x}src", "0", "-1") == [b"v"]


def test_a_key_written_many_times_in_one_command_is_retried_once(h) -> None:
    # One MSET naming the waited key 100k times used to queue it 100k times,
    # and serving that queue (list.pop(0), a retry each) stalled the hub.
    a, writer = h.session(), h.session()
    h.raw(a, "BLPOP", "k", "0")
    retries = []
    waiter = next(iter(h.ctx.blocking.by_key[b"k"].values()))
    retry = waiter.suspend.retry
    waiter.suspend.retry = lambda key: retries.append(key) or retry(key)
    h.call(writer, "MSET", *["k", "v"] * 100_000)
    assert retries == [b"k"]
    assert h.call(writer, "DEL", "k") == 1 and h.call(writer, "RPUSH", "k", "x") == 1
    assert h.pending(a) == b"*2\r\n$1\r\nk\r\n$1\r\nx\r\n"


def test_a_disconnected_waiter_is_forgotten(h) -> None:
    a, writer = h.session(), h.session()
    h.raw(a, "BLPOP", "q", "0")
    h.disconnect(a)
    assert h.ctx.blocking.blocked_clients == 0
    h.call(writer, "RPUSH", "q", "kept")
    assert h.call(writer, "LLEN", "q") == 1


def test_subscribe_confirmations_come_in_order_on_one_batch(h) -> None:
    s = h.session()
    assert h.raw(s, "SUBSCRIBE", "a", "b") == (b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
                                                 b"*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n")
    assert s.in_pubsub
    assert h.raw(s, "UNSUBSCRIBE") != b""
    assert not s.in_pubsub


def test_publish_reaches_channels_then_patterns_and_calls_the_mesh_hook(h) -> None:
    s1, s2, pub = h.session(3), h.session(), h.session()
    h.raw(s1, "SUBSCRIBE", "news")
    h.raw(s2, "PSUBSCRIBE", "n*")
    sent = []
    h.ctx.pubsub.on_publish = lambda channel, message: sent.append((channel, message))
    assert h.call(pub, "PUBLISH", "news", "hi") == 2
    assert h.pending(s1) == b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
    assert h.pending(s2) == b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
    assert sent == [(b"news", b"hi")]
    # a message from a peer is delivered here and not sent back to the mesh
    assert h.ctx.pubsub.deliver_local(b"news", b"from-peer") == 2
    assert sent == [(b"news", b"hi")]


def test_hub_forget_drops_every_subscription() -> None:
    delivered = []
    hub = PubSub(lambda session, value: delivered.append((session.id, value)))
    s = Session(id=1)
    hub.subscribe(s, b"a")
    hub.psubscribe(s, b"a*")
    hub.ssubscribe(s, b"{x}a")
    assert s.in_pubsub and s.subscriptions == 3
    assert hub.publish(b"a", b"m") == 2
    assert hub.spublish(b"{x}a", b"m") == 1
    assert delivered[-1] == (1, Push([b"smessage", b"{x}a", b"m"]))
    hub.forget(s)
    assert not s.in_pubsub and s.subscriptions == 0
    assert hub.channels == {} and hub.patterns == {} and hub.shard_channels == {}
    assert hub.publish(b"a", b"m") == 0


def test_movable_key_commands_route_by_all_their_keys(h) -> None:
    c = h.session()
    crossslot = "CROSSSLOT Keys in request don't hash to the same slot"
    assert str(h.call(c, "ZUNIONSTORE", "dst", "2", "a", "b")) == crossslot
    assert str(h.call(c, "LMPOP", "2", "a", "b", "LEFT")) == crossslot
    assert h.call(c, "LMPOP", "2", "{t}a", "{t}b", "LEFT") is None
    assert str(h.call(c, "SINTERCARD", "0", "a")) == "ERR numkeys should be greater than 0"
