"""mesh.keyslot against Redis Cluster's rule, on both of its paths (a byte loop for short keys
when compiled, `find` otherwise): the slot of the text inside the first {...}, if non-empty."""
from __future__ import annotations

from binascii import crc_hqx

import pytest

import mesh.keyslot as keyslot_module
from mesh.keyslot import SCAN_AT_MOST, keyslot


def redis_rule(key: bytes) -> int:
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        if end != -1 and end != start + 1:
            key = key[start + 1:end]
    return crc_hqx(key, 0) & 0x3FFF


SHAPES = [b"", b"{", b"}", b"{}", b"}{", b"{}x", b"x{}", b"{a}", b"a{b}c", b"a{b}c{d}e", b"a{{b}}", b"a{b",
          b"{}{a}", b"a}b{c}", b"key:{06S}:__rand_int__", b"{user1000}.following", b"\x00{\xff}\x7b"]


@pytest.mark.parametrize("pad", [0, SCAN_AT_MOST - 8, SCAN_AT_MOST, SCAN_AT_MOST + 1, 1000])
@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_of_tag_at_every_length(shape, pad):
    for key in (b"p" * pad + shape, shape + b"p" * pad):
        assert keyslot(key) == redis_rule(key), key


def test_known_slots():
    # CLUSTER KEYSLOT on redis-server
    assert keyslot(b"foo") == 12182
    assert keyslot(b"{user1000}.following") == keyslot(b"{user1000}.followers") == keyslot(b"user1000")


@pytest.mark.parametrize("native", [True, False])
def test_both_paths_in_whichever_form_runs(monkeypatch, native):
    # (compiled, NATIVE is a constant folded in: this covers the interpreted form's other path)
    monkeypatch.setattr(keyslot_module, "NATIVE", native)
    for shape in SHAPES:
        for key in (shape, b"p" * 30 + shape, shape + b"p" * 30):
            assert keyslot(key) == redis_rule(key), key
