"""SLOWLOG: the last commands that ran longer than `slowlog-log-slower-than`, as Redis 7.0 keeps them.

An entry is what SLOWLOG GET shows: an id, the wall-clock second it was
logged, the run time in microseconds, the arguments (at most 32, the last
saying how many more there were; each at most 128 bytes, then how many more
bytes), the client's address and name. The newest entries come first and
only `slowlog-max-len` are kept. Pure: the caller passes the time.
"""
from __future__ import annotations

from typing import Final
from collections import deque
from dataclasses import dataclass, field

MAX_ARGC: Final = 32           # Redis's SLOWLOG_ENTRY_MAX_ARGC
MAX_STRING = 128        # Redis's SLOWLOG_ENTRY_MAX_STRING
# threshold_ns while logging is off (slowlog-log-slower-than < 0): 73 years, and under 2**62, so
# compiled code compares a run time with it as a machine int, not as a Python long
NEVER: Final = 1 << 61


@dataclass(slots=True)
class SlowLog:
    threshold_us: int = 10000       # slowlog-log-slower-than (-1: off, 0: every command)
    max_len: int = 128              # slowlog-max-len
    # the threshold in ns, NEVER when off: the dispatcher compares a run time with it, nothing more
    threshold_ns: int = 10_000_000
    entries: deque = field(default_factory=deque)
    next_id: int = 0

    def configure(self, threshold_us: int | None = None, max_len: int | None = None) -> None:
        if threshold_us is not None:
            self.threshold_us = threshold_us
            self.threshold_ns = NEVER if threshold_us < 0 else min(threshold_us * 1000, NEVER)
        if max_len is not None:
            self.max_len = max_len
            self._trim()

    def push(self, args: list[bytes], duration_us: int, now_s: int, addr: str, name: bytes) -> None:
        shown = [_shown(arg) for arg in redacted(args)[:MAX_ARGC]]
        if len(args) > MAX_ARGC:
            shown[-1] = b"... (%d more arguments)" % (len(args) - MAX_ARGC + 1)
        self.entries.appendleft([self.next_id, now_s, duration_us, shown, addr.encode(), name])
        self.next_id += 1
        self._trim()

    def _trim(self) -> None:
        while len(self.entries) > self.max_len:
            self.entries.pop()

    def newest(self, count: int) -> list[list]:
        """SLOWLOG GET count (-1: all)."""
        entries = self.entries
        return list(entries) if count < 0 else [entries[i] for i in range(min(count, len(entries)))]


REDACTED = b"(redacted)"
SENSITIVE_CONFIGS = frozenset((b"requirepass", b"masterauth", b"masteruser"))


def redacted(args: list[bytes]) -> list[bytes]:
    """The arguments with their secrets replaced, as Redis's redactClientCommandArgument leaves
    them for SLOWLOG: AUTH's, HELLO ... AUTH's pair, every argument of ACL SETUSER after the
    subcommand (the user's name too), the value of a sensitive CONFIG SET parameter."""
    name = args[0].lower()
    if name == b"auth":
        return [args[0]] + [REDACTED] * (len(args) - 1)
    if name == b"hello":
        shown = list(args)
        i = 2
        while i < len(args):
            if args[i].lower() == b"auth" and i + 2 < len(args):
                shown[i + 1] = shown[i + 2] = REDACTED
                i += 3
            else:
                i += 1
        return shown
    if name == b"acl" and len(args) > 2 and args[1].lower() == b"setuser":
        return args[:2] + [REDACTED] * (len(args) - 2)
    if name == b"config" and len(args) > 3 and args[1].lower() == b"set":
        shown = list(args)
        for i in range(2, len(args) - 1, 2):
            if args[i].lower() in SENSITIVE_CONFIGS:
                shown[i + 1] = REDACTED
        return shown
    return args


def _shown(arg: bytes) -> bytes:
    if len(arg) > MAX_STRING:
        return arg[:MAX_STRING] + b"... (%d more bytes)" % (len(arg) - MAX_STRING)
    return arg
