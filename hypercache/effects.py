"""What a write did to one key, as a value a replica applies: the key's whole state, or its deletion.

Replicating states rather than commands makes every write deterministic on the
replica by construction: INCRBYFLOAT ships its result, SPOP the set without the
members it removed, a relative TTL its absolute deadline, a blocking pop the
list it left, MULTI/EXEC and expiry and eviction whatever they changed, and a
key written many times in one loop iteration travels once. The price: a write
to a big container ships the whole container (see the README's limits).

A state is `[type, data, deadline_ms, big]` (deadline 0: none; `big`, the
one-way encoding flag, so OBJECT ENCODING agrees on the replica); None means
the key is gone. The data of a big state travels in pieces (`pieces_of`), which
the replica puts back together (`joined`). Pure: no I/O.
"""
from __future__ import annotations

from typing import Any, Final

from .pulse import paced
from .types import Hash, List, Set, ZSet

STRING: Final = 0
HASH: Final = 1
LIST: Final = 2
SET: Final = 3
ZSET: Final = 4


class BadState(ValueError):
    """A state that does not describe a value (a peer's bug, or not a peer at all)."""


def state_of(value: Any, deadline_ms: int | None) -> list:
    deadline = deadline_ms or 0
    if type(value) is bytes:
        return [STRING, value, deadline, False]
    if isinstance(value, Hash):
        return [HASH, [x for pair in value.fields.items() for x in pair], deadline, value.big]
    if isinstance(value, List):
        return [LIST, list(value.values()), deadline, False]
    if isinstance(value, Set):
        return [SET, value.members, deadline, value.big]
    if isinstance(value, ZSet):
        return [ZSET, [x for pair in value.scores.items() for x in pair], deadline, value.big]
    raise TypeError(f"no state for {type(value).__name__}")


def value_of(state: Any) -> tuple[Any, int]:
    """The value and deadline (0: none) a state describes; BadState if it describes none."""
    if type(state) is not list or len(state) != 4:
        raise BadState("a state has four fields")
    kind, data, deadline, big = state
    if type(deadline) is not int or deadline < 0:
        raise BadState("bad deadline")
    if kind == STRING:
        if type(data) is not bytes:
            raise BadState("a string is bytes")
        return data, deadline
    if type(data) is not list:
        raise BadState("a container is a list")
    if kind in (HASH, ZSET) and len(data) % 2:
        raise BadState("a hash or sorted set is a list of pairs")
    if kind == ZSET:
        # (x == x: no NaN, which no sorted set can hold and which breaks the order of one)
        if not (all(type(x) is bytes for x in data[0::2])
                and all(type(x) is float and x == x for x in data[1::2])):
            raise BadState("a sorted set is member, score, ...")
    elif not all(type(x) is bytes for x in data):
        raise BadState("a container holds bytes")
    value: Any
    # (a replica rebuilds a big container in one hub turn, as its primary built it: the heartbeat
    # goes on from inside, hypercache/pulse.py)
    if kind == HASH:
        value = Hash()
        for i in paced(range(0, len(data), 2)):
            value.set(data[i], data[i + 1])
    elif kind == LIST:
        value = List(paced(data))
    elif kind == SET:
        value = Set(paced(data))
    elif kind == ZSET:
        value = ZSet((data[i + 1], data[i]) for i in paced(range(0, len(data), 2)))
    else:
        raise BadState(f"unknown type {kind!r}")
    if big and hasattr(value, "big"):
        value.big = True
    return value, deadline


def pieces_of(data: Any, limit: int) -> list:
    """A state's data cut into pieces of about `limit` bytes: a string's into byte ranges
    (memoryviews: nothing is copied until each piece is encoded), a container's flat list
    into runs of elements."""
    if type(data) is bytes:
        view = memoryview(data)
        return [view[start:start + limit] for start in range(0, len(data), limit)]
    pieces: list = []
    start = size = 0
    for index, item in enumerate(data):
        size += len(item) if type(item) is bytes else 8
        if size >= limit:
            pieces.append(data[start:index + 1])
            start, size = index + 1, 0
    if start < len(data):
        pieces.append(data[start:])
    return pieces


def joined(kind: Any, pieces: list) -> Any:
    """The data the pieces of a `kind` state make (BadState if they cannot make one)."""
    if kind == STRING:
        if not all(type(piece) is bytes for piece in pieces):
            raise BadState("a string's pieces are bytes")
        return b"".join(pieces)
    if not all(type(piece) is list for piece in pieces):
        raise BadState("a container's pieces are lists")
    data: list = []
    for piece in pieces:
        data += piece
    return data
