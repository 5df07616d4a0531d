"""Keep CPython's full garbage collections short as the keyspace grows.

CPython frees most objects by reference counting; its cycle collector exists for
reference cycles, and a *full* collection (generation 2) walks every container
the interpreter tracks. A hash, list, set or sorted set value is such a container
(its object is; a string value, bytes, is not), and so is every slot dict holding
one. CPython runs a full collection whenever the containers that survived since
the last one reach a quarter of those it kept then, and the hub does nothing else
meanwhile: with 2.2 million one-field hashes, redis-benchmark saw a 237-388 ms
reply (`HSET h:__rand_int__` at -P 1), and `MEMORY PURGE` (a full collection)
took 0.17-0.20 s at 0.78 million. At 10 million keys that is seconds, longer than
a 1 s node timeout: the others would declare the node dead.

Stored values never form cycles (they hold bytes), so walking them finds nothing.
After a full collection, once the containers that survived it reach FREEZE_AT,
the next housekeeping tick moves them to CPython's permanent generation
(`gc.freeze()`), which collections skip; reference counting still frees them
when they are deleted or overwritten. A full collection then walks only what
arrived since the last freeze: at most about FREEZE_AT containers, ~10-20 ms on
this machine. The start-up objects (modules, the command table) are frozen once
the node has started, after a full collection.

The price: an object that was alive at a freeze and later dies *in a cycle* is
never collected. Measured with `gc.DEBUG_SAVEALL`: 20,000 client connections
opened and closed left no cyclic garbage, nor did pub/sub, WATCH/MULTI, tracking,
scripts or errors across a freeze (review); a blocked client's wait did (its
retry and its Suspend refer to each other: 12 objects a client a freeze, 48,000
for 1,000 BLPOP clients over 4 freezes), so an ended wait is unlinked now
(hypercache/blocking.py `_retire`), and the young generations are collected
just before a freeze, so garbage already dead is not frozen with the rest.
Another cycle that outlives a freeze would leak until `MEMORY PURGE`, which
unfreezes, runs a full collection (the long pause, on the operator's word),
freezes again and says in INFO what it found (hypercache_gc_last_purge_found).
`INFO memory` reports CPython's own full collections (not start-up's or a
purge's) and what is frozen (hypercache_gc_* fields).

HYPERCACHE_GC_FREEZE_AT=0 keeps CPython's own policy (loadtest/gc_pause.py
compares the two).
"""
from __future__ import annotations

import gc
import logging
import os
import time

log = logging.getLogger(__name__)

# Containers that survived a full collection before they are frozen: a full collection walks
# about this many at most (~0.1-0.2 us each here).
FREEZE_AT = 100_000


class Collector:
    """The process's garbage-collection policy (gc is per process: one instance, COLLECTOR)."""

    def __init__(self, freeze_at: int) -> None:
        self.freeze_at = freeze_at
        self.installed = False
        self.full_collections = 0
        self.last_full_ms = 0.0
        self.max_full_ms = 0.0
        self.freezes = 0
        self.purge_found = 0            # what the last MEMORY PURGE collected
        self._full_began = 0.0
        self._full_done = False         # an automatic full collection ran since the last tick
        self._deliberate = False        # a collection this module runs: not CPython's own

    def install(self) -> None:
        """Watch full collections, and freeze what start-up left (once per process)."""
        if self.installed:
            return
        self.installed = True
        gc.callbacks.append(self._observe)
        if self.freeze_at:
            self._collect(2)
            gc.freeze()

    def _collect(self, generation: int) -> int:
        self._deliberate = True
        try:
            return gc.collect(generation)
        finally:
            self._deliberate = False

    def _observe(self, phase: str, info: dict) -> None:
        if info["generation"] != 2 or self._deliberate:
            return      # (the counts and timings are of CPython's own full collections)
        if phase == "start":
            self._full_began = time.perf_counter()
            return
        took_ms = (time.perf_counter() - self._full_began) * 1000
        self.full_collections += 1
        self.last_full_ms = took_ms
        self.max_full_ms = max(self.max_full_ms, took_ms)
        self._full_done = True

    def tick(self) -> None:
        """After a full collection, freeze its survivors once they are FREEZE_AT or more.

        (From the housekeeping tick, not from the collection's callback: that runs inside
        whatever allocated, and would freeze its transient objects too.)"""
        if not self._full_done:
            return
        self._full_done = False
        if self.freeze_at and len(gc.get_objects(generation=2)) >= self.freeze_at:
            self._collect(1)        # (young garbage, dead already, is not frozen with the rest)
            gc.freeze()
            self.freezes += 1
            log.info("gc: froze long-lived objects frozen=%d last_full_ms=%.1f",
                     gc.get_freeze_count(), self.last_full_ms)

    def purge(self) -> int:
        """MEMORY PURGE: collect everything, the frozen objects included; returns what it found."""
        gc.unfreeze()
        self.purge_found = self._collect(2)
        if self.freeze_at and self.installed:
            gc.freeze()
        return self.purge_found

    def fields(self) -> list[tuple[str, object]]:
        return [("hypercache_gc_full_collections", self.full_collections),
                ("hypercache_gc_last_full_ms", f"{self.last_full_ms:.2f}"),
                ("hypercache_gc_max_full_ms", f"{self.max_full_ms:.2f}"),
                ("hypercache_gc_frozen_objects", gc.get_freeze_count()),
                ("hypercache_gc_freezes", self.freezes),
                ("hypercache_gc_last_purge_found", self.purge_found)]


def _freeze_at_from_environment() -> int:
    raw = os.environ.get("HYPERCACHE_GC_FREEZE_AT", "")
    try:
        return max(0, int(raw)) if raw else FREEZE_AT
    except ValueError:
        log.warning("HYPERCACHE_GC_FREEZE_AT=%r is not a number: using %d", raw, FREEZE_AT)
        return FREEZE_AT


COLLECTOR = Collector(_freeze_at_from_environment())
