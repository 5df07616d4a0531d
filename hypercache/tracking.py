"""Client-side caching (CLIENT TRACKING): which clients cached which keys, and their invalidation messages.

Two modes, as in Redis 7.0 (src/tracking.c):

* default: a read by a tracking client remembers its keys (`remember`); the
  first write to such a key sends the client one invalidation and forgets the
  key (a client reads it again to be told again). OPTIN remembers only the
  reads right after CLIENT CACHING YES, OPTOUT all but those after CLIENT
  CACHING NO. The table is bounded by `tracking-table-max-keys`: past it,
  the oldest keys are invalidated as if written.
* BCAST: nothing is remembered; every write to a key under one of the
  client's prefixes (no prefix: every key) is collected per prefix, and once
  per event loop turn (`flush_broadcast`, from the server's end-of-iteration
  watcher, as Redis's beforeSleep) each client of the prefix gets one
  invalidation listing its keys, sorted and each once (Redis keeps them in a
  radix tree); NOLOOP leaves out the keys it wrote last itself.

An invalidation goes to the client itself in RESP3 (a push `invalidate
[key]`), or, with REDIRECT, to the other client, which in RESP2 gets it as a
message on `__redis__:invalidate` when it is subscribed. FLUSHALL sends every
tracking client a null invalidation. NOLOOP leaves out the writer's own keys.
An invalidation for the client that is running the write waits until that
command's reply is written (`pending`), as Redis sends it after the reply.

Bookkeeping only, like the pub/sub hub: it hands messages to `deliver(session,
value)` and never touches a socket.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .reply import Push

CHANNEL = b"__redis__:invalidate"
DEFAULT_MAX_KEYS = 1_000_000        # Redis's tracking-table-max-keys default
SCRIPT_CALLS = frozenset(("eval_ro", "evalsha_ro", "fcall_ro"))


@dataclass(slots=True, eq=False)
class ClientTracking:
    """One client's CLIENT TRACKING ON state (Session.tracking; None while off)."""
    redirect: int = 0                # client id its invalidations go to (0: itself)
    bcast: bool = False
    optin: bool = False
    optout: bool = False
    noloop: bool = False
    caching: bool = False            # CLIENT CACHING YES (optin) / NO (optout) given for the next command
    broken_redirect: bool = False
    prefixes: list[bytes] = field(default_factory=list)


class Tracking:
    def __init__(self, deliver: Callable[[Any, Any], None] | None = None,
                 clients: dict[int, Any] | None = None) -> None:
        self.deliver = deliver
        self.clients = clients if clients is not None else {}   # session id -> Session (ctx.clients)
        self.table: dict[bytes, dict[int, None]] = {}            # key -> ids of the clients that cached it
        self.items = 0                                           # ids across the table (INFO tracking_total_items)
        self.prefixes: dict[bytes, dict[Any, None]] = {}         # BCAST prefix -> sessions
        self.tracking_clients = 0
        self.max_keys = DEFAULT_MAX_KEYS
        self.on_tracking: Callable[[bool], None] | None = None   # the dispatcher: some client tracks, or none
        self.current: Any = None        # the session whose command is running (NOLOOP, pending)
        self.pending: list[Any] = []    # invalidations for `current`, sent after its reply
        # BCAST: prefix -> key written this loop turn -> the session that wrote it last (NOLOOP)
        self.broadcast: dict[bytes, dict[bytes, Any]] = {}

    @property
    def active(self) -> bool:
        return self.tracking_clients > 0 or bool(self.table)

    # -- CLIENT TRACKING -----------------------------------------------------------------

    def enable(self, session, state: ClientTracking) -> None:
        old = session.tracking
        if old is None:
            self.tracking_clients += 1
            if self.tracking_clients == 1 and self.on_tracking is not None:
                self.on_tracking(True)
        elif old.bcast:
            self._drop_prefixes(session, old)
        if state.bcast:
            if not state.prefixes:
                state.prefixes = [b""]
            if old is not None and old.bcast:
                state.prefixes = list(dict.fromkeys(old.prefixes + state.prefixes))
            for prefix in state.prefixes:
                self.prefixes.setdefault(prefix, {})[session] = None
        session.tracking = state
        session.refresh_lane()

    def disable(self, session) -> None:
        state = session.tracking
        if state is None:
            return
        if state.bcast:
            self._drop_prefixes(session, state)
        session.tracking = None
        session.refresh_lane()
        self.tracking_clients -= 1
        if not self.tracking_clients and self.on_tracking is not None:
            self.on_tracking(False)

    def _drop_prefixes(self, session, state: ClientTracking) -> None:
        for prefix in state.prefixes:
            sessions = self.prefixes.get(prefix)
            if sessions is not None:
                sessions.pop(session, None)
                if not sessions:
                    del self.prefixes[prefix]

    # -- reads ---------------------------------------------------------------------------

    def after_call(self, session, cmd, args: list[bytes], in_exec: bool) -> None:
        """A command of a tracking client ran: remember a read's keys; CLIENT CACHING lasts one command."""
        state = session.tracking
        if state is None:
            return          # it was CLIENT TRACKING OFF
        # (a read-only script's own keys are not remembered: the reads it makes are)
        if (not state.bcast and "readonly" in cmd.flags and "pubsub" not in cmd.flags
                and cmd.name not in SCRIPT_CALLS):
            keys = cmd.keys(args)
            if keys:
                self.remember(session, keys)
        if cmd.name != "client|caching" and session.multi is None and not in_exec:
            state.caching = False

    def remember(self, session, keys: list[bytes]) -> None:
        """A read command of a tracking client (not BCAST) ran on `keys`."""
        state = session.tracking
        if (state.optin and not state.caching) or (state.optout and state.caching):
            return
        table, sid = self.table, session.id
        for key in keys:
            ids = table.get(key)
            if ids is None:
                ids = table[key] = {}
            if sid not in ids:
                ids[sid] = None
                self.items += 1
        if self.max_keys and len(table) > self.max_keys:
            self._shrink()

    def _shrink(self) -> None:
        """Past tracking-table-max-keys: invalidate the oldest keys, as if they were written."""
        table = self.table
        while len(table) > self.max_keys:
            self.invalidate(next(iter(table)), bcast=False)

    # -- writes --------------------------------------------------------------------------

    def invalidate(self, key: bytes, bcast: bool = True) -> None:
        """`key` was written, expired, evicted or dropped."""
        if bcast and self.prefixes:
            writer = self.current
            for prefix in self.prefixes:
                if key.startswith(prefix):
                    keys = self.broadcast.get(prefix)
                    if keys is None:
                        keys = self.broadcast[prefix] = {}
                    keys[key] = writer
        ids = self.table.pop(key, None)
        if ids is None:
            return
        self.items -= len(ids)
        clients = self.clients
        for sid in ids:
            session = clients.get(sid)
            if session is None or session.tracking is None or session.tracking.bcast:
                continue
            self._send(session, [key])

    def flush_broadcast(self) -> None:
        """Send the loop turn's BCAST invalidations: one per client and prefix (trackingBroadcastInvalidationMessages)."""
        broadcast, self.broadcast = self.broadcast, {}
        current, self.current = self.current, None      # (no client runs at the end of a turn)
        try:
            for prefix in sorted(broadcast):        # (Redis walks its prefixes' radix tree)
                written = broadcast[prefix]
                keys = sorted(written)
                for session in list(self.prefixes.get(prefix, ())):
                    state = session.tracking
                    if state is None or not state.bcast:
                        continue
                    if state.noloop:
                        own = [key for key in keys if written[key] is not session]
                        if own:
                            self._send(session, own)
                    else:
                        self._send(session, keys)
        finally:
            self.current = current

    def flushed(self) -> None:
        """FLUSHALL / FLUSHDB: every tracking client is told to drop everything (a null)."""
        for session in list(self.clients.values()):
            if session.tracking is not None:
                self._send(session, None)
        self.table = {}
        self.items = 0

    def _send(self, session, keys: list[bytes] | None) -> None:
        state = session.tracking
        if state.noloop and session is self.current and keys is not None:
            return
        target = session
        if state.redirect:
            target = self.clients.get(state.redirect)
            if target is None:
                state.broken_redirect = True
                if session.protocol >= 3:
                    self._deliver(session, Push([b"tracking-redir-broken", state.redirect]))
                return
        if target.protocol >= 3:
            self._deliver(target, Push([b"invalidate", keys]))
        elif target is not session and CHANNEL in target.channels:
            self._deliver(target, Push([b"message", CHANNEL, keys]))

    def _deliver(self, session, push: Push) -> None:
        if session is self.current:
            self.pending.append(push)       # after the reply of the running command
        elif self.deliver is not None:
            self.deliver(session, push)

    def forget(self, session) -> None:
        """A client disconnected (its ids left in the table are skipped, then dropped with their keys)."""
        self.disable(session)
        if self.current is session:
            self.current = None
            self.pending.clear()
