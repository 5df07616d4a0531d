"""Agree on the next slot map: propose, vote once per epoch, commit on a majority.

Two different maps must never be committed with the same epoch. As Redis
masters do for failover, each member of the current map votes at most once per
epoch, and a candidate map is committed only with the votes of a majority of the
current map's members. Votes travel to everyone, so every node counts them and
commits the same map without a separate coordinator round.

To keep rival proposals rare, one member proposes: the live member of the
current map with the lowest node id. If its proposal fails (split or lost
votes), the next attempt uses a higher epoch; epochs may skip, never repeat.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Collection, Iterable

from mesh.slotmap import Member, SlotMap

log = logging.getLogger(__name__)


def proposer(current: SlotMap, live: Collection[str]) -> str | None:
    """Return the member that should propose the next map: the lowest live node id."""
    candidates = [m.node_id for m in current.members if m.node_id in live]
    return min(candidates) if candidates else None


def plan(current: SlotMap, dead: Iterable[str], joining: Iterable[Member], epoch: int) -> SlotMap | None:
    """Return the map at `epoch` without the dead members and with the joining ones, or None if unchanged."""
    candidate = current
    for node_id in sorted(dead):
        if candidate.has_member(node_id) and len(candidate.members) > 1:
            candidate = candidate.without_member(node_id)
    for member in sorted(joining, key=lambda m: m.node_id):
        if not candidate.has_member(member.node_id):
            candidate = candidate.with_member(member)
    if candidate is current:
        return None
    return replace(candidate, epoch=epoch)


@dataclass(slots=True)
class Election:
    """One node's ballots: what it voted for, and the votes it has seen."""

    me: str
    voted_epoch: int = 0                                  # highest epoch this node has voted in
    candidates: dict[tuple[int, bytes], SlotMap] = field(default_factory=dict)
    # votes[epoch][voter] = digest voted for; the first vote of a voter in an epoch is the one counted.
    votes: dict[int, dict[str, bytes]] = field(default_factory=dict)

    def consider(self, candidate: SlotMap, digest: bytes, base_epoch: int,
                 current: SlotMap, acceptable: bool) -> bool:
        """Record a proposed map; return True if this node votes for it (at most once per epoch)."""
        if candidate.epoch > current.epoch:
            self.candidates[(candidate.epoch, digest)] = candidate
        if not (acceptable and base_epoch == current.epoch and candidate.epoch > current.epoch
                and candidate.epoch > self.voted_epoch and current.has_member(self.me)):
            return False
        self.voted_epoch = candidate.epoch
        log.info("voting node=%s epoch=%d base_epoch=%d", self.me[:8], candidate.epoch, base_epoch)
        return True

    def tally(self, voter: str, epoch: int, digest: bytes, current: SlotMap) -> SlotMap | None:
        """Count one vote; return the candidate once a majority of the current map's members back it."""
        if epoch <= current.epoch or not current.has_member(voter):
            return None
        self.votes.setdefault(epoch, {}).setdefault(voter, digest)
        return self.winner(epoch, digest, current)

    def winner(self, epoch: int, digest: bytes, current: SlotMap) -> SlotMap | None:
        """Return the candidate (epoch, digest) if it is known and has a majority of `current`'s members."""
        candidate = self.candidates.get((epoch, digest))
        if candidate is None or epoch <= current.epoch:
            return None
        backers = sum(1 for voter, choice in self.votes.get(epoch, {}).items()
                      if choice == digest and current.has_member(voter))
        return candidate if backers >= len(current.members) // 2 + 1 else None

    def committed(self, current: SlotMap) -> None:
        """Forget ballots of epochs the committed map has reached."""
        self.voted_epoch = max(self.voted_epoch, current.epoch)
        self.candidates = {key: m for key, m in self.candidates.items() if key[0] > current.epoch}
        self.votes = {epoch: v for epoch, v in self.votes.items() if epoch > current.epoch}
