"""Who must hear that a key changed: WATCHing transactions and clients blocked on it.

The store calls `store.on_modified(key)` on every write, expiry and eviction.
That hook is installed only while someone is watching or blocked, so the hot
path of a node with neither pays nothing for it.
"""
from __future__ import annotations

from typing import Any

from .blocking import Blocking
from .store import Store


class KeyEvents:
    def __init__(self, store: Store, blocking: Blocking) -> None:
        self.store = store
        self.blocking = blocking
        self.watchers: dict[bytes, set[Any]] = {}

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

    def refresh(self) -> None:
        needed = bool(self.watchers) or bool(self.blocking.by_key)
        self.store.on_modified = self._modified if needed else None

    def _modified(self, key: bytes) -> None:
        sessions = self.watchers.get(key)
        if sessions:
            for session in sessions:
                session.watch_dirty = True
        if key in self.blocking.by_key:
            self.blocking.signal(key)
