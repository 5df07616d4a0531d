"""The list value: a deque of bytes, O(1) at both ends."""
from __future__ import annotations

from collections import deque
from typing import Iterable

BASE_BYTES = 640          # the object and the deque with its first block
ENTRY_BYTES = 41          # a bytes header (33) and a slot in a deque block


class List:
    __slots__ = ("items", "nbytes")
    type_name = b"list"
    encoding = b"quicklist"     # Redis 7.0 encodes every list as a quicklist

    def __init__(self, items: Iterable[bytes] = ()) -> None:
        self.items: deque[bytes] = deque(items)
        self.nbytes = BASE_BYTES + sum(len(x) for x in self.items) + ENTRY_BYTES * len(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def push_left(self, values: Iterable[bytes]) -> None:
        items = self.items
        grow = 0
        for value in values:
            items.appendleft(value)
            grow += len(value) + ENTRY_BYTES
        self.nbytes += grow

    def push_right(self, values: Iterable[bytes]) -> None:
        items = self.items
        grow = 0
        for value in values:
            items.append(value)
            grow += len(value) + ENTRY_BYTES
        self.nbytes += grow

    def pop_left(self) -> bytes:
        value = self.items.popleft()
        self.nbytes -= len(value) + ENTRY_BYTES
        return value

    def pop_right(self) -> bytes:
        value = self.items.pop()
        self.nbytes -= len(value) + ENTRY_BYTES
        return value

    def replace(self, items: Iterable[bytes]) -> None:
        """Swap in new contents (LREM, LTRIM, LINSERT rebuild the deque)."""
        self.items = items if isinstance(items, deque) else deque(items)
        self.nbytes = BASE_BYTES + sum(len(x) for x in self.items) + ENTRY_BYTES * len(self.items)

    def copy(self) -> "List":
        other = List.__new__(List)
        other.items = deque(self.items)
        other.nbytes = self.nbytes
        return other
