"""The sorted set value: member -> score, plus a SortedList of (score, member) for rank and range."""
from __future__ import annotations

from typing import Final, Iterable

from sortedcontainers import SortedList

# Redis 7.0 defaults: zset-max-listpack-entries / zset-max-listpack-value
MAX_LISTPACK_ENTRIES: Final = 128
MAX_LISTPACK_VALUE: Final = 64
BASE_BYTES: Final = 480          # the object, its dict and the SortedList
ENTRY_BYTES: Final = 171         # bytes header, float, tuple, dict entry, list slot


class ZSet:
    __slots__ = ("scores", "ordered", "nbytes", "big", "removed")
    type_name = b"zset"

    def __init__(self, pairs: Iterable[tuple[float, bytes]] = ()) -> None:
        self.nbytes = BASE_BYTES
        self.big = False          # converted to a skiplist: never converts back, as Redis
        self.removed = 0          # members ever removed: ZSCAN's cursor (hypercache/types/scan.py)
        # Built in bulk: a later pair of a member replaces its score, as adding them one by one
        # would, and the order is sorted once (a SortedList.add per member took ~6 us: a
        # 500,000-member ZADD to a new key, or a replica rebuilding one, held the hub 3-4 s).
        scores: dict[bytes, float] = {}
        for score, member in pairs:
            scores[member] = 0.0 if score == 0 else score     # -0 is stored as 0, as Redis's listpack does
        self.scores = scores
        self.ordered = SortedList([(score, member) for member, score in scores.items()])
        if scores:
            self.nbytes += sum(len(member) for member in scores) + ENTRY_BYTES * len(scores)
            self.big = len(scores) > MAX_LISTPACK_ENTRIES or any(len(m) > MAX_LISTPACK_VALUE for m in scores)

    @property
    def encoding(self) -> bytes:
        return b"skiplist" if self.big else b"listpack"

    def __len__(self) -> int:
        return len(self.scores)

    def add(self, member: bytes, score: float) -> float | None:
        """Set a member's score; returns its previous score (None when it is new)."""
        if score == 0:
            score = 0.0           # -0 is stored as 0, as Redis's listpack does
        scores = self.scores
        old = scores.get(member)
        if old is None:
            scores[member] = score
            self.ordered.add((score, member))
            self.nbytes += len(member) + ENTRY_BYTES
            if not self.big and (len(scores) > MAX_LISTPACK_ENTRIES or len(member) > MAX_LISTPACK_VALUE):
                self.big = True
            return None
        if old != score:
            self.ordered.remove((old, member))
            self.ordered.add((score, member))
            scores[member] = score
        return old

    def remove(self, member: bytes) -> bool:
        score = self.scores.pop(member, None)
        if score is None:
            return False
        self.removed += 1
        self.ordered.remove((score, member))
        self.nbytes -= len(member) + ENTRY_BYTES
        return True

    def rank(self, member: bytes) -> int | None:
        score = self.scores.get(member)
        if score is None:
            return None
        return self.ordered.bisect_left((score, member))

    def copy(self) -> "ZSet":
        other = ZSet.__new__(ZSet)
        other.scores = dict(self.scores)
        other.ordered = SortedList(self.ordered)
        other.nbytes = self.nbytes
        other.big = self.big
        other.removed = 0
        return other
