"""MONITOR: every command the node runs, as one line to each monitoring client.

The line is Redis 7.0's, byte for byte:
`+<seconds>.<microseconds> [0 <ip:port>] "ARG" "arg"...`, each argument as the
client sent it, quoted and escaped as Redis's sdscatrepr writes it, and the
secrets of AUTH and HELLO ... AUTH shown as "(redacted)". As in Redis, a line
is fed after its command ran (so a monitor's own command is echoed after its
reply), a command refused before it ran (unknown, wrong arity, NOAUTH, MOVED,
OOM) shows no line, and admin commands (CONFIG, DEBUG, CLIENT LIST...) are not
shown.
"""
from __future__ import annotations

import re
from time import time_ns
from typing import Any, Callable

from .reply import Raw

REDACTED = b'"(redacted)"'
# sdscatrepr: backslash escapes for these, the printable ASCII as is, \xHH for the rest
_ESCAPES = {ord("\\"): b"\\\\", ord('"'): b'\\"', ord("\n"): b"\\n", ord("\r"): b"\\r",
            ord("\t"): b"\\t", 7: b"\\a", 8: b"\\b"}
_REPR = tuple(_ESCAPES.get(byte, bytes((byte,)) if 0x20 <= byte <= 0x7E else b"\\x%02x" % byte)
              for byte in range(256))
_NEEDS_ESCAPE = re.compile(rb'[^\x20-\x7e]|["\\]')


def quote(arg: bytes) -> bytes:
    """`arg` as Redis's sdscatrepr writes it: in double quotes, with C-style escapes."""
    if _NEEDS_ESCAPE.search(arg) is None:
        return b'"' + arg + b'"'
    return b'"' + b"".join(map(_REPR.__getitem__, arg)) + b'"'


def shown_args(args: list[bytes]) -> list[bytes]:
    """The quoted arguments of a command, its secrets redacted as Redis does."""
    name = args[0].lower()
    if name == b"auth":
        return [quote(args[0])] + [REDACTED] * (len(args) - 1)
    shown = [quote(arg) for arg in args]
    if name == b"hello":
        # HELLO protover [AUTH username password] [SETNAME name]: the pair after AUTH
        index = 2
        while index < len(args):
            if args[index].lower() == b"auth" and index + 2 < len(args):
                shown[index + 1] = shown[index + 2] = REDACTED
                index += 3
            else:
                index += 1
    return shown


def monitor_line(now_us: int, addr: str, args: list[bytes]) -> bytes:
    """One MONITOR line, as a simple string reply (the same in RESP2 and RESP3)."""
    seconds, micros = divmod(now_us, 1_000_000)
    return b"+%d.%06d [0 %s] %s\r\n" % (seconds, micros, addr.encode(), b" ".join(shown_args(args)))


class Monitors:
    """The sessions in MONITOR mode, and the feed that sends them each command's line.

    `on_change(monitoring)` is called when the first session starts
    monitoring and when the last one stops: the dispatcher's lane skips the
    feed, so it is turned off while anyone monitors.
    """

    def __init__(self, on_change: Callable[[bool], None]) -> None:
        self.sessions: dict[int, Any] = {}      # session id -> Session, in arrival order
        self.on_change = on_change
        self.deliver: Callable[[Any, Any], None] | None = None   # ctx.deliver, set by the server

    def add(self, session: Any) -> None:
        session.monitor = True
        self.sessions[session.id] = session
        if len(self.sessions) == 1:
            self.on_change(True)

    def remove(self, session: Any) -> None:
        session.monitor = False
        if self.sessions.pop(session.id, None) is not None and not self.sessions:
            self.on_change(False)

    def feed(self, session: Any, cmd: Any, args: list[bytes]) -> None:
        """Send every monitor the line for `args`, which `session` has just run."""
        if "admin" in cmd.flags or self.deliver is None:
            return
        line = Raw(monitor_line(time_ns() // 1000, session.addr, args))
        for monitor in list(self.sessions.values()):
            # (a client closing after this reply, QUIT's, gets nothing more, as in Redis)
            if not (monitor.close_after_reply or monitor.kill):
                self.deliver(monitor, line)
