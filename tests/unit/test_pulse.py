"""Long commands beat from inside (hypercache/pulse.py): every loop over a big command's elements does.

In-process (tests/unit/typeharness.py: the real dispatcher, store and reply
encoder) with a beat that counts its calls: a command that walks N elements,
or builds a reply of N, must call it about N / EVERY times, so that a node
busy with it for seconds still sends its heartbeats (the black-box proof, a
member never suspected during one, is
tests/blackbox/test_hostile_load.py::test_legal_huge_commands_keep_their_node_alive).
Counting calls instead of timing gaps keeps this exact on a loaded machine.
"""
from __future__ import annotations

import random

import pytest

from hypercache import pulse
from tests.unit.typeharness import Harness

N = 5 * pulse.EVERY
ENOUGH = N // pulse.EVERY - 1        # a loop over N elements beats at least this often


@pytest.fixture(scope="module")
def harness():
    """One node's keyspace with big values of every kind under one hash tag (filled once: ~1 s)."""
    h = Harness()
    s = h.session()
    members = [b"m%d" % i for i in range(N)]
    assert h.call(s, "SADD", "{t}a", *members) == N
    assert h.call(s, "SADD", "{t}b", *members[N // 2:], *(b"x%d" % i for i in range(N // 2))) == N
    assert h.call(s, "RPUSH", "{t}l", *(b"%d" % random.randrange(10**6) for _ in range(N))) == N
    assert h.call(s, "HSET", "{t}h", *(x for i in range(N) for x in (b"f%d" % i, b"v"))) == N
    assert h.call(s, "ZADD", "{t}z", *(x for i in range(N) for x in (b"%d" % i, b"m%d" % i))) == N
    assert h.call(s, "MSET", *(x for i in range(N) for x in (b"{t}k%d" % i, b"v"))) == b"OK"
    assert h.call(s, "GEOADD", "{t}g", *(x for i in range(N) for x in (
        b"%f" % (i % 1000 / 100), b"%f" % (i // 1000 / 100), b"p%d" % i))) == N
    return h


@pytest.fixture
def beats():
    calls = [0]

    def beat() -> None:
        calls[0] += 1
    pulse.install(beat)
    yield calls
    pulse.install(None)


@pytest.mark.parametrize("command", [
    ("SUNIONSTORE", "{t}d", "{t}a", "{t}b"),      # the stored set is built member by member
    ("SINTERSTORE", "{t}d", "{t}a", "{t}b"),
    ("SDIFFSTORE", "{t}d", "{t}a", "{t}b"),
    ("SINTERCARD", "2", "{t}a", "{t}b"),
    ("SUNION", "{t}a", "{t}b"),                   # a reply of 1.5 N members
    ("SORT", "{t}l"),                             # numeric: scores parsed, then sorted in runs
    ("SORT", "{t}a", "ALPHA", "DESC", "STORE", "{t}d"),
    ("ZUNIONSTORE", "{t}d", "2", "{t}z", "{t}a"),  # a sorted set and a set
    ("ZINTERSTORE", "{t}d", "2", "{t}z", "{t}z"),
    ("ZUNION", "2", "{t}z", "{t}a", "WITHSCORES"),
    ("ZINTERCARD", "2", "{t}z", "{t}z"),
    ("SRANDMEMBER", "{t}a", str(-N)),
    ("KEYS", "*"),
    ("KEYS", "{t}k*"),
    ("SCAN", "0", "COUNT", "1000000", "MATCH", "*k*"),
    ("HGETALL", "{t}h"),
    ("SMEMBERS", "{t}a"),
    ("ZRANGE", "{t}z", "0", "-1", "WITHSCORES"),
    ("ZRANGEBYSCORE", "{t}z", "-inf", "+inf"),
    ("LPOS", "{t}l", "absent", "COUNT", "0"),     # every element compared
    ("GEOSEARCH", "{t}g", "FROMLONLAT", "5", "0", "BYRADIUS", "2000", "km", "ASC"),  # then sorted in runs
    ("BITFIELD", "{t}bf", *["INCRBY", "u8", "0", "1"] * N),
    ("MSET", *(x for i in range(N) for x in (b"{t}k%d" % i, b"w"))),
    ("DEL", *(b"{t}k%d" % i for i in range(N))),   # (last: it empties what KEYS and SCAN list)
], ids=lambda command: " ".join(str(a) for a in command[:3]))
def test_a_command_over_many_elements_beats_as_it_goes(harness, beats, command):
    reply = harness.raw(harness.session(), *command)
    assert not reply.startswith(b"-"), reply[:200]
    print(f"\n{command[0]} over ~{N:,} elements: {beats[0]} beats (at least {ENOUGH})")
    assert beats[0] >= ENOUGH


def test_small_commands_do_not_beat(harness, beats):
    s = harness.session()
    harness.call(s, "SADD", "{t}small", *(b"%d" % i for i in range(100)))
    harness.call(s, "SMEMBERS", "{t}small")
    harness.call(s, "SUNIONSTORE", "{t}d2", "{t}small", "{t}small")
    harness.call(s, "SORT", "{t}small")
    assert beats[0] == 0


@pytest.mark.parametrize("size", [0, 1, pulse.RUN, pulse.RUN + 1, 3 * pulse.RUN + 7])
@pytest.mark.parametrize("reverse", [False, True])
def test_the_paced_sort_orders_as_sorted_does(size, reverse):
    items = [(float(random.randrange(50)), b"%d" % random.randrange(500)) for _ in range(size)]
    assert pulse.ordered(items, reverse) == sorted(items, reverse=reverse)
