"""SLOWLOG GET/LEN/RESET/HELP over the node's SlowLog (hypercache/slowlog.py)."""
from __future__ import annotations

from ..arguments import parse_int
from ..reply import OK, CommandError, Status
from . import command, container

NEGATIVE_COUNT = "ERR count should be greater than or equal to -1"

container("slowlog", -2, "", "server", "A container for slow log commands.", "2.2.12")


@command("slowlog|get", -2, "admin loading stale", group="server",
         summary="Returns the slow log's entries.", since="2.2.12")
def slowlog_get(ctx, session, args):
    """Format: SLOWLOG GET [count]  (default 10; -1: all)"""
    if len(args) > 3:
        raise CommandError("ERR wrong number of arguments for 'slowlog|get' command")
    count = 10
    if len(args) == 3:
        count = parse_int(args[2], NEGATIVE_COUNT)
        if count < -1:
            raise CommandError(NEGATIVE_COUNT)
    return ctx.slowlog.newest(count)


@command("slowlog|len", 2, "admin loading stale", group="server",
         summary="Returns the number of entries in the slow log.", since="2.2.12")
def slowlog_len(ctx, session, args):
    """Format: SLOWLOG LEN"""
    return len(ctx.slowlog.entries)


@command("slowlog|reset", 2, "admin loading stale", group="server",
         summary="Clears all entries from the slow log.", since="2.2.12")
def slowlog_reset(ctx, session, args):
    """Format: SLOWLOG RESET"""
    ctx.slowlog.entries.clear()
    return OK


@command("slowlog|help", 2, "loading stale", group="server",
         summary="Show helpful text about the different subcommands", since="6.2.0")
def slowlog_help(ctx, session, args):
    """Format: SLOWLOG HELP"""
    return [Status(line) for line in (
        b"SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"GET [<count>]",
        b"    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        b"    Entries are made of:",
        b"    id, timestamp, time in microseconds, arguments array, client IP and port,",
        b"    client name",
        b"LEN",
        b"    Return the length of the slowlog.",
        b"RESET",
        b"    Reset the slowlog.",
        b"HELP",
        b"    Prints this help.",
    )]
