"""Property test: long random sorted set command sequences against a plain Python model.

The model is a dict member -> score, sorted on demand by (score, member), as
Redis orders a sorted set. Replies are compared after every command, scores
parsed back from Redis's %.17g text, and memory accounting is recounted.
"""
from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.typeharness import Harness

KEYS = [b"{z}a", b"{z}b"]
MEMBERS = st.sampled_from([b"a", b"b", b"c", b"d", b"e", b"f"])
SCORES = st.sampled_from([-2.5, -1.0, 0.0, 0.5, 1.0, 1.0, 2.0, 3.25, math.inf, -math.inf])
RANK = st.integers(-7, 7)


def fmt(score: float) -> bytes:
    if math.isinf(score):
        return b"inf" if score > 0 else b"-inf"
    return b"%.17g" % score


def ordered(z: dict[bytes, float]) -> list[tuple[float, bytes]]:
    return sorted((s, m) for m, s in z.items())


def in_range(score: float, low: tuple[float, bool], high: tuple[float, bool]) -> bool:
    (lo, lo_ex), (hi, hi_ex) = low, high
    return (score > lo if lo_ex else score >= lo) and (score < hi if hi_ex else score <= hi)


def bound_text(bound: tuple[float, bool]) -> bytes:
    value, exclusive = bound
    return (b"(" if exclusive else b"") + fmt(value)


def flat(pairs) -> list[bytes]:
    out = []
    for s, m in pairs:
        out += [m, fmt(s)]
    return out


def model_step(model: dict[bytes, dict[bytes, float]], op: tuple):
    name, key, *rest = op
    z = model.get(key, {})
    reply = None
    if name == "ZADD":
        flags, pairs = rest
        nx, xx, gt, lt, ch = (f in flags for f in ("NX", "XX", "GT", "LT", "CH"))
        added = changed = 0
        for score, member in pairs:
            current = z.get(member)
            if current is None:
                if not xx:
                    z[member] = score
                    added += 1
            elif not nx and not (gt and score <= current) and not (lt and score >= current):
                if score != current:
                    z[member] = score
                    changed += 1
        reply = added + changed if ch else added
    elif name == "ZINCRBY":
        increment, member = rest
        score = z.get(member, 0.0) + increment
        if math.isnan(score):
            return "ERR resulting score is not a number (NaN)"
        z[member] = score
        reply = fmt(score)
    elif name == "ZREM":
        reply = sum(z.pop(m, None) is not None for m in rest[0])
    elif name == "ZRANGE":
        start, stop, rev = rest
        pairs = ordered(z)[::-1] if rev else ordered(z)
        n = len(pairs)
        start, stop = (start + n if start < 0 else start), (stop + n if stop < 0 else stop)
        start = max(start, 0)
        reply = flat(pairs[start:stop + 1]) if start <= stop else []
    elif name == "ZRANGEBYSCORE":
        low, high, offset, count = rest
        pairs = [p for p in ordered(z) if in_range(p[0], low, high)]
        if offset is not None:
            pairs = [] if offset < 0 else pairs[offset:] if count < 0 else pairs[offset:offset + count]
        reply = flat(pairs)
    elif name == "ZREVRANGEBYSCORE":
        high, low = rest
        reply = flat([p for p in ordered(z)[::-1] if in_range(p[0], low, high)])
    elif name == "ZCOUNT":
        low, high = rest
        reply = sum(in_range(s, low, high) for s in z.values())
    elif name in ("ZRANK", "ZREVRANK"):
        members = [m for _, m in ordered(z)]
        if name == "ZREVRANK":
            members.reverse()
        reply = members.index(rest[0]) if rest[0] in z else None
    elif name in ("ZPOPMIN", "ZPOPMAX"):
        pairs = ordered(z)
        if name == "ZPOPMAX":
            pairs.reverse()
        taken = pairs[:rest[0]]
        for _, m in taken:
            del z[m]
        reply = flat(taken)
    elif name == "ZREMRANGEBYSCORE":
        low, high = rest
        doomed = [m for m, s in z.items() if in_range(s, low, high)]
        for m in doomed:
            del z[m]
        reply = len(doomed)
    elif name == "ZUNIONSTORE":
        other, aggregate = rest
        result: dict[bytes, float] = {}
        for source in (model.get(key, {}), model.get(other, {})):
            for m, s in source.items():
                if m not in result:
                    result[m] = s
                elif aggregate == "SUM":
                    total = result[m] + s
                    result[m] = 0.0 if math.isnan(total) else total
                elif aggregate == "MIN":
                    result[m] = min(result[m], s)
                else:
                    result[m] = max(result[m], s)
        if result:
            model[other] = result
        else:
            model.pop(other, None)
        return len(result)
    elif name == "ZCARD":
        reply = len(z)
    if z:
        model[key] = z
    else:
        model.pop(key, None)
    return reply


def command_of(op: tuple) -> list:
    name, key, *rest = op
    if name == "ZADD":
        flags, pairs = rest
        return [name, key, *flags] + [x for s, m in pairs for x in (fmt(s), m)]
    if name == "ZREM":
        return [name, key, *rest[0]]
    if name == "ZRANGE":
        start, stop, rev = rest
        return [name, key, start, stop] + (["REV"] if rev else []) + ["WITHSCORES"]
    if name == "ZRANGEBYSCORE":
        low, high, offset, count = rest
        limit = [] if offset is None else ["LIMIT", offset, count]
        return [name, key, bound_text(low), bound_text(high), "WITHSCORES", *limit]
    if name == "ZREVRANGEBYSCORE":
        return [name, key, bound_text(rest[0]), bound_text(rest[1]), "WITHSCORES"]
    if name in ("ZCOUNT", "ZREMRANGEBYSCORE"):
        return [name, key, bound_text(rest[0]), bound_text(rest[1])]
    if name in ("ZPOPMIN", "ZPOPMAX"):
        return [name, key, rest[0]]
    if name == "ZUNIONSTORE":
        return [name, rest[0], 2, key, rest[0], "AGGREGATE", rest[1]]
    if name == "ZINCRBY":
        return [name, key, fmt(rest[0]), rest[1]]
    return [name, key, *rest]


FLAGS = st.sampled_from([(), ("NX",), ("XX",), ("GT",), ("LT",), ("CH",), ("XX", "CH"), ("GT", "CH"), ("LT", "XX")])
BOUND = st.tuples(SCORES, st.booleans())
key = st.sampled_from(KEYS)
ops = st.one_of(
    st.tuples(st.just("ZADD"), key, FLAGS, st.lists(st.tuples(SCORES, MEMBERS), min_size=1, max_size=4,
                                                     unique_by=lambda p: p[1])),
    st.tuples(st.just("ZINCRBY"), key, SCORES, MEMBERS),
    st.tuples(st.just("ZREM"), key, st.lists(MEMBERS, min_size=1, max_size=3)),
    st.tuples(st.just("ZRANGE"), key, RANK, RANK, st.booleans()),
    st.tuples(st.just("ZRANGEBYSCORE"), key, BOUND, BOUND, st.none() | st.integers(-1, 3), st.integers(-1, 3)),
    st.tuples(st.just("ZREVRANGEBYSCORE"), key, BOUND, BOUND),
    st.tuples(st.just("ZCOUNT"), key, BOUND, BOUND),
    st.tuples(st.sampled_from(["ZRANK", "ZREVRANK"]), key, MEMBERS),
    st.tuples(st.sampled_from(["ZPOPMIN", "ZPOPMAX"]), key, st.integers(0, 3)),
    st.tuples(st.just("ZREMRANGEBYSCORE"), key, BOUND, BOUND),
    st.tuples(st.just("ZUNIONSTORE"), key, key, st.sampled_from(["SUM", "MIN", "MAX"])),
    st.tuples(st.just("ZCARD"), key),
)


@settings(max_examples=70, deadline=None)
@given(st.lists(ops, max_size=100))
def test_sorted_sets_behave_like_the_model(sequence) -> None:
    h = Harness()
    client = h.session()
    model: dict[bytes, dict[bytes, float]] = {}
    for op in sequence:
        if op[0] == "ZRANGEBYSCORE" and op[4] is None:
            op = op[:4] + (None, -1)
        expected = model_step(model, op)
        got = h.call(client, *command_of(op))
        if isinstance(expected, str):
            assert str(got) == expected, op
        else:
            assert got == expected, op
        assert h.ctx.store.used_memory == h.expected_memory(), op
    for k in KEYS:
        assert h.call(client, "ZRANGE", k, 0, -1, "WITHSCORES") == flat(ordered(model.get(k, {})))
