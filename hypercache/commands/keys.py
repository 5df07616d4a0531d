"""Generic key commands: DEL, EXISTS, TYPE, the EXPIRE family, KEYS, SCAN, RENAME, COPY, OBJECT...

Their lookups follow Redis's: TYPE, TTL, EXISTS and OBJECT count a keyspace
hit or miss but are not an access for eviction (LOOKUP_NOTOUCH: `look()`);
DEL, the EXPIRE family, PERSIST and RENAME neither count nor touch (`peek()`).
Both apply lazy expiry.
"""
from __future__ import annotations

from mesh.keyslot import keyslot

from ..arguments import INT64_MAX, INT64_MIN, SYNTAX, parse_int
from ..glob import glob_match
from ..reply import OK, CommandError, Status
from ..store import LFU_INIT, type_name
from ..pulse import EVERY, paced, starts, ticking
from . import command, container

SHARED_INTEGERS = 10000          # Redis shares the objects of 0..9999 (OBJ_SHARED_INTEGERS)
SHARED_REFCOUNT = 2147483647     # OBJECT REFCOUNT of a shared object (OBJ_SHARED_REFCOUNT)
EMBSTR_LIMIT = 44                # longest string Redis stores as embstr
DATABASES = 16                   # Redis's default `databases`: COPY DB checks its range


def peek(ctx, key: bytes):
    """The live value of `key`, neither counted as a keyspace hit/miss nor an access."""
    return ctx.store.peek(ctx.slot, key, ctx.now_ms)


def look(ctx, key: bytes):
    """The live value of `key`, counted as a keyspace hit or miss but not an access."""
    return ctx.store.get(ctx.slot, key, ctx.now_ms, touch=False)


# -- existence and type ----------------------------------------------------------------


def _delete(ctx, args):
    keys, count = args[1:], 0
    for start in starts(len(keys)):     # (a beat between pieces: hypercache/pulse.py)
        count += ctx.store.delete_many(ctx.slot, keys[start:start + EVERY], ctx.now_ms)
    return count


@command("del", -2, "write", 1, -1, 1, group="generic", summary="Deletes one or more keys.")
def del_(ctx, session, args):
    """Format: DEL key [key ...]"""
    return _delete(ctx, args)


@command("unlink", -2, "write fast", 1, -1, 1, group="generic",
         summary="Asynchronously deletes one or more keys.", since="4.0.0")
def unlink(ctx, session, args):
    """Format: UNLINK key [key ...]

    Freeing is immediate here: CPython frees a value when its last reference goes.
    """
    return _delete(ctx, args)


@command("exists", -2, "readonly fast", 1, -1, 1, group="generic",
         summary="Determines whether one or more keys exist.")
def exists(ctx, session, args):
    """Format: EXISTS key [key ...]"""
    return sum(1 for key in args[1:] if look(ctx, key) is not None)   # repeats count again


@command("touch", -2, "readonly fast", 1, -1, 1, group="generic",
         summary="Returns the number of existing keys out of those specified after updating "
                 "the time they were last accessed.", since="3.2.1")
def touch(ctx, session, args):
    """Format: TOUCH key [key ...]"""
    store = ctx.store
    return sum(1 for key in args[1:] if store.get(ctx.slot, key, ctx.now_ms) is not None)


@command("type", 2, "readonly fast", 1, 1, 1, group="generic",
         summary="Determines the type of value stored at a key.")
def type_(ctx, session, args):
    """Format: TYPE key"""
    value = look(ctx, args[1])
    return Status(b"none" if value is None else type_name(value))


# -- expiry ------------------------------------------------------------------------------


def _expire(ctx, args, unit_ms: int, relative: bool):
    """EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: Redis's expireGenericCommand."""
    name = args[0].decode("utf-8", "replace").lower()
    options = set()
    for raw in args[3:]:
        option = raw.upper()
        if option not in (b"NX", b"XX", b"GT", b"LT"):
            raise CommandError(f"ERR Unsupported option {raw.decode('utf-8', 'replace')}")
        options.add(option)
    if b"NX" in options and len(options) > 1:
        raise CommandError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if b"GT" in options and b"LT" in options:
        raise CommandError("ERR GT and LT options at the same time are not compatible")
    when = parse_int(args[2])
    invalid = CommandError(f"ERR invalid expire time in '{name}' command")
    if unit_ms == 1000:
        # C's LLONG_MIN / 1000 truncates toward zero
        if when > INT64_MAX // 1000 or when < -(-INT64_MIN // 1000):
            raise invalid
        when *= 1000
    if relative:
        if when > INT64_MAX - ctx.now_ms:
            raise invalid
        when += ctx.now_ms
    key = args[1]
    if peek(ctx, key) is None:
        return 0
    store = ctx.store
    current = store.expires.get(key)        # None: no TTL, which GT/LT treat as infinite
    if b"NX" in options and current is not None:
        return 0
    if b"XX" in options and current is None:
        return 0
    if b"GT" in options and (current is None or when <= current):
        return 0
    if b"LT" in options and current is not None and when >= current:
        return 0
    if when <= ctx.now_ms:
        store.delete(ctx.slot, key)          # a deadline in the past deletes the key now
    else:
        store.set_deadline(key, when)
    return 1


@command("expire", -3, "write fast", 1, 1, 1, group="generic",
         summary="Sets the expiration time of a key in seconds.")
def expire(ctx, session, args):
    """Format: EXPIRE key seconds [NX | XX | GT | LT]"""
    return _expire(ctx, args, 1000, relative=True)


@command("pexpire", -3, "write fast", 1, 1, 1, group="generic",
         summary="Sets the expiration time of a key in milliseconds.", since="2.6.0")
def pexpire(ctx, session, args):
    """Format: PEXPIRE key milliseconds [NX | XX | GT | LT]"""
    return _expire(ctx, args, 1, relative=True)


@command("expireat", -3, "write fast", 1, 1, 1, group="generic",
         summary="Sets the expiration time of a key to a Unix timestamp.", since="1.2.0")
def expireat(ctx, session, args):
    """Format: EXPIREAT key unix-time-seconds [NX | XX | GT | LT]"""
    return _expire(ctx, args, 1000, relative=False)


@command("pexpireat", -3, "write fast", 1, 1, 1, group="generic",
         summary="Sets the expiration time of a key to a Unix milliseconds timestamp.", since="2.6.0")
def pexpireat(ctx, session, args):
    """Format: PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]"""
    return _expire(ctx, args, 1, relative=False)


def _ttl(ctx, key: bytes, in_ms: bool, absolute: bool) -> int:
    """Redis's ttlGenericCommand: -2 missing, -1 no TTL; seconds are rounded to nearest."""
    if look(ctx, key) is None:
        return -2
    deadline = ctx.store.expires.get(key)
    if deadline is None:
        return -1
    ms = max(0, deadline if absolute else deadline - ctx.now_ms)
    return ms if in_ms else (ms + 500) // 1000


@command("ttl", 2, "readonly fast", 1, 1, 1, group="generic", summary="Returns the expiration time in seconds of a key.")
def ttl(ctx, session, args):
    """Format: TTL key"""
    return _ttl(ctx, args[1], in_ms=False, absolute=False)


@command("pttl", 2, "readonly fast", 1, 1, 1, group="generic",
         summary="Returns the expiration time in milliseconds of a key.", since="2.6.0")
def pttl(ctx, session, args):
    """Format: PTTL key"""
    return _ttl(ctx, args[1], in_ms=True, absolute=False)


@command("expiretime", 2, "readonly fast", 1, 1, 1, group="generic",
         summary="Returns the expiration time of a key as a Unix timestamp.", since="7.0.0")
def expiretime(ctx, session, args):
    """Format: EXPIRETIME key"""
    return _ttl(ctx, args[1], in_ms=False, absolute=True)


@command("pexpiretime", 2, "readonly fast", 1, 1, 1, group="generic",
         summary="Returns the expiration time of a key as a Unix milliseconds timestamp.", since="7.0.0")
def pexpiretime(ctx, session, args):
    """Format: PEXPIRETIME key"""
    return _ttl(ctx, args[1], in_ms=True, absolute=True)


@command("persist", 2, "write fast", 1, 1, 1, group="generic",
         summary="Removes the expiration time of a key.", since="2.2.0")
def persist(ctx, session, args):
    """Format: PERSIST key"""
    if peek(ctx, args[1]) is None:
        return 0
    return 1 if ctx.store.persist(args[1]) else 0


# -- iteration ---------------------------------------------------------------------------


@command("keys", 2, "readonly", group="generic", summary="Returns all key names that match a pattern.")
def keys(ctx, session, args):
    """Format: KEYS pattern"""
    pattern, store, now = args[1], ctx.store, ctx.now_ms
    every = pattern == b"*"
    # a replica's copies are listed by their primary (after READONLY, here too)
    skip = None if session.readonly else store.replica_slots
    live = (key for slot, slot_keys in enumerate(store.slots) if slot_keys and not (skip is not None and skip[slot])
            for key in store.keys_in_slot(slot, now))
    # (a million keys take seconds to match: the heartbeat goes on, hypercache/pulse.py)
    return [k for k in ticking(live) if every or glob_match(pattern, k)]


def _parse_cursor(raw: bytes) -> int:
    """A cursor as Redis's strtoul reads it: an optional sign, digits, at most 2**64-1."""
    body = raw[1:] if raw[:1] in (b"+", b"-") else raw
    if not body.isdigit() or not body.isascii():
        raise CommandError("ERR invalid cursor")
    value = int(body)
    if value > 2**64 - 1:
        raise CommandError("ERR invalid cursor")
    return (2**64 - value) % 2**64 if raw[:1] == b"-" else value   # strtoul wraps negatives


@command("scan", -2, "readonly", group="generic", summary="Iterates over the key names in the database.",
         since="2.8.0")
def scan(ctx, session, args):
    """Format: SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]

    The cursor is the next slot to read and every slot is returned whole, so a
    key present for the whole scan is returned exactly once, whatever changes
    meanwhile. MATCH and TYPE filter after the slots are read, as in Redis.
    """
    cursor = _parse_cursor(args[1])
    count, pattern, wanted_type = 10, None, None
    i = 2
    while i < len(args):
        option = args[i].upper()
        if i + 1 >= len(args):
            raise CommandError(SYNTAX)
        if option == b"COUNT":
            count = parse_int(args[i + 1])
            if count < 1:
                raise CommandError(SYNTAX)
        elif option == b"MATCH":
            pattern = args[i + 1]
        elif option == b"TYPE" and wanted_type is None:
            wanted_type = args[i + 1].lower()
        else:
            raise CommandError(SYNTAX)
        i += 2
    store = ctx.store
    next_cursor, found = store.scan(cursor, count, ctx.now_ms, replicas=session.readonly)
    # (a COUNT of millions filters that many keys: the heartbeat goes on, hypercache/pulse.py)
    if pattern is not None and pattern != b"*":
        found = [k for k in paced(found) if glob_match(pattern, k)]
    if wanted_type is not None:
        found = [k for k in paced(found)
                 if (v := store.slots[keyslot(k)].get(k)) is not None and type_name(v) == wanted_type]
    return [b"%d" % next_cursor, found]


@command("randomkey", 1, "readonly", group="generic", summary="Returns a random key name from the database.")
def randomkey(ctx, session, args):
    """Format: RANDOMKEY"""
    return ctx.store.random_key(ctx.now_ms, keyslot)


# -- rename and copy -------------------------------------------------------------------


def _rename(ctx, args, nx: bool):
    source, target = args[1], args[2]
    value = peek(ctx, source)
    if value is None:
        raise CommandError("ERR no such key")
    if source == target:
        return 0 if nx else OK
    store, slot = ctx.store, ctx.slot       # the router put both keys in this slot
    if peek(ctx, target) is not None:
        if nx:
            return 0
        store.delete(slot, target)
    deadline = store.expires.get(source)
    store.delete(slot, source)
    store.set(slot, target, value)
    if deadline is not None:
        store.set_deadline(target, deadline)
    return 1 if nx else OK


@command("rename", 3, "write", 1, 2, 1, group="generic", summary="Renames a key and overwrites the destination.")
def rename(ctx, session, args):
    """Format: RENAME key newkey"""
    return _rename(ctx, args, nx=False)


@command("renamenx", 3, "write fast", 1, 2, 1, group="generic",
         summary="Renames a key only when the target key name doesn't exist.")
def renamenx(ctx, session, args):
    """Format: RENAMENX key newkey"""
    return _rename(ctx, args, nx=True)


@command("copy", -3, "write denyoom", 1, 2, 1, group="generic", summary="Copies the value of a key to a new key.",
         since="6.2.0")
def copy(ctx, session, args):
    """Format: COPY source destination [DB destination-db] [REPLACE]"""
    replace = False
    db = 0
    i = 3
    while i < len(args):
        option = args[i].upper()
        if option == b"REPLACE":
            replace = True
        elif option == b"DB" and i + 1 < len(args):
            db = parse_int(args[i + 1])
            if not -2**31 <= db < 2**31:
                raise CommandError("ERR value is out of range, value must between -2147483648 and 2147483647")
            if not 0 <= db < DATABASES:
                raise CommandError("ERR DB index is out of range")
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    if db != 0:
        raise CommandError("ERR Copying to another database is not allowed in cluster mode")
    source, target = args[1], args[2]
    if source == target:
        raise CommandError("ERR source and destination objects are the same")
    value = ctx.store.get(ctx.slot, source, ctx.now_ms)
    if value is None:
        return 0
    store, slot = ctx.store, ctx.slot
    if peek(ctx, target) is not None:
        if not replace:
            return 0
        store.delete(slot, target)
    # bytes are immutable and can be shared; containers are deep-copied
    store.set(slot, target, value if type(value) is bytes else value.copy())
    deadline = store.expires.get(source)
    if deadline is not None:
        store.set_deadline(target, deadline)
    return 1


# -- OBJECT ------------------------------------------------------------------------------

container("object", -2, "", group="generic", summary="A container for object introspection commands.",
          since="2.2.3")

LFU_NOT_SELECTED = ("ERR An LFU maxmemory policy is not selected, access frequency not tracked. "
                    "Please note that when switching between policies at runtime LRU and LFU data "
                    "will take some time to adjust.")
LFU_SELECTED = ("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that "
                "when switching between policies at runtime LRU and LFU data will take some time "
                "to adjust.")
OBJECT_HELP = [
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
]


def _as_int(value: bytes) -> int | None:
    """The integer a string holds when Redis would encode it as "int" (canonical, 64-bit)."""
    if len(value) > 20:
        return None
    try:
        return parse_int(value)
    except CommandError:
        return None


def string_encoding(value: bytes) -> bytes:
    if _as_int(value) is not None:
        return b"int"
    return b"embstr" if len(value) <= EMBSTR_LIMIT else b"raw"


@command("object|encoding", 3, "readonly", 2, 2, 1, group="generic",
         summary="Returns the internal encoding of a Redis object.", since="2.2.3")
def object_encoding(ctx, session, args):
    """Format: OBJECT ENCODING key"""
    value = look(ctx, args[2])
    if value is None:
        return None
    return string_encoding(value) if type(value) is bytes else value.encoding


@command("object|freq", 3, "readonly", 2, 2, 1, group="generic",
         summary="Returns the logarithmic access frequency counter of a Redis object.", since="4.0.0")
def object_freq(ctx, session, args):
    """Format: OBJECT FREQ key"""
    value = look(ctx, args[2])
    if value is None:
        return None
    store = ctx.store
    if not store.policy.endswith("-lfu"):
        raise CommandError(LFU_NOT_SELECTED)
    return (store.access or {}).get(args[2], LFU_INIT)


@command("object|idletime", 3, "readonly", 2, 2, 1, group="generic",
         summary="Returns the time since the last access to a Redis object.", since="2.2.3")
def object_idletime(ctx, session, args):
    """Format: OBJECT IDLETIME key

    Access times are kept under an LRU policy, and under the others from the
    first OBJECT IDLETIME on (Store.keep_access_times): a key not accessed
    since reads as idle since that first call.
    """
    value = look(ctx, args[2])
    if value is None:
        return None
    store = ctx.store
    if store.policy.endswith("-lfu"):
        raise CommandError(LFU_SELECTED)
    store.keep_access_times(ctx.now_ms)
    last = (store.access or {}).get(args[2])
    if last is None:
        last = store.idle_asked_at_ms if store.idle_asked_at_ms is not None else ctx.now_ms
    return max(0, ctx.now_ms - last) // 1000


@command("object|refcount", 3, "readonly", 2, 2, 1, group="generic",
         summary="Returns the reference count of a value of a key.", since="2.2.3")
def object_refcount(ctx, session, args):
    """Format: OBJECT REFCOUNT key"""
    value = look(ctx, args[2])
    if value is None:
        return None
    store = ctx.store
    # Redis shares small integers unless an LRU/LFU policy needs per-object access data
    sharing = not (store.maxmemory and store.policy.endswith(("-lru", "-lfu")))
    if type(value) is bytes and sharing:
        number = _as_int(value)
        if number is not None and 0 <= number < SHARED_INTEGERS:
            return SHARED_REFCOUNT
    return 1


@command("object|help", 2, "loading stale", group="generic", summary="Returns helpful text about the different subcommands.",
         since="6.2.0")
def object_help(ctx, session, args):
    """Format: OBJECT HELP"""
    return [Status(line.encode()) for line in OBJECT_HELP]
