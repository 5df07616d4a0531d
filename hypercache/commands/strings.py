"""String commands: GET, SET and friends."""
from __future__ import annotations

from ..arguments import WRONGTYPE, SYNTAX, parse_int
from ..resp import OK, CommandError
from . import command


def get_string(ctx, key: bytes) -> bytes | None:
    value = ctx.store.get(ctx.slot, key, ctx.now_ms)
    if value is None or type(value) is bytes:
        return value
    raise CommandError(WRONGTYPE)


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
    nx = xx = get_old = keep_ttl = False
    deadline = None
    i = 3
    while i < len(args):
        option = args[i].upper()
        if option == b"NX" and not xx:
            nx = True
        elif option == b"XX" and not nx:
            xx = True
        elif option == b"GET":
            get_old = True
        elif option == b"KEEPTTL" and deadline is None:
            keep_ttl = True
        elif option in (b"EX", b"PX", b"EXAT", b"PXAT") and not keep_ttl and deadline is None \
                and i + 1 < len(args):
            amount = parse_int(args[i + 1])
            if amount <= 0:
                raise CommandError(f"ERR invalid expire time in '{'set'}' command")
            unit = 1000 if option in (b"EX", b"EXAT") else 1
            if option in (b"EX", b"PX"):
                if amount > (2**63 - 1) // unit - ctx.now_ms:
                    raise CommandError("ERR invalid expire time in 'set' command")
                deadline = ctx.now_ms + amount * unit
            else:
                if amount > (2**63 - 1) // unit:
                    raise CommandError("ERR invalid expire time in 'set' command")
                deadline = amount * unit
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    old = store.get(ctx.slot, key, ctx.now_ms)
    if get_old and old is not None and type(old) is not bytes:
        raise CommandError(WRONGTYPE)
    if (nx and old is not None) or (xx and old is None):
        return old if get_old else None
    store.set(ctx.slot, key, value, keep_ttl=keep_ttl)
    if deadline is not None:
        if deadline <= ctx.now_ms:
            store.delete(ctx.slot, key)   # already in the past: the key is gone at once
        else:
            store.set_deadline(key, deadline)
    return old if get_old else OK
