"""HSCAN, SSCAN and ZSCAN over big containers while another client changes them, on a real node.

Every member present for the whole walk must come back at least once
(Redis's SCAN guarantee), whatever is removed or added between the calls.
"""
from __future__ import annotations

import random

import pytest

KEY = "{scan}big"


def _fill(r, kind: str, members: list[str]) -> None:
    if kind == "hash":
        r.hset(KEY, mapping={m: "v" for m in members})
    elif kind == "set":
        r.sadd(KEY, *members)
    else:
        r.zadd(KEY, {m: i for i, m in enumerate(members)})


def _scan(r, kind: str, cursor: int) -> tuple[int, list[bytes]]:
    if kind == "hash":
        cursor, fields = r.hscan(KEY, cursor, count=20)
        return cursor, list(fields)
    if kind == "set":
        return r.sscan(KEY, cursor, count=20)
    cursor, pairs = r.zscan(KEY, cursor, count=20)
    return cursor, [member for member, _ in pairs]


def _change(r, kind: str, member: str, add: bool) -> None:
    if kind == "hash":
        r.hset(KEY, member, "v") if add else r.hdel(KEY, member)
    elif kind == "set":
        r.sadd(KEY, member) if add else r.srem(KEY, member)
    else:
        r.zadd(KEY, {member: 1}) if add else r.zrem(KEY, member)


@pytest.mark.parametrize("kind", ["hash", "set", "zset"])
def test_a_member_present_throughout_is_scanned(node, kind):
    rng = random.Random(kind)
    stable = [f"stable:{i}" for i in range(1500)]
    churn = [f"churn:{i}" for i in range(1500)]
    with node.client() as r, node.client() as other:
        # interleaved: removing a churn member moves the stable ones after it
        _fill(r, kind, [member for pair in zip(stable, churn) for member in pair])
        assert r.object("encoding", KEY) in (b"hashtable", b"skiplist")
        present, seen, cursor = list(churn), set(), 0
        while True:
            cursor, chosen = _scan(r, kind, cursor)
            seen.update(member.decode() for member in chosen)
            for _ in range(10):         # another client, between two calls
                if present and rng.random() < 0.7:
                    _change(other, kind, present.pop(rng.randrange(len(present))), add=False)
                else:
                    present.append(f"new:{rng.randrange(10**9)}")
                    _change(other, kind, present[-1], add=True)
            if cursor == 0:
                break
        assert set(stable) <= seen
