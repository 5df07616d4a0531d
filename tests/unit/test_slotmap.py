"""SlotMap: an immutable, epoch-numbered value; owners derived from its tokens."""
import dataclasses

import pytest

from loadtest.ring_balance import node_id
from mesh.keyslot import SLOT_COUNT
from mesh.slotmap import Member, SlotMap


def member(index: int) -> Member:
    return Member(node_id(index), "127.0.0.1", 8080 + index, 18080 + index, 9080 + index)


def three(replication_factor: int = 2) -> SlotMap:
    return SlotMap.single(member(0), replication_factor).with_member(member(1)).with_member(member(2))


def test_single_owns_everything_at_epoch_zero():
    slotmap = SlotMap.single(member(0))
    assert slotmap.epoch == 0
    assert slotmap.primary(0) == slotmap.primary(SLOT_COUNT - 1) == node_id(0)
    assert slotmap.ranges(node_id(0)) == ([(0, SLOT_COUNT - 1)], [])


def test_member_validation():
    with pytest.raises(ValueError):
        Member("ABC", "127.0.0.1", 1, 2, 3)
    with pytest.raises(ValueError):
        Member(node_id(0), "127.0.0.1", 70000, 2, 3)


def test_with_member_raises_epoch_and_keeps_members_sorted():
    slotmap = three()
    assert slotmap.epoch == 2
    assert [m.node_id for m in slotmap.members] == sorted(node_id(i) for i in range(3))
    assert slotmap.member(node_id(1)) == member(1)
    with pytest.raises(KeyError):
        slotmap.member(node_id(9))


def test_maps_are_immutable_values():
    slotmap = three()
    with pytest.raises(dataclasses.FrozenInstanceError):
        slotmap.epoch = 5
    same = SlotMap(slotmap.epoch, 2, slotmap.members, slotmap.tokens, base_epoch=slotmap.base_epoch)
    assert slotmap == same and hash(slotmap) == hash(same)
    # (the base is part of the value: the same owners made from another map are another decision)
    assert slotmap != dataclasses.replace(slotmap, base_epoch=None)


def test_a_map_knows_the_map_it_was_made_from():
    first = SlotMap.single(member(0), 2)
    second = first.with_member(member(1))
    assert first.base_epoch is None and second.base_epoch == first.epoch
    third = second.without_member(member(1).node_id)
    assert third.base_epoch == second.epoch
    # a ballot retried under a higher number commits on the same base: the number
    # jumps, nothing was missed
    retried = dataclasses.replace(third, epoch=third.epoch + 3)
    assert not retried.skips_from(second)
    assert third.skips_from(first)            # made from a map the holder of `first` never saw
    # maps of unknown base (older nodes' ballot files) fall back to the numbers
    assert dataclasses.replace(retried, base_epoch=None).skips_from(second)
    assert not dataclasses.replace(third, base_epoch=None).skips_from(second)
    with pytest.raises(ValueError):
        dataclasses.replace(third, base_epoch=third.epoch)




def test_ranges_cover_every_slot_once_as_primary_and_replica():
    slotmap = three()
    primary_total = replica_total = 0
    for m in slotmap.members:
        primary, replica = slotmap.ranges(m.node_id)
        assert primary == sorted(primary) and replica == sorted(replica)
        primary_total += sum(last - first + 1 for first, last in primary)
        replica_total += sum(last - first + 1 for first, last in replica)
    assert primary_total == SLOT_COUNT
    assert replica_total == SLOT_COUNT  # replication_factor 2: one replica per slot


def test_owner_ranges_are_maximal_runs():
    runs = three().owner_ranges()
    assert runs[0][0] == 0 and runs[-1][1] == SLOT_COUNT - 1
    for (_, last, owners), (first, _, next_owners) in zip(runs, runs[1:]):
        assert last + 1 == first and owners != next_owners


def test_supersedes_is_by_epoch():
    old = three()
    new = old.without_member(node_id(1))
    assert new.supersedes(old) and not old.supersedes(new) and not old.supersedes(old)


def test_without_member_moves_its_slots_to_the_replica_and_diff_reports_them():
    old = three(replication_factor=2)
    new = old.without_member(node_id(1))
    assert not new.has_member(node_id(1))
    changed = set(new.diff(old))
    was_primary = {s for s in range(SLOT_COUNT) if old.primary(s) == node_id(1)}
    assert was_primary <= changed
    assert all(node_id(1) in old.owners[s] for s in changed)
    on_replica = sum(1 for s in was_primary if new.primary(s) == old.owners[s][1])
    assert on_replica / len(was_primary) > 0.7


def test_with_known_member_updates_addresses_only():
    old = three()
    moved = dataclasses.replace(member(1), host="10.0.0.5")
    new = old.with_member(moved)
    assert new.epoch == old.epoch + 1
    assert new.tokens == old.tokens and new.diff(old) == ()
    assert new.member(node_id(1)).host == "10.0.0.5"


def test_inconsistent_maps_are_rejected():
    slotmap = three()
    with pytest.raises(ValueError):
        SlotMap(1, 1, slotmap.members[:2], slotmap.tokens)
    with pytest.raises(ValueError):
        SlotMap(1, 0, slotmap.members, slotmap.tokens)
    with pytest.raises(ValueError):
        SlotMap(1, 1, tuple(reversed(slotmap.members)), slotmap.tokens)


def test_migrating_slots_of_a_departed_member_are_dropped():
    base = three()
    moving = SlotMap(base.epoch, 2, base.members, base.tokens, migrating=((5, node_id(1)), (6, node_id(2))))
    assert moving.without_member(node_id(1)).migrating == ((6, node_id(2)),)


@pytest.mark.parametrize("replication_factor", [1, 2, 3])
def test_ranges_made_once_for_every_member_are_each_member_s_slots(replication_factor):
    # (made from the runs in one pass, kept with the map: CLUSTER INFO asked each member's ranges
    # by a walk of all 16,384 slots, 39 ms at 60 members)
    slotmap = three(replication_factor).with_member(member(3)).with_member(member(4))
    for m in slotmap.members:
        primary = [slot for slot in range(SLOT_COUNT) if slotmap.owners[slot][0] == m.node_id]
        replica = [slot for slot in range(SLOT_COUNT) if m.node_id in slotmap.owners[slot][1:]]
        got_primary, got_replica = slotmap.ranges(m.node_id)
        assert [s for first, last in got_primary for s in range(first, last + 1)] == primary
        assert [s for first, last in got_replica for s in range(first, last + 1)] == replica
    assert slotmap.ranges(node_id(99)) == ([], [])
    slotmap.ranges(node_id(0))[0].append((1, 2))      # (a caller's list, not the map's own)
    assert slotmap.ranges(node_id(0)) == slotmap.ranges(node_id(0)) and (1, 2) not in slotmap.ranges(node_id(0))[0]


def test_a_map_pickles_as_what_it_is_made_from_without_its_caches():
    # (to the placement worker and back: the derived owners and ranges made a request 2.4 times as big)
    import pickle
    slotmap = three()
    before = pickle.dumps(slotmap)
    slotmap.ranges(node_id(0))
    assert pickle.dumps(slotmap) == before
    copy = pickle.loads(before)
    assert copy == slotmap and copy.owners == slotmap.owners and copy.base_epoch == slotmap.base_epoch
    assert copy.ranges(node_id(1)) == slotmap.ranges(node_id(1))
