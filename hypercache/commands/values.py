"""Read the value under a key as the type a command works on: the lookup every type module shares."""
from __future__ import annotations

from typing import Any

from ..arguments import WRONGTYPE
from ..reply import CommandError


def typed_value(ctx, key: bytes, kind: type, write: bool = False) -> Any:
    """The `kind` value at `key`, None if missing; WRONGTYPE for a value of another type.

    write=True is the lookup of a command that then writes the key (APPEND,
    HSET, LPOP...): Redis does not count it as a keyspace hit or miss.
    """
    store = ctx.store
    value = (store.get_for_write if write else store.get)(ctx.slot, key, ctx.now_ms)
    if value is None or type(value) is kind:
        return value
    raise CommandError(WRONGTYPE)
