"""Per-connection state that commands read and change: protocol, auth, MULTI, WATCH, pub/sub."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True, eq=False)
class Session:
    id: int
    addr: str = ""                 # "ip:port" of the peer
    laddr: str = ""                # "ip:port" of our end
    fd: int = -1
    protocol: int = 2
    authenticated: bool = True
    name: bytes = b""
    lib_name: bytes = b""
    lib_ver: bytes = b""
    # wall-clock ms, as Redis's ctime and lastinteraction (the read path has that time already)
    created_ms: int = 0
    last_interaction_ms: int = 0
    last_cmd: Any = None           # the Command it ran last (CLIENT LIST cmd=; EXEC's own, not its queue's)
    # cluster: READONLY lets reads be served by replicas; ASKING admits one command for an importing slot
    readonly: bool = False
    asking: bool = False
    # sent CLUSTER SET-CONFIG-EPOCH, which only `redis-cli --cluster create` sends, after ADDSLOTS
    # and before MEET: its MEET is then refused (hypercache/commands/cluster_admin.py)
    sent_config_epoch: bool = False
    # connected to the member's replica endpoint (hypercache/roles.py): a Redis replica
    replica_endpoint: bool = False
    # MULTI: queued (command, args) pairs, or None outside a transaction
    multi: list[tuple[Any, list[bytes]]] | None = None
    multi_error: bool = False      # a queued command was rejected: EXEC answers EXECABORT
    # while EXEC runs: the pushes this client's own commands send it (pub/sub
    # confirmations, its own PUBLISH), placed inside EXEC's reply as Redis does
    exec_pushes: list[Any] | None = None
    watched: dict[bytes, int] = field(default_factory=dict)   # key -> slot
    watch_dirty: bool = False
    # pub/sub
    channels: set[bytes] = field(default_factory=set)
    patterns: set[bytes] = field(default_factory=set)
    shard_channels: set[bytes] = field(default_factory=set)
    # kept in step with the three sets above by the pub/sub module: read on every request
    in_pubsub: bool = False
    no_evict: bool = False
    monitor: bool = False          # in MONITOR mode (hypercache/monitor.py)
    tracking: Any = None           # CLIENT TRACKING ON: a tracking.ClientTracking, else None
    reply_off: bool = False        # CLIENT REPLY OFF
    skip_replies: int = 0          # replies still to drop: CLIENT REPLY SKIP's own and the next one
    no_touch: bool = False         # CLIENT NO-TOUCH ON: its reads leave LRU/LFU as they were
    # ACL: the user logged in (an acl.User; None: the default user); a restricted user's calls
    # are checked (acl_limited), or, when only its commands are restricted, run in its own lane
    user: Any = None
    acl_limited: bool = False
    acl_lane: Any = None
    acl_keys: Any = None           # with key patterns: (cmd, args) -> whether args[1] may be used
    # one of the five above is set: the fast lane, which honours none of them, is not for this client
    lane_off: bool = False
    close_after_reply: bool = False
    kill: bool = False             # CLIENT KILL: close at the next opportunity
    # replication: replica node id -> (stream, offset of its frame holding this client's
    # latest write there); WAIT counts the replicas that acknowledged at least that far
    replication_need: dict[str, Any] = field(default_factory=dict)
    # filled in by the server for CLIENT LIST/INFO
    query_buffer: int = 0
    output_buffer: int = 0

    def refresh_lane(self) -> None:
        self.lane_off = (self.tracking is not None or self.reply_off or self.skip_replies > 0
                         or self.no_touch or self.acl_limited)

    @property
    def subscriptions(self) -> int:
        return len(self.channels) + len(self.patterns) + len(self.shard_channels)
