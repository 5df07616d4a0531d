"""Set commands: SADD, SPOP, SRANDMEMBER, the algebra (SINTER/SUNION/SDIFF and STORE forms), SSCAN."""
from __future__ import annotations


from ..arguments import SYNTAX, WRONGTYPE, parse_int
from ..reply import CommandError, OrderedSet
from ..types.scan import parse_random_count, parse_scan, random_picks, scan_members
from ..types.set import Set
from ..pulse import paced
from ..context import Context
from ..store import Store
from . import command
from .options import numkeys_keys, parse_limit, parse_numkeys
from .values import typed_value

OUT_OF_RANGE_POSITIVE = "ERR value is out of range, must be positive"


def _read(ctx, key: bytes, write: bool = False) -> Set | None:
    return typed_value(ctx, key, Set, write)


def _members_reply(s: Set) -> OrderedSet:
    """Members as Redis lists them: an intset in ascending numeric order, else as stored."""
    if s.big:
        return OrderedSet(s.members)
    return OrderedSet(sorted(s.members, key=int))


@command("sadd", -3, "write denyoom fast", 1, 1, 1, group="set",
         summary="Adds one or more members to a set. Creates the key if it doesn't exist.")
def sadd(ctx: Context, session, args):
    """Format: SADD key member [member ...]"""
    key = args[1]
    # (typed, so that the compiled build calls their methods directly: SADD is benchmarked)
    store: Store = ctx.store
    found = store.get_for_write(ctx.slot, key, ctx.now_ms)
    if found is None:
        s = Set(paced(args[2:]))
        store.set(ctx.slot, key, s)
        return len(s.members)
    if type(found) is not Set:
        raise CommandError(WRONGTYPE)
    s = found
    before = s.nbytes
    added = s.add_many(paced(args[2:]))
    if added:
        store.resized(key, s.nbytes - before)
    return added


@command("srem", -3, "write fast", 1, 1, 1, group="set",
         summary="Removes one or more members from a set. Deletes the set if the last member was removed.")
def srem(ctx, session, args):
    """Format: SREM key member [member ...]"""
    s = _read(ctx, args[1], write=True)
    if s is None:
        return 0
    before = s.nbytes
    removed = 0
    for member in args[2:]:
        removed += s.remove(member)
    if removed:
        _changed(ctx, args[1], s, before)
    return removed


def _changed(ctx, key: bytes, s: Set, before: int) -> None:
    ctx.store.resized(key, s.nbytes - before)   # first, so delete() subtracts what was counted
    if not s.members:
        ctx.store.delete(ctx.slot, key)


@command("smembers", 2, "readonly", 1, 1, 1, group="set", summary="Returns all members of a set.")
def smembers(ctx, session, args):
    """Format: SMEMBERS key"""
    s = _read(ctx, args[1])
    return set() if s is None else _members_reply(s)


@command("sismember", 3, "readonly fast", 1, 1, 1, group="set",
         summary="Determines whether a member belongs to a set.")
def sismember(ctx, session, args):
    """Format: SISMEMBER key member"""
    s = _read(ctx, args[1])
    return int(s is not None and args[2] in s.index)


@command("smismember", -3, "readonly fast", 1, 1, 1, group="set", since="6.2.0",
         summary="Determines whether multiple members belong to a set.")
def smismember(ctx, session, args):
    """Format: SMISMEMBER key member [member ...]"""
    s = _read(ctx, args[1])
    if s is None:
        return [0] * (len(args) - 2)
    index = s.index
    return [int(m in index) for m in args[2:]]


@command("scard", 2, "readonly fast", 1, 1, 1, group="set", summary="Returns the number of members in a set.")
def scard(ctx, session, args):
    """Format: SCARD key"""
    s = _read(ctx, args[1])
    return 0 if s is None else len(s.members)


@command("spop", -2, "write fast", 1, 1, 1, group="set",
         summary="Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.")
def spop(ctx, session, args):
    """Format: SPOP key [count]"""
    if len(args) > 3:
        raise CommandError(SYNTAX)
    count = None
    if len(args) == 3:
        count = parse_int(args[2], OUT_OF_RANGE_POSITIVE)
        if count < 0:
            raise CommandError(OUT_OF_RANGE_POSITIVE)
    key = args[1]
    s = _read(ctx, key, write=True)
    if s is None:
        return None if count is None else set()
    before = s.nbytes
    if count is None:
        member = s.pop_random()
        _changed(ctx, key, s, before)
        return member
    if count == 0:
        return set()
    if count >= len(s.members):
        popped = OrderedSet(s.members)
        ctx.store.delete(ctx.slot, key)
        return popped
    popped = OrderedSet(s.pop_random() for _ in range(count))
    _changed(ctx, key, s, before)
    return popped


@command("srandmember", -2, "readonly", 1, 1, 1, group="set",
         summary="Get one or multiple random members from a set")
def srandmember(ctx, session, args):
    """Format: SRANDMEMBER key [count]"""
    if len(args) > 3:
        raise CommandError(SYNTAX)
    count = parse_random_count(args[2], False) if len(args) == 3 else None
    s = _read(ctx, args[1])
    if count is None:
        return None if s is None else s.random_member()
    if s is None or count == 0:
        return []
    return random_picks(s.members, count)


# -- algebra --------------------------------------------------------------------------


def _sets(ctx, keys: list[bytes], stop_at_missing: bool) -> list[Set]:
    """The sets at `keys` (missing ones skipped); none at all when `stop_at_missing` and one is missing."""
    found = [_read(ctx, key) for key in keys]     # every key's type is checked first
    if stop_at_missing and None in found:
        return []
    return [s for s in found if s is not None]


def _inter(ctx, keys: list[bytes]) -> list[bytes]:
    sets = _sets(ctx, keys, True)
    if not sets:
        return []
    sets.sort(key=len)
    smallest, others = sets[0], [s.index for s in sets[1:]]
    # (the loops over a big set's members beat: hypercache/pulse.py)
    return [m for m in paced(_members_reply(smallest)) if all(m in o for o in others)]


def _union(ctx, keys: list[bytes]) -> list[bytes]:
    seen: dict[bytes, None] = {}
    for s in _sets(ctx, keys, False):
        seen.update(dict.fromkeys(s.members))
    return list(seen)


def _diff(ctx, keys: list[bytes]) -> list[bytes]:
    first = _read(ctx, keys[0])
    rest = _sets(ctx, keys[1:], False)
    if first is None:
        return []
    others = [s.index for s in rest]
    return [m for m in paced(first.members) if not any(m in o for o in others)]


def _store(ctx, destination: bytes, members: list[bytes]) -> int:
    if not members:
        ctx.store.delete(ctx.slot, destination)
        return 0
    ctx.store.set(ctx.slot, destination, Set(paced(members)))
    return len(members)


@command("sinter", -2, "readonly", 1, -1, 1, group="set", summary="Returns the intersect of multiple sets.")
def sinter(ctx, session, args):
    """Format: SINTER key [key ...]"""
    return OrderedSet(_inter(ctx, args[1:]))


@command("sunion", -2, "readonly", 1, -1, 1, group="set", summary="Returns the union of multiple sets.")
def sunion(ctx, session, args):
    """Format: SUNION key [key ...]"""
    return _members_reply(Set(_union(ctx, args[1:])))


@command("sdiff", -2, "readonly", 1, -1, 1, group="set", summary="Returns the difference of multiple sets.")
def sdiff(ctx, session, args):
    """Format: SDIFF key [key ...]"""
    return _members_reply(Set(_diff(ctx, args[1:])))


@command("sinterstore", -3, "write denyoom", 1, -1, 1, group="set",
         summary="Stores the intersect of multiple sets in a key.")
def sinterstore(ctx, session, args):
    """Format: SINTERSTORE destination key [key ...]"""
    return _store(ctx, args[1], _inter(ctx, args[2:]))


@command("sunionstore", -3, "write denyoom", 1, -1, 1, group="set",
         summary="Stores the union of multiple sets in a key.")
def sunionstore(ctx, session, args):
    """Format: SUNIONSTORE destination key [key ...]"""
    return _store(ctx, args[1], _union(ctx, args[2:]))


@command("sdiffstore", -3, "write denyoom", 1, -1, 1, group="set",
         summary="Stores the difference of multiple sets in a key.")
def sdiffstore(ctx, session, args):
    """Format: SDIFFSTORE destination key [key ...]"""
    return _store(ctx, args[1], _diff(ctx, args[2:]))


@command("sintercard", -3, "readonly movablekeys", 0, 0, 0, group="set", since="7.0.0",
         find_keys=numkeys_keys(1),
         summary="Returns the number of members of the intersect of multiple sets.")
def sintercard(ctx, session, args):
    """Format: SINTERCARD numkeys key [key ...] [LIMIT limit]"""
    keys = parse_numkeys(args, 1, too_many="ERR Number of keys can't be greater than number of args")
    limit = parse_limit(args, 2 + len(keys))
    sets = _sets(ctx, keys, True)
    if not sets:
        return 0
    sets.sort(key=len)
    others = [s.index for s in sets[1:]]
    count = 0
    for m in paced(sets[0].members):
        if all(m in o for o in others):
            count += 1
            if count == limit:
                break
    return count


@command("smove", 4, "write fast", 1, 2, 1, group="set",
         summary="Moves a member from one set to another.")
def smove(ctx, session, args):
    """Format: SMOVE source destination member"""
    source, destination, member = args[1], args[2], args[3]
    store = ctx.store
    src = store.get_for_write(ctx.slot, source, ctx.now_ms)
    dst = store.get_for_write(ctx.slot, destination, ctx.now_ms)
    if src is None:
        return 0            # as Redis: before looking at the destination's type
    if type(src) is not Set or (dst is not None and type(dst) is not Set):
        raise CommandError(WRONGTYPE)
    if member not in src.index:
        return 0
    if source == destination:
        return 1
    before = src.nbytes
    src.remove(member)
    _changed(ctx, source, src, before)
    if dst is None:
        ctx.store.set(ctx.slot, destination, Set([member]))
    else:
        before = dst.nbytes
        if dst.add(member):
            ctx.store.resized(destination, dst.nbytes - before)
    return 1


@command("sscan", -3, "readonly", 1, 1, 1, group="set", since="2.8.0",
         summary="Iterates over members of a set.")
def sscan(ctx, session, args):
    """Format: SSCAN key cursor [MATCH pattern] [COUNT count]"""
    cursor, pattern, count = parse_scan(args, 2)
    s = _read(ctx, args[1])
    if s is None:
        return [b"0", []]
    members = s.index if s.big else _members_reply(s)     # (the dict: its order is stable)
    next_cursor, chosen = scan_members(members, s.removed, not s.big, cursor, count, pattern)
    return [b"%d" % next_cursor, chosen]


