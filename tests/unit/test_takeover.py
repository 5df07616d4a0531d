"""CLUSTER FAILOVER TAKEOVER's decision: when a survivor may drop the dead without a vote, and what it makes."""
from dataclasses import replace

import pytest

from loadtest.ring_balance import node_id
from mesh.messages import State
from mesh.slotmap import Member, SlotMap
from mesh.takeover import HAS_MAJORITY, TakeoverRefused, forced_map, same_decision


def member(index: int) -> Member:
    return Member(node_id(index), "127.0.0.1", 8080 + index, 18080 + index, 9080 + index)


def four() -> SlotMap:
    slotmap = SlotMap.single(member(0), 2)
    for index in range(1, 4):
        slotmap = slotmap.with_member(member(index))
    return slotmap


ME, OTHER, GONE_A, GONE_B = (node_id(i) for i in range(4))
HALF_DEAD = {OTHER: State.ALIVE, GONE_A: State.DEAD, GONE_B: State.DEAD}


def test_the_survivors_make_the_same_map_whatever_ballots_each_saw():
    current = four()
    mine = forced_map(current, ME, HALF_DEAD, hears_majority=False, voted_epoch=current.epoch + 7)
    theirs = forced_map(current, OTHER, {ME: State.ALIVE, GONE_A: State.DEAD, GONE_B: State.DEAD},
                        hears_majority=False, voted_epoch=current.epoch + 2)
    assert {m.node_id for m in mine.members} == {ME, OTHER}
    assert mine.base_epoch == theirs.base_epoch == current.epoch
    assert mine.epoch == current.epoch + 8 and theirs.epoch == current.epoch + 3   # above every ballot seen
    assert same_decision(mine, theirs) and same_decision(theirs, mine)
    assert not mine.skips_from(theirs) and not theirs.skips_from(mine)   # a renumbering misses nothing
    # a dead member's slots pass to their replicas, as after a voted removal
    for slot, owners in enumerate(current.owners):
        if owners[0] in (GONE_A, GONE_B) and any(o in (ME, OTHER) for o in owners):
            assert mine.owners[slot][0] in owners


def test_another_decision_is_not_taken_as_a_takeover():
    current = four()
    mine = forced_map(current, ME, HALF_DEAD, False, current.epoch)
    all_others_dead = forced_map(current, ME, {**HALF_DEAD, GONE_B: State.DEAD, OTHER: State.DEAD}, False, 0)
    assert not same_decision(all_others_dead, mine)
    assert not same_decision(replace(mine, base_epoch=current.epoch - 1), mine)   # made from another map
    assert not same_decision(SlotMap.single(member(5), 2), mine)


@pytest.mark.parametrize("states,majority,joining,reason", [
    (HALF_DEAD, True, False, HAS_MAJORITY),
    ({OTHER: State.ALIVE, GONE_A: State.DEAD, GONE_B: State.SUSPECT}, False, False, "is suspected"),
    ({OTHER: State.ALIVE, GONE_A: State.DEAD}, False, False, "is suspected"),     # never heard: not known dead
    ({OTHER: State.ALIVE, GONE_A: State.ALIVE, GONE_B: State.ALIVE}, False, False, "no member is dead"),
    (HALF_DEAD, False, True, "not a member"),
])
def test_refusals_say_why(states, majority, joining, reason):
    with pytest.raises(TakeoverRefused) as refused:
        forced_map(four(), ME, states, majority, 0, joining)
    assert reason in str(refused.value) and str(refused.value).startswith("ERR ")


def test_a_node_outside_the_map_cannot_take_over():
    with pytest.raises(TakeoverRefused):
        forced_map(four(), node_id(9), HALF_DEAD, False, 0)
