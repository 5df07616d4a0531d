"""The set value: members in a list plus member -> index, so a random member costs O(1)."""
from __future__ import annotations

import random
from typing import Final, Iterable

# Redis 7.0 default: set-max-intset-entries
MAX_INTSET_ENTRIES: Final = 512
BASE_BYTES: Final = 320          # the object, its list and dict
ENTRY_BYTES: Final = 119         # bytes header (33), list slot (8), dict entry (50), int index (28)
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


def is_int64(member: bytes) -> bool:
    """Would Redis store this member in an intset (string2ll accepts it)?"""
    if not 0 < len(member) <= 20:
        return False
    body = member[1:] if member[:1] == b"-" else member
    if not body.isdigit() or (body[:1] == b"0" and len(body) > 1) or body == b"" or member == b"-0":
        return False
    return INT64_MIN <= int(member) <= INT64_MAX


class Set:
    __slots__ = ("members", "index", "nbytes", "big", "removed")
    type_name = b"set"

    def __init__(self, members: Iterable[bytes] = ()) -> None:
        self.members: list[bytes] = []
        self.index: dict[bytes, int] = {}
        self.nbytes = BASE_BYTES
        self.big = False          # converted to a hashtable: never converts back, as Redis
        self.removed = 0          # members ever removed: SSCAN's cursor walks `index` (types/scan.py)
        self.add_many(members)

    @property
    def encoding(self) -> bytes:
        return b"hashtable" if self.big else b"intset"

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, member: bytes) -> bool:
        return member in self.index

    def add(self, member: bytes) -> bool:
        index = self.index
        if member in index:
            return False
        members = self.members
        index[member] = len(members)
        members.append(member)
        self.nbytes += len(member) + ENTRY_BYTES
        if not self.big and (len(members) > MAX_INTSET_ENTRIES or not is_int64(member)):
            self.big = True
        return True

    def add_many(self, members: Iterable[bytes]) -> int:
        added = 0
        for member in members:
            added += self.add(member)
        return added

    def remove(self, member: bytes) -> bool:
        index = self.index
        position = index.pop(member, None)
        if position is None:
            return False
        self.removed += 1
        members = self.members
        last = members.pop()
        if position < len(members):      # move the last member into the hole
            members[position] = last
            index[last] = position
        self.nbytes -= len(member) + ENTRY_BYTES
        return True

    def random_member(self) -> bytes:
        return self.members[random.randrange(len(self.members))]

    def pop_random(self) -> bytes:
        member = self.random_member()
        self.remove(member)
        return member

    def copy(self) -> "Set":
        other = Set.__new__(Set)
        other.members = list(self.members)
        other.index = dict(self.index)
        other.nbytes = self.nbytes
        other.big = self.big
        other.removed = 0
        return other
