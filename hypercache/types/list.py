"""The list value: a deque of elements kept in their wire form, O(1) at both ends.

Each element is stored as the bulk string a reply carries, `$<len>\\r\\n<payload>\\r\\n`
(the same bytes in RESP2 and RESP3), so LRANGE, LINDEX and the pops reply by
joining stored bytes instead of encoding every element again: LRANGE of 100
elements costs a join (~1 us) instead of an encoder call (~6 us). A push encodes
each element once. Equal payloads have equal encodings, so searches (LPOS, LREM,
LINSERT) compare encodings. What needs the payload itself asks for `values()` or
`payload()`.
"""
from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Final, Iterable, Iterator, Sequence

from ..pulse import EVERY, beat
from ..reply import BULK_HEADERS as HEADERS
from ..reply import BULK_HEADERS_CACHED as HEADERS_CACHED
from ..reply import CRLF

BASE_BYTES: Final = 640          # the object and the deque with its first block
# Per element: a bytes object's header (33), its deque slot (8, blocks of 64 included)
# and pymalloc's 16-byte rounding (7 on average). Measured against RSS growth with
# 1M-element lists (3, 10, 1..64, 100 bytes) and 100k-element ones (1000, 2000 bytes):
# nbytes / RSS between 0.91 (10-byte payloads, rounded up the most) and 1.03.
ENTRY_BYTES: Final = 48


def encode(payload: bytes) -> bytes:
    """The wire form of an element: `$<len>\\r\\n<payload>\\r\\n`."""
    size = len(payload)
    if size < HEADERS_CACHED:
        return HEADERS[size] + payload + CRLF
    return b"$%d\r\n%s\r\n" % (size, payload)


def payload(encoded: bytes) -> bytes:
    """The payload of a wire-form element (which may itself hold CR/LF: only the header's line end counts)."""
    return encoded[encoded.index(b"\n") + 1:-2]


class List:
    __slots__ = ("encoded", "nbytes")
    type_name = b"list"
    encoding = b"quicklist"     # Redis 7.0 encodes every list as a quicklist

    def __init__(self, values: Iterable[bytes] = ()) -> None:
        self.encoded: deque[bytes] = deque(map(encode, values))   # elements in wire form
        self.nbytes = _size_of(self.encoded)

    def __len__(self) -> int:
        return len(self.encoded)

    def values(self) -> Iterator[bytes]:
        """The payloads, first to last (for the slow paths; replies use the wire forms)."""
        return map(payload, self.encoded)

    # -- both ends ---------------------------------------------------------------

    # push_left / push_right inline encode(): a call per element costs more than the encoding
    # (LPUSH/RPUSH are benchmarked)

    def push_left(self, values: Sequence[bytes]) -> None:
        encoded = self.encoded
        grow = 0
        for value in values:
            size = len(value)
            element = HEADERS[size] + value + b"\r\n" if size < HEADERS_CACHED else b"$%d\r\n%s\r\n" % (size, value)
            encoded.appendleft(element)
            grow += len(element)
        self.nbytes += grow + ENTRY_BYTES * len(values)

    def push_right(self, values: Sequence[bytes]) -> None:
        encoded = self.encoded
        grow = 0
        for value in values:
            size = len(value)
            element = HEADERS[size] + value + b"\r\n" if size < HEADERS_CACHED else b"$%d\r\n%s\r\n" % (size, value)
            encoded.append(element)
            grow += len(element)
        self.nbytes += grow + ENTRY_BYTES * len(values)

    def push_encoded(self, element: bytes, left: bool) -> None:
        """Push an element already in wire form (LMOVE moves it without re-encoding)."""
        if left:
            self.encoded.appendleft(element)
        else:
            self.encoded.append(element)
        self.nbytes += len(element) + ENTRY_BYTES

    def pop_left(self) -> bytes:
        """Remove the first element; its wire form."""
        element = self.encoded.popleft()
        self.nbytes -= len(element) + ENTRY_BYTES
        return element

    def pop_right(self) -> bytes:
        """Remove the last element; its wire form."""
        element = self.encoded.pop()
        self.nbytes -= len(element) + ENTRY_BYTES
        return element

    # -- by position -------------------------------------------------------------

    def encoded_range(self, start: int, stop: int) -> bytes:
        """The wire forms of elements start..stop (inclusive, in bounds), joined."""
        encoded = self.encoded
        size = len(encoded)
        if start <= size - 1 - stop:
            return b"".join(islice(encoded, start, stop + 1))
        # nearer the right end: walk from there (islice would walk from the left)
        chosen = list(islice(reversed(encoded), size - 1 - stop, size - start))
        chosen.reverse()
        return b"".join(chosen)

    def positions(self, value: bytes, rank: int, wanted: int, maxlen: int) -> list[int]:
        """LPOS: the indexes of elements equal to `value`.

        The first |rank|-1 matches are skipped (counting from the right when rank < 0);
        at most `wanted` indexes (0 = all), among the first `maxlen` elements scanned (0 = all).
        """
        target = encode(value)
        encoded = self.encoded
        size = len(encoded)
        scanned: Iterator[tuple[int, bytes]]
        if rank > 0:
            scanned = enumerate(encoded)
        else:
            scanned = ((size - 1 - j, element) for j, element in enumerate(reversed(encoded)))
        if maxlen:
            scanned = islice(scanned, maxlen)
        skip = abs(rank) - 1
        found = []
        countdown = EVERY
        for index, element in scanned:
            countdown -= 1
            if not countdown:       # (a list of tens of millions: the heartbeat goes on, hypercache/pulse.py)
                countdown = EVERY
                beat()
            if element == target:
                if skip:
                    skip -= 1
                    continue
                found.append(index)
                if len(found) == wanted:
                    break
        return found

    def set(self, index: int, value: bytes) -> int:
        """Replace the element at `index` (in bounds) with `value`; the change in nbytes."""
        element = encode(value)
        delta = len(element) - len(self.encoded[index])
        self.encoded[index] = element
        self.nbytes += delta
        return delta

    def insert(self, pivot: bytes, value: bytes, after: bool) -> bool:
        """Insert `value` before (or after) the first `pivot`; False when there is no pivot."""
        try:
            position = self.encoded.index(encode(pivot))
        except ValueError:
            return False
        element = encode(value)
        self.encoded.insert(position + 1 if after else position, element)
        self.nbytes += len(element) + ENTRY_BYTES
        return True

    def remove(self, value: bytes, count: int) -> int:
        """LREM: drop up to |count| elements equal to `value` (all when 0; from the right when < 0)."""
        target = encode(value)
        elements = list(self.encoded)
        limit = abs(count) if count else len(elements)
        if count < 0:
            elements.reverse()
        kept = []
        removed = 0
        for element in elements:
            if removed < limit and element == target:
                removed += 1
            else:
                kept.append(element)
        if removed:
            if count < 0:
                kept.reverse()
            self.encoded = deque(kept)
            self.nbytes -= removed * (len(target) + ENTRY_BYTES)
        return removed

    def trim(self, start: int, stop: int) -> None:
        """Keep only elements start..stop (inclusive, in bounds)."""
        self.encoded = deque(islice(self.encoded, start, stop + 1))
        self.nbytes = _size_of(self.encoded)

    def clear(self) -> None:
        self.encoded = deque()
        self.nbytes = BASE_BYTES

    def copy(self) -> "List":
        other = List.__new__(List)
        other.encoded = deque(self.encoded)
        other.nbytes = self.nbytes
        return other


def _size_of(encoded: deque[bytes]) -> int:
    return BASE_BYTES + sum(map(len, encoded)) + ENTRY_BYTES * len(encoded)
