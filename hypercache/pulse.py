"""Keep the heartbeat going through a long command, without yielding: `paced` and `chunks`.

A command runs to its end in one hub turn (that is what makes it atomic), so
a legal command of a million elements (SADD, RPUSH, HSET, ZADD, MSET, DEL...)
held the hub for 0.5-3.3 s on this machine, and no heartbeat left the node
meanwhile: past node_timeout (3 s by default) its peers suspected a healthy
node. The loops over such a command's elements go through `paced` (or
`chunks`), which every EVERY elements calls the installed beat: the node's
mesh sends a heartbeat there if one is due (mesh/bus.py `beat_if_due`), from
inside the command, with no greenlet switch, so nothing else runs and the
command stays atomic as clients see it. Below EVERY elements the sequence is
returned as it is: small commands pay nothing.

Without a node (unit tests, tools) the beat does nothing.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, Sequence, TypeVar

T = TypeVar("T")

# Elements between two looks at the clock: 1-4 ms of a command's work on this machine, so a beat
# is late by no more than that; the look itself is one monotonic() call.
EVERY = 4096


def _nothing() -> None:
    return None


_beat: Callable[[], None] = _nothing


def install(beat: Callable[[], None] | None) -> None:
    """The node's heartbeat check (None: back to nothing)."""
    global _beat
    _beat = beat if beat is not None else _nothing


def beat() -> None:
    _beat()


def paced(items: Sequence[T]) -> Iterable[T]:
    """`items` itself if short; else its elements, with a beat every EVERY of them."""
    if len(items) <= EVERY:
        return items
    return _paced(items)


def _paced(items: Sequence[T]) -> Iterator[T]:
    for start in range(0, len(items), EVERY):
        _beat()
        yield from items[start:start + EVERY]


def chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    """`items` as one piece if short; else slices of EVERY, with a beat before each."""
    if len(items) <= EVERY:
        return (items,)
    return _chunks(items)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), EVERY):
        _beat()
        yield items[start:start + EVERY]
