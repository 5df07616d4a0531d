"""The pure parts of scripting, fed values: Redis's rand48, shebang flags, library metadata and
DUMP payloads (CRC64, LZF), RESP read-back, and the struct / bit / cmsgpack encodings."""
from __future__ import annotations

import pytest

from hypercache.reply import CommandError, Status
from hypercache.scripting import luabits
from hypercache.scripting.convert import parse_resp
from hypercache.scripting.flags import FlagError, ScriptFlags, parse_shebang
from hypercache.scripting.library import (Library, LibraryError, crc64, dump, lzf_decompress, metadata,
                                          parse_dump)
from hypercache.scripting.rand import Rand48


class RedisRand48:
    """Redis's rand.c, limb for limb (three 16-bit words), as the oracle for Rand48."""

    def __init__(self) -> None:
        self.x = [0x330E, 0xABCD, 0x1234]
        self.a = [0xE66D, 0xDEEC, 0x5]
        self.c = 0xB

    def seed(self, value: int) -> None:
        value &= 0xFFFFFFFF
        self.x = [0x330E, value & 0xFFFF, value >> 16]

    def next_int(self) -> int:
        x, a = self.x, self.a
        words = [0, 0, 0]
        acc = a[0] * x[0] + self.c
        words[0] = acc & 0xFFFF
        acc = (acc >> 16) + a[0] * x[1] + a[1] * x[0]
        words[1] = acc & 0xFFFF
        acc = (acc >> 16) + a[0] * x[2] + a[1] * x[1] + a[2] * x[0]
        words[2] = acc & 0xFFFF
        self.x = words
        return (words[2] << 15) + (words[1] >> 1)


def test_rand48_is_redis_rand_c() -> None:
    ours, oracle = Rand48(), RedisRand48()
    assert [ours.next_int() for _ in range(500)] == [oracle.next_int() for _ in range(500)]
    for seed in (0, 1, 7, -1, 2**31 - 1, 123456789):
        ours.seed(seed)
        oracle.seed(seed)
        assert [ours.next_int() for _ in range(50)] == [oracle.next_int() for _ in range(50)]
    assert all(0 <= ours.next_fraction() < 1 for _ in range(1000))


@pytest.mark.parametrize("body, flags, skip", [
    (b"return 1", ScriptFlags(), 0),
    (b"#!lua\nreturn 1", ScriptFlags(compat=False), 5),
    (b"#!lua flags=no-writes,allow-oom\nreturn 1",
     ScriptFlags(compat=False, names=frozenset({"no-writes", "allow-oom"})), 31),
    (b"#!lua flags=\nreturn 1", ScriptFlags(compat=False), 12),
])
def test_shebang_flags(body: bytes, flags: ScriptFlags, skip: int) -> None:
    assert parse_shebang(body) == (flags, skip)


@pytest.mark.parametrize("body, error", [
    (b"#!lua", "Invalid script shebang"),
    (b"#!\n", "Unexpected engine in script shebang: #!"),
    (b"#!python\n", "Unexpected engine in script shebang: #!python"),
    (b"#!lua flags=no-writes,bogus\n", "Unexpected flag in script shebang: bogus"),
    (b"#!lua name=x\n", "Unknown lua shebang option: name=x"),
])
def test_shebang_refusals(body: bytes, error: str) -> None:
    with pytest.raises(FlagError, match=f"^{error}$"):
        parse_shebang(body)


def test_compat_scripts_may_cross_slots_and_flagged_ones_may_not() -> None:
    assert ScriptFlags().allow_cross_slot
    assert not ScriptFlags(compat=False).allow_cross_slot
    assert ScriptFlags(compat=False, names=frozenset({"allow-cross-slot-keys"})).allow_cross_slot


def test_library_metadata() -> None:
    assert metadata(b"#!lua name=mylib\nlocal x") == (b"lua", b"mylib", 16)
    assert metadata(b"#!LUA name=a_1\n")[1] == b"a_1"
    for code, error in [(b"no", "Missing library metadata"), (b"#!lua name=x", "Invalid library metadata"),
                        (b"#!lua\n", "Library name was not given"),
                        (b"#!lua name=a name=b\n", "Invalid metadata value, name argument was given multiple times"),
                        (b"#!lua foo=b\n", "Invalid metadata value given: foo=b"),
                        (b"#!lua name=bad-name\n", "Library names can only contain letters"),
                        (b"#!js name=x\n", "Engine 'js' not found")]:
        with pytest.raises(LibraryError, match=f"^{error}"):
            metadata(code)


def test_crc64_is_redis_jones_crc() -> None:
    assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA
    assert crc64(b"") == 0


def test_dump_payload_round_trips_and_refuses_damage() -> None:
    libraries = [Library(b"a", b"#!lua name=a\n" + b"x" * 100), Library(b"b", b"#!lua name=b\n" + b"y" * 20000)]
    payload = dump(libraries)
    assert parse_dump(payload) == [lib.code for lib in libraries]
    assert payload[-10:-8] == (10).to_bytes(2, "little")
    for damaged in (payload[:-1] + bytes([payload[-1] ^ 1]), payload[:5], b"", payload[:-10] + b"\x0b\x00" + payload[-8:]):
        with pytest.raises(LibraryError, match="DUMP payload version or checksum are wrong"):
            parse_dump(damaged)
    body = b"\x00\x01x" + (10).to_bytes(2, "little")
    with pytest.raises(LibraryError, match="given type is not a function"):
        parse_dump(body + crc64(body).to_bytes(8, "little"))


def test_lzf_literals_and_back_references() -> None:
    assert lzf_decompress(b"\x02abc\x80\x02", 9) == b"abcabcabc"
    assert lzf_decompress(b"\x00a\xe0\x03\x00", 1 + 7 + 3 + 2) == b"a" * 13
    with pytest.raises(LibraryError):
        lzf_decompress(b"\x02abc\x80\x09", 9)          # refers before the start
    with pytest.raises(LibraryError):
        lzf_decompress(b"\x05ab", 7)                    # truncated literal run


def test_parse_resp_reads_every_reply_type() -> None:
    assert parse_resp(b"+OK\r\n", 0) == (Status(b"OK"), 5)
    error, _ = parse_resp(b"-ERR no\r\n", 0)
    assert type(error) is CommandError and str(error) == "ERR no"
    assert parse_resp(b"*3\r\n:1\r\n$1\r\na\r\n_\r\n", 0)[0] == [1, b"a", None]
    assert parse_resp(b"%1\r\n$1\r\nk\r\n,1.5\r\n", 0)[0] == {b"k": 1.5}
    assert parse_resp(b"#t\r\n", 0)[0] is True
    assert parse_resp(b"$-1\r\n", 0)[0] is None


def test_struct_follows_lua_struct() -> None:
    assert luabits.struct_pack(b">I2", 258) == b"\x01\x02"
    assert luabits.struct_pack(b"<i4", -2) == b"\xfe\xff\xff\xff"
    assert luabits.struct_pack(b"!4bi", 1, 2) == b"\x01\x00\x00\x00\x02\x00\x00\x00"
    assert luabits.struct_pack(b"s", b"ab") == b"ab\x00"
    assert luabits.struct_unpack(b"<i4", b"\xfe\xff\xff\xff") == (-2, 5)
    assert luabits.struct_unpack(b"bc0", b"\x02hi") == (b"hi", 4)
    assert luabits.struct_unpack(b">I2", b"\x00\x01\x00\x02", 3) == (2, 5)
    assert luabits.struct_size(b">I2i4d") == 14
    with pytest.raises(ValueError, match="invalid format option 'z'"):
        luabits.struct_pack(b"z", b"a")
    with pytest.raises(ValueError, match="data string too short"):
        luabits.struct_unpack(b"i4", b"ab")
    with pytest.raises(ValueError, match="integral size 40 is larger than limit of 32"):
        luabits.struct_size(b"i40")


def test_bit_is_luabitop() -> None:
    bit = luabits.BIT
    assert bit["tobit"](0xFFFFFFFF) == -1 and bit["tobit"](2**32 + 5) == 5
    assert bit["bnot"](0) == -1
    assert bit["lshift"](1, 31) == -2**31
    assert bit["rshift"](-1, 28) == 15 and bit["arshift"](-256, 4) == -16
    assert bit["rol"](1, 33) == 2 and bit["ror"](1, 1) == -2**31
    assert bit["bswap"](0x12345678) == 0x78563412
    assert bit["tohex"](255) == b"000000ff" and bit["tohex"](-1, -4) == b"FFFF"
    assert bit["band"](0xFF, 0x0F, 0x3) == 3 and bit["bor"](1, 2, 4) == 7 and bit["bxor"](5, 3) == 6


def test_msgpack_tokens_use_cmsgpack_encodings() -> None:
    def encode(*tokens):
        table = {i + 1: token for i, token in enumerate(tokens)}
        return luabits.msgpack_encode_tokens(table, len(tokens))
    assert encode(b"\x00a", 3, 1, 2, 3) == b"\x93\x01\x02\x03"
    assert encode(b"\x01" + b"x" * 40) == b"\xd9\x28" + b"x" * 40
    assert encode(1.5) == b"\xca\x3f\xc0\x00\x00"                 # exact as a float32
    assert encode(0.1)[:1] == b"\xcb"                              # not: a double
    assert encode(300) == b"\xcd\x01\x2c" and encode(-1) == b"\xff"
    assert encode(b"\x00m", 1, b"\x01a", 1) == b"\x81\xa1a\x01"
