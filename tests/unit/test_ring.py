"""The ring: owners walk distinct members, primaries and replicas stay balanced, joins and leaves move little."""
import time

import pytest
from hypothesis import example, given, settings, strategies as st

from loadtest.ring_balance import REPLICATION_FACTORS, SIZES, grown, measure, moved, node_id, replica_max_over_ideal
from mesh import ring
from mesh.keyslot import SLOT_COUNT


def test_single_member_owns_every_slot():
    owners = ring.owners(ring.single(node_id(0)), 3)
    assert len(owners) == SLOT_COUNT
    assert set(owners) == {(node_id(0),)}


def test_token_owns_slots_after_previous_token_up_to_itself():
    a, b = node_id(0), node_id(1)
    owners = ring.owners(((100, a), (200, b)), 1)
    assert owners[0] == (a,) and owners[100] == (a,)
    assert owners[101] == (b,) and owners[200] == (b,)
    assert owners[201] == (a,) and owners[SLOT_COUNT - 1] == (a,)


def test_owners_are_distinct_members_walking_the_ring():
    a, b, c = node_id(0), node_id(1), node_id(2)
    tokens = ((10, a), (20, b), (30, a), (40, c))
    owners = ring.owners(tokens, 2)
    assert owners[15] == (b, a)
    assert owners[25] == (a, c)
    assert owners[35] == (c, a)
    assert owners[45] == (a, b)


def test_fewer_members_than_replication_factor_means_every_member_owns_every_slot():
    tokens = grown(2)
    assert all(len(slot_owners) == 2 for slot_owners in ring.owners(tokens, 3))


def test_owner_tuples_are_shared():
    owners = ring.owners(grown(5), 2)
    assert len({id(slot_owners) for slot_owners in owners}) == len(set(owners))


# Every arc of a leaver passes to its replica, whatever the balance (the data is
# there and nowhere else): the busiest member measured up to 1.21x after a leave.
LEAVE_BOUND = 1.25


@pytest.mark.parametrize("members", SIZES)
def test_balance_and_movement_bounds(members):
    row = measure(members)
    assert row.max_over_ideal <= 1.05
    assert row.leave_max_over_ideal <= LEAVE_BOUND
    assert row.join_moved_over_ideal <= 1.1
    assert row.leave_moved_over_ideal <= 1.1


# Reached: rf 2 at most 1.18 (before replica-aware joins: up to 1.36), rf 3 at most 1.10
# (before: up to 1.47); right after a leave 1.20 / 1.17 (before: up to 1.89).
REPLICA_BOUND = 1.2
REPLICA_BOUND_AFTER_LEAVE = 1.21
# Any join/leave history, small rings just after a leave being the hard case
# (before replica-aware joins: 1.87). Since a leaver's arcs pass whole to their
# replica (the member holding the data, no copy on failover), leaves no longer
# rebalance and skew compounds: the worst of 150 random histories of up to 30
# steps measured 1.54, and hypothesis found 1.77 (the example below). Balance
# after leaves needs rebalancing migrations, which are not built yet.
REPLICA_BOUND_ANY_HISTORY = 2.0
# Primaries after any history: leaves hand whole arcs to their replicas and only
# joins rebalance (40 random histories of 30 steps: at most 1.32).
PRIMARY_BOUND_ANY_HISTORY = 1.5


@pytest.mark.parametrize("members", SIZES)
def test_replica_balance_bounds(members):
    row = measure(members)
    for replication_factor in REPLICATION_FACTORS:
        assert row.replica_max_over_ideal[replication_factor] <= REPLICA_BOUND
        assert row.leave_replica_max_over_ideal[replication_factor] <= REPLICA_BOUND_AFTER_LEAVE


def test_replica_counts_add_up_to_the_copies_of_every_slot():
    tokens = grown(10)
    assert sum(ring.replica_counts(tokens, 2).values()) == SLOT_COUNT
    assert sum(ring.replica_counts(tokens, 3).values()) == 2 * SLOT_COUNT
    assert sum(ring.replica_counts(grown(2), 3).values()) == SLOT_COUNT


def test_leave_of_the_newest_member_hands_its_slots_back_to_their_donors():
    # A piece that was a donor's whole arc passes to the next member instead, so
    # the ring is not restored token for token; nearly every slot is.
    for members in (6, 10, 20):
        before = grown(members)
        after = ring.leave(ring.join(before, node_id(members)), node_id(members))
        old, new = ring.owners(before, 1), ring.owners(after, 1)
        assert sum(old[slot] == new[slot] for slot in range(SLOT_COUNT)) >= 0.98 * SLOT_COUNT


def test_the_same_history_gives_the_same_tokens():
    tokens = ring.single(node_id(0))
    for index in range(1, 12):
        tokens = ring.join(tokens, node_id(index))
    assert tokens == grown(12)


@pytest.mark.parametrize("members, leaver", [(3, 0), (4, 2), (5, 3), (10, 7), (20, 3)])
def test_every_leaver_slot_goes_to_its_replica(members, leaver):
    """Failover needs no copy: the replica holds the data (a slot handed elsewhere arrived empty)."""
    tokens = grown(members)
    before = ring.owners(tokens, 2)
    after = ring.owners(ring.leave(tokens, node_id(leaver)), 2)
    inherited = [slot for slot in range(SLOT_COUNT) if before[slot][0] == node_id(leaver)]
    assert inherited and all(after[slot][0] == before[slot][1] for slot in inherited)


def test_only_the_leaver_slots_move():
    tokens = grown(10)
    before = ring.owners(tokens, 1)
    after = ring.owners(ring.leave(tokens, node_id(4)), 1)
    changed = {slot for slot in range(SLOT_COUNT) if before[slot] != after[slot]}
    assert changed == {slot for slot in range(SLOT_COUNT) if before[slot] == (node_id(4),)}


def test_join_and_leave_are_idempotent_for_known_and_unknown_members():
    tokens = grown(3)
    assert ring.join(tokens, node_id(1)) == tokens
    assert ring.leave(tokens, node_id(99)) == tokens


def test_last_member_cannot_leave():
    with pytest.raises(ValueError):
        ring.leave(ring.single(node_id(0)), node_id(0))


@pytest.mark.alone     # runs alone (Makefile): a 50 ms bound by the wall clock
def test_owners_of_a_large_ring_are_fast():
    tokens = grown(64)
    started = time.perf_counter()
    ring.owners(tokens, 3)
    assert time.perf_counter() - started < 0.05


@settings(max_examples=12, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 1000)), min_size=1, max_size=30))
@example([(False, 0), (True, 0), (True, 0), (True, 1), (False, 0), (True, 0), (False, 212), (False, 3)])
@example([(False, 0), (True, 411), (True, 0), (False, 87), (True, 0), (True, 391), (False, 822), (True, 0),
          (False, 0), (False, 105)])
def test_any_history_stays_balanced_and_canonical(history):
    tokens = ring.single(node_id(0))
    live = [node_id(0)]
    for joins, pick in history:
        if joins or len(live) == 1:
            member = node_id(len(live) + pick * 7 + 1000)
            if member not in live:
                live.append(member)
            tokens = ring.join(tokens, member)
        else:
            tokens = ring.leave(tokens, live.pop(pick % len(live)))
        counts = ring.primary_counts(tokens)
        assert set(counts) == set(live)
        assert sum(counts.values()) == SLOT_COUNT
        assert max(counts.values()) <= PRIMARY_BOUND_ANY_HISTORY * SLOT_COUNT / len(live) + 1
        positions = [position for position, _ in tokens]
        assert positions == sorted(set(positions)) and 0 <= positions[0] and positions[-1] < SLOT_COUNT
        if len(tokens) > 1:
            assert all(tokens[i][1] != tokens[(i + 1) % len(tokens)][1] for i in range(len(tokens)))
        if len(live) >= 3:
            for replication_factor in REPLICATION_FACTORS:
                assert replica_max_over_ideal(tokens, replication_factor) <= REPLICA_BOUND_ANY_HISTORY


def test_moved_counts_primary_changes():
    tokens = grown(4)
    assert moved(tokens, tokens) == 0


def _even_ring(members: int, per_member: int) -> ring.Tokens:
    """A ring of `members` with `per_member` tokens each, evenly spaced and interleaved (built directly:
    growing 1,000 members one join at a time takes minutes)."""
    count = members * per_member
    return ring.normalize({index * SLOT_COUNT // count + SLOT_COUNT // count - 1: node_id(index % members)
                           for index in range(count)})


@pytest.mark.parametrize("members, per_member", [(300, 8), (1000, 4)])
def test_a_newcomer_joins_rings_of_hundreds_of_members(members, per_member):
    # past 256 members 64 vnodes a member would not fit in the 16,384 slots: the newcomer
    # takes its share in fewer pieces, placed as cheaply as in a small ring
    before = _even_ring(members, per_member)
    newcomer = node_id(members)
    started = time.perf_counter()
    after = ring.join.__wrapped__(before, newcomer)
    took = time.perf_counter() - started
    assert after == ring.join.__wrapped__(before, newcomer)        # the same on every member
    counts = ring.primary_counts(after)
    assert counts[newcomer] == SLOT_COUNT // (members + 1)
    assert max(counts.values()) <= 1.25 * SLOT_COUNT / (members + 1) + 1
    old, new = ring.owners(before, 2), ring.owners(after, 2)
    # only the newcomer's share changes primary, and each of its slots comes from its old primary
    assert all(new[slot][0] in (old[slot][0], newcomer) for slot in range(SLOT_COUNT))
    # (a guard against a placement that grows with the ring again: ~1 s per newcomer at 100
    # members before; well under a second here on a quiet machine)
    assert took < 10
