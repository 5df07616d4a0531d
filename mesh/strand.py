"""A member stranded by its watchers' silence: how every member judges it, and how its lease stays honest.

In a map with watchers (mesh/watch.py) a member is declared dead by a majority of its 8
watchers, and its write lease counts itself and 4 of them. A member that crashed together with
4 or more of its watchers (5 neighbours in id order, or a third of the cluster at random: a zone)
was never declared dead: from outside it looked like a cut that left it its lease with 4 watchers
on its side, and its slots waited for the operator's CLUSTER FORGET on every member.

What tells the two apart is the rest of the map. A cut-off member cannot be heard by a majority
of the whole map; a crashed one cannot either, but a crashed one holds no lease. So:

- **Its lease (`Stranding`).** A member one of whose watchers gave it no evidence (heard and
  echoed, mesh/lease.py) for STRANDED_AFTER node timeouts is *stranded*: until it is not, its
  write lease also needs a majority of the whole map (and of the map it voted for, if it did) to
  have answered its roll call (`RollCall`, `RollAnswer`: the same evidence as an echo, from every
  member) within the lease's window. It
  calls the roll, to every member, from a node timeout of a watcher's silence on, so that the
  answers are in before it needs them. It stays stranded (sticky) until every watcher gives it
  evidence within a node timeout again and the whole map's majority answers: a watcher's silence
  that comes and goes does not let it slip out unseen.
- **Its verdict (`FarSilence`).** Every member reads the watchers' reports (they ride in every
  heartbeat, and a watcher holding a watched member suspect sends a heartbeat to every member
  each RETELL meanwhile, so that each report stays fresh everywhere). Once a watcher that watches the
  member in every map it may hold (Membership.pinned_groups) has reported it suspect, freshly,
  for LISTEN_AFTER node timeouts, the member must be stranded where it is, if it is anywhere: that
  watcher heard nothing from it since, so its evidence there is that old. Every member then
  listens for it (its roll calls, its heartbeats) for one more node timeout; a member that hears
  nothing holds it dead and tells every member, and the proposer proposes a map without it only
  once a majority of the map holds it so (Mesh._changes: a map once voted for is carried to its
  end, so a proposer deaf to a member must not start one alone).
  A majority that did not hear it means it holds no majority's answers, so no lease: the same
  argument as the watchers' (mesh/watch.py), with the whole map as the group.

Hearing the member (anything it says) starts the wait over, and a watcher's report that is not
renewed within REPORT_FRESH node timeouts ends it (timed from when it may have arrived, after a
stall): a member heard again must not be judged on reports made before. The time a member is
known to hold the map it is judged by bounds how long it has had its watchers (`held`): its
evidence is counted from when a watcher became one, so that a map that gives it a new watcher
does not strand it.

The map its lease counts must be the map that removes it: a majority of one map and a majority
of another can be disjoint. So a member is judged so only when it is known to hold our map or to
have voted for it (then its lease counts that map's majority too), or when the maps it may hold
are near enough ours that any two majorities meet (Mesh._majorities_meet); each new map takes the
verdicts back (Membership.revoke_unheard), to be reached anew under it; and the proposer holds
back the removal of members dead by their watchers while such a verdict is on its way
(`FarSilence.awaited`), so that a correlated crash goes in one map instead of leaving the rest
pinned to the map before. Only a member that holds the caller alive, in its map and not removed
by its own vote, answers a roll call; nobody echoes a member its vote removes, or one its map
removed that still holds a map with itself in it. A process that restarts a member starts
stranded (`Stranding(restarted=True)`). (Three reviews found the races these close, each a split
brain in the simulation: tests/unit/test_mesh_strand_sim.py replays the first three.)

A crash of a member with 5 of its 8 watchers is then agreed in about 4 node timeouts and a ballot
(12-13 s at the default 3 s) instead of never; a member with all 8 of its watchers gone is still
stuck for good (no watcher is left to report it), and the warning of Mesh._name_stuck stands.

The cost, while it lasts: a reporting watcher's heartbeat to every member each RETELL, and a
stranded member's roll call to every member each CALL_EVERY, answered by each (N messages in for
it, one out for each of the others). Both last as long as the silence: for good where a member
all of whose watchers died is waiting for the operator (its neighbours stay stranded), or where
a closed mesh (no relays) has a one-way broken link to a watcher.

Small maps (everyone watches everyone) need none of this: their lease already counts a majority
of the whole map.

Pure: node ids and instants in, decisions out (Mesh does the I/O).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

# A watcher silent for this many node timeouts strands the member (its lease then needs the
# whole map). Larger than a death takes (a node timeout and a ballot: the map drops a dead
# watcher first), smaller than LISTEN_AFTER + 1, by half a node timeout of slack.
STRANDED_AFTER: Final = 2.5
# Members listen for a member reported suspect this long by one of its firm watchers...
LISTEN_AFTER: Final = 2.0
# ... and hold it dead after one more node timeout in which they did not hear it.
LISTEN_FOR: Final = 1.0
# A watcher's report counts while renewed this often: it sends one to every member each RETELL
# (with its quiet heartbeat, 1 s at the default 3 s), so one may be lost; two lost start the wait
# over. Less than a node timeout, the least gap between its last report before it
# heard the member again and its first after suspecting it anew, by a quarter of one for delays;
# and a watcher that heard the member within 1.5 node timeouts of the wait's start (later, the
# member is stranded, and stays so) is noticed 0.75 before the verdict.
REPORT_FRESH: Final = 0.75
RETELL: Final = 1 / 3
# The roll is called this often while it is needed.
CALL_EVERY: Final = 1 / 3
# The proposer waits for a verdict on silence up to this long after it is due before it removes
# members dead by their watchers (FarSilence.awaited).
SETTLE: Final = 0.5


class Stranding:
    """One member's own view: whether its lease must also rest on a majority of the whole map."""

    __slots__ = ("node_timeout_s", "since", "_watcher_since", "_restarted")

    def __init__(self, node_timeout_s: float, restarted: bool = False) -> None:
        """`restarted`: this process took over a member's id and map from its data directory.
        It starts stranded, with its first watchers: the process before may have been stranded
        (cut off with some of its watchers, its silence judged by the others), which a new
        process cannot know; counted afresh, its watchers' silence would strand it only 2.5
        node timeouts later, and meanwhile those on its side gave it a lease (a review: writable
        for 2.3-2.5 s after a restart while the majority's map had removed it)."""
        self.node_timeout_s = node_timeout_s
        self.since: float | None = None          # stranded since; None: not stranded
        self._watcher_since: dict[str, float] = {}
        self._restarted = restarted

    def watchers(self, group: Iterable[str] | None, now: float) -> None:
        """This member's watchers in the map it holds, on every map it adopts (None: a small map,
        or none: nothing to strand it, and its lease counts the whole map already)."""
        restarted, self._restarted = self._restarted, False
        if group is None:
            self._watcher_since.clear()
            self.since = None
            return
        if restarted:
            self.since = now
        kept = {watcher: self._watcher_since.get(watcher, now) for watcher in group}
        self._watcher_since = kept

    def _ages(self, now: float, evidence: Mapping[str, float]) -> list[float]:
        return [now - max(evidence.get(watcher, float("-inf")), became)
                for watcher, became in self._watcher_since.items()]

    def judge(self, now: float, evidence: Mapping[str, float], whole_map_answers: bool) -> bool:
        """Whether this member is stranded now. `evidence`: each watcher's (the older of when it
        was last heard and when the heartbeat it echoed last was sent, -inf: none);
        `whole_map_answers`: a majority of the whole map gave evidence within the lease's window."""
        ages = self._ages(now, evidence)
        if self.since is None:
            if any(age > STRANDED_AFTER * self.node_timeout_s for age in ages):
                self.since = now
        elif whole_map_answers and all(age <= self.node_timeout_s for age in ages):
            self.since = None
        return self.since is not None

    def calling(self, now: float, evidence: Mapping[str, float]) -> bool:
        """Whether to call the roll: stranded, or a watcher silent for a node timeout already."""
        return self.since is not None or any(age > self.node_timeout_s for age in self._ages(now, evidence))


class FarSilence:
    """Every member's side: which members, reported by their watchers for long, nobody hears."""

    __slots__ = ("node_timeout_s", "_since", "_held_since", "_spoke")

    def __init__(self, node_timeout_s: float) -> None:
        self.node_timeout_s = node_timeout_s
        # member -> when this run of fresh reports began, or it was last heard since
        self._since: dict[str, float] = {}
        # member -> when this node learned which map it holds (a heartbeat naming it, a vote on it)
        self._held_since: dict[str, float] = {}
        # members heard since their reports began: alive somewhere, no verdict expected soon
        self._spoke: set[str] = set()

    def held(self, member: str, now: float) -> None:
        """This node just learned that `member` holds another map than it knew (or its first)."""
        self._held_since[member] = now

    def heard(self, member: str, now: float) -> None:
        """`member` spoke (a heartbeat, a roll call): the wait for its silence starts over."""
        if member in self._since:
            self._since[member] = now
            self._spoke.add(member)

    def forget(self, member: str) -> None:
        self._since.pop(member, None)
        self._held_since.pop(member, None)
        self._spoke.discard(member)

    def restart(self, member: str) -> None:
        """Judge `member` anew: its reports count from the next one (a new map, Membership.revoke_unheard)."""
        self._since.pop(member, None)
        self._spoke.discard(member)

    def awaited(self, now: float) -> bool:
        """Whether a verdict may be on its way here: a member reported (and not dead here), whose
        map is known, and whose verdict would be due within SETTLE node timeouts from now. The
        proposer holds back the removal of members dead by their watchers meanwhile
        (Mesh._propose): removed first, they left the others pinned to the map before, where
        their verdict may not be safe (Mesh._majorities_meet)."""
        timeout = self.node_timeout_s
        for member, since in self._since.items():
            held = self._held_since.get(member)
            if held is None or member in self._spoke:
                continue    # (one heard meanwhile, say a one-way broken link's, would hold removals back for good)
            if now < self._due(since, held) + SETTLE * timeout:
                return True
        return False

    def judge(self, now: float, reported: Iterable[str]) -> list[str]:
        """The members to hold dead now, of those `reported` suspect, freshly, by a watcher that
        watches them in every map they may hold. Reports that stop end the wait."""
        reported = set(reported)
        for member in [m for m in self._since if m not in reported]:
            del self._since[member]
            self._spoke.discard(member)
        silent = []
        for member in sorted(reported):
            since = self._since.setdefault(member, now)
            held = self._held_since.get(member)
            if held is not None and now >= self._due(since, held):  # (map not known here: no verdict)
                silent.append(member)
        return silent

    def _due(self, since: float, held: float) -> float:
        """When a member reported since `since`, and known since `held` to hold the map it is
        judged by, is held dead if not heard meanwhile: listened for from LISTEN_AFTER into the
        reports, and from STRANDED_AFTER and half a timeout's slack after `held` (its evidence is
        counted from when a watcher became one, at the latest when it took that map), for
        LISTEN_FOR."""
        timeout = self.node_timeout_s
        listening_from = max(since + LISTEN_AFTER * timeout, held + (STRANDED_AFTER + 0.5) * timeout)
        return listening_from + LISTEN_FOR * timeout
