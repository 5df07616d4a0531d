"""Bit-level reads and writes of string values, as Redis's bitops.c defines them: pure functions on bytes.

Offsets count from the most significant bit of the first byte (bit 0 is
0x80 of byte 0). Nothing here touches the store: the commands
(commands/bitmaps.py) read a value, call these, and write what they return.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import popcount

# popcount of every byte value
_POP = bytes(bin(i).count("1") for i in range(256))
# big values are read a chunk at a time: no copy of a 512 MB bitmap, C speed per chunk
CHUNK = 1 << 20


def get_bit(value: bytes, offset: int) -> int:
    index = offset >> 3
    if index >= len(value):
        return 0
    return (value[index] >> (7 - (offset & 7))) & 1


def with_bit(byte: int, offset: int, bit: int) -> int:
    """`byte` with bit `offset & 7` (from the left) set to `bit`."""
    mask = 1 << (7 - (offset & 7))
    return (byte | mask) if bit else (byte & ~mask & 0xFF)


def normalize_range(start: int, end: int, length: int) -> tuple[int, int] | None:
    """Redis's negative-index clamping of an inclusive range over `length` units; None when empty."""
    if start < 0:
        start += length
    if end < 0:
        end += length
    if start < 0:
        start = 0
    if end < 0:
        end = 0
    if end >= length:
        end = length - 1
    if start > end or length == 0:
        return None
    return start, end


def count_bytes(value: bytes, start: int, end: int) -> int:
    """Set bits in value[start:end+1]."""
    return popcount.count(value, start, end + 1)


def count_bits(value: bytes, first_bit: int, last_bit: int) -> int:
    """Set bits from bit `first_bit` to bit `last_bit` inclusive."""
    first_byte, last_byte = first_bit >> 3, last_bit >> 3
    total = count_bytes(value, first_byte, last_byte)
    # take off the bits of the edge bytes outside the range
    head = first_bit & 7
    if head:
        total -= _POP[value[first_byte] >> (8 - head)]
    tail = 7 - (last_bit & 7)
    if tail:
        total -= _POP[value[last_byte] & ((1 << tail) - 1)]
    return total


def first_bit(value: bytes, bit: int, first: int, last: int) -> int:
    """The first bit position in [first, last] (bits) holding `bit`, or -1."""
    position = first
    while position <= last and position & 7:
        if get_bit(value, position) == bit:
            return position
        position += 1
    # whole bytes, a chunk at a time: chunks without the bit are skipped at memchr speed,
    # and in the chunk that has it the position comes from the integer's bit length
    end_byte = min((last + 1) >> 3, len(value))
    filler = b"\xff" if bit == 0 else b"\x00"
    view = memoryview(value)
    byte = position >> 3
    while byte < end_byte:
        stop = min(end_byte, byte + CHUNK)
        if value.count(filler, byte, stop) != stop - byte:
            number = int.from_bytes(view[byte:stop], "big")
            width = (stop - byte) * 8
            if bit == 0:
                number ^= (1 << width) - 1
            return byte * 8 + width - number.bit_length()
        byte = stop
    position = max(position, end_byte * 8)
    while position <= last:
        if get_bit(value, position) == bit:
            return position
        position += 1
    return -1


def bitop(op: str, sources: list[bytes]) -> bytes:
    """AND / OR / XOR / NOT over sources (missing keys are empty); the result has the longest length."""
    length = max((len(s) for s in sources), default=0)
    if op == "not":
        return bytes(~b & 0xFF for b in sources[0])
    padded = [int.from_bytes(s.ljust(length, b"\x00"), "big") for s in sources]
    result = padded[0]
    for other in padded[1:]:
        if op == "and":
            result &= other
        elif op == "or":
            result |= other
        else:
            result ^= other
    return result.to_bytes(length, "big") if length else b""


# -- BITFIELD ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FieldType:
    signed: bool
    bits: int


def parse_type(raw: bytes) -> FieldType | None:
    """`i1`..`i64` or `u1`..`u63` (Redis's getBitfieldTypeFromArgument); None if invalid."""
    if len(raw) < 2 or raw[:1] not in (b"i", b"u", b"I", b"U") or not raw[1:].isdigit():
        return None
    signed = raw[:1] in (b"i", b"I")
    bits = int(raw[1:])
    if bits < 1 or (signed and bits > 64) or (not signed and bits > 63):
        return None
    return FieldType(signed, bits)


def read_field(value: bytes, offset: int, kind: FieldType) -> int:
    raw = 0
    for i in range(kind.bits):
        raw = (raw << 1) | get_bit(value, offset + i)
    if kind.signed and raw >> (kind.bits - 1):
        raw -= 1 << kind.bits
    return raw


def write_field(value: bytearray, offset: int, kind: FieldType, number: int) -> None:
    """Write `number` (already in range, two's complement for signed) at `offset` of a big-enough value."""
    raw = number & ((1 << kind.bits) - 1)
    for i in range(kind.bits):
        bit = (raw >> (kind.bits - 1 - i)) & 1
        position = offset + i
        index = position >> 3
        value[index] = with_bit(value[index], position, bit)


def limits(kind: FieldType) -> tuple[int, int]:
    if kind.signed:
        return -(1 << (kind.bits - 1)), (1 << (kind.bits - 1)) - 1
    return 0, (1 << kind.bits) - 1


def overflow(number: int, kind: FieldType, policy: str) -> int | None:
    """`number` brought into the type's range by WRAP, SAT or FAIL (None: the write fails)."""
    low, high = limits(kind)
    if low <= number <= high:
        return number
    if policy == "fail":
        return None
    if policy == "sat":
        return high if number > high else low
    span = 1 << kind.bits
    wrapped = number % span
    if kind.signed and wrapped > high:
        wrapped -= span
    return wrapped
