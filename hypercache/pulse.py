"""Keep the heartbeat going through a long command, without yielding: `paced`, `chunks`, `starts`, `ticking`, `ordered`.

A command runs to its end in one hub turn (that is what makes it atomic), so
a legal command of a million elements (SADD, RPUSH, HSET, ZADD, MSET, DEL...)
held the hub for 0.5-3.3 s on this machine, and no heartbeat left the node
meanwhile: past node_timeout (3 s by default) its peers suspected a healthy
node. The loops over such a command's elements go through `paced` (or
`chunks`, `starts`, `ticking`, `ordered`), which every EVERY elements call the installed beat: the node's
mesh sends a heartbeat there if one is due (mesh/bus.py `beat_if_due`), from
inside the command, with no greenlet switch, so nothing else runs and the
command stays atomic as clients see it. Below EVERY elements the sequence is
returned as it is: small commands pay nothing.

Without a node (unit tests, tools) the beat does nothing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Final, Iterable, Iterator, Sequence, TypeVar

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

T = TypeVar("T")
Sortable = TypeVar("Sortable", bound="SupportsRichComparison")

# Elements between two looks at the clock: 1-4 ms of a command's work on this machine, so a beat
# is late by no more than that; the look itself is one monotonic() call.
EVERY: Final = 4096


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


def starts(count: int) -> Iterable[int]:
    """The starts of the pieces of EVERY that cover `count` elements, with a beat before each if more than one."""
    if count <= EVERY:
        return range(0, count, EVERY)
    return _starts(count)


def _starts(count: int) -> Iterator[int]:
    for start in range(0, count, EVERY):
        _beat()
        yield start


def ticking(items: Iterable[T]) -> Iterator[T]:
    """Any iterable's elements (a generator's, a dict's), with a beat every EVERY of them."""
    countdown = EVERY
    for item in items:
        countdown -= 1
        if not countdown:
            countdown = EVERY
            _beat()
        yield item


# Elements sorted by one C call between two beats: ~20-40 ms of work on this machine.
RUN = 4 * EVERY


def ordered(items: list[Sortable], reverse: bool = False) -> list[Sortable]:
    """`items` sorted (a new list), by C sorts of at most RUN elements or of two sorted halves, a beat between.

    list.sort of a million pairs held the hub ~2 s here in one call. Sorted runs of
    RUN elements are merged two by two; a merge is one sort of two sorted runs laid
    end to end, which Timsort finds and merges in linear time, so the longest call
    left is the last merge (~a million comparisons). For elements whose equal ones
    are indistinguishable (bytes, (score, bytes) pairs) `reverse` is the same as
    list.sort's.
    """
    if len(items) <= RUN:
        return sorted(items, reverse=reverse)
    runs = []
    for start in range(0, len(items), RUN):
        _beat()
        runs.append(sorted(items[start:start + RUN]))
    while len(runs) > 1:
        merged = []
        for i in range(0, len(runs), 2):
            _beat()
            merged.append(sorted(runs[i] + runs[i + 1]) if i + 1 < len(runs) else runs[i])
        runs = merged
    if reverse:
        runs[0].reverse()
    return runs[0]
