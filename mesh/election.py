"""Agree on the next slot map: single-decree Paxos per base map (prepare, promise, propose, vote, commit).

Two different maps must never be committed with the same epoch. Each
committed map (the *base*, named by its epoch) has exactly one successor, chosen
by the members of the base map:

1. The proposer picks a ballot above every ballot it has seen and asks the
   base's members for a promise (Prepare). A member promises only for its own
   current map, never for a ballot at or below one it promised or voted in, and
   answers with the last map it voted for on that base (ballot and map).
2. With promises from a majority of the base's members, the proposer proposes
   the map voted at the highest ballot among them (carried forward unchanged,
   epoch included), or, if none voted, a fresh map whose epoch is the ballot.
3. A member votes (at most once per ballot, never below its promise) for a
   proposal on its current map; the ballot is saved before the vote or the
   promise leaves the node. A majority of the base's members voting for one
   (ballot, map) commits that map. Every member of the base counts the votes and
   commits the same map: in a small map it hears every vote; in one with watchers
   the votes go to the proposer, which relays a majority's signatures in one
   certificate that each member checks (mesh/votes.py).

Votes and promises are only counted against the node's own current map, and
only when it *is* the base: a node that missed a commit takes no part until it
has adopted it. So every committed map is the successor of the previous
committed one, epochs rise along that chain, and no epoch is committed twice.
A map someone voted for but that never committed is carried forward by the
next proposer, so a failed or split ballot never leaves the cluster stuck.
A carried map is voted for without re-checking membership (it may already be
chosen); fresh maps are voted for only when the voter agrees with the change,
so flapping heartbeats cannot change the map.

To keep rival proposals rare, one member proposes: the live member of the
current map with the lowest node id.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field, replace
from typing import Callable, Collection, Iterable, Mapping

from mesh import balance, ring
from mesh.slotmap import Member, SlotMap

log = logging.getLogger(__name__)


def proposer(current: SlotMap, live: Callable[[str], bool]) -> str | None:
    """Return the member that should propose the next map: the lowest live node id.

    A map's members are in id order (SlotMap checks it), so this is the first that passes
    `live`. Each member's timer asks at every tick: with the lowest usually live, this looks
    at one member, not at all of them (a list of the live ones, made and searched each tick,
    was most of an idle 300-member simulation's time)."""
    return next((m.node_id for m in current.members if live(m.node_id)), None)


def plan(current: SlotMap, dead: Iterable[str], joining: Iterable[Member], epoch: int) -> SlotMap | None:
    """Return the map at `epoch` without the dead members and with the joining ones, or None if unchanged."""
    candidate = _changed(current, tuple(sorted(set(dead))), tuple(sorted(set(joining), key=lambda m: m.node_id)))
    # (`==`, not `is`: the cache may hand back an equal map made earlier from another object)
    if candidate == current:
        return None
    return replace(candidate, epoch=epoch, base_epoch=current.epoch)


@functools.lru_cache(maxsize=4)
def _changed(current: SlotMap, dead: tuple[str, ...], joining: tuple[Member, ...]) -> SlotMap:
    """`current` without `dead` and with `joining`, remembered: the same change is made several times.

    Placing a newcomer on the ring costs ~0.3 s at 48 members and ~1 s at 100
    (mesh/ring.py), and one node makes the same map up to three times: the
    replicator plans ahead for joiners, the proposer proposes, and the voter
    rebuilds the proposal to check it (`follows`).

    The ring changes one member at a time, as SlotMap.without_member and with_member
    would change it, but the map is made once, at the end: a map per member placed
    derived every slot's owners each time (a fifth of a 10-member join at 70 members).
    """
    tokens = current.tokens
    members = {member.node_id: member for member in current.members}
    gone = []
    for node_id in dead:
        if node_id in members and len(members) > 1:
            tokens = ring.leave(tokens, node_id)
            del members[node_id]
            gone.append(node_id)
    joined = False
    for member in joining:
        if member.node_id not in members:
            tokens = ring.join(tokens, member.node_id)
            members[member.node_id] = member
            joined = True
    if not gone and not joined:
        # (not a comparison of the tokens: a member dead and joining again may land where it was,
        # and that is still a new map, as one made member by member would be)
        return current
    return SlotMap(current.epoch + 1, current.replication_factor,
                   tuple(sorted(members.values(), key=lambda m: m.node_id)), tokens,
                   current.motion_without(tuple(gone)), current.motion_without(tuple(gone), importing=True),
                   current.epoch)


def changes(current: SlotMap, dead: Iterable[str], joining: Iterable[Member]) -> bool:
    """True if `plan` would make a new map of these changes, found without building it.

    Building it places every newcomer on the ring (mesh/ring.py), a fraction of a
    second each at 50 members: too much to spend on every timer tick just to learn
    that there is something to propose.
    """
    if any(not current.has_member(member.node_id) for member in joining):
        return True
    return len(current.members) > 1 and any(current.has_member(node_id) for node_id in dead)


def rebalanced(current: SlotMap, epoch: int) -> SlotMap | None:
    """Return the map at `epoch` with the same members and slots moved for balance, or None if even.

    Only slots passing to the member that replicates them move (mesh/balance.py): the
    new primary holds each moved slot already. The new replica does not; until it does,
    the demoted owner keeps its copy as a fallback (mesh/holdings.py), so no moment has
    a single copy of an acknowledged write. The proposer asks for it only when nothing
    else changes and the cluster is settled (Mesh._settled); a map carried to a later
    ballot may commit after all, and the fallback is what makes that safe too.
    """
    tokens = balance.rebalance(current.tokens, current.replication_factor)
    if tokens == current.tokens:
        return None
    return replace(current, epoch=epoch, base_epoch=current.epoch, tokens=tokens)


def admissible(current_epoch: int, joiners: Iterable[str], progress: Mapping[str, tuple[int, int, int]],
               stalled: Collection[str]) -> list[str]:
    """The joiners to add to the next map: all of them once each holds the slots it will get.

    A joiner first receives, as an extra replica, the slots the map with it gives it,
    and says in its heartbeats how far it is (`progress`: the epoch of the map it
    plans on, slots planned, slots held). Admitting it only then makes the switch a
    formality: it serves its slots at once instead of pulling them while clients get
    TRYAGAIN. Joiners are admitted together (each one's plan counts the others), so
    one still copying holds the others back; a joiner whose copy made no progress
    for a while (`stalled`: no pre-copy, a primary that never fed it) is admitted
    anyway and pulls what it lacks, as every change did before pre-copies.
    """
    joiners = list(joiners)
    for node_id in joiners:
        epoch, planned, held = progress.get(node_id, (-1, 1, 0))
        if node_id not in stalled and not (epoch == current_epoch and held >= planned):
            return []
    return joiners


def follows(current: SlotMap, candidate: SlotMap) -> bool:
    """True if `candidate` is what `plan` makes of `current` for the members it adds and removes
    (or, with the same members and other tokens, what `rebalanced` makes of it; a join only, as
    far as every member's load goes: `_joins_fairly`).

    Every map proposed on a base, fresh or carried forward, was made by `plan` or
    `rebalanced` from that base, so a voter can rebuild it: a proposal whose tokens, owners,
    replication factor or member addresses differ from the rebuilt map is not a
    successor, whoever sent it (an insider cannot vote itself every slot). A join is first
    checked by its shape (`_joins_fairly`), and rebuilt only when that fails, so an honest
    join the shape check misjudges is still voted for: a join that passes is not rebuilt, and
    may differ from `plan`'s in where the joiners' pieces sit (ring.joins_fairly says what
    that leaves to the proposer).
    """
    ids = {m.node_id for m in candidate.members}
    removed = [m.node_id for m in current.members if m.node_id not in ids]
    added = [m for m in candidate.members if not current.has_member(m.node_id)]
    try:
        if not removed and not added and candidate.tokens != current.tokens:
            return rebalanced(current, candidate.epoch) == candidate
        if not removed and added and _joins_fairly(current, candidate, added):
            return True
        return plan(current, removed, added, candidate.epoch) == candidate
    except (KeyError, ValueError):   # a member list the ring cannot place is no successor either
        return False


def follows_as_a_join(current: SlotMap, candidate: SlotMap) -> bool:
    """True if `candidate` only adds members to `current`, each member loaded as `plan` loads it
    (`_joins_fairly`): a plan for joiners worth following (mesh/plans.py). Milliseconds; never
    places the join again (a plan whose shape fails is not followed), and never raises."""
    if not current.member_ids <= candidate.member_ids:
        return False
    added = [m for m in candidate.members if not current.has_member(m.node_id)]
    try:
        return bool(added) and _joins_fairly(current, candidate, added)
    except (KeyError, ValueError):
        return False


def _joins_fairly(current: SlotMap, candidate: SlotMap, added: list[Member]) -> bool:
    """True if `candidate` admits `added` to `current` shaped as `plan` would (ring.joins_fairly:
    every member's primary slots as the join gives them, replica loads within a bound, but not
    where in the donors' arcs the joiners' pieces sit): the members as they were, with the same
    addresses, factor and slots in motion.

    A voter places a join again only when this fails: placing it is ~0.1 s of a core at 50
    members, and every member checked every join, all at once when the proposal came (or the
    plan for it: mesh/plans.py), the slowest step of a batch of joiners on a loaded machine.
    A proposer lying about placement can still choose which arcs of each donor a joiner takes,
    and so who replicates them and who inherits them if the joiner leaves; not who gives how
    many slots."""
    return (candidate.base_epoch == current.epoch
            and candidate.replication_factor == current.replication_factor
            and all(candidate.member(m.node_id) == m for m in current.members)
            and candidate.migrating == current.motion_without(())
            and candidate.importing == current.motion_without((), importing=True)
            and ring.joins_fairly(current.tokens, candidate.tokens, [m.node_id for m in added],
                                  current.replication_factor))


def majority(current: SlotMap) -> int:
    return len(current.members) // 2 + 1


@dataclass(frozen=True, slots=True)
class Ready:
    """A majority promised `ballot`: propose `carried` if set, else a fresh map at epoch `ballot`."""

    ballot: int
    carried: SlotMap | None


@dataclass(slots=True)
class Election:
    """One node's ballots: what it promised and voted for, the promises and votes it has seen."""

    me: str
    voted_epoch: int = 0         # highest ballot this node promised or voted in (ballots and epochs share numbers)
    # The last vote: (ballot, base_epoch, map), kept across commits and restarts.
    vote: tuple[int, int, SlotMap] | None = None
    candidates: dict[tuple[int, int, bytes], SlotMap] = field(default_factory=dict)   # (base, ballot, digest)
    # votes[(base, ballot)][voter] = digest voted for; the first vote of a voter at a ballot is the one counted.
    votes: dict[tuple[int, int], dict[str, bytes]] = field(default_factory=dict)
    preparing: tuple[int, int] | None = None       # (base, ballot) this node asked promises for
    promises: dict[str, tuple[int, SlotMap | None]] = field(default_factory=dict)

    def voted_on(self, base_epoch: int) -> tuple[int, SlotMap | None]:
        """Return (ballot, map) of this node's last vote on `base_epoch`, or (0, None)."""
        if self.vote is not None and self.vote[1] == base_epoch:
            return self.vote[0], self.vote[2]
        return 0, None

    def prepare(self, current: SlotMap) -> int:
        """Start a ballot on `current` as proposer; return its number (the caller also promises to itself)."""
        ballot = max(self.voted_epoch, current.epoch) + 1
        self.preparing = (current.epoch, ballot)
        self.promises = {}
        return ballot

    def promise(self, ballot: int, base_epoch: int, current: SlotMap) -> tuple[int, SlotMap | None] | None:
        """Promise `ballot` on base `base_epoch` if allowed; return (voted_ballot, voted_map) to send, or None."""
        if base_epoch != current.epoch or not current.has_member(self.me) or ballot <= self.voted_epoch:
            return None
        self.voted_epoch = ballot
        return self.voted_on(base_epoch)

    def promised(self, voter: str, ballot: int, base_epoch: int, voted_ballot: int,
                 voted_map: SlotMap | None, current: SlotMap) -> Ready | None:
        """Count a promise made to this node; once a majority of `current` promised, return what to propose."""
        if self.preparing != (base_epoch, ballot) or base_epoch != current.epoch or not current.has_member(voter):
            return None
        if voted_map is not None and not (base_epoch < voted_map.epoch <= voted_ballot < ballot):
            return None  # not a vote on this base: ignore the promise rather than trust it
        self.promises.setdefault(voter, (voted_ballot, voted_map))
        if len(self.promises) < majority(current):
            return None
        self.preparing = None  # propose once per ballot
        voted = [(b, m) for b, m in self.promises.values() if m is not None]
        return Ready(ballot, max(voted, key=lambda pair: pair[0])[1] if voted else None)

    def consider(self, candidate: SlotMap, digest: bytes, ballot: int, base_epoch: int,
                 current: SlotMap, acceptable: bool) -> bool:
        """Record a proposed map; return True if this node votes for it (at most once per ballot)."""
        self.record(candidate, digest, ballot, base_epoch, current)
        fresh = candidate.epoch == ballot
        last_vote = self.vote[0] if self.vote is not None else 0
        if not ((acceptable or not fresh) and base_epoch == current.epoch
                and current.epoch < candidate.epoch <= ballot
                and ballot >= self.voted_epoch and ballot > last_vote and current.has_member(self.me)):
            return False
        self.voted_epoch = ballot
        self.vote = (ballot, base_epoch, candidate)
        log.info("voting node=%s ballot=%d base_epoch=%d epoch=%d",
                 self.me[:8], ballot, base_epoch, candidate.epoch)
        return True

    def record(self, candidate: SlotMap, digest: bytes, ballot: int, base_epoch: int, current: SlotMap) -> None:
        """Remember a map proposed on `current`, so that the votes for it can be counted."""
        if base_epoch == current.epoch and candidate.epoch > current.epoch:
            self.candidates[(base_epoch, ballot, digest)] = candidate

    def tally(self, voter: str, ballot: int, base_epoch: int, digest: bytes, current: SlotMap) -> SlotMap | None:
        """Count one vote; return the candidate once a majority of the current map's members back it."""
        if base_epoch != current.epoch or not current.has_member(voter):
            return None
        self.votes.setdefault((base_epoch, ballot), {}).setdefault(voter, digest)
        return self.winner(ballot, base_epoch, digest, current)

    def winner(self, ballot: int, base_epoch: int, digest: bytes, current: SlotMap) -> SlotMap | None:
        """Return the candidate if it is known and a majority of `current` (the base) voted for it at `ballot`."""
        candidate = self.candidates.get((base_epoch, ballot, digest))
        if candidate is None or base_epoch != current.epoch:
            return None
        backers = sum(1 for voter, choice in self.votes.get((base_epoch, ballot), {}).items()
                      if choice == digest and current.has_member(voter))
        return candidate if backers >= majority(current) else None

    def committed(self, current: SlotMap) -> None:
        """Forget ballots on bases older than the committed map."""
        self.voted_epoch = max(self.voted_epoch, current.epoch)
        self.candidates = {key: m for key, m in self.candidates.items() if key[0] >= current.epoch}
        self.votes = {key: v for key, v in self.votes.items() if key[0] >= current.epoch}
        if self.preparing is not None and self.preparing[0] < current.epoch:
            self.preparing = None
            self.promises = {}
