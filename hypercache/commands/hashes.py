"""Hash commands: HSET, HGET, HINCRBY, HSCAN, HRANDFIELD and the rest of the group."""
from __future__ import annotations

from .. import longdouble
from ..arguments import WRONGTYPE, parse_int
from ..reply import OK, CommandError
from ..types.hash import Hash
from ..types.scan import parse_random_count, parse_scan, random_picks, scan_members
from ..pulse import paced
from ..context import Context
from ..store import Store
from . import command
from .values import typed_value

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _read(ctx, key: bytes, write: bool = False) -> Hash | None:
    return typed_value(ctx, key, Hash, write)


def _write(ctx, key: bytes) -> tuple[Hash, bool]:
    """The hash at `key` and whether it is new (not yet in the store)."""
    value = ctx.store.get_for_write(ctx.slot, key, ctx.now_ms)
    if value is None:
        return Hash(), True
    if type(value) is Hash:
        return value, False
    raise CommandError(WRONGTYPE)


def _done(ctx, key: bytes, h: Hash, new: bool, before: int) -> None:
    """Tell the store about a write: store a new hash, delete an emptied one, or resize."""
    store = ctx.store
    if new:
        if h.fields:
            store.set(ctx.slot, key, h)
    else:
        store.resized(key, h.nbytes - before)   # first, so delete() subtracts what was counted
        if not h.fields:
            store.delete(ctx.slot, key)


@command("hset", -4, "write denyoom fast", 1, 1, 1, group="hash", since="2.0.0",
         summary="Creates or modifies the value of a field in a hash.")
def hset(ctx: Context, session, args):
    """Format: HSET key field value [field value ...]"""
    n = len(args)
    if n % 2:
        raise CommandError("ERR wrong number of arguments for 'hset' command")
    key = args[1]
    # (typed, so that the compiled build calls their methods directly: HSET is benchmarked)
    store: Store = ctx.store
    found = store.get_for_write(ctx.slot, key, ctx.now_ms)
    if found is None:
        h = Hash()
        for i in paced(range(2, n, 2)):
            h.set(args[i], args[i + 1])
        store.set(ctx.slot, key, h)
        return len(h.fields)
    if type(found) is not Hash:
        raise CommandError(WRONGTYPE)
    h = found
    before = h.nbytes
    added = 0
    for i in paced(range(2, n, 2)):
        added += h.set(args[i], args[i + 1])
    store.resized(key, h.nbytes - before)
    return added


@command("hmset", -4, "write denyoom fast", 1, 1, 1, group="hash", since="2.0.0",
         summary="Sets the values of multiple fields.")
def hmset(ctx, session, args):
    """Format: HMSET key field value [field value ...]"""
    if len(args) % 2:
        raise CommandError("ERR wrong number of arguments for 'hmset' command")
    hset(ctx, session, args)
    return OK


@command("hsetnx", 4, "write denyoom fast", 1, 1, 1, group="hash", since="2.0.0",
         summary="Sets the value of a field in a hash only when the field doesn't exist.")
def hsetnx(ctx, session, args):
    """Format: HSETNX key field value"""
    h, new = _write(ctx, args[1])
    if args[2] in h.fields:
        return 0
    before = h.nbytes
    h.set(args[2], args[3])
    _done(ctx, args[1], h, new, before)
    return 1


@command("hget", 3, "readonly fast", 1, 1, 1, group="hash", since="2.0.0",
         summary="Returns the value of a field in a hash.")
def hget(ctx, session, args):
    """Format: HGET key field"""
    h = ctx.store.get(ctx.slot, args[1], ctx.now_ms)
    if h is None:
        return None
    if type(h) is not Hash:
        raise CommandError(WRONGTYPE)
    return h.fields.get(args[2])


@command("hmget", -3, "readonly fast", 1, 1, 1, group="hash", since="2.0.0",
         summary="Returns the values of all fields in a hash.")
def hmget(ctx, session, args):
    """Format: HMGET key field [field ...]"""
    h = _read(ctx, args[1])
    if h is None:
        return [None] * (len(args) - 2)
    get = h.fields.get
    return [get(f) for f in args[2:]]


@command("hgetall", 2, "readonly", 1, 1, 1, group="hash", since="2.0.0",
         summary="Returns all fields and values in a hash.")
def hgetall(ctx, session, args):
    """Format: HGETALL key"""
    h = _read(ctx, args[1])
    return {} if h is None else dict(h.fields)


@command("hkeys", 2, "readonly", 1, 1, 1, group="hash", since="2.0.0",
         summary="Returns all fields in a hash.")
def hkeys(ctx, session, args):
    """Format: HKEYS key"""
    h = _read(ctx, args[1])
    return [] if h is None else list(h.fields)


@command("hvals", 2, "readonly", 1, 1, 1, group="hash", since="2.0.0",
         summary="Returns all values in a hash.")
def hvals(ctx, session, args):
    """Format: HVALS key"""
    h = _read(ctx, args[1])
    return [] if h is None else list(h.fields.values())


@command("hdel", -3, "write fast", 1, 1, 1, group="hash", since="2.0.0",
         summary="Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.")
def hdel(ctx, session, args):
    """Format: HDEL key field [field ...]"""
    h = _read(ctx, args[1], write=True)
    if h is None:
        return 0
    before = h.nbytes
    removed = 0
    for f in args[2:]:
        removed += h.delete(f)
    if removed:
        _done(ctx, args[1], h, False, before)
    return removed


@command("hexists", 3, "readonly fast", 1, 1, 1, group="hash", since="2.0.0",
         summary="Determines whether a field exists in a hash.")
def hexists(ctx, session, args):
    """Format: HEXISTS key field"""
    h = _read(ctx, args[1])
    return int(h is not None and args[2] in h.fields)


@command("hlen", 2, "readonly fast", 1, 1, 1, group="hash", since="2.0.0",
         summary="Returns the number of fields in a hash.")
def hlen(ctx, session, args):
    """Format: HLEN key"""
    h = _read(ctx, args[1])
    return 0 if h is None else len(h.fields)


@command("hstrlen", 3, "readonly fast", 1, 1, 1, group="hash", since="3.2.0",
         summary="Returns the length of the value of a field.")
def hstrlen(ctx, session, args):
    """Format: HSTRLEN key field"""
    h = _read(ctx, args[1])
    if h is None:
        return 0
    return len(h.fields.get(args[2], b""))


@command("hincrby", 4, "write denyoom fast", 1, 1, 1, group="hash", since="2.0.0",
         summary="Increments the integer value of a field in a hash by a number.")
def hincrby(ctx, session, args):
    """Format: HINCRBY key field increment"""
    increment = parse_int(args[3])
    h, new = _write(ctx, args[1])
    old = h.fields.get(args[2])
    current = 0 if old is None else parse_int(old, "ERR hash value is not an integer")
    result = current + increment
    if not INT64_MIN <= result <= INT64_MAX:
        raise CommandError("ERR increment or decrement would overflow")
    before = h.nbytes
    h.set(args[2], b"%d" % result)
    _done(ctx, args[1], h, new, before)
    return result


@command("hincrbyfloat", 4, "write denyoom fast", 1, 1, 1, group="hash", since="2.6.0",
         summary="Increments the floating point value of a field by a number.")
def hincrbyfloat(ctx, session, args):
    """Format: HINCRBYFLOAT key field increment

    Computed in emulated long double, as Redis does (see hypercache.longdouble).
    """
    increment = longdouble.parse(args[3])
    if increment is None:
        raise CommandError("ERR value is not a valid float")
    if not longdouble.is_finite(increment):
        raise CommandError("ERR value is NaN or Infinity")      # (Redis checks the increment first)
    h, new = _write(ctx, args[1])
    old = h.fields.get(args[2])
    current = 0 if old is None else longdouble.parse(old)
    if current is None:
        raise CommandError("ERR hash value is not a float")
    result = longdouble.add(current, increment)
    if not longdouble.is_finite(result):
        raise CommandError("ERR increment would produce NaN or Infinity")
    text = longdouble.format_human(result)
    before = h.nbytes
    h.set(args[2], text)
    _done(ctx, args[1], h, new, before)
    return text


@command("hscan", -3, "readonly", 1, 1, 1, group="hash", since="2.8.0",
         summary="Iterates over fields and values of a hash.")
def hscan(ctx, session, args):
    """Format: HSCAN key cursor [MATCH pattern] [COUNT count]"""
    cursor, pattern, count = parse_scan(args, 2)
    h = _read(ctx, args[1])
    if h is None:
        return [b"0", []]
    fields = h.fields
    next_cursor, chosen = scan_members(fields, h.removed, not h.big, cursor, count, pattern)
    flat = []
    for f in chosen:
        flat.append(f)
        flat.append(fields[f])
    return [b"%d" % next_cursor, flat]


@command("hrandfield", -2, "readonly", 1, 1, 1, group="hash", since="6.2.0",
         summary="Returns one or more random fields from a hash.")
def hrandfield(ctx, session, args):
    """Format: HRANDFIELD key [count [WITHVALUES]]"""
    with_values = False
    if len(args) > 4 or (len(args) == 4 and args[3].lower() != b"withvalues"):
        raise CommandError("ERR syntax error")
    with_values = len(args) == 4
    count = parse_random_count(args[2], with_values) if len(args) >= 3 else None
    h = _read(ctx, args[1])
    if count is None:
        if h is None:
            return None
        return random_picks(list(h.fields), 1)[0]
    if h is None or count == 0:
        return []
    picked = random_picks(list(h.fields), count)
    if not with_values:
        return picked
    fields = h.fields
    if session.protocol == 3:
        return [[f, fields[f]] for f in picked]
    flat = []
    for f in picked:
        flat.append(f)
        flat.append(fields[f])
    return flat
