"""Lays the members' slot ranges out as tracks of arcs for drawing the ring: primaries outside, replicas inside.

Pure: ranges in, arcs out. The browser only turns arcs into SVG paths, so the
layout (which replica goes on which track, where gaps are) is decided and
tested here.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import TypedDict

from web.snapshot import SLOT_COUNT, Member

# [start, end, member_id]: an inclusive run of slots drawn in one member's colour.
Arc = tuple[int, int, str]


class Track(TypedDict):
    role: str  # "primary" or "replica"
    arcs: list[Arc]


class RingLayout(TypedDict):
    slots: int
    tracks: list[Track]


class Share(TypedDict):
    """One member's bar: how many slots it leads and holds copies of (the ring's arcs, counted)."""
    id: str
    primary: int
    replica: int


def ring_layout(members: Sequence[Member]) -> RingLayout:
    """Return one primary track and as many replica tracks as the widest slot needs.

    Members are taken in id order so every node draws the same picture for the
    same topology. Out-of-range or inverted ranges are clipped or ignored: the
    picture must never fail because one member reported nonsense.
    """
    ordered = sorted(members, key=lambda m: m["id"])
    primaries = [(m["id"], _clip(m.get("primary_ranges") or [])) for m in ordered]
    replicas = [(m["id"], _clip(m.get("replica_ranges") or [])) for m in ordered]

    tracks: list[Track] = []
    primary_owners = _owners_per_interval(primaries)
    tracks.append({"role": "primary", "arcs": _arcs(primary_owners, 0)})

    replica_owners = _keep_tracks(_owners_per_interval(replicas))
    depth = max((len(ids) for _, _, ids in replica_owners), default=0)
    for index in range(depth):
        tracks.append({"role": "replica", "arcs": _arcs(replica_owners, index)})
    return {"slots": SLOT_COUNT, "tracks": tracks}


def _clip(ranges: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    clipped = []
    for pair in ranges:
        if len(pair) != 2:
            continue
        start, end = max(int(pair[0]), 0), min(int(pair[1]), SLOT_COUNT - 1)
        if start <= end:
            clipped.append((start, end))
    return clipped


def _owners_per_interval(
    owned: Sequence[tuple[str, list[tuple[int, int]]]],
) -> list[tuple[int, int, list[str]]]:
    """Split the ring at every range boundary; list who covers each elementary interval.

    A sweep over boundaries instead of a 16384-entry array: the cost follows
    the number of ranges (vnodes), not the number of slots.
    """
    cuts = sorted({0, SLOT_COUNT} | {s for _, rs in owned for s, _ in rs} | {e + 1 for _, rs in owned for _, e in rs})
    covering: list[list[str]] = [[] for _ in range(len(cuts) - 1)]
    for member_id, ranges in owned:
        for start, end in ranges:
            first = bisect.bisect_left(cuts, start)
            last = bisect.bisect_left(cuts, end + 1)
            for index in range(first, last):
                if member_id not in covering[index]:
                    covering[index].append(member_id)
    return [(cuts[i], cuts[i + 1] - 1, ids) for i, ids in enumerate(covering)]


def _keep_tracks(intervals: list[tuple[int, int, list[str]]]) -> list[tuple[int, int, list[str | None]]]:
    """Reorder each interval's owners so a member keeps the track it had just before.

    Without this a replica would hop between inner tracks at every boundary
    where the set of replicas changes, and its arc would look torn.
    """
    kept: list[tuple[int, int, list[str | None]]] = []
    previous: list[str | None] = []
    for start, end, ids in intervals:
        placed: list[str | None] = [None] * max(len(ids), len(previous))
        for track, owner in enumerate(previous):
            if owner in ids:
                placed[track] = owner
        newcomers = iter(owner for owner in ids if owner not in placed)
        for track, owner in enumerate(placed):
            if owner is None:
                placed[track] = next(newcomers, None)
        previous = placed
        # A None left inside marks an empty track at this interval; arcs skip it.
        kept.append((start, end, placed))
    return kept


def _arcs(intervals: Sequence[tuple[int, int, Sequence[str | None]]], index: int) -> list[Arc]:
    """Take the index-th owner of every interval and merge neighbours with the same owner."""
    arcs: list[Arc] = []
    for start, end, ids in intervals:
        owner = ids[index] if index < len(ids) else None
        if owner is None:
            continue
        if arcs and arcs[-1][2] == owner and arcs[-1][1] + 1 == start:
            arcs[-1] = (arcs[-1][0], end, owner)
        else:
            arcs.append((start, end, owner))
    return arcs


def member_shares(members: Sequence[Member]) -> list[Share]:
    """Slots per member, in id order like the ring: 64 arcs a member on the ring read as a barcode,
    a bar per member reads at a glance (a dead member keeps its row, with what it still holds)."""
    shares: list[Share] = []
    for member in sorted(members, key=lambda m: m["id"]):
        primary = sum(end - start + 1 for start, end in _clip(member.get("primary_ranges") or []))
        replica = sum(end - start + 1 for start, end in _clip(member.get("replica_ranges") or []))
        shares.append({"id": member["id"], "primary": primary, "replica": replica})
    return shares
