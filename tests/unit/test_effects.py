"""Effects: a key's value as a state a replica rebuilds, exactly (OBJECT ENCODING included), or BadState."""
import math

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from hypercache.effects import HASH, LIST, SET, STRING, ZSET, BadState, joined, pieces_of, state_of, value_of
from hypercache.types import Hash, List, Set, ZSet
from hypercache.types import hash as hash_module
from hypercache.types import set as set_module
from hypercache.types import zset as zset_module


def over_the_wire(state):
    """A state as a replica receives it: inside a msgpack frame."""
    return msgpack.unpackb(msgpack.packb(state, use_bin_type=True), raw=False)


def rebuilt(value, deadline_ms=None, wire: bool = True):
    state = state_of(value, deadline_ms)
    return value_of(over_the_wire(state) if wire else state)


def contents(value):
    """Everything a client can read of a value, in the order it is kept."""
    if type(value) is bytes:
        return value
    if isinstance(value, Hash):
        return list(value.fields.items())
    if isinstance(value, List):
        return list(value.values())
    if isinstance(value, Set):
        return list(value.members)
    if isinstance(value, ZSet):
        return list(value.scores.items()), list(value.ordered)
    raise TypeError(type(value))


def assert_same(original, copy):
    assert type(copy) is type(original)
    assert contents(copy) == contents(original)
    if type(original) is not bytes:
        assert copy.encoding == original.encoding
        assert copy.type_name == original.type_name
        assert copy.nbytes == original.nbytes       # the replica's memory accounting agrees


def hash_of(*pairs) -> Hash:
    value = Hash()
    for field, item in pairs:
        value.set(field, item)
    return value


# -- round trips ------------------------------------------------------------------------------

@pytest.mark.parametrize("wire", [False, True], ids=["direct", "msgpack"])
@pytest.mark.parametrize("deadline_ms, expected", [(None, 0), (0, 0), (1, 1), (1_700_000_000_123, 1_700_000_000_123)])
def test_a_string_and_its_deadline_round_trip(wire, deadline_ms, expected):
    for value in (b"", b"hello", b"\x00\xff\r\n", b"x" * 100_000):
        assert rebuilt(value, deadline_ms, wire) == (value, expected)


@pytest.mark.parametrize("wire", [False, True], ids=["direct", "msgpack"])
def test_each_container_round_trips_with_its_deadline(wire):
    hash_value = hash_of((b"f1", b"v1"), (b"f2", b""))
    list_value = List([b"a", b"", b"a", b"\r\n"])
    set_value = Set([b"1", b"-2", b"30"])
    zset_value = ZSet([(1.5, b"a"), (-2.0, b"b"), (math.inf, b"c"), (-math.inf, b"d")])
    for value in (hash_value, list_value, set_value, zset_value):
        copy, deadline = rebuilt(value, 99, wire)
        assert deadline == 99
        assert_same(value, copy)


def test_states_have_the_documented_shape():
    assert state_of(b"v", None) == [STRING, b"v", 0, False]
    assert state_of(hash_of((b"f", b"v")), 5) == [HASH, [b"f", b"v"], 5, False]
    assert state_of(List([b"a", b"b"]), None) == [LIST, [b"a", b"b"], 0, False]
    assert state_of(Set([b"1"]), None) == [SET, [b"1"], 0, False]
    assert state_of(ZSet([(2.0, b"m")]), None) == [ZSET, [b"m", 2.0], 0, False]


def test_a_value_with_no_state_is_a_type_error():
    with pytest.raises(TypeError):
        state_of("text", None)


def test_empty_containers_round_trip():
    for value in (Hash(), List(), Set(), ZSet()):
        assert_same(value, rebuilt(value)[0])


def test_the_rebuilt_value_is_independent_of_the_state():
    state = state_of(Set([b"1", b"2"]), None)
    copy, _ = value_of(state)
    state[1].append(b"3")
    assert contents(copy) == [b"1", b"2"]


# -- encodings: OBJECT ENCODING agrees on the replica -------------------------------------------

def test_hash_encodings_round_trip():
    small = hash_of((b"f", b"v"))
    long_value = hash_of((b"f", b"v" * (hash_module.MAX_LISTPACK_VALUE + 1)))
    long_field = hash_of((b"f" * (hash_module.MAX_LISTPACK_VALUE + 1), b"v"))
    many = hash_of(*((b"f%d" % i, b"v") for i in range(hash_module.MAX_LISTPACK_ENTRIES + 1)))
    assert small.encoding == b"listpack"
    for value in (small, long_value, long_field, many):
        assert_same(value, rebuilt(value)[0])
    assert {long_value.encoding, long_field.encoding, many.encoding} == {b"hashtable"}


def test_a_hash_that_shrank_stays_a_hashtable_on_the_replica():
    value = hash_of((b"f", b"v"), (b"long", b"v" * 100))
    value.delete(b"long")
    assert value.encoding == b"hashtable"       # its contents alone would make a listpack
    assert_same(value, rebuilt(value)[0])


def test_set_encodings_round_trip():
    ints = Set([b"0", b"-9223372036854775808", b"9223372036854775807"])
    text = Set([b"1", b"one"])
    too_big_for_int64 = Set([b"9223372036854775808"])
    many = Set(b"%d" % i for i in range(set_module.MAX_INTSET_ENTRIES + 1))
    assert ints.encoding == b"intset"
    for value in (ints, text, too_big_for_int64, many):
        assert_same(value, rebuilt(value)[0])
    assert {text.encoding, too_big_for_int64.encoding, many.encoding} == {b"hashtable"}


def test_a_set_that_shrank_stays_a_hashtable_on_the_replica():
    value = Set(b"%d" % i for i in range(set_module.MAX_INTSET_ENTRIES + 1))
    value.remove(b"0")
    value.remove(b"7")
    assert len(value) < set_module.MAX_INTSET_ENTRIES and value.encoding == b"hashtable"
    assert_same(value, rebuilt(value)[0])
    popped = Set([b"1", b"x"])
    popped.remove(b"x")
    assert_same(popped, rebuilt(popped)[0])
    assert rebuilt(popped)[0].encoding == b"hashtable"


def test_zset_encodings_round_trip():
    small = ZSet([(1.0, b"a")])
    long_member = ZSet([(1.0, b"m" * (zset_module.MAX_LISTPACK_VALUE + 1))])
    many = ZSet((float(i), b"m%d" % i) for i in range(zset_module.MAX_LISTPACK_ENTRIES + 1))
    assert small.encoding == b"listpack"
    for value in (small, long_member, many):
        assert_same(value, rebuilt(value)[0])
    assert {long_member.encoding, many.encoding} == {b"skiplist"}


def test_a_zset_that_shrank_stays_a_skiplist_on_the_replica():
    value = ZSet((float(i), b"m%d" % i) for i in range(zset_module.MAX_LISTPACK_ENTRIES + 1))
    for i in range(10):
        value.remove(b"m%d" % i)
    assert value.encoding == b"skiplist"
    assert_same(value, rebuilt(value)[0])


def test_a_zsets_negative_zero_and_updated_scores_round_trip():
    value = ZSet([(-0.0, b"z"), (3.0, b"a")])
    value.add(b"a", -1.25)
    copy, _ = rebuilt(value)
    assert_same(value, copy)
    assert math.copysign(1, copy.scores[b"z"]) == 1.0


def test_lists_are_always_quicklists():
    value = List([b"x" * 10_000] * 3)
    copy, _ = rebuilt(value)
    assert copy.encoding == b"quicklist"
    assert_same(value, copy)


# -- round trips as properties ------------------------------------------------------------------

deadlines = st.one_of(st.none(), st.just(0), st.integers(1, 2**62))
# short payloads mostly, long enough at times to cross the 64-byte listpack limit
payloads = st.one_of(st.binary(max_size=8), st.binary(min_size=60, max_size=70))
int_members = st.integers(-2**64, 2**64).map(lambda i: b"%d" % i)
set_members = st.one_of(int_members, payloads, st.sampled_from([b"-0", b"007", b"+1", b" 1", b""]))
scores = st.floats(allow_nan=False)


@settings(max_examples=60)
@given(ops=st.lists(st.tuples(st.booleans(), st.binary(max_size=3), payloads), max_size=150),
       deadline=deadlines)
def test_any_hash_round_trips(ops, deadline):
    value = Hash()
    for keep, field, item in ops:
        if keep:
            value.set(field, item)
        else:
            value.delete(field)
    copy, got = rebuilt(value, deadline)
    assert got == (deadline or 0)
    assert_same(value, copy)


@given(items=st.lists(payloads, max_size=40), pops=st.integers(0, 5), deadline=deadlines)
def test_any_list_round_trips(items, pops, deadline):
    value = List()
    value.push_right(items[: len(items) // 2])
    value.push_left(items[len(items) // 2:])
    for _ in range(min(pops, len(value))):
        value.pop_left()
    copy, got = rebuilt(value, deadline)
    assert got == (deadline or 0)
    assert_same(value, copy)


@settings(max_examples=60)
@given(ops=st.lists(st.tuples(st.booleans(), set_members), max_size=40),
       crowd=st.integers(0, set_module.MAX_INTSET_ENTRIES + 3), deadline=deadlines)
def test_any_set_round_trips(ops, crowd, deadline):
    value = Set(b"%d" % i for i in range(crowd))
    for keep, member in ops:
        if keep:
            value.add(member)
        else:
            value.remove(member)
    for i in range(0, crowd, 7):
        value.remove(b"%d" % i)
    copy, got = rebuilt(value, deadline)
    assert got == (deadline or 0)
    assert_same(value, copy)


@settings(max_examples=60)
@given(ops=st.lists(st.tuples(st.booleans(), st.one_of(st.binary(max_size=3), payloads), scores), max_size=150),
       deadline=deadlines)
def test_any_zset_round_trips(ops, deadline):
    value = ZSet()
    for keep, member, score in ops:
        if keep:
            value.add(member, score)
        else:
            value.remove(member)
    copy, got = rebuilt(value, deadline)
    assert got == (deadline or 0)
    assert_same(value, copy)


# -- malformed states ---------------------------------------------------------------------------

MALFORMED = {
    "None": None,
    "a map": {"type": STRING},
    "three fields": [STRING, b"v", 0],
    "five fields": [STRING, b"v", 0, False, 0],
    "deadline negative": [STRING, b"v", -1, False],
    "deadline as float": [STRING, b"v", 1.0, False],
    "deadline as text": [STRING, b"v", "1", False],
    "deadline None": [STRING, b"v", None, False],
    "deadline as bool": [STRING, b"v", True, False],
    "string as text": [STRING, "v", 0, False],
    "string as a list": [STRING, [b"v"], 0, False],
    "string as None": [STRING, None, 0, False],
    "hash data as bytes": [HASH, b"fv", 0, False],
    "hash data as a map": [HASH, {"f": b"v"}, 0, False],
    "hash field as text": [HASH, ["f", b"v"], 0, False],
    "hash value as int": [HASH, [b"f", 1], 0, False],
    "list element as text": [LIST, [b"a", "b"], 0, False],
    "list element as a list": [LIST, [[b"a"]], 0, False],
    "set member as int": [SET, [1], 0, False],
    "set data as None": [SET, None, 0, False],
    "zset score as int": [ZSET, [b"m", 1], 0, False],
    "zset score as bytes": [ZSET, [b"m", b"1"], 0, False],
    "zset member as text": [ZSET, ["m", 1.0], 0, False],
    "zset pair reversed": [ZSET, [1.0, b"m"], 0, False],
    "type 5": [5, [], 0, False],
    "type -1": [-1, [], 0, False],
    "type as text": ["0", [], 0, False],
    "type None": [None, [], 0, False],
}


@pytest.mark.parametrize("wire", [False, True], ids=["direct", "msgpack"])
@pytest.mark.parametrize("state", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_states_raise_bad_state(state, wire):
    with pytest.raises(BadState):
        value_of(over_the_wire(state) if wire else state)


def test_a_state_is_a_list_not_a_tuple():
    """msgpack gives lists; a tuple never comes off the wire, and value_of does not guess."""
    with pytest.raises(BadState):
        value_of((STRING, b"v", 0, False))


@pytest.mark.parametrize("state", [[HASH, [b"f", b"v", b"orphan"], 0, False],
                                   [HASH, [b"orphan"], 0, False],
                                   [ZSET, [b"m", 1.0, b"orphan"], 0, False]],
                         ids=["hash", "hash-of-one", "zset"])
def test_a_state_with_an_odd_number_of_pair_elements_is_bad(state):
    with pytest.raises(BadState):
        value_of(state)


NAN = float("nan")


@pytest.mark.parametrize("data", [[b"a", NAN, b"b", NAN, b"b", 1.0],
                                  [b"a", NAN, b"b", NAN, b"c", NAN, b"b", 1.0]], ids=["two-nans", "three-nans"])
def test_nan_scores_raise_bad_state_not_another_error(data):
    with pytest.raises(BadState):
        value_of(over_the_wire([ZSET, data, 0, False]))


def test_a_nan_score_is_bad():
    with pytest.raises(BadState):
        value_of(over_the_wire([ZSET, [b"a", NAN], 0, False]))


# arbitrary msgpack-able objects (NaN scores have their own tests above)
leaves = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1), st.floats(allow_nan=False),
                   st.text(max_size=4), st.binary(max_size=4))
anything = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                       st.dictionaries(st.text(max_size=3), inner, max_size=3)),
                        max_leaves=20)
element = st.binary(max_size=4)
well_formed = st.tuples(
    st.one_of(st.tuples(st.just(STRING), element),
              st.tuples(st.sampled_from([LIST, SET]), st.lists(element, max_size=6)),
              st.tuples(st.just(HASH), st.lists(st.tuples(element, element), max_size=3)
                        .map(lambda pairs: [x for pair in pairs for x in pair])),
              st.tuples(st.just(ZSET), st.lists(st.tuples(element, scores), max_size=4)
                        .map(lambda pairs: [x for pair in pairs for x in pair]))),
    st.integers(0, 2**63), st.booleans(),
).map(lambda t: [t[0][0], t[0][1], t[1], t[2]])


replacement = st.one_of(leaves, anything)


@st.composite
def corrupted(draw):
    """A well-formed state with one thing wrong: a field, an element, or the shape."""
    state = draw(well_formed)
    where = draw(st.sampled_from(["field", "element", "element", "shape"]))
    if where == "field":
        state[draw(st.integers(0, 3))] = draw(replacement)
    elif where == "element" and type(state[1]) is list and state[1]:
        state[1][draw(st.integers(0, len(state[1]) - 1))] = draw(replacement)
    elif where == "shape":
        state = draw(st.sampled_from([state[:-1], state + [draw(replacement)], [state]]))
    return state


def value_of_or_bad_state(state):
    try:
        value, deadline = value_of(state)
    except BadState:
        return
    assert type(deadline) is int and deadline >= 0
    assert type(value) in (bytes, Hash, List, Set, ZSet)


@settings(max_examples=300)
@given(st.one_of(anything, well_formed, corrupted(), corrupted()))
def test_value_of_returns_or_raises_bad_state_on_anything(state):
    value_of_or_bad_state(over_the_wire(state))


@given(over=st.booleans(), state=well_formed)
def test_well_formed_states_always_describe_a_value_of_their_type(over, state):
    value, deadline = value_of(over_the_wire(state) if over else state)
    assert deadline == state[2]
    assert type(value) is [bytes, Hash, List, Set, ZSet][state[0]]
    if state[3] and state[0] in (HASH, SET, ZSET):
        assert value.big


# -- big values travel in pieces ----------------------------------------------------------------

def in_pieces(value, limit: int):
    """A value sent as its pieces (each through msgpack, as a PART frame) and rebuilt from them."""
    kind, data, deadline, big = state_of(value, 7)
    pieces = [over_the_wire(piece) for piece in pieces_of(data, limit)]
    return pieces, value_of([kind, joined(kind, pieces), deadline, big])


@pytest.mark.parametrize("size, limit, count", [(0, 4, 0), (3, 4, 1), (4, 4, 1), (5, 4, 2), (1000, 64, 16)])
def test_a_string_travels_in_pieces_of_at_most_the_limit(size, limit, count):
    value = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    pieces, (copy, deadline) = in_pieces(value, limit)
    assert len(pieces) == count and all(len(piece) <= limit for piece in pieces)
    assert (copy, deadline) == (value, 7)


def test_each_container_travels_in_pieces_and_is_rebuilt_exactly():
    containers = [hash_of(*[(b"f%d" % i, b"v" * (i % 9)) for i in range(300)]),
                  List([b"e%d" % i for i in range(300)]),
                  Set([b"%d" % i for i in range(300)]),
                  zset_of_300()]
    for value in containers:
        pieces, (copy, deadline) = in_pieces(value, 100)
        assert len(pieces) > 5 and all(type(piece) is list for piece in pieces)
        assert_same(value, copy)
        assert deadline == 7


def zset_of_300() -> ZSet:
    return ZSet([(i * 0.5, b"m%d" % i) for i in range(300)])


def test_pieces_of_the_wrong_kind_are_a_bad_state():
    with pytest.raises(BadState):
        joined(STRING, [b"a", [b"b"]])
    with pytest.raises(BadState):
        joined(HASH, [[b"f", b"v"], b"x"])
    with pytest.raises(BadState):      # pieces that make an odd list: no hash
        value_of([HASH, joined(HASH, [[b"f", b"v", b"g"]]), 0, False])
