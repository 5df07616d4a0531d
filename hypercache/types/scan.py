"""Cursors for HSCAN, SSCAN and ZSCAN, and random picks with Redis's count rules.

A small container (listpack/intset in Redis) is returned whole with cursor 0,
as Redis does. A big one is walked in the order of its dict, which removals
do not change and insertions only extend at the end. The cursor holds the
position reached and the container's count of removals at that time: the
removals since can only have moved a member not yet visited back by as many
places, so the walk resumes that much earlier, and takes that many more so
that it still moves on. A member present for the whole walk is thus returned
at least once, perhaps twice (Redis's SCAN guarantee), and no state is kept
between calls. A call skips to its position in C (about 3 ns a member) and
takes at least 1/MAX_CALLS of the container: each call stays short (4 ms into
a million members) and, while the container is not changed, a walk takes at
most about MAX_CALLS calls.
"""
from __future__ import annotations

import random
from itertools import islice
from typing import Iterable, Sequence

from ..pulse import EVERY, starts

from ..arguments import SYNTAX, parse_int
from ..glob import glob_match
from ..reply import CommandError

MAX_CURSOR = 2**64 - 1
# a walk takes at most about this many calls, whatever COUNT says (COUNT is a hint)
MAX_CALLS = 1024
# a cursor: the removal count (mod 2**31) above the position reached
POSITION_BITS = 32
POSITION_MASK = (1 << POSITION_BITS) - 1
REMOVALS_MOD = 1 << 31
# refuse a reply that would hold more elements than this (a negative count repeats members)
MAX_REPLY_ELEMENTS = 1 << 24


def parse_scan(args: list[bytes], start: int) -> tuple[int, bytes | None, int]:
    """(cursor, MATCH pattern or None, COUNT) from `cursor [MATCH p] [COUNT n]` at args[start]."""
    raw = args[start]
    if not raw.isdigit() or len(raw) > 20 or int(raw) > MAX_CURSOR:
        raise CommandError("ERR invalid cursor")
    cursor = int(raw)
    pattern = None
    count = 10
    i = start + 1
    while i < len(args):
        option = args[i].lower()
        if option == b"match" and i + 1 < len(args):
            pattern = args[i + 1]
        elif option == b"count" and i + 1 < len(args):
            count = parse_int(args[i + 1])
            if count < 1:
                raise CommandError(SYNTAX)
        else:
            raise CommandError(SYNTAX)
        i += 2
    return cursor, pattern, count


def scan_members(members: Iterable[bytes], removed: int, whole: bool, cursor: int, count: int,
                 pattern: bytes | None) -> tuple[int, list[bytes]]:
    """(next cursor, members visited in this call that match `pattern`).

    `members` is the container's dict (or, whole, any iterable) and `removed`
    its count of members ever removed.
    """
    if whole:
        chosen, next_cursor = list(members), 0
    else:
        size = len(members)
        position, removed_then = cursor & POSITION_MASK, cursor >> POSITION_BITS
        start = max(0, position - (removed - removed_then) % REMOVALS_MOD)
        # (position - start) more: each call ends past the previous one's end
        stop = min(size, position + max(count, -(-size // MAX_CALLS)))    # (COUNT may be 2**63-1)
        chosen = list(islice(members, start, max(start, stop)))
        end = start + len(chosen)
        next_cursor = 0 if end >= size else (removed % REMOVALS_MOD) << POSITION_BITS | end
    if pattern is not None and pattern != b"*":
        chosen = [m for m in chosen if glob_match(pattern, m)]
    return next_cursor, chosen


def parse_random_count(raw: bytes, with_values: bool) -> int:
    """The count of HRANDFIELD/SRANDMEMBER/ZRANDMEMBER, checked as Redis 7.0 does."""
    count = parse_int(raw)
    if count < 0 and (-count > MAX_REPLY_ELEMENTS or (with_values and -count > (2**63 - 1) // 2)):
        raise CommandError("ERR value is out of range")
    return count


def random_picks(members: Sequence[bytes], count: int) -> list[bytes]:
    """count >= 0: that many distinct members (all when fewer); count < 0: -count, repeats allowed."""
    size = len(members)
    if count < 0:
        # (-count has no bound but the reply's: a million picks beat as they go, hypercache/pulse.py)
        picks: list[bytes] = []
        for start in starts(-count):
            picks.extend([members[random.randrange(size)] for _ in range(min(EVERY, -count - start))])
        return picks
    if count >= size:
        picked = list(members)
        random.shuffle(picked)
        return picked
    return random.sample(members, count)
