"""Bit arithmetic on strings (hypercache/bits.py) against a plain bit-by-bit model."""
from __future__ import annotations

import random

import pytest

from hypercache import bits


def model_bits(value: bytes) -> list[int]:
    return [(byte >> (7 - i)) & 1 for byte in value for i in range(8)]


@pytest.mark.parametrize("seed", range(20))
def test_count_and_first_bit_match_the_model(seed: int) -> None:
    rng = random.Random(seed)
    value = bytes(rng.choice((0, 0xFF, rng.randrange(256))) for _ in range(rng.randrange(1, 40)))
    flat = model_bits(value)
    for _ in range(50):
        first = rng.randrange(len(flat))
        last = rng.randrange(first, len(flat))
        assert bits.count_bits(value, first, last) == sum(flat[first:last + 1])
        for bit in (0, 1):
            expected = next((i for i in range(first, last + 1) if flat[i] == bit), -1)
            assert bits.first_bit(value, bit, first, last) == expected
    assert bits.count_bytes(value, 0, len(value) - 1) == sum(flat)
    assert [bits.get_bit(value, i) for i in range(len(flat) + 9)] == flat + [0] * 9


def test_bitop_pads_with_zeros_to_the_longest() -> None:
    assert bits.bitop("and", [b"\xff\x0f", b"\x0f"]) == b"\x0f\x00"
    assert bits.bitop("or", [b"\xf0", b"\x0f\x01"]) == b"\xff\x01"
    assert bits.bitop("xor", [b"\xff", b"\x0f", b""]) == b"\xf0"
    assert bits.bitop("not", [b"\x0f\xf0"]) == b"\xf0\x0f"
    assert bits.bitop("or", [b"", b""]) == b""


@pytest.mark.parametrize("raw, parsed", [
    (b"i8", bits.FieldType(True, 8)), (b"u1", bits.FieldType(False, 1)), (b"i64", bits.FieldType(True, 64)),
    (b"u63", bits.FieldType(False, 63)), (b"u64", None), (b"i65", None), (b"i0", None), (b"x8", None),
    (b"i", None), (b"i-1", None),
])
def test_field_types(raw: bytes, parsed) -> None:
    assert bits.parse_type(raw) == parsed


def test_fields_round_trip_at_any_offset() -> None:
    rng = random.Random(7)
    for _ in range(300):
        kind = bits.FieldType(rng.random() < 0.5, rng.randrange(1, 64))
        low, high = bits.limits(kind)
        number = rng.randrange(low, high + 1)
        offset = rng.randrange(0, 40)
        buf = bytearray(rng.randbytes(16))
        before = model_bits(bytes(buf))
        bits.write_field(buf, offset, kind, number)
        assert bits.read_field(bytes(buf), offset, kind) == number
        after = model_bits(bytes(buf))
        # nothing outside the field changed
        assert before[:offset] == after[:offset]
        assert before[offset + kind.bits:] == after[offset + kind.bits:]


def test_overflow_policies() -> None:
    i8, u8 = bits.FieldType(True, 8), bits.FieldType(False, 8)
    assert bits.overflow(200, i8, "wrap") == -56 and bits.overflow(200, i8, "sat") == 127
    assert bits.overflow(-200, i8, "sat") == -128 and bits.overflow(200, i8, "fail") is None
    assert bits.overflow(300, u8, "wrap") == 44 and bits.overflow(-1, u8, "sat") == 0
    assert bits.overflow(100, i8, "fail") == 100
