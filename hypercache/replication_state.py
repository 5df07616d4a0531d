"""Replication as this node reports it: values read off the Replicator, and what the status surfaces derive.

CLUSTER SHARDS (offset and health per shard member), CLUSTER REPLICAS, ROLE,
and the status page all read one `ReplicationState`, taken by `read()` at the
moment of the request, and compute from it with the pure functions below, so
they are tested with values and never disagree with each other.

What the numbers mean. Offsets count frames, per stream (mesh/replication.py):
the stream from a primary to one replica has its own run and its own offsets,
so two replicas of one primary are not on a common scale as Redis's are.
Hence, within one shard (one owner list):

* a replica's `replication-offset` is the offset it acknowledged on the stream
  from the shard's primary; the primary's is the highest offset it sent on the
  streams to that shard's replicas (at rf 2, one stream: a caught-up replica
  shows the primary's number). In a shard where this node is a replica it
  knows only the stream it follows: its own offset is what it applied, the
  primary's at least that much; any other offset is unknown here (0, as Redis
  shows for a node it has no offset of).
* `health` is `fail` for a member the failure detector declared dead (Redis
  7.0.15 sends `fail`, though its documentation says `failed`), `loading` for
  an owner that does not hold the shard's slots whole, and `online` otherwise.
  Loading is: this node as the primary while it still pulls the slots' data
  (it answers TRYAGAIN meanwhile), this node as a replica until its copy is
  complete, and a replica this node feeds while its full copy is under way,
  its stream broke (it restarts with a full copy) or it has no stream yet.
  Copies between two other nodes are not visible from here: those are
  `online` unless dead.

Pure except `read()`, which only reads attributes of the live replicator.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

COUNTERS = ("frames_applied", "effects_applied", "frames_refused", "full_syncs", "writes_held", "clients_dropped")

Owners = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Feed:
    """A stream this node feeds as a primary: to `replica`, for `slots`."""
    replica: str
    slots: frozenset[int]
    sent: int                   # the highest offset sent
    acked: int                  # the highest offset the replica acknowledged
    lag: int                    # frames sent and not acknowledged
    in_sync: bool               # its full copy is acknowledged and it is not broken
    copying: frozenset[int]     # slots whose full copy is not acknowledged yet
    broken: bool                # refused or overflowed: it restarts with a full copy


@dataclass(frozen=True, slots=True)
class Follow:
    """A stream this node follows as a replica: from `primary`, applied up to `applied`."""
    primary: str
    applied: int


@dataclass(frozen=True, slots=True)
class ReplicationState:
    mode: str = "sync"
    feeds: Mapping[str, Feed] = field(default_factory=dict)         # by replica id, in stream order
    follows: Mapping[str, Follow] = field(default_factory=dict)     # by primary id
    receiving: frozenset[int] = frozenset()                         # slots whose full copy comes in
    # slots whose data this node does not hold whole (the replicator's `loaded` is 0): ones it
    # leads or replicates that are on their way here, and ones it owns no part of (filtered out)
    missing: frozenset[int] = frozenset()
    counters: Mapping[str, int] = field(default_factory=dict)
    clients_held: int = 0

    @property
    def master_offset(self) -> int:
        """What INFO's master_repl_offset and ROLE say: the frames sent on all streams."""
        return sum(feed.sent for feed in self.feeds.values())


NO_REPLICATION = ReplicationState()


def read(replicator: Any) -> ReplicationState:
    """The replicator's state now, as values (NO_REPLICATION when the node has none)."""
    if replicator is None:
        return NO_REPLICATION
    feeds = {}
    for peer, stream in list(replicator.streams.items()):
        feeds[peer] = Feed(peer, frozenset(stream.slots), stream.next_offset - 1, stream.acked, stream.lag,
                           bool(stream.in_sync), frozenset(stream.copying), bool(stream.broken))
    follows = {primary: Follow(primary, stream.applied) for primary, stream in replicator.following().items()}
    stats = replicator.stats
    loaded = getattr(replicator, "loaded", None)
    missing = frozenset() if loaded is None else frozenset(_zeros(bytes(loaded)))
    return ReplicationState(replicator.mode, feeds, follows, frozenset(replicator.copying_in), missing,
                            {name: int(stats.get(name, 0)) for name in COUNTERS}, len(replicator.held))


def _zeros(flags: bytes) -> list[int]:
    """Indexes of the zero bytes (bytes.find runs in C: a node that holds everything costs one call)."""
    found, at = [], flags.find(0)
    while at != -1:
        found.append(at)
        at = flags.find(0, at + 1)
    return found


# -- CLUSTER SHARDS ------------------------------------------------------------------------------

Progress = Callable[[Owners], list[tuple[int, bool]]]


def shard_progress(state: ReplicationState, me: str, slot_owners: Sequence[Owners]) -> Progress:
    """A function: a shard's owner list -> (replication-offset, loading) of each owner, primary first.

    The slots being copied or missing are grouped by shard once, so a reply
    costs one pass over them, not one per shard.
    """
    incomplete = {slot_owners[slot] for slot in state.receiving | state.missing}
    copying = {peer: {slot_owners[slot] for slot in feed.copying} for peer, feed in state.feeds.items()}

    def progress(owners: Owners) -> list[tuple[int, bool]]:
        primary, replicas = owners[0], owners[1:]
        if primary == me:
            feeds = [state.feeds.get(replica) for replica in replicas]
            sent = [feed.sent for feed in feeds if feed is not None]
            entries = [(max(sent) if sent else state.master_offset, owners in incomplete)]
            for feed in feeds:
                if feed is None:
                    entries.append((0, True))       # no stream yet: nothing copied
                else:
                    entries.append((feed.acked, feed.broken or owners in copying[feed.replica]))
            return entries
        if me not in replicas:
            return [(0, False)] * len(owners)      # a stream between two other nodes: unknown here
        follow = state.follows.get(primary)
        applied = follow.applied if follow is not None else 0
        return [(applied, False)] + [(applied, owners in incomplete) if replica == me else (0, False)
                                     for replica in replicas]

    return progress


# -- CLUSTER REPLICAS ----------------------------------------------------------------------------

def replicas_of(owner_ranges: Sequence[tuple[int, int, Owners]], node_id: str, order: Sequence[str]) -> list[str]:
    """The members holding copies of `node_id`'s primary slots, in `order` (the map's member order)."""
    holders: set[str] = set()
    for _, _, owners in owner_ranges:
        if owners and owners[0] == node_id:
            holders.update(owners[1:])
    return [member for member in order if member in holders]


# -- ROLE ----------------------------------------------------------------------------------------

def role_reply(state: ReplicationState, address: Callable[[str], tuple[str, int] | None]) -> list:
    """ROLE of a master: [b"master", offset, [[ip, port, acknowledged offset], ...]].

    As Redis's roleCommand, only replicas that are online are listed (a stream
    whose full copy is still under way is Redis's SEND_BULK state), with port
    and offset as bulk strings and the master offset as an integer; a replica
    whose address is unknown is left out, as Redis skips one it cannot name.
    """
    replicas = []
    for feed in state.feeds.values():
        where = address(feed.replica)
        if not feed.in_sync or where is None:
            continue
        host, port = where
        replicas.append([host.encode(), str(port).encode(), str(feed.acked).encode()])
    return [b"master", state.master_offset, replicas]


# -- the status page -----------------------------------------------------------------------------

def slots_behind(state: ReplicationState, me: str, slot_owners: Sequence[Owners]) -> set[int]:
    """Slots this node copies out (as their primary, or handing them to a new one) whose copy is incomplete.

    A slot this node leads without holding it is not copied out yet: it counts
    as loading (`slots_loading`), its replicas hold it.
    """
    behind: set[int] = set()
    for feed in state.feeds.values():
        behind |= feed.slots if feed.broken else feed.copying
    feeds, missing = state.feeds, state.missing
    for slot, owners in enumerate(slot_owners):
        if len(owners) > 1 and owners[0] == me and slot not in missing \
                and any(replica not in feeds for replica in owners[1:]):
            behind.add(slot)
    return behind


def slots_loading(state: ReplicationState, me: str, slot_owners: Sequence[Owners]) -> set[int]:
    """Slots this node leads but does not hold yet: it pulls them from another owner (TRYAGAIN meanwhile)."""
    return {slot for slot in state.missing if slot_owners[slot][:1] == (me,)}


def slots_incoming(state: ReplicationState, me: str, slot_owners: Sequence[Owners]) -> set[int]:
    """Slots this node holds as a replica and not whole: their full copy comes in, or has not begun."""
    return {slot for slot in state.receiving | state.missing if me in slot_owners[slot][1:]}


def summary(state: ReplicationState, me: str, slot_owners: Sequence[Owners]) -> dict[str, Any]:
    """The snapshot's `replication` document: is every copy complete, and the counters."""
    behind = slots_behind(state, me, slot_owners)
    loading = slots_loading(state, me, slot_owners)
    incoming = slots_incoming(state, me, slot_owners)
    feeds = list(state.feeds.values())
    return {
        "mode": state.mode,
        # every slot this node leads is here and complete on every replica, and every
        # slot it holds as a replica is complete here: nothing hides behind "ok"
        "in_sync": all(feed.in_sync for feed in feeds) and not behind and not loading and not incoming,
        "streams": len(feeds),
        "streams_in_sync": sum(1 for feed in feeds if feed.in_sync),
        "not_in_sync": sorted(feed.replica for feed in feeds if not feed.in_sync),
        "slots_behind": len(behind),
        "slots_loading": len(loading),
        "slots_receiving": len(incoming),
        "lag_frames": sum(feed.lag for feed in feeds),
        "offset": state.master_offset,
        "primaries_followed": len(state.follows),
        "clients_held": state.clients_held,
        **{name: state.counters.get(name, 0) for name in COUNTERS},
    }


def member_views(state: ReplicationState, me: str, slot_owners: Sequence[Owners],
                 members: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each member's streams with this node: the one this node feeds it, the one it follows from it."""
    receiving: dict[str, int] = {}
    for slot in slots_incoming(state, me, slot_owners):
        primary = slot_owners[slot][0]
        receiving[primary] = receiving.get(primary, 0) + 1
    views = {}
    for node_id in members:
        feed = state.feeds.get(node_id)
        follow = state.follows.get(node_id)
        views[node_id] = {
            "feed": None if feed is None else {
                "in_sync": feed.in_sync, "broken": feed.broken, "lag": feed.lag, "sent": feed.sent,
                "acked": feed.acked, "slots": len(feed.slots), "slots_copying": len(feed.copying),
            },
            "follow": None if follow is None else {
                "applied": follow.applied, "slots_receiving": receiving.get(node_id, 0),
            },
        }
    return views
