"""The container values alone: running size estimates, Redis 7.0 encodings, copies."""
from __future__ import annotations

from hypercache.types import Hash, List, Set, ZSet
from hypercache.types import hash as hash_module
from hypercache.types import list as list_module
from hypercache.types import set as set_module
from hypercache.types import zset as zset_module
from hypercache.types.set import is_int64


def fresh_hash_size(h: Hash) -> int:
    return hash_module.BASE_BYTES + sum(len(f) + len(v) + hash_module.ENTRY_BYTES
                                        for f, v in h.fields.items())


def test_hash_nbytes_follows_every_change() -> None:
    h = Hash()
    assert h.set(b"f", b"v") is True
    assert h.set(b"f", b"longer value") is False
    h.set(b"g", b"x")
    assert h.delete(b"g") is True
    assert h.delete(b"g") is False
    assert h.nbytes == fresh_hash_size(h)
    assert h.type_name == b"hash"


def test_hash_encoding_thresholds_are_redis_7_0s() -> None:
    h = Hash()
    for i in range(128):
        h.set(b"f%d" % i, b"v")
    assert h.encoding == b"listpack"
    h.set(b"one-more", b"v")
    assert h.encoding == b"hashtable"
    h.delete(b"one-more")
    assert h.encoding == b"hashtable"        # never converts back
    small = Hash()
    small.set(b"f", b"x" * 64)
    assert small.encoding == b"listpack"
    small.set(b"f", b"x" * 65)
    assert small.encoding == b"hashtable"


def test_list_is_a_quicklist_and_counts_its_bytes() -> None:
    lst = List()
    lst.push_right([b"a", b"bb"])
    lst.push_left([b"ccc"])
    assert list(lst.values()) == [b"ccc", b"a", b"bb"]
    assert lst.pop_right() == b"$2\r\nbb\r\n"          # pops give the wire form
    assert lst.pop_left() == b"$3\r\nccc\r\n"
    assert lst.nbytes == List([b"a"]).nbytes == list_module.BASE_BYTES + len(b"$1\r\na\r\n") + list_module.ENTRY_BYTES
    assert lst.encoding == b"quicklist"
    assert lst.type_name == b"list"


def test_set_intset_until_a_non_integer_or_too_many() -> None:
    s = Set([b"1", b"-5", b"9223372036854775807"])
    assert s.encoding == b"intset"
    s.add(b"x")
    assert s.encoding == b"hashtable"
    big = Set(b"%d" % i for i in range(512))
    assert big.encoding == b"intset"
    big.add(b"512")
    assert big.encoding == b"hashtable"
    for raw in (b"01", b"-0", b"+1", b" 1", b"9223372036854775808", b"", b"-"):
        assert not is_int64(raw), raw


def test_set_remove_keeps_members_and_index_in_step() -> None:
    s = Set([b"a", b"b", b"c", b"d"])
    assert s.remove(b"b") and not s.remove(b"b")
    assert sorted(s.members) == [b"a", b"c", b"d"]
    assert all(s.members[i] == m for m, i in s.index.items())
    popped = {s.pop_random() for _ in range(3)}
    assert popped == {b"a", b"c", b"d"} and len(s) == 0
    assert s.nbytes == set_module.BASE_BYTES


def test_zset_order_rank_and_encoding() -> None:
    z = ZSet()
    assert z.add(b"b", 2.0) is None
    assert z.add(b"a", 2.0) is None
    assert z.add(b"c", 1.0) is None
    assert list(z.ordered) == [(1.0, b"c"), (2.0, b"a"), (2.0, b"b")]
    assert z.add(b"c", 3.0) == 1.0
    assert z.rank(b"c") == 2 and z.rank(b"zz") is None
    assert z.add(b"m", -0.0) is None and str(z.scores[b"m"]) == "0.0"
    assert z.encoding == b"listpack"
    z.add(b"x" * 65, 1.0)
    assert z.encoding == b"skiplist"
    assert z.remove(b"x" * 65) and not z.remove(b"x" * 65)
    assert z.nbytes == zset_module.BASE_BYTES + sum(len(m) + zset_module.ENTRY_BYTES for m in z.scores)


def test_copies_are_independent() -> None:
    h = Hash()
    h.set(b"f", b"v")
    s = Set([b"1"])
    z = ZSet([(1.0, b"m")])
    lst = List([b"a"])
    copies = [v.copy() for v in (h, s, z, lst)]
    h.set(b"g", b"w")
    s.add(b"2")
    z.add(b"n", 2.0)
    lst.push_right([b"b"])
    hc, sc, zc, lc = copies
    assert hc.fields == {b"f": b"v"} and sc.members == [b"1"] and list(zc.ordered) == [(1.0, b"m")]
    assert list(lc.values()) == [b"a"]
    assert [c.nbytes for c in copies] == [Hash().nbytes + 2 + hash_module.ENTRY_BYTES,
                                          Set([b"1"]).nbytes, ZSet([(1.0, b"m")]).nbytes,
                                          List([b"a"]).nbytes]
