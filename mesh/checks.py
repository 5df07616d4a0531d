"""Remember which maps proposed on the current map follow from it, so that each is checked once.

A voter checks a proposed map before it votes (mesh/election.py `follows`: the map pickled
to the placement worker and back, and placed again unless a join's shape checks out). A
ballot retried once some member voted carries the same map, and each retry used to be
checked from the start, queued in the worker behind the check before it: on a loaded machine
(100 members on 2 cores) the votes came later than the next retry, and no ballot decided.
Here a verdict is kept for the map it was reached on, and a map whose check is under way
is not checked again: its later proposals wait for that check (Mesh._consider does the I/O).

Pure: maps and proposals in, what to do out.
"""
from __future__ import annotations

from typing import Generic, Protocol, TypeVar


class _Balloted(Protocol):
    @property
    def ballot(self) -> int: ...


P = TypeVar("P", bound=_Balloted)


class Checks(Generic[P]):
    """The verdicts on maps proposed on one base map, and the proposals waiting for a check under way."""

    def __init__(self, limit: int) -> None:
        self.limit = limit      # maps remembered, and proposals waiting per map (a flood is not kept)
        self._base: object | None = None
        self._verdicts: dict[bytes, bool] = {}
        self._waiting: dict[bytes, list[P]] = {}

    def verdict(self, base: object, digest: bytes) -> bool | None:
        """Whether the map `digest`, proposed on `base`, follows from it (None: not checked yet, or
        not remembered: past `limit` maps). A new base forgets what was known of the one before;
        `wait` then works on the base this was last asked about, so ask this first."""
        if base is not self._base:
            self._base, self._verdicts, self._waiting = base, {}, {}
        return self._verdicts.get(digest)

    def wait(self, digest: bytes, proposal: P) -> bool:
        """True if a check of `digest` (on the base `verdict` was last asked about) is under way:
        `proposal` waits for it (the newest ballots are kept, a retry's being the highest). False:
        the caller checks it, and says `done` or `failed`."""
        queued = self._waiting.get(digest)
        if queued is None:
            if len(self._waiting) < self.limit:
                self._waiting[digest] = []
            return False
        queued.append(proposal)
        if len(queued) > self.limit:
            queued.remove(min(queued, key=lambda each: each.ballot))
        return True

    def done(self, base: object, digest: bytes, follows: bool) -> list[P]:
        """A check of `digest` on `base` ended: the proposals that waited for it, to be voted on too."""
        if base is not self._base:
            return []       # (the map changed meanwhile: those proposals are on an old base now)
        if len(self._verdicts) < self.limit:
            self._verdicts[digest] = follows
        return self._waiting.pop(digest, [])

    def failed(self, base: object, digest: bytes) -> P | None:
        """A check of `digest` on `base` ended without a verdict (its worker lost, or the placement
        raised): the newest proposal that waited for it, to be checked again now rather than left
        to the next retry, a few node timeouts on. The older ones are dropped: that newer ballot
        supersedes them."""
        if base is not self._base:
            return None
        queued = self._waiting.pop(digest, [])
        return max(queued, key=lambda each: each.ballot) if queued else None
