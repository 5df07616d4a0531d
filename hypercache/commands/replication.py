"""WAIT: how many replicas have acknowledged every write this client made.

The counting is the replicator's (hypercache/replication.py): a replica counts
when its stream acknowledged the offset of the client's latest write to it (a
replica the client never wrote to counts at once, as Redis counts replicas at
or past the client's offset). In sync mode a write's reply already waited for
that, so WAIT answers at once; in async mode it blocks like a blocking pop,
woken by acknowledgements, until enough replicas caught up or the timeout.
"""
from __future__ import annotations

from ..arguments import parse_int
from ..blocking import Suspend
from ..reply import CommandError
from . import command

TIMEOUT_NOT_INTEGER = "ERR timeout is not an integer or out of range"
TIMEOUT_NEGATIVE = "ERR timeout is negative"


def _timeout_ms(raw: bytes) -> int:
    try:
        value = parse_int(raw)
    except CommandError:
        raise CommandError(TIMEOUT_NOT_INTEGER) from None
    if value < 0:
        raise CommandError(TIMEOUT_NEGATIVE)
    return value


@command("wait", 3, "noscript", group="generic", since="3.0.0",
         summary="Blocks until the asynchronous replication of all preceding write commands sent by "
                 "the connection is completed.")
def wait(ctx, session, args):
    """Format: WAIT numreplicas timeout  (milliseconds, 0 = forever)"""
    wanted = parse_int(args[1])
    timeout_ms = _timeout_ms(args[2])
    replicator = ctx.replicator
    if replicator is None:
        return 0
    count = replicator.acknowledged_by(session)
    if count >= wanted or wanted <= 0:
        return count
    key = replicator.wake_name(session)

    def retry(_key: bytes):
        now = replicator.acknowledged_by(session)
        if now >= wanted:
            replicator.waits.discard(key)
            return now
        suspend.timeout_reply = now     # what a timeout answers: the count at that moment
        return suspend

    suspend = Suspend([key], timeout_ms / 1000, retry, count, keyed=False)
    replicator.waits.add(key)
    replicator.ask_acks()       # (async mode's replicas acknowledge lazily unless asked)
    return suspend
