"""Clients blocked on keys (BLPOP & co): who waits for what, woken in arrival order.

A blocking command that cannot be served returns `Suspend`. The connection
stops reading that client's requests, and this registry remembers it under
each key. When a key is written, it is marked ready; after the running
command finishes, `serve_ready()` retries the waiters of each ready key in the
order they blocked, exactly as Redis's handleClientsBlockedOnKeys does; as in
Redis 7.0, a waiter woken by a key is served from that key only (not from the
first of its keys that holds something by then). A waiter's timeout is handled
by the node, which calls `timeout()`.

The command side: `serve_or_suspend()` serves a blocking command now or
returns its Suspend, and `first_holding()` finds the key a pop is served from.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from .arguments import WRONGTYPE
from .reply import CommandError


# the wake-up name of clients whose command CLIENT PAUSE postponed (not a key: keyed=False)
PAUSED = b"\x00client pause"
# the wake-up name of clients whose command waits for its slot's data to arrive here
# (hypercache/dispatch.py Dispatcher._await_loading; signalled by hypercache/replication.py)
LOADING = b"\x00slot loading"


@dataclass(slots=True, eq=False)
class Suspend:
    """Returned by a blocking command that must wait for one of `keys`."""
    keys: list[bytes]
    timeout_s: float                 # 0 = wait forever
    retry: Callable[[bytes], Any]    # re-run it on the key made ready: a reply, or Suspend to keep waiting
    timeout_reply: Any               # what the client gets when the timeout passes
    keyed: bool = True               # False: `keys` are private wake-up names (WAIT), not keys of a slot
    # run when the timeout passes, before timeout_reply is sent: undoes what the wait kept
    # (EXEC waiting for its slot's data keeps its transaction open)
    on_timeout: Callable[[], None] | None = None


@dataclass(slots=True, eq=False)
class Waiter:
    session: Any
    suspend: Suspend
    resume: Callable[[Any], None]    # hands the final reply (or a Suspend to wait on) back to the connection
    seq: int = 0
    done: bool = False


@dataclass(slots=True)
class Blocking:
    by_key: dict[bytes, "OrderedDict[int, Waiter]"] = field(default_factory=dict)
    # keys written since the last serve_ready(), each once, in order (Redis's ready_keys)
    ready: dict[bytes, None] = field(default_factory=dict)
    next_seq: int = 0
    blocked_clients: int = 0

    def block(self, session, suspend: Suspend, resume: Callable[[Any], None]) -> Waiter:
        self.next_seq += 1
        waiter = Waiter(session, suspend, resume, self.next_seq)
        for key in suspend.keys:
            self.by_key.setdefault(key, OrderedDict())[waiter.seq] = waiter
        self.blocked_clients += 1
        return waiter

    def signal(self, key: bytes) -> None:
        """A key was written: its waiters get a chance after the current command."""
        if key in self.by_key:
            self.ready[key] = None

    def _unregister(self, waiter: Waiter) -> None:
        waiter.done = True
        self.blocked_clients -= 1
        for key in waiter.suspend.keys:
            waiters = self.by_key.get(key)
            if waiters is not None:
                waiters.pop(waiter.seq, None)
                if not waiters:
                    del self.by_key[key]

    def timeout(self, waiter: Waiter) -> None:
        if not waiter.done:
            self._unregister(waiter)
            suspend = waiter.suspend
            if suspend.on_timeout is not None:
                suspend.on_timeout()
            _answer(waiter, suspend.timeout_reply)

    def finish(self, waiter: Waiter, reply: Any) -> None:
        """End a wait with `reply` (a redirect once the key's slot has moved away)."""
        if not waiter.done:
            self._unregister(waiter)
            _answer(waiter, reply)

    def waiters(self) -> list[Waiter]:
        """Every client still waiting, oldest first, each once."""
        unique = {w.seq: w for waiters in self.by_key.values() for w in waiters.values()}
        return [unique[seq] for seq in sorted(unique)]

    def cancel(self, waiter: Waiter) -> None:
        """The client went away (or was unblocked without a reply)."""
        if not waiter.done:
            self._unregister(waiter)
            _retire(waiter)

    def serve_ready(self) -> None:
        """Retry the waiters of every ready key, oldest first, until none can progress."""
        while self.ready:
            key = next(iter(self.ready))
            del self.ready[key]
            waiters = self.by_key.get(key)
            if not waiters:
                continue
            for waiter in list(waiters.values()):
                if waiter.done:
                    continue
                reply = waiter.suspend.retry(key)
                if isinstance(reply, Suspend) and reply.keys == waiter.suspend.keys:
                    continue        # still nothing for this one (e.g. wrong end of a race)
                # (a Suspend on other names: it waits for something else now, say a command
                # CLIENT PAUSE postponed whose slot's data is still arriving, or a BLPOP whose
                # data arrived with its list empty: resume() blocks it again on those)
                self._unregister(waiter)
                _answer(waiter, reply)


def _spent(*_: Any) -> None:
    """What an ended wait's retry and resume become (see _retire)."""


def _retire(waiter: Waiter) -> None:
    """A wait has ended: unlink its Suspend from its retry and the waiter from its client.

    A retry refers to its Suspend (it returns it to keep waiting) and the Suspend to the
    retry, a reference cycle that only CPython's cycle collector frees; and the node freezes
    long-lived objects after full collections (hypercache/gc_policy.py), so a client blocked
    at a freeze left ~12 objects behind for good when its wait ended (review: 1,000 BLPOP
    clients over 4 freezes, 48,000 objects). Unlinked, reference counting frees them."""
    suspend = waiter.suspend
    suspend.retry = _spent
    suspend.on_timeout = None
    waiter.resume = _spent


def _answer(waiter: Waiter, reply: Any) -> None:
    """Hand an ended wait's reply to its client, the wait retired first."""
    resume = waiter.resume
    _retire(waiter)
    resume(reply)


# -- the command side ------------------------------------------------------------------


def serve_or_suspend(ctx, keys: list[bytes], timeout_s: float,
                     attempt: Callable[[list[bytes], bool], Any], timeout_reply) -> Any:
    """Serve now if `attempt(keys, False)` can, else a Suspend whose retry(key) runs `attempt([key], True)`.

    `attempt(candidates, retrying)` returns the reply served from the first of
    `candidates` that holds something, or None when none does yet; on a retry
    a key of the wrong type means "keep waiting", as in Redis 7.0.
    """
    reply = attempt(keys, False)
    if reply is not None:
        return reply
    slot = ctx.slot
    events = ctx.key_events
    args = events.args if events is not None and events.notifying else None     # (keyspace events)

    def retry(ready_key: bytes):
        saved = ctx.slot
        ctx.slot = slot
        mark = events.begin(args) if args is not None and events.notifying else -1
        try:
            result = attempt([ready_key], True)
        except CommandError as error:
            result = error.with_traceback(None)     # no frame kept alive in a cycle (Dispatcher.call)
        finally:
            ctx.slot = saved
            if mark >= 0:
                events.end(args, result, mark)
        return suspend if result is None else result

    suspend = Suspend(keys, timeout_s, retry, timeout_reply)
    return suspend


def first_holding(ctx, keys: list[bytes], kind: type, retrying: bool) -> tuple[bytes, Any] | None:
    """(key, value) of the first of `keys` holding a `kind`, or None.

    A key of another type is WRONGTYPE, except on a retry, where it is skipped
    (a blocked client keeps waiting, as in Redis 7.0).
    """
    for key in keys:
        value = ctx.store.get_for_write(ctx.slot, key, ctx.now_ms)
        if value is None:
            continue
        if type(value) is not kind:
            if retrying:
                continue
            raise CommandError(WRONGTYPE)
        return key, value
    return None
