"""Who must hear that a key changed: WATCHing transactions, blocked clients, keyspace notifications, tracking.

The store calls `store.on_modified(key)` on every write, expiry and eviction
(and its `on_removed`, `on_created`, `on_miss` hooks for those events). The
hooks are installed only while someone needs them, so the hot path of a node
where nobody watches, blocks, subscribes to keyspace events or tracks keys
pays nothing for them.

Keyspace notifications: while `notify-keyspace-events` selects anything, the
dispatcher brackets every command with `begin()` / `end()`; the keys the store
reports in between are the command's, and hypercache/notifications.py names
their events. Expired, evicted, new and keymiss events are published as they
happen. Everything is published to this node's subscribers only, as Redis
Cluster nodes do.

Replicas: a Redis replica emits the events of the commands its master sends
it. Here replicas receive states, not commands, so the primary names the events
(`shipping`, while one of its replicas asks for them: its own subscribers still
hear only what its own flags select) and they travel after the writes
(hypercache/replication.py); the replica emits them through its own flags
(`replayed`), as Redis's rewritten commands would name them there.
"""
from __future__ import annotations

from typing import Any, Callable

from mesh.keyslot import keyslot

from . import notifications as kn
from .blocking import Blocking
from .reply import CommandError
from .store import Store
from .tracking import Tracking


class KeyEvents:
    def __init__(self, store: Store, blocking: Blocking, tracking: Tracking | None = None) -> None:
        self.store = store
        self.blocking = blocking
        self.tracking = tracking if tracking is not None else Tracking()
        self.watchers: dict[bytes, set[Any]] = {}
        # keyspace notifications
        self.flags = 0
        self.notifying = False          # flags select a channel kind and a class
        self.publish: Callable[[bytes, bytes], Any] | None = None   # PubSub.deliver_local
        self.on_notifying: Callable[[bool], None] | None = None      # the dispatcher's lane switch
        self.touched: list[bytes] = []  # keys the running commands changed, outermost first
        self.depth = 0                  # commands running (EXEC and scripts nest theirs)
        self.quiet = False              # a flush is running: tracking has been told already
        self.created: list[bytes] = []  # keys the running command created ("new")
        self.args: list[bytes] = []     # the command that began last (a blocked pop served later is its)
        # events named for replicas (see the module's docstring): (class, event, key), in order
        self.shipping = False
        self.shipped: list[tuple[int, bytes, bytes]] = []
        self.own = False                # this node's own flags select something (its replicas' ask)
        self.on_own: Callable[[], None] | None = None    # own changed: the replicator tells our primaries

    def watch(self, session, key: bytes, slot: int) -> None:
        self.watchers.setdefault(key, set()).add(session)
        session.watched[key] = slot
        self.refresh()

    def unwatch_all(self, session) -> None:
        for key in session.watched:
            sessions = self.watchers.get(key)
            if sessions is not None:
                sessions.discard(session)
                if not sessions:
                    del self.watchers[key]
        session.watched.clear()
        session.watch_dirty = False
        self.refresh()

    def configure(self, flags: int) -> None:
        """CONFIG SET notify-keyspace-events."""
        self.flags = flags
        own = kn.active(flags)
        changed = own != self.own
        self.own = own
        self._switch()
        if changed and self.on_own is not None:
            self.on_own()

    def ship(self, on: bool) -> None:
        """Name every event for replicas (on), whatever this node's own flags select."""
        if on != self.shipping:
            self.shipping = on
            self.shipped.clear()
            self._switch()

    def _switch(self) -> None:
        notifying = self.own or self.shipping
        if notifying != self.notifying:
            self.notifying = notifying
            self.touched.clear()
            self.created.clear()
            self.depth = 0
            if self.on_notifying is not None:
                self.on_notifying(notifying)
        self.refresh()

    def refresh(self) -> None:
        store, flags, notifying = self.store, self.flags, self.notifying
        needed = (bool(self.watchers) or bool(self.blocking.by_key) or notifying
                  or self.tracking.active)
        store.on_modified = self._modified if needed else None
        # (installed whatever the classes: an expired key is not the running command's change)
        store.on_removed = self._removed if notifying else None
        store.on_created = self._created if notifying and (flags & kn.NEW or self.shipping) else None
        store.on_miss = self._missed if notifying and flags & kn.KEY_MISS else None

    def _modified(self, key: bytes) -> None:
        sessions = self.watchers.get(key)
        if sessions:
            for session in sessions:
                session.watch_dirty = True
        if key in self.blocking.by_key:
            self.blocking.signal(key)
        if self.depth:
            self.touched.append(key)
        tracking = self.tracking
        if (tracking.table or tracking.prefixes) and not self.quiet:
            tracking.invalidate(key)

    # -- keyspace notifications ------------------------------------------------------------

    def begin(self, args: list[bytes]) -> int:
        """The command `args` starts: returns the mark its end() takes."""
        self.depth += 1
        self.args = args
        return len(self.touched)

    def end(self, args: list[bytes], reply: Any, mark: int) -> None:
        """The command `args` that began at `mark` finished with `reply`: publish its events."""
        self.depth = max(0, self.depth - 1)     # (CONFIG SET may have reset it under the command)
        touched = self.touched
        name = args[0].lower()
        if len(touched) <= mark and name not in kn.UNCHANGED_EVENTS:
            return
        mine = list(dict.fromkeys(touched[mark:]))
        del touched[mark:]
        created, self.created = self.created, []
        if isinstance(reply, CommandError):
            return
        slots = self.store.slots
        gone = {key for key in (mine or args[1:2]) if key not in slots[keyslot(key)]}
        events = kn.events_of(name, args, mine, gone, reply)
        if created:
            # Redis emits "new" where it adds the key: just before the command's
            # first event on that key (MSET: new a, set a, new b, set b), or
            # before all of them for RENAME
            events = kn.place_new(name, created, events)
        # (a command that changed nothing is not propagated by Redis: its replicas hear nothing)
        ship = bool(mine)
        for cls, event, key in events:
            self.emit(cls, event, key, ship)

    def emit(self, cls: int, event: bytes, key: bytes, ship: bool = True) -> None:
        if self.shipping and ship and cls != kn.KEY_MISS:     # (a read's event stays where it was read)
            self.shipped.append((cls, event, key))
        flags = self.flags
        if not flags & cls or self.publish is None:
            return
        if flags & kn.KEYSPACE:
            self.publish(b"__keyspace@0__:" + key, event)
        if flags & kn.KEYEVENT:
            self.publish(b"__keyevent@0__:" + event, key)

    def replayed(self, cls: int, event: bytes, key: bytes) -> None:
        """An event a primary named for a write this replica applied: emitted as Redis's replica
        emits the command its master propagates (an expiry or eviction travels as a DEL,
        INCRBYFLOAT as a SET, HINCRBYFLOAT as an HSET, SPOP as an SREM)."""
        renamed = kn.AS_PROPAGATED.get(event)
        if renamed is not None:
            cls, event = renamed
        flags = self.flags
        if not flags & cls or self.publish is None or not self.own:
            return
        if flags & kn.KEYSPACE:
            self.publish(b"__keyspace@0__:" + key, event)
        if flags & kn.KEYEVENT:
            self.publish(b"__keyevent@0__:" + event, key)

    def _removed(self, key: bytes, event: bytes) -> None:
        """The store expired or evicted `key` (it reported the deletion to _modified first)."""
        touched = self.touched
        if touched and touched[-1] == key:
            touched.pop()       # not the running command's change
        self.emit(kn.EXPIRED if event == b"expired" else kn.EVICTED, event, key)

    def _created(self, key: bytes) -> None:
        if self.depth:
            self.created.append(key)    # placed among the command's events by end()
        else:
            self.emit(kn.NEW, b"new", key)

    def _missed(self, key: bytes) -> None:
        self.emit(kn.KEY_MISS, b"keymiss", key)

    # -- client-side caching ---------------------------------------------------------------

    def flush(self) -> int:
        """FLUSHALL / FLUSHDB: remove every key; tracking clients get one null each, not a message a key."""
        tracking = self.tracking
        if not tracking.active:
            return self.store.flush()
        tracking.flushed()
        self.quiet = True
        try:
            return self.store.flush()
        finally:
            self.quiet = False
