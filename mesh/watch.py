"""Choose whose heartbeats each member listens to: its neighbours on the ring of node ids, a fixed number.

Every member used to hear every other four times a second, so an idle
member's cost grew with the cluster (0.7% of a core at 3 members, 2.8% at 12).
Now a member of a map with more than 2 * SIDE + 1 members *watches* only the
SIDE members before it and the SIDE after it in node-id order (wrapping
round): it hears their quiet heartbeats, suspects them when they fall
silent, and echoes their heartbeats for their write lease. The relation is
symmetric (A watches B exactly when B watches A), every member computes the
same watchers for every other from the map, and a join or a leave changes
only the watchers of the 2 * SIDE members around it.

What holds it together (mesh/membership.py, mesh/bus.py):

- A member is declared dead when a majority of its live *watchers* report it
  suspect, as before a majority of all live members did. Suspicions are news:
  a heartbeat that carries any (or a member learned, an incarnation changed, a
  new map) goes to every member, not only to the watchers, so every member
  reads the same watchers' reports and reaches the same verdict within a
  heartbeat. Idle, no heartbeat carries news, and a member hears 2 * SIDE.
- The write lease (mesh/lease.py) counts the member and its watchers: while a
  majority of that group both heard it and echoed its heartbeat within
  node_timeout (less the margin), no majority of its watchers can hold it
  suspect, so no honest member holds it dead, none votes a map without it, and
  no such map commits. That is why the lease needs its watchers, not any
  majority of the map: the members it shares slots with need not be among
  them, because nothing but a death verdict moves its slots away.
- Small maps (up to 2 * SIDE + 1 members) watch everyone: the rules above are
  then exactly the old ones (a majority of the map).

What it does not hold (a known safety gap, README "issue 15"): under a partition the
majority side declares dead the cut-off members whose watchers are mostly on its side,
which shrinks the electorate of their neighbours and gives them, in the next maps, new
watchers on the majority side; in a few rounds it declares dead a member whose lease still
holds, because that lease counts echoes of watchers the majority removed but which are alive
where they are. Both sides then serve its slots (loadtest/mesh_sim.py `partition`: 8 of 10
random cuts of 30 members). The argument above holds for one map and a fixed electorate only.
With everyone watching everyone (small maps) a cut-off minority cannot hear a majority of
the map, loses its lease, and the majority side takes its slots over.

What a fix needs (worked through on 5 December, not built): the death quorum and the lease
quorum must intersect in every run, across map changes. Three ways, each with its price:
- A fixed electorate: dead only when 5 of the 8 watchers of the map the member last said it
  holds suspect it (dead watchers do not shrink it; the deciders need that older map's
  members). Safe, but a member with 4 or more of its watchers gone at once (5 neighbours in
  id order crashing together) is never declared dead: its slots wait for the operator.
- The same, plus dead watchers counting as suspects once dead for node_timeout, which is safe
  only if an echo counts for a lease when its sender held a lease itself ("gated" echoes).
  Gating one level deep is not enough (a watcher the majority killed through another dead
  watcher may still be connected on its side); gating all the way has no start (no lease
  without leased echoes: the fixpoint tried on 4 December deadlocked) unless a new map grants
  a first lease, which must then be bounded by when its commit left, not when it arrived.
- A lease that also needs heartbeats from a majority of the whole map, as small maps and Redis
  Cluster do: safe under a clean cut when its window is a quiet interval shorter, but every
  member then hears every member about once a second (100 messages a second in at 100
  members, against 16 now), the cost this module exists to avoid.

Pure: member ids in, neighbour sets out.
"""
from __future__ import annotations

from typing import Iterable

# Members watched on each side: 8 neighbours, a death needs 5 of them (or a majority of
# those still alive). Eight keeps a member's liveness decided by enough independent views
# that one slow link, or a hub stalled on a loaded machine, decides nothing.
SIDE = 4


def neighbours(member_ids: Iterable[str], node_id: str, side: int = SIDE) -> frozenset[str]:
    """The members within `side` places of `node_id` in sorted id order, wrapping; all others in a small map."""
    ids = sorted(set(member_ids) | {node_id})
    count = len(ids)
    if count - 1 <= 2 * side:
        return frozenset(i for i in ids if i != node_id)
    at = ids.index(node_id)
    return frozenset(ids[(at + step) % count] for step in range(-side, side + 1) if step != 0)


def watchers(member_ids: Iterable[str], side: int = SIDE) -> dict[str, frozenset[str]] | None:
    """Each member's watchers, or None when the map is small enough that everyone watches everyone."""
    ids = sorted(set(member_ids))
    count = len(ids)
    if count - 1 <= 2 * side:
        return None
    return {node_id: frozenset(ids[(at + step) % count] for step in range(-side, side + 1) if step != 0)
            for at, node_id in enumerate(ids)}
