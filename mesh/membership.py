"""Track each peer's liveness (alive -> suspect -> dead) from heartbeats and the local clock.

A pure state machine in the sans-IO style: the bus feeds it heartbeats and
`tick(now)` with `now` from `time.monotonic()`, and it returns events. It never
reads the clock or a peer's timestamp.

- A peer not heard from for `node_timeout_s` becomes *suspect* in this node's view (up to
  five times as long while this node finds itself running late: mesh/awareness.py; twice
  as long for one outside a map with watchers, a newcomer: `OUTSIDE_SILENCE_FACTOR`).
- Suspicion spreads: every heartbeat carries the sender's member list with states.
  A suspect becomes *dead* only when a majority of the live members (this node
  included, the suspect excluded) report it suspect or dead at its current
  incarnation, as Redis turns PFAIL into FAIL. One slow link cannot kill a node.
  In a map with watchers (mesh/watch.py) it is a majority of all its watchers, those
  of the map it was last heard holding (`pinned`), dead ones included; for a member
  outside the map, of the map members nearest its id (`watchers_of`).
- *Incarnation* orders claims about a member. A member that finds itself
  reported suspect or dead bumps its incarnation, which voids those reports
  (refutation). A dead member only comes back with an incarnation above the one
  it died at, so a node paused past its death must notice and refute first.

What a heartbeat carries (`gossip`): every member this node holds suspect or
dead (the reports above are read from them, so they travel in every
heartbeat until they change), and the *news*: members learned or whose state or
incarnation changed within the last `news_s`. Alive members with nothing new
are left out, and the whole list goes only now and then (the bus's roster), for
a member that missed news: a member list in every heartbeat made each node
decode N entries from each of N peers four times a second, the cost that grew
with the square of the cluster (README, "How the mesh scales").
A receiver takes a heartbeat's list as the sender's suspicions, whole; its
alive entries only teach members and incarnations.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Callable, Collection, Final, Iterable, Union

from mesh import watch as watch_rules
from mesh.messages import Gossip, Heartbeat, State
from mesh.slotmap import Member

log = logging.getLogger(__name__)

# A newcomer (a node outside a map with watchers) is suspected after twice the silence a
# member is. It holds no slots and no write lease, so its death moves nothing but its
# admission, and a suspected one is not admitted anyway (Mesh.joiners). But a newcomer is a
# process starting up on a machine busy with the join it asked for: at 100 members joining
# 10 at a time on two cores, newcomers ran late again and again (their own timer said so), and
# 76 nodes were declared dead, most of them newcomers, each verdict and each refutation news
# for every member. Members keep the node timeout: their lease counts on it (mesh/lease.py).
# A newcomer silent for more than a node timeout is not admitted meanwhile (Mesh._changes): as a
# member, its watchers (the same eight) would suspect it at once.
OUTSIDE_SILENCE_FACTOR: Final = 2.0


@dataclass(frozen=True, slots=True)
class Peer:
    """This node's view of one other member."""

    member: Member
    state: str
    incarnation: int
    heard_at: float             # monotonic instant of the last heartbeat (or of learning of it)
    state_at: float             # monotonic instant of the last state change
    seq: int = -1               # last sequence number accepted from it
    dead_incarnation: int = -1  # incarnation it was declared dead at
    changed_at: float = float("-inf")   # learned, or its state or incarnation changed: news until news_s later
    patience_until: float = float("-inf")   # until first heard, its silence counts from here if later (learn())
    told_at: float = float("-inf")  # the last change of it this node tells every member of (has_news)
    reported: bool = False          # this node told every member it doubts it, since it was last alive


@dataclass(frozen=True, slots=True)
class Joined:
    member: Member


@dataclass(frozen=True, slots=True)
class Suspected:
    node_id: str
    recounted: bool = False     # (held dead here, until a new map's watchers did not all say so: revisit)


@dataclass(frozen=True, slots=True)
class Died:
    node_id: str
    removed_by_map: bool = False    # (not voted here: a committed map removed it, see left_the_map)
    by_operator: bool = False       # (not voted here: CLUSTER FORGET of a suspect member)
    unheard_by_all: bool = False    # (not voted here: stranded, and not heard here, mesh/strand.py)


@dataclass(frozen=True, slots=True)
class Recovered:
    node_id: str


@dataclass(frozen=True, slots=True)
class Left:
    node_id: str


@dataclass(frozen=True, slots=True)
class Refuted:
    incarnation: int


Event = Union[Joined, Suspected, Died, Recovered, Left, Refuted]


@dataclass(slots=True)
class Membership:
    """One node's view of every member it knows, itself included by incarnation only."""

    me: Member
    node_timeout_s: float
    incarnation: int = 0
    peers: dict[str, Peer] = field(default_factory=dict)
    # reports[reporter][target] = incarnation at which reporter holds target suspect/dead.
    reports: dict[str, dict[str, int]] = field(default_factory=dict)
    # reports_at[reporter]: when its latest heartbeat with reports was taken (firmly_reported)
    reports_at: dict[str, float] = field(default_factory=dict)
    # deaths_reported[reporter][target]: the incarnation at which it holds target dead (held_dead_by)
    deaths_reported: dict[str, dict[str, int]] = field(default_factory=dict)
    stale: int = 0              # heartbeats dropped as out of order or from the dead past
    # members that announced a graceful leave, and when (their removal is paced, see bus.py)
    left_at: dict[str, float] = field(default_factory=dict)
    # this node is leaving: it no longer refutes being held dead (it decides when to stay)
    leaving: bool = False
    # Each map member's watchers (mesh/watch.py), or None: everyone watches everyone. A member
    # is suspected on silence only by its watchers, and dead once a majority of them suspect it.
    watchers: dict[str, frozenset[str]] | None = None
    # Their ids in order (the map's members), for the watchers of a member outside the map: the
    # map members nearest its id (watch.watchers_outside), kept per map in `_outside_groups`.
    map_ids: tuple[str, ...] = ()
    # peers this node does not listen to at all (other joiners, while it holds no cluster map)
    unheard: frozenset[str] = frozenset()
    # members a committed map removed that are not dead here yet (mapped_out)
    mapped_out: set[str] = field(default_factory=set)
    # Members last heard holding another map than this node's: their watchers under that map
    # (the bus keeps it, `pin`), or none (an empty set) when that map is not known here: no
    # verdict then. Their lease counts those watchers, so their death is theirs to decide: a
    # newer map's watchers may never have heard them (a partition's far side).
    pinned: dict[str, frozenset[str]] = field(default_factory=dict)
    # A pinned member's watchers in each map it may hold (the one it was heard holding and each
    # since, Mesh._pin): it is dead once a majority of every one of them suspects it, so that
    # its lease fails in whichever it holds; `pinned` is their union (who watches it).
    pinned_groups: dict[str, tuple[frozenset[str], ...]] = field(default_factory=dict)
    # Members dead here by a vote (_declare_dead), not by a leave, a map or the operator's word:
    # each new map counts that vote again (revisit).
    voted_dead: set[str] = field(default_factory=set)
    # Members dead here on their own silence while stranded (hold_dead_unheard): each new map
    # takes that back (revoke_unheard), since the watchers it was judged by may have changed.
    unheard_dead: set[str] = field(default_factory=set)
    # Indexes kept in step with `peers` (every write goes through _put or _drop), so that the
    # timer's work each tick follows the members in doubt and the watched ones, not the map:
    # walking every peer at every tick was 1.7 ms of CPU a second per member at 300 simulated
    # members and 3.4 at 1,000 (README, "How the mesh scales").
    doubted: set[str] = field(default_factory=set)          # peers suspect or dead here
    changed_last: float = float("-inf")                     # the latest changed_at of a peer
    told_last: float = float("-inf")                        # the latest told_at of a peer
    _watched: set[str] | None = None                        # watches() of each peer; None: to count
    _outside_groups: dict[str, frozenset[str]] = field(default_factory=dict)  # watchers_of() outside the map

    def _put(self, node_id: str, peer: Peer, tell: bool | None = None) -> None:
        """Store a peer's record and keep the indexes in step (a new peer changes who is watched).

        A change of it (a new `changed_at`) is this node's to tell every member (`tell`; None:
        if this node watches it, see has_news)."""
        known = self.peers.get(node_id)
        if known is None:
            self._watched = None
        if (known is None or peer.changed_at != known.changed_at) and peer.changed_at > peer.told_at and (
                self.watches(node_id) if tell is None else tell):
            peer = replace(peer, told_at=peer.changed_at, reported=peer.reported or peer.state != State.ALIVE)
            if peer.told_at > self.told_last:
                self.told_last = peer.told_at
        self.peers[node_id] = peer
        if peer.state == State.ALIVE:
            self.doubted.discard(node_id)
        else:
            self.doubted.add(node_id)
        if peer.changed_at > self.changed_last:
            self.changed_last = peer.changed_at

    def _drop(self, node_id: str) -> None:
        """Stop tracking a peer, its reports included."""
        peer = self.peers.pop(node_id)
        self.reports.pop(node_id, None)
        self.reports_at.pop(node_id, None)
        self.deaths_reported.pop(node_id, None)
        self.unheard_dead.discard(node_id)
        self.doubted.discard(node_id)
        self._outside_groups.pop(node_id, None)
        if self._watched is not None:
            self._watched.discard(node_id)
        if peer.changed_at >= self.changed_last:
            self.changed_last = max((p.changed_at for p in self.peers.values()), default=float("-inf"))
        if peer.told_at >= self.told_last:
            self.told_last = max((p.told_at for p in self.peers.values()), default=float("-inf"))

    def watched(self) -> set[str]:
        """The peers this node watches (watches()), counted again only when the watchers, the
        pinned members, the unheard or the peers themselves changed."""
        if self._watched is None:
            self._watched = {node_id for node_id in self.peers if self.watches(node_id)}
        return self._watched

    def learn(self, member: Member, now: float, patience_s: float = 0.0, tell: bool | None = None) -> list[Event]:
        """Start tracking a member heard of indirectly (member list, map, CLUSTER MEET, its hello).

        `patience_s`: more time before its silence counts (a hello comes before its sender's
        start-up is done: Mesh._hello). `tell`: whether every member is to hear of it from this
        one (None: if this node watches it); yes for a hello through an address the operator
        gave (--join, CLUSTER MEET), which may have reached this node alone."""
        if member.node_id == self.me.node_id or member.node_id in self.peers:
            return []
        self._put(member.node_id, Peer(member, State.ALIVE, 0, now, now, changed_at=now,
                                       patience_until=now + patience_s), tell)
        log.info("member learned node=%s peer=%s", self.me.node_id[:8], member.node_id[:8])
        return [Joined(member)]

    def heartbeat(self, beat: Heartbeat, now: float) -> list[Event]:
        """Take in a heartbeat heard from its sender (on its own link, or through a relay: mesh/links.py)."""
        if beat.sender == self.me.node_id:
            return []
        events: list[Event] = []
        peer = self.peers.get(beat.sender)
        if peer is None:
            if beat.me is None:     # a quiet heartbeat names no address: heard of too soon, or forgotten
                self.stale += 1
                return self._check_self(beat.members)
            events += self.learn(beat.me, now)
            peer = self.peers[beat.sender]
        if peer.state == State.DEAD and beat.incarnation <= peer.dead_incarnation:
            # It was declared dead at this incarnation: until it refutes, it stays dead.
            self.stale += 1
            events += self._check_self(beat.members)
            return events
        if beat.incarnation == peer.incarnation and beat.seq <= peer.seq:
            self.stale += 1
            return events
        revived = peer.state != State.ALIVE
        outbid = beat.incarnation > peer.incarnation
        # (Revived: told if this node told every member it doubted it, a report the others keep
        # until its next word (a watcher then may watch it no more: a map admitted a member
        # beside it, review), or if it watches it. A new incarnation alone is not, in a big map:
        # the member's own heartbeats told every member, has_news.)
        self._put(beat.sender, replace(
            peer, member=peer.member if beat.me is None else beat.me, incarnation=max(peer.incarnation, beat.incarnation),
            heard_at=now, seq=beat.seq, state=State.ALIVE, patience_until=float("-inf"),    # (heard: no more)
            state_at=now if revived else peer.state_at, reported=False,
            changed_at=now if revived or outbid else peer.changed_at),
            tell=(True if peer.reported else None) if revived else self.watchers is None)
        if revived:
            self.left_at.pop(beat.sender, None)     # it stayed after all
            self.voted_dead.discard(beat.sender)    # (a later death by leave or operator is no vote)
            self.unheard_dead.discard(beat.sender)
            log.info("member alive node=%s peer=%s incarnation=%d",
                     self.me.node_id[:8], beat.sender[:8], beat.incarnation)
            events.append(Recovered(beat.sender))
        reported = {g.member.node_id: g.incarnation for g in beat.members if g.state != State.ALIVE}
        # The sender's suspicions changed, or it came back (the electorate grew): votes to count
        # again at once. A sender repeating its report (a dead member stays in every heartbeat
        # until it is forgotten) moved nothing, and the O(N) count is skipped: after a death,
        # every member's heartbeat went to every member with the same report, N^2 counts of
        # O(N) each per interval. What else a death depends on (this node's own suspicions,
        # deaths and leaves shrinking an electorate) is counted again by tick(), each interval.
        recount = revived or reported != self.reports.get(beat.sender, {})
        if reported:
            self.reports[beat.sender] = reported
            self.reports_at[beat.sender] = now
        else:
            self.reports.pop(beat.sender, None)
            self.reports_at.pop(beat.sender, None)
        deaths = {g.member.node_id: g.incarnation for g in beat.members if g.state == State.DEAD}
        if deaths:
            self.deaths_reported[beat.sender] = deaths
        else:
            self.deaths_reported.pop(beat.sender, None)
        for gossip in beat.members:
            # A member others hold dead is not news: it would only come back to die again.
            # One first heard of here from another's list gets the patience a hello gets: the SUB
            # this node opens to it now takes its time to be heard through, and the member itself
            # may still be starting (Mesh._hello). Not one the list holds suspect: its silence began.
            # (The sender told every member of it: not this node's news to tell again, in a big map.)
            if gossip.state != State.DEAD:
                events += self.learn(gossip.member, now, patience_s=self.node_timeout_s
                                     if gossip.state == State.ALIVE else 0.0, tell=self.watchers is None)
        events += self._check_self(beat.members)
        if recount:
            events += self._declare_dead(now)
        return events

    def stay(self) -> None:
        """Take back a leave announced earlier: the next heartbeats outbid it."""
        self.incarnation += 1

    def leave(self, node_id: str, incarnation: int, now: float) -> list[Event]:
        """A member announced it is stopping: it is dead at once, nobody needs to vote on its timeout."""
        peer = self.peers.get(node_id)
        if peer is None or peer.state == State.DEAD or incarnation < peer.incarnation:
            return []
        self._put(node_id, replace(peer, state=State.DEAD, state_at=now, changed_at=now,
                                   dead_incarnation=max(peer.incarnation, incarnation)))
        self.reports.pop(node_id, None)
        self.left_at[node_id] = now
        self.voted_dead.discard(node_id)
        log.info("member left node=%s peer=%s", self.me.node_id[:8], node_id[:8])
        return [Left(node_id)]

    def forget_dead(self, now: float, keep: Collection[str], after_s: float) -> list[str]:
        """Stop tracking members dead for `after_s` and not in `keep` (the committed map); return their ids.

        Without this, churn grows the member list (and every heartbeat) without bound.
        A forgotten member that speaks again is learned afresh, like any newcomer.
        """
        peers = self.peers
        gone = [node_id for node_id in sorted(self.doubted)
                if peers[node_id].state == State.DEAD and now - peers[node_id].state_at > after_s
                and node_id not in keep]
        for node_id in gone:
            self._drop(node_id)
            log.info("member forgotten node=%s peer=%s", self.me.node_id[:8], node_id[:8])
        return gone

    def silent(self, node_id: str) -> bool:
        """Not dead here, and suspect here or reported suspect by a live member.

        (Not "unheard for node_timeout": in a big map a member hears only its watched
        members' quiet heartbeats, so every other member would pass for silent.)"""
        peer = self.peers.get(node_id)
        return peer is not None and peer.state != State.DEAD and (
            peer.state == State.SUSPECT or node_id in self._suspicions())

    def declare_dead(self, node_id: str, now: float) -> list[Event]:
        """The operator says a silent member is dead (CLUSTER FORGET): no vote here."""
        peer = self.peers.get(node_id)
        if peer is None or not self.silent(node_id):
            return []
        self._put(node_id, replace(peer, state=State.DEAD, state_at=now, changed_at=now,
                                   dead_incarnation=peer.incarnation))
        self.voted_dead.discard(node_id)
        log.warning("member dead on the operator's word node=%s peer=%s incarnation=%d",
                    self.me.node_id[:8], node_id[:8], peer.incarnation)
        return [Died(node_id, by_operator=True)]

    def firmly_reported(self, now: float, fresh_s: float) -> set[str]:
        """The map members held suspect or dead, at their current incarnation, by a live watcher
        that watches them in every map they may hold (pinned_groups, or our map's watchers), in a
        report taken within `fresh_s`, and not dead here: those that may be stranded by their
        watchers' silence (mesh/strand.py). None in a small map."""
        watchers = self.watchers
        if watchers is None or not self.reports:
            return set()
        firm: set[str] = set()
        peers = self.peers
        for target, reporters in self._suspicions().items():
            peer = peers.get(target)
            if peer is None or peer.state == State.DEAD:
                continue
            groups = self.pinned_groups.get(target)
            if groups is None:
                group = watchers.get(target)
                if group is None:
                    continue    # (outside the map: a newcomer holds no lease)
                groups = (group,)
            if not groups:
                continue        # (pinned to a map not known here: no verdict here)
            steady = frozenset.intersection(*groups)
            if any(reporter in steady and now - self.reports_at.get(reporter, float("-inf")) <= fresh_s
                   for reporter in reporters):
                firm.add(target)
        return firm

    def hold_dead_unheard(self, node_id: str, now: float) -> list[Event]:
        """Hold dead a member stranded by its watchers' silence that this node did not hear
        either (mesh/strand.py): no vote here; a map without it needs a majority that did the same."""
        peer = self.peers.get(node_id)
        if peer is None or peer.state == State.DEAD:
            return []
        # (told to every member: a map without it waits until a majority of the map holds it
        # dead so, held_dead_by, since a proposal once voted is carried to its end)
        self._put(node_id, replace(peer, state=State.DEAD, state_at=now, changed_at=now,
                                   dead_incarnation=peer.incarnation), tell=True)
        self.voted_dead.discard(node_id)
        self.unheard_dead.add(node_id)
        log.warning("member dead node=%s peer=%s incarnation=%d: its watchers reported it for long "
                    "and this node did not hear it either", self.me.node_id[:8], node_id[:8], peer.incarnation)
        return [Died(node_id, unheard_by_all=True)]

    def held_dead_by(self, node_id: str, members: Collection[str]) -> int:
        """How many of `members` (this node included) hold `node_id` dead at its current
        incarnation, by what their heartbeats last said."""
        peer = self.peers.get(node_id)
        if peer is None:
            return 0
        count = 1 if peer.state == State.DEAD and self.me.node_id in members else 0
        peers = self.peers
        for reporter, deaths in self.deaths_reported.items():
            reporter_peer = peers.get(reporter)
            if (reporter in members and reporter_peer is not None and reporter_peer.state != State.DEAD
                    and deaths.get(node_id, -1) >= peer.incarnation):
                count += 1
        return count

    def revoke_unheard(self, members: Collection[str], now: float) -> list[str]:
        """Take back, on a new map, each death held here on a stranded member's silence that the
        map still holds: suspect again, judged anew (mesh/strand.py). Its watchers may be others
        now, and a member behind that kept such a verdict removed one that the new map gave
        watchers all on its side (a review's race: both sides served it)."""
        revoked = []
        for node_id in sorted(self.unheard_dead):
            peer = self.peers.get(node_id)
            if peer is None or peer.state != State.DEAD:
                self.unheard_dead.discard(node_id)
            elif node_id in members:
                self.unheard_dead.discard(node_id)
                self._put(node_id, replace(peer, state=State.SUSPECT, state_at=now, changed_at=now), tell=False)
                log.info("member suspect again node=%s peer=%s: a new map, its silence is judged anew",
                         self.me.node_id[:8], node_id[:8])
                revoked.append(node_id)
        return revoked

    def forget(self, node_id: str) -> bool:
        """CLUSTER FORGET: stop tracking one dead member now (forget_dead does it after a while).

        The caller checks that the committed map no longer holds it. False if it is not dead here.
        """
        peer = self.peers.get(node_id)
        if peer is None or peer.state != State.DEAD:
            return False
        self._drop(node_id)
        log.info("member forgotten on request node=%s peer=%s", self.me.node_id[:8], node_id[:8])
        return True

    def watch(self, watchers: dict[str, frozenset[str]] | None, now: float,
              unheard: frozenset[str] = frozenset()) -> None:
        """Take the watchers of a new map (and the peers not listened to); a peer this node starts
        to watch gets a node_timeout's grace: its heartbeats did not come here before, so its
        silence so far says nothing."""
        before = set(self.watched())
        if watchers is not self.watchers:
            self.map_ids = () if watchers is None else tuple(sorted(watchers))
            self._outside_groups.clear()
        self.watchers, self.unheard = watchers, unheard
        self._watched = None
        for node_id in sorted(self.watched() - before):
            peer = self.peers[node_id]
            if peer.state == State.ALIVE:
                self._put(node_id, replace(peer, heard_at=max(peer.heard_at, now)))

    def left_the_map(self, removed: Iterable[str], members: Collection[str]) -> None:
        """Take members a committed map removed: dead here once this node has not heard them
        for node_timeout, without a vote.

        A map removes a member only on a majority's word that it died or left, but this node
        may not have heard that word: in a map with watchers (mesh/watch.py) a death reaches
        the others as news, for a few heartbeats, and a member that missed them held the dead
        alive (as a slotless master in CLUSTER NODES, seen in a 48-member test) or suspect,
        in every heartbeat's list, for good. A removed member still heard here stays alive:
        it is still speaking (a partition's far side), and its own heartbeats decide.
        (One it did not watch before is watched from the map on, with watch()'s grace: it is
        buried up to node_timeout after the map.) `members` are the map's: one admitted again
        leaves this rule. The verdict is tick()'s, which the bus skips right after a stall:
        heartbeats read late must not bury anyone."""
        self.mapped_out.difference_update(members)      # (admitted again: a vote decides again)
        self.mapped_out.update(n for n in removed if n in self.peers and self.peers[n].state != State.DEAD)

    def _bury_mapped_out(self, now: float) -> list[Event]:
        events: list[Event] = []
        for node_id in list(self.mapped_out):
            peer = self.peers.get(node_id)
            if peer is None or peer.state == State.DEAD:
                self.mapped_out.discard(node_id)
            elif now - peer.heard_at > self.node_timeout_s:
                self.mapped_out.discard(node_id)
                self._put(node_id, replace(peer, state=State.DEAD, state_at=now, changed_at=now,
                                           dead_incarnation=peer.incarnation))
                log.warning("member dead node=%s peer=%s incarnation=%d (removed by the map)",
                            self.me.node_id[:8], node_id[:8], peer.incarnation)
                events.append(Died(node_id, removed_by_map=True))
        return events

    def pin(self, node_id: str, groups: tuple[frozenset[str], ...] | None, now: float) -> None:
        """`node_id` was heard holding an older map: its watchers in each map it may hold (None:
        it holds ours; empty: no verdict here), see `pinned_groups`. If this node starts to
        watch it, it gets the grace watch() gives."""
        if groups is None:
            self.pinned_groups.pop(node_id, None)
            watched_by = None
        else:
            self.pinned_groups[node_id] = groups
            watched_by = frozenset().union(*groups)
        if self.pinned.get(node_id) == watched_by:
            return
        watched_before = self.watches(node_id)
        if watched_by is None:
            del self.pinned[node_id]
        else:
            self.pinned[node_id] = watched_by
        watched_now = self.watches(node_id)
        if self._watched is not None and node_id in self.peers:
            if watched_now:
                self._watched.add(node_id)
            else:
                self._watched.discard(node_id)
        peer = self.peers.get(node_id)
        if peer is not None and peer.state == State.ALIVE and not watched_before and watched_now:
            self._put(node_id, replace(peer, heard_at=max(peer.heard_at, now)))

    def watchers_of(self, node_id: str) -> frozenset[str] | None:
        """Who watches `node_id` and reports on it: its watchers in our map, or, pinned, in each
        map it may hold, or, outside our map (a newcomer, one the map removed), the map members
        nearest its id, the watchers it would have as a member (None: everyone, in a small map).

        One outside the map holds no slots and no write lease (mesh/lease.py), so its death
        moves nothing but its admission: it is dead once a majority of those suspect it, as a
        member is, and it refutes to ask again."""
        pinned = self.pinned.get(node_id)
        if pinned is not None:
            return pinned
        watchers = self.watchers
        if watchers is None:
            return None
        group = watchers.get(node_id)
        if group is None:
            group = self._outside_groups.get(node_id)
            if group is None:
                group = self._outside_groups[node_id] = watch_rules.watchers_outside(self.map_ids, node_id)
        return group

    def watches(self, node_id: str) -> bool:
        """True if this node hears `node_id`'s every heartbeat (and so suspects it on silence)."""
        if node_id in self.unheard:
            return False
        watched_by = self.watchers_of(node_id)
        if watched_by is not None and not watched_by and self.watchers is not None:
            # (pinned to a map not known here: no verdict here, but its watcher in our map still
            # reports its own silence, which is all its report means to those who can judge)
            watched_by = self.watchers.get(node_id, watched_by)
        return watched_by is None or self.me.node_id in watched_by

    def revisit(self, now: float) -> list[Event]:
        """Count again, under the map just adopted (watch() and pin() done), each death this node
        voted: a member it no longer counts dead by its watchers there is suspect again.

        A verdict reached under one map may not hold under the next. A member that adopted a
        new map before this node heard it hold one counts its watchers there for its write lease
        (mesh/lease.py); if that map changed them, its old watchers' majority says nothing about
        the new group. Under a cut made as it adopted the map, the side behind it judged it by
        its old watchers, kept the verdict on adopting its map, and removed it while its lease
        held where it was: both sides served its slots (a review's race, 4 of 4 simulated seeds).
        Recounted, it is dead again only once a majority of every group it may count (its
        watchers in this map, or each of Mesh._pin's) suspects it. Small maps (everyone
        watches everyone) and members no longer in the map keep their verdict."""
        events: list[Event] = []
        suspicions: dict[str, set[str]] | None = None
        for node_id in sorted(self.voted_dead):
            peer = self.peers.get(node_id)
            if peer is None or peer.state != State.DEAD:
                self.voted_dead.discard(node_id)
                continue
            watched_by = self.watchers_of(node_id)
            if watched_by is None or (node_id not in self.pinned and (self.watchers is None
                                                                      or node_id not in self.watchers)):
                continue    # (small maps, and members outside the map: no lease to fail in it)
            if suspicions is None:
                suspicions = self._suspicions()
            suspecters = self._suspecters(node_id, peer, suspicions) & watched_by
            if _every_group_says_so(suspecters, self.pinned_groups.get(node_id, (watched_by,))):
                continue
            self.voted_dead.discard(node_id)
            self._put(node_id, replace(peer, state=State.SUSPECT, state_at=now, changed_at=now))
            log.warning("member suspect again node=%s peer=%s: the new map's watchers have not all "
                        "said it died", self.me.node_id[:8], node_id[:8])
            events.append(Suspected(node_id, recounted=True))
        return events

    def tick(self, now: float, silence_s: float | None = None) -> list[Event]:
        """Advance time: silent peers become suspect; well-reported suspects become dead.

        `silence_s`: how long a watched peer must be unheard to be suspected, node_timeout
        unless this node doubts its own timeliness (mesh/awareness.py), never less.
        """
        events: list[Event] = self._bury_mapped_out(now) if self.mapped_out else []
        silence_s = self.node_timeout_s if silence_s is None else max(silence_s, self.node_timeout_s)
        # (twice the node timeout, or this node's own lateness if longer: multiplied, the two
        # made up to 10 node timeouts before a crashed newcomer was found, a review)
        outside_s = max(silence_s, OUTSIDE_SILENCE_FACTOR * self.node_timeout_s)
        watchers = self.watchers
        # (only the watched: no one else is suspected on silence here)
        for node_id in sorted(self.watched()):
            peer = self.peers[node_id]
            limit_s = silence_s if watchers is None or node_id in watchers else outside_s
            if peer.state == State.ALIVE and now - max(peer.heard_at, peer.patience_until) > limit_s:
                self._put(node_id, replace(peer, state=State.SUSPECT, state_at=now, changed_at=now))
                log.info("member suspect node=%s peer=%s silent_s=%.2f",
                         self.me.node_id[:8], node_id[:8], now - peer.heard_at)
                events.append(Suspected(node_id))
        return events + self._declare_dead(now)

    def gossip(self, now: float | None = None, news_s: float = 0.0) -> tuple[Gossip, ...]:
        """Return the member list for the next heartbeat: the whole roster, or with `now`, suspicions and news.

        News is what changed within `news_s` before `now`; suspect and dead members
        are always in (a receiver replaces the sender's suspicions with each list).
        """
        peers = self.peers
        if now is None:
            listed: Iterable[str] = peers
        elif now - self.changed_last > news_s:
            listed = self.doubted      # (no news: only the members in doubt, without a walk of all)
        else:
            listed = [node_id for node_id, peer in peers.items()
                      if peer.state != State.ALIVE or now - peer.changed_at <= news_s]
        return tuple(Gossip(peer.member, peer.incarnation, peer.state) for peer in map(peers.__getitem__, sorted(listed)))

    def has_news(self, now: float, news_s: float) -> bool:
        """Whether a member was learned, or changed state or incarnation, within `news_s` before
        `now`, and this node is to tell every member of it (its heartbeats go to all meanwhile).

        Suspicions and deaths ride in every heartbeat (gossip()), but they are news only
        while recent: a dead member stays in the list until forgotten (10 node timeouts
        after leaving the map), and counting it as news sent every member's heartbeat,
        at every tick, to every member for that long (at 300 simulated members, 1,200
        messages a second in per member after one crash, against 16 idle).

        And in a big map, only what this node saw itself and the others need from it: its
        suspicion of a member it watches, silent here (its report: the verdicts count the
        watchers' reports), taking that report back (the member heard again: told by the
        member that told the suspicion, and by its watchers), or a member introduced to this
        node alone (a hello through an address the operator gave, `learn`). Not a death:
        each member counts it from the same reports, told already, and a death changes no
        report (suspect and dead count alike). Not a new incarnation alone: the member's own
        heartbeats told every member. Not a member learned from another's list or a map:
        every member read that where this node did. Said again by every member, a batch of 10
        newcomers (learned, suspected while they start, dead, refuted) had each member's every
        heartbeat go to every member for seconds: at 100 simulated members, 2,241 messages heard
        per member in 15 s, 1,696 now (mesh_sim.py --stalled-joins, README). The changes still
        ride in the heartbeats that go out anyway, to the watchers.
        """
        return now - self.told_last <= news_s

    def live(self) -> list[str]:
        """Return node ids not dead in this view, this node included."""
        return [self.me.node_id] + [n for n, p in self.peers.items() if p.state != State.DEAD]

    def unsuspected_test(self) -> Callable[[str], bool]:
        """A test of one member: alive in this view and reported suspect or dead by no live
        member (this node passes). The proposer is the first member of the map that passes.
        (Only a member's watchers suspect it on silence, and in a big map one may stay suspect
        for good without being declared dead (mesh/watch.py): the others must read its
        watchers' reports, or all would wait for it to propose.)"""
        suspicions = self._suspicions()
        me, peers = self.me.node_id, self.peers

        def unsuspected(node_id: str) -> bool:
            if node_id == me:
                return True
            peer = peers.get(node_id)
            return peer is not None and peer.state == State.ALIVE and node_id not in suspicions
        return unsuspected

    def reported_by_watchers_test(self) -> Callable[[str], bool]:
        """A test of one member: in a big map, reported suspect or dead at its current incarnation
        by one of its watchers (watchers_of), alive here or not. (Mesh.joiners: only a newcomer's
        watchers suspect it on silence, and the others read their reports; a report by a member
        that no longer watches it may stand for good, since its taking back goes to its own
        watchers only, so it is not read: review.)"""
        if self.watchers is None:
            return lambda node_id: False
        suspicions = self._suspicions()

        def reported(node_id: str) -> bool:
            reporters = suspicions.get(node_id)
            if not reporters:
                return False
            watched_by = self.watchers_of(node_id)
            return watched_by is not None and not reporters.isdisjoint(watched_by)
        return reported

    def heard_within(self, node_ids: Iterable[str], now: float) -> int:
        """Count the given members heard within node_timeout (this node always hears itself)."""
        count = 0
        for node_id in node_ids:
            peer = self.peers.get(node_id)
            if node_id == self.me.node_id or (
                    peer is not None and peer.state != State.DEAD
                    and now - peer.heard_at <= self.node_timeout_s):
                count += 1
        return count

    def state(self, node_id: str) -> str:
        if node_id == self.me.node_id:
            return State.ALIVE
        return self.peers[node_id].state

    def _suspicions(self) -> dict[str, set[str]]:
        """Return target -> live members (not this one) holding it suspect or dead at its current
        incarnation: one pass over the reports (asking per target walked every report for every
        member, O(N^2) on each heartbeat with news: most of a 100-member simulation's time)."""
        peers = self.peers
        result: dict[str, set[str]] = {}
        for reporter, suspects in self.reports.items():
            reporter_peer = peers.get(reporter)
            if reporter_peer is None or reporter_peer.state == State.DEAD:
                continue
            for target, incarnation in suspects.items():
                peer = peers.get(target)
                if target != reporter and peer is not None and incarnation >= peer.incarnation:
                    result.setdefault(target, set()).add(reporter)
        return result

    def _suspecters(self, target: str, peer: Peer, suspicions: dict[str, set[str]]) -> set[str]:
        """Return live members holding `target` suspect or dead at its current incarnation, this one included."""
        voters = set(suspicions.get(target, ()))
        if peer.state != State.ALIVE:
            voters.add(self.me.node_id)
        return voters

    def _declare_dead(self, now: float) -> list[Event]:
        events: list[Event] = []
        # The members live when the count began, the electorate of a member without watchers:
        # made only if one is doubted, from the members live now and those this count has
        # declared dead so far (so that the order of the count decides nothing: review).
        live: list[str] | None = None
        died: list[str] = []
        suspicions = self._suspicions()
        # (nobody doubts the others: no majority to count)
        for node_id in sorted(self.doubted.union(suspicions)):
            peer = self.peers[node_id]
            watched_by = self.watchers_of(node_id)
            if watched_by is None:
                if peer.state != State.SUSPECT:
                    continue
                if live is None:
                    live = self.live() + died
                electorate = [n for n in live if n != node_id]
                suspecters = self._suspecters(node_id, peer, suspicions)
            else:
                # Its watchers decide (mesh/watch.py), all of them: the electorate does not
                # shrink by the watchers held dead, since one held dead here may be alive where
                # the member is, and echo its heartbeats for its lease (a cut: mesh/watch.py).
                # A watcher that still hears it (this node, here) waits for its own silence.
                if peer.state == State.DEAD or (peer.state == State.ALIVE and self.me.node_id in watched_by):
                    continue
                suspecters = self._suspecters(node_id, peer, suspicions) & watched_by
            if watched_by is None:
                dead = len(suspecters) >= len(electorate) // 2 + 1
            else:
                # (a majority of each group: one pinned to several maps, or its watchers in ours;
                # none at all, a map not known here, is no verdict)
                dead = _every_group_says_so(suspecters, self.pinned_groups.get(node_id, (watched_by,)))
            if dead:
                # (not told in a big map: each member counts the same watchers' reports, which
                # went to every member, and a death changes no report, Membership.has_news)
                self._put(node_id, replace(peer, state=State.DEAD, state_at=now, changed_at=now,
                                           dead_incarnation=peer.incarnation), tell=self.watchers is None)
                self.voted_dead.add(node_id)
                died.append(node_id)
                log.warning("member dead node=%s peer=%s incarnation=%d",
                            self.me.node_id[:8], node_id[:8], peer.incarnation)
                events.append(Died(node_id))
        return events

    def _check_self(self, members: Iterable[Gossip]) -> list[Event]:
        """Refute reports of this node being suspect or dead by out-bidding their incarnation."""
        if self.leaving:
            return []
        for gossip in members:
            if gossip.member.node_id != self.me.node_id:
                continue
            doubted = gossip.state != State.ALIVE and gossip.incarnation >= self.incarnation
            if doubted or gossip.incarnation > self.incarnation:
                self.incarnation = gossip.incarnation + 1
                log.info("refuting node=%s incarnation=%d", self.me.node_id[:8], self.incarnation)
                return [Refuted(self.incarnation)]
        return []


def _every_group_says_so(suspecters: set[str], groups: tuple[frozenset[str], ...]) -> bool:
    """A majority of each group suspects the member (no group at all: no verdict)."""
    return bool(groups) and all(len(suspecters & group) >= len(group) // 2 + 1 for group in groups)
