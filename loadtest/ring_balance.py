"""Report how evenly the ring spreads primary slots and how many slots move on a join or leave.

Run: python -m loadtest.ring_balance
For each N the ring is grown one join at a time from a single member (the way a
cluster forms), then one more member joins, or an existing one leaves.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mesh import ring
from mesh.keyslot import SLOT_COUNT

SIZES = (3, 5, 10, 20, 32, 64)


@dataclass(frozen=True, slots=True)
class Balance:
    members: int
    max_over_ideal: float      # busiest member's primary slots / (16384 / N)
    join_moved_over_ideal: float   # slots whose primary changed when member N+1 joins / (16384 / (N+1))
    leave_moved_over_ideal: float  # slots whose primary changed when one member leaves / (16384 / N)
    leave_max_over_ideal: float    # balance right after that leave, against 16384 / (N-1)
    tokens: int


def node_id(index: int) -> str:
    return hashlib.sha1(f"node-{index}".encode()).hexdigest()


def grown(members: int) -> ring.Tokens:
    tokens = ring.single(node_id(0))
    for index in range(1, members):
        tokens = ring.join(tokens, node_id(index))
    return tokens


def moved(before: ring.Tokens, after: ring.Tokens) -> int:
    old, new = ring.owners(before, 1), ring.owners(after, 1)
    return sum(1 for slot in range(SLOT_COUNT) if old[slot] != new[slot])


def measure(members: int) -> Balance:
    tokens = grown(members)
    ideal = SLOT_COUNT / members
    joined = ring.join(tokens, node_id(members))
    # An early member leaves: its arcs have been split by every later join.
    left = ring.leave(tokens, node_id(1))
    return Balance(
        members=members,
        max_over_ideal=max(ring.primary_counts(tokens).values()) / ideal,
        join_moved_over_ideal=moved(tokens, joined) / (SLOT_COUNT / (members + 1)),
        leave_moved_over_ideal=moved(tokens, left) / ideal,
        leave_max_over_ideal=max(ring.primary_counts(left).values()) / (SLOT_COUNT / (members - 1)),
        tokens=len(tokens),
    )


def main() -> None:
    print(f"{'N':>3} {'max/ideal':>10} {'join moved/ideal':>17} {'leave moved/ideal':>18}"
          f" {'max/ideal after leave':>22} {'tokens':>7}")
    for members in SIZES:
        row = measure(members)
        print(f"{row.members:>3} {row.max_over_ideal:>10.4f} {row.join_moved_over_ideal:>17.4f}"
              f" {row.leave_moved_over_ideal:>18.4f} {row.leave_max_over_ideal:>22.4f} {row.tokens:>7}")


if __name__ == "__main__":
    main()
