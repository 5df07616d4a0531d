"""Sorted set commands: ZADD, ranges by rank/score/lex, pops (and blocking pops), the algebra, ZSCAN.

Ranges are answered from the ZSet's SortedList of (score, member): bisecting
with (score, b"") finds the first pair at a score and (score, _TOP) the first
past it, so rank, count and range operations are O(log n) plus the output.
"""
from __future__ import annotations

import math

from ..arguments import SYNTAX, WRONGTYPE, parse_float, parse_int
from ..blocking import first_holding, serve_or_suspend
from ..resp import NULL_ARRAY, CommandError, format_double
from ..types.scan import parse_random_count, parse_scan, random_picks, scan_members
from ..types.set import Set
from ..types.zset import ZSet
from . import command
from .options import index_range, numkeys_keys, parse_timeout

OUT_OF_RANGE_POSITIVE = "ERR value is out of range, must be positive"
NAN_SCORE = "ERR resulting score is not a number (NaN)"
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


def _read(ctx, key: bytes) -> ZSet | None:
    value = ctx.store.get(ctx.slot, key, ctx.now_ms)
    if value is None or type(value) is ZSet:
        return value
    raise CommandError(WRONGTYPE)


def _changed(ctx, key: bytes, z: ZSet, before: int) -> None:
    ctx.store.resized(key, z.nbytes - before)   # first, so delete() subtracts what was counted
    if not z.scores:
        ctx.store.delete(ctx.slot, key)


def _pairs_reply(pairs, with_scores: bool, protocol: int) -> list:
    """(score, member) pairs as Redis replies: members, or members with scores (pairs in RESP3)."""
    if not with_scores:
        return [m for _, m in pairs]
    if protocol == 3:
        return [[m, s] for s, m in pairs]
    flat = []
    for s, m in pairs:
        flat.append(m)
        flat.append(s)
    return flat


# -- ZADD / ZINCRBY / ZREM / point reads ----------------------------------------------


@command("zadd", -4, "write denyoom fast", 1, 1, 1, group="sorted_set", since="1.2.0",
         summary="Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.")
def zadd(ctx, session, args):
    """Format: ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]"""
    n = len(args)
    if n == 4 and args[2].isdigit() and len(args[2]) < 16:     # the common shape: plain digits
        store = ctx.store
        key = args[1]
        z = store.get(ctx.slot, key, ctx.now_ms)
        if z is None:
            z = ZSet()
            z.add(args[3], float(args[2]))
            store.set(ctx.slot, key, z)
            return 1
        if type(z) is not ZSet:
            raise CommandError(WRONGTYPE)
        before = z.nbytes
        score = float(args[2])
        old = z.add(args[3], score)
        if old is None:
            store.resized(key, z.nbytes - before)
            return 1
        if old != score:
            store.resized(key, 0)      # modified: WATCH and blocked clients must hear of it
        return 0
    nx = xx = gt = lt = ch = incr = False
    i = 2
    while i < n:
        option = args[i].lower()
        if option == b"nx":
            nx = True
        elif option == b"xx":
            xx = True
        elif option == b"gt":
            gt = True
        elif option == b"lt":
            lt = True
        elif option == b"ch":
            ch = True
        elif option == b"incr":
            incr = True
        else:
            break
        i += 1
    pairs_count = n - i
    if pairs_count == 0 or pairs_count % 2:
        raise CommandError(SYNTAX)
    if nx and xx:
        raise CommandError("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError("ERR GT, LT, and/or NX options at the same time are not compatible")
    if incr and pairs_count > 2:
        raise CommandError("ERR INCR option supports a single increment-element pair")
    scores = [parse_float(args[j]) for j in range(i, n, 2)]
    key = args[1]
    store = ctx.store
    z = store.get(ctx.slot, key, ctx.now_ms)
    new = z is None
    if new:
        if xx:
            return None if incr else 0
        z = ZSet()
    elif type(z) is not ZSet:
        raise CommandError(WRONGTYPE)
    before = z.nbytes
    zscores = z.scores
    added = changed = 0
    result = None
    for score, j in zip(scores, range(i + 1, n, 2)):
        member = args[j]
        current = zscores.get(member)
        if current is None:
            if xx:
                continue
            z.add(member, score)
            added += 1
            result = score
            continue
        if nx:
            continue
        if incr:
            score = current + score
            if math.isnan(score):
                if new and z.scores:
                    store.set(ctx.slot, key, z)
                raise CommandError(NAN_SCORE)
        if (gt and score <= current) or (lt and score >= current):
            continue
        result = score
        if score != current:
            z.add(member, score)
            changed += 1
    if new:
        if z.scores:
            store.set(ctx.slot, key, z)
    elif added or changed:
        store.resized(key, z.nbytes - before)
    if incr:
        return result
    return added + changed if ch else added


@command("zincrby", 4, "write denyoom fast", 1, 1, 1, group="sorted_set", since="1.2.0",
         summary="Increments the score of a member in a sorted set.")
def zincrby(ctx, session, args):
    """Format: ZINCRBY key increment member"""
    increment = parse_float(args[2])
    key, member = args[1], args[3]
    z = _read(ctx, key)
    new = z is None
    if new:
        z = ZSet()
    current = z.scores.get(member)
    score = increment if current is None else current + increment
    if math.isnan(score):
        raise CommandError(NAN_SCORE)
    before = z.nbytes
    z.add(member, score)
    if new:
        ctx.store.set(ctx.slot, key, z)
    else:
        ctx.store.resized(key, z.nbytes - before)
    return score


@command("zrem", -3, "write fast", 1, 1, 1, group="sorted_set", since="1.2.0",
         summary="Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.")
def zrem(ctx, session, args):
    """Format: ZREM key member [member ...]"""
    z = _read(ctx, args[1])
    if z is None:
        return 0
    before = z.nbytes
    removed = 0
    for member in args[2:]:
        removed += z.remove(member)
    if removed:
        _changed(ctx, args[1], z, before)
    return removed


@command("zscore", 3, "readonly fast", 1, 1, 1, group="sorted_set", since="1.2.0",
         summary="Returns the score of a member in a sorted set.")
def zscore(ctx, session, args):
    """Format: ZSCORE key member"""
    z = _read(ctx, args[1])
    return None if z is None else z.scores.get(args[2])


@command("zmscore", -3, "readonly fast", 1, 1, 1, group="sorted_set", since="6.2.0",
         summary="Returns the score of one or more members in a sorted set.")
def zmscore(ctx, session, args):
    """Format: ZMSCORE key member [member ...]"""
    z = _read(ctx, args[1])
    if z is None:
        return [None] * (len(args) - 2)
    get = z.scores.get
    return [get(m) for m in args[2:]]


@command("zcard", 2, "readonly fast", 1, 1, 1, group="sorted_set", since="1.2.0",
         summary="Returns the number of members in a sorted set.")
def zcard(ctx, session, args):
    """Format: ZCARD key"""
    z = _read(ctx, args[1])
    return 0 if z is None else len(z.scores)


def _rank(ctx, args, reverse: bool):
    z = _read(ctx, args[1])
    if z is None:
        return None
    rank = z.rank(args[2])
    if rank is None:
        return None
    return len(z.scores) - 1 - rank if reverse else rank


@command("zrank", 3, "readonly fast", 1, 1, 1, group="sorted_set", since="2.0.0",
         summary="Returns the index of a member in a sorted set ordered by ascending scores.")
def zrank(ctx, session, args):
    """Format: ZRANK key member"""
    return _rank(ctx, args, False)


@command("zrevrank", 3, "readonly fast", 1, 1, 1, group="sorted_set", since="2.0.0",
         summary="Returns the index of a member in a sorted set ordered by descending scores.")
def zrevrank(ctx, session, args):
    """Format: ZREVRANK key member"""
    return _rank(ctx, args, True)


# -- ranges ---------------------------------------------------------------------------


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
    z = _read(ctx, key)
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
    return _pairs_reply(_select(ctx, args[1], query), query.with_scores, session.protocol)


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
    return _pairs_reply(_select(ctx, args[1], query), query.with_scores, session.protocol)


def _by(ctx, session, args, by: str, reverse: bool):
    query = _parse_range_options(args, 4, _Query(args[2], args[3], by, reverse), False,
                                 allow_withscores=by == "score")
    return _pairs_reply(_select(ctx, args[1], query), query.with_scores, session.protocol)


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
    z = _read(ctx, args[1])
    if z is None:
        return 0
    lo, hi = _score_span(z, low, high)
    return hi - lo


@command("zlexcount", 4, "readonly fast", 1, 1, 1, group="sorted_set", since="2.8.9",
         summary="Returns the number of members in a sorted set within a lexicographical range.")
def zlexcount(ctx, session, args):
    """Format: ZLEXCOUNT key min max"""
    low, high = _lex_bound(args[2]), _lex_bound(args[3])
    z = _read(ctx, args[1])
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
    _changed(ctx, key, z, before)
    return hi - lo


@command("zremrangebyscore", 4, "write", 1, 1, 1, group="sorted_set", since="1.2.0",
         summary="Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.")
def zremrangebyscore(ctx, session, args):
    """Format: ZREMRANGEBYSCORE key min max"""
    low, high = _score_bound(args[2]), _score_bound(args[3])
    z = _read(ctx, args[1])
    if z is None:
        return 0
    return _remove_span(ctx, args[1], z, *_score_span(z, low, high))


@command("zremrangebylex", 4, "write", 1, 1, 1, group="sorted_set", since="2.8.9",
         summary="Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.")
def zremrangebylex(ctx, session, args):
    """Format: ZREMRANGEBYLEX key min max"""
    low, high = _lex_bound(args[2]), _lex_bound(args[3])
    z = _read(ctx, args[1])
    if z is None:
        return 0
    return _remove_span(ctx, args[1], z, *_lex_span(z, low, high))


@command("zremrangebyrank", 4, "write", 1, 1, 1, group="sorted_set", since="2.0.0",
         summary="Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.")
def zremrangebyrank(ctx, session, args):
    """Format: ZREMRANGEBYRANK key start stop"""
    start, stop = parse_int(args[2]), parse_int(args[3])
    z = _read(ctx, args[1])
    if z is None:
        return 0
    bounds = index_range(start, stop, len(z.ordered))
    if bounds is None:
        return 0
    return _remove_span(ctx, args[1], z, bounds[0], bounds[1] + 1)


# -- pops -----------------------------------------------------------------------------


def _pop(ctx, key: bytes, z: ZSet, count: int, highest: bool) -> list[tuple[float, bytes]]:
    ordered = z.ordered
    count = min(count, len(ordered))
    pairs = list(ordered.islice(len(ordered) - count, len(ordered), reverse=True)) if highest \
        else list(ordered.islice(0, count))
    before = z.nbytes
    for _, member in pairs:
        z.remove(member)
    _changed(ctx, key, z, before)
    return pairs


def _pop_command(ctx, session, args, highest: bool):
    if len(args) > 3:
        raise CommandError(SYNTAX)
    count = None
    if len(args) == 3:
        count = parse_int(args[2], OUT_OF_RANGE_POSITIVE)
        if count < 0:
            raise CommandError(OUT_OF_RANGE_POSITIVE)
    z = _read(ctx, args[1])
    if z is None or count == 0:
        return []
    pairs = _pop(ctx, args[1], z, 1 if count is None else count, highest)
    if count is None:
        score, member = pairs[0]
        return [member, score]
    return _pairs_reply(pairs, True, session.protocol)


@command("zpopmin", -2, "write fast", 1, 1, 1, group="sorted_set", since="5.0.0",
         summary="Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.")
def zpopmin(ctx, session, args):
    """Format: ZPOPMIN key [count]"""
    return _pop_command(ctx, session, args, False)


@command("zpopmax", -2, "write fast", 1, 1, 1, group="sorted_set", since="5.0.0",
         summary="Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.")
def zpopmax(ctx, session, args):
    """Format: ZPOPMAX key [count]"""
    return _pop_command(ctx, session, args, True)


def _blocking_pop(ctx, args, highest: bool):
    timeout_s = parse_timeout(args[-1])
    keys = args[1:-1]

    def attempt(retrying: bool):
        found = first_holding(ctx, keys, ZSet, retrying)
        if found is None:
            return None
        key, z = found
        score, member = _pop(ctx, key, z, 1, highest)[0]
        return [key, member, score]

    return serve_or_suspend(ctx, keys, timeout_s, attempt, NULL_ARRAY)


@command("bzpopmin", -3, "write noscript blocking fast", 1, -2, 1, group="sorted_set", since="5.0.0",
         summary="Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.")
def bzpopmin(ctx, session, args):
    """Format: BZPOPMIN key [key ...] timeout"""
    return _blocking_pop(ctx, args, False)


@command("bzpopmax", -3, "write noscript blocking fast", 1, -2, 1, group="sorted_set", since="5.0.0",
         summary="Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise. Deletes the sorted set if the last element was popped.")
def bzpopmax(ctx, session, args):
    """Format: BZPOPMAX key [key ...] timeout"""
    return _blocking_pop(ctx, args, True)


@command("zrandmember", -2, "readonly", 1, 1, 1, group="sorted_set", since="6.2.0",
         summary="Returns one or more random members from a sorted set.")
def zrandmember(ctx, session, args):
    """Format: ZRANDMEMBER key [count [WITHSCORES]]"""
    if len(args) > 4 or (len(args) == 4 and args[3].lower() != b"withscores"):
        raise CommandError(SYNTAX)
    with_scores = len(args) == 4
    count = parse_random_count(args[2], with_scores) if len(args) >= 3 else None
    z = _read(ctx, args[1])
    if count is None:
        return None if z is None else random_picks(list(z.scores), 1)[0]
    if z is None or count == 0:
        return []
    picked = random_picks(list(z.scores), count)
    scores = z.scores
    return _pairs_reply([(scores[m], m) for m in picked], with_scores, session.protocol)


# -- algebra: ZUNION, ZINTER, ZDIFF and their STORE forms -----------------------------


def _algebra_keys(first: int):
    """find_keys: the destination (when `first` is 2) and the `numkeys` source keys."""
    sources = numkeys_keys(first)
    if first != 2:
        return sources

    def find(args: list) -> list:
        keys = sources(args)
        return args[1:2] + keys if keys else []
    return find


def _source(ctx, key: bytes) -> dict[bytes, float] | None:
    """A sorted set's scores, or a plain set's members scored 1 (as Redis allows)."""
    value = ctx.store.get(ctx.slot, key, ctx.now_ms)
    if value is None:
        return None
    if type(value) is ZSet:
        return value.scores
    if type(value) is Set:
        return dict.fromkeys(value.members, 1.0)
    raise CommandError(WRONGTYPE)


def _algebra(ctx, args: list[bytes], first: int, op: str, name: str, store_form: bool):
    """Parse `numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...] [WITHSCORES]` and compute."""
    numkeys = parse_int(args[first])
    if numkeys < 1:
        raise CommandError(f"ERR at least 1 input key is needed for '{name}' command")
    if numkeys > len(args) - first - 1:
        raise CommandError(SYNTAX)
    keys = args[first + 1:first + 1 + numkeys]
    weights = [1.0] * numkeys
    aggregate = "sum"
    with_scores = False
    i = first + 1 + numkeys
    while i < len(args):
        option = args[i].lower()
        remaining = len(args) - i - 1
        if op != "diff" and option == b"weights" and remaining >= numkeys:
            for j in range(numkeys):
                weights[j] = parse_float(args[i + 1 + j], "ERR weight value is not a float")
            i += numkeys
        elif op != "diff" and option == b"aggregate" and remaining >= 1:
            mode = args[i + 1].lower()
            if mode not in (b"sum", b"min", b"max"):
                raise CommandError(SYNTAX)
            aggregate = mode.decode()
            i += 1
        elif not store_form and option == b"withscores":
            with_scores = True
        else:
            raise CommandError(SYNTAX)
        i += 1
    sources = [_source(ctx, key) for key in keys]
    result: dict[bytes, float] = {}
    if op == "diff":
        first_source = sources[0]
        if first_source:
            others = [s for s in sources[1:] if s]
            result = {m: sc for m, sc in first_source.items() if not any(m in o for o in others)}
    elif op == "inter":
        if all(s for s in sources):
            order = sorted(range(numkeys), key=lambda j: len(sources[j]))
            smallest = order[0]
            for member, score in sources[smallest].items():
                total = None
                for j in range(numkeys):
                    other = sources[j].get(member)
                    if other is None:
                        total = None
                        break
                    total = _combine(total, _weighted(other, weights[j]), aggregate)
                if total is not None:
                    result[member] = total
    else:
        for j, source in enumerate(sources):
            if not source:
                continue
            weight = weights[j]
            for member, score in source.items():
                result[member] = _combine(result.get(member), _weighted(score, weight), aggregate)
    pairs = sorted((score, member) for member, score in result.items())
    return pairs, with_scores


def _weighted(score: float, weight: float) -> float:
    value = score * weight
    return 0.0 if value != value else value


def _combine(total: float | None, value: float, aggregate: str) -> float:
    if total is None:
        return value
    if aggregate == "sum":
        total += value
        return 0.0 if total != total else total
    if aggregate == "min":
        return value if value < total else total
    return value if value > total else total


def _algebra_store(ctx, args, op: str, name: str):
    pairs, _ = _algebra(ctx, args, 2, op, name, True)
    if not pairs:
        ctx.store.delete(ctx.slot, args[1])
        return 0
    ctx.store.set(ctx.slot, args[1], ZSet(pairs))
    return len(pairs)


def _algebra_reply(ctx, session, args, op: str, name: str):
    pairs, with_scores = _algebra(ctx, args, 1, op, name, False)
    return _pairs_reply(pairs, with_scores, session.protocol)


@command("zunionstore", -4, "write denyoom movablekeys", 1, 1, 1, group="sorted_set", since="2.0.0",
         find_keys=_algebra_keys(2), summary="Stores the union of multiple sorted sets in a key.")
def zunionstore(ctx, session, args):
    """Format: ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX]"""
    return _algebra_store(ctx, args, "union", "zunionstore")


@command("zinterstore", -4, "write denyoom movablekeys", 1, 1, 1, group="sorted_set", since="2.0.0",
         find_keys=_algebra_keys(2), summary="Stores the intersect of multiple sorted sets in a key.")
def zinterstore(ctx, session, args):
    """Format: ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX]"""
    return _algebra_store(ctx, args, "inter", "zinterstore")


@command("zdiffstore", -4, "write denyoom movablekeys", 1, 1, 1, group="sorted_set", since="6.2.0",
         find_keys=_algebra_keys(2), summary="Stores the difference of multiple sorted sets in a key.")
def zdiffstore(ctx, session, args):
    """Format: ZDIFFSTORE destination numkeys key [key ...]"""
    return _algebra_store(ctx, args, "diff", "zdiffstore")


@command("zunion", -3, "readonly movablekeys", 0, 0, 0, group="sorted_set", since="6.2.0",
         find_keys=_algebra_keys(1), summary="Returns the union of multiple sorted sets.")
def zunion(ctx, session, args):
    """Format: ZUNION numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX] [WITHSCORES]"""
    return _algebra_reply(ctx, session, args, "union", "zunion")


@command("zinter", -3, "readonly movablekeys", 0, 0, 0, group="sorted_set", since="6.2.0",
         find_keys=_algebra_keys(1), summary="Returns the intersect of multiple sorted sets.")
def zinter(ctx, session, args):
    """Format: ZINTER numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX] [WITHSCORES]"""
    return _algebra_reply(ctx, session, args, "inter", "zinter")


@command("zdiff", -3, "readonly movablekeys", 0, 0, 0, group="sorted_set", since="6.2.0",
         find_keys=_algebra_keys(1), summary="Returns the difference between multiple sorted sets.")
def zdiff(ctx, session, args):
    """Format: ZDIFF numkeys key [key ...] [WITHSCORES]"""
    return _algebra_reply(ctx, session, args, "diff", "zdiff")


@command("zscan", -3, "readonly", 1, 1, 1, group="sorted_set", since="2.8.0",
         summary="Iterates over members and scores of a sorted set.")
def zscan(ctx, session, args):
    """Format: ZSCAN key cursor [MATCH pattern] [COUNT count]"""
    cursor, pattern, count = parse_scan(args, 2)
    z = _read(ctx, args[1])
    if z is None:
        return [b"0", []]
    members = [m for _, m in z.ordered] if not z.big else list(z.scores)
    next_cursor, chosen = scan_members(members, not z.big, cursor, count, pattern)
    scores = z.scores
    flat = []
    for m in chosen:
        flat.append(m)
        flat.append(format_double(scores[m]))
    return [b"%d" % next_cursor, flat]


