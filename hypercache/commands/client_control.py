"""CLIENT PAUSE / UNPAUSE / REPLY / UNBLOCK / NO-TOUCH: what a client may change about how it, or others, are served.

The dispatcher does the work (it postpones paused commands, drops the
replies of a client that asked for none, leaves LRU/LFU alone for a
no-touch client); these handlers parse, check what Redis 7 checks and set
the state.
"""
from __future__ import annotations

import time

from ..arguments import parse_int
from ..blocking import LOADING, PAUSED
from ..reply import OK, CommandError
from . import command, connection  # noqa: F401 (connection declares the CLIENT container)

SYNTAX = "ERR syntax error"
UNBLOCKED = CommandError("UNBLOCKED client unblocked via CLIENT UNBLOCK")


def _subcommand_syntax(args: list[bytes]) -> CommandError:
    """Redis's addReplySubcommandSyntaxError: the subcommand as it was typed."""
    typed = args[1].decode("utf-8", "replace")[:128]
    return CommandError(f"ERR unknown subcommand or wrong number of arguments for '{typed}'. Try CLIENT HELP.")


@command("client|pause", -3, "admin noscript loading stale", group="connection",
         summary="Suspends commands processing.", since="3.0.0")
def client_pause(ctx, session, args):
    """Format: CLIENT PAUSE timeout [WRITE | ALL]  (timeout in ms)"""
    timeout_ms = parse_int(args[2], "ERR timeout is not an integer or out of range")
    if timeout_ms < 0:
        raise CommandError("ERR timeout is negative")
    every_command = True
    if len(args) == 4:
        mode = args[3].lower()
        if mode == b"write":
            every_command = False
        elif mode != b"all":
            raise CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
    elif len(args) > 4:
        raise _subcommand_syntax(args)
    ctx.dispatcher.pause(time.monotonic() + timeout_ms / 1000, every_command)
    return OK


@command("client|unpause", 2, "admin noscript loading stale", group="connection",
         summary="Resumes processing commands from paused clients.", since="6.2.0")
def client_unpause(ctx, session, args):
    """Format: CLIENT UNPAUSE"""
    ctx.dispatcher.unpause()
    return OK


@command("client|reply", 3, "noscript loading stale", group="connection",
         summary="Instructs the server whether to reply to commands.", since="3.2.0")
def client_reply(ctx, session, args):
    """Format: CLIENT REPLY ON | OFF | SKIP  (OFF and SKIP have no reply themselves)"""
    mode = args[2].lower()
    if mode == b"on":
        session.reply_off = False
        session.skip_replies = 0
    elif mode == b"off":
        session.reply_off = True
    elif mode == b"skip":
        if not session.reply_off:
            session.skip_replies = 2        # this command's own reply and the next one's
    else:
        raise CommandError(SYNTAX)
    session.refresh_lane()
    return OK


@command("client|no-touch", 3, "noscript loading stale", group="connection",
         summary="Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
         since="7.2.0")
def client_no_touch(ctx, session, args):
    """Format: CLIENT NO-TOUCH ON | OFF"""
    mode = args[2].lower()
    if mode not in (b"on", b"off"):
        raise CommandError(SYNTAX)
    session.no_touch = mode == b"on"
    session.refresh_lane()
    return OK


@command("client|unblock", -3, "admin noscript loading stale", group="connection",
         summary="Unblocks a client blocked by a blocking command from a different connection.", since="5.0.0")
def client_unblock(ctx, session, args):
    """Format: CLIENT UNBLOCK client-id [TIMEOUT | ERROR]  (1 if it was blocked)"""
    target = parse_int(args[2])
    error = False
    if len(args) == 4:
        reason = args[3].lower()
        if reason == b"error":
            error = True
        elif reason != b"timeout":
            raise CommandError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    elif len(args) > 4:
        raise _subcommand_syntax(args)
    blocking = ctx.blocking
    for waiter in blocking.waiters():
        # (a client postponed by CLIENT PAUSE, or whose command waits for its slot's data, is
        # not blocked by a command of its own: Redis leaves it)
        if waiter.session.id == target and waiter.suspend.keys != [PAUSED] and waiter.suspend.keys != [LOADING]:
            blocking.finish(waiter, UNBLOCKED if error else waiter.suspend.timeout_reply)
            return 1
    return 0
