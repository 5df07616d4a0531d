"""The plan for joiners: placed once, by the member that proposes, and said to every member and joiner.

Before a joiner is admitted, each member copies it, ahead of the switch, the slots it
leads that the map with the joiner gives it (hypercache/replication.py), and the joiner
counts in its heartbeats how much of its share it holds. Both need that map, the plan:
placing 10 newcomers on a 50-member ring is ~0.1 s of a quiet core (mesh/ring.py,
compiled). Every member used to place each batch itself, and again each time the set of
joiners changed: 508 placements in the nodes' logs while 60 nodes joined 10 at a time,
3.4 per member at the fifth batch, about half the machine's CPU until they formed.

Now the proposer places it (the map it will propose for those joiners, so its proposal
finds the placement made), says it to every member and joiner at once and again every
PLAN_AGAIN_S while it stands (a joiner connected after it was said, a message lost).
The others take a plan only from the member they hold to be the proposer, built on the
map they hold, adding members to it without removing any; they keep it, on that map, until
the proposer of the moment says another (a passing suspicion of the proposer does not tear
the copies ahead down). A member copies ahead to the plan's joiners it knows alive itself
(`followed`): one that died before its admission leaves the plan as it was.

A plan is advice, not a decision: a wrong one costs copies, never data. Still, a member
copies ahead by a plan only once its own check found that it follows the map, as
the voters check the proposal (election.follows). That
check used to place the join again, ~0.1 s of a core at 50 members on every member: placed
when the proposal came, it kept the voters past the proposer's patience (60 members joining
10 at a time: each ballot retried once, 77-81 s to form against 63-68); placed once the
plan stood a second, ahead of the copies, it was the slowest step of each batch (the whole
cluster placing at once at low priority, 5-7 s), and formation was no faster than with every
member planning itself. A join is now checked by its shape (`election.follows_as_a_join`,
`ring.joins_fairly`: who gives how many slots, exactly; primaries moving only to joiners;
replica loads within a bound; not where the pieces sit), in milliseconds, in the hub, as
the plan is heard (before anything reads it: a new plan unchecked for a moment had every
member close its copies to the joiners and start them again).
A plan whose shape fails is not followed, and costs no copy and no placement (a proposer
saying a new made-up plan every second would otherwise have every member place one every
second). The proposal's check falls back to placing the join again when the shape fails
(election.follows), so an honest join the shape check misjudged is still admitted, only
without copies ahead. (A joiner has no vote: it follows the plan that admits it
unchecked, to count what it holds.)

A joiner that hears no plan copies nothing ahead; the proposer admits it once its copy
stood still for a while (mesh/bus.py PRECOPY_PATIENCE_TIMEOUTS), and it pulls its slots
behind TRYAGAIN, as every join did before copies ahead. So does every join while a node
of an older version proposes, during a rolling upgrade: it says no plan.
"""
from __future__ import annotations

from typing import Mapping

from mesh.slotmap import Member, SlotMap

# how often the proposer says its plan again while the plan stands
PLAN_AGAIN_S = 1.0


def acceptable(planned: SlotMap, current: SlotMap, sender: str, proposer: str | None) -> bool:
    """True if `planned`, from `sender`, is a plan for joiners on `current` that this node may follow."""
    return (sender == proposer
            and planned.base_epoch == current.epoch and planned.epoch == current.epoch + 1
            and current.member_ids < planned.member_ids)


def followed(planned: SlotMap | None, current: SlotMap, alive: Mapping[str, Member], me: str,
             outside: bool) -> tuple[SlotMap | None, dict[str, Member]]:
    """What node `me` follows of the plan heard on `current`: the plan, and the joiners it copies to.

    Those are the plan's joiners this node knows alive (`alive`, as it knows them: a copy goes
    to the addresses the joiner gave it, not to those a plan names), itself too while it joins
    (`outside`): a joiner follows only a plan that admits it (it counts what it holds of
    that map), and a member no plan without a live joiner."""
    if planned is None or planned.base_epoch != current.epoch:
        return None, {}
    joiners = {member.node_id: alive.get(member.node_id, member) for member in planned.members
               if not current.has_member(member.node_id) and (member.node_id in alive or member.node_id == me)}
    if (me not in joiners) if outside else not joiners:
        return None, {}
    return planned, joiners


class JoinPlans:
    """One node's plans: the one it made as the proposer, to say, and the one it heard."""

    def __init__(self) -> None:
        self._made: SlotMap | None = None
        self._said_at = float("-inf")
        self._heard: SlotMap | None = None
        self._checked = False                   # the plan heard passed this node's check
        self._refused: SlotMap | None = None    # the last plan whose check failed (said again: ignored)

    @property
    def saying(self) -> bool:
        """A plan made here is said (until the map moves on, or `make(None)`)."""
        return self._made is not None

    def make(self, planned: SlotMap | None) -> None:
        """This node, proposing, placed `planned` (None: no joiners): it is said at the next tick."""
        if planned is not self._made and planned != self._made:
            self._made, self._said_at = planned, float("-inf")

    def to_say(self, current: SlotMap, now: float) -> SlotMap | None:
        """The plan to send now, if one on `current` is due (made or last said PLAN_AGAIN_S ago)."""
        made = self._made
        if made is None or made.base_epoch != current.epoch:
            self._made = None       # (the map moved on: a plan on an older one helps nobody)
            return None
        if now - self._said_at < PLAN_AGAIN_S:
            return None
        self._said_at = now
        return made

    def hear(self, planned: SlotMap, sender: str, current: SlotMap, proposer: str | None) -> bool:
        """Keep `planned` if acceptable; False if it was not."""
        if not acceptable(planned, current, sender, proposer) or planned == self._refused:
            return False
        if planned != self._heard:      # (not the same plan said again: checked anew)
            self._heard, self._checked = planned, False
        return True

    def to_check(self, current: SlotMap) -> SlotMap | None:
        """The plan heard on `current`, if this node has not checked it yet."""
        planned = self.heard(current)
        return planned if planned is not None and not self._checked else None

    def checked(self, planned: SlotMap, follows: bool) -> None:
        """This node checked `planned`: it follows the map, or it does not (followed no more)."""
        if self._heard is not planned:
            return      # (another plan came meanwhile: its own check is due)
        if follows:
            self._checked = True
        else:
            self._heard, self._refused = None, planned

    def heard(self, current: SlotMap, checked: bool = False) -> SlotMap | None:
        """The plan last heard from a proposer, if it was made on `current` (and, if `checked`,
        once this node's check found that it follows the map)."""
        heard = self._heard
        if heard is None or heard.base_epoch != current.epoch or (checked and not self._checked):
            return None
        return heard
