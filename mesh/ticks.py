"""Timers on the wall clock's multiples of their period, so that an idle node's timers, and its
peers' heartbeats, come together.

An idle node's CPU follows its wake-ups more than its work: each one (a heartbeat heard, a
tick of the mesh's timer, of the replication upkeep, of housekeeping) is paid in full on a
machine whose caches other processes keep cold, and ~23 a second of them cost a node of 12
members about 1% of a core (docs/performance.md, "An idle node wakes less"). Timers that
fire on the wall clock's multiples of their period fire together within a node, and quiet
heartbeats sent on them arrive together at every watcher (mesh/bus.py `_quiet_phase`).
Nodes on one host share its clock; across hosts NTP keeps them within milliseconds, and a
clock that is off only takes that coalescing away, never a tick: each wait is at most one
period, whatever the clock does.

Pure: the wall clock's reading in, a tick number and a wait out.
"""
from __future__ import annotations

import math


def next_tick(period_s: float, wall_s: float) -> tuple[int, float]:
    """The number of the next multiple of `period_s` after `wall_s` (the wall clock, in seconds),
    and the wait until it: more than 0, at most `period_s`."""
    number = math.floor(wall_s / period_s) + 1
    wait = number * period_s - wall_s
    # (rounding, on a multiple or next to one: the wait and its number move together)
    if wait <= 0.0:
        number, wait = number + 1, wait + period_s
    elif wait > period_s:
        number, wait = number - 1, wait - period_s
    return number, min(max(wait, 1e-9), period_s)
