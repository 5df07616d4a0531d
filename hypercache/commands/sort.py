"""SORT and SORT_RO on lists, sets and sorted sets, as Redis 7.0 runs them in cluster mode.

A hypercache node is always a cluster node, so BY with a pattern and GET are
refused with Redis Cluster's own errors (their keys could live on any node);
BY with a constant (no `*`) means "do not sort", as in Redis. Numbers are
read as C's strtod reads them (whole string, no overflow or underflow), ties
and ALPHA compare bytes.
"""
from __future__ import annotations

import re
import sys
from operator import itemgetter

from ..arguments import WRONGTYPE, parse_int
from ..pulse import chunks, ordered, paced, ticking
from ..reply import CommandError
from ..types.list import List
from ..types.set import Set
from ..types.zset import ZSet
from . import command

SYNTAX = CommandError("ERR syntax error")
NOT_DOUBLE = CommandError("ERR One or more scores can't be converted into double")
# what strtod consumes: decimal or hex floats, inf/infinity, nan (an error for SORT)
_STRTOD = re.compile(rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
                     rb"(?:[pP][+-]?\d+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)")
DBL_MIN = sys.float_info.min
_ELEMENT = itemgetter(1)


def strtod_score(raw: bytes) -> float | None:
    """The element's score as SORT reads it; None when Redis answers "can't be converted"."""
    if len(raw) <= 15 and raw.isdigit():
        return float(raw)               # the usual element, a plain integer: exact, and as strtod reads it
    text = raw.lstrip(b" \t\n\v\f\r")
    if not text:
        return 0.0                      # strtod of "" stops at once, at the end: no error, 0
    match = _STRTOD.fullmatch(text)
    if match is None:
        return None
    lowered = text.lower()
    if lowered.lstrip(b"+-").startswith(b"0x"):
        body = lowered.lstrip(b"+-")
        try:
            value = float.fromhex(("-" if lowered.startswith(b"-") else "") + body.decode())
        except (ValueError, OverflowError):
            return None
    else:
        try:
            value = float(text)
        except ValueError:
            return None
    if value in (float("inf"), float("-inf")):
        return value if b"inf" in lowered else None      # an overflow is ERANGE
    if value == 0.0 or abs(value) < DBL_MIN:
        digits = re.sub(rb"[eEpP].*$", b"", lowered.lstrip(b"+-0x"))
        if any(c not in b"0." for c in digits):
            return None                                   # underflow: ERANGE
    return value


def _sort_keys(args: list[bytes]) -> list[bytes]:
    keys = [args[1]]
    for i in range(2, len(args) - 1):
        if args[i].lower() == b"store":
            keys.append(args[i + 1])
    return keys


def _sort(ctx, session, args, read_only: bool):
    desc = alpha = dont_sort = False
    limit_start, limit_count = 0, -1
    store_key = None
    j = 2
    while j < len(args):
        arg = args[j].lower()
        left = len(args) - j - 1
        if arg == b"asc":
            desc = False
        elif arg == b"desc":
            desc = True
        elif arg == b"alpha":
            alpha = True
        elif arg == b"limit" and left >= 2:
            limit_start, limit_count = parse_int(args[j + 1]), parse_int(args[j + 2])
            j += 2
        elif not read_only and arg == b"store" and left >= 1:
            store_key = args[j + 1]
            j += 1
        elif arg == b"by" and left >= 1:
            if b"*" not in args[j + 1]:
                dont_sort = True
            else:
                raise CommandError("ERR BY option of SORT denied in Cluster mode.")
            j += 1
        elif arg == b"get" and left >= 1:
            raise CommandError("ERR GET option of SORT denied in Cluster mode.")
        else:
            raise SYNTAX
        j += 1
    value = ctx.store.get(ctx.slot, args[1], ctx.now_ms)
    if value is not None and type(value) not in (List, Set, ZSet):
        raise CommandError(WRONGTYPE)
    if dont_sort and type(value) is Set and store_key is not None:
        dont_sort, alpha = False, True      # a set's order is arbitrary: stored results are sorted
    if value is None:
        elements: list[bytes] = []
    elif type(value) is List:
        elements = list(ticking(value.values()))
    elif type(value) is Set:
        elements = list(value.members)
    else:
        elements = [member for _, member in value.ordered]
    length = len(elements)
    start = min(max(limit_start, 0), length)
    limit_count = min(max(limit_count, -1), length)
    end = length - 1 if limit_count < 0 else start + limit_count - 1
    if start >= length:
        start, end = length - 1, length - 2
    end = min(end, length - 1)
    if dont_sort:
        if desc and type(value) in (List, ZSet):
            elements.reverse()
    else:
        if alpha:
            elements = ordered(elements, desc)
        else:
            scored: list[tuple[float, bytes]] = []
            for piece in chunks(elements):
                if all(map(bytes.isdigit, piece)) and max(map(len, piece), default=0) <= 15:
                    scored.extend(zip(map(float, piece), piece))     # plain integers, read in C
                    continue
                for element in piece:
                    score = strtod_score(element)
                    if score is None:
                        raise NOT_DOUBLE
                    scored.append((score, element))
            # Redis's order: by score, equal scores by their bytes (sortCompare), which is how
            # these pairs compare (0.0 == -0.0, then the bytes); a compare function in Python
            # (cmp_to_key) took ~14 s for a million elements here, the pairs' own order ~2 s.
            elements = []
            for piece in chunks(ordered(scored, desc)):
                elements.extend(map(_ELEMENT, piece))
    chosen = elements[start:end + 1] if end >= start else []
    if store_key is None:
        return chosen
    if chosen:
        ctx.store.set(ctx.slot, store_key, List(paced(chosen)))
    else:
        ctx.store.delete(ctx.slot, store_key)
    return len(chosen)


@command("sort", -2, "write denyoom movablekeys", 1, 1, 1, group="generic", since="1.0.0",
         find_keys=_sort_keys,
         summary="Sorts the elements in a list, a set, or a sorted set, optionally storing the result.")
def sort(ctx, session, args):
    """Format: SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE destination]"""
    return _sort(ctx, session, args, False)


@command("sort_ro", -2, "readonly movablekeys", 1, 1, 1, group="generic", since="7.0.0",
         find_keys=lambda args: [args[1]],
         summary="Returns the sorted elements of a list, a set, or a sorted set.")
def sort_ro(ctx, session, args):
    """Format: SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]"""
    return _sort(ctx, session, args, True)
