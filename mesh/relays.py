"""Choose the members that relay to this node a peer it does not hear on its own link (mesh/links.py `relay`).

Two relayers per peer, among the members this node hears on their own links: the peer's
watchers first (they hear its quiet heartbeats), then the others, ranked by a hash of this
node, the peer and the relayer, so that two nodes that both lost the peer do not both pick the
same two, and so that a choice is the same in every process (Python's `hash` of a string is not).

A relayer may hear the peer no better than this node (a partition, another watcher that lost
the same link). Where every heartbeat of the peer is relayed here (a peer this node watches), a
relayer that passed on nothing for `patience_s` is replaced by the next in rank not tried yet,
and one that works is kept; once every candidate was tried, the tries start over. A peer not
watched says little but news: its silence says nothing of its relayers, which stay.

Pure: values in, a choice out (Mesh._hear_unlinked does the I/O).
"""
from __future__ import annotations

import heapq
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass
class _Choice:
    relayers: tuple[str, ...]
    since: float                                    # when these relayers were last judged
    heard: dict[str, int]                           # what each had passed on by then
    tried: set[str] = field(default_factory=set)


class Relays:
    """The relayers of each peer this node asks to be relayed, kept while they work."""

    def __init__(self, me: str, per_peer: int, patience_s: float) -> None:
        self.me = me
        self.per_peer = per_peer
        self.patience_s = patience_s
        self._choices: dict[str, _Choice] = {}

    def choose(self, now: float, asked: Mapping[str, bool], candidates: frozenset[str],
               watchers_of: Callable[[str], frozenset[str]],
               heard: Mapping[tuple[str, str], int]) -> dict[str, tuple[tuple[str, ...], bool]]:
        """origin -> (its relayers, whether its quiet heartbeats are wanted), for each origin of
        `asked` (origin -> wanted quiet: this node watches it); `candidates`: the members that may
        relay; `heard`: (origin, relayer) -> messages that relayer passed on, so far."""
        for origin in [o for o in self._choices if o not in asked]:
            del self._choices[origin]
        chosen: dict[str, tuple[tuple[str, ...], bool]] = {}
        for origin, watched in asked.items():
            pool = candidates - {origin}
            choice = self._choices.get(origin)
            if choice is None:
                relayers = self._ranked(origin, pool, watchers_of(origin), self.per_peer)
                choice = self._choices[origin] = _Choice(relayers, now, self._heard(origin, relayers, heard))
            else:
                kept = [r for r in choice.relayers if r in pool]
                if watched and now - choice.since >= self.patience_s:
                    kept = [r for r in kept if heard.get((origin, r), 0) != choice.heard.get(r, 0)]
                    choice.tried.update(choice.relayers)
                    choice.since = now
                if len(kept) < len(choice.relayers) or len(kept) < min(self.per_peer, len(pool)):
                    group = watchers_of(origin)
                    fresh = self._ranked(origin, pool - set(kept) - choice.tried, group, self.per_peer - len(kept))
                    if len(kept) + len(fresh) < min(self.per_peer, len(pool)):
                        # (every one tried: the tries start over, after those not tried yet)
                        choice.tried = set(kept) | set(fresh)
                        fresh += self._ranked(origin, pool - choice.tried, group,
                                              self.per_peer - len(kept) - len(fresh))
                    choice.relayers = tuple(kept) + fresh
                    choice.since = now
                choice.heard = self._heard(origin, choice.relayers, heard) if choice.since == now else choice.heard
            if choice.relayers:
                chosen[origin] = (choice.relayers, watched)
        return chosen

    def _ranked(self, origin: str, pool: frozenset[str], group: frozenset[str], count: int) -> tuple[str, ...]:
        me = self.me
        return tuple(heapq.nsmallest(count, pool, key=lambda relayer: (
            relayer not in group, zlib.crc32(f"{me}{origin}{relayer}".encode()))))

    @staticmethod
    def _heard(origin: str, relayers: tuple[str, ...], heard: Mapping[tuple[str, str], int]) -> dict[str, int]:
        return {relayer: heard.get((origin, relayer), 0) for relayer in relayers}
