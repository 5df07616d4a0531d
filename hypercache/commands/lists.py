"""List commands: pushes and pops at both ends, ranges, LPOS, LMOVE, LMPOP and the blocking pops.

A List keeps its elements in their wire form (see hypercache/types/list.py), so
the replies carrying elements are built as `Raw` by joining stored bytes. An
array of bulk strings is the same in RESP2 and RESP3; only the null replies
differ, and those stay None / NULL_ARRAY.
"""
from __future__ import annotations

from ..arguments import SYNTAX, WRONGTYPE, parse_int
from ..blocking import first_holding, serve_or_suspend
from ..reply import NULL_ARRAY, OK, CommandError, Raw
from ..types.list import ENTRY_BYTES, List, encode
from ..pulse import EVERY, chunks
from ..context import Context
from ..store import Store
from . import command
from .options import index_range, numkeys_keys, parse_mpop, parse_timeout
from .values import typed_value

OUT_OF_RANGE_POSITIVE = "ERR value is out of range, must be positive"
ENDS = {b"left": True, b"right": False}     # LMPOP's LEFT | RIGHT: pop from the left?


def _read(ctx, key: bytes, write: bool = False) -> List | None:
    return typed_value(ctx, key, List, write)


def _shrunk(ctx, key: bytes, lst: List, before: int) -> None:
    """After removing elements: delete the key when the list is empty, else resize."""
    ctx.store.resized(key, lst.nbytes - before)   # first, so delete() subtracts what was counted
    if not lst.encoded:
        ctx.store.delete(ctx.slot, key)


def _push(ctx: Context, key: bytes, values: list[bytes], left: bool, only_existing: bool) -> int:
    # (`store` and `lst` are typed so that the compiled build calls their methods and reads their
    # fields directly, not through Python attribute lookups: LPUSH/RPUSH are benchmarked)
    store: Store = ctx.store
    found = store.get_for_write(ctx.slot, key, ctx.now_ms)
    if found is None:
        if only_existing:
            return 0
        lst = List()
        _push_into(lst, values, left)
        store.set(ctx.slot, key, lst)
        return len(lst.encoded)
    if type(found) is not List:
        raise CommandError(WRONGTYPE)
    lst = found
    before = lst.nbytes
    _push_into(lst, values, left)
    store.resized(key, lst.nbytes - before)
    return len(lst.encoded)


def _push_into(lst: List, values: list[bytes], left: bool) -> None:
    """Push `values` in order, with heartbeats between pieces of a long push (hypercache/pulse.py)."""
    if len(values) <= EVERY:        # (chunks() would hand back the one piece: skip the call)
        if left:
            lst.push_left(values)
        else:
            lst.push_right(values)
        return
    for piece in chunks(values):
        if left:
            lst.push_left(piece)
        else:
            lst.push_right(piece)


@command("lpush", -3, "write denyoom fast", 1, 1, 1, group="list",
         summary="Prepends one or more elements to a list. Creates the key if it doesn't exist.")
def lpush(ctx, session, args):
    """Format: LPUSH key element [element ...]"""
    return _push(ctx, args[1], args[2:], True, False)


@command("rpush", -3, "write denyoom fast", 1, 1, 1, group="list",
         summary="Appends one or more elements to a list. Creates the key if it doesn't exist.")
def rpush(ctx, session, args):
    """Format: RPUSH key element [element ...]"""
    return _push(ctx, args[1], args[2:], False, False)


@command("lpushx", -3, "write denyoom fast", 1, 1, 1, group="list", since="2.2.0",
         summary="Prepends one or more elements to a list only when the list exists.")
def lpushx(ctx, session, args):
    """Format: LPUSHX key element [element ...]"""
    return _push(ctx, args[1], args[2:], True, True)


@command("rpushx", -3, "write denyoom fast", 1, 1, 1, group="list", since="2.2.0",
         summary="Appends an element to a list only when the list exists.")
def rpushx(ctx, session, args):
    """Format: RPUSHX key element [element ...]"""
    return _push(ctx, args[1], args[2:], False, True)


def _pop(ctx, key: bytes, left: bool, count: int) -> list[bytes]:
    """Pop up to `count` elements (in wire form); none when the key is missing."""
    lst = _read(ctx, key, write=True)
    if lst is None:
        return []
    before = lst.nbytes
    pop = lst.pop_left if left else lst.pop_right
    popped = [pop() for _ in range(min(count, len(lst.encoded)))]
    _shrunk(ctx, key, lst, before)
    return popped


def _array(elements: list[bytes]) -> bytes:
    """The wire form of an array of elements already in wire form."""
    return b"*%d\r\n%s" % (len(elements), b"".join(elements))


def _pop_one(ctx, key: bytes, left: bool) -> Raw | None:
    """LPOP / RPOP without a count (benchmarked: kept to the bare steps, no helpers)."""
    store = ctx.store
    lst = store.get_for_write(ctx.slot, key, ctx.now_ms)
    if lst is None:
        return None
    if type(lst) is not List:
        raise CommandError(WRONGTYPE)
    element = lst.encoded.popleft() if left else lst.encoded.pop()
    size = len(element) + ENTRY_BYTES
    lst.nbytes -= size
    store.resized(key, -size)
    if not lst.encoded:
        store.delete(ctx.slot, key)
    return Raw(element)


def _pop_count(ctx, args, left: bool):
    """LPOP / RPOP with a count: an array of what was popped."""
    if len(args) > 3:
        raise CommandError(f"ERR wrong number of arguments for '{'lpop' if left else 'rpop'}' command")
    count = parse_int(args[2], OUT_OF_RANGE_POSITIVE)
    if count < 0:
        raise CommandError(OUT_OF_RANGE_POSITIVE)
    lst = _read(ctx, args[1], write=True)
    if lst is None:
        return NULL_ARRAY
    if count == 0:
        return []
    return Raw(_array(_pop(ctx, args[1], left, count)))


@command("lpop", -2, "write fast", 1, 1, 1, group="list",
         summary="Returns the first elements in a list after removing it. Deletes the list if the last element was popped.")
def lpop(ctx, session, args):
    """Format: LPOP key [count]"""
    return _pop_one(ctx, args[1], True) if len(args) == 2 else _pop_count(ctx, args, True)


@command("rpop", -2, "write fast", 1, 1, 1, group="list",
         summary="Returns and removes the last elements of a list. Deletes the list if the last element was popped.")
def rpop(ctx, session, args):
    """Format: RPOP key [count]"""
    return _pop_one(ctx, args[1], False) if len(args) == 2 else _pop_count(ctx, args, False)


@command("llen", 2, "readonly fast", 1, 1, 1, group="list", summary="Returns the length of a list.")
def llen(ctx, session, args):
    """Format: LLEN key"""
    lst = _read(ctx, args[1])
    return 0 if lst is None else len(lst.encoded)


@command("lrange", 4, "readonly", 1, 1, 1, group="list", summary="Returns a range of elements from a list.")
def lrange(ctx, session, args):
    """Format: LRANGE key start stop"""
    start, end = parse_int(args[2]), parse_int(args[3])
    lst = _read(ctx, args[1])
    if lst is None:
        return []
    bounds = index_range(start, end, len(lst.encoded))
    if bounds is None:
        return []
    start, end = bounds
    return Raw(b"*%d\r\n%s" % (end - start + 1, lst.encoded_range(start, end)))


@command("lindex", 3, "readonly", 1, 1, 1, group="list", summary="Returns an element from a list by its index.")
def lindex(ctx, session, args):
    """Format: LINDEX key index"""
    index = parse_int(args[2])
    lst = _read(ctx, args[1])
    if lst is None:
        return None
    size = len(lst.encoded)
    if index < 0:
        index += size
    if not 0 <= index < size:
        return None
    return Raw(lst.encoded[index])


@command("lset", 4, "write denyoom", 1, 1, 1, group="list", summary="Sets the value of an element in a list by its index.")
def lset(ctx, session, args):
    """Format: LSET key index element"""
    lst = _read(ctx, args[1], write=True)
    if lst is None:
        raise CommandError("ERR no such key")
    index = parse_int(args[2])      # as Redis 7.0: after the key's checks
    size = len(lst.encoded)
    if index < 0:
        index += size
    if not 0 <= index < size:
        raise CommandError("ERR index out of range")
    ctx.store.resized(args[1], lst.set(index, args[3]))
    return OK


@command("lrem", 4, "write", 1, 1, 1, group="list", summary="Removes elements from a list. Deletes the list if the last element was removed.")
def lrem(ctx, session, args):
    """Format: LREM key count element"""
    count = parse_int(args[2])
    lst = _read(ctx, args[1], write=True)
    if lst is None:
        return 0
    before = lst.nbytes
    removed = lst.remove(args[3], count)
    if removed:
        _shrunk(ctx, args[1], lst, before)
    return removed


@command("ltrim", 4, "write", 1, 1, 1, group="list", summary="Removes elements from both ends a list. Deletes the list if all elements were trimmed.")
def ltrim(ctx, session, args):
    """Format: LTRIM key start stop"""
    start, end = parse_int(args[2]), parse_int(args[3])
    lst = _read(ctx, args[1], write=True)
    if lst is None:
        return OK
    size = len(lst.encoded)
    bounds = index_range(start, end, size)
    before = lst.nbytes
    if bounds is None:
        lst.clear()
    elif bounds != (0, size - 1):
        lst.trim(*bounds)
    else:
        return OK
    _shrunk(ctx, args[1], lst, before)
    return OK


@command("linsert", 5, "write denyoom", 1, 1, 1, group="list", since="2.2.0",
         summary="Inserts an element before or after another element in a list.")
def linsert(ctx, session, args):
    """Format: LINSERT key BEFORE | AFTER pivot element"""
    where = args[2].lower()
    if where not in (b"before", b"after"):
        raise CommandError(SYNTAX)
    lst = _read(ctx, args[1], write=True)
    if lst is None:
        return 0
    before = lst.nbytes
    if not lst.insert(args[3], args[4], where == b"after"):
        return -1
    ctx.store.resized(args[1], lst.nbytes - before)
    return len(lst.encoded)


@command("lpos", -3, "readonly", 1, 1, 1, group="list", since="6.0.6",
         summary="Returns the index of matching elements in a list.")
def lpos(ctx, session, args):
    """Format: LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]"""
    rank, count, maxlen = 1, None, 0
    i = 3
    while i < len(args):
        option = args[i].lower()
        if i + 1 >= len(args):
            raise CommandError(SYNTAX)
        if option == b"rank":
            rank = parse_int(args[i + 1])
            if rank == 0:
                raise CommandError("ERR RANK can't be zero: use 1 to start from the first match, "
                                   "2 from the second ... or use negative to start from the end of the list")
            if rank == -(2**63):
                raise CommandError("ERR value is out of range, value must between "
                                   "-9223372036854775807 and 9223372036854775807")
        elif option == b"count":
            count = parse_int(args[i + 1])
            if count < 0:
                raise CommandError("ERR COUNT can't be negative")
        elif option == b"maxlen":
            maxlen = parse_int(args[i + 1])
            if maxlen < 0:
                raise CommandError("ERR MAXLEN can't be negative")
        else:
            raise CommandError(SYNTAX)
        i += 2
    lst = _read(ctx, args[1])
    if lst is None:
        return None if count is None else []
    found = lst.positions(args[2], rank, 1 if count is None else count, maxlen)
    if count is None:
        return found[0] if found else None
    return found


def _where(raw: bytes) -> bool:
    """LEFT -> True, RIGHT -> False."""
    lowered = raw.lower()
    if lowered == b"left":
        return True
    if lowered == b"right":
        return False
    raise CommandError(SYNTAX)


def _move(ctx, source: bytes, destination: bytes, from_left: bool, to_left: bool,
          retrying: bool = False) -> Raw | None:
    """LMOVE's work: None when the source is empty (or, retrying, not a list)."""
    store = ctx.store
    src = store.get_for_write(ctx.slot, source, ctx.now_ms)
    if src is None:
        return None
    if type(src) is not List:
        if retrying:
            return None
        raise CommandError(WRONGTYPE)
    dst = store.get_for_write(ctx.slot, destination, ctx.now_ms)
    if dst is not None and type(dst) is not List:
        raise CommandError(WRONGTYPE)
    before = src.nbytes
    element = src.pop_left() if from_left else src.pop_right()
    if source == destination:
        # A rotation. Redis pushes before it looks for an emptied source, so
        # the list is never deleted on the way and keeps its TTL.
        src.push_encoded(element, to_left)
        store.resized(source, src.nbytes - before)
        return Raw(element)
    _shrunk(ctx, source, src, before)
    if dst is None:
        dst = List()
        dst.push_encoded(element, to_left)
        store.set(ctx.slot, destination, dst)
    else:
        before = dst.nbytes
        dst.push_encoded(element, to_left)
        store.resized(destination, dst.nbytes - before)
    return Raw(element)


@command("lmove", 5, "write denyoom", 1, 2, 1, group="list", since="6.2.0",
         summary="Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.")
def lmove(ctx, session, args):
    """Format: LMOVE source destination LEFT | RIGHT LEFT | RIGHT"""
    from_left, to_left = _where(args[3]), _where(args[4])
    return _move(ctx, args[1], args[2], from_left, to_left)


@command("rpoplpush", 3, "write denyoom", 1, 2, 1, group="list", since="1.2.0",
         summary="Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.")
def rpoplpush(ctx, session, args):
    """Format: RPOPLPUSH source destination"""
    return _move(ctx, args[1], args[2], False, True)


def _mpop(ctx, keys: list[bytes], left: bool, count: int, retrying: bool = False) -> Raw | None:
    """[key, [element ...]] popped from the first of `keys` holding a list; None if none does."""
    found = first_holding(ctx, keys, List, retrying)
    if found is None:
        return None
    key = found[0]
    return Raw(b"*2\r\n%s%s" % (encode(key), _array(_pop(ctx, key, left, count))))


@command("lmpop", -4, "write movablekeys", 0, 0, 0, group="list", since="7.0.0",
         find_keys=numkeys_keys(1),
         summary="Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.")
def lmpop(ctx, session, args):
    """Format: LMPOP numkeys key [key ...] LEFT | RIGHT [COUNT count]"""
    keys, left, count = parse_mpop(args, 1, ENDS)
    reply = _mpop(ctx, keys, left, count)
    return NULL_ARRAY if reply is None else reply


# -- blocking ------------------------------------------------------------------------


def _blocking_pop(ctx, args, left: bool):
    timeout_s = parse_timeout(args[-1])
    keys = args[1:-1]

    def attempt(candidates: list[bytes], retrying: bool) -> Raw | None:
        """[key, element] from the first of `candidates` holding a list; None if none does."""
        found = first_holding(ctx, candidates, List, retrying)
        if found is None:
            return None
        key = found[0]
        return Raw(b"*2\r\n%s%s" % (encode(key), _pop(ctx, key, left, 1)[0]))

    return serve_or_suspend(ctx, keys, timeout_s, attempt, NULL_ARRAY)


@command("blpop", -3, "write noscript blocking", 1, -2, 1, group="list", since="2.0.0",
         summary="Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.")
def blpop(ctx, session, args):
    """Format: BLPOP key [key ...] timeout"""
    return _blocking_pop(ctx, args, True)


@command("brpop", -3, "write noscript blocking", 1, -2, 1, group="list", since="2.0.0",
         summary="Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.")
def brpop(ctx, session, args):
    """Format: BRPOP key [key ...] timeout"""
    return _blocking_pop(ctx, args, False)


def _blocking_move(ctx, source: bytes, destination: bytes, from_left: bool, to_left: bool, raw_timeout: bytes):
    timeout_s = parse_timeout(raw_timeout)
    return serve_or_suspend(ctx, [source], timeout_s,
                            lambda _, retrying: _move(ctx, source, destination, from_left, to_left, retrying),
                            NULL_ARRAY)


@command("blmove", 6, "write denyoom noscript blocking", 1, 2, 1, group="list", since="6.2.0",
         summary="Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.")
def blmove(ctx, session, args):
    """Format: BLMOVE source destination LEFT | RIGHT LEFT | RIGHT timeout"""
    from_left, to_left = _where(args[3]), _where(args[4])
    return _blocking_move(ctx, args[1], args[2], from_left, to_left, args[5])


@command("brpoplpush", 4, "write denyoom noscript blocking", 1, 2, 1, group="list", since="2.2.0",
         summary="Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.")
def brpoplpush(ctx, session, args):
    """Format: BRPOPLPUSH source destination timeout"""
    return _blocking_move(ctx, args[1], args[2], False, True, args[3])


@command("blmpop", -5, "write blocking movablekeys", 0, 0, 0, group="list", since="7.0.0",
         find_keys=numkeys_keys(2),
         summary="Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.")
def blmpop(ctx, session, args):
    """Format: BLMPOP timeout numkeys key [key ...] LEFT | RIGHT [COUNT count]"""
    timeout_s = parse_timeout(args[1])
    keys, left, count = parse_mpop(args, 2, ENDS)
    return serve_or_suspend(ctx, keys, timeout_s,
                            lambda candidates, retrying: _mpop(ctx, candidates, left, count, retrying), NULL_ARRAY)
