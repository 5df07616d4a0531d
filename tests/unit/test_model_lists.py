"""Property test: long random list command sequences against a plain Python model.

Two keys share a slot ({t}), so LMOVE moves between them; after every command
the reply must equal the model's and the store's memory accounting must equal
a recount from scratch.
"""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.typeharness import Harness

KEYS = [b"{t}a", b"{t}b"]
VALUES = st.sampled_from([b"x", b"y", b"z", b"longer-value"])
INDEX = st.integers(-6, 6)


def norm(start: int, end: int, size: int) -> range:
    if start < 0:
        start += size
    if end < 0:
        end += size
    start = max(start, 0)
    end = min(end, size - 1)
    return range(start, end + 1) if start <= end else range(0)


def model_step(model: dict[bytes, list[bytes]], op: tuple):
    name, key, *rest = op
    lst = model.get(key, [])
    reply = None
    if name == "LPUSH":
        for v in rest[0]:
            lst.insert(0, v)
        reply = len(lst)
    elif name == "RPUSH":
        lst.extend(rest[0])
        reply = len(lst)
    elif name in ("LPOP", "RPOP"):
        count = rest[0]
        if key not in model:
            reply = None
        elif count is None:
            reply = lst.pop(0) if name == "LPOP" else lst.pop()
        else:
            taken = [lst.pop(0) if name == "LPOP" else lst.pop() for _ in range(min(count, len(lst)))]
            reply = taken
    elif name == "LRANGE":
        reply = [lst[i] for i in norm(rest[0], rest[1], len(lst))]
    elif name == "LINDEX":
        i = rest[0] + len(lst) if rest[0] < 0 else rest[0]
        reply = lst[i] if 0 <= i < len(lst) else None
    elif name == "LSET":
        i = rest[0] + len(lst) if rest[0] < 0 else rest[0]
        if key not in model:
            reply = "ERR no such key"
        elif not 0 <= i < len(lst):
            reply = "ERR index out of range"
        else:
            lst[i] = rest[1]
            reply = b"OK"
    elif name == "LREM":
        count, value = rest
        order = list(range(len(lst)))
        if count < 0:
            order.reverse()
        limit = abs(count) or len(lst)
        doomed = [i for i in order if lst[i] == value][:limit]
        for i in sorted(doomed, reverse=True):
            del lst[i]
        reply = len(doomed)
    elif name == "LTRIM":
        keep = norm(rest[0], rest[1], len(lst))
        lst[:] = [lst[i] for i in keep]
        reply = b"OK"
    elif name == "LINSERT":
        where, pivot, value = rest
        if key not in model:
            reply = 0
        elif pivot not in lst:
            reply = -1
        else:
            lst.insert(lst.index(pivot) + (where == "AFTER"), value)
            reply = len(lst)
    elif name == "LPOS":
        hits = [i for i, v in enumerate(lst) if v == rest[0]]
        reply = hits[0] if hits else None
    elif name == "LLEN":
        reply = len(lst)
    elif name == "LMOVE":
        other, from_side, to_side = rest
        if key not in model:
            reply = None
        else:
            value = lst.pop(0) if from_side == "LEFT" else lst.pop()
            if not lst:
                model.pop(key, None)
            dst = model.setdefault(other, [])
            dst.insert(0, value) if to_side == "LEFT" else dst.append(value)
            reply = value
            return reply
    if lst:
        model[key] = lst
    else:
        model.pop(key, None)
    return reply


def command_of(op: tuple) -> list:
    name, key, *rest = op
    if name in ("LPUSH", "RPUSH"):
        return [name, key, *rest[0]]
    if name in ("LPOP", "RPOP"):
        return [name, key] + ([] if rest[0] is None else [rest[0]])
    if name == "LMOVE":
        return [name, key, rest[0], rest[1], rest[2]]
    return [name, key, *rest]


ops = st.one_of(
    st.tuples(st.sampled_from(["LPUSH", "RPUSH"]), st.sampled_from(KEYS), st.lists(VALUES, min_size=1, max_size=4)),
    st.tuples(st.sampled_from(["LPOP", "RPOP"]), st.sampled_from(KEYS), st.none() | st.integers(0, 4)),
    st.tuples(st.just("LRANGE"), st.sampled_from(KEYS), INDEX, INDEX),
    st.tuples(st.just("LINDEX"), st.sampled_from(KEYS), INDEX),
    st.tuples(st.just("LSET"), st.sampled_from(KEYS), INDEX, VALUES),
    st.tuples(st.just("LREM"), st.sampled_from(KEYS), st.integers(-3, 3), VALUES),
    st.tuples(st.just("LTRIM"), st.sampled_from(KEYS), INDEX, INDEX),
    st.tuples(st.just("LINSERT"), st.sampled_from(KEYS), st.sampled_from(["BEFORE", "AFTER"]), VALUES, VALUES),
    st.tuples(st.just("LPOS"), st.sampled_from(KEYS), VALUES),
    st.tuples(st.just("LLEN"), st.sampled_from(KEYS)),
    st.tuples(st.just("LMOVE"), st.sampled_from(KEYS), st.sampled_from(KEYS),
              st.sampled_from(["LEFT", "RIGHT"]), st.sampled_from(["LEFT", "RIGHT"])),
)


@settings(max_examples=70, deadline=None)
@given(st.lists(ops, max_size=120))
def test_lists_behave_like_the_model(sequence) -> None:
    h = Harness()
    client = h.session()
    model: dict[bytes, list[bytes]] = {}
    for op in sequence:
        expected = model_step(model, op)
        got = h.call(client, *command_of(op))
        if isinstance(expected, str):
            assert str(got) == expected, op
        else:
            assert got == expected, op
        assert h.ctx.store.used_memory == h.expected_memory(), op
    for key in KEYS:
        assert h.call(client, "LRANGE", key, 0, -1) == model.get(key, [])
