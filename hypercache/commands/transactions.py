"""Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH, with Redis 7.0 (cluster) semantics.

The dispatcher queues commands while `session.multi` is a list and flags
`session.multi_error` when one is refused at queue time. EXEC runs the queue
without yielding, so the transaction is atomic on the hub with no lock.

WATCH is optimistic locking: the store reports every write, expiry and
eviction of a key (`store.on_modified`), and KeyEvents marks the sessions
watching it dirty. A watched key that merely *reached* its deadline without
being removed yet also fails EXEC, as in Redis 7.0 (isWatchedKeyExpired).
"""
from __future__ import annotations

from ..reply import NULL_ARRAY, OK, CommandError, Raw, encode
from ..routing import NOREPLICAS, TRYAGAIN_LOADING
from . import command
from .acl import exec_refusal

EXECABORT = "EXECABORT Transaction discarded because of previous errors."


def end_transaction(ctx, session) -> None:
    """Leave MULTI and forget every watched key."""
    session.multi = None
    session.multi_error = False
    if session.watched or session.watch_dirty:
        ctx.key_events.unwatch_all(session)


def _watched_key_expired(ctx, session) -> bool:
    expires, now = ctx.store.expires, ctx.now_ms
    for key in session.watched:
        deadline = expires.get(key)
        if deadline is not None and deadline <= now:
            return True
    return False


@command("multi", 1, "noscript loading stale fast allow-busy", group="transactions",
         summary="Starts a transaction.", since="1.2.0")
def multi(ctx, session, args):
    """Format: MULTI"""
    if session.multi is not None:
        raise CommandError("ERR MULTI calls can not be nested")
    session.multi = []
    session.multi_error = False
    return OK


@command("exec", 1, "noscript loading stale skip-slowlog", group="transactions",
         summary="Executes all commands in a transaction.", since="1.2.0")
def exec_(ctx, session, args):
    """Format: EXEC

    Replies with one reply per queued command (errors included), EXECABORT if
    a command was refused while queueing, or a null array if a watched key
    changed or expired.
    """
    queued = session.multi
    if queued is None:
        raise CommandError("ERR EXEC without MULTI")
    if session.multi_error:
        end_transaction(ctx, session)
        raise CommandError(EXECABORT)
    if session.watch_dirty or _watched_key_expired(ctx, session):
        end_transaction(ctx, session)
        return NULL_ARRAY
    # Redis Cluster routes a transaction as one request: all its keys must be
    # in one slot served here, else the whole EXEC is redirected (and discarded).
    dispatcher = ctx.dispatcher
    redirect = dispatcher.route_transaction(session, queued)
    if redirect is TRYAGAIN_LOADING:
        # the slot's data is arriving, or its writes wait for a new replica's copy: the
        # transaction stays open and EXEC waits (Dispatcher._await_loading), then runs
        # whole, or is discarded with this TRYAGAIN if the wait times out
        return redirect
    if redirect is not None:
        end_transaction(ctx, session)
        if redirect is NOREPLICAS:      # (as Redis's rejectCommand answers a refused EXEC)
            raise CommandError(f"EXECABORT Transaction discarded because of: {redirect}")
        raise redirect
    end_transaction(ctx, session)       # unwatch before running: our own writes must not matter
    ctx.executing_multi = True
    session.exec_pushes = []
    pushes = []          # per command: what it pushed to this client before its reply
    try:
        replies = []
        checking = ctx.acl is not None and ctx.acl.checking
        for cmd, argv in queued:
            # as Redis: rules may have changed since the command was queued
            denied = exec_refusal(ctx, session, cmd, argv) if checking else None
            replies.append(denied if denied is not None else dispatcher.call(session, cmd, argv))
            pushes.append(session.exec_pushes)
            session.exec_pushes = []
    finally:
        ctx.executing_multi = False
        session.exec_pushes = None
    if not any(pushes):
        return replies
    # As Redis: the array counts the commands, and a command's pushes come
    # right before its reply (SUBSCRIBE a b: two confirmations for one command).
    out = [b"*%d\r\n" % len(replies)]
    for pushed, reply in zip(pushes, replies):
        for value in pushed:
            encode(value, session.protocol, out)
        encode(reply, session.protocol, out)
    return Raw(b"".join(out))


@command("discard", 1, "noscript loading stale fast allow-busy", group="transactions",
         summary="Discards a transaction.", since="2.0.0")
def discard(ctx, session, args):
    """Format: DISCARD"""
    if session.multi is None:
        raise CommandError("ERR DISCARD without MULTI")
    end_transaction(ctx, session)
    return OK


@command("watch", -2, "noscript loading stale fast allow-busy", 1, -1, 1, group="transactions",
         summary="Monitors changes to keys to determine the execution of a transaction.", since="2.2.0")
def watch(ctx, session, args):
    """Format: WATCH key [key ...]"""
    if session.multi is not None:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    store, slot, now = ctx.store, ctx.slot, ctx.now_ms
    for key in args[1:]:
        # A key already past its deadline is removed first, so we watch its
        # absence (Redis 7.0 likewise does not fail EXEC for an expiry that
        # had happened before WATCH).
        deadline = store.expires.get(key)
        if deadline is not None and deadline <= now:
            store.peek(slot, key, now)
        ctx.key_events.watch(session, key, slot)
    return OK


@command("unwatch", 1, "noscript loading stale fast allow-busy", group="transactions",
         summary="Forgets about watched keys of a transaction.", since="2.2.0")
def unwatch(ctx, session, args):
    """Format: UNWATCH"""
    if session.watched or session.watch_dirty:
        ctx.key_events.unwatch_all(session)
    return OK
