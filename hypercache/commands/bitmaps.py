"""Bitmaps: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO on string values (Redis 7.0).

The bit arithmetic is hypercache/bits.py; here the arguments are parsed with
Redis's error texts and values are read from and written to the store. Writes
that touch a few bytes of a big value patch it in place when only the store
holds it (hypercache/inplace.py), as SETRANGE does, so a SETBIT on a 512 MB
bitmap costs a byte, not a copy.
"""
from __future__ import annotations

import sys

from .. import bits, inplace
from ..arguments import parse_int
from ..pulse import paced
from ..reply import CommandError
from . import command
from .strings import get_string

BIT_OFFSET = "ERR bit offset is not an integer or out of range"
BIT_VALUE = "ERR bit is not an integer or out of range"
SYNTAX = CommandError("ERR syntax error")
OOM = CommandError("OOM command not allowed when used memory > 'maxmemory'.")
BAD_TYPE = CommandError("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported "
                        "but i64 is.")
SOLE_OWNER_REFS = 3          # the store's dict, our local name, getrefcount's argument


def parse_offset(ctx, raw: bytes, hash_bits: int = 0) -> int:
    """A bit offset (getBitOffsetFromArgument): `#n` means n fields of `hash_bits` in BITFIELD."""
    use_hash = hash_bits > 0 and raw[:1] == b"#"
    offset = parse_int(raw[1:] if use_hash else raw, BIT_OFFSET)
    if use_hash:
        offset *= hash_bits
    if offset < 0 or (offset >> 3) >= ctx.settings.proto_max_bulk_len:
        raise CommandError(BIT_OFFSET)
    return offset


def write_bytes(ctx, key: bytes, old: bytes | None, start: int, patch: bytes) -> None:
    """Store `old` with `patch` at byte `start` (zero-extended), in place when nobody else holds it."""
    old = old if old is not None else b""
    growth = start + len(patch) - len(old)
    store = ctx.store
    if growth > 0 and store.maxmemory and store.used_memory + growth > store.maxmemory:
        raise OOM
    sole_owner = sys.getrefcount(old) <= SOLE_OWNER_REFS + 1     # + the caller's name
    value = inplace.patched(old, start, patch, sole_owner)
    store.set(ctx.slot, key, value, keep_ttl=True)


@command("setbit", 4, "write denyoom", 1, 1, 1, group="bitmap", since="2.2.0",
         summary="Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.")
def setbit(ctx, session, args):
    """Format: SETBIT key offset value"""
    offset = parse_offset(ctx, args[2])
    bit = parse_int(args[3], BIT_VALUE)
    if bit & ~1:
        raise CommandError(BIT_VALUE)
    old = get_string(ctx, args[1], write=True)
    index = offset >> 3
    current = old[index] if old is not None and index < len(old) else 0
    previous = (current >> (7 - (offset & 7))) & 1
    write_bytes(ctx, args[1], old, index, bytes([bits.with_bit(current, offset, bit)]))
    return previous


@command("getbit", 3, "readonly fast", 1, 1, 1, group="bitmap", since="2.2.0",
         summary="Returns a bit value by offset.")
def getbit(ctx, session, args):
    """Format: GETBIT key offset"""
    offset = parse_offset(ctx, args[2])
    value = get_string(ctx, args[1])
    return 0 if value is None else bits.get_bit(value, offset)


def _unit(raw: bytes) -> bool:
    """True for BIT, False for BYTE."""
    unit = raw.lower()
    if unit == b"bit":
        return True
    if unit == b"byte":
        return False
    raise SYNTAX


def _clamp(start: int, end: int, length: int) -> tuple[int, int]:
    if start < 0:
        start += length
    if end < 0:
        end += length
    start = max(start, 0)
    end = max(end, 0)
    if end >= length:
        end = length - 1
    return start, end


@command("bitcount", -2, "readonly", 1, 1, 1, group="bitmap", since="2.6.0",
         summary="Counts the number of set bits (population counting) in a string.")
def bitcount(ctx, session, args):
    """Format: BITCOUNT key [start end [BYTE | BIT]]"""
    if len(args) not in (2, 4, 5):
        # (Redis reads the key first: a missing key answers 0 even to a bad call)
        if get_string(ctx, args[1]) is None:
            return 0
        raise SYNTAX
    value = get_string(ctx, args[1])
    if value is None:
        return 0
    if len(args) == 2:
        return bits.count_bytes(value, 0, len(value) - 1)
    start, end = parse_int(args[2]), parse_int(args[3])
    if start < 0 and end < 0 and start > end:
        return 0
    in_bits = _unit(args[4]) if len(args) == 5 else False
    length = len(value) * 8 if in_bits else len(value)
    start, end = _clamp(start, end, length)
    if start > end:
        return 0
    if in_bits:
        return bits.count_bits(value, start, end)
    return bits.count_bytes(value, start, end)


@command("bitpos", -3, "readonly", 1, 1, 1, group="bitmap", since="2.8.7",
         summary="Finds the first set (1) or clear (0) bit in a string.")
def bitpos(ctx, session, args):
    """Format: BITPOS key bit [start [end [BYTE | BIT]]]"""
    bit = parse_int(args[2])
    if bit not in (0, 1):
        raise CommandError("ERR The bit argument must be 1 or 0.")
    value = get_string(ctx, args[1])
    if value is None:
        return -1 if bit else 0
    if len(args) > 6:
        raise SYNTAX
    end_given = len(args) >= 5
    in_bits = False
    if len(args) == 3:
        start, end = 0, len(value) - 1
    else:
        start = parse_int(args[3])
        if len(args) == 6:
            in_bits = _unit(args[5])
        if end_given:
            end = parse_int(args[4])
        else:
            end = len(value) * 8 + 7 if in_bits else len(value) - 1
        start, end = _clamp(start, end, len(value) * 8 if in_bits else len(value))
    if start > end:
        return -1
    first, last = (start, end) if in_bits else (start * 8, end * 8 + 7)
    found = bits.first_bit(value, bit, first, last)
    if found >= 0:
        return found
    if bit == 1 or end_given:
        return -1
    return last + 1          # no clear bit in the string: the first one past it


@command("bitop", -4, "write denyoom", 2, -1, 1, group="bitmap", since="2.6.0",
         summary="Performs bitwise operations on multiple strings, and stores the result.")
def bitop(ctx, session, args):
    """Format: BITOP AND | OR | XOR | NOT destkey key [key ...]"""
    op = args[1].lower()
    if op not in (b"and", b"or", b"xor", b"not"):
        raise SYNTAX
    if op == b"not" and len(args) != 4:
        raise CommandError("ERR BITOP NOT must be called with a single source key.")
    sources = []
    for key in args[3:]:
        value = get_string(ctx, key)
        sources.append(b"" if value is None else value)
    result = bits.bitop(op.decode(), sources)
    store = ctx.store
    if result:
        if store.maxmemory and store.over_maxmemory():
            raise OOM
        store.set(ctx.slot, args[2], result)
    else:
        store.delete(ctx.slot, args[2])
    return len(result)


def _bitfield(ctx, args, read_only: bool):
    ops = []
    policy = "wrap"
    writes = False
    highest = -1
    i = 2
    while i < len(args):
        sub = args[i].lower()
        remaining = len(args) - i - 1
        if sub == b"overflow" and remaining >= 1:
            name = args[i + 1].lower()
            if name not in (b"wrap", b"sat", b"fail"):
                raise CommandError("ERR Invalid OVERFLOW type specified")
            policy = name.decode()
            i += 2
            continue
        if not ((sub == b"get" and remaining >= 2) or (sub in (b"set", b"incrby") and remaining >= 3)):
            raise SYNTAX
        kind = bits.parse_type(args[i + 1])
        if kind is None or args[i + 1][:1] not in (b"i", b"u"):
            raise BAD_TYPE
        offset = parse_offset(ctx, args[i + 2], kind.bits)
        number = 0
        if sub != b"get":
            writes = True
            highest = max(highest, offset + kind.bits - 1)
            number = parse_int(args[i + 3])
        ops.append((sub, kind, offset, number, policy))
        i += 3 if sub == b"get" else 4
    if read_only and writes:
        raise CommandError("ERR BITFIELD_RO only supports the GET subcommand")
    key = args[1]
    if not writes:
        value = get_string(ctx, key) or b""
        return [bits.read_field(value, offset, kind) for _, kind, offset, _, _ in paced(ops)]
    _grow(ctx, key, highest >> 3)
    return [_apply(ctx, key, sub, kind, offset, number, op_policy)
            for sub, kind, offset, number, op_policy in paced(ops)]


def _grow(ctx, key: bytes, last_byte: int) -> None:
    """As Redis, the string covers the highest bit written before any op runs (and stays
    so even if that op fails its OVERFLOW check); zero-extended, as SETBIT extends it."""
    old = get_string(ctx, key, write=True)
    if old is None or len(old) <= last_byte:
        write_bytes(ctx, key, old, last_byte, b"\x00")


def _apply(ctx, key: bytes, sub: bytes, kind: bits.FieldType, offset: int, number: int,
           policy: str) -> int | None:
    """One op of a BITFIELD that writes, on the value as the ops before it left it.

    A write patches only the bytes its field covers, in place when the store alone holds
    the value (write_bytes): building one span of every byte the ops cover, and copying it
    for each read, held the hub 10 s for 20 INCRBYs of a 512 MB span.
    """
    old = get_string(ctx, key, write=True)
    assert old is not None          # (_grow made it)
    previous = bits.read_field(old, offset, kind)
    if sub == b"get":
        return previous
    if sub == b"set":
        target = number if kind.signed else number & (2**64 - 1)
    else:
        target = previous + number
    fitted = bits.overflow(target, kind, policy)
    if fitted is None:
        return None
    first = offset >> 3
    patch = bytearray(old[first:((offset + kind.bits - 1) >> 3) + 1])
    bits.write_field(patch, offset & 7, kind, fitted)
    write_bytes(ctx, key, old, first, bytes(patch))
    return previous if sub == b"set" else fitted


@command("bitfield", -2, "write denyoom", 1, 1, 1, group="bitmap", since="3.2.0",
         summary="Performs arbitrary bitfield integer operations on strings.")
def bitfield(ctx, session, args):
    """Format: BITFIELD key [GET type offset | [OVERFLOW WRAP|SAT|FAIL] SET type offset value |
    [OVERFLOW WRAP|SAT|FAIL] INCRBY type offset increment ...]"""
    return _bitfield(ctx, args, False)


@command("bitfield_ro", -2, "readonly fast", 1, 1, 1, group="bitmap", since="6.0.0",
         summary="Performs arbitrary read-only bitfield integer operations on strings.")
def bitfield_ro(ctx, session, args):
    """Format: BITFIELD_RO key [GET type offset ...]"""
    return _bitfield(ctx, args, True)
