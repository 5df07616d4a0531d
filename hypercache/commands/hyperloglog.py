"""HyperLogLog: PFADD, PFCOUNT, PFMERGE on string values, with Redis 7.0's estimator and errors.

The sketch itself is hypercache/hyperloglog.py (pure). Values are written
dense; sparse values (from a redis-server DUMP or SET) are read and turned
dense on their first write. PFCOUNT of one key stores the cardinality in
the value's header as Redis does, so GET after it shows the cached count.
"""
from __future__ import annotations

from .. import hyperloglog as hll
from ..reply import OK, CommandError
from . import command
from .strings import get_string

NOT_HLL = CommandError("WRONGTYPE Key is not a valid HyperLogLog string value.")
CORRUPTED = CommandError("INVALIDOBJ Corrupted HLL object detected")


def _load(ctx, key: bytes, write: bool = False) -> bytes | None:
    value = get_string(ctx, key, write=write)
    if value is not None:
        try:
            hll.check(value)
        except hll.InvalidHll:
            raise NOT_HLL from None
    return value


def _registers(value: bytes) -> bytearray:
    try:
        return hll.registers_of(value)
    except hll.InvalidHll:
        raise CORRUPTED from None


@command("pfadd", -2, "write denyoom fast", 1, 1, 1, group="hyperloglog", since="2.8.9",
         summary="Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.")
def pfadd(ctx, session, args):
    """Format: PFADD key [element [element ...]]"""
    key = args[1]
    old = _load(ctx, key, write=True)
    if old is not None and old[4] == hll.DENSE:
        found = hll.growth(old, args[2:])
        if not found:
            return 0            # nothing grew: the value stays as it is, uncopied
        dense = bytearray(old)
        hll.raise_registers(dense, found)
        hll.invalidate(dense)
        ctx.store.set(ctx.slot, key, bytes(dense), keep_ttl=True)
        return 1
    if old is None:
        dense, updated = hll.empty(), True
    else:
        try:
            dense = hll.as_dense(old)
        except hll.InvalidHll:
            raise CORRUPTED from None
        updated = False
    for element in args[2:]:
        if hll.add(dense, element):
            updated = True
    if updated:
        hll.invalidate(dense)
        ctx.store.set(ctx.slot, key, bytes(dense), keep_ttl=True)
    return 1 if updated else 0


def _leads_slot(ctx) -> bool:
    # (PFCOUNT writes its cache into the value: only the slot's primary may write)
    owners = ctx.cluster.slotmap.owners[ctx.slot]
    return bool(owners) and owners[0] == ctx.node_id


@command("pfcount", -2, "readonly may-replicate", 1, -1, 1, group="hyperloglog", since="2.8.9",
         summary="Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).")
def pfcount(ctx, session, args):
    """Format: PFCOUNT key [key ...]"""
    if len(args) > 2:
        merged = bytearray(hll.REGISTERS)
        for key in args[1:]:
            value = _load(ctx, key)
            if value is not None:
                hll.merge(merged, _registers(value))
        return hll.count(merged)
    value = _load(ctx, args[1])
    if value is None:
        return 0
    card = hll.cached(value)
    if card is not None:
        return card
    card = hll.count(_registers(value))
    if _leads_slot(ctx):
        dense = hll.as_dense(value) if value[4] == hll.DENSE else bytearray(value)
        hll.with_cache(dense, card)
        ctx.store.set(ctx.slot, args[1], bytes(dense), keep_ttl=True)
    return card


@command("pfmerge", -2, "write denyoom", 1, -1, 1, group="hyperloglog", since="2.8.9",
         summary="Merges one or more HyperLogLog values into a single key.")
def pfmerge(ctx, session, args):
    """Format: PFMERGE destkey [sourcekey [sourcekey ...]]"""
    merged = bytearray(hll.REGISTERS)
    for key in args[1:]:            # the destination counts as a source, as in Redis
        value = _load(ctx, key)
        if value is not None:
            hll.merge(merged, _registers(value))
    dest = _load(ctx, args[1], write=True)
    header = bytearray(dest[:hll.HEADER]) if dest is not None else hll.empty()[:hll.HEADER]
    header[4] = hll.DENSE
    dense = header + hll.registers_to_dense(bytes(merged))
    hll.invalidate(dense)
    ctx.store.set(ctx.slot, args[1], bytes(dense), keep_ttl=True)
    return OK
