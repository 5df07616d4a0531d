"""DUMP and RESTORE in Redis's RDB object format (hypercache/rdb.py), with Redis 7.0's options and errors."""
from __future__ import annotations

from .. import rdb
from ..arguments import parse_int
from ..reply import OK, CommandError
from . import command

SYNTAX = CommandError("ERR syntax error")


@command("dump", 2, "readonly", 1, 1, 1, group="generic", since="2.6.0",
         summary="Returns a serialized representation of the value stored at a key.")
def dump(ctx, session, args):
    """Format: DUMP key"""
    value = ctx.store.get(ctx.slot, args[1], ctx.now_ms)
    return None if value is None else rdb.dump(value)


@command("restore", -4, "write denyoom", 1, 1, 1, group="generic", since="2.6.0",
         summary="Creates a key from the serialized representation of a value.")
def restore(ctx, session, args):
    """Format: RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]"""
    replace = absttl = False
    idle = freq = -1
    j = 4
    while j < len(args):
        option = args[j].lower()
        more = len(args) - j - 1
        if option == b"replace":
            replace = True
        elif option == b"absttl":
            absttl = True
        elif option == b"idletime" and more >= 1 and freq == -1:
            idle = parse_int(args[j + 1])
            if idle < 0:
                raise CommandError("ERR Invalid IDLETIME value, must be >= 0")
            j += 1
        elif option == b"freq" and more >= 1 and idle == -1:
            freq = parse_int(args[j + 1])
            if not 0 <= freq <= 255:
                raise CommandError("ERR Invalid FREQ value, must be >= 0 and <= 255")
            j += 1
        else:
            raise SYNTAX
        j += 1
    key = args[1]
    store = ctx.store
    if not replace and store.get_for_write(ctx.slot, key, ctx.now_ms) is not None:
        raise CommandError("BUSYKEY Target key name already exists.")
    ttl = parse_int(args[2])
    if ttl < 0:
        raise CommandError("ERR Invalid TTL value, must be >= 0")
    payload = args[3]
    if not rdb.verify(payload):
        raise CommandError("ERR DUMP payload version or checksum are wrong")
    try:
        value = rdb.load(payload)
    except (rdb.BadFormat, IndexError, ValueError):
        raise CommandError("ERR Bad data format") from None
    if replace:
        store.delete(ctx.slot, key)
    if ttl and not absttl:
        ttl += ctx.now_ms
    if ttl and ttl <= ctx.now_ms:
        return OK                  # already expired: nothing is created (an old value was deleted)
    store.set(ctx.slot, key, value)
    if ttl:
        store.set_deadline(key, ttl)
    return OK
