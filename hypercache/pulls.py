"""Whom a primary that lacks a slot's data asks for it, and in what order.

A node that leads a slot without its data (a joiner admitted before its copies
ahead were all in, a replica promoted, a restart) pulls it from another member.
Who may hold it, most likely first:

1. the slot's other live owners, the one that fed it to us ahead of the switch
   first (it confirms rather than copies);
2. its owners under the maps before that left the map (they hand over before
   they exit);
3. its owners under the maps before that are still members: a join's donors,
   which keep what they held for the slot's new primary (`retained`);
4. every other live member.

Before the third group existed, donors were found among "every other member"
in id order: with 60 members joining 10 at a time, a new primary found them
after 10-40 tries of a second each, and every member keeping a fallback copy
of those slots listened to its heartbeats all that while (README, "How the
mesh scales").

Pure: values in, a choice out.
"""
from __future__ import annotations

from typing import AbstractSet, Sequence


def order(owners: Sequence[str], live: Sequence[str], precopied: str | None,
          left: Sequence[str], earlier: Sequence[str]) -> list[str]:
    """The sources to ask for a slot whose owners are `owners` (this node first), best first.

    `live` is every live member but this node, in map order; `precopied` the
    member that fed us the slot ahead of the switch, if any; `left` its owners
    under earlier maps that left the map (asked though not in `live`);
    `earlier` its owners under earlier maps that are still members."""
    alive = set(live)
    sources = [owner for owner in owners[1:] if owner in alive]
    if precopied is not None and precopied in alive:
        sources = [precopied] + [owner for owner in sources if owner != precopied]
    sources += [owner for owner in left if owner not in sources]
    sources += [owner for owner in earlier if owner in alive and owner not in sources]
    named = set(sources) | set(owners)
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
