"""HyperLogLog as Redis keeps it: MurmurHash64A patterns, 16384 six-bit registers, its estimator.

Pure functions on bytes. A value is Redis's string layout: "HYLL", an
encoding byte (0 dense, 1 sparse), 3 unused bytes, the cached cardinality
(8 bytes little-endian, its top bit set when stale), then the registers:
dense (12288 bytes, 6 bits each, least significant bits first) or sparse
(Redis's ZERO/XZERO/VAL opcodes). Both encodings are read; hypercache
writes the dense one (Redis starts sparse and turns dense past 3000 bytes),
so the counts match Redis's for the same input while a small HLL's GET does not.

Whole-register work (decode, encode, histogram) runs as C-level byte
operations: three interleaved byte planes, translate tables, and integer
addition where the bit fields cannot carry.
"""
from __future__ import annotations

import math
from typing import Callable, Final

# (Final: compiled, inlined instead of looked up in the module's dict at every use)
P: Final = 14
REGISTERS: Final = 1 << P                   # 16384
Q: Final = 64 - P
HEADER: Final = 16
DENSE_SIZE: Final = HEADER + REGISTERS * 6 // 8      # 12304
DENSE: Final = 0
SPARSE: Final = 1
MAGIC: Final = b"HYLL"
ALPHA_INF: Final = 0.721347520444481703680
MASK64: Final = (1 << 64) - 1
SEED: Final = 0xADC83B19


class InvalidHll(ValueError):
    """Not an HLL string (WRONGTYPE) or a corrupted one (INVALIDOBJ)."""


def murmur64a(data: bytes, seed: int = SEED) -> int:
    m, r = 0xC6A4A7935BD1E995, 47
    length = len(data)
    h = (seed ^ (length * m)) & MASK64
    whole = length - (length & 7)
    for i in range(0, whole, 8):
        k = int.from_bytes(data[i:i + 8], "little")
        k = (k * m) & MASK64
        k ^= k >> r
        k = (k * m) & MASK64
        h ^= k
        h = (h * m) & MASK64
    tail = length & 7
    if tail:
        h ^= int.from_bytes(data[whole:], "little")
        h = (h * m) & MASK64
    h ^= h >> r
    h = (h * m) & MASK64
    h ^= h >> r
    return h


def pattern(element: bytes) -> tuple[int, int]:
    """(register index, run length of zeros + 1) of an element (hllPatLen)."""
    h = murmur64a(element)
    index = h & (REGISTERS - 1)
    rest = (h >> P) | (1 << Q)
    return index, (rest & -rest).bit_length()


# -- dense registers <-> bytes --------------------------------------------------------------

def _table(f: Callable[[int], int]) -> bytes:
    return bytes(f(i) & 0xFF for i in range(256))


_R0 = _table(lambda b: b & 63)
_R1_FROM_B0 = _table(lambda b: b >> 6)
_R1_FROM_B1 = _table(lambda b: (b & 15) << 2)
_R2_FROM_B1 = _table(lambda b: b >> 4)
_R2_FROM_B2 = _table(lambda b: (b & 3) << 4)
_R3 = _table(lambda b: b >> 2)
_B0_FROM_R0 = _table(lambda r: r & 63)
_B0_FROM_R1 = _table(lambda r: (r << 6) & 0xFF)
_B1_FROM_R1 = _table(lambda r: (r >> 2) & 15)
_B1_FROM_R2 = _table(lambda r: (r << 4) & 0xF0)
_B2_FROM_R2 = _table(lambda r: (r >> 4) & 3)
_B2_FROM_R3 = _table(lambda r: (r << 2) & 0xFC)


def _add(a: bytes, b: bytes) -> bytes:
    """Byte-wise a + b where no byte sum exceeds 255 (disjoint bit fields): one integer addition."""
    return (int.from_bytes(a, "little") + int.from_bytes(b, "little")).to_bytes(len(a), "little")


def dense_to_registers(dense: bytes) -> bytearray:
    """16384 register values from the 12288 dense bytes (every 3 bytes hold 4 registers)."""
    b0, b1, b2 = dense[0::3], dense[1::3], dense[2::3]
    out = bytearray(REGISTERS)
    out[0::4] = b0.translate(_R0)
    out[1::4] = _add(b0.translate(_R1_FROM_B0), b1.translate(_R1_FROM_B1))
    out[2::4] = _add(b1.translate(_R2_FROM_B1), b2.translate(_R2_FROM_B2))
    out[3::4] = b2.translate(_R3)
    return out


def registers_to_dense(registers: bytes | bytearray) -> bytes:
    r0, r1, r2, r3 = (bytes(registers[i::4]) for i in range(4))
    out = bytearray(REGISTERS * 6 // 8)
    out[0::3] = _add(r0.translate(_B0_FROM_R0), r1.translate(_B0_FROM_R1))
    out[1::3] = _add(r1.translate(_B1_FROM_R1), r2.translate(_B1_FROM_R2))
    out[2::3] = _add(r2.translate(_B2_FROM_R2), r3.translate(_B2_FROM_R3))
    return bytes(out)


def get_register(dense: bytes | bytearray | memoryview, index: int) -> int:
    """One register straight from the dense bytes (HLL_DENSE_GET_REGISTER)."""
    byte, shift = index * 6 >> 3, index * 6 & 7
    b0 = dense[byte]
    b1 = dense[byte + 1] if byte + 1 < len(dense) else 0
    return ((b0 >> shift) | (b1 << (8 - shift))) & 63


def set_register(dense: bytearray, index: int, value: int) -> None:
    byte, shift = index * 6 >> 3, index * 6 & 7
    dense[byte] = (dense[byte] & ~(63 << shift) & 0xFF) | ((value << shift) & 0xFF)
    if byte + 1 < len(dense):
        dense[byte + 1] = (dense[byte + 1] & ~(63 >> (8 - shift)) & 0xFF) | (value >> (8 - shift))


# -- values ----------------------------------------------------------------------------------

def empty() -> bytearray:
    """A new dense HLL (cached cardinality 0, valid, as Redis's new object has)."""
    out = bytearray(DENSE_SIZE)
    out[0:4] = MAGIC
    out[4] = DENSE
    return out


def check(value: bytes) -> int:
    """The encoding of a valid HLL string; InvalidHll otherwise (isHLLObjectOrReply)."""
    if len(value) < HEADER or value[:4] != MAGIC or value[4] > SPARSE:
        raise InvalidHll("not an HLL")
    if value[4] == DENSE and len(value) != DENSE_SIZE:
        raise InvalidHll("not an HLL")
    return value[4]


def sparse_to_registers(sparse: bytes) -> bytearray:
    """Decode Redis's sparse opcodes; InvalidHll when they do not cover exactly 16384 registers."""
    out = bytearray(REGISTERS)
    index, pos, end = 0, 0, len(sparse)
    while pos < end:
        op = sparse[pos]
        if op & 0x80:                         # VAL 1vvvvvxx
            value, run = ((op >> 2) & 0x1F) + 1, (op & 3) + 1
            if index + run > REGISTERS:
                raise InvalidHll("corrupted")
            out[index:index + run] = bytes([value]) * run
            index += run
            pos += 1
        elif op & 0x40:                       # XZERO 01xxxxxx yyyyyyyy
            if pos + 1 >= end:
                raise InvalidHll("corrupted")
            index += (((op & 0x3F) << 8) | sparse[pos + 1]) + 1
            pos += 2
        else:                                 # ZERO 00xxxxxx
            index += (op & 0x3F) + 1
            pos += 1
    if index != REGISTERS:
        raise InvalidHll("corrupted")
    return out


def registers_of(value: bytes) -> bytearray:
    if check(value) == DENSE:
        return dense_to_registers(value[HEADER:])
    return sparse_to_registers(value[HEADER:])


def as_dense(value: bytes) -> bytearray:
    """A mutable dense copy of an HLL value (sparse ones converted; the cache flag kept)."""
    if check(value) == DENSE:
        return bytearray(value)
    out = bytearray(value[:HEADER]) + registers_to_dense(sparse_to_registers(value[HEADER:]))
    out[4] = DENSE
    return out


def _register_in_value(value: bytes | bytearray, index: int) -> int:
    """get_register() of the registers after a value's header, read in place (no view: compiled,
    indexing bytes is native, a memoryview's a Python call)."""
    byte, shift = HEADER + (index * 6 >> 3), index * 6 & 7
    b0 = value[byte]
    b1 = value[byte + 1] if byte + 1 < len(value) else 0
    return ((b0 >> shift) | (b1 << (8 - shift))) & 63


def growth(value: bytes, elements: list[bytes]) -> list[tuple[int, int]]:
    """(register, run) of the elements that would raise a register of a dense HLL `value`,
    read in place: a PFADD that changes nothing copies nothing (most of them, once warm)."""
    found = []
    for element in elements:
        index, run = pattern(element)
        if run > _register_in_value(value, index):
            found.append((index, run))
    return found


def raise_registers(dense: bytearray, found: list[tuple[int, int]]) -> None:
    """Apply growth()'s findings to a dense copy (several may name one register: the largest wins)."""
    for index, run in found:
        if run > _register_in_value(dense, index):
            _set_in_value(dense, index, run)


def add(dense: bytearray, element: bytes) -> bool:
    """Count `element` into a dense HLL; True when a register grew."""
    index, run = pattern(element)
    if run > _register_in_value(dense, index):
        _set_in_value(dense, index, run)
        return True
    return False


def _set_in_value(dense: bytearray, index: int, value: int) -> None:
    byte, shift = HEADER + (index * 6 >> 3), index * 6 & 7
    dense[byte] = (dense[byte] & ~(63 << shift) & 0xFF) | ((value << shift) & 0xFF)
    if byte + 1 < len(dense):
        dense[byte + 1] = (dense[byte + 1] & ~(63 >> (8 - shift)) & 0xFF) | (value >> (8 - shift))


def invalidate(dense: bytearray) -> None:
    dense[15] |= 0x80


def cached(value: bytes) -> int | None:
    if value[15] & 0x80:
        return None
    return int.from_bytes(value[8:16], "little")


def with_cache(dense: bytearray, card: int) -> None:
    dense[8:16] = card.to_bytes(8, "little")


_HIGH = int.from_bytes(b"\x80" * REGISTERS, "little")
_LOW7 = int.from_bytes(b"\x01" * REGISTERS, "little")


def merge(into: bytearray, registers: bytes | bytearray) -> None:
    """Register-wise maximum, in place: byte lanes of one big integer (values < 64, so no borrow
    crosses a lane), where (a | 0x80) - b keeps a lane's top bit exactly when a >= b."""
    a = int.from_bytes(into, "little")
    b = int.from_bytes(registers, "little")
    keep_a = (((a | _HIGH) - b) & _HIGH) >> 7          # 1 in the lanes where a >= b
    mask = keep_a * 0xFF
    into[:] = ((a & mask) | (b & (mask ^ (_LOW7 * 0xFF)))).to_bytes(REGISTERS, "little")


# -- the estimator (Otmar Ertl's, as Redis 7 computes it) -----------------------------------

def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if previous == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1 - x) ** 2 * y
        if previous == z:
            return z / 3


def count(registers: bytes | bytearray) -> int:
    m = float(REGISTERS)
    histogram = [registers.count(bytes([value])) for value in range(Q + 2)]
    z = m * _tau((m - histogram[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += histogram[j]
        z *= 0.5
    z += m * _sigma(histogram[0] / m)
    estimate = ALPHA_INF * m * m / z
    return int(math.floor(estimate + 0.5))      # llroundl: halves away from zero
