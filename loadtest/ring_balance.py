"""Report how evenly the ring spreads primary and replica slots and how many slots move on a join or leave.

Run: python -m loadtest.ring_balance
For each N the ring is grown one join at a time from a single member (the way a
cluster forms), then one more member joins, or an existing one leaves.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from mesh import balance, ring
from mesh.keyslot import SLOT_COUNT

SIZES = (3, 5, 10, 20, 32, 64)
REPLICATION_FACTORS = (2, 3)


@dataclass(frozen=True, slots=True)
class Balance:
    members: int
    max_over_ideal: float      # busiest member's primary slots / (16384 / N)
    join_moved_over_ideal: float   # slots whose primary changed when member N+1 joins / (16384 / (N+1))
    leave_moved_over_ideal: float  # slots whose primary changed when one member leaves / (16384 / N)
    leave_max_over_ideal: float    # balance right after that leave, against 16384 / (N-1)
    # Busiest member's replica slots / ideal (16384 * (rf-1) / N), keyed by replication_factor.
    replica_max_over_ideal: dict[int, float]
    leave_replica_max_over_ideal: dict[int, float]  # the same right after the leave
    tokens: int


def node_id(index: int) -> str:
    return hashlib.sha1(f"node-{index}".encode()).hexdigest()


@functools.cache
def grown(members: int) -> ring.Tokens:
    """Return the ring after members 0..members-1 joined one at a time (cached: tokens are immutable)."""
    if members == 1:
        return ring.single(node_id(0))
    return ring.join(grown(members - 1), node_id(members - 1))


def replica_max_over_ideal(tokens: ring.Tokens, replication_factor: int) -> float:
    counts = ring.replica_counts(tokens, replication_factor)
    copies = min(replication_factor, len(counts)) - 1
    return max(counts.values()) / (SLOT_COUNT * copies / len(counts))


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
        replica_max_over_ideal={rf: replica_max_over_ideal(tokens, rf) for rf in REPLICATION_FACTORS},
        leave_replica_max_over_ideal={rf: replica_max_over_ideal(left, rf) for rf in REPLICATION_FACTORS},
        tokens=len(tokens),
    )


def rebalanced_after_leave(members: int, replication_factor: int) -> tuple[int, int, float, float]:
    """After the same leave as `measure`'s: (maps, slots whose primary moved, busiest member's
    primary and replica load over ideal) once mesh/balance.py has evened the ring out."""
    tokens = ring.leave(grown(members), node_id(1))
    steps = slots = 0
    while steps < 10:
        even = balance.rebalance(tokens, replication_factor)
        if even == tokens:
            break
        steps, slots, tokens = steps + 1, slots + moved(tokens, even), even
    ideal = SLOT_COUNT / (members - 1)
    return (steps, slots, max(ring.primary_counts(tokens).values()) / ideal,
            replica_max_over_ideal(tokens, replication_factor))


def main() -> None:
    print(f"{'N':>3} {'max/ideal':>10} {'join moved/ideal':>17} {'leave moved/ideal':>18}"
          f" {'max/ideal after leave':>22} {'rf2 replica':>12} {'rf3 replica':>12}"
          f" {'after leave rf2':>16} {'rf3':>6} {'tokens':>7}")
    for members in SIZES:
        row = measure(members)
        replica, after = row.replica_max_over_ideal, row.leave_replica_max_over_ideal
        print(f"{row.members:>3} {row.max_over_ideal:>10.4f} {row.join_moved_over_ideal:>17.4f}"
              f" {row.leave_moved_over_ideal:>18.4f} {row.leave_max_over_ideal:>22.4f}"
              f" {replica[2]:>12.4f} {replica[3]:>12.4f} {after[2]:>16.4f} {after[3]:>6.4f} {row.tokens:>7}")
    print("\nthen, once the copies are complete again, maps moving slots to the member that holds them:")
    print(f"{'N':>3} {'rf':>3} {'maps':>5} {'slots moved':>12} {'max/ideal':>10} {'replica max/ideal':>18}")
    for members in SIZES:
        for rf in REPLICATION_FACTORS:
            steps, slots, primary, replica_max = rebalanced_after_leave(members, rf)
            print(f"{members - 1:>3} {rf:>3} {steps:>5} {slots:>12} {primary:>10.4f} {replica_max:>18.4f}")


if __name__ == "__main__":
    main()
