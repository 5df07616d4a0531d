"""Whom a primary that lacks a slot's data asks for it, and in what order.

A node that leads a slot without its data (a joiner admitted before its copies
ahead were all in, a replica promoted, a restart) pulls it from another member.
Who may hold it, most likely first:

1. the slot's other live owners, the one that fed it to us ahead of the switch
   first (it confirms rather than copies);
2. its owners under the map before that left the map (they hand over before
   they exit);
3. its owners under the map before (and the maps before it, while we still lead
   the slot without its data) that are still members: a join's donors, which
   keep what they held for the slot's new primary (`retained`);
4. every other live member.

Before the third group existed, donors were found among "every other member"
in id order: with 60 members joining 10 at a time, a new primary found them
after 10-40 tries of a second each, and every member keeping a fallback copy
of those slots listened to its heartbeats all that while (README, "How the
mesh scales").

Pure: values in, a choice out.
"""
from __future__ import annotations

from typing import AbstractSet, Iterable, Mapping, Sequence

Owners = tuple[str, ...]


def earlier_owners(led_unheld: Iterable[int], previous: Sequence[Owners], current: Sequence[Owners],
                   members: AbstractSet[str], carried: Mapping[int, Owners]) -> dict[int, Owners]:
    """slot -> its owners under the map before that are still members and no longer own it, for
    the slots we lead without their data under the new map (`led_unheld`); followed by those
    `carried` from the maps before for a slot still led unheld, the newest first."""
    found: dict[int, Owners] = {}
    for slot in led_unheld:
        now_owners = current[slot]
        kept = tuple(owner for owner in previous[slot] if owner not in now_owners and owner in members)
        kept += tuple(owner for owner in carried.get(slot, ())
                      if owner not in now_owners and owner in members and owner not in kept)
        if kept:
            found[slot] = kept
    return found


def order(owners: Sequence[str], live: Sequence[str], alive: AbstractSet[str], precopied: str | None,
          left: Sequence[str], earlier: Sequence[str]) -> list[str]:
    """The sources to ask for a slot whose owners are `owners` (this node first), best first.

    `live` is every live member but this node, in map order, and `alive` the same as a set;
    `precopied` the member that fed us the slot ahead of the switch, if any; `left` its
    owners under earlier maps that left the map (asked though not live); `earlier` its
    owners under earlier maps that are still members (`earlier_owners`)."""
    sources = [owner for owner in owners[1:] if owner in alive]
    if precopied is not None and precopied in alive:
        sources = [precopied] + [owner for owner in sources if owner != precopied]
    sources += [owner for owner in left if owner not in sources]
    sources += [owner for owner in earlier if owner in alive and owner not in sources]
    named = set(sources)
    named.update(owners)
    sources += [member for member in live if member not in named]
    return sources


def next_source(sources: Sequence[str], lacking: AbstractSet[str],
                asked: AbstractSet[str]) -> tuple[str, frozenset[str]]:
    """The source to ask now and the round's asked set after it: the first of `sources` that
    neither said it lacks the slot nor was asked this round; once all were, a new round
    starts with the first (an answer may have been lost). `sources` must hold one not lacking."""
    untried = [source for source in sources if source not in lacking]
    if not untried:
        raise ValueError("every source lacks the slot")
    fresh = next((source for source in untried if source not in asked), None)
    if fresh is None:
        return untried[0], frozenset((untried[0],))
    return fresh, frozenset(asked) | {fresh}
