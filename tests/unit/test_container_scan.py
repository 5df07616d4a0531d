"""HSCAN/SSCAN/ZSCAN cursors over big containers: every member present for the whole walk is returned.

Fed with values, no sockets: a container is filled past its listpack/intset
limit, then walked with scan_members while other members come and go
between the calls (removals shift the dict's positions, the case the
cursor's removal count is for).
"""
from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hypercache.types.hash import Hash
from hypercache.types.scan import MAX_CALLS, scan_members
from hypercache.types.set import Set
from hypercache.types.zset import ZSet


def _hash(members):
    h = Hash()
    for member in members:
        h.set(member, b"v")
    return h


def _set(members):
    return Set(members)


def _zset(members):
    return ZSet((float(i), member) for i, member in enumerate(members))


# (make, the dict walked, add, remove) for each container kind
KINDS = {
    "hash": (_hash, lambda c: c.fields, lambda c, m: c.set(m, b"v"), lambda c, m: c.delete(m)),
    "set": (_set, lambda c: c.index, lambda c, m: c.add(m), lambda c, m: c.remove(m)),
    "zset": (_zset, lambda c: c.scores, lambda c, m: c.add(m, 1.0), lambda c, m: c.remove(m)),
}


def walk(container, members_of, count: int, between=lambda: None) -> list[bytes]:
    cursor, seen, calls = 0, [], 0
    while True:
        cursor, chosen = scan_members(members_of(container), container.removed, False, cursor, count, None)
        seen.extend(chosen)
        calls += 1
        between()
        if cursor == 0:
            return seen


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(sorted(KINDS)), seed=st.integers(0, 10**6), count=st.integers(1, 50))
def test_a_member_present_for_the_whole_walk_is_returned(kind, seed, count):
    make, members_of, add, remove = KINDS[kind]
    rng = random.Random(seed)
    stable = [b"stable:%d" % i for i in range(300)]
    churn = [b"churn:%d" % i for i in range(300)]
    # interleaved: removing a churn member moves every stable member after it back a place
    container = make([member for pair in zip(stable, churn) for member in pair])
    assert container.big
    present = list(churn)

    def mutate():
        # other clients: remove churn members (shifting positions) and add new ones
        for _ in range(rng.randint(0, 40)):
            if present and rng.random() < 0.7:
                member = present.pop(rng.randrange(len(present)))
                remove(container, member)
            else:
                member = b"new:%d" % rng.randrange(10**9)
                add(container, member)
                present.append(member)

    seen = walk(container, members_of, count, mutate)
    assert set(stable) <= set(seen)


def test_an_unchanged_container_is_walked_once_each():
    for make, members_of, _, _ in KINDS.values():
        members = [b"m:%d" % i for i in range(5000)]
        container = make(members)
        seen = walk(container, members_of, 7)
        assert sorted(seen) == sorted(members)


def test_a_walk_takes_a_bounded_number_of_calls_whatever_count_says():
    h = _hash(b"f:%d" % i for i in range(100_000))
    calls = 0
    cursor = 0
    while True:
        cursor, _ = scan_members(h.fields, h.removed, False, cursor, 1, None)
        calls += 1
        if cursor == 0:
            break
    assert calls <= MAX_CALLS + 1


def test_a_stale_or_foreign_cursor_ends_or_restarts_the_walk_but_never_fails():
    h = _hash(b"f:%d" % i for i in range(1000))
    assert scan_members(h.fields, h.removed, False, 0, 2**63 - 1, None) == (0, list(h.fields))   # COUNT at its limit
    assert scan_members(h.fields, h.removed, False, 2**64 - 1, 10, None) == (0, [])
    cursor, chosen = scan_members(h.fields, h.removed, False, 5 << 32 | 3, 10, None)   # more removals than happened
    assert chosen and cursor != 0
