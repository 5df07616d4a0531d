"""RDB object encoding (hypercache/rdb.py) fed values: round trips, listpacks, refusals."""
from __future__ import annotations

import pytest

from hypercache import rdb
from hypercache.types.hash import Hash
from hypercache.types.list import List
from hypercache.types.set import Set
from hypercache.types.zset import ZSet


def test_every_type_round_trips() -> None:
    hash_ = Hash()
    for i in range(200):
        hash_.set(b"f%d" % i, b"v" * (i % 90))
    values = [b"", b"12", b"-300", b"x" * 70000, List([b"a", b"7", b"z" * 5000] * 100),
              Set([b"1", b"b", b"c"]), hash_, ZSet([(1.5, b"a"), (-2.0, b"b"), (float("inf"), b"c")])]
    for value in values:
        payload = rdb.dump(value)
        assert rdb.verify(payload)
        loaded = rdb.load(payload)
        if isinstance(value, bytes):
            assert loaded == value
        elif isinstance(value, List):
            assert list(loaded.values()) == list(value.values())
        elif isinstance(value, Set):
            assert sorted(loaded.members) == sorted(value.members)
        elif isinstance(value, Hash):
            assert loaded.fields == value.fields
        else:
            assert loaded.scores == value.scores


def test_listpack_entries_of_every_encoding() -> None:
    strings = [b"", b"a" * 63, b"b" * 64, b"c" * 4095, b"d" * 4096]
    assert rdb.listpack_entries(rdb.listpack(strings)) == strings
    # integers as Redis writes them: 7-bit, 13-bit, 16/24/32/64-bit
    def lp(*entries: bytes) -> bytes:
        body = b"".join(e + bytes([len(e)]) for e in entries)
        return (6 + len(body) + 1).to_bytes(4, "little") + len(entries).to_bytes(2, "little") + body + b"\xff"
    assert rdb.listpack_entries(lp(b"\x05", b"\xdf\xff", b"\xf1\x00\x80", b"\xf4" + (-5).to_bytes(8, "little", signed=True))) \
        == [b"5", b"-1", b"-32768", b"-5"]


def test_damage_is_refused() -> None:
    payload = rdb.dump(b"value")
    assert not rdb.verify(payload[:-1] + bytes([payload[-1] ^ 1]))
    assert not rdb.verify(b"123")
    for body in (b"\x63", b"\x02\x05\x01a", b"\x00\x81" + b"\xff" * 8, b"\x10\x01\x00", b"\x0b\x05abcde",
                 b"\x02\x02\x01a\x01a"):
        framed = body + (10).to_bytes(2, "little")
        framed += rdb.crc64(framed).to_bytes(8, "little")
        with pytest.raises(rdb.BadFormat):
            rdb.load(framed)
