"""Values in Redis's RDB object format, as DUMP and RESTORE carry them: pure encode and decode.

A payload is one object (type byte + body), then the RDB version (2 bytes,
little-endian) and a CRC64 of all that (8 bytes), so a value dumped by
redis-server 7.0 restores here and ours restore there. Reading covers what
Redis 7.0 writes (integer-encoded and LZF-compressed strings, quicklist 2 lists
with listpack or plain nodes, intsets, listpack hashes and sorted sets) and the
plain forms of older versions; writing uses the plain forms (string, list of
listpacks, set, hash, sorted set with binary scores), which every Redis since
5.0 loads.
"""
from __future__ import annotations

import math
import struct
from typing import Any

from .scripting.library import crc64, lzf_decompress

RDB_VERSION = 10
STRING, LIST, SET, ZSET, HASH, ZSET_2 = 0, 1, 2, 3, 4, 5
SET_INTSET, HASH_LISTPACK, ZSET_LISTPACK, LIST_QUICKLIST_2 = 11, 16, 17, 18
QUICKLIST_PLAIN, QUICKLIST_PACKED = 1, 2
MAX_ELEMENTS = 1 << 32          # counts past this are refused before anything is allocated


class BadFormat(ValueError):
    """The payload does not hold a value hypercache can load ("Bad data format")."""


# -- writing ------------------------------------------------------------------------------------

def _length(n: int) -> bytes:
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def _string(value: bytes) -> bytes:
    # short integers as Redis writes them (int encodings), the rest raw
    if 0 < len(value) <= 11 and value == b"%d" % _as_int(value):
        number = int(value)
        if -(1 << 7) <= number < (1 << 7):
            return b"\xc0" + number.to_bytes(1, "little", signed=True)
        if -(1 << 15) <= number < (1 << 15):
            return b"\xc1" + number.to_bytes(2, "little", signed=True)
        if -(1 << 31) <= number < (1 << 31):
            return b"\xc2" + number.to_bytes(4, "little", signed=True)
    return _length(len(value)) + value


def _as_int(value: bytes) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


def _backlen(size: int) -> bytes:
    """A listpack entry's length written backwards (1-5 bytes, 7 bits each)."""
    if size <= 127:
        return bytes([size])
    if size < 16383:
        return bytes([size >> 7, (size & 127) | 128])
    if size < 2097151:
        return bytes([size >> 14, ((size >> 7) & 127) | 128, (size & 127) | 128])
    if size < 268435455:
        return bytes([size >> 21, ((size >> 14) & 127) | 128, ((size >> 7) & 127) | 128, (size & 127) | 128])
    return bytes([size >> 28, ((size >> 21) & 127) | 128, ((size >> 14) & 127) | 128,
                  ((size >> 7) & 127) | 128, (size & 127) | 128])


def listpack(elements: list[bytes]) -> bytes:
    """A listpack of string entries (6-, 12- or 32-bit lengths)."""
    body = bytearray()
    for element in elements:
        size = len(element)
        if size < 64:
            entry = bytes([0x80 | size]) + element
        elif size < 4096:
            entry = bytes([0xE0 | (size >> 8), size & 0xFF]) + element
        else:
            entry = b"\xf0" + size.to_bytes(4, "little") + element
        body += entry + _backlen(len(entry))
    total = 6 + len(body) + 1
    count = len(elements) if len(elements) < 65535 else 65535
    return total.to_bytes(4, "little") + count.to_bytes(2, "little") + bytes(body) + b"\xff"


def dump(value: Any) -> bytes:
    """The DUMP payload of a value (bytes, List, Set, Hash, ZSet)."""
    from .types.hash import Hash
    from .types.list import List
    from .types.set import Set
    from .types.zset import ZSet
    kind = type(value)
    if kind is bytes:
        body = bytes([STRING]) + _string(value)
    elif kind is List:
        elements = list(value.values())
        nodes = [elements[i:i + 128] for i in range(0, len(elements), 128)]
        body = bytes([LIST_QUICKLIST_2]) + _length(len(nodes)) + b"".join(
            _length(QUICKLIST_PACKED) + _string_raw(listpack(node)) for node in nodes)
    elif kind is Set:
        body = bytes([SET]) + _length(len(value.members)) + b"".join(_string(m) for m in value.members)
    elif kind is Hash:
        body = bytes([HASH]) + _length(len(value.fields)) + b"".join(
            _string(f) + _string(v) for f, v in value.fields.items())
    elif kind is ZSet:
        body = bytes([ZSET_2]) + _length(len(value.scores)) + b"".join(
            _string(member) + struct.pack("<d", score) for score, member in reversed(value.ordered))
    else:
        raise BadFormat(f"cannot dump {kind.__name__}")
    body += RDB_VERSION.to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")


def _string_raw(value: bytes) -> bytes:
    return _length(len(value)) + value


# -- reading ------------------------------------------------------------------------------------

def verify(payload: bytes) -> bool:
    """verifyDumpPayload: the RDB version is one Redis 7.0 reads and the CRC64 matches."""
    if len(payload) < 10:
        return False
    if int.from_bytes(payload[-10:-8], "little") > RDB_VERSION:
        return False
    return crc64(payload[:-8]) == int.from_bytes(payload[-8:], "little")


class Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise BadFormat("truncated")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def length(self) -> tuple[int, bool]:
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return int.from_bytes(self.take(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.take(8), "big"), False
        raise BadFormat("length")

    def count(self) -> int:
        n, encoded = self.length()
        if encoded or n > MAX_ELEMENTS or n > len(self.data):     # each element takes a byte at least
            raise BadFormat("count")
        return n

    def string(self) -> bytes:
        n, encoded = self.length()
        if not encoded:
            return self.take(n)
        if n in (0, 1, 2):
            size = 1 << n
            return b"%d" % int.from_bytes(self.take(size), "little", signed=True)
        if n == 3:
            compressed, _ = self.length()
            original, _ = self.length()
            if original > 512 * 1024 * 1024 or compressed > len(self.data):
                raise BadFormat("lzf")
            try:
                return lzf_decompress(self.take(compressed), original)
            except ValueError:
                raise BadFormat("lzf") from None
        raise BadFormat("string encoding")

    def old_double(self) -> float:
        size = self.byte()
        if size == 253:
            return math.nan
        if size == 254:
            return math.inf
        if size == 255:
            return -math.inf
        try:
            return float(self.take(size))
        except ValueError:
            raise BadFormat("double") from None


def listpack_entries(data: bytes) -> list[bytes]:
    """The entries of a listpack, integers as their decimal strings."""
    if len(data) < 7 or int.from_bytes(data[:4], "little") != len(data) or data[-1] != 0xFF:
        raise BadFormat("listpack")
    out: list[bytes] = []
    pos, end = 6, len(data) - 1
    while pos < end:
        first = data[pos]
        if first < 0x80:                                  # 7-bit uint
            value, size = b"%d" % first, 1
        elif first < 0xC0:                                # 6-bit string
            n = first & 0x3F
            value, size = data[pos + 1:pos + 1 + n], 1 + n
        elif first < 0xE0:                                # 13-bit int
            raw = ((first & 0x1F) << 8) | data[pos + 1]
            value, size = b"%d" % (raw - (1 << 13) if raw >= 1 << 12 else raw), 2
        elif first < 0xF0:                                # 12-bit string
            n = ((first & 0x0F) << 8) | data[pos + 1]
            value, size = data[pos + 2:pos + 2 + n], 2 + n
        elif first == 0xF0:                               # 32-bit string
            n = int.from_bytes(data[pos + 1:pos + 5], "little")
            value, size = data[pos + 5:pos + 5 + n], 5 + n
        elif first in (0xF1, 0xF2, 0xF3, 0xF4):           # 16/24/32/64-bit ints
            width = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}[first]
            value = b"%d" % int.from_bytes(data[pos + 1:pos + 1 + width], "little", signed=True)
            size = 1 + width
        else:
            raise BadFormat("listpack entry")
        if pos + size > end:
            raise BadFormat("listpack entry")
        out.append(value)
        pos += size
        pos += 1 if size <= 127 else 2 if size < 16383 else 3 if size < 2097151 else 4 if size < 268435455 else 5
    if pos != end:
        raise BadFormat("listpack end")
    return out


def intset_members(data: bytes) -> list[bytes]:
    if len(data) < 8:
        raise BadFormat("intset")
    width = int.from_bytes(data[:4], "little")
    count = int.from_bytes(data[4:8], "little")
    if width not in (2, 4, 8) or len(data) != 8 + width * count:
        raise BadFormat("intset")
    return [b"%d" % int.from_bytes(data[8 + i * width:8 + (i + 1) * width], "little", signed=True)
            for i in range(count)]


def load(payload: bytes) -> Any:
    """The value in a verified payload: bytes, List, Set, Hash or ZSet; BadFormat otherwise."""
    from .types.hash import Hash
    from .types.list import List
    from .types.set import Set
    from .types.zset import ZSet
    reader = Reader(payload[:-10])
    kind = reader.byte()
    if kind == STRING:
        return reader.string()
    if kind == LIST:
        return List([reader.string() for _ in range(reader.count())])
    if kind == LIST_QUICKLIST_2:
        elements: list[bytes] = []
        for _ in range(reader.count()):
            container, _ = reader.length()
            node = reader.string()
            if container == QUICKLIST_PLAIN:
                elements.append(node)
            elif container == QUICKLIST_PACKED:
                entries = listpack_entries(node)
                if not entries:
                    raise BadFormat("empty quicklist node")
                elements += entries
            else:
                raise BadFormat("quicklist container")
        if not elements:
            raise BadFormat("empty list")
        return List(elements)
    if kind == SET:
        members = [reader.string() for _ in range(reader.count())]
        if not members or len(set(members)) != len(members):
            raise BadFormat("set")
        return Set(members)
    if kind == SET_INTSET:
        members = intset_members(reader.string())
        if not members or len(set(members)) != len(members):
            raise BadFormat("intset")
        return Set(members)
    if kind in (HASH, HASH_LISTPACK):
        if kind == HASH:
            flat = []
            for _ in range(reader.count()):
                flat += [reader.string(), reader.string()]
        else:
            flat = listpack_entries(reader.string())
        if not flat or len(flat) % 2:
            raise BadFormat("hash")
        value = Hash()
        for i in range(0, len(flat), 2):
            if not value.set(flat[i], flat[i + 1]):
                raise BadFormat("duplicate field")
        return value
    if kind in (ZSET, ZSET_2, ZSET_LISTPACK):
        pairs: list[tuple[bytes, float]] = []
        if kind == ZSET_LISTPACK:
            flat = listpack_entries(reader.string())
            if len(flat) % 2:
                raise BadFormat("zset")
            for i in range(0, len(flat), 2):
                try:
                    pairs.append((flat[i], float(flat[i + 1])))
                except ValueError:
                    raise BadFormat("zset score") from None
        else:
            for _ in range(reader.count()):
                member = reader.string()
                score = struct.unpack("<d", reader.take(8))[0] if kind == ZSET_2 else reader.old_double()
                pairs.append((member, score))
        if not pairs or any(math.isnan(score) for _, score in pairs):
            raise BadFormat("zset")
        value = ZSet()
        for member, score in pairs:
            if value.add(member, score) is not None:
                raise BadFormat("duplicate member")
        return value
    raise BadFormat(f"unsupported type {kind}")
