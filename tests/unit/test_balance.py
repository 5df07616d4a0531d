"""The rebalancing of a ring after departures (mesh/balance.py): pure, fed rings, no sockets."""
from __future__ import annotations

import pytest

from mesh import balance, ring
from mesh.keyslot import SLOT_COUNT


def _ring_of(members: int) -> ring.Tokens:
    tokens = ring.single("m00")
    for index in range(1, members):
        tokens = ring.join(tokens, f"m{index:02d}")
    return tokens


def _worst(tokens: ring.Tokens, replication_factor: int) -> tuple[float, float]:
    """(highest primary load, highest replica load), each over its ideal."""
    primary = ring.primary_counts(tokens)
    replica = ring.replica_counts(tokens, replication_factor)
    ideal = SLOT_COUNT / len(primary)
    owners = min(replication_factor, len(primary))
    return max(primary.values()) / ideal, max(replica.values()) / (ideal * (owners - 1))


def _settle(tokens: ring.Tokens, replication_factor: int) -> tuple[ring.Tokens, list[ring.Tokens]]:
    steps = []
    while len(steps) < 10:
        moved = balance.rebalance(tokens, replication_factor)
        if moved == tokens:
            break
        steps.append(moved)
        tokens = moved
    return tokens, steps


@pytest.mark.parametrize("replication_factor", [2, 3])
@pytest.mark.parametrize("members", [4, 5, 8, 12])
def test_a_departure_is_evened_out_in_a_few_bounded_steps(members: int, replication_factor: int) -> None:
    worst_before, worst_after = [], []
    for leaver in range(3):
        left = ring.leave(_ring_of(members), f"m{leaver:02d}")
        worst_before.append(_worst(left, replication_factor))
        settled, steps = _settle(left, replication_factor)
        worst_after.append(_worst(settled, replication_factor))
        assert len(steps) <= 3
        primary, replica = worst_after[-1]
        assert primary <= 1 + balance.PRIMARY_TOLERANCE_PCT / 100 + 0.005
        assert replica <= 1 + balance.REPLICA_TOLERANCE_PCT / 100 + 0.005
    print(f"members={members} rf={replication_factor} worst (primary, replica) after a leave "
          f"{[f'{p:.2f}/{r:.2f}' for p, r in worst_before]} -> {[f'{p:.2f}/{r:.2f}' for p, r in worst_after]}")
    # (the premise: a departure does unbalance the ring, or this test would prove nothing)
    assert max(p for p, _ in worst_before) > 1 + balance.PRIMARY_TOLERANCE_PCT / 100


@pytest.mark.parametrize("replication_factor", [2, 3])
def test_every_moved_slot_goes_to_a_member_that_held_it_and_a_step_moves_at_most_the_budget(
        replication_factor: int) -> None:
    for members in (4, 6, 9):
        for leaver in range(members):
            tokens = ring.leave(_ring_of(members), f"m{leaver:02d}")
            before = ring.owners(tokens, replication_factor)
            after_tokens = balance.rebalance(tokens, replication_factor)
            after = ring.owners(after_tokens, replication_factor)
            moved = [slot for slot in range(SLOT_COUNT) if before[slot][0] != after[slot][0]]
            assert len(moved) <= balance.DEFAULT_BUDGET
            # a new primary was the slot's first replica: it holds every acknowledged write
            assert all(after[slot][0] == before[slot][1] for slot in moved)
            assert {m for _, m in after_tokens} == {m for _, m in tokens}


def test_even_rings_are_left_alone_and_replication_factor_1_never_moves() -> None:
    for members in range(1, 13):
        for replication_factor in (2, 3):
            settled, _ = _settle(_ring_of(members), replication_factor)
            assert balance.rebalance(settled, replication_factor) is settled
        if members <= 3:       # (small rings come out of their joins even)
            assert balance.rebalance(_ring_of(members), 2) == _ring_of(members)
    # replication factor 1: nobody holds a copy to move slots to
    left = ring.leave(_ring_of(5), "m02")
    assert balance.rebalance(left, 1) is left
    assert balance.rebalance(left, 2) != left


def test_the_same_ring_gives_the_same_result_without_the_cache() -> None:
    left = ring.leave(_ring_of(7), "m03")
    first = balance.rebalance(left, 2)
    balance.rebalance.cache_clear()
    assert balance.rebalance(left, 2) == first


def test_busiest_tells_the_loads_the_status_page_shows() -> None:
    left = ring.leave(_ring_of(5), "m02")
    primary, replica, uneven = balance.busiest(left, 2)
    assert (primary, replica) == pytest.approx(_worst(left, 2)) and uneven
    settled, _ = _settle(left, 2)
    assert not balance.busiest(settled, 2)[2]
    assert balance.busiest(left, 1)[1:] == (0.0, False)
