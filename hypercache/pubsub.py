"""The pub/sub hub: which sessions listen to which channels, patterns and shard channels.

Pure bookkeeping plus fan-out: it imports no I/O and hands every message to
the `deliver(session, Push)` function the node gives it (the connection
encodes it for that client's protocol). Subscribers are kept per channel in
subscription order, so a PUBLISH reaches them in the order they subscribed,
then pattern subscribers in the order the patterns were first subscribed.

Across a mesh: PUBLISH calls `on_publish(channel, message)` (set by the mesh)
so peers can deliver it to their own subscribers with `deliver_local`; shard
channels (SPUBLISH) stay with the slot's owners and are routed before the
command runs, as in Redis Cluster.
"""
from __future__ import annotations

from typing import Any, Callable

from .glob import glob_match
from .reply import Push

Deliver = Callable[[Any, Any], None]


class PubSub:
    def __init__(self, deliver: Deliver | None = None) -> None:
        self.deliver = deliver
        self.on_publish: Callable[[bytes, bytes], None] | None = None
        self.channels: dict[bytes, dict[Any, None]] = {}
        self.patterns: dict[bytes, dict[Any, None]] = {}
        self.shard_channels: dict[bytes, dict[Any, None]] = {}

    # -- subscriptions -----------------------------------------------------------------

    @staticmethod
    def _add(index: dict, mine: set, session, name: bytes) -> bool:
        if name in mine:
            return False
        mine.add(name)
        index.setdefault(name, {})[session] = None
        session.in_pubsub = True
        return True

    @staticmethod
    def _remove(index: dict, mine: set, session, name: bytes) -> bool:
        if name not in mine:
            return False
        mine.discard(name)
        sessions = index.get(name)
        if sessions is not None:
            sessions.pop(session, None)
            if not sessions:
                del index[name]
        session.in_pubsub = bool(session.channels or session.patterns or session.shard_channels)
        return True

    def subscribe(self, session, channel: bytes) -> bool:
        return self._add(self.channels, session.channels, session, channel)

    def unsubscribe(self, session, channel: bytes) -> bool:
        return self._remove(self.channels, session.channels, session, channel)

    def psubscribe(self, session, pattern: bytes) -> bool:
        return self._add(self.patterns, session.patterns, session, pattern)

    def punsubscribe(self, session, pattern: bytes) -> bool:
        return self._remove(self.patterns, session.patterns, session, pattern)

    def ssubscribe(self, session, channel: bytes) -> bool:
        return self._add(self.shard_channels, session.shard_channels, session, channel)

    def sunsubscribe(self, session, channel: bytes) -> bool:
        return self._remove(self.shard_channels, session.shard_channels, session, channel)

    def forget(self, session) -> None:
        """Drop every subscription of a session (it disconnected, or sent RESET)."""
        for channel in list(session.channels):
            self.unsubscribe(session, channel)
        for pattern in list(session.patterns):
            self.punsubscribe(session, pattern)
        for channel in list(session.shard_channels):
            self.sunsubscribe(session, channel)
        session.in_pubsub = False

    # -- messages ----------------------------------------------------------------------

    def publish(self, channel: bytes, message: bytes) -> int:
        """PUBLISH: deliver here and hand the message to the mesh; returns local receivers."""
        receivers = self.deliver_local(channel, message)
        if self.on_publish is not None:
            self.on_publish(channel, message)
        return receivers

    def deliver_local(self, channel: bytes, message: bytes) -> int:
        """Deliver to this node's channel and pattern subscribers; returns how many got it."""
        deliver = self.deliver
        receivers = 0
        sessions = self.channels.get(channel)
        if sessions:
            push = Push([b"message", channel, message])
            for session in list(sessions):
                deliver(session, push)
            receivers += len(sessions)
        if self.patterns:
            for pattern, sessions in list(self.patterns.items()):
                if glob_match(pattern, channel):
                    push = Push([b"pmessage", pattern, channel, message])
                    for session in list(sessions):
                        deliver(session, push)
                    receivers += len(sessions)
        return receivers


    def spublish(self, channel: bytes, message: bytes) -> int:
        sessions = self.shard_channels.get(channel)
        if not sessions:
            return 0
        push = Push([b"smessage", channel, message])
        for session in list(sessions):
            self.deliver(session, push)
        return len(sessions)

    # -- introspection (PUBSUB ...) ----------------------------------------------------

    def channel_names(self, pattern: bytes | None, shard: bool = False) -> list[bytes]:
        index = self.shard_channels if shard else self.channels
        if pattern is None:
            return list(index)
        return [c for c in index if glob_match(pattern, c)]

    def subscribers(self, channel: bytes, shard: bool = False) -> int:
        index = self.shard_channels if shard else self.channels
        return len(index.get(channel, ()))

    def pattern_count(self) -> int:
        return len(self.patterns)
