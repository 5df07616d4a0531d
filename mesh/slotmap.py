"""Hold one immutable, epoch-numbered view of the cluster: members, ring tokens, owners per slot.

A SlotMap is a value. A node swaps its whole map by one assignment when a map
that supersedes it is committed; nothing edits a map in place. The vnode tokens
are part of the map (and of the wire message that carries it), so every node
derives the same owners from them. Slots in motion (migrating/importing) have
their place here already so that slot migration needs no new map shape.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from mesh import ring
from mesh.keyslot import SLOT_COUNT

_NODE_ID: Final = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True, slots=True)
class Member:
    """A cluster member and the addresses others reach it on."""

    node_id: str     # 40 lowercase hex characters, stable across restarts with a data dir
    host: str        # announce host: what clients connect to, never 0.0.0.0
    port: int        # RESP port
    mesh_port: int   # normally port + 10000
    http_port: int

    def __post_init__(self) -> None:
        if not _NODE_ID.fullmatch(self.node_id):
            raise ValueError(f"node id must be 40 lowercase hex characters: {self.node_id!r}")
        for name in ("port", "mesh_port", "http_port"):
            value = getattr(self, name)
            if not 0 <= value <= 65535:
                raise ValueError(f"{name} out of range: {value}")

    def __reduce__(self) -> tuple:
        """Pickled as its fields (to the placement worker, mesh/placer.py): compiled with mypyc, a
        frozen dataclass cannot be unpickled by setting them one by one."""
        return (Member, (self.node_id, self.host, self.port, self.mesh_port, self.http_port))


@dataclass(frozen=True, slots=True)
class SlotMap:
    """Who owns which slot at one epoch; `owners` is derived from `tokens`."""

    epoch: int
    replication_factor: int
    members: tuple[Member, ...]            # sorted by node_id
    tokens: ring.Tokens                    # vnode tokens (position, node_id), sorted by position
    # Slots in motion, as (slot, node_id) pairs sorted by slot: filled in by slot migration.
    migrating: tuple[tuple[int, str], ...] = ()
    importing: tuple[tuple[int, str], ...] = ()
    # The epoch of the map this one was made from (None: unknown, a founding map).
    # Epochs are ballot numbers and may skip (a proposal retried under a higher
    # ballot): only a base newer than the map a node holds says it missed a map.
    base_epoch: int | None = None
    owners: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)
    # the members' ids: has_member is asked per peer on every replication turn (20 a second),
    # a scan of the members each time made it quadratic in the cluster's size
    member_ids: frozenset[str] = field(init=False, repr=False, compare=False)
    # owner_ranges(), made on first use: CLUSTER INFO, NODES and the status page read each
    # member's ranges, and a walk of the 16,384 slots per member made CLUSTER INFO cost
    # O(N x 16,384): 42% of a seed's CPU while 60 nodes joined it (py-spy, mesh_cost.py polling)
    _runs: tuple[tuple[int, int, tuple[str, ...]], ...] | None = field(default=None, init=False, repr=False,
                                                                        compare=False)
    _ranges: dict[str, tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]] | None = field(
        default=None, init=False, repr=False, compare=False)        # ranges() of every member, made at once

    def __post_init__(self) -> None:
        if self.replication_factor < 1:
            raise ValueError("replication_factor must be at least 1")
        if self.base_epoch is not None and not 0 <= self.base_epoch < self.epoch:
            raise ValueError("a map's base epoch must be older than the map")
        ids = [member.node_id for member in self.members]
        if ids != sorted(set(ids)):
            raise ValueError("members must be unique and sorted by node_id")
        if {node_id for _, node_id in self.tokens} != set(ids):
            raise ValueError("every member needs tokens and every token a member")
        positions = [position for position, _ in self.tokens]
        if positions != sorted(set(positions)) or not 0 <= positions[0] <= positions[-1] < SLOT_COUNT:
            raise ValueError("token positions must be unique, sorted and within the ring")
        object.__setattr__(self, "owners", ring.owners(self.tokens, self.replication_factor))
        object.__setattr__(self, "member_ids", frozenset(ids))

    def __reduce__(self) -> tuple:
        """Pickled as what it is made from (to the placement worker and back, mesh/placer.py):
        the owners and the caches above are derived, and sent along they made a request at 100
        members 2.4 times as big, each pickled in the hub (review)."""
        return (SlotMap, (self.epoch, self.replication_factor, self.members, self.tokens, self.migrating,
                          self.importing, self.base_epoch))

    @classmethod
    def single(cls, member: Member, replication_factor: int = 1) -> SlotMap:
        """Return the map of a one-member cluster owning all 16384 slots, at epoch 0."""
        return cls(0, replication_factor, (member,), ring.single(member.node_id))

    def member(self, node_id: str) -> Member:
        """Return the member with `node_id`; KeyError if it is not in this map."""
        for candidate in self.members:
            if candidate.node_id == node_id:
                return candidate
        raise KeyError(node_id)

    def has_member(self, node_id: str) -> bool:
        return node_id in self.member_ids

    def primary(self, slot: int) -> str:
        return self.owners[slot][0]

    def ranges(self, node_id: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Return (primary ranges, replica ranges) of `node_id`, inclusive and sorted."""
        if self._ranges is None:
            made: dict[str, tuple[list[tuple[int, int]], list[tuple[int, int]]]] = {}
            for first, last, slot_owners in self.owner_ranges():
                for rank, owner in enumerate(slot_owners):
                    _append_range(made.setdefault(owner, ([], []))[0 if rank == 0 else 1], first, last)
            object.__setattr__(self, "_ranges", {owner: (tuple(primary), tuple(replica))
                                                 for owner, (primary, replica) in made.items()})
        assert self._ranges is not None
        primary, replica = self._ranges.get(node_id, ((), ()))
        return list(primary), list(replica)

    def owner_ranges(self) -> list[tuple[int, int, tuple[str, ...]]]:
        """Return maximal (first, last, owners) runs of slots with the same owners, in slot order."""
        if self._runs is None:
            result: list[tuple[int, int, tuple[str, ...]]] = []
            owners = self.owners
            first = 0
            for slot in range(1, SLOT_COUNT):
                # Owner tuples are shared, so identity is the fast comparison.
                if owners[slot] is not owners[first] and owners[slot] != owners[first]:
                    result.append((first, slot - 1, owners[first]))
                    first = slot
            result.append((first, SLOT_COUNT - 1, owners[first]))
            object.__setattr__(self, "_runs", tuple(result))
        assert self._runs is not None
        return list(self._runs)

    def skips_from(self, held: SlotMap) -> bool:
        """True if this map was made from a map newer than `held`: a node holding `held`
        missed at least one committed map. A mere jump of the epoch number is no
        evidence (a ballot retried after a node timeout commits at a higher number on
        the same base); a map of unknown base counts as missed when the number jumped."""
        if self.base_epoch is None:
            return self.epoch > held.epoch + 1
        if self.base_epoch == held.base_epoch and self.members == held.members and self.tokens == held.tokens:
            return False    # the held map's decision renumbered (survivors' takeovers: mesh/takeover.py)
        return self.base_epoch != held.epoch

    def supersedes(self, other: SlotMap) -> bool:
        """True if a node holding `other` must adopt this map: a higher epoch wins."""
        return self.epoch > other.epoch

    def diff(self, other: SlotMap) -> tuple[int, ...]:
        """Return the slots whose owners (primary or replicas) differ between the two maps."""
        mine, theirs = self.owners, other.owners
        return tuple(
            slot for slot in range(SLOT_COUNT)
            if mine[slot] is not theirs[slot] and mine[slot] != theirs[slot]
        )

    def with_member(self, member: Member) -> SlotMap:
        """Return the next-epoch map with `member` joined (or its addresses updated)."""
        if self.has_member(member.node_id):
            members = tuple(member if m.node_id == member.node_id else m for m in self.members)
            tokens = self.tokens
        else:
            members = tuple(sorted(self.members + (member,), key=lambda m: m.node_id))
            tokens = ring.join(self.tokens, member.node_id)
        return SlotMap(self.epoch + 1, self.replication_factor, members, tokens,
                       self.motion_without(()), self.motion_without((), importing=True), self.epoch)

    def without_member(self, node_id: str) -> SlotMap:
        """Return the next-epoch map with `node_id` gone; its slots pass to their next owners."""
        self.member(node_id)
        members = tuple(m for m in self.members if m.node_id != node_id)
        return SlotMap(self.epoch + 1, self.replication_factor, members,
                       ring.leave(self.tokens, node_id),
                       self.motion_without((node_id,)),
                       self.motion_without((node_id,), importing=True), self.epoch)

    def motion_without(self, gone: tuple[str, ...], importing: bool = False) -> tuple[tuple[int, str], ...]:
        """The slots in motion (migrating, or importing), without those of the `gone` members."""
        motion = self.importing if importing else self.migrating
        return tuple((slot, node_id) for slot, node_id in motion if node_id not in gone)


def _append_range(ranges: list[tuple[int, int]], first: int, last: int) -> None:
    """Append an inclusive range, merging it with the previous one when adjacent."""
    if ranges and ranges[-1][1] + 1 == first:
        ranges[-1] = (ranges[-1][0], last)
    else:
        ranges.append((first, last))
