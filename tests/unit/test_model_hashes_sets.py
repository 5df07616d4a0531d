"""Property test: random hash and set command sequences against plain dicts and sets."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.typeharness import Harness

HKEYS = [b"{h}a", b"{h}b"]
SKEYS = [b"{s}a", b"{s}b", b"{s}c"]
FIELDS = st.sampled_from([b"f", b"g", b"h", b"1", b"2"])
VALUES = st.sampled_from([b"v", b"10", b"-3", b"x" * 70])
MEMBERS = st.sampled_from([b"1", b"2", b"3", b"m", b"n"])


def hash_step(model: dict, op: tuple):
    name, key, *rest = op
    h = model.setdefault(key, {})
    if name == "HSET":
        added = sum(f not in h for f, _ in rest[0])
        h.update(rest[0])
        reply = added
    elif name == "HDEL":
        reply = sum(h.pop(f, None) is not None for f in rest[0])
    elif name == "HGET":
        reply = h.get(rest[0])
    elif name == "HINCRBY":
        field, amount = rest
        try:
            value = int(h.get(field, b"0")) + amount
            if h.get(field, b"0") == b"x" * 70:
                raise ValueError
        except ValueError:
            reply = "ERR hash value is not an integer"
        else:
            h[field] = b"%d" % value
            reply = value
    elif name == "HLEN":
        reply = len(h)
    else:   # HGETALL
        reply = sorted(h.items())
    if not h:
        del model[key]
    return reply


def set_step(model: dict, op: tuple):
    name, key, *rest = op
    s = model.setdefault(key, set())
    if name == "SADD":
        reply = len(set(rest[0]) - s)
        s.update(rest[0])
    elif name == "SREM":
        reply = len(set(rest[0]) & s)
        s.difference_update(rest[0])
    elif name == "SISMEMBER":
        reply = int(rest[0] in s)
    elif name in ("SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"):
        a, b = model.get(rest[0], set()), model.get(rest[1], set())
        result = a & b if name == "SINTERSTORE" else a | b if name == "SUNIONSTORE" else a - b
        model[key] = set(result)
        s = model[key]
        reply = len(result)
    elif name == "SMOVE":
        other, member = rest
        if member not in s:
            reply = 0
        else:
            s.discard(member)
            model.setdefault(other, set()).add(member)
            reply = 1
            if not model[other]:
                del model[other]
    else:   # SMEMBERS
        reply = sorted(s)
    for k in list(model):
        if not model[k]:
            del model[k]
    return reply


hash_ops = st.one_of(
    st.tuples(st.just("HSET"), st.sampled_from(HKEYS), st.lists(st.tuples(FIELDS, VALUES), min_size=1, max_size=3,
                                                                 unique_by=lambda p: p[0])),
    st.tuples(st.just("HDEL"), st.sampled_from(HKEYS), st.lists(FIELDS, min_size=1, max_size=3)),
    st.tuples(st.just("HGET"), st.sampled_from(HKEYS), FIELDS),
    st.tuples(st.just("HINCRBY"), st.sampled_from(HKEYS), FIELDS, st.integers(-5, 5)),
    st.tuples(st.just("HLEN"), st.sampled_from(HKEYS)),
    st.tuples(st.just("HGETALL"), st.sampled_from(HKEYS)),
)
set_ops = st.one_of(
    st.tuples(st.sampled_from(["SADD", "SREM"]), st.sampled_from(SKEYS), st.lists(MEMBERS, min_size=1, max_size=4)),
    st.tuples(st.just("SISMEMBER"), st.sampled_from(SKEYS), MEMBERS),
    st.tuples(st.sampled_from(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), st.sampled_from(SKEYS),
              st.sampled_from(SKEYS), st.sampled_from(SKEYS)),
    st.tuples(st.just("SMOVE"), st.sampled_from(SKEYS), st.sampled_from(SKEYS), MEMBERS),
    st.tuples(st.just("SMEMBERS"), st.sampled_from(SKEYS)),
)


def hash_command(op: tuple) -> list:
    name, key, *rest = op
    if name == "HSET":
        return [name, key] + [x for pair in rest[0] for x in pair]
    if name == "HDEL":
        return [name, key, *rest[0]]
    return [name, key, *rest]


def set_command(op: tuple) -> list:
    name, key, *rest = op
    if name in ("SADD", "SREM"):
        return [name, key, *rest[0]]
    if name == "SMOVE":
        return [name, key, rest[0], rest[1]]
    return [name, key, *rest]


def pairs(flat: list) -> list:
    return sorted(zip(flat[::2], flat[1::2]))


@settings(max_examples=60, deadline=None)
@given(st.lists(hash_ops, max_size=100), st.lists(set_ops, max_size=100))
def test_hashes_and_sets_behave_like_the_model(hash_sequence, set_sequence) -> None:
    h = Harness()
    client = h.session()
    hashes: dict = {}
    sets: dict = {}
    for op in hash_sequence:
        if op[0] == "HSET" and op[1] in sets:
            continue
        expected = hash_step(hashes, op)
        got = h.call(client, *hash_command(op))
        if op[0] == "HGETALL":
            got = pairs(got)
        assert (str(got) if isinstance(expected, str) else got) == expected, op
        assert h.ctx.store.used_memory == h.expected_memory(), op
    for op in set_sequence:
        expected = set_step(sets, op)
        got = h.call(client, *set_command(op))
        if op[0] == "SMEMBERS":
            got = sorted(got)
        assert got == expected, op
        assert h.ctx.store.used_memory == h.expected_memory(), op
    for key in SKEYS:
        members = h.call(client, "SMEMBERS", key)
        assert sorted(members) == sorted(sets.get(key, ()))
        encoding = h.call(client, "OBJECT", "ENCODING", key)
        if members:
            ints = all(m.isdigit() for m in members)
            assert encoding in ((b"intset", b"hashtable") if ints else (b"hashtable",))
