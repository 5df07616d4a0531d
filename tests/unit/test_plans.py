"""The plan for joiners (mesh/plans.py): followed only from the proposer, on the map held, and said again while it stands."""
from dataclasses import replace

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


def test_the_plan_heard_lasts_on_the_map_it_was_made_on_until_a_proposer_says_another():
    heard = JoinPlans()
    assert heard.hear(PLANNED, PROPOSER, CURRENT, PROPOSER)
    assert heard.heard(CURRENT) == PLANNED
    assert heard.heard(PLANNED) is None             # the map moved on
    assert not heard.hear(CURRENT.with_member(member(5)), member(2).node_id, CURRENT, PROPOSER)
    assert heard.heard(CURRENT) == PLANNED          # (a plan not followed changes nothing)
    # the proposer's role moved (its suspicion, say): the plan heard stands (heard() asks no
    # proposer) until the new one says another
    new_proposer = member(2).node_id
    other = CURRENT.with_member(member(5))
    assert heard.hear(other, new_proposer, CURRENT, new_proposer)
    assert heard.heard(CURRENT) == other


def test_a_member_copies_ahead_to_the_joiners_of_the_plan_it_knows_alive():
    two = PLANNED.with_member(member(5))        # joiners 4 and 5 on CURRENT
    two = SlotMap(PLANNED.epoch, two.replication_factor, two.members, two.tokens, base_epoch=CURRENT.epoch)
    me, four, five = member(1).node_id, member(4).node_id, member(5).node_id
    moved = replace(member(5), host="10.0.0.5")        # 5 as this node heard it (its own hello)
    both = {four: member(4), five: moved}
    planned, joiners = plans.followed(two, CURRENT, both, me, outside=False)
    assert planned is two and set(joiners) == {four, five}
    assert joiners[five] is moved                       # copies go where the joiner said, not the plan
    planned, joiners = plans.followed(two, CURRENT, {four: member(4)}, me, outside=False)     # 5 died unadmitted
    assert planned is two and set(joiners) == {four}
    assert plans.followed(two, CURRENT, {}, me, outside=False) == (None, {})   # none left alive here
    assert plans.followed(None, CURRENT, both, me, outside=False) == (None, {})
    assert plans.followed(two, PLANNED, both, me, outside=False) == (None, {})     # on another map
    # a joiner follows a plan that admits it (knowing the others alive or not), and no other
    planned, joiners = plans.followed(two, CURRENT, {}, four, outside=True)
    assert planned is two and set(joiners) == {four}
    assert plans.followed(PLANNED, CURRENT, {four: member(4)}, five, outside=True) == (None, {})


def test_the_proposer_says_its_plan_at_once_then_every_interval_until_the_map_moves_on():
    made = JoinPlans()
    assert made.to_say(CURRENT, 0.0) is None and not made.saying     # nothing made
    made.make(PLANNED)
    assert made.saying
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


def test_a_plan_heard_is_checked_once_and_followed_no_more_if_it_does_not_follow_the_map():
    heard = JoinPlans()
    heard.hear(PLANNED, PROPOSER, CURRENT, PROPOSER)
    checked = heard.to_check(CURRENT)
    assert checked == PLANNED
    assert heard.heard(CURRENT) == PLANNED and heard.heard(CURRENT, checked=True) is None
    heard.checked(checked, True)
    assert heard.to_check(CURRENT) is None                      # checked: once,
    heard.hear(PLANNED, PROPOSER, CURRENT, PROPOSER)            # even when said again
    assert heard.to_check(CURRENT) is None
    assert heard.heard(CURRENT, checked=True) == PLANNED

    other = CURRENT.with_member(member(5))
    heard.hear(other, PROPOSER, CURRENT, PROPOSER)              # a new plan is checked anew
    assert heard.heard(CURRENT, checked=True) is None
    checked = heard.to_check(CURRENT)
    assert checked == other
    heard.checked(checked, False)
    assert heard.heard(CURRENT) is None                         # refused: followed no more,
    assert not heard.hear(other, PROPOSER, CURRENT, PROPOSER)   # even when said again
    assert heard.heard(CURRENT) is None


def test_the_end_of_a_check_of_a_plan_since_replaced_changes_nothing():
    heard = JoinPlans()
    heard.hear(PLANNED, PROPOSER, CURRENT, PROPOSER)
    checked = heard.to_check(CURRENT)
    other = CURRENT.with_member(member(5))
    heard.hear(other, PROPOSER, CURRENT, PROPOSER)
    heard.checked(checked, False)
    assert heard.heard(CURRENT) == other
    assert heard.to_check(CURRENT) == other
