"""String commands: GET, SET and friends, counters, ranges and LCS, with Redis 7.0 replies.

Strings are stored as immutable `bytes`; a command that changes one stores a
new value with `store.set(..., keep_ttl=True)` so the key keeps its TTL, as
Redis does for APPEND, SETRANGE and the INCR family.
"""
from __future__ import annotations

from typing import Final
import sys

from .. import inplace, longdouble
from ..arguments import INT64_MAX, INT64_MIN, NOT_FLOAT, SYNTAX, WRONGTYPE, parse_int
from ..reply import OK, CommandError
from ..pulse import EVERY, starts
from . import command
from .values import typed_value

TOO_BIG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
OVERFLOW: Final = "ERR increment or decrement would overflow"
EXPIRY_OPTIONS: Final = (b"EX", b"PX", b"EXAT", b"PXAT")
SOLE_OWNER_REFS = 3          # sys.getrefcount(old) in setrange() when only the store holds it
OOM = CommandError("OOM command not allowed when used memory > 'maxmemory'.")
LCS_MAX_CELLS = 4_000_000     # ~0.5 s of pure-Python dynamic programming


def get_string(ctx, key: bytes, write: bool = False) -> bytes | None:
    return typed_value(ctx, key, bytes, write)


def invalid_expire(name: str) -> CommandError:
    return CommandError(f"ERR invalid expire time in '{name}' command")


def expire_deadline(ctx, raw: bytes, option: bytes, name: str) -> int:
    """The absolute deadline (ms) for `option raw`; the checks of Redis's getExpireMillisecondsOrReply."""
    amount = parse_int(raw)
    seconds = option in (b"EX", b"EXAT")
    if amount <= 0 or (seconds and amount > INT64_MAX // 1000):
        raise invalid_expire(name)
    ms = amount * 1000 if seconds else amount
    if option in (b"EX", b"PX"):
        if ms > INT64_MAX - ctx.now_ms:     # would wrap negative in C: Redis refuses it
            raise invalid_expire(name)
        ms += ctx.now_ms
    return ms


def parse_string_options(args: list[bytes], getex: bool) -> tuple[set[bytes], bytes | None, bytes]:
    """SET's and GETEX's options as Redis's parseExtendedStringArgumentsOrReply reads them.

    Returns (flags, expiry option or None, its raw amount or b""). An option is refused with a
    syntax error when it conflicts with one already given; repeating the same
    expiry option is allowed (the last one wins), as in Redis.
    """
    flags: set[bytes] = set()
    expiry: bytes | None = None
    amount = b""
    i = 2 if getex else 3
    while i < len(args):
        option = args[i].upper()
        has_next = i + 1 < len(args)
        if not getex and option == b"NX" and b"XX" not in flags:
            flags.add(option)
        elif not getex and option == b"XX" and b"NX" not in flags:
            flags.add(option)
        elif not getex and option == b"GET":
            flags.add(option)
        elif not getex and option == b"KEEPTTL" and expiry is None:
            flags.add(option)
        elif getex and option == b"PERSIST" and expiry is None:
            flags.add(option)
        elif option in EXPIRY_OPTIONS and has_next and expiry in (None, option) \
                and b"KEEPTTL" not in flags and b"PERSIST" not in flags:
            expiry, amount = option, args[i + 1]
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    return flags, expiry, amount


@command("get", 2, "readonly fast", 1, 1, 1, group="string", summary="Returns the string value of a key.")
def get(ctx, session, args):
    """Format: GET key"""
    value = ctx.store.get(ctx.slot, args[1], ctx.now_ms)
    if value is None or type(value) is bytes:
        return value
    raise CommandError(WRONGTYPE)


@command("set", -3, "write denyoom", 1, 1, 1, group="string",
         summary="Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.")
def set_(ctx, session, args):
    """Format: SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]"""
    store = ctx.store
    if len(args) == 3:
        store.set(ctx.slot, args[1], args[2])
        return OK
    key, value = args[1], args[2]
    flags, expiry, amount = parse_string_options(args, getex=False)
    deadline = expire_deadline(ctx, amount, expiry, "set") if expiry else None
    get_old = b"GET" in flags
    # SET ... GET reads the old value as GET does (counted); NX/XX only check for it
    old = (store.get if get_old else store.get_for_write)(ctx.slot, key, ctx.now_ms)
    if get_old and old is not None and type(old) is not bytes:
        raise CommandError(WRONGTYPE)
    if (b"NX" in flags and old is not None) or (b"XX" in flags and old is None):
        return old if get_old else None
    store.set(ctx.slot, key, value, keep_ttl=b"KEEPTTL" in flags)
    if deadline is not None:
        # (a deadline already past, PXAT 1, is kept too: as in Redis 7.0 the key
        # is then expired at its next access, with an "expired" event)
        store.set_deadline(key, deadline)
    return old if get_old else OK


@command("setnx", 3, "write denyoom fast", 1, 1, 1, group="string",
         summary="Set the string value of a key only when the key doesn't exist.")
def setnx(ctx, session, args):
    """Format: SETNX key value"""
    if ctx.store.get_for_write(ctx.slot, args[1], ctx.now_ms) is not None:
        return 0
    ctx.store.set(ctx.slot, args[1], args[2])
    return 1


def _set_with_ttl(ctx, args, option: bytes, name: str):
    deadline = expire_deadline(ctx, args[2], option, name)
    ctx.store.set(ctx.slot, args[1], args[3])
    ctx.store.set_deadline(args[1], deadline)
    return OK


@command("setex", 4, "write denyoom", 1, 1, 1, group="string",
         summary="Set the string value and expiration time of a key. Creates the key if it doesn't exist.")
def setex(ctx, session, args):
    """Format: SETEX key seconds value"""
    return _set_with_ttl(ctx, args, b"EX", "setex")


@command("psetex", 4, "write denyoom", 1, 1, 1, group="string",
         summary="Set both the value and expiration time in milliseconds of a key. "
                 "The key is created if it doesn't exist.", since="2.6.0")
def psetex(ctx, session, args):
    """Format: PSETEX key milliseconds value"""
    return _set_with_ttl(ctx, args, b"PX", "psetex")


@command("mget", -2, "readonly fast", 1, -1, 1, group="string",
         summary="Atomically returns the string values of one or more keys.")
def mget(ctx, session, args):
    """Format: MGET key [key ...]"""
    store, slot, now = ctx.store, ctx.slot, ctx.now_ms
    values = []
    for key in args[1:]:
        value = store.get(slot, key, now)
        values.append(value if type(value) is bytes else None)   # a container reads as nil
    return values


def _pairs(args: list[bytes], name: str) -> list[tuple[bytes, bytes]]:
    if len(args) % 2 == 0:
        raise CommandError(f"ERR wrong number of arguments for '{name}' command")
    return list(zip(args[1::2], args[2::2]))


@command("mset", -3, "write denyoom", 1, -1, 2, group="string",
         summary="Atomically creates or modifies the string values of one or more keys.")
def mset(ctx, session, args):
    """Format: MSET key value [key value ...]"""
    if len(args) % 2 == 0:
        raise CommandError("ERR wrong number of arguments for 'mset' command")
    keys, values = args[1::2], args[2::2]
    for start in starts(len(keys)):     # (a beat between pieces: hypercache/pulse.py)
        ctx.store.set_many(ctx.slot, keys[start:start + EVERY], values[start:start + EVERY])
    return OK


@command("msetnx", -3, "write denyoom", 1, -1, 2, group="string",
         summary="Atomically modifies the string values of one or more keys only when all keys don't exist.")
def msetnx(ctx, session, args):
    """Format: MSETNX key value [key value ...]"""
    pairs = _pairs(args, "msetnx")
    store = ctx.store
    if any(store.get_for_write(ctx.slot, key, ctx.now_ms) is not None for key, _ in pairs):
        return 0
    for key, value in pairs:
        store.set(ctx.slot, key, value)
    return 1


@command("getset", 3, "write denyoom fast", 1, 1, 1, group="string",
         summary="Returns the previous string value of a key after setting it to a new value.")
def getset(ctx, session, args):
    """Format: GETSET key value"""
    old = get_string(ctx, args[1])
    ctx.store.set(ctx.slot, args[1], args[2])
    return old


@command("getdel", 2, "write fast", 1, 1, 1, group="string",
         summary="Returns the string value of a key after deleting the key.", since="6.2.0")
def getdel(ctx, session, args):
    """Format: GETDEL key"""
    value = get_string(ctx, args[1])
    if value is not None:
        ctx.store.delete(ctx.slot, args[1])
    return value


@command("getex", -2, "write fast", 1, 1, 1, group="string",
         summary="Returns the string value of a key after setting its expiration time.", since="6.2.0")
def getex(ctx, session, args):
    """Format: GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]"""
    flags, expiry, amount = parse_string_options(args, getex=True)
    key = args[1]
    value = get_string(ctx, key)
    if value is None:
        return None          # Redis looks the key up before it validates the expiry
    store = ctx.store
    if expiry is not None:
        deadline = expire_deadline(ctx, amount, expiry, "getex")
        if deadline <= ctx.now_ms:
            store.delete(ctx.slot, key)
        else:
            store.set_deadline(key, deadline)
    elif b"PERSIST" in flags:
        store.persist(key)
    return value


@command("append", 3, "write denyoom fast", 1, 1, 1, group="string",
         summary="Appends a string to the value of a key. Creates the key if it doesn't exist.", since="2.0.0")
def append(ctx, session, args):
    """Format: APPEND key value"""
    old = get_string(ctx, args[1], write=True)
    if old is None:
        ctx.store.set(ctx.slot, args[1], args[2])
        return len(args[2])
    if len(old) + len(args[2]) > ctx.settings.proto_max_bulk_len:
        raise CommandError(TOO_BIG)
    value = old + args[2]
    ctx.store.set(ctx.slot, args[1], value, keep_ttl=True)
    return len(value)


@command("strlen", 2, "readonly fast", 1, 1, 1, group="string",
         summary="Returns the length of a string value.", since="2.2.0")
def strlen(ctx, session, args):
    """Format: STRLEN key"""
    value = get_string(ctx, args[1])
    return 0 if value is None else len(value)


# -- counters -------------------------------------------------------------------------


def _increment(ctx, key: bytes, delta: int) -> int:
    old = get_string(ctx, key, write=True)
    current = 0 if old is None else parse_int(old)
    result = current + delta
    if not INT64_MIN <= result <= INT64_MAX:
        raise CommandError(OVERFLOW)
    ctx.store.set(ctx.slot, key, b"%d" % result, keep_ttl=True)
    return result


@command("incr", 2, "write denyoom fast", 1, 1, 1, group="string",
         summary="Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.")
def incr(ctx, session, args):
    """Format: INCR key"""
    return _increment(ctx, args[1], 1)


@command("decr", 2, "write denyoom fast", 1, 1, 1, group="string",
         summary="Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.")
def decr(ctx, session, args):
    """Format: DECR key"""
    return _increment(ctx, args[1], -1)


@command("incrby", 3, "write denyoom fast", 1, 1, 1, group="string",
         summary="Increments the integer value of a key by a number. "
                 "Uses 0 as initial value if the key doesn't exist.")
def incrby(ctx, session, args):
    """Format: INCRBY key increment"""
    return _increment(ctx, args[1], parse_int(args[2]))


@command("decrby", 3, "write denyoom fast", 1, 1, 1, group="string",
         summary="Decrements a number from the integer value of a key. "
                 "Uses 0 as initial value if the key doesn't exist.")
def decrby(ctx, session, args):
    """Format: DECRBY key decrement"""
    amount = parse_int(args[2])
    if amount == INT64_MIN:          # its negation does not fit in 64 bits
        raise CommandError("ERR decrement would overflow")
    return _increment(ctx, args[1], -amount)


@command("incrbyfloat", 3, "write denyoom fast", 1, 1, 1, group="string",
         summary="Increment the floating point value of a key by a number. "
                 "Uses 0 as initial value if the key doesn't exist.", since="2.6.0")
def incrbyfloat(ctx, session, args):
    """Format: INCRBYFLOAT key increment

    Computed in emulated long double, as Redis does (see hypercache.longdouble),
    so the stored text matches redis-server's byte for byte.
    """
    old = get_string(ctx, args[1], write=True)
    current = longdouble.parse(old) if old is not None else 0
    increment = longdouble.parse(args[2])
    if current is None or increment is None:
        raise CommandError(NOT_FLOAT)
    result = longdouble.add(current, increment)
    if not longdouble.is_finite(result):
        raise CommandError("ERR increment would produce NaN or Infinity")
    value = longdouble.format_human(result)
    ctx.store.set(ctx.slot, args[1], value, keep_ttl=True)
    return value


# -- ranges ---------------------------------------------------------------------------


@command("getrange", 4, "readonly", 1, 1, 1, group="string",
         summary="Returns a substring of the string stored at a key.", since="2.4.0")
def getrange(ctx, session, args):
    """Format: GETRANGE key start end

    Index clamping as in Redis 7.0: an end before the start of the string
    clamps to 0 (so GETRANGE k 0 -100 returns the first byte).
    """
    start, end = parse_int(args[2]), parse_int(args[3])
    value = get_string(ctx, args[1])
    if not value:
        return b""
    size = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(0, size + start)
    if end < 0:
        end = max(0, size + end)
    end = min(end, size - 1)
    return b"" if start > end else value[start:end + 1]


@command("substr", 4, "readonly", 1, 1, 1, group="string",
         summary="Returns a substring from a string value.")
def substr(ctx, session, args):
    """Format: SUBSTR key start end"""
    return getrange(ctx, session, args)


@command("setrange", 4, "write denyoom", 1, 1, 1, group="string",
         summary="Overwrites a part of a string value with another by an offset. "
                 "Creates the key if it doesn't exist.", since="2.2.0")
def setrange(ctx, session, args):
    """Format: SETRANGE key offset value"""
    key, patch = args[1], args[3]
    offset = parse_int(args[2])
    if offset < 0:
        raise CommandError("ERR offset is out of range")
    old = get_string(ctx, key, write=True)
    if not patch:
        return 0 if old is None else len(old)     # nothing to write: no key is created
    if offset + len(patch) > ctx.settings.proto_max_bulk_len:
        raise CommandError(TOO_BIG)
    old = old or b""
    growth = offset + len(patch) - len(old)
    store = ctx.store
    if growth > 0 and store.maxmemory and store.used_memory + growth > store.maxmemory:
        # Refused before the allocation rather than after it (Redis checks maxmemory
        # only before the command, so it would grow the value past the limit first).
        raise OOM
    # Nothing but the store and this frame hold `old` (the store's dict, the local
    # name, getrefcount's argument): it may be patched in place (hypercache/inplace.py).
    # (Counted in a statement of its own: as a call's argument `old` is on the stack too.)
    sole_owner = sys.getrefcount(old) <= SOLE_OWNER_REFS
    value = inplace.patched(old, offset, patch, sole_owner)
    store.set(ctx.slot, key, value, keep_ttl=True)
    return len(value)


@command("lcs", -3, "readonly", 1, 2, 1, group="string",
         summary="Finds the longest common substring.", since="7.0.0")
def lcs(ctx, session, args):
    """Format: LCS key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]"""
    # Redis reads both keys, then checks their types, before it reads the options
    found = [ctx.store.get(ctx.slot, key, ctx.now_ms) for key in args[1:3]]
    if any(value is not None and type(value) is not bytes for value in found):
        raise CommandError("ERR The specified keys must contain string values")
    values = [value or b"" for value in found]
    want_len = want_idx = with_match_len = False
    min_match = 0
    i = 3
    while i < len(args):
        option = args[i].upper()
        if option == b"LEN":
            want_len = True
        elif option == b"IDX":
            want_idx = True
        elif option == b"WITHMATCHLEN":
            with_match_len = True
        elif option == b"MINMATCHLEN" and i + 1 < len(args):
            min_match = max(0, parse_int(args[i + 1]))
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    if want_len and want_idx:
        raise CommandError("ERR If you want both the length and indexes, please just use IDX.")
    cells = (len(values[0]) + 1) * (len(values[1]) + 1)
    if cells * 4 > ctx.settings.proto_max_bulk_len:     # Redis's own bound on its uint32 table
        raise CommandError("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
    if cells > LCS_MAX_CELLS:
        # The table costs ~100 ns a cell in Python and the hub waits meanwhile.
        raise CommandError(f"ERR LCS input too large for this server (at most {LCS_MAX_CELLS} table cells)")
    a, b = values
    table = _lcs_table(a, b)
    length = table[len(a)][len(b)]
    if want_len:
        return length
    if not want_idx:
        return _lcs_string(table, a, b)
    matches = []
    for (a_start, a_end), (b_start, b_end) in _lcs_ranges(table, a, b):
        size = a_end - a_start + 1
        if size < min_match:
            continue
        match = [[a_start, a_end], [b_start, b_end]]
        if with_match_len:
            match.append(size)
        matches.append(match)
    reply = {b"matches": matches, b"len": length}
    return reply if session.protocol == 3 else [b"matches", matches, b"len", length]


def _lcs_table(a: bytes, b: bytes) -> list[list[int]]:
    """table[i][j]: length of the LCS of a[:i] and b[:j] (the classic dynamic programme)."""
    table = [[0] * (len(b) + 1)]
    for i in range(1, len(a) + 1):
        above = table[-1]
        row = [0]
        ai = a[i - 1]
        for j in range(1, len(b) + 1):
            row.append(above[j - 1] + 1 if ai == b[j - 1] else max(above[j], row[j - 1]))
        table.append(row)
    return table


def _lcs_walk(table, a: bytes, b: bytes):
    """Yield the matched (i, j) positions from the end, preferring the same moves as Redis."""
    i, j = len(a), len(b)
    while i > 0 and j > 0:
        if a[i - 1] == b[j - 1]:
            yield i - 1, j - 1
            i, j = i - 1, j - 1
        elif table[i - 1][j] > table[i][j - 1]:
            i -= 1
        else:
            j -= 1


def _lcs_string(table, a: bytes, b: bytes) -> bytes:
    return bytes(reversed([a[i] for i, _ in _lcs_walk(table, a, b)]))


def _lcs_ranges(table, a: bytes, b: bytes):
    """Contiguous runs of the match, last first, as ((a_start, a_end), (b_start, b_end))."""
    run = None
    for i, j in _lcs_walk(table, a, b):
        if run is not None and i == run[0][0] - 1 and j == run[1][0] - 1:
            run = ((i, run[0][1]), (j, run[1][1]))
            continue
        if run is not None:
            yield run
        run = ((i, i), (j, j))
    if run is not None:
        yield run
