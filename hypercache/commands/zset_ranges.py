"""Sorted set range commands: the ZRANGE family, ZRANGESTORE, ZCOUNT, ZLEXCOUNT, ZREMRANGEBY*, and score/lex range parsing.

Ranges are answered from the ZSet's SortedList of (score, member): bisecting
with (score, b"") finds the first pair at a score and (score, _TOP) the first
past it, so rank, count and range operations are O(log n) plus the output.
"""
from __future__ import annotations

from ..arguments import SYNTAX, parse_float, parse_int
from ..reply import CommandError
from ..types.zset import ZSet
from . import command
from .options import index_range
from .zsets import changed, pairs_reply, read_zset

NOT_FLOAT_RANGE = "ERR min or max is not a float"
NOT_LEX_RANGE = "ERR min or max not valid string range item"


class _Top:
    """Greater than every member: (score, _TOP) sorts after every pair with that score."""
    __slots__ = ()

    def __lt__(self, other):
        return False

    def __gt__(self, other):
        return True


_TOP = _Top()


def _score_bound(raw: bytes) -> tuple[float, bool]:
    """(value, exclusive) from `1.5`, `(1.5`, `-inf`, `+inf`."""
    exclusive = raw[:1] == b"("
    try:
        value = parse_float(raw[1:] if exclusive else raw, NOT_FLOAT_RANGE)
    except CommandError:
        raise CommandError(NOT_FLOAT_RANGE) from None
    return value, exclusive


def _lex_bound(raw: bytes) -> tuple[int, bytes]:
    """(kind, value): kind -1 for `-`, 1 for `+`, 0 inclusive `[x`, 2 exclusive `(x`."""
    if raw == b"-":
        return -1, b""
    if raw == b"+":
        return 1, b""
    if raw[:1] == b"[":
        return 0, raw[1:]
    if raw[:1] == b"(":
        return 2, raw[1:]
    raise CommandError(NOT_LEX_RANGE)


def _score_span(z: ZSet, low: tuple[float, bool], high: tuple[float, bool]) -> tuple[int, int]:
    """Indexes [lo, hi) of the pairs with low <= score <= high (bounds possibly exclusive)."""
    ordered = z.ordered
    lo_value, lo_exclusive = low
    hi_value, hi_exclusive = high
    lo = ordered.bisect_right((lo_value, _TOP)) if lo_exclusive else ordered.bisect_left((lo_value, b""))
    hi = ordered.bisect_left((hi_value, b"")) if hi_exclusive else ordered.bisect_right((hi_value, _TOP))
    return lo, max(lo, hi)


def _lex_first(z: ZSet, past: bool, value: bytes) -> int:
    """First index whose member is >= value (> value when `past`), assuming lex order."""
    ordered = z.ordered
    lo, hi = 0, len(ordered)
    while lo < hi:
        mid = (lo + hi) // 2
        member = ordered[mid][1]
        if member < value or (past and member == value):
            lo = mid + 1
        else:
            hi = mid
    return lo


def _lex_span(z: ZSet, low: tuple[int, bytes], high: tuple[int, bytes]) -> tuple[int, int]:
    size = len(z.ordered)
    kind, value = low
    lo = 0 if kind == -1 else size if kind == 1 else _lex_first(z, kind == 2, value)
    kind, value = high
    hi = 0 if kind == -1 else size if kind == 1 else _lex_first(z, kind == 0, value)
    return lo, max(lo, hi)


class _Query:
    """A parsed ZRANGE family request."""
    __slots__ = ("by", "reverse", "offset", "limit", "with_scores", "start", "stop")

    def __init__(self, start: bytes, stop: bytes, by: str = "rank", reverse: bool = False,
                 offset: int = 0, limit: int = -1, with_scores: bool = False) -> None:
        self.start, self.stop, self.by, self.reverse = start, stop, by, reverse
        self.offset, self.limit, self.with_scores = offset, limit, with_scores


def _parse_range_options(args: list[bytes], i: int, query: _Query, allow_by: bool,
                         allow_withscores: bool = True) -> _Query:
    has_limit = False
    while i < len(args):
        option = args[i].lower()
        if option == b"withscores" and allow_withscores:
            query.with_scores = True
        elif option == b"limit" and i + 2 < len(args):
            query.offset = parse_int(args[i + 1])
            query.limit = parse_int(args[i + 2])
            has_limit = True
            i += 2
        elif allow_by and option == b"byscore":
            query.by = "score"
        elif allow_by and option == b"bylex":
            query.by = "lex"
        elif allow_by and option == b"rev":
            query.reverse = True
        else:
            raise CommandError(SYNTAX)
        i += 1
    if has_limit and query.by == "rank":
        raise CommandError("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
    if query.with_scores and query.by == "lex":
        raise CommandError("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    return query


def _select(ctx, key: bytes, query: _Query) -> list[tuple[float, bytes]]:
    """The (score, member) pairs a ZRANGE-style query selects, in reply order."""
    if query.by == "rank":
        start, stop = parse_int(query.start), parse_int(query.stop)
    elif query.by == "score":
        # REV takes max first: ZRANGE key max min BYSCORE REV
        first, second = _score_bound(query.start), _score_bound(query.stop)
    else:
        first, second = _lex_bound(query.start), _lex_bound(query.stop)
    z = read_zset(ctx, key)
    if z is None:
        return []
    ordered = z.ordered
    size = len(ordered)
    if query.by == "rank":
        bounds = index_range(start, stop, size)
        if bounds is None:
            return []
        lo, hi = bounds
        if query.reverse:
            return [ordered[size - 1 - j] for j in range(lo, hi + 1)] if hi - lo < 64 else \
                list(ordered.islice(size - 1 - hi, size - lo, reverse=True))
        return list(ordered.islice(lo, hi + 1))
    low, high = (second, first) if query.reverse else (first, second)
    lo, hi = _score_span(z, low, high) if query.by == "score" else _lex_span(z, low, high)
    offset, limit = query.offset, query.limit
    if offset < 0:
        return []
    if query.reverse:
        stop_at = hi - offset
        start_at = lo if limit < 0 else max(lo, stop_at - limit)
        if stop_at <= start_at:
            return []
        return list(ordered.islice(start_at, stop_at, reverse=True))
    start_at = lo + offset
    stop_at = hi if limit < 0 else min(hi, start_at + limit)
    if stop_at <= start_at:
        return []
    return list(ordered.islice(start_at, stop_at))


@command("zrange", -4, "readonly", 1, 1, 1, group="sorted_set", since="1.2.0",
         summary="Returns members in a sorted set within a range of indexes.")
def zrange(ctx, session, args):
    """Format: ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]"""
    query = _parse_range_options(args, 4, _Query(args[2], args[3]), True)
    return pairs_reply(_select(ctx, args[1], query), query.with_scores, session.protocol)


@command("zrangestore", -5, "write denyoom", 1, 2, 1, group="sorted_set", since="6.2.0",
         summary="Stores a range of members from sorted set in a key.")
def zrangestore(ctx, session, args):
    """Format: ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]"""
    query = _parse_range_options(args, 5, _Query(args[3], args[4]), True, allow_withscores=False)
    pairs = _select(ctx, args[2], query)
    if not pairs:
        ctx.store.delete(ctx.slot, args[1])
        return 0
    ctx.store.set(ctx.slot, args[1], ZSet(pairs))
    return len(pairs)


@command("zrevrange", -4, "readonly", 1, 1, 1, group="sorted_set", since="1.2.0",
         summary="Returns members in a sorted set within a range of indexes in reverse order.")
def zrevrange(ctx, session, args):
    """Format: ZREVRANGE key start stop [WITHSCORES]"""
    if len(args) > 5 or (len(args) == 5 and args[4].lower() != b"withscores"):
        raise CommandError(SYNTAX)
    query = _Query(args[2], args[3], reverse=True, with_scores=len(args) == 5)
    return pairs_reply(_select(ctx, args[1], query), query.with_scores, session.protocol)


def _by(ctx, session, args, by: str, reverse: bool):
    query = _parse_range_options(args, 4, _Query(args[2], args[3], by, reverse), False,
                                 allow_withscores=by == "score")
    return pairs_reply(_select(ctx, args[1], query), query.with_scores, session.protocol)


@command("zrangebyscore", -4, "readonly", 1, 1, 1, group="sorted_set", since="1.0.5",
         summary="Returns members in a sorted set within a range of scores.")
def zrangebyscore(ctx, session, args):
    """Format: ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]"""
    return _by(ctx, session, args, "score", False)


@command("zrevrangebyscore", -4, "readonly", 1, 1, 1, group="sorted_set", since="2.2.0",
         summary="Returns members in a sorted set within a range of scores in reverse order.")
def zrevrangebyscore(ctx, session, args):
    """Format: ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]"""
    return _by(ctx, session, args, "score", True)


@command("zrangebylex", -4, "readonly", 1, 1, 1, group="sorted_set", since="2.8.9",
         summary="Returns members in a sorted set within a lexicographical range.")
def zrangebylex(ctx, session, args):
    """Format: ZRANGEBYLEX key min max [LIMIT offset count]"""
    return _by(ctx, session, args, "lex", False)


@command("zrevrangebylex", -4, "readonly", 1, 1, 1, group="sorted_set", since="2.8.9",
         summary="Returns members in a sorted set within a lexicographical range in reverse order.")
def zrevrangebylex(ctx, session, args):
    """Format: ZREVRANGEBYLEX key max min [LIMIT offset count]"""
    return _by(ctx, session, args, "lex", True)


@command("zcount", 4, "readonly fast", 1, 1, 1, group="sorted_set", since="2.0.0",
         summary="Returns the count of members in a sorted set that have scores within a range.")
def zcount(ctx, session, args):
    """Format: ZCOUNT key min max"""
    low, high = _score_bound(args[2]), _score_bound(args[3])
    z = read_zset(ctx, args[1])
    if z is None:
        return 0
    lo, hi = _score_span(z, low, high)
    return hi - lo


@command("zlexcount", 4, "readonly fast", 1, 1, 1, group="sorted_set", since="2.8.9",
         summary="Returns the number of members in a sorted set within a lexicographical range.")
def zlexcount(ctx, session, args):
    """Format: ZLEXCOUNT key min max"""
    low, high = _lex_bound(args[2]), _lex_bound(args[3])
    z = read_zset(ctx, args[1])
    if z is None:
        return 0
    lo, hi = _lex_span(z, low, high)
    return hi - lo


def _remove_span(ctx, key: bytes, z: ZSet, lo: int, hi: int) -> int:
    if hi <= lo:
        return 0
    before = z.nbytes
    for _, member in list(z.ordered.islice(lo, hi)):
        z.remove(member)
    changed(ctx, key, z, before)
    return hi - lo


@command("zremrangebyscore", 4, "write", 1, 1, 1, group="sorted_set", since="1.2.0",
         summary="Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.")
def zremrangebyscore(ctx, session, args):
    """Format: ZREMRANGEBYSCORE key min max"""
    low, high = _score_bound(args[2]), _score_bound(args[3])
    z = read_zset(ctx, args[1], write=True)
    if z is None:
        return 0
    return _remove_span(ctx, args[1], z, *_score_span(z, low, high))


@command("zremrangebylex", 4, "write", 1, 1, 1, group="sorted_set", since="2.8.9",
         summary="Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.")
def zremrangebylex(ctx, session, args):
    """Format: ZREMRANGEBYLEX key min max"""
    low, high = _lex_bound(args[2]), _lex_bound(args[3])
    z = read_zset(ctx, args[1], write=True)
    if z is None:
        return 0
    return _remove_span(ctx, args[1], z, *_lex_span(z, low, high))


@command("zremrangebyrank", 4, "write", 1, 1, 1, group="sorted_set", since="2.0.0",
         summary="Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.")
def zremrangebyrank(ctx, session, args):
    """Format: ZREMRANGEBYRANK key start stop"""
    start, stop = parse_int(args[2]), parse_int(args[3])
    z = read_zset(ctx, args[1], write=True)
    if z is None:
        return 0
    bounds = index_range(start, stop, len(z.ordered))
    if bounds is None:
        return 0
    return _remove_span(ctx, args[1], z, bounds[0], bounds[1] + 1)
