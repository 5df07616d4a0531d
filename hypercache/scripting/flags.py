"""Script flags: the `#!lua flags=...` shebang of EVAL scripts and the flags of functions.

Pure parsing with Redis 7.0's error texts. A script without a shebang runs in
"eval compatibility mode": it may write, may touch keys of several slots this
node serves, and its declared flags are the command's own.
"""
from __future__ import annotations

from dataclasses import dataclass

# Redis's scripts_flags_def order (FUNCTION LIST shows flags in this order)
KNOWN = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")


@dataclass(frozen=True, slots=True)
class ScriptFlags:
    compat: bool = True                 # no shebang: EVAL's pre-7.0 behaviour
    names: frozenset[str] = frozenset()

    @property
    def no_writes(self) -> bool:
        return "no-writes" in self.names

    @property
    def allow_cross_slot(self) -> bool:
        return self.compat or "allow-cross-slot-keys" in self.names

    @property
    def no_cluster(self) -> bool:
        return "no-cluster" in self.names

    @property
    def allow_oom(self) -> bool:
        return "allow-oom" in self.names


class FlagError(ValueError):
    """A shebang or flag Redis refuses; str() is the message without the ERR code."""


def split_args(line: str) -> list[str]:
    """The words of a shebang line (sdssplitargs, without quotes handling beyond the common case)."""
    return line.split()


def parse_shebang(body: bytes) -> tuple[ScriptFlags, int]:
    """(flags, length of the shebang line to skip) of an EVAL script body."""
    if not body.startswith(b"#!"):
        return ScriptFlags(), 0
    end = body.find(b"\n")
    if end < 0:
        raise FlagError("Invalid script shebang")
    parts = split_args(body[:end].decode("utf-8", "replace"))
    if not parts:
        raise FlagError("Invalid engine in script shebang")
    if parts[0] != "#!lua":
        raise FlagError(f"Unexpected engine in script shebang: {parts[0]}")
    names: set[str] = set()
    for part in parts[1:]:
        if not part.startswith("flags="):
            raise FlagError(f"Unknown lua shebang option: {part}")
        for flag in (part[6:].split(",") if len(part) > 6 else ()):
            if flag not in KNOWN:
                raise FlagError(f"Unexpected flag in script shebang: {flag}")
            names.add(flag)
    return ScriptFlags(compat=False, names=frozenset(names)), end


def ordered(names: frozenset[str]) -> list[str]:
    return [name for name in KNOWN if name in names]
