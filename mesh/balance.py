"""Bring a ring back towards even loads by moving slots only to members that hold them already.

A member's departure hands each of its arcs to the next member on the ring,
its replica, so no slot arrives empty (mesh/ring.py `leave`). That leaves the
survivors uneven: up to ~1.26x the ideal primary load and ~1.36x the ideal
replica load at replication factor 2 on 4-12 members (and joins leave
replicas at up to ~1.18x at some sizes). `rebalance` undoes that
in the same spirit: it moves token boundaries *backwards* only, so the slots
at the top of an arc pass to the owner of the next token, which is the arc's
first replica and holds every acknowledged write of them (sync mode). A new
primary never starts empty and there is nothing to copy before the switch;
what the move changes besides is which members replicate those slots, and the
new replicas receive them as after any map change (re-replication).

At replication factor 1 nobody holds a copy to move to, so nothing moves.

Greedy and exact: each move is the boundary shift that most reduces the
squared distance of every member's primary and replica loads from their
ideal, sized at the optimum of that quadratic; moves repeat until the ring is
within tolerance or the step's budget of slots is spent (a map change moves at
most `budget` slots, so the copies it causes stay bounded; the next step
continues once the cluster is settled again). All arithmetic is on integers:
every node computes the same ring from the same map, and a voter rebuilds the
proposer's result to check it (mesh/election.py `follows`).
"""
from __future__ import annotations

import functools

from mesh import ring
from mesh.keyslot import SLOT_COUNT

# Slots one rebalancing map may move (an eighth of the ring): bounds the copies it causes.
DEFAULT_BUDGET = SLOT_COUNT // 8
# Rebalance when some member is this many percent over its ideal load. Joins leave
# primaries within 1% but replicas at up to ~1.18x at some sizes (the ring places a
# joiner's pieces for rf 2 and 3 at once); departures up to ~1.26x / ~1.36x.
PRIMARY_TOLERANCE_PCT = 5
REPLICA_TOLERANCE_PCT = 12


class _Loads:
    """Each member's distance from its ideal primary and replica load, times the member count.

    Scaled by the member count so that the ideal (SLOT_COUNT / members) is an integer.
    """

    def __init__(self, tokens: ring.Tokens, walks: list[tuple[str, ...]], sizes: list[int], owners: int) -> None:
        members = sorted({member for _, member in tokens})
        self.scale = len(members)
        self.owners = owners
        self.primary = {member: -SLOT_COUNT for member in members}
        self.replica = {member: -SLOT_COUNT * (owners - 1) for member in members}
        for walk, size in zip(walks, sizes):
            self.primary[walk[0]] += size * self.scale
            for member in walk[1:]:
                self.replica[member] += size * self.scale

    def uneven(self) -> bool:
        return (max(self.primary.values()) * 100 > PRIMARY_TOLERANCE_PCT * SLOT_COUNT
                or max(self.replica.values()) * 100 > REPLICA_TOLERANCE_PCT * SLOT_COUNT * (self.owners - 1))

    def shift(self, before: tuple[str, ...], after: tuple[str, ...]) -> dict[tuple[bool, str], int]:
        """Per (is_primary, member), how its load changes per slot moved from `before`'s arc to `after`'s."""
        change: dict[tuple[bool, str], int] = {}
        for walk, sign in ((before, -1), (after, 1)):
            change[(True, walk[0])] = change.get((True, walk[0]), 0) + sign
            for member in walk[1:]:
                change[(False, member)] = change.get((False, member), 0) + sign
        return {key: value for key, value in change.items() if value}

    def best_amount(self, change: dict[tuple[bool, str], int], most: int) -> tuple[int, int]:
        """(slots to move, how much the squared distance falls) for one shift of at most `most` slots.

        Moving d slots changes the sum of squares by 2*d*s*L + d*d*s*s*Q (s the scale,
        L the sum of change times distance, Q the sum of squared changes): least at
        d = -L / (s*Q).
        """
        linear = quadratic = 0
        for (is_primary, member), rate in change.items():
            linear += rate * (self.primary[member] if is_primary else self.replica[member])
            quadratic += rate * rate
        if linear >= 0 or not quadratic:
            return 0, 0
        amount = min(-linear // (self.scale * quadratic), most)
        if amount <= 0:
            return 0, 0
        scale = self.scale
        return amount, -(2 * amount * scale * linear + amount * amount * scale * scale * quadratic)

    def apply(self, change: dict[tuple[bool, str], int], amount: int) -> None:
        for (is_primary, member), rate in change.items():
            loads = self.primary if is_primary else self.replica
            loads[member] += rate * amount * self.scale


@functools.lru_cache(maxsize=4)
def busiest(tokens: ring.Tokens, replication_factor: int) -> tuple[float, float, bool]:
    """(the busiest member's primary load over ideal, its replica load over ideal (0 with one
    owner per slot), whether `rebalance` would move slots): what the status page shows."""
    members = {member for _, member in tokens}
    owners = min(replication_factor, len(members))
    sizes = [size for _, size, _ in ring.arcs(tokens)]
    loads = _Loads(tokens, ring.arc_owners(tokens, owners), sizes, owners)
    primary = 1 + max(loads.primary.values()) / SLOT_COUNT
    replica = 1 + max(loads.replica.values()) / (SLOT_COUNT * (owners - 1)) if owners > 1 else 0.0
    return primary, replica, owners > 1 and loads.uneven()


@functools.lru_cache(maxsize=16)
def rebalance(tokens: ring.Tokens, replication_factor: int, budget: int = DEFAULT_BUDGET) -> ring.Tokens:
    """Return the ring with up to `budget` slots moved to their next member for balance (or `tokens`)."""
    members = {member for _, member in tokens}
    owners = min(replication_factor, len(members))
    if owners < 2:
        return tokens
    count = len(tokens)
    walks = ring.arc_owners(tokens, owners)
    sizes = [size for _, size, _ in ring.arcs(tokens)]
    loads = _Loads(tokens, walks, sizes, owners)
    if not loads.uneven():
        return tokens
    positions = [position for position, _ in tokens]
    # (the next token's owner never equals this one's: rings are normalized)
    changes = [loads.shift(walks[index], walks[(index + 1) % count]) for index in range(count)]
    # What each arc may still give: only its own slots of the step's start, so that slots
    # it received from the arc before in this step never travel on to a member that did
    # not hold them; and at least one slot stays, so the token, and every walk, stays.
    room = [size - 1 for size in sizes]
    # Each token's best shift, capped by its room only, kept between moves: a move changes
    # the loads of a few members, so only the shifts involving them are weighed again.
    best = [loads.best_amount(change, most) for change, most in zip(changes, room)]
    falls = [fall for _, fall in best]
    involving: dict[str, list[int]] = {}
    for index, change in enumerate(changes):
        for member in {member for _, member in change}:
            involving.setdefault(member, []).append(index)
    moved = 0
    while moved < budget and loads.uneven():
        # (the first of the largest falls: every node picks the same)
        index = falls.index(max(falls))
        amount, fall = best[index]
        left = budget - moved
        if amount > left:
            # the budget's end caps every shift: weigh them all again under it
            capped = [loads.best_amount(change, min(most, left)) for change, most in zip(changes, room)]
            capped_falls = [fall for _, fall in capped]
            index = capped_falls.index(max(capped_falls))
            amount, fall = capped[index]
        if not fall:
            break
        room[index] -= amount
        positions[index] = (positions[index] - amount) % SLOT_COUNT
        loads.apply(changes[index], amount)
        moved += amount
        for other in {other for _, member in changes[index] for other in involving[member]}:
            best[other] = loads.best_amount(changes[other], room[other])
            falls[other] = best[other][1]
    if not moved:
        return tokens
    return ring.normalize({position: tokens[index][1] for index, position in enumerate(positions)})
