"""The HyperLogLog core (hypercache/hyperloglog.py) fed values."""
from __future__ import annotations

import random

import pytest

from hypercache import hyperloglog as hll


def test_dense_packing_round_trips_and_matches_the_register_macros() -> None:
    rng = random.Random(3)
    registers = bytearray(rng.randrange(64) for _ in range(hll.REGISTERS))
    dense = hll.registers_to_dense(registers)
    assert len(dense) == hll.DENSE_SIZE - hll.HEADER
    assert hll.dense_to_registers(dense) == registers
    assert [hll.get_register(dense, i) for i in range(hll.REGISTERS)] == list(registers)
    writable = bytearray(dense)
    for index in rng.sample(range(hll.REGISTERS), 500):
        value = rng.randrange(64)
        hll.set_register(writable, index, value)
        registers[index] = value
    assert hll.dense_to_registers(bytes(writable)) == registers


def test_empty_and_sparse_forms() -> None:
    value = bytes(hll.empty())
    assert hll.check(value) == hll.DENSE and hll.cached(value) == 0
    assert hll.count(hll.registers_of(value)) == 0
    # Redis's new HLL: sparse, one XZERO covering all 16384 registers
    sparse = b"HYLL\x01" + bytes(11) + b"\x7f\xff"
    assert hll.registers_of(sparse) == bytearray(hll.REGISTERS)
    # VAL(3) x2 then the rest as XZERO
    grown = b"HYLL\x01" + bytes(11) + bytes([0x80 | (2 << 2) | 1]) + bytes([0x40 | ((16382 - 1) >> 8), (16382 - 1) & 0xFF])
    registers = hll.registers_of(grown)
    assert registers[:3] == b"\x03\x03\x00" and sum(registers) == 6
    for bad in (b"HYLX" + bytes(12), b"HYLL\x02" + bytes(11), b"HYLL\x00" + bytes(20), b"HY"):
        with pytest.raises(hll.InvalidHll):
            hll.check(bad)
    with pytest.raises(hll.InvalidHll):
        hll.registers_of(b"HYLL\x01" + bytes(11) + b"\x7f\xff\x00")      # one register too many


def test_counts_grow_with_the_set_and_stay_within_two_percent() -> None:
    dense = hll.empty()
    changed = sum(hll.add(dense, b"k%d" % i) for i in range(20000))
    assert 0 < changed <= 20000
    estimate = hll.count(hll.registers_of(bytes(dense)))
    assert abs(estimate - 20000) < 400
    assert not hll.add(dense, b"k1")            # already counted: no register grows


def test_pattern_runs_are_between_1_and_51() -> None:
    runs = [hll.pattern(b"%d" % i)[1] for i in range(5000)]
    assert min(runs) == 1 and max(runs) <= hll.Q + 1
    assert all(0 <= hll.pattern(b"%d" % i)[0] < hll.REGISTERS for i in range(100))


def test_merge_is_the_register_wise_maximum() -> None:
    rng = random.Random(9)
    for _ in range(30):
        into = bytearray(rng.choice((0, 63, rng.randrange(64))) for _ in range(hll.REGISTERS))
        other = bytes(rng.choice((0, 63, rng.randrange(64))) for _ in range(hll.REGISTERS))
        expected = bytearray(max(x, y) for x, y in zip(into, other))
        hll.merge(into, other)
        assert into == expected
