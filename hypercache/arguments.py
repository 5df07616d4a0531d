"""Argument parsing shared by commands, with Redis's exact error texts."""
from __future__ import annotations

from typing import Final
import math
import re

from .pulse import paced
from .reply import CommandError

WRONGTYPE: Final = "WRONGTYPE Operation against a key holding the wrong kind of value"
SYNTAX: Final = "ERR syntax error"
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


def wrong_arity(name: str) -> CommandError:
    return CommandError(f"ERR wrong number of arguments for '{name}' command")


def parse_int(raw: bytes, error: str = NOT_INTEGER) -> int:
    """A signed 64-bit integer written as Redis's string2ll accepts it (no '+', no spaces)."""
    if 0 < len(raw) <= 20:
        body = raw[1:] if raw[:1] == b"-" else raw
        # no leading zeros, and no "-0": string2ll refuses both
        if body.isdigit() and (body[:1] != b"0" or raw == b"0"):
            value = int(raw)
            if INT64_MIN <= value <= INT64_MAX:
                return value
    raise CommandError(error)


def parse_float(raw: bytes, error: str = NOT_FLOAT) -> float:
    """A double as Redis's strtold-based parsing accepts it; no NaN, no spaces."""
    # The common shapes (1, -2, 3.5, .5): digits and at most one point, nothing else to check.
    # (A 500,000-member ZADD spent 1-2 s of its hub turn in the general path below.)
    body = raw[1:] if raw[:1] == b"-" else raw
    if 0 < len(body) <= 300 and body.replace(b".", b"", 1).isdigit():
        return float(raw)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise CommandError(error) from None
    if not text or text[0].isspace() or text[-1].isspace() or "_" in text:
        raise CommandError(error)
    lowered = text.lower()
    if lowered in ("inf", "+inf", "infinity", "+infinity"):
        return math.inf
    if lowered in ("-inf", "-infinity"):
        return -math.inf
    try:
        value = float(text)
    except ValueError:
        raise CommandError(error) from None
    if math.isnan(value) or math.isinf(value):
        raise CommandError(error)
    return value


# Plain numbers separated by one space: what a run of scores joined looks like when each one is
# a shape the fast path of parse_float takes as it is.
# (Possessive: one way only to match each number, and no backtracking into it on a miss; an
# ambiguous pattern backtracked exponentially.)
_NUMBER = rb"-?(?>[0-9]++(?:\.[0-9]*+)?|\.[0-9]++)"
_PLAIN_NUMBERS = re.compile(_NUMBER + rb"(?: " + _NUMBER + rb")*+")


def parse_floats(raws: list[bytes], error: str = NOT_FLOAT) -> list[float]:
    """parse_float of each, in one pass at C speed when they are all plain numbers (ZADD's scores)."""
    if len(raws) > 16 and _PLAIN_NUMBERS.fullmatch(b" ".join(raws)) is not None:
        try:
            values = list(map(float, raws))
        except ValueError:      # (an argument holding a space can look like two numbers joined)
            values = []
        if values and -math.inf < min(values) and max(values) < math.inf:    # (300+ digits overflow)
            return values
    return [parse_float(raw, error) for raw in paced(raws)]


def lower(raw: bytes) -> bytes:
    return raw.lower()
