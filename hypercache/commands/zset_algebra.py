"""Sorted set algebra: ZUNION, ZINTER, ZDIFF and their STORE forms, with WEIGHTS and AGGREGATE parsing.

Sources may be sorted sets or plain sets (members scored 1), as in Redis.
"""
from __future__ import annotations

from ..arguments import SYNTAX, WRONGTYPE, parse_float, parse_int
from ..pulse import ordered, paced, ticking
from ..reply import CommandError
from ..types.set import Set
from ..types.zset import ZSet
from . import command
from .options import numkeys_keys, parse_limit
from .zsets import pairs_reply


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


def _numkeys(args: list[bytes], first: int, name: str) -> list[bytes]:
    """The source keys of `numkeys key [key ...]` at args[first], with this family's errors."""
    numkeys = parse_int(args[first])
    if numkeys < 1:
        raise CommandError(f"ERR at least 1 input key is needed for '{name}' command")
    if numkeys > len(args) - first - 1:
        raise CommandError(SYNTAX)
    return args[first + 1:first + 1 + numkeys]


def _algebra(ctx, args: list[bytes], first: int, op: str, name: str, store_form: bool):
    """Parse `numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...] [WITHSCORES]` and compute."""
    keys = _numkeys(args, first, name)
    numkeys = len(keys)
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
            result = {m: sc for m, sc in ticking(first_source.items()) if not any(m in o for o in others)}
    elif op == "inter":
        if all(s for s in sources):
            order = sorted(range(numkeys), key=lambda j: len(sources[j]))
            smallest = order[0]
            for member, score in ticking(sources[smallest].items()):
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
            for member, score in ticking(source.items()):
                result[member] = _combine(result.get(member), _weighted(score, weight), aggregate)
    # (the loops over big sets beat, and so does the sort: hypercache/pulse.py)
    pairs = ordered([(score, member) for member, score in result.items()])
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
    ctx.store.set(ctx.slot, args[1], ZSet(paced(pairs)))
    return len(pairs)


def _algebra_reply(ctx, session, args, op: str, name: str):
    pairs, with_scores = _algebra(ctx, args, 1, op, name, False)
    return pairs_reply(pairs, with_scores, session.protocol)


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


@command("zintercard", -3, "readonly movablekeys", 0, 0, 0, group="sorted_set", since="7.0.0",
         find_keys=numkeys_keys(1), summary="Returns the number of members of the intersect of multiple sorted sets.")
def zintercard(ctx, session, args):
    """Format: ZINTERCARD numkeys key [key ...] [LIMIT limit]"""
    keys = _numkeys(args, 1, "zintercard")
    limit = parse_limit(args, 2 + len(keys))
    sources = [_source(ctx, key) for key in keys]
    if any(source is None for source in sources):
        return 0
    sources.sort(key=len)
    count = 0
    for member in ticking(sources[0]):
        if all(member in other for other in sources[1:]):
            count += 1
            if count == limit:
                break
    return count


@command("zdiff", -3, "readonly movablekeys", 0, 0, 0, group="sorted_set", since="6.2.0",
         find_keys=_algebra_keys(1), summary="Returns the difference between multiple sorted sets.")
def zdiff(ctx, session, args):
    """Format: ZDIFF numkeys key [key ...] [WITHSCORES]"""
    return _algebra_reply(ctx, session, args, "diff", "zdiff")
