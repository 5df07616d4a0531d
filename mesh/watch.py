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

- A member is declared dead when a majority of *all* its watchers (5 of 8)
  report it suspect: watchers held dead do not shrink that electorate, and the
  watchers are those of the map the member was last heard holding, and of each
  map since, which it may hold unheard: a majority of each (`Membership.pinned`), also when the deciders' own map has shrunk to
  a small one; a member heard holding a map not known here (never heard, older
  than the 16 maps kept, newer than ours) gets no verdict here until it is (its
  watchers in our map still listen to it and report its silence, for those that
  can judge it: newcomers never heard it, a review found one stuck otherwise),
  except one never heard that our map admitted right after a map we held
  without it (a founder that died before its first heartbeat). A new process
  hears every member for two quiet intervals after its first map, so that it
  knows which map each holds. A watcher's suspicion is news: its heartbeats
  go to every member while it is new (and when it takes one back), not only to
  the watchers, so every member reads the same watchers' reports and reaches
  the same verdict within a heartbeat. What a member only read (a death
  counted from those reports, a member learned from another's list) it does not
  tell again (Membership.has_news): each member read it where it did. Idle, no
  heartbeat carries news, and a member hears 2 * SIDE.
- A member outside the map (a newcomer asking to join, one the map removed) is
  watched by the members it would have as watchers if it were one, the SIDE
  map members on each side of its id (`watchers_outside`), and dies by a
  majority of them. It holds no slots and no lease, so nothing else rests on
  that verdict: it only waits to be admitted, and refutes to ask again. So it
  is suspected after twice a member's silence (a newcomer runs late while it
  starts: `membership.OUTSIDE_SILENCE_FACTOR`), and not admitted while silent
  for more than a node timeout (`Mesh._changes`).
- The write lease (mesh/lease.py) counts the member and its watchers in its
  own map: while a majority of that group (itself and 4 watchers) both heard
  it and echoed its heartbeat within node_timeout (less the margin), at most 4
  of those 8 watchers can hold it suspect, short of the 5 a death needs, so no
  honest member holds it dead, none votes a map without it, and no such map
  commits. That is why the lease needs its watchers, not any majority of the
  map: nothing but a death verdict moves its slots away. Both quorums are
  taken from the same eight members, and that is all the argument needs.
- Small maps (up to 2 * SIDE + 1 members) watch everyone: the lease counts a
  majority of the whole map, and a death a majority of the live members.

The price: a member is declared dead only while 5 of its 8 watchers are there
to say so. Until 5 December the electorate was the watchers *not held dead*, and
maps without the dead gave the survivors new watchers; under a partition the
majority side then declared dead, in a few rounds, members whose lease still
held on the minority side through echoes of watchers the majority had removed,
and both sides served their slots (`loadtest/mesh_sim.py partition`: 8 of 10
random cuts of 30 members, 29 members in all). Now the watchers declare dead
exactly the cut-off members with 5 or more watchers on the majority's side,
whose leases ended first (0 of 10 cuts split). A member that crashed together
with 4 or more of its watchers (5 neighbours in id order at once, or 8 of 30
members at random: 2 were left) is never declared dead by its watchers either,
since from outside that is what a cut looks like. mesh/strand.py tells the two
apart with the rest of the map: a member one of whose watchers is silent for
long needs the whole map's answers for its lease, and every member holds dead
one its watchers report for long and that it does not hear either (so the
majority removes every cut-off member with a watcher on its side). Only a
member all 8 of whose watchers died with it stays suspect: a warning names it
after 10 node timeouts, and its slots wait for it to come back or for the
operator's CLUSTER FORGET on every member (mesh/membership.py `declare_dead`).

A member may adopt a map that changes its watchers and count the new ones for its
lease at once, while the others have not heard it hold that map yet. A cut in that
moment split it in 4 of 4 seeds (review), when it was judged by its old watchers
alone. So a member heard holding an older map is dead only once a majority of its
watchers in each map from that one to ours (which it may hold unheard) suspect
it (`Mesh._pin`, `Membership.pinned_groups`): its lease fails in whichever it
holds. Those maps must be a chain this process held one after the other; a gap,
like an unknown map, means no verdict here. (Counting only the members watching
it in all of them, 5 needed, was safe too, but one that crashed right after a
map that reshaped its watchers, a scale-up of 50, had too few such: stuck in 4
of 5 seeds, a review found.)

The reverse (a review, reproduced in the simulation; closed on 5 December):
members *behind* a member that adopted a new map judge it by its old watchers,
reach a verdict, and kept it when they adopted the new map, where its lease
counts other watchers. With links from the cut side slowed for 20 ms before the
cut, both sides served it and the joiner's other new neighbours in 4 of 4
seeds. Now every map a member adopts counts its voted deaths again under that
map's groups (`Membership.revisit`): one whose new watchers have not mostly said
so is suspect again, and dead only when they do (0 of 12 runs, two slowdowns).

Other ways, worked through on 5 December and not built (mesh/strand.py, built on
7 December, asks the whole map only of a member whose watcher is silent for long): dead watchers counting
as suspects once dead for node_timeout is safe only if an echo counts for a
lease when its sender held a lease itself ("gated" echoes); one level of gating
is not enough, and gating all the way has no start (no lease without leased
echoes: the fixpoint tried on 4 December deadlocked). A lease that also needs
heartbeats from a majority of the whole map, as small maps and Redis Cluster
have, means every member hears every member about once a second (100 messages a
second in at 100 members, against 16): the cost this module exists to avoid.

Pure: member ids in, neighbour sets out.
"""
from __future__ import annotations

import bisect
from typing import Final, Iterable, Sequence

# Members watched on each side: 8 neighbours, a death needs 5 of them. Eight keeps a member's liveness decided by enough independent views
# that one slow link, or a hub stalled on a loaded machine, decides nothing.
SIDE: Final = 4


def neighbours(member_ids: Iterable[str], node_id: str, side: int = SIDE) -> frozenset[str]:
    """The members within `side` places of `node_id` in sorted id order, wrapping; all others in a small map."""
    ids = sorted(set(member_ids) | {node_id})
    count = len(ids)
    if count - 1 <= 2 * side:
        return frozenset(i for i in ids if i != node_id)
    at = ids.index(node_id)
    return frozenset(ids[(at + step) % count] for step in range(-side, side + 1) if step != 0)


def watchers_in(sorted_ids: Sequence[str], node_id: str, side: int = SIDE) -> frozenset[str] | None:
    """`node_id`'s watchers in a map of these (sorted) member ids; None if it is not one of them.

    (A bisection: a member heard holding an older map is looked up in that map's ids.)"""
    at = bisect.bisect_left(sorted_ids, node_id)
    count = len(sorted_ids)
    if at == count or sorted_ids[at] != node_id:
        return None
    if count - 1 <= 2 * side:
        return frozenset(i for i in sorted_ids if i != node_id)
    return frozenset(sorted_ids[(at + step) % count] for step in range(-side, side + 1) if step != 0)


def watchers_outside(sorted_ids: Sequence[str], node_id: str, side: int = SIDE) -> frozenset[str]:
    """The watchers of `node_id`, a member *not* among these (sorted) map ids: the `side` members
    before the place it would take in id order and the `side` after, wrapping, the watchers it
    would have as a member; all of them when the map with it would be small (2 * side + 1
    members or fewer)

    (A newcomer asking to join was watched by every member, and a newcomer stalled in its
    start-up on a loaded machine was suspected by each of them, each suspicion news to all:
    N x N heartbeats for each newcomer, the storms that kept 100 members from forming.)"""
    count = len(sorted_ids)
    if count <= 2 * side:
        return frozenset(sorted_ids)
    at = bisect.bisect_left(sorted_ids, node_id)
    return frozenset(sorted_ids[(at + step) % count] for step in range(-side, side))


def watchers(member_ids: Iterable[str], side: int = SIDE) -> dict[str, frozenset[str]] | None:
    """Each member's watchers, or None when the map is small enough that everyone watches everyone."""
    ids = sorted(set(member_ids))
    count = len(ids)
    if count - 1 <= 2 * side:
        return None
    return {node_id: frozenset(ids[(at + step) % count] for step in range(-side, side + 1) if step != 0)
            for at, node_id in enumerate(ids)}
