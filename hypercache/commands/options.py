"""Parse the argument forms several command groups share: numkeys key lists, blocking timeouts, index ranges.

Each keeps Redis's exact error texts, so a list, set or sorted set command
answers a bad argument byte for byte as redis-server does.
"""
from __future__ import annotations

import math
from typing import Callable

from ..arguments import INT64_MAX, SYNTAX, parse_int
from ..reply import CommandError

NUMKEYS_NOT_POSITIVE = "ERR numkeys should be greater than 0"
TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
TIMEOUT_NEGATIVE = "ERR timeout is negative"


def numkeys_keys(first: int) -> Callable[[list], list]:
    """find_keys for `numkeys key [key ...]` at args[first]; [] when numkeys is unusable."""
    def find(args: list) -> list:
        try:
            n = int(args[first])
        except (ValueError, IndexError):
            return []
        if n <= 0 or first + 1 + n > len(args):
            return []
        return args[first + 1:first + 1 + n]
    return find


def parse_numkeys(args: list[bytes], first: int, too_many: str = SYNTAX) -> list[bytes]:
    """The keys of `numkeys key [key ...]` at args[first]; `too_many` when fewer arguments follow."""
    numkeys = parse_int(args[first], NUMKEYS_NOT_POSITIVE)
    if numkeys <= 0:
        raise CommandError(NUMKEYS_NOT_POSITIVE)
    if numkeys > len(args) - first - 1:
        raise CommandError(too_many)
    return args[first + 1:first + 1 + numkeys]


COUNT_NOT_POSITIVE = "ERR count should be greater than 0"


def parse_mpop(args: list[bytes], first: int, ends: dict[bytes, bool]) -> tuple[list[bytes], bool, int]:
    """(keys, end, count) from `numkeys key [key ...] END [COUNT count]` at args[first].

    The form of LMPOP/BLMPOP (END is LEFT or RIGHT) and ZMPOP/BZMPOP (MIN or
    MAX); `ends` maps the lowercased words to what the caller wants for them.
    """
    keys = parse_numkeys(args, first)
    where_at = first + 1 + len(keys)
    if where_at >= len(args) or args[where_at].lower() not in ends:
        raise CommandError(SYNTAX)
    end = ends[args[where_at].lower()]
    count = 1
    i = where_at + 1
    seen_count = False
    while i < len(args):
        if args[i].lower() == b"count" and i + 1 < len(args) and not seen_count:
            count = parse_int(args[i + 1], COUNT_NOT_POSITIVE)
            if count <= 0:
                raise CommandError(COUNT_NOT_POSITIVE)
            seen_count = True
            i += 2
        else:
            raise CommandError(SYNTAX)
    return keys, end, count


def parse_limit(args: list[bytes], i: int) -> int:
    """The `[LIMIT limit]` of SINTERCARD and ZINTERCARD from args[i] on; 0 = no limit."""
    limit = 0
    while i < len(args):
        if args[i].lower() == b"limit" and i + 1 < len(args):
            limit = parse_int(args[i + 1], "ERR LIMIT can't be negative")
            if limit < 0:
                raise CommandError("ERR LIMIT can't be negative")
            i += 2
        else:
            raise CommandError(SYNTAX)
    return limit


def parse_timeout(raw: bytes) -> float:
    """Seconds to wait (0 = forever), with Redis's errors for a bad timeout."""
    try:
        text = raw.decode("ascii")
        if not text or text[0].isspace() or text[-1].isspace():
            raise ValueError
        value = float(text)
    except (UnicodeDecodeError, ValueError):
        raise CommandError(TIMEOUT_NOT_FLOAT) from None
    if math.isnan(value):
        raise CommandError(TIMEOUT_NOT_FLOAT)
    if value * 1000 > INT64_MAX:       # Redis's conversion wraps to a negative number
        raise CommandError(TIMEOUT_NEGATIVE)
    if value < 0:
        raise CommandError(TIMEOUT_NEGATIVE)
    return math.ceil(value * 1000) / 1000


def index_range(start: int, end: int, size: int) -> tuple[int, int] | None:
    """Normalise Redis's inclusive start/end (negative from the tail); None when empty."""
    if start < 0:
        start += size
    if end < 0:
        end += size
    if start < 0:
        start = 0
    if start > end or start >= size:
        return None
    return start, min(end, size - 1)
