"""Cursors for HSCAN, SSCAN and ZSCAN, and random picks with Redis's count rules.

A small container (listpack/intset in Redis) is returned whole with cursor 0,
as Redis does. A big one is walked in the order of a fixed 32-bit hash of its
members: the cursor is the next hash value to visit, so a member present for
the whole iteration is returned at least once whatever is added or removed
meanwhile (Redis's SCAN guarantee), and no state is kept between calls.
"""
from __future__ import annotations

import heapq
import random
from typing import Sequence
from zlib import crc32

from ..arguments import SYNTAX, parse_int
from ..glob import glob_match
from ..reply import CommandError

MAX_CURSOR = 2**64 - 1
# a walk takes at most about this many calls, whatever COUNT says (COUNT is a hint)
MAX_CALLS = 32
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


def scan_members(members: Sequence[bytes], whole: bool, cursor: int, count: int,
                 pattern: bytes | None) -> tuple[int, list[bytes]]:
    """(next cursor, members visited in this call that match `pattern`)."""
    if whole:
        chosen, next_cursor = list(members), 0
    else:
        pending = [(h, m) for h, m in zip(map(crc32, members), members) if h >= cursor]
        batch = max(count, len(members) // MAX_CALLS)
        if len(pending) <= batch:
            chosen, next_cursor = [m for _, m in pending], 0
        else:
            limit = heapq.nsmallest(batch, pending)[-1][0]
            chosen = [m for h, m in pending if h <= limit]   # all members sharing the last hash
            next_cursor = limit + 1
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
        return [members[random.randrange(size)] for _ in range(-count)]
    if count >= size:
        picked = list(members)
        random.shuffle(picked)
        return picked
    return random.sample(members, count)
