"""The plan for joiners (mesh/plans.py): followed only from the proposer, on the map held, and said again while it stands."""
from mesh import plans
from mesh.plans import JoinPlans
from mesh.slotmap import Member, SlotMap


def member(index: int) -> Member:
    return Member(f"{index:040x}", "127.0.0.1", 7000 + index, 17000 + index, 9000 + index)


CURRENT = SlotMap.single(member(1), 2).with_member(member(2)).with_member(member(3))     # epoch 2
PLANNED = CURRENT.with_member(member(4))                                                  # on epoch 2
PROPOSER = member(1).node_id


def test_a_plan_is_followed_from_the_proposer_only_on_the_map_held():
    assert plans.acceptable(PLANNED, CURRENT, PROPOSER, PROPOSER)
    assert not plans.acceptable(PLANNED, CURRENT, member(2).node_id, PROPOSER)     # not the proposer
    assert not plans.acceptable(PLANNED, CURRENT, PROPOSER, None)                  # no proposer known
    older = SlotMap.single(member(1), 2).with_member(member(2))
    assert not plans.acceptable(PLANNED, older, PROPOSER, PROPOSER)                 # on another map
    later = PLANNED.with_member(member(5))                                          # two epochs on
    assert not plans.acceptable(later, CURRENT, PROPOSER, PROPOSER)


def test_a_plan_that_removes_a_member_or_adds_none_is_not_followed():
    assert not plans.acceptable(CURRENT.without_member(member(3).node_id), CURRENT, PROPOSER, PROPOSER)
    assert not plans.acceptable(CURRENT.with_member(member(2)), CURRENT, PROPOSER, PROPOSER)     # no joiner


def test_the_plan_heard_lasts_while_its_proposer_proposes_on_the_map_it_was_made_on():
    heard = JoinPlans()
    assert heard.hear(PLANNED, PROPOSER, CURRENT, PROPOSER, 0.0)
    assert heard.heard(CURRENT, PROPOSER) == PLANNED
    assert heard.heard(CURRENT, member(2).node_id) is None     # another member proposes now
    assert heard.heard(PLANNED, PROPOSER) is None              # the map moved on
    assert not heard.hear(PLANNED, member(2).node_id, CURRENT, PROPOSER, 0.0)
    assert heard.heard(CURRENT, PROPOSER) == PLANNED           # (a refused plan changes nothing)


def test_the_proposer_says_its_plan_at_once_then_every_interval_until_the_map_moves_on():
    made = JoinPlans()
    assert made.to_say(CURRENT, 0.0) is None        # nothing made
    made.make(PLANNED)
    assert made.to_say(CURRENT, 10.0) == PLANNED
    assert made.to_say(CURRENT, 10.0 + plans.PLAN_AGAIN_S / 2) is None
    assert made.to_say(CURRENT, 10.0 + plans.PLAN_AGAIN_S) == PLANNED
    made.make(PLANNED)                              # the same plan again: no extra sending
    assert made.to_say(CURRENT, 10.0 + plans.PLAN_AGAIN_S) is None
    other = CURRENT.with_member(member(5))
    made.make(other)                                # a new plan goes out at once
    assert made.to_say(CURRENT, 10.0 + plans.PLAN_AGAIN_S) == other
    assert made.to_say(PLANNED, 100.0) is None      # the map moved on: said no more
    assert made.to_say(CURRENT, 100.0) is None


def test_a_plan_heard_is_checked_once_it_stood_and_followed_no_more_if_it_does_not_follow_the_map():
    heard = JoinPlans()
    heard.hear(PLANNED, PROPOSER, CURRENT, PROPOSER, 10.0)
    assert heard.to_check(CURRENT, PROPOSER, 10.0 + plans.CHECK_AFTER_S / 2) is None     # not stood yet
    heard.hear(PLANNED, PROPOSER, CURRENT, PROPOSER, 10.5)     # said again: it still stands since 10.0
    checked = heard.to_check(CURRENT, PROPOSER, 10.0 + plans.CHECK_AFTER_S)
    assert checked == PLANNED
    assert heard.to_check(CURRENT, PROPOSER, 20.0) is None     # (running: one check at a time)
    heard.checked(checked, None, 20.0)                          # the placement failed: again, later
    assert heard.to_check(CURRENT, PROPOSER, 20.0) is None
    checked = heard.to_check(CURRENT, PROPOSER, 20.0 + plans.CHECK_AFTER_S)
    heard.checked(checked, True, 21.0)
    assert heard.to_check(CURRENT, PROPOSER, 30.0) is None     # checked: once
    assert heard.heard(CURRENT, PROPOSER) == PLANNED

    other = CURRENT.with_member(member(5))
    heard.hear(other, PROPOSER, CURRENT, PROPOSER, 30.0)       # a new plan stands anew
    assert heard.to_check(CURRENT, PROPOSER, 30.0) is None
    checked = heard.to_check(CURRENT, PROPOSER, 30.0 + plans.CHECK_AFTER_S)
    assert checked == other
    heard.checked(checked, False, 32.0)
    assert heard.heard(CURRENT, PROPOSER) is None               # refused: followed no more,
    assert not heard.hear(other, PROPOSER, CURRENT, PROPOSER, 33.0)     # even when said again
    assert heard.heard(CURRENT, PROPOSER) is None


def test_the_end_of_a_check_of_a_plan_since_replaced_changes_nothing():
    heard = JoinPlans()
    heard.hear(PLANNED, PROPOSER, CURRENT, PROPOSER, 0.0)
    checked = heard.to_check(CURRENT, PROPOSER, plans.CHECK_AFTER_S)
    other = CURRENT.with_member(member(5))
    heard.hear(other, PROPOSER, CURRENT, PROPOSER, 2.0)
    heard.checked(checked, False, 2.5)
    assert heard.heard(CURRENT, PROPOSER) == other
    assert heard.to_check(CURRENT, PROPOSER, 2.0 + plans.CHECK_AFTER_S) == other
