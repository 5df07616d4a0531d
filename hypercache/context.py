"""What a command handler may use: the node's services, bundled once and passed to every call."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .config import Config, Settings
from .slowlog import SlowLog
from .stats import ServerStats
from .store import Store


@dataclass(slots=True, eq=False)
class Context:
    config: Config
    settings: Settings
    store: Store
    stats: ServerStats
    cluster: Any                        # .me (Member), .slotmap, .accepting_writes() (.writes_until), .status()
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
    # hooks the node installs: shutdown request, client kill, push to a session
    shutdown: Callable[[], None] | None = None
    kill_client: Callable[[int], bool] | None = None
    deliver: Callable[[Any, Any], None] | None = None
    sleep: Callable[[float], None] | None = None
