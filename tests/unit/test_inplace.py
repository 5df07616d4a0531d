"""hypercache/inplace.py: big values filled and patched in place agree with plain slicing."""
from __future__ import annotations

import sys

import pytest
from hypothesis import given, strategies as st

from hypercache import inplace
from hypercache.resp import BIG_BULK, RequestParser


def reference(old: bytes, offset: int, patch: bytes) -> bytes:
    padded = old + b"\0" * max(0, offset - len(old))
    return padded[:offset] + patch + padded[offset + len(patch):]


def test_the_layout_is_known_on_this_interpreter():
    assert inplace.INPLACE_OK


@given(st.binary(max_size=64), st.integers(0, 80), st.binary(min_size=1, max_size=16))
def test_a_patched_copy_is_setrange(old, offset, patch):
    old = bytes(bytearray(old))             # a value of its own, never a shared constant
    before = bytes(bytearray(old))
    assert inplace.patched(old, offset, patch, sole_owner=False) == reference(before, offset, patch)
    assert old == before                    # not the caller's value: someone else may hold it


def test_a_sole_owned_value_is_patched_in_place_and_its_hash_forgotten():
    value = bytes(bytearray(b"hello world"))
    hash(value)                             # cached in the object
    patched = inplace.patched(value, 6, b"WORLD", sole_owner=True)
    assert patched is value and value == b"hello WORLD"
    assert hash(value) == hash(b"hello WORLD")


def test_a_patch_past_the_end_is_a_new_value_even_for_a_sole_owner():
    value = bytes(bytearray(b"abc"))
    patched = inplace.patched(value, 5, b"xy", sole_owner=True)
    assert patched is not value and patched == b"abc\0\0xy" and value == b"abc"


def test_a_filling_takes_what_arrives_and_stops_at_its_length():
    filling = inplace.Filling(10)
    assert filling.take(b"xx0123", 2) == 4 and not filling.done
    assert filling.take(bytearray(b"456789ABC"), 0) == 6 and filling.done
    assert filling.finish() == b"0123456789"


@pytest.mark.parametrize("piece", [997, 65536, 3 * 65537, 10**9])
def test_a_big_bulk_read_in_pieces_is_the_same_argument(piece):
    value = bytes(range(256)) * (BIG_BULK // 256 + 3)
    request = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n" % (len(value), value)
    parser = RequestParser()
    out = []
    for start in range(0, len(request), piece):
        out += parser.feed(request[start:start + piece])
        assert parser.buffered <= len(value) + 1024
    assert parser.error is None
    assert out == [[b"SET", b"k", value], [b"PING"]]
    refs = sys.getrefcount(out[0][2])      # (outside the assert: pytest's rewriting holds a reference)
    assert refs == 2        # the list's and getrefcount's: nobody else, so SETRANGE may patch it in place


def test_inside_a_request_of_many_arguments_the_connection_reads_less():
    from hypercache.resp import MANY_ARGS, MANY_ARGS_READ_SIZE, READ_SIZE
    parser = RequestParser()
    assert parser.read_size == READ_SIZE
    parser.feed(b"*%d\r\n$4\r\nSADD\r\n" % (MANY_ARGS + 1))
    assert parser.read_size == MANY_ARGS_READ_SIZE
    out = parser.feed(b"$1\r\nx\r\n" * MANY_ARGS)
    assert len(out) == 1 and len(out[0]) == MANY_ARGS + 1 and parser.read_size == READ_SIZE
