"""What a command handler may use: the node's services, bundled once and passed to every call."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

from mesh.slotmap import Member, SlotMap

from .config import Config, Settings
from .latency import LatencyMonitor
from .slowlog import SlowLog
from .stats import ServerStats
from .store import Store

if TYPE_CHECKING:
    from mesh.links import PeerLinks


class ClusterView(Protocol):
    """What commands and the dispatcher read of the cluster: mesh/bus.py's Mesh, or the one-member
    stand-in of the unit tests (which has only what the commands they run read)."""

    me: Member
    slotmap: SlotMap                    # the committed map, swapped whole on every epoch
    writes_until: float                 # monotonic deadline of accepting_writes(), read by the fast lane
    node_timeout_s: float
    links: PeerLinks                    # CLUSTER FORGET drops the forgotten node's link

    def accepting_writes(self) -> bool: ...

    def is_alive(self, node_id: str) -> bool: ...

    def silent(self, node_id: str) -> bool: ...

    def declare_dead(self, node_id: str) -> None: ...

    def take_over(self) -> SlotMap: ...

    def status(self) -> dict: ...


@dataclass(slots=True, eq=False)
class Context:
    config: Config
    settings: Settings
    store: Store
    stats: ServerStats
    cluster: ClusterView
    node_id: str
    clients: dict[int, Any] = field(default_factory=dict)    # session id -> Session
    pubsub: Any = None                  # PubSub hub (channels, patterns, shard channels)
    blocking: Any = None                # Blocking registry for BLPOP & co
    key_events: Any = None              # KeyEvents: WATCH and blocked-client wakeups
    started_at: float = 0.0             # monotonic seconds
    now_ms: int = 0                     # wall-clock ms, read once per batch
    slot: int = -1                      # slot of the running command's keys (-1: keyless)
    executing_multi: bool = False
    dispatcher: Any = None              # the Dispatcher: EXEC runs queued commands through it
    replicator: Any = None              # the Replicator: WAIT, ROLE, INFO replication
    monitors: Any = None                # Monitors: the MONITOR sessions, fed by the dispatcher
    scripts: Any = None                 # the Lua script Engine (scripting/engine.py), made at first use
    dirty: int = 0                      # writes since start (INFO rdb_changes_since_last_save)
    slowlog: SlowLog = field(default_factory=SlowLog)
    latency: LatencyMonitor = field(default_factory=LatencyMonitor)
    acl: Any = None                     # acl.Users: the users, the ACL log (None in unit-test stand-ins)
    # hooks the node installs: shutdown request, client kill, push to a session
    shutdown: Callable[[], None] | None = None
    kill_client: Callable[[int], bool] | None = None
    deliver: Callable[[Any, Any], None] | None = None
    sleep: Callable[[float], None] | None = None
