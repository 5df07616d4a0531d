"""The list value keeps elements in their RESP wire form: encoding, decoding, and every mutation.

The wire form must be exactly what the reply encoder writes for the payload as
a bulk string (in RESP2 and RESP3), for any payload: empty, binary, holding
CR/LF or something that looks like a header, and on both sides of the cached
header table's boundary. Replies built from these elements are checked through
the real Dispatcher against the generic encoder's output for the same values.
"""
from __future__ import annotations

import hiredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypercache.reply import NULL_ARRAY, encode
from hypercache.types import List
from hypercache.types import list as list_module
from hypercache.types.list import BASE_BYTES, ENTRY_BYTES, HEADERS_CACHED

from tests.unit.typeharness import Harness

TRICKY = [
    b"", b"a", b"\r\n", b"\n", b"\r", b"a\r\nb", b"\r\n\r\n", b"$3\r\nxyz\r\n", b"*2\r\n", b"-ERR x\r\n",
    bytes(range(256)), b"\x00" * 5,
    b"x" * (HEADERS_CACHED - 1), b"x" * HEADERS_CACHED, b"x" * (HEADERS_CACHED + 1), b"\r\n" * 50_000,
]


def bulk(value: bytes, protocol: int = 2) -> bytes:
    out: list[bytes] = []
    encode(value, protocol, out)
    return b"".join(out)


def recount(lst: List) -> int:
    return BASE_BYTES + sum(len(e) + ENTRY_BYTES for e in lst.encoded)


@pytest.mark.parametrize("value", TRICKY, ids=lambda v: repr(v[:12]) + f"/{len(v)}")
def test_wire_form_is_the_bulk_reply_and_decodes_back(value: bytes) -> None:
    element = list_module.encode(value)
    assert element == bulk(value, 2) == bulk(value, 3) == b"$%d\r\n%s\r\n" % (len(value), value)
    assert list_module.payload(element) == value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2100))
def test_any_payload_round_trips(value: bytes) -> None:
    assert list_module.payload(list_module.encode(value)) == value
    assert list_module.encode(value) == bulk(value)


def test_pushes_encode_on_both_sides_of_the_header_cache() -> None:
    lst = List()
    lst.push_right([b"x" * (HEADERS_CACHED - 1), b"x" * HEADERS_CACHED])
    lst.push_left([b"", b"a\r\nb"])
    assert list(lst.encoded) == [list_module.encode(v) for v in (b"a\r\nb", b"", b"x" * (HEADERS_CACHED - 1),
                                                           b"x" * HEADERS_CACHED)]
    assert list(lst.values()) == [b"a\r\nb", b"", b"x" * (HEADERS_CACHED - 1), b"x" * HEADERS_CACHED]
    assert lst.nbytes == recount(lst)
    assert lst.pop_right() == b"$1024\r\n" + b"x" * 1024 + b"\r\n"
    assert lst.pop_left() == b"$4\r\na\r\nb\r\n"
    assert lst.nbytes == recount(lst) == List([b"", b"x" * (HEADERS_CACHED - 1)]).nbytes


def test_encoded_range_from_either_end_matches_slicing() -> None:
    values = [b"v%d" % i for i in range(9)] + [b"\r\n", b""]
    lst = List(values)
    for start in range(len(values)):
        for stop in range(start, len(values)):
            assert lst.encoded_range(start, stop) == b"".join(map(list_module.encode, values[start:stop + 1])), (start, stop)


def model_positions(values: list[bytes], target: bytes, rank: int, wanted: int, maxlen: int) -> list[int]:
    order = list(range(len(values))) if rank > 0 else list(range(len(values) - 1, -1, -1))
    if maxlen:
        order = order[:maxlen]
    hits = [i for i in order if values[i] == target][abs(rank) - 1:]
    return hits[:wanted] if wanted else hits


def test_positions_follow_rank_count_and_maxlen() -> None:
    values = [b"c", b"a", b"c", b"c\r\n", b"b", b"c", b"", b"c"]
    lst = List(values)
    for target in (b"c", b"c\r\n", b"", b"zz"):
        for rank in (-4, -2, -1, 1, 2, 5):
            for wanted in (0, 1, 2):
                for maxlen in (0, 1, 3, 8):
                    assert lst.positions(target, rank, wanted, maxlen) == \
                        model_positions(values, target, rank, wanted, maxlen), (target, rank, wanted, maxlen)


def test_remove_insert_set_trim_keep_nbytes_exact() -> None:
    lst = List([b"a", b"a\r\n", b"a", b"b", b"a"])
    assert lst.remove(b"a", -1) == 1
    assert list(lst.values()) == [b"a", b"a\r\n", b"a", b"b"]
    assert lst.remove(b"a", 0) == 2                   # the element holding CRLF is another value
    assert list(lst.values()) == [b"a\r\n", b"b"]
    assert lst.remove(b"zz", 0) == 0
    assert lst.nbytes == recount(lst)
    assert lst.insert(b"b", b"", after=True) and lst.insert(b"a\r\n", b"\r\n", after=False)
    assert not lst.insert(b"a", b"x", after=True)
    assert list(lst.values()) == [b"\r\n", b"a\r\n", b"b", b""]
    assert lst.nbytes == recount(lst)
    before = lst.nbytes
    delta = lst.set(3, b"x" * 10)                     # "$0" -> "$10": the header grows too
    assert delta == len(b"$10\r\n" + b"x" * 10) - len(b"$0\r\n") and lst.nbytes == before + delta == recount(lst)
    lst.trim(1, 2)
    assert list(lst.values()) == [b"a\r\n", b"b"] and lst.nbytes == recount(lst)
    copy = lst.copy()
    lst.clear()
    assert len(lst) == 0 and lst.nbytes == BASE_BYTES
    assert list(copy.values()) == [b"a\r\n", b"b"] and copy.nbytes == recount(copy)


def test_entry_bytes_counts_a_bytes_object_and_its_deque_slot() -> None:
    # the calibration's parts (see list.py): CPython's bytes header, 8 for the slot, rounding
    import sys
    assert sys.getsizeof(b"") + 8 <= list_module.ENTRY_BYTES <= sys.getsizeof(b"") + 8 + 15


# -- replies through the real Dispatcher, against the generic encoder ----------------------


def wire(value, protocol: int) -> bytes:
    out: list[bytes] = []
    encode(value, protocol, out)
    return b"".join(out)


@pytest.mark.parametrize("protocol", [2, 3])
def test_replies_carrying_elements_are_what_the_encoder_writes(protocol: int) -> None:
    h = Harness()
    c = h.session(protocol)
    values = TRICKY[:-1]
    if protocol == 3:
        h.raw(c, "HELLO", "3")
    assert h.raw(c, "RPUSH", "{l}a", *values) == wire(len(values), protocol)
    assert h.raw(c, "LRANGE", "{l}a", 0, -1) == wire(values, protocol)
    assert h.raw(c, "LRANGE", "{l}a", -3, -2) == wire(values[-3:-1], protocol)
    assert h.raw(c, "LRANGE", "{l}a", 5, 2) == wire([], protocol)
    assert h.raw(c, "LRANGE", "{l}none", 0, -1) == wire([], protocol)
    for index in (0, 2, 5, -1, 99):
        expected = values[index] if -len(values) <= index < len(values) else None
        assert h.raw(c, "LINDEX", "{l}a", index) == wire(expected, protocol)
    assert h.raw(c, "LPOS", "{l}a", b"\r\n") == wire(2, protocol)
    assert h.raw(c, "LPOS", "{l}a", b"") == wire(0, protocol)
    assert h.raw(c, "LPOP", "{l}a") == wire(values[0], protocol)
    assert h.raw(c, "RPOP", "{l}a", 2) == wire([values[-1], values[-2]], protocol)
    assert h.raw(c, "LMOVE", "{l}a", "{l}b", "LEFT", "RIGHT") == wire(values[1], protocol)
    assert h.raw(c, "LMPOP", 2, "{l}none", "{l}a", "LEFT", "COUNT", 3) == \
        wire([b"{l}a", values[2:5]], protocol)
    assert h.raw(c, "BLPOP", "{l}none", "{l}a", 0) == wire([b"{l}a", values[5]], protocol)
    assert h.raw(c, "BRPOP", "{l}a", 0) == wire([b"{l}a", values[-3]], protocol)
    assert h.raw(c, "BLMPOP", 0, 1, "{l}b", "RIGHT", "COUNT", 5) == wire([b"{l}b", [values[1]]], protocol)
    assert h.raw(c, "BLMOVE", "{l}a", "{l}b", "RIGHT", "LEFT", 0) == wire(values[-4], protocol)
    assert h.raw(c, "RPOPLPUSH", "{l}b", "{l}b") == wire(values[-4], protocol)
    assert h.raw(c, "LPOP", "{l}none") == wire(None, protocol)
    assert h.raw(c, "LPOP", "{l}none", 2) == wire(NULL_ARRAY, protocol)
    assert h.raw(c, "LMPOP", 1, "{l}none", "LEFT") == wire(NULL_ARRAY, protocol)
    assert h.ctx.store.used_memory == h.expected_memory()


def test_a_blocked_pop_is_served_the_pushed_element_in_wire_form() -> None:
    h = Harness()
    waiter, pusher = h.session(3), h.session()
    h.raw(waiter, "HELLO", "3")
    assert h.raw(waiter, "BLMPOP", 0, 1, "{q}a", "LEFT", "COUNT", 2) == b""
    h.call(pusher, "RPUSH", "{q}a", b"one\r\n", b"", b"three")
    assert h.pending(waiter) == wire([b"{q}a", [b"one\r\n", b""]], 3)
    assert h.raw(waiter, "BLPOP", "{q}b", 0) == b""
    h.call(pusher, "LMOVE", "{q}a", "{q}b", "LEFT", "LEFT")
    assert h.pending(waiter) == wire([b"{q}b", b"three"], 3)
    reader = hiredis.Reader()
    reader.feed(h.raw(pusher, "EXISTS", "{q}a", "{q}b"))
    assert reader.gets() == 0
    assert h.ctx.store.used_memory == h.expected_memory() == 0
