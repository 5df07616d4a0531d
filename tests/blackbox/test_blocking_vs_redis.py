"""Clients blocked on lists and sorted sets, woken by a pipeline, against a real redis-server.

Redis 7.0 serves the clients blocked on a key in the order they blocked,
right after the command that made the key ready, and serves each from that
key (not from the first of its keys that holds something by then). Chains
follow: a BLMOVE served from one key makes its destination ready for the
next waiters. Each case blocks the same clients on both servers, one after
the other, sends the same pipeline, and compares what every client got and
what the keys hold afterwards.
"""
from __future__ import annotations

import random

import pytest

from tests.blackbox.test_pipelines_vs_redis import comparable, replies
from tests.nodes import encode_command, raw_connect, wait_until

LISTS = [b"{bw}0", b"{bw}1", b"{bw}2"]
ZSETS = [b"{bw}z0", b"{bw}z1", b"{bw}z2"]
# Whatever a case leaves blocked is served by these, so no client waits for its timeout.
RELEASE = [[b"RPUSH", key, b"end1", b"end2"] for key in LISTS] + [[b"ZADD", key, b"5", b"end"] for key in ZSETS]


def _run(server, blockers: list[list[bytes]], pipeline: list[list[bytes]]):
    with server.client(protocol=2) as r:
        r.flushall()
        blocked = []
        for command in blockers:
            sock = raw_connect(server.port)
            sock.sendall(encode_command(*command))
            blocked.append(sock)
            wait_until(lambda: sum("b" in c["flags"] for c in r.client_list()) == len(blocked),
                       message=f"{command!r} to block")
        client = raw_connect(server.port)
        client.sendall(b"".join(encode_command(*command) for command in pipeline + RELEASE))
        answers = list(map(comparable, replies(client, len(pipeline) + len(RELEASE))))
        woken = [comparable(replies(sock, 1)[0]) for sock in blocked]
        state = [r.lrange(key, 0, -1) for key in LISTS] + [r.zrange(key, 0, -1, withscores=True) for key in ZSETS]
        for sock in blocked + [client]:
            sock.close()
    return answers, woken, state


def test_a_waiter_is_served_from_the_key_that_woke_it(node, redis_server):
    """Found by the random cases below: BRPOP on (1, 2) woken by key 2 pops key 2, though
    a BLMOVE served just before it pushed onto key 1."""
    blockers = [[b"BLMOVE", LISTS[2], LISTS[1], b"LEFT", b"RIGHT", b"2"],
                [b"BRPOP", LISTS[1], LISTS[2], b"2"],
                [b"BLPOP", LISTS[2], LISTS[1], b"2"]]
    pipeline = [[b"LPUSH", LISTS[2], b"v1", b"v65"]]
    ours, theirs = _run(node, blockers, pipeline), _run(redis_server, blockers, pipeline)
    assert ours == theirs
    assert theirs[1] == [b"v65", [LISTS[2], b"v1"], [LISTS[1], b"v65"]]


def _blocker(rng: random.Random) -> list[bytes]:
    lists = rng.sample(LISTS, rng.randint(1, 2))
    zsets = [ZSETS[LISTS.index(key)] for key in lists]
    return rng.choice([
        [b"BLPOP", *lists, b"2"], [b"BRPOP", *lists, b"2"],
        [b"BLMOVE", lists[0], rng.choice(LISTS), b"LEFT", b"RIGHT", b"2"],
        [b"BLMPOP", b"2", b"%d" % len(lists), *lists, b"LEFT", b"COUNT", b"2"],
        [b"BZPOPMIN", *zsets, b"2"], [b"BZMPOP", b"2", b"%d" % len(zsets), *zsets, b"MAX", b"COUNT", b"2"],
    ])


def _command(rng: random.Random) -> list[bytes]:
    key = rng.choice(LISTS)
    return rng.choice([
        [b"LPUSH", key, *(b"v%d" % rng.randrange(100) for _ in range(rng.randint(1, 3)))],
        [b"RPUSH", key, b"w%d" % rng.randrange(100)], [b"LPOP", key], [b"LRANGE", key, b"0", b"-1"],
        [b"DEL", key], [b"LMOVE", key, rng.choice(LISTS), b"RIGHT", b"LEFT"],
        [b"ZADD", ZSETS[LISTS.index(key)], b"%d" % rng.randrange(9), b"m%d" % rng.randrange(9)],
    ])


@pytest.mark.parametrize("seed", range(12))
def test_random_waiters_are_served_as_redis_serves_them(node, redis_server, seed):
    rng = random.Random(seed)
    blockers = [_blocker(rng) for _ in range(rng.randint(1, 3))]
    pipeline = [_command(rng) for _ in range(rng.randint(1, 15))]
    assert _run(node, blockers, pipeline) == _run(redis_server, blockers, pipeline)
