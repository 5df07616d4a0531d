"""Sorted set commands on members: ZADD, ZINCRBY, ZREM, point reads, ranks, pops (and blocking pops), ZRANDMEMBER, ZSCAN.

Also the helpers every sorted-set command module shares: reading a key as a
ZSet, accounting for a mutation (deleting the key once it is empty), and
shaping (score, member) pairs as a reply. Ranges live in `zset_ranges`, the
set algebra in `zset_algebra`.
"""
from __future__ import annotations

import math

from ..arguments import SYNTAX, WRONGTYPE, parse_float, parse_floats, parse_int
from ..blocking import first_holding, serve_or_suspend
from ..reply import NULL_ARRAY, CommandError, format_double
from ..types.scan import parse_random_count, parse_scan, random_picks, scan_members
from ..types.zset import ZSet
from ..pulse import paced
from . import command
from .options import numkeys_keys, parse_mpop, parse_timeout
from .values import typed_value

OUT_OF_RANGE_POSITIVE = "ERR value is out of range, must be positive"
NAN_SCORE = "ERR resulting score is not a number (NaN)"


def read_zset(ctx, key: bytes, write: bool = False) -> ZSet | None:
    return typed_value(ctx, key, ZSet, write)


def changed(ctx, key: bytes, z: ZSet, before: int) -> None:
    """Account for an in-place mutation of `z` (nbytes was `before`); delete the key once empty."""
    ctx.store.resized(key, z.nbytes - before)   # first, so delete() subtracts what was counted
    if not z.scores:
        ctx.store.delete(ctx.slot, key)


def pairs_reply(pairs, with_scores: bool, protocol: int) -> list:
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


def add_one(ctx, key: bytes, member: bytes, score: float) -> int:
    """ZADD key score member without options (and GEOADD's one position): 1 if the member is new."""
    store = ctx.store
    z = store.get_for_write(ctx.slot, key, ctx.now_ms)
    if z is None:
        z = ZSet()
        z.add(member, score)
        store.set(ctx.slot, key, z)
        return 1
    if type(z) is not ZSet:
        raise CommandError(WRONGTYPE)
    before = z.nbytes
    old = z.add(member, score)
    if old is None:
        store.resized(key, z.nbytes - before)
        return 1
    if old != score:
        store.resized(key, 0)      # modified: WATCH and blocked clients must hear of it
    return 0


@command("zadd", -4, "write denyoom fast", 1, 1, 1, group="sorted_set", since="1.2.0",
         summary="Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.")
def zadd(ctx, session, args):
    """Format: ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]"""
    n = len(args)
    if n == 4 and args[2].isdigit() and len(args[2]) < 16:     # the common shape: plain digits
        return add_one(ctx, args[1], args[3], float(args[2]))
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
    scores = parse_floats(args[i:n:2])
    key = args[1]
    store = ctx.store
    z = store.get_for_write(ctx.slot, key, ctx.now_ms)
    new = z is None
    if new and i == 2:
        # no option, a new key: every pair adds (a repeated member's last score wins), built in bulk
        z = ZSet(zip(scores, args[3:n:2]))
        store.set(ctx.slot, key, z)
        return len(z.scores)
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
    for score, j in zip(scores, paced(range(i + 1, n, 2))):
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
    found = read_zset(ctx, key, write=True)
    new = found is None
    z = ZSet() if found is None else found
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
    z = read_zset(ctx, args[1], write=True)
    if z is None:
        return 0
    before = z.nbytes
    removed = 0
    for member in args[2:]:
        removed += z.remove(member)
    if removed:
        changed(ctx, args[1], z, before)
    return removed


@command("zscore", 3, "readonly fast", 1, 1, 1, group="sorted_set", since="1.2.0",
         summary="Returns the score of a member in a sorted set.")
def zscore(ctx, session, args):
    """Format: ZSCORE key member"""
    z = read_zset(ctx, args[1])
    return None if z is None else z.scores.get(args[2])


@command("zmscore", -3, "readonly fast", 1, 1, 1, group="sorted_set", since="6.2.0",
         summary="Returns the score of one or more members in a sorted set.")
def zmscore(ctx, session, args):
    """Format: ZMSCORE key member [member ...]"""
    z = read_zset(ctx, args[1])
    if z is None:
        return [None] * (len(args) - 2)
    get = z.scores.get
    return [get(m) for m in args[2:]]


@command("zcard", 2, "readonly fast", 1, 1, 1, group="sorted_set", since="1.2.0",
         summary="Returns the number of members in a sorted set.")
def zcard(ctx, session, args):
    """Format: ZCARD key"""
    z = read_zset(ctx, args[1])
    return 0 if z is None else len(z.scores)


def _rank(ctx, args, reverse: bool):
    z = read_zset(ctx, args[1])
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


# -- pops -----------------------------------------------------------------------------


def _pop(ctx, key: bytes, z: ZSet, count: int, highest: bool) -> list[tuple[float, bytes]]:
    ordered = z.ordered
    count = min(count, len(ordered))
    pairs = list(ordered.islice(len(ordered) - count, len(ordered), reverse=True)) if highest \
        else list(ordered.islice(0, count))
    before = z.nbytes
    for _, member in pairs:
        z.remove(member)
    changed(ctx, key, z, before)
    return pairs


def _pop_command(ctx, session, args, highest: bool):
    if len(args) > 3:
        raise CommandError(SYNTAX)
    count = None
    if len(args) == 3:
        count = parse_int(args[2], OUT_OF_RANGE_POSITIVE)
        if count < 0:
            raise CommandError(OUT_OF_RANGE_POSITIVE)
    z = read_zset(ctx, args[1], write=True)
    if z is None or count == 0:
        return []
    pairs = _pop(ctx, args[1], z, 1 if count is None else count, highest)
    if count is None:
        score, member = pairs[0]
        return [member, score]
    return pairs_reply(pairs, True, session.protocol)


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

    def attempt(candidates: list[bytes], retrying: bool):
        found = first_holding(ctx, candidates, ZSet, retrying)
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


MPOP_ENDS = {b"min": False, b"max": True}     # the value: pop the highest scores


def _mpop(ctx, keys: list[bytes], highest: bool, count: int, retrying: bool = False) -> list | None:
    """[key, [[member, score] ...]] popped from the first of `keys` holding a sorted set; None if none does."""
    found = first_holding(ctx, keys, ZSet, retrying)
    if found is None:
        return None
    key, z = found
    return [key, [[member, score] for score, member in _pop(ctx, key, z, count, highest)]]


@command("zmpop", -4, "write movablekeys", 0, 0, 0, group="sorted_set", since="7.0.0",
         find_keys=numkeys_keys(1),
         summary="Remove and return members with scores in a sorted set")
def zmpop(ctx, session, args):
    """Format: ZMPOP numkeys key [key ...] MIN | MAX [COUNT count]"""
    keys, highest, count = parse_mpop(args, 1, MPOP_ENDS)
    reply = _mpop(ctx, keys, highest, count)
    return NULL_ARRAY if reply is None else reply


@command("bzmpop", -5, "write blocking movablekeys", 0, 0, 0, group="sorted_set", since="7.0.0",
         find_keys=numkeys_keys(2),
         summary="Remove and return members with scores in a sorted set or block until one is available")
def bzmpop(ctx, session, args):
    """Format: BZMPOP timeout numkeys key [key ...] MIN | MAX [COUNT count]"""
    timeout_s = parse_timeout(args[1])
    keys, highest, count = parse_mpop(args, 2, MPOP_ENDS)
    return serve_or_suspend(ctx, keys, timeout_s,
                            lambda candidates, retrying: _mpop(ctx, candidates, highest, count, retrying), NULL_ARRAY)


@command("zrandmember", -2, "readonly", 1, 1, 1, group="sorted_set", since="6.2.0",
         summary="Returns one or more random members from a sorted set.")
def zrandmember(ctx, session, args):
    """Format: ZRANDMEMBER key [count [WITHSCORES]]"""
    if len(args) > 4 or (len(args) == 4 and args[3].lower() != b"withscores"):
        raise CommandError(SYNTAX)
    with_scores = len(args) == 4
    count = parse_random_count(args[2], with_scores) if len(args) >= 3 else None
    z = read_zset(ctx, args[1])
    if count is None:
        return None if z is None else random_picks(list(z.scores), 1)[0]
    if z is None or count == 0:
        return []
    picked = random_picks(list(z.scores), count)
    scores = z.scores
    return pairs_reply([(scores[m], m) for m in picked], with_scores, session.protocol)


@command("zscan", -3, "readonly", 1, 1, 1, group="sorted_set", since="2.8.0",
         summary="Iterates over members and scores of a sorted set.")
def zscan(ctx, session, args):
    """Format: ZSCAN key cursor [MATCH pattern] [COUNT count]"""
    cursor, pattern, count = parse_scan(args, 2)
    z = read_zset(ctx, args[1])
    if z is None:
        return [b"0", []]
    members = [m for _, m in z.ordered] if not z.big else z.scores
    next_cursor, chosen = scan_members(members, z.removed, not z.big, cursor, count, pattern)
    scores = z.scores
    flat = []
    for m in chosen:
        flat.append(m)
        flat.append(format_double(scores[m]))
    return [b"%d" % next_cursor, flat]
