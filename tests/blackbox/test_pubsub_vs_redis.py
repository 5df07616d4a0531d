"""Random subscriptions and publishes, against a real redis-server.

A subscriber pipelines random SUBSCRIBE / PSUBSCRIBE / UNSUBSCRIBE /
PUNSUBSCRIBE / PING (glob patterns with classes, escapes and non-ASCII
channels); a publisher then publishes to random channels. Everything the
subscriber receives in a round, and the publisher's receiver counts, must be
what Redis gives. Within a round the subscriber's items are compared as a
collection: with several matching patterns, Redis sends the pmessages in its
hashtable's order.
"""
from __future__ import annotations

import random

import hiredis
import pytest

from tests.blackbox.test_pipelines_vs_redis import comparable, replies
from tests.nodes import encode_command, raw_connect

CHANNELS = [b"news", b"news.tech", b"n", b"x[y]", b"a*b", b"\xff"]
PATTERNS = [b"news*", b"n?ws.*", b"*", b"x\\[y\\]", b"a\\*b", b"n[ae]ws", b"[^n]*"]


def _subscriber_command(rng: random.Random) -> list[bytes]:
    return rng.choice([
        [b"SUBSCRIBE", *rng.sample(CHANNELS, rng.randint(1, 3))],
        [b"PSUBSCRIBE", *rng.sample(PATTERNS, rng.randint(1, 3))],
        [b"UNSUBSCRIBE", *rng.sample(CHANNELS, rng.randint(0, 2))],
        [b"PUNSUBSCRIBE", *rng.sample(PATTERNS, rng.randint(0, 2))],
        [b"PING"], [b"PING", b"hi"],
    ])


def _item(reply) -> str:
    reply = comparable(reply)
    if isinstance(reply, list) and reply and reply[0] in (b"unsubscribe", b"punsubscribe"):
        reply = reply[:2]       # dropping them all, Redis goes in its hashtable's order: the counts follow it
    return repr(reply)


def _run(port: int, protocol: int, script) -> list:
    subscriber, publisher = raw_connect(port), raw_connect(port)
    reader = hiredis.Reader()
    if protocol == 3:
        subscriber.sendall(encode_command("HELLO", "3"))
        replies(subscriber, 1, reader)
    seen = []
    for number, (commands, publishes) in enumerate(script):
        sync = b"sync%d" % number
        # the marker channel is subscribed again each round: UNSUBSCRIBE alone drops it too
        subscriber.sendall(b"".join(encode_command(*c) for c in commands)
                           + encode_command("SUBSCRIBE", "marker") + encode_command("PING", sync))
        items = []
        while not items or items[-1] not in (repr([b"pong", sync]), repr(sync)):
            items.append(_item(replies(subscriber, 1, reader)[0]))
        end = b"end%d" % number
        publisher.sendall(b"".join(encode_command(*p) for p in publishes) + encode_command("PUBLISH", "marker", end))
        counts = replies(publisher, len(publishes) + 1)
        while items[-1] != repr([b"message", b"marker", end]):
            items.append(_item(replies(subscriber, 1, reader)[0]))
        seen.append((sorted(items), counts))
    subscriber.close()
    publisher.close()
    return seen


@pytest.mark.parametrize("seed", range(8))
def test_random_subscriptions_receive_what_redis_sends(node, redis_server, seed):
    rng = random.Random(seed)
    script = [([_subscriber_command(rng) for _ in range(rng.randint(1, 4))],
               [[b"PUBLISH", rng.choice(CHANNELS), b"m%d" % rng.randrange(100)] for _ in range(rng.randint(1, 5))])
              for _ in range(12)]
    protocol = 2 + seed % 2
    assert _run(node.port, protocol, script) == _run(redis_server.port, protocol, script)
