"""Pub/sub on a real node: confirmations, message order, patterns, shard channels, RESP2/RESP3.

Raw replies are compared with a real redis-server where the bytes are
deterministic; redis-py checks the rest. Every wait polls with a deadline.
"""
from __future__ import annotations

import hiredis
import pytest
import redis

from tests.nodes import encode_command, read_raw_reply, wait_until


class RawClient:
    """A raw connection that reads whole replies (pushes included) one at a time."""

    def __init__(self, server, protocol: int = 2) -> None:
        self.sock = server.raw()
        self.reader = hiredis.Reader()
        self.buffer = b""
        if protocol == 3:
            self.send("HELLO", "3")
            self.read()

    def send(self, *args) -> None:
        self.sock.sendall(encode_command(*args))

    def read(self) -> bytes:
        """The raw bytes of the next reply."""
        while True:
            if self.buffer:
                # find the shortest prefix holding one whole reply
                for end in range(1, len(self.buffer) + 1):
                    probe = hiredis.Reader()
                    probe.feed(self.buffer[:end])
                    if probe.gets() is not False:
                        reply, self.buffer = self.buffer[:end], self.buffer[end:]
                        return reply
            data = self.sock.recv(65536)
            assert data, "connection closed"
            self.buffer += data

    def close(self) -> None:
        self.sock.close()


def numsub(r, channel: str) -> int:
    return dict(r.pubsub_numsub(channel)).get(channel.encode(), 0)


def transcript(server, protocol: int) -> list[bytes]:
    """One subscriber's view of a fixed session, raw."""
    sub = RawClient(server, protocol)
    pub = server.client(protocol=2)
    out = []
    sub.send("SUBSCRIBE", "news", "sport", "news")
    out += [sub.read() for _ in range(3)]
    sub.send("PSUBSCRIBE", "n*", "s?ort")
    out += [sub.read() for _ in range(2)]
    sub.send("SSUBSCRIBE", "{s}one", "{s}two")
    out += [sub.read() for _ in range(2)]
    wait_until(lambda: numsub(pub, "news") == 1)
    assert pub.publish("news", "first") == 2
    assert pub.publish("sport", "second") == 2
    assert pub.publish("nothing", "third") == 1
    assert pub.publish("elsewhere", "lost") == 0
    assert pub.execute_command("SPUBLISH", "{s}one", "sharded") == 1
    out += [sub.read() for _ in range(6)]
    sub.send("GET", "k")            # refused in RESP2 subscribed mode, served in RESP3
    out.append(sub.read())
    sub.send("PING")
    out.append(sub.read())
    sub.send("PING", "hello")
    out.append(sub.read())
    sub.send("UNSUBSCRIBE", "sport", "nope")
    out += [sub.read() for _ in range(2)]
    sub.send("PUNSUBSCRIBE", "n*")
    out.append(sub.read())
    sub.send("SUNSUBSCRIBE", "{s}two")
    out.append(sub.read())
    sub.send("SUNSUBSCRIBE", "{s}one")
    out.append(sub.read())
    sub.send("SUNSUBSCRIBE")
    out.append(sub.read())
    sub.send("PUNSUBSCRIBE")
    out.append(sub.read())
    sub.send("UNSUBSCRIBE")
    out.append(sub.read())
    sub.send("UNSUBSCRIBE")
    out.append(sub.read())
    sub.send("PING")                 # out of subscribed mode: a plain PONG again
    out.append(sub.read())
    sub.close()
    pub.close()
    return out


@pytest.mark.parametrize("protocol", [2, 3])
def test_subscriber_transcript_matches_redis(node, redis_server, protocol) -> None:
    expected = transcript(redis_server, protocol)
    got = transcript(node, protocol)
    diffs = [f"#{i}: redis-server {a!r} hypercache {b!r}" for i, (a, b) in enumerate(zip(expected, got))
             if a != b]
    assert not diffs and len(expected) == len(got), "\n".join(diffs)


def test_pubsub_introspection_matches_redis(node, redis_server) -> None:
    def run(server):
        subs = [RawClient(server) for _ in range(3)]
        subs[0].send("SUBSCRIBE", "a", "b")
        subs[1].send("SUBSCRIBE", "a")
        subs[2].send("PSUBSCRIBE", "x*", "y*")
        subs[2].send("SSUBSCRIBE", "{s}c")
        for sub, n in zip(subs, (2, 1, 3)):
            for _ in range(n):
                sub.read()
        r = server.client(protocol=2)
        wait_until(lambda: r.execute_command("PUBSUB", "SHARDNUMSUB", "{s}c")[1] == 1)
        answers = [
            sorted(r.execute_command("PUBSUB", "CHANNELS")),
            r.execute_command("PUBSUB", "CHANNELS", "a*"),
            r.execute_command("PUBSUB", "NUMSUB", "a", "b", "zz"),
            r.execute_command("PUBSUB", "NUMSUB"),
            r.execute_command("PUBSUB", "NUMPAT"),
            r.execute_command("PUBSUB", "SHARDCHANNELS"),
            r.execute_command("PUBSUB", "SHARDNUMSUB", "{s}c", "{s}d"),
        ]
        for sub in subs:
            sub.close()
        wait_until(lambda: r.execute_command("PUBSUB", "NUMPAT") == 0
                   and not r.execute_command("PUBSUB", "CHANNELS"),
                   message="subscriptions of closed connections to go")
        r.close()
        return answers

    assert run(node) == run(redis_server)


def test_messages_arrive_in_publish_order(node, r) -> None:
    client = node.client()
    p = client.pubsub()
    p.subscribe("seq")
    assert p.get_message(timeout=5)["type"] == "subscribe"
    for i in range(500):
        r.publish("seq", str(i))
    got = []
    while len(got) < 500:
        message = p.get_message(timeout=5)
        assert message is not None, f"only {len(got)} messages arrived"
        got.append(int(message["data"]))
    assert got == list(range(500))
    p.close()
    client.close()


def test_reset_leaves_subscribed_mode(node) -> None:
    sub = RawClient(node)
    sub.send("SUBSCRIBE", "a")
    sub.read()
    sub.send("RESET")
    assert sub.read() == b"+RESET\r\n"
    sub.send("GET", "k")
    assert sub.read() == b"$-1\r\n"
    r = node.client()
    assert numsub(r, "a") == 0
    sub.close()
    r.close()


def test_ssubscribe_across_slots_is_refused(r) -> None:
    with pytest.raises(redis.ResponseError, match="same slot"):     # -CROSSSLOT
        r.execute_command("SSUBSCRIBE", "a", "b")


EXEC_SCRIPTS = {
    # two confirmations for one queued command: both inside EXEC's array of 2
    "subscribe-two": [("MULTI",), ("SUBSCRIBE", "a", "b"), ("PING",), ("EXEC",)],
    # a message the client publishes to itself comes right before PUBLISH's reply
    "publish-to-self": [("SUBSCRIBE", "c"), ("MULTI",), ("PUBLISH", "c", "hi"), ("PING",), ("EXEC",)],
    "subscribe-publish-unsubscribe": [("MULTI",), ("SUBSCRIBE", "c"), ("PUBLISH", "c", "hi"),
                                      ("UNSUBSCRIBE",), ("EXEC",)],
}


def _raw_exchange(server, protocol: int, script) -> bytes:
    """Everything the server answers to `script`, up to a final PING's sentinel."""
    sock = server.raw()
    try:
        if protocol == 3:
            sock.sendall(encode_command("HELLO", "3"))
            read_raw_reply(sock)
        sock.sendall(b"".join(encode_command(*command) for command in script)
                     + encode_command("PING", "sentinel"))
        raw = b""
        while not raw.endswith(b"sentinel\r\n"):
            data = sock.recv(65536)
            assert data, f"connection closed after {raw!r}"
            raw += data
        return raw
    finally:
        sock.close()


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("script", sorted(EXEC_SCRIPTS))
def test_pushes_to_self_inside_exec_land_inside_its_reply_as_redis(node, redis_server, protocol, script):
    commands = EXEC_SCRIPTS[script]
    assert _raw_exchange(node, protocol, commands) == _raw_exchange(redis_server, protocol, commands)
