"""The status snapshot: the one read-only dict the node hands the web app, written down as types.

The node builds a fresh snapshot for every request (the web app never keeps or
mutates one), so the UI can never reach into node internals or hold a lock on
them. These TypedDicts are the contract; the app reads them and checks nothing
it does not use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NotRequired, TypedDict

SLOT_COUNT = 16384

# ok: nothing hides behind it; degraded: every slot served, a copy missing (hypercache/health.py)
ClusterState = Literal["ok", "degraded", "fail"]
MemberState = Literal["alive", "suspect", "dead"]
EventKind = Literal["join", "leave", "suspect", "alive", "dead", "epoch"]
MEMBER_STATES: tuple[MemberState, ...] = ("alive", "suspect", "dead")

# An inclusive slot range [start, end], as CLUSTER SLOTS reports it.
SlotRange = list[int]


class NodeInfo(TypedDict):
    id: str  # 40 lowercase hex characters
    host: str  # announce host, never a bind address
    port: int  # RESP
    mesh_port: int
    http_port: int
    version: str  # hypercache's own version (the Redis one it matches is INFO's redis_version)
    compiled: bool  # whether the hot modules run compiled with mypyc (hypercache/compiled.py)
    form: str       # which form runs, and why: "mypyc (13 modules)", "python (HYPERCACHE_PURE=1)"


class Balance(TypedDict):
    """How evenly the ring spreads slots (mesh/balance.py)."""
    primary_max_over_ideal: float  # the busiest member's primary slots over 16384 / members
    replica_max_over_ideal: float  # the same for replica slots (0 at replication factor 1)
    evening_out: bool  # uneven past tolerance: maps moving slots to their replicas follow once settled


class ClusterInfo(TypedDict):
    state: ClusterState
    reason: str | None  # why the state is not "ok", in words (None when it is)
    epoch: int
    replication_factor: int
    accepting_writes: bool
    slots_assigned: int
    slots_ok: int
    balance: Balance


class Feed(TypedDict):
    """The stream this node feeds a member (it holds copies of this node's slots)."""
    in_sync: bool  # its full copy is acknowledged and it is not broken
    broken: bool  # refused or overflowed: it restarts with a full copy
    lag: int  # frames sent and not acknowledged
    sent: int  # offsets count the stream's frames
    acked: int
    slots: int  # slots it carries
    slots_copying: int  # of them, slots whose full copy is not acknowledged yet


class Follow(TypedDict):
    """The stream this node follows from a member (this node holds copies of its slots)."""
    applied: int  # the highest offset applied here
    slots_receiving: int  # its slots whose full copy is coming in


class MemberReplication(TypedDict):
    feed: Feed | None
    follow: Follow | None


class Replication(TypedDict):
    mode: Literal["sync", "async"]
    # False while any slot this node leads lacks a complete copy on a replica the
    # map names, or any slot it holds as a replica is incomplete here
    in_sync: bool
    streams: int
    streams_in_sync: int
    not_in_sync: list[str]  # ids of the replicas whose stream is not in sync
    slots_behind: int  # slots this node copies out whose copy on the other owner is incomplete
    slots_loading: int  # slots this node leads and still pulls from another owner (TRYAGAIN meanwhile)
    slots_receiving: int  # slots this node holds as a replica whose copy here is incomplete
    lag_frames: int
    offset: int  # frames sent on all streams (INFO's master_repl_offset)
    primaries_followed: int
    clients_held: int
    frames_applied: int
    effects_applied: int
    frames_refused: int
    full_syncs: int
    writes_held: int
    clients_dropped: int


class Member(TypedDict):
    id: str
    host: str
    port: int
    mesh_port: int
    http_port: int
    state: MemberState
    incarnation: int
    last_heartbeat_age_s: float | None  # None for myself and never-heard peers
    myself: bool
    primary_ranges: list[SlotRange]
    replica_ranges: list[SlotRange]
    keys: int | None  # None when the member's load is unknown to this node
    used_memory: int | None
    ops_per_sec: float | None
    replication: MemberReplication  # as this node sees its streams with the member
    mesh_received: NotRequired[int]  # mesh messages accepted from the member (0 for myself)
    mesh_received_bytes: NotRequired[int]


class CommandStats(TypedDict):
    calls: int
    usec: int
    failed_calls: int
    rejected_calls: int
    # Upper bound in microseconds (a power of 2) -> calls in that bucket alone
    # (not cumulative). Keys may arrive as strings when the snapshot went through JSON.
    latency_us_buckets: dict[int, int]


class Stats(TypedDict):
    keys: int
    used_memory: int
    ops_per_sec: float
    connected_clients: int
    expired_keys: int
    evicted_keys: int
    moved_sent: int
    ask_sent: int
    mesh_in: int
    mesh_out: int
    mesh_out_bytes: NotRequired[int]  # what the mesh published (each message reaches every peer)
    stranded_keys: NotRequired[int]  # keys held for slots this node no longer owns
    mesh_dropped: int
    mesh_in_by_kind: NotRequired[dict[str, int]]  # messages accepted from peers, by kind (heartbeat, commit...)
    mesh_peers_refused: NotRequired[int]  # peers not subscribed to for want of open files
    mesh_relayed_in: NotRequired[int]     # messages heard through relayers (mesh/links.py `relay`)
    mesh_relayed_out: NotRequired[int]    # messages this node relayed
    mesh_local_health: NotRequired[int]  # how late this node runs (mesh/awareness.py): 0 on time
    mesh_suspect_after_s: NotRequired[float]  # the silence after which it suspects a peer now
    mesh_late_evidence: NotRequired[int]  # late timer ticks and refutations it counted
    mesh_stranded: NotRequired[bool]      # a watcher silent for long (mesh/strand.py)
    mesh_roll_calls: NotRequired[int]     # roll calls it made meanwhile
    uptime_s: float
    commands: dict[str, CommandStats]


class Event(TypedDict):
    at_unix: float  # wall clock, for display only; liveness never uses it
    kind: EventKind
    node: str | None
    epoch: int
    text: str


class Snapshot(TypedDict):
    node: NodeInfo
    cluster: ClusterInfo
    members: list[Member]
    replication: Replication
    stats: Stats
    events: list[Event]


SnapshotSource = Callable[[], Snapshot]
