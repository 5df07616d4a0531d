"""Keep one node agreed with the cluster: heartbeats, membership events, map elections and adoption, and the status view.

The decisions are made by the pure cores (membership, election, adoption, ring,
slotmap); this module reads the clock, calls them, and sends and receives
messages through mesh/links.py, which holds the sockets (the XPUB, a SUB per
peer, CURVE pinning) and binds every message to the peer it came from.
Heartbeats go out on a timer, and map re-sends are rate-limited.

A map is adopted only as proven: tallied from a majority of the base map's
votes (mesh/election.py), or, for a node that missed them or is joining, once
enough members' own heartbeats say they hold it (mesh/adoption.py). A `Commit`
only delivers the map's content; on its own it changes nothing.

Timing defaults: a heartbeat every 250 ms; a peer silent for node_timeout
(3000 ms by default, `--node-timeout-ms`) becomes suspect, and dead as soon as
a majority's suspicion has spread with the next heartbeats, so detection takes
about node_timeout + 0.3 s (measured 2.3 s at 2000 ms). 3 s rides out ~12 lost
heartbeats, enough for a stalled hub on a loaded 2-core machine without false
alarms. The proposer retries a map proposal after node_timeout.

Cost as the cluster grows (README, "How the mesh scales"). In a map of more
than 9 members a member hears the quiet heartbeats of its 8 watchers only
(mesh/watch.py): its deaths, its write lease and the echoes are theirs. A
heartbeat carries suspicions and news, not the member list (the whole roster
goes to the watchers every 30 s, less often past 16 members), and one with
news goes to everyone, so a suspicion or a new member is known everywhere a
heartbeat later: news this member saw itself, not what it read in others'
(Membership.has_news), and a newcomer is suspected on silence by its 8
would-be watchers only. The SUB sockets still reach every member (idle, they
cost nothing: the publisher's topic filter drops what a SUB did not subscribe
to), since proposals, maps and PUBLISH go to all, bound to their sender by the link they come in on (in an open
mesh, a peer without a link of its own, or whose link fell silent, is heard
through two members that relay it: Mesh._hear_unlinked, mesh/links.py). A vote
goes to its proposer alone, which relays a majority's signatures to every member
in one certificate (mesh/votes.py): a ballot costs O(N) messages, not N x N.
"""
from __future__ import annotations

import collections
import logging
import math
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gevent
import gevent.pool

from mesh import adoption, balance, ballot, catchup, lease, strand, takeover, ticks, votes, watch
from mesh import election as election_rules
from mesh.awareness import MAX_SCORE, LocalHealth
from mesh.checks import Checks
from mesh.curve import MeshKeys
from mesh.election import Election, Ready
from mesh.links import CATCH_UP, MAPS, OUTSIDE, QUIET, PeerLinks, addressed
from mesh.membership import Died, Event, Joined, Left, Membership, Recovered, Refuted, Suspected
from mesh.placer import Placer, PlacerClosed, run_in_thread
from mesh.messages import (Certificate, Commit, Heartbeat, Leave, Message, Plan, Prepare, Promise, Proposal, Publish,
                           RollAnswer, RollCall, State, Vote, VoteKey, digest, echo_key, pack_slotmap,
                           unpack_slotmap)
from mesh.plans import JoinPlans
from mesh.relays import Relays
from mesh.strand import FarSilence, Stranding
from mesh.slotmap import Member, SlotMap

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 0.25
# A heartbeat with nothing new (no news, no map, not joining) goes this often only, a sixth of
# node_timeout between the timer's interval and a second: six chances to be heard before a
# watcher suspects (Redis Cluster pings each node every node_timeout / 2). The timer itself,
# its suspicions, lease and proposals, still runs every interval, and news goes out at once.
# Idle, most of a member's mesh cost is the quiet heartbeats it hears (one wake-up each):
# at the default 3 s timeout this halves them (mesh_cost.py, README "How the mesh scales").
QUIET_BEATS_PER_TIMEOUT = 6
QUIET_INTERVAL_MAX_S = 1.0
RECENT_EVENTS = 100
# A member dead this many node_timeouts and gone from the map is forgotten, links and all,
# so that churn (members replaced under new ids) cannot grow every heartbeat without bound.
FORGET_DEAD_AFTER_TIMEOUTS = 10
PRECOPY_PATIENCE_TIMEOUTS = 5
# A map must have stood this many node timeouts, every member alive and the proposer's and
# a majority of voters' copies settled, before slots move for balance (mesh/balance.py).
REBALANCE_AFTER_TIMEOUTS = 2
# A member restarted without --join founds a cluster anew only after this many node timeouts
# in which no live peer held a cluster map (the whole cluster restarted).
FOUND_AFTER_TIMEOUTS = 2
LEAVE_RESEND_S = 0.5
# A heartbeat repeats a member's news (learned, state or incarnation changed) for this many
# intervals, enough to outlast a few lost heartbeats; suspicions ride along until they change.
NEWS_BEATS = 4
# After holding a stranded member dead (mesh/strand.py) the proposer waits this many intervals
# before it proposes: the others reach their verdicts a tick or two apart (they heard the first
# report so), and a ballot that lacks their votes is retried only a node timeout later.
FAR_SETTLE_BEATS = 3
# Members that relay to this node what a peer it has no link to says (Mesh._hear_unlinked): two, so
# that one of them dying or doubted leaves the peer heard while the choice moves on.
RELAYERS = 2
# The whole member list goes this often (and at most once a second after learning a member,
# for the newcomer): news a member missed, and incarnations a restarted member must outbid.
ROSTER_EVERY_S = 30.0
ROSTER_AFTER_JOIN_S = 1.0
# ...up to this many members; past it, proportionally less often (roster_every_s).
ROSTER_FLAT_FROM = 16


def roster_every_s(members: int) -> float:
    """How often this node sends its whole member list to its watchers, in a map of `members`.

    A roster names every member (~75 bytes each), so at a fixed interval each member's share of
    its watchers' rosters grew with the map: 0.25 KB/s in per node at 12 members, ~2 KB/s at 100
    (a third of all it heard idle: mesh_cost.py measured 4.4 KB/s at 12, 6.3 at 100), 20 at 1,000.
    Sent proportionally less often past ROSTER_FLAT_FROM members, it stays ~0.3 KB/s at any size:
    the repair of news a member missed waits longer in a big map (~3 minutes at 100 members; news
    itself still goes to every member at once, and suspicions and deaths ride in every heartbeat),
    as memberlist's push-pull interval grows with the cluster."""
    return ROSTER_EVERY_S * max(1.0, members / ROSTER_FLAT_FROM)


# A first formation (epoch 0: no pre-copy to wait for) adds newcomers once none appeared for
# this long (or the first waited a node_timeout), all in one map: one map per newcomer made
# 47 epochs, and only the founder places them on the ring (mesh/ring.py, ~0.3 s a newcomer
# at 48 members, in its worker process): the others adopt the map as it is.
JOIN_SETTLE_S = 1.0
# A ballot that decided nothing is retried a node timeout after it was placed, and each retry after
# another in vain waits twice as long as the one before, up to this many node timeouts: on a
# machine too loaded to vote within a node timeout (100 members on 2 cores), each retry made every
# member promise the new ballot and drop the votes still coming for the old one, 16 in a row.
RETRY_BACKOFF_MAX = 4
# Maps received in Commits and not yet attested: the newest few are kept, the rest dropped.
PENDING_MAPS = 4
# Proposals on the current map whose proposer is remembered (a certificate counts from it alone):
# a few ballots' worth; more, from a peer proposing at every ballot number, are not taken.
MAX_PROPOSALS_KNOWN = 16
# The member ids of this many of the last maps adopted are kept: a member heard holding one of
# them has its death decided by its watchers in it (Membership.pinned).
PINNED_MAPS = 16
# A member of the map suspect this many node timeouts without being declared dead is named in a
# warning once: its watchers are mostly gone or cut off with it (mesh/watch.py), and its slots
# wait for it to come back, or for the operator's CLUSTER FORGET on every member.
STUCK_AFTER_TIMEOUTS = 10


def quiet_interval_s(timer_interval_s: float, node_timeout_s: float) -> float:
    """How often a heartbeat with nothing new is sent (see QUIET_BEATS_PER_TIMEOUT)."""
    return max(timer_interval_s, min(node_timeout_s / QUIET_BEATS_PER_TIMEOUT, QUIET_INTERVAL_MAX_S))


# Runs mesh/election.py's placement of that name on those arguments somewhere (a worker process on
# a node, at once in the simulation), then calls back in the hub: with its result, or, if it
# failed, the second callback (a failure is no answer: no vote, no verdict that the ring is even).
Offload = Callable[[str, tuple, Callable[[Any], None], Callable[[], None]], None]


@dataclass(frozen=True, slots=True)
class MeshEvent:
    at_unix: float   # wall clock, for display only
    kind: str        # join | leave | suspect | alive | dead | epoch
    node: str | None
    epoch: int
    text: str


class Mesh:
    """One node's membership in the cluster: its current SlotMap and the traffic that keeps it agreed."""

    def __init__(self, me: Member, join: list[tuple[str, int]], replication_factor: int,
                 node_timeout_ms: int, local_stats: Callable[[], dict],
                 on_publish: Callable[[bytes, bytes], None], bind_host: str | None = None,
                 heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S,
                 ballot_path: Path | None = None, keys: MeshKeys | None = None,
                 clock: Callable[[], float] = time.monotonic, links: Callable[..., PeerLinks] = PeerLinks,
                 offload: Offload | None = None,
                 settled: Callable[[], bool] = lambda: False, signer: votes.Signer | None = None) -> None:
        # The clock and the links are parameters so that loadtest/mesh_sim.py can run this very
        # class in virtual time over a simulated network; a node uses the defaults.
        self._clock = clock
        # Ring placements (a proposal's map, built or checked: mesh/election.py's plan, follows and
        # rebalanced, by name) run through this: on a node in a worker process of low priority
        # (mesh/placer.py), waited for by a greenlet of their own, so that neither the heartbeat
        # timer nor a peer's reader waits while a big join is placed (~0.3 s a newcomer at 48
        # members; the founder of 48 went silent for 74 s on a loaded machine when its timer
        # waited for it), nor shares the GIL or the CPU's priority with it.
        self._offload: Offload = offload or self._in_worker
        self._placements = gevent.pool.Group()      # the greenlets waiting for the worker's answers
        self.me = me
        self.slotmap = SlotMap.single(me, replication_factor)
        self.node_timeout_s = node_timeout_ms / 1000
        self.membership = Membership(me, self.node_timeout_s)
        # A restarted node remembers the epochs it voted in (mesh/ballot.py); None: nothing kept.
        self._ballot_path = ballot_path
        saved = ballot.load(ballot_path) if ballot_path is not None else ballot.Ballot()
        self.election = Election(me.node_id, voted_epoch=max(saved.voted_epoch, saved.epoch))
        if saved.vote_map:
            saved_vote = unpack_slotmap(saved.vote_map)
            if saved_vote is None:
                raise ballot.BallotError(f"{ballot_path} holds a damaged vote; refusing to forget it")
            self.election.vote = (saved.vote_ballot, saved.vote_base, saved_vote)
        self._saved = saved
        # This node's vote key and the keys the members announced on their own links (or through
        # relays, for a peer without one, if its id names the key: mesh/links.py): in a map
        # with watchers a vote goes to the proposer alone, who relays a majority's signatures to
        # every member in a certificate (mesh/votes.py).
        # (a node's is kept with its id, which names it: hypercache/identity.py; else one of its own)
        self._signer = votes.Signer() if signer is None else signer
        self._vote_keys: dict[str, bytes] = {me.node_id: self._signer.public}
        # The signed votes for each ballot this node proposed, by (base epoch, ballot): voter ->
        # (map digest, signature). Kept for the map before too once one is decided: the
        # certificate goes again a tick later (`_certificate_again`) with the votes that came since.
        self._signed: dict[tuple[int, int], dict[str, tuple[bytes, bytes]]] = {}
        self._certificate_again: tuple[int, int, bytes] | None = None      # (base epoch, ballot, digest)
        # (base epoch, ballot, map digest) -> who proposed it: a certificate counts from its proposer only
        self._proposers: dict[tuple[int, int, bytes], str] = {}
        self._promised: tuple[int, int, str] | None = None  # the ballot promised last: (base epoch, ballot, proposer)
        # The newest map each member is known to have held: from its heartbeats, or its signed vote on
        # a map's base (a certificate). Whose watchers judge it (_pin) follows from that.
        self._held: dict[str, int] = {}
        # Waiting for a voter's key: its vote (to the proposer), a certificate or a map sent again
        # short of a majority; and when this node last asked each member for its key, or answered.
        self._held_votes: dict[str, Vote] = {}
        self._short: Certificate | Commit | None = None
        self._asked_key_at: dict[str, float] = {}
        self._answered_key_at: dict[str, float] = {}
        # The certificate counted last on the current map (a majority's), then the one the current
        # map was adopted on: it goes with the map sent again, so a member that missed it adopts
        # at once; and whether this node's own vote is in it (if not, the map is said loud, _adopt).
        self._relayed: Certificate | None = None
        self._certified: tuple[int, tuple[tuple[int, bytes], ...]] = (0, ())
        self._map_news_loud = False
        # A node told to join adopts the cluster's map instead of offering its own.
        self.joining = bool(join)
        self._joining_since = self._clock()
        self._join = list(join)
        # A node whose ballot says it was a member, started without --join (the cluster's first
        # node, restarted), must not found a new cluster on its one-member map while the old one
        # lives: it would commit that map alone, a second history. It waits to be found again by
        # the members that still list it (their SUBs re-send their Hellos; mesh/adoption.py), and
        # founds anew only if no live peer holds a cluster map for a while.
        self._found_after: float | None = None
        if not join and saved.epoch > 0:
            self.joining = True
            self._found_after = self._clock() + FOUND_AFTER_TIMEOUTS * self.node_timeout_s
        self._local_stats = local_stats
        # whether this node's data is all in place (hypercache/replication.py Replicator.settled);
        # a mesh without a data plane never moves slots for balance
        self._data_settled = settled
        self._even_tokens: object = None    # a ring even enough, or that no allowed move improves
        self._on_publish = on_publish
        # called after each map adopted (the node wakes its replication upkeep with it)
        self.on_adopt: Callable[[], None] | None = None
        # called after each tick of the timer, which runs whatever else sleeps (the node's replication
        # notes with it whether the hub stalled or the lease lapsed: Replicator.note_absence)
        self.on_tick: Callable[[], None] | None = None
        # when the write lease lapsed (None: it holds, or never held), and how many times it came
        # back after a lapse of node_timeout or more: counted as it comes back, so that one
        # that looks now and then misses none (Replicator.note_absence)
        self.lease_lapsed_at: float | None = None
        self.long_lease_lapses = 0
        self._interval_s = heartbeat_interval_s
        self._quiet_interval_s = quiet_interval_s(heartbeat_interval_s, self.node_timeout_s)
        # A quiet heartbeat goes every `_quiet_ticks` ticks (the cadence of "at least the quiet
        # interval less half a tick": 2 at the default 3 s). With 2 or more, the timer ticks on
        # the wall clock's multiples of the interval (mesh/ticks.py) and a member's quiet
        # heartbeat goes on the ticks of its id's phase (`_quiet_phase`; the tick's number is
        # passed to beat_once, None in the simulation's unaligned runs and for a busy beat):
        # each member's timer and the heartbeats of its watchers of one phase come together, one
        # wake-up, not one each (docs/performance.md, "An idle node wakes less"). Phases, not
        # one: a watcher sending on the same tick echoes the member's heartbeat before, so the
        # lease's evidence from it is always as old as it could be before (mesh/lease.py); one
        # of another phase echoes the latest. Not with a heartbeat every tick (node timeouts of
        # 2.25 s and under): there every watcher would be of the same phase.
        self._quiet_ticks = max(1, math.ceil(self._quiet_interval_s / heartbeat_interval_s - 0.5))
        self._quiet_phase = zlib.crc32(me.node_id.encode()) % self._quiet_ticks
        self._beat_sent_at = float("-inf")
        self._holds_sent = 0
        # Starting from the wall clock keeps a restarted node's sequence numbers above its old ones.
        self._seq = time.time_ns() // 1000
        self.counters: collections.Counter[str] = collections.Counter()
        self.placer = Placer(me.node_id, counters=self.counters) if offload is None else None
        self.links = links(me, bind_host or me.host, keys, self._receive, self._hello, self.counters)
        self._greenlets: list[gevent.Greenlet] = []
        self._peer_stats: dict[str, Heartbeat] = {}
        # epoch -> sorted member ids of the maps this process held (PINNED_MAPS), its first one-member map too
        self._ids_at: dict[int, tuple[str, ...]] = {self.slotmap.epoch: (me.node_id,)}
        self._base_of: dict[int, int] = {}      # epoch -> its map's base epoch (the map it was voted on)
        self._adopted_first_at: float | None = None     # this process's first map adopted (see _listen)
        self._stuck_named: set[str] = set()     # suspects named in the STUCK_AFTER_TIMEOUTS warning
        self._pending: dict[bytes, SlotMap] = {}    # digest -> map sent in a Commit, waiting to be attested
        self._proposed_at = float("-inf")
        # ballots prepared here since this node last adopted a map (or found nothing to propose, or
        # was not the proposer): each retry in vain waits longer (_retry_after_s)
        self._ballots_in_vain = 0
        # whether each map proposed on the current map follows from it, each checked once (_consider)
        self._checks: Checks[Proposal] = Checks(MAX_PROPOSALS_KNOWN)
        self._placing = False       # a proposal's map is being placed on the ring (in the worker)
        # members heard naming an older map: (their map's epoch and ours then, since when, when this
        # node last sent them its own)
        self._behind: dict[str, tuple[tuple[int, int], float, float]] = {}
        # Writes are accepted until this monotonic deadline: a majority of the map was heard
        # recently enough, refreshed whenever a heartbeat arrives or the map changes.
        # Read-only outside: the dispatcher's fast lane compares it without a call.
        self.writes_until = float("inf") if not self.joining else float("-inf")
        # The lease counts from when heartbeats arrived, not when the hub read them (mesh/lease.py).
        # (the timer's interval, not the quiet one: a peer's echo bounds when it can have stopped
        # hearing this node, however rarely it beats; a wider margin only shortened the lease)
        self._lease_margin_s = lease.margin_s(heartbeat_interval_s, self.node_timeout_s)
        # a joiner whose copy ahead of admission stands still this long is admitted without it
        self._precopy_patience_s = PRECOPY_PATIENCE_TIMEOUTS * self.node_timeout_s
        self._arrival = lease.ArrivalClock(heartbeat_interval_s, self._lease_margin_s, self._clock())
        # how late this node itself runs: its suspicions on silence wait longer while it does
        self.health = LocalHealth(self._clock())
        self._health_said = 0      # what _say_health said last: 0 nothing (or on time), 1 late, 2 the top
        self._arrived_at: dict[str, float] = {}
        self._roster_sent_at = float("-inf")
        self._roster_due = True
        self._digest: tuple[SlotMap, bytes] | None = None     # the current map and its digest
        # Whose quiet heartbeats this node hears (mesh/watch.py; None: everyone's), and whether
        # it hears those of nodes outside their map.
        self._watching: tuple[frozenset[str] | None, bool, bool] = (None, True, True)
        # the peers without a link here, each with the members relaying it and whether its quiet
        # heartbeats are wanted too (_hear_unlinked, mesh/relays.py)
        self._relayed_by: dict[str, tuple[tuple[str, ...], bool]] = {}
        self._relays = Relays(me.node_id, RELAYERS, self.node_timeout_s / 3)
        # per watched peer: the messages its own link had brought when last counted, and since when;
        # and the same of all links (_unheard_directly)
        self._direct_seen: dict[str, int] = {}
        self._direct_since: dict[str, float] = {}
        self._direct_total = 0
        self._direct_any_at = float("-inf")
        # the newest map epoch a heartbeat named, and when: while ours is older, listen to everyone
        self._newest_heard: tuple[int, float] = (0, float("-inf"))
        self._incarnation_sent = 0
        self._news_until = float("-inf")        # our own new incarnation is news till then
        self._map_news_until = float("-inf")    # and the map we adopted (see _send_heartbeat)
        # ... and only while a majority hears this node: when it sent the heartbeat each peer last echoed.
        self._sent_beats = lease.SentBeats(int(self.node_timeout_s / heartbeat_interval_s) + 8)
        # ...and each roll call, apart: an answer names the call it answers, and only this node's own
        # calls may count (another member's sequence numbers can be this node's heartbeats' too)
        self._calls_sent = lease.SentBeats(int(1 / strand.CALL_EVERY) + 4)
        self._echoed_at: dict[str, float] = {}
        self._echo_key = echo_key(me.node_id)
        # A member stranded by its watchers' silence (mesh/strand.py): its lease needs the whole
        # map's answers to its roll calls too (the evidence of each, as _echoed_at's), and every
        # member judges one its watchers report for long by its own silence.
        self._stranding = Stranding(self.node_timeout_s, restarted=self._saved.epoch > 0)
        self._strand_group: frozenset[str] | None = None
        self._group_evidence: dict[str, float] = {}
        self._answers: dict[str, float] = {}
        self._roll_called_at = float("-inf")
        self._answered_at: dict[str, float] = {}
        self._far = FarSilence(self.node_timeout_s)
        self._voted_for: dict[str, int] = {}   # member -> the newest map a certificate shows it voted for
        self._far_dead_at = float("-inf")      # this node's latest such verdict (_propose waits a little)
        self._retold_at = float("-inf")        # when a heartbeat last renewed our suspicions for all (_retelling)
        self.leaving = False        # announced its leave: votes for its own removal, never proposes
        self._adopted_at = self._clock()     # when the current map was adopted
        self._forced: SlotMap | None = None  # the map an operator's TAKEOVER made here (mesh/takeover.py)
        # joiner -> (its last pre-copy progress, when that last changed): see election.admissible
        self._joiner_progress: dict[str, tuple[tuple[int, int, int] | None, float]] = {}
        self._plans = JoinPlans()       # the plan for joiners: made here as the proposer, or heard
        self.events: collections.deque[MeshEvent] = collections.deque(maxlen=RECENT_EVENTS)

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        self.links.open()
        if self.placer is not None:
            self.placer.start()
        for host, mesh_port in self._join:
            self.links.connect(host, mesh_port)
        self._greenlets.append(gevent.spawn(self._beat))
        log.info("mesh started node=%s epoch=%d mesh_port=%d join=%s",
                 self.me.node_id[:8], self.slotmap.epoch, self.me.mesh_port, self._join)

    def leave(self, timeout_s: float, ready: Callable[[], bool] = lambda: True) -> bool:
        """Announce the leave and stay a voter until a map without this node commits.

        Several members stopping at once (a scale-down) each need the others'
        votes: a majority of the map's members must still vote for every removal,
        so a leaver keeps voting until its own removal has committed. And each
        removal must leave the data somewhere: the leaver announces only while
        `ready()` (its replicas hold all it leads), the proposer removes one
        leaver per map, and a leaver that inherits slots from another one (the
        map changed under it) takes its leave back until it copied them on.
        Returns False if that took longer than `timeout_s` (the node stops anyway).
        """
        if not self.links.bound or self.slotmap.members == (self.me,):
            return True
        self.leaving = self.membership.leaving = True
        deadline = self._clock() + timeout_s
        announced_at, announced_epoch = float("-inf"), None
        while self.slotmap.has_member(self.me.node_id):
            if not self.others_alive():
                return True     # everyone else left or died too: nobody to hand over to
            now = self._clock()
            if now >= deadline:
                log.warning("left without a committed map node=%s epoch=%d", self.me.node_id[:8],
                            self.slotmap.epoch)
                return False
            if ready():
                if now - announced_at >= LEAVE_RESEND_S:     # a Leave can be lost: say it again
                    self.links.send(Leave(self.me.node_id, self._next_seq(), self.membership.incarnation))
                    announced_at, announced_epoch = now, self.slotmap.epoch
            elif announced_epoch is not None and announced_epoch != self.slotmap.epoch:
                self.membership.stay()      # our copies are not where they must be yet
                announced_at, announced_epoch = float("-inf"), None
            gevent.sleep(0.02)
        log.info("left the cluster node=%s epoch=%d", self.me.node_id[:8], self.slotmap.epoch)
        return True

    def stop(self) -> None:
        """Announce the leave, then close every socket."""
        # (no vote or proposal placed meanwhile goes out after the Leave)
        self._placements.kill()
        if self.placer is not None:
            self.placer.close()
        if not self.links.bound:
            return
        self.links.send(Leave(self.me.node_id, self._next_seq(), self.membership.incarnation))
        gevent.killall(self._greenlets)
        # Leave the Leave a moment to reach the wire before the socket goes.
        self.links.close(linger_ms=500)
        log.info("mesh stopped node=%s epoch=%d", self.me.node_id[:8], self.slotmap.epoch)

    # -- what the node asks ----------------------------------------------

    def place(self, name: str, *args: Any) -> Any:
        """Run a ring placement (mesh/election.py's `name`) where this node runs them; the calling greenlet waits."""
        return self.placer.call(name, *args) if self.placer is not None else run_in_thread(name, args)

    def _in_worker(self, name: str, args: tuple, then: Callable[[Any], None], failed: Callable[[], None]) -> None:
        """Run a placement in the worker (`place`), then `then(result)`, or `failed()`, in a greenlet of its own."""
        def run() -> None:
            try:
                result = self.place(name, *args)
            except PlacerClosed:
                return      # (the mesh is stopping: nothing more to decide)
            except Exception as error:  # no map placed, no proposal checked: retried like a lost message
                # (the placer's own failures say what happened; anything else keeps its traceback)
                log.warning("mesh decision failed node=%s placement=%s: %s", self.me.node_id[:8], name, error,
                            exc_info=not isinstance(error, RuntimeError))
                failed()
                return
            then(result)
        self._placements.spawn(run)

    def accepting_writes(self) -> bool:
        """False while this node cannot hear a majority of the current map's members,
        or is joining and has not adopted the cluster's map yet.

        Called for write commands only: compares the clock with a deadline refreshed
        whenever a majority is heard, so it is right even when the hub wakes from a
        stall and serves clients before the heartbeat timer or the peers' messages.
        """
        return self._clock() <= self.writes_until

    def _refresh_writes(self) -> None:
        """Set the deadline: node_timeout (less a margin) after the evidence of the most recently heard majority.

        A member's evidence is the older of when its latest heartbeat arrived and
        when this node sent the heartbeat that member echoed last (mesh/lease.py).
        """
        if not self._has_cluster_map():
            self.writes_until = float("-inf")
            return
        arrivals = []
        # In a map large enough for watchers, the group is this node and its watchers: only a
        # majority of them can declare it dead (mesh/watch.py says why that is enough).
        watchers = self.membership.watchers
        group = watchers.get(self.me.node_id) if watchers is not None else None
        members = [m.node_id for m in self.slotmap.members] if group is None else [self.me.node_id, *group]
        evidence: dict[str, float] = {}
        for node_id in members:
            if node_id == self.me.node_id:
                arrivals.append(float("inf"))
                continue
            peer = self.membership.peers.get(node_id)
            if peer is not None:
                # (a watcher held dead keeps its last evidence for the stranding's count: aged from
                # when it became a watcher instead, a leaver stranded each of its neighbours at once)
                at = min(peer.heard_at, self._arrived_at.get(node_id, peer.heard_at),
                         self._echoed_at.get(node_id, float("-inf")))
                if group is not None:
                    evidence[node_id] = at
                if peer.state != State.DEAD:
                    arrivals.append(at)
        was = self.writes_until
        self.writes_until = lease.lease_until(arrivals, len(members), self.node_timeout_s,
                                              self._lease_margin_s)
        now = self._clock()
        # (before new watchers are counted: a restarted member starts stranded with its first
        # ones, Stranding.watchers, and says so like any other)
        before = self._stranding.since
        if group is not self._strand_group:
            self._stranding.watchers(group, now)
            self._strand_group = group
        restarted = before is None and self._stranding.since is not None
        self._group_evidence = evidence
        if group is not None:
            # Stranded (a watcher silent for long): a majority of the whole map must answer too.
            whole = self._whole_map_lease() if self._stranding.since is not None else float("-inf")
            if self._stranding.judge(now, evidence, whole >= now):
                if whole == float("-inf"):
                    whole = self._whole_map_lease()
                self.writes_until = min(self.writes_until, whole)
        if (before is None) != (self._stranding.since is None):
            self._say_stranded(now, evidence, restarted)
        if self.writes_until >= now:
            if self.lease_lapsed_at is not None and now - self.lease_lapsed_at >= self.node_timeout_s:
                self.long_lease_lapses += 1
            self.lease_lapsed_at = None
        elif self.lease_lapsed_at is None and was > float("-inf"):
            # at its deadline, passed since the last refresh, or now (a watcher dead, say); a
            # node that never had a lease (joining: -inf) is timed by Replicator.note_absence
            self.lease_lapsed_at = min(was, now)

    def _say_stranded(self, now: float, evidence: dict[str, float], restarted: bool = False) -> None:
        if self._stranding.since is None:
            why = ("every watcher is heard again and a majority of the whole map answered"
                   if self._strand_group is not None else "the map is small enough for every member to watch it")
            log.info("mesh not stranded any more node=%s: %s", self.me.node_id[:8], why)
            self._record("stranded", self.me.node_id, why)
            return
        if restarted:
            # (its watchers are not silent: none was heard yet by this new process)
            log.warning("mesh stranded node=%s: restarted from its data directory (the process before may "
                        "have been cut off), this node accepts writes only once every watcher and a majority "
                        "of the whole map answer its roll calls", self.me.node_id[:8])
            self._record("stranded", self.me.node_id, "restarted: writes need the whole map's majority first")
            return
        silent = sorted(n for n in self._strand_group or () if now - evidence.get(n, float("-inf")) > self.node_timeout_s)
        log.warning("mesh stranded node=%s silent_watchers=%s: until they are heard again or the map drops "
                    "them, this node accepts writes only while a majority of the whole map answers its roll "
                    "calls", self.me.node_id[:8], ",".join(n[:8] for n in silent))
        self._record("stranded", self.me.node_id, f"{len(silent)} watchers silent: writes need the whole map's "
                                                   "majority meanwhile")

    def _whole_map_lease(self) -> float:
        """Until when a majority of the whole map gave this node evidence (its roll calls'
        answers, or a watcher's echo): the lease of a stranded member (mesh/strand.py). And a
        majority of the map it voted for on ours, if it did: the others may judge it under that
        map (Mesh._note_voters), and remove it by that map's majority."""
        until = self._majority_answered(self.slotmap)
        vote = self.election.vote
        if vote is not None and vote[1] == self.slotmap.epoch and vote[2].epoch > self.slotmap.epoch:
            until = min(until, self._majority_answered(vote[2]))
        return until

    def _majority_answered(self, slotmap: SlotMap) -> float:
        peers, answers = self.membership.peers, self._answers
        arrivals = []
        for member in slotmap.members:
            node_id = member.node_id
            if node_id == self.me.node_id:
                arrivals.append(float("inf"))
                continue
            peer = peers.get(node_id)
            if peer is not None and peer.state != State.DEAD:
                arrivals.append(max(answers.get(node_id, float("-inf")),
                                    self._group_evidence.get(node_id, float("-inf"))))
        return lease.lease_until(arrivals, len(slotmap.members), self.node_timeout_s, self._lease_margin_s)

    @property
    def was_member(self) -> bool:
        """This node id was in a committed map before this process started (a restart)."""
        return self._saved.epoch > 0

    def others_alive(self) -> bool:
        """Whether a member of the map other than this node is not known to be dead (or gone)."""
        me = self.me.node_id
        return any(m.node_id != me and self.is_alive(m.node_id) for m in self.slotmap.members)

    def silent(self, node_id: str) -> bool:
        """Not dead here, and suspect here or reported suspect (Membership.silent)."""
        return self.membership.silent(node_id)

    def declare_dead(self, node_id: str) -> None:
        """CLUSTER FORGET of a silent member: dead here on the operator's word (Membership.declare_dead)."""
        self._handle_events(self.membership.declare_dead(node_id, self._clock()))

    def is_alive(self, node_id: str) -> bool:
        """Not known to be dead (a member we never heard of counts as alive until it is)."""
        peer = self.membership.peers.get(node_id)
        return peer is None or peer.state != State.DEAD

    def _has_cluster_map(self) -> bool:
        """False while joining on the one-member map made at start (or before CLUSTER MEET).

        That map is no cluster's: a write taken on it would land on slots the
        cluster gives to others, so until the cluster's map is adopted the node
        answers writes with -CLUSTERDOWN, as Redis does while cluster_state is fail.
        """
        return not (self.joining and self.slotmap.members == (self.me,))

    def joining_for_s(self) -> float:
        """How long this node has been joining (0 once it is a member)."""
        return self._clock() - self._joining_since if self.joining else 0.0

    def peer_epochs(self) -> dict[str, int]:
        """The map epoch each live peer's last heartbeat carried."""
        return {node_id: beat.epoch for node_id, beat in self._peer_stats.items()
                if node_id in self.membership.peers and self.membership.state(node_id) != State.DEAD}

    def holds(self, node_id: str) -> int:
        """The map epoch under which `node_id` last said it holds every slot it owns (0: not yet)."""
        beat = self._peer_stats.get(node_id)
        return beat.holds if beat is not None else 0

    # -- the plan for joiners (mesh/plans.py) ------------------------------

    def plans_for_joiners(self) -> bool:
        """True if this node places the joiners' plan: it is the member of its map that proposes."""
        return self._has_cluster_map() and not self.joining and self._proposer(self.slotmap) == self.me.node_id

    def announce_plan(self, planned: SlotMap | None) -> None:
        """This node, proposing, placed `planned` for the joiners (None: no joiners): said to all now."""
        self._plans.make(planned)
        self._say_plan(self._clock())

    def heard_plan(self) -> SlotMap | None:
        """The plan for joiners on this node's map, as last heard from its proposer, checked here
        if this node is a member (None: none heard, or not checked yet: mesh/plans.py)."""
        current = self.slotmap
        return self._plans.heard(current, checked=current.has_member(self.me.node_id))

    def _say_plan(self, now: float) -> None:
        # (kept while another member proposes, said again if the role comes back: the
        # replicator re-announces it only when its joiners change)
        if self._plans.saying and self.plans_for_joiners():
            planned = self._plans.to_say(self.slotmap, now)
            if planned is not None:
                self.links.send(Plan(self.me.node_id, self._next_seq(), planned))

    def _on_plan(self, plan: Plan) -> None:
        if self._plans.hear(plan.slotmap, plan.sender, self.slotmap, self._proposer(self.slotmap)):
            self._check_plan()      # (now: unchecked, it would be no plan for a moment, mesh/plans.py)
        else:
            self.counters["plan_not_followed"] += 1

    def _check_plan(self) -> None:
        """Check the plan just heard by its shape (election.follows_as_a_join): copies ahead
        follow it only once it passes (mesh/plans.py). (Not a joiner: it has no vote on the
        map that admits it.)"""
        current = self.slotmap
        if not current.has_member(self.me.node_id):
            return
        planned = self._plans.to_check(current)
        if planned is None:
            return
        follows = election_rules.follows_as_a_join(current, planned)
        self._plans.checked(planned, follows)
        self.counters["plan_checked" if follows else "plan_refused"] += 1
        if not follows:
            log.warning("plan for joiners refused: not shaped as the join of its joiners node=%s epoch=%d",
                        self.me.node_id[:8], current.epoch)

    def take_over(self) -> SlotMap:
        """CLUSTER FAILOVER TAKEOVER: adopt, without a vote, the map without the members
        this node holds dead (mesh/takeover.py says when and why not: TakeoverRefused)."""
        others = [m.node_id for m in self.slotmap.members if m.node_id != self.me.node_id]
        states = {n: self.membership.state(n) for n in others if n in self.membership.peers}
        forced = takeover.forced_map(self.slotmap, self.me.node_id, states, self.accepting_writes(),
                                     self.election.voted_epoch, self.joining)
        log.warning("takeover by the operator node=%s epoch=%d base_epoch=%d removed=%s",
                    self.me.node_id[:8], forced.epoch, self.slotmap.epoch,
                    ",".join(n[:8] for n in others if not forced.has_member(n)))
        self._adopt(forced)
        self._forced = forced
        self.links.send(Commit(self.me.node_id, self._next_seq(), forced))
        return forced

    def publish(self, channel: bytes, message: bytes) -> None:
        """Fan a PUBLISH out to every other node; never blocks."""
        self.links.send(Publish(self.me.node_id, self._next_seq(), channel, message))

    def meet(self, host: str, mesh_port: int) -> None:
        """Join the cluster that `host:mesh_port` belongs to (CLUSTER MEET)."""
        if self.slotmap.members == (self.me,):
            self.joining = True
            self._joining_since = self._clock()
            self.writes_until = float("-inf")
        self.links.connect(host, mesh_port)

    def status(self) -> dict:
        """Return a fresh plain-data view: epoch, every known member with its state and stats, events."""
        now = self._clock()
        known = {m.node_id: m for m in self.slotmap.members}
        for peer in self.membership.peers.values():
            known.setdefault(peer.member.node_id, peer.member)
        return {
            "epoch": self.slotmap.epoch,
            "replication_factor": self.slotmap.replication_factor,
            "accepting_writes": self.accepting_writes(),
            "joining": self.joining,
            "members": {node_id: self._member_status(member, now) for node_id, member in known.items()},
            "events": [dict(at_unix=e.at_unix, kind=e.kind, node=e.node, epoch=e.epoch, text=e.text)
                       for e in self.events],
            "mesh_in": self.counters["in"],
            "mesh_out": self.counters["out"],
            "mesh_dropped": self.counters["dropped"] + self.counters["invalid"] + self.counters["too_big"],
            "counters": dict(self.counters),
            "peers_unsubscribed": self.links.refused_now,
            # (of those, the ones heard through relayers: none in a closed mesh, mesh/links.py)
            "peers_relayed": len(self.links.unlinked() & self._relayed_by.keys()),
            # this node's doubt in its own timeliness (mesh/awareness.py): 0 on time
            "local_health": self.health.score,
            "suspect_after_s": self.health.scaled(self.node_timeout_s),
            "late_evidence": self.health.raised,
            # a watcher silent for long: writes need a majority of the whole map (mesh/strand.py)
            "stranded": self._stranding.since is not None,
        }

    def _member_status(self, member: Member, now: float) -> dict:
        myself = member.node_id == self.me.node_id
        peer = self.membership.peers.get(member.node_id)
        beat = self._peer_stats.get(member.node_id)
        stats = self._local_stats() if myself else (
            {"keys": beat.keys, "used_memory": beat.used_memory, "ops_per_sec": beat.ops_per_sec}
            if beat else {})
        heard = peer is not None and peer.seq >= 0
        return {
            "id": member.node_id, "host": member.host, "port": member.port,
            "mesh_port": member.mesh_port, "http_port": member.http_port,
            "state": State.ALIVE if myself or peer is None else peer.state,
            "incarnation": self.membership.incarnation if myself else (peer.incarnation if peer else 0),
            "last_heartbeat_age_s": round(now - peer.heard_at, 3) if heard and peer is not None else None,
            "myself": myself,
            "keys": stats.get("keys"), "used_memory": stats.get("used_memory"),
            "ops_per_sec": stats.get("ops_per_sec"),
        }

    # -- messages --------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _pin(self, node_id: str, epoch: int | None, now: float) -> None:
        """`node_id` says it holds map `epoch` (None: never heard). In watchers mode its death is
        for its watchers in the map it holds to decide, since its lease counts them (mesh/watch.py:
        a newer map's watchers may be members that never heard it).

        It may have adopted any map since, up to ours, without our hearing it yet (a cut at
        that moment: a review's transition race), and its lease then counts that map's
        watchers. So it is dead only once a majority of its watchers in each of those maps
        suspects it (Membership.pinned_groups): its lease fails in whichever it holds. (The
        members watching it in all of them, 5 needed, was safe too, but a member that crashed
        just after a map that reshaped its watchers, a scale-up, had too few such to be judged.)
        A map we cannot place (never heard, not in the chain of maps this process held, newer
        than ours) gives no groups: no verdict here until it is known; the current map's
        watchers judged such members, and under a cut both sides served them (a majority node
        restarted meanwhile, a cut outlasting PINNED_MAPS maps)."""
        groups: tuple[frozenset[str], ...] | None = None
        current = self.slotmap.epoch
        big_now = self.membership.watchers is not None
        # (epoch 0 is a joiner's own one-member map: no lease, nothing to pin to)
        if self.slotmap.has_member(node_id) and epoch != current and epoch != 0:
            chain = self._chain(epoch) if epoch is not None and epoch < current else None
            if chain is None:
                # Unknown. Never heard, but admitted by our map, which followed one we held
                # without it: it can hold no older map (formation: a founder that crashed before
                # its first heartbeat reached us). Otherwise no verdict here. (Only while our map
                # has watchers: a small map's deaths are a majority of the live members'.)
                previous = self._ids_at.get(self._base_of.get(current, -1))
                admitted_now = epoch is None and previous is not None and node_id not in previous
                held_big = len(self._ids_at.get(epoch, ()) if epoch is not None else ()) > 2 * watch.SIDE + 1
                if (big_now or held_big) and not admitted_now:
                    groups = ()
            else:
                held = [self._ids_at[e] for e in chain if self._ids_at[e] and node_id in self._ids_at[e]]
                # (also when our map shrank to a small one: a member still holding a big map has
                # a lease of 5 of its 9 there, and a majority of our live members could cut it)
                if big_now or any(len(ids) > 2 * watch.SIDE + 1 for ids in held):
                    groups = tuple(group for ids in held if (group := watch.watchers_in(ids, node_id)) is not None)
        self.membership.pin(node_id, groups, now)

    def _chain(self, since: int) -> list[int] | None:
        """The epochs of the maps this process held from map `since` to the current one, if it
        held each of them in turn (each voted on the one before as its base); else None."""
        epoch: int | None = self.slotmap.epoch
        chain: list[int] = []
        while epoch is not None and epoch in self._ids_at and epoch >= since:
            chain.append(epoch)
            if epoch == since:
                return chain
            epoch = self._base_of.get(epoch)
        return None

    def _hello(self, member: Member, by_address: bool = True) -> None:
        """A node subscribed to this one, naming itself: learn it (the links then subscribe back).

        Its silence counts a node_timeout later than from now: a node subscribes as its mesh
        starts, and on a loaded machine the rest of its start-up kept its first heartbeat over 3 s
        away (100 nodes on 2 cores, joining 10 at a time: each joiner was declared dead by all 41
        members, and then its refutation was news to every one of them)."""
        # Told to every member when it came through an address the operator gave (--join,
        # MEET): this node may be the only one that knows of it. One that heard of this node from
        # others subscribes to every member it heard of: told by them, not news to tell again in a
        # big map (with 10 newcomers at 100 simulated members, these hellos, racing the news that
        # told of them, made about half of all members tell every member, 4 times each).
        self._handle_events(self.membership.learn(member, self._clock(), patience_s=self.node_timeout_s,
                                                  tell=by_address or self.membership.watchers is None))

    def _receive(self, message: Message) -> None:
        now = self._clock()
        if isinstance(message, Heartbeat):
            before = self._peer_stats.get(message.sender)
            self._peer_stats[message.sender] = message
            if message.vote_key:
                self._learn_key(message.sender, message.vote_key)
            if self._held.get(message.sender) != message.epoch:
                self._far.held(message.sender, now)
            self._held[message.sender] = message.epoch
            if before is None or before.epoch != message.epoch:
                self._pin(message.sender, message.epoch, now)
            if not self.slotmap.has_member(message.sender):
                self._note_progress(message.sender, message.catching_up[0] if message.catching_up else None, now)
            self._handle_events(self.membership.heartbeat(message, now))
            if self.membership.reports_at.get(message.sender) == now:
                # (a report read late, after a stall, may be older than it looks: mesh/strand.py)
                self.membership.reports_at[message.sender] = self._arrival.arrived_by(now)
            peer = self.membership.peers.get(message.sender)
            if peer is not None and peer.heard_at == now:     # taken as news, not as a repeat
                self._arrived_at[message.sender] = self._arrival.arrived_by(now)
                self._take_echo(message)
                self._far.heard(message.sender, now)
            self._refresh_writes()
            if message.epoch > self.slotmap.epoch:
                self._newest_heard = (message.epoch, now)
            if message.epoch < self.slotmap.epoch:
                self._resend_commit(now, message.sender, message.epoch)
            else:
                self._behind.pop(message.sender, None)
                if self._pending:
                    self._adopt_attested()
        elif isinstance(message, Leave):
            self._handle_events(self.membership.leave(message.sender, message.incarnation, now))
            self._refresh_writes()
        elif isinstance(message, Proposal):
            self._consider(message)
        elif isinstance(message, Prepare):
            self._on_prepare(message, now)
        elif isinstance(message, Promise):
            self._on_promise(message)
        elif isinstance(message, Vote):
            self._on_vote(message)
        elif isinstance(message, Certificate):
            self._on_certificate(message)
        elif isinstance(message, VoteKey):
            if message.key:     # (none: a relay of a key its sender's id does not name, mesh/links.py)
                self._learn_key(message.sender, message.key)
            if message.asking == self.me.node_id:
                self._answer_key(message.sender, now)
        elif isinstance(message, Commit):
            self._offer(message)
        elif isinstance(message, Plan):
            if self._has_cluster_map():     # (a joining node's own one-member map is no base)
                self._on_plan(message)
        elif isinstance(message, Publish):
            self._on_publish(message.channel, message.message)
        elif isinstance(message, RollCall):
            self._on_roll_call(message, now)
        elif isinstance(message, RollAnswer):
            self._on_roll_answer(message, now)

    def _take_echo(self, beat: Heartbeat) -> None:
        """Note when this node sent the heartbeat of its own that `beat`'s sender heard last."""
        for key, seq in beat.heard:
            if key == self._echo_key:
                sent_at = self._sent_beats.sent_at(seq)
                if sent_at > self._echoed_at.get(beat.sender, float("-inf")):
                    self._echoed_at[beat.sender] = sent_at
                return

    def _consider(self, proposal: Proposal) -> None:
        candidate, current = proposal.slotmap, self.slotmap
        if not self._has_cluster_map():
            return      # a joining node's own one-member map is no base: it neither votes nor counts
        map_digest = digest(candidate)
        if proposal.base_epoch == current.epoch and len(self._proposers) < MAX_PROPOSALS_KNOWN:
            self._proposers.setdefault((proposal.base_epoch, proposal.ballot, map_digest), proposal.sender)
        if proposal.base_epoch != current.epoch:
            self._checked(proposal, map_digest, current, True)
            return
        # Each map proposed on ours is checked once (mesh/checks.py): a ballot retried carries the
        # map voted for, and its proposal waits for the check under way, or is voted on at once.
        # (A retry that carries no vote is a fresh map, its epoch its ballot: checked anew.)
        checks = self._checks
        verdict = checks.verdict(current, map_digest)
        if verdict is not None:
            self._checked(proposal, map_digest, current, verdict)
            return
        if checks.wait(map_digest, proposal):
            return

        def checked(follows: bool) -> None:
            for each in [proposal, *checks.done(current, map_digest, follows)]:
                self._checked(each, map_digest, current, follows)

        def failed() -> None:
            # (unchecked: no vote, and the map comes in its Commit if it wins)
            again = checks.failed(current, map_digest)
            if again is not None and self.slotmap is current:
                self._consider(again)
        self._offload("follows", (current, candidate), checked, failed)

    def _checked(self, proposal: Proposal, map_digest: bytes, current: SlotMap, follows: bool) -> None:
        """Vote on a proposal, or count it, once `follows` says whether it is what `plan` makes of `current`."""
        candidate = proposal.slotmap
        if proposal.base_epoch == current.epoch and not follows:
            # Not what `plan` makes of our map: nobody honest proposed it. No vote, no count.
            self.counters["proposal_refused"] += 1
            log.warning("proposal refused: not a successor of the map node=%s epoch=%d sender=%s ballot=%d",
                        self.me.node_id[:8], current.epoch, proposal.sender[:8], proposal.ballot)
            return
        removed = [m.node_id for m in current.members if not candidate.has_member(m.node_id)]
        added = [m.node_id for m in candidate.members if not current.has_member(m.node_id)]
        # Vote only for changes this node has seen too: nobody it still hears is removed.
        acceptable = bool(
            all(self.membership.state(n) != State.ALIVE for n in removed if n in self.membership.peers)
            and (self.me.node_id not in removed or self.leaving)
            and all(self.membership.peers.get(n) is None or self.membership.state(n) != State.DEAD
                    for n in added if n != self.me.node_id)
            # slots moved for balance: only while this node's copies are in place too
            and (removed or added or candidate.tokens == current.tokens or self._settled(self._clock())))
        if self.slotmap is not current:
            return      # the map changed while the proposal was checked: it is on an old base now
        ballot, base_epoch = proposal.ballot, proposal.base_epoch
        promised = self._promised
        if promised is not None and promised[:2] == (base_epoch, ballot) and promised[2] != proposal.sender:
            # A ballot belongs to the proposer this node promised it to: no vote here for another
            # proposer at the same number (the map is still known, for counting). It narrows, and
            # does not close, a race an insider could run now that a vote reaches one proposer:
            # signing two maps at one ballot for two proposers, with the honest votes split in
            # half, makes both certificates a majority (mesh/votes.py).
            self.counters["proposal_not_promisee"] += 1
            self.election.record(candidate, map_digest, ballot, base_epoch, current)
            voted = False
        else:
            voted = self.election.consider(candidate, map_digest, ballot, base_epoch, current, acceptable)
        if voted:
            # The vote is on disk before it leaves: a restart must not vote at this ballot again.
            if not self._save_ballot():
                return
            signature = self._signer.sign(self.me.node_id, ballot, base_epoch, map_digest)
            vote = Vote(self.me.node_id, self._next_seq(), ballot, base_epoch, map_digest, signature)
            if self.membership.watchers is None:
                self.links.send(vote)       # a small map: every member counts every vote
            elif proposal.sender != self.me.node_id:
                # with watchers: to the proposer alone, who relays a majority's (mesh/votes.py)
                self.links.send(vote, addressed(proposal.sender))
            self._tally(self.me.node_id, ballot, base_epoch, map_digest, signature)
        else:
            winner = self.election.winner(ballot, base_epoch, map_digest, current)
            if winner is not None:
                self._decide(winner, current, ballot, map_digest)

    def _on_prepare(self, prepare: Prepare, now: float) -> None:
        """Promise the ballot if the election allows it (saved first); a proposer behind gets our map."""
        if prepare.base_epoch < self.slotmap.epoch:
            self._resend_commit(now, prepare.sender, prepare.base_epoch)
            return
        answer = self.election.promise(prepare.ballot, prepare.base_epoch, self.slotmap)
        if answer is None or not self._save_ballot():
            return
        self._promised = (prepare.base_epoch, prepare.ballot, prepare.sender)
        promise = Promise(self.me.node_id, self._next_seq(), prepare.ballot, prepare.base_epoch,
                          prepare.sender, answer[0], answer[1])
        if prepare.sender == self.me.node_id:
            self._on_promise(promise)
        else:
            self.links.send(promise, addressed(prepare.sender))     # (its proposer's alone)

    def _on_promise(self, promise: Promise) -> None:
        """Count a promise to this node; with a majority, propose the carried map or a fresh one."""
        if promise.proposer != self.me.node_id:
            return
        ready = self.election.promised(promise.sender, promise.ballot, promise.base_epoch,
                                       promise.voted_ballot, promise.voted_map, self.slotmap)
        if ready is None:
            return
        current = self.slotmap
        if ready.carried is not None:
            self._send_proposal(ready, current, ready.carried)
            return
        dead, joining = self._changes()
        self._placing = True
        if election_rules.changes(current, dead, joining):
            self._offload("plan", (current, dead, joining, ready.ballot),
                          lambda candidate: self._send_proposal(ready, current, candidate, placed=True),
                          lambda: self._send_proposal(ready, current, None, placed=True))
        else:       # (nothing else to change: the ballot was prepared to move slots for balance)
            self._offload("rebalanced", (current, ready.ballot),
                          lambda candidate: self._send_rebalanced(ready, current, candidate),
                          lambda: self._send_proposal(ready, current, None, placed=True))

    def _send_rebalanced(self, ready: Ready, current: SlotMap, candidate: SlotMap | None) -> None:
        if candidate is None:       # (uneven, but no move the rules allow helps: ask no more)
            self._even_tokens = current.tokens
        self._send_proposal(ready, current, candidate, placed=True)

    def _send_proposal(self, ready: Ready, current: SlotMap, candidate: SlotMap | None,
                       placed: bool = False) -> None:
        if placed:
            self._placing = False
            self._proposed_at = self._clock()
        if candidate is None or self.slotmap is not current:
            return
        log.info("proposing node=%s ballot=%d epoch=%d carried=%s",
                 self.me.node_id[:8], ready.ballot, candidate.epoch, ready.carried is not None)
        proposal = Proposal(self.me.node_id, self._next_seq(), ready.ballot, current.epoch, candidate)
        self._signed[(current.epoch, ready.ballot)] = {}
        self.links.send(proposal)
        self._consider(proposal)

    def _tally(self, voter: str, ballot: int, base_epoch: int, map_digest: bytes, signature: bytes) -> None:
        base = self.slotmap
        # (also once the map is decided: the certificate sent again carries the late votes too)
        signed = self._signed.get((base_epoch, ballot))
        if signed is not None and voter in self._ids_at.get(base_epoch, ()):
            signed.setdefault(voter, (map_digest, signature))
        winner = self.election.tally(voter, ballot, base_epoch, map_digest, base)
        if winner is not None:
            self._decide(winner, base, ballot, map_digest)

    def _decide(self, winner: SlotMap, base: SlotMap, ballot: int, map_digest: bytes) -> None:
        """Adopt a map a majority of `base` voted for, as counted here.

        In a small map every voter counted the votes and commits on its own. In a big one
        the votes came to the proposer, which relays them to every member (_certify). The
        map goes out for the newcomers it admits and whoever missed the votes: in a small
        map from every member (one loss spared), in a big one from the proposer only, to
        those catching up."""
        big = self.membership.watchers is not None
        proposed_here = (base.epoch, ballot) in self._signed
        if big and proposed_here:
            self._certify(base.epoch, ballot, map_digest)
        self._adopt(winner)
        if not big or proposed_here or self._proposer(base) == self.me.node_id:
            self.links.send(Commit(self.me.node_id, self._next_seq(), winner, *self._certified),
                            CATCH_UP if big else b"")

    def _on_vote(self, vote: Vote) -> None:
        """Count a vote once its signature checks out under its voter's key. In a map with watchers
        a vote whose key is not known yet waits for it, since the proposer relays it to members who
        heard none (mesh/votes.py): one it cannot check would make the certificate short of a
        majority while the proposer counted one. In a small map every member hears every vote, and
        every heartbeat there carries its sender's key: a vote that comes before its voter's first
        heartbeat counts unchecked, as it always did; one that does not check out (a relayer's,
        mesh/links.py, or a voter's under a key not heard yet) waits, as below."""
        key = self._vote_keys.get(vote.sender)
        if key is None and self.membership.watchers is not None:
            if self.slotmap.has_member(vote.sender):
                self._held_votes[vote.sender] = vote     # counted once its key is here
                self._ask_key(vote.sender, self._clock())
            return
        if key is not None:
            if not votes.valid(key, vote.signature, vote.sender, vote.ballot, vote.base_epoch, vote.digest):
                # (the voter's key changed and this node has not heard the new one yet, or it lies:
                # asked, it says its key, and the vote counts if it checks out under that one)
                self.counters["vote_signature_refused"] += 1
                self._held_votes[vote.sender] = vote
                self._ask_key(vote.sender, self._clock())
                return
        self._tally(vote.sender, vote.ballot, vote.base_epoch, vote.digest, vote.signature)

    def _learn_key(self, node_id: str, key: bytes) -> None:
        """Take a member's vote key, read off its own link (or a relay's); count what waited for it."""
        if self._vote_keys.get(node_id) == key:
            return
        self._vote_keys[node_id] = key
        waiting = self._held_votes.pop(node_id, None)
        if waiting is not None:
            self._on_vote(waiting)
        if isinstance(self._short, Certificate):
            self._on_certificate(self._short)
        elif self._short is not None:
            self._offer(self._short)

    def _ask_key(self, node_id: str, now: float) -> None:
        """Ask one member for its vote key, to it alone (at most once an interval)."""
        if now - self._asked_key_at.get(node_id, float("-inf")) < self._interval_s:
            return
        self._asked_key_at[node_id] = now
        self.counters["vote_keys_asked"] += 1
        self.links.send(VoteKey(self.me.node_id, self._next_seq(), self._signer.public, node_id), addressed(node_id))

    def _answer_key(self, node_id: str, now: float) -> None:
        # (to it alone, or not at all: an answer sent to every member for one that does not
        # subscribe to its own topic would let one asker have N members speak to all)
        if now - self._answered_key_at.get(node_id, float("-inf")) < self._interval_s \
                or not self.links.addressable(node_id):
            return
        self._answered_key_at[node_id] = now
        self.links.send(VoteKey(self.me.node_id, self._next_seq(), self._signer.public, ""), addressed(node_id))

    def _certify(self, base_epoch: int, ballot: int, map_digest: bytes) -> None:
        """Relay to every member the signed votes for the map `map_digest` that this node, its
        proposer, counted on the map `base_epoch` (a majority's: it counts none it cannot check)."""
        self._relayed = self._certificate(base_epoch, ballot, map_digest)
        self.links.send(self._relayed)
        # Once more a tick later, with the votes that came since: a member that missed it (a lost
        # message, a link reconnecting) is behind, and catches up only once a watcher hears it
        # name the old map (N votes to all spared each other's losses; one message does not:
        # 1% loss at 300 simulated members, +0.3 s to agree on a crash). And every voter in it
        # is known to have held the base (_note_voters).
        self._certificate_again = (base_epoch, ballot, map_digest)

    def _certify_again(self) -> None:
        """Send the certificate of the ballot this node decided last again, with every vote it has now."""
        if self._certificate_again is None:
            return
        base_epoch, ballot, map_digest = self._certificate_again
        self._certificate_again = None
        again = self._certificate(base_epoch, ballot, map_digest)
        if self._holds_decided(base_epoch, map_digest):
            self._certified = (ballot, again.votes)
        self.links.send(again)

    def _certificate(self, base_epoch: int, ballot: int, map_digest: bytes) -> Certificate:
        """The votes this node counted for `map_digest` at `ballot` on the map `base_epoch`, as a
        certificate; their voters held that map (_note_voters)."""
        ids = self._ids_at.get(base_epoch, ())
        for_it = {voter: signature for voter, (voted, signature) in self._signed.get((base_epoch, ballot), {}).items()
                  if voted == map_digest}
        signed = votes.certificate(for_it, ids, self._vote_keys, ballot, base_epoch, map_digest)
        self._note_voters([ids[index] for index, _ in signed], base_epoch)
        return Certificate(self.me.node_id, self._next_seq(), ballot, base_epoch, map_digest, signed)

    def _on_certificate(self, certificate: Certificate) -> None:
        """Count the relayed votes that check out under their voters' own keys, as if heard from them.

        Only from the member that proposed the map at that ballot (as this node heard the
        proposal): anyone else's, true or not, would only cost every member a check of each
        signature and, short, a key asked of each voter."""
        base = self.slotmap
        ballot, map_digest = certificate.ballot, certificate.digest
        if self._proposers.get((certificate.base_epoch, ballot, map_digest)) != certificate.sender:
            return
        if self._holds_decided(certificate.base_epoch, map_digest):
            # the map we hold, sent again: its late voters held its base
            self._note_voters(self._backers(certificate.votes, certificate.base_epoch, ballot, map_digest),
                              certificate.base_epoch)
            return
        if certificate.base_epoch != base.epoch:
            return
        backers = self._backers(certificate.votes, base.epoch, ballot, map_digest)
        if len(backers) < election_rules.majority(base):
            # Voters whose keys this node has not heard (a loud heartbeat lost, a restart): ask them,
            # and count again as each key comes. Meanwhile the members that adopted it vouch for the
            # map in their heartbeats as for any node behind (mesh/adoption.py).
            if self._short is not certificate:
                self.counters["certificate_short"] += 1
            self._short = certificate
            self._ask_keys(base.epoch, certificate.votes)
            return
        self._relayed = certificate
        for voter in backers:
            self.election.tally(voter, ballot, base.epoch, map_digest, base)
        winner = self.election.winner(ballot, base.epoch, map_digest, base)
        if winner is not None:
            self._adopt(winner)
            self._note_voters(backers, base.epoch)

    def _holds_decided(self, base_epoch: int, map_digest: bytes) -> bool:
        """Whether this node holds the map `map_digest` decided on the map `base_epoch`."""
        return self._base_of.get(self.slotmap.epoch) == base_epoch and self._map_digest() == map_digest

    def _backers(self, signed: tuple[tuple[int, bytes], ...], base_epoch: int, ballot: int,
                 map_digest: bytes) -> list[str]:
        """The voters whose signatures in `signed` check out here, for that map on the map `base_epoch`."""
        return votes.backers(signed, self._ids_at.get(base_epoch, ()), self._vote_keys, ballot, base_epoch,
                             map_digest)

    def _ask_keys(self, base_epoch: int, signed: tuple[tuple[int, bytes], ...]) -> None:
        """Ask the voters named in `signed` (by their place in the map `base_epoch`) whose keys this
        node has not heard. (Not those whose signature failed under a key it has: a member whose
        key changed (no data directory, an old one, a lost key file) says its new key to every
        member with its first map, and a relayer that made
        signatures up would have every member ask every voter.)"""
        now = self._clock()
        ids = self._ids_at.get(base_epoch, ())
        for index, _ in signed:
            if 0 <= index < len(ids) and ids[index] not in self._vote_keys:
                self._ask_key(ids[index], now)

    def _note_voters(self, voters: list[str], base_epoch: int) -> None:
        """Each of `voters` signed a vote on the map `base_epoch`, so it held that map: judge it by
        its watchers from there on, as if a heartbeat of its had named it (_pin). Adopting a map
        is said loud only by members that did not vote for it (_adopt): this is how the others
        learn who holds what."""
        now = self._clock()
        # (and it voted for the map made on it: a stranded member's lease counts that map's
        # majority too, mesh/strand.py, so it may be judged by its silence under that map)
        decided = next((epoch for epoch, base in self._base_of.items() if base == base_epoch), None)
        for voter in voters:
            if voter != self.me.node_id and self._held.get(voter, -1) < base_epoch:
                self._held[voter] = base_epoch
                self._far.held(voter, now)
                self._pin(voter, base_epoch, now)
            if voter != self.me.node_id and decided is not None and self._voted_for.get(voter, -1) < decided:
                self._voted_for[voter] = decided
                self._far.held(voter, now)

    def _wanted(self, slotmap: SlotMap) -> bool:
        """A newer map, or any cluster's map while this node still holds its own one-member map."""
        return slotmap.supersedes(self.slotmap) or (not self._has_cluster_map() and slotmap != self.slotmap)

    def _offer(self, commit: Commit) -> None:
        """Adopt a map sent in a Commit on the signed votes it carries, if this node holds its
        base; else keep it until members vouch for it (mesh/adoption.py)."""
        slotmap = commit.slotmap
        if not self._wanted(slotmap):
            return
        base = self.slotmap
        if commit.votes and slotmap.base_epoch == base.epoch and self._has_cluster_map() \
                and base.epoch < slotmap.epoch <= commit.ballot:
            map_digest = digest(slotmap)
            backers = self._backers(commit.votes, base.epoch, commit.ballot, map_digest)
            if len(backers) >= election_rules.majority(base):
                self._relayed = Certificate(commit.sender, 0, commit.ballot, base.epoch, map_digest, commit.votes)
                self.counters["caught_up_on_votes"] += 1
                self._adopt(slotmap)
                self._note_voters(backers, base.epoch)
                return
            self._short = commit
            self._ask_keys(base.epoch, commit.votes)
        if self._forced is not None and takeover.same_decision(slotmap, self._forced):
            # another survivor's takeover, the same decision at a higher epoch: no vote
            # could be had for it, and none is needed to agree with ourselves
            self._adopt(slotmap)
            self._forced = slotmap
            return
        self._pending[digest(slotmap)] = slotmap
        if len(self._pending) > PENDING_MAPS:
            oldest = min(self._pending, key=lambda d: self._pending[d].epoch)
            del self._pending[oldest]
        self._adopt_attested()

    def _adopt_attested(self) -> None:
        """Adopt the newest pending map that enough members' heartbeats say they hold."""
        held = {node_id: (beat.epoch, beat.digest) for node_id, beat in self._peer_stats.items()}
        vote = self.election.vote
        for map_digest, slotmap in sorted(self._pending.items(), key=lambda item: -item[1].epoch):
            if adoption.attested(slotmap, map_digest, self.slotmap, self.me.node_id, held,
                                 anchors=self.links.join_peers,
                                 voted_for_it=vote is not None and vote[2] == slotmap):
                self._adopt(slotmap)
                break
        self._pending = {d: m for d, m in self._pending.items() if self._wanted(m)}

    def _adopt(self, slotmap: SlotMap) -> None:
        if not self._wanted(slotmap):
            return
        previous = self.slotmap
        self.slotmap = slotmap  # one assignment: readers see the old map or the new, never a mix
        self._forced = None     # (a takeover sets it again after adopting its map)
        if self.on_adopt is not None:
            self.on_adopt()
        self._joiner_progress = {n: p for n, p in self._joiner_progress.items() if not slotmap.has_member(n)}
        self._adopted_at = self._clock()
        # The ballot in flight (if ours) is decided: the next change need not wait for its retry.
        self._proposed_at = float("-inf")
        self._ballots_in_vain = 0
        self.election.committed(slotmap)
        self._held_votes, self._short = {}, None
        relayed = self._relayed
        on_it = relayed is not None and relayed.base_epoch == previous.epoch and relayed.digest == self._map_digest()
        self._certified = (relayed.ballot, relayed.votes) if relayed is not None and on_it else (0, ())
        self._relayed = None
        # (what is kept of the ballots on the map before: its decided one's proposer and votes)
        self._proposers = {key: sender for key, sender in self._proposers.items()
                           if key[0] == previous.epoch and key[2] == self._map_digest()}
        self._signed = {key: signed for key, signed in self._signed.items() if key[0] == previous.epoch}
        self._save_ballot()
        if slotmap.has_member(self.me.node_id):
            self.joining = False
        now = self._clock()
        watchers = watch.watchers(m.node_id for m in slotmap.members)
        for member in slotmap.members:
            # (every member adopts the map: in a big one, not news to tell, Membership.has_news)
            self._handle_events(self.membership.learn(member, now, tell=watchers is None))
            self.links.connect(member.host, member.mesh_port, member.node_id)
        self.membership.watch(watchers, now)
        if self._adopted_first_at is None:
            self._adopted_first_at = now
            # This process's first map: said to every member, with its vote key, which each
            # checks this node's votes against when a proposer relays them (mesh/votes.py).
            # (A founder's heartbeats went to no founder before: they hear no one outside a map.)
            self._news_until = now + NEWS_BEATS * self._interval_s
        self._ids_at[slotmap.epoch] = tuple(sorted(m.node_id for m in slotmap.members))
        # (the map's own base: a map skipped here breaks the chain, _chain, since the member may
        # hold it, with watchers we do not know)
        if slotmap.base_epoch is not None:
            self._base_of[slotmap.epoch] = slotmap.base_epoch
        for epoch in sorted(self._ids_at)[:-PINNED_MAPS]:
            del self._ids_at[epoch]
            self._base_of.pop(epoch, None)
        for node_id in list(self.membership.pinned):
            if not slotmap.has_member(node_id):
                self.membership.pin(node_id, None, now)
        for member in slotmap.members:
            if member.node_id != self.me.node_id:
                self._pin(member.node_id, self._held.get(member.node_id), now)
        self._handle_events(self.membership.revisit(now))
        for node_id in self.membership.revoke_unheard({m.node_id for m in slotmap.members}, now):
            self._far.restart(node_id)
        self.membership.left_the_map([m.node_id for m in previous.members if not slotmap.has_member(m.node_id)],
                                     {m.node_id for m in slotmap.members})
        self._map_news_until = now + NEWS_BEATS * self._interval_s     # the others may adopt it on our word
        # Said to every member by one that did not vote for it: the others learn from a
        # certificate that its voters held the map's base (_note_voters).
        vote = self.election.vote
        self._map_news_loud = not (vote is not None and vote[1] == previous.epoch and vote[2] == slotmap)
        self._refresh_writes()
        moved = len(slotmap.diff(previous))
        log.info("epoch committed node=%s epoch=%d previous_epoch=%d members=%d slots_changed=%d",
                 self.me.node_id[:8], slotmap.epoch, previous.epoch, len(slotmap.members), moved)
        self._record("epoch", None, f"epoch {slotmap.epoch}: {len(slotmap.members)} members, "
                                    f"{moved} slots changed owners")

    def _save_ballot(self) -> bool:
        """Persist voted_epoch and the map's epoch if they rose; False if that failed (then do not vote)."""
        vote = self.election.vote
        wanted = ballot.Ballot(self.election.voted_epoch, self.slotmap.epoch, *(
            (vote[0], vote[1], pack_slotmap(vote[2])) if vote is not None else ()))
        if self._ballot_path is None or wanted == self._saved:
            return True
        try:
            ballot.save(self._ballot_path, wanted)
        except OSError as error:
            self.counters["ballot_save_failed"] += 1
            log.error("ballot not saved, not voting node=%s epoch=%d error=%s",
                      self.me.node_id[:8], self.slotmap.epoch, error)
            return False
        self._saved = wanted
        return True

    def _resend_commit(self, now: float, behind: str, its_epoch: int) -> None:
        """Send our map again to `behind`, whose message named an older one (`its_epoch`): one
        member does, to it alone, and its other senders only if it stays behind (mesh/catchup.py)."""
        episode = (its_epoch, self.slotmap.epoch)
        known = self._behind.get(behind)
        # (a new episode, its map or ours another since: the turns start again)
        since, sent_at = (known[1], known[2]) if known is not None and known[0] == episode else (now, float("-inf"))
        asked = catchup.senders(behind, self.slotmap.member_ids, self.membership.watchers,
                                self._proposer(self.slotmap))
        # (silent: one this node hears, unheard for two quiet intervals, a pause or a cut that
        # is not a suspicion yet)
        wanted, peers = self._watching[0], self.membership.peers
        quiet_for_s = 2 * self._quiet_interval_s
        passed_over = {node_id for node_id in asked if node_id in self.membership.doubted or node_id in self._behind
                       or (node_id in peers and (wanted is None or node_id in wanted)
                           and now - peers[node_id].heard_at > quiet_for_s)}
        if catchup.due(self.me.node_id, asked, passed_over, now - since, now - sent_at,
                       catchup.spacing_s(self._interval_s, now - since), self._quiet_interval_s):
            sent_at = now
            # (a member of an older version does not subscribe to its own topic: it hears maps
            # sent again under CATCH_UP, with every member catching up)
            self.links.send(Commit(self.me.node_id, self._next_seq(), self.slotmap, *self._certified),
                            addressed(behind, MAPS), CATCH_UP)
        self._behind[behind] = (episode, since, sent_at)

    # -- the timer -------------------------------------------------------

    def _beat(self) -> None:
        tick: int | None = None
        while True:
            try:
                self.beat_once(self._clock(), tick)
            except Exception:  # the heartbeat must outlive any single failure
                log.exception("heartbeat failed node=%s epoch=%d", self.me.node_id[:8], self.slotmap.epoch)
            if self.on_tick is not None:
                try:
                    self.on_tick()
                except Exception:  # (nor may the node's hook stop it)
                    log.exception("timer hook failed node=%s", self.me.node_id[:8])
            if self._quiet_ticks > 1:
                tick, wait = ticks.next_tick(self._interval_s, time.time())
                gevent.sleep(wait)
            else:
                gevent.sleep(self._interval_s)

    def beat_once(self, now: float, tick: int | None = None) -> None:
        """One tick of the timer at `now`: membership, the lease, a heartbeat, a proposal if due.

        `tick`: the number of the wall clock's multiple of the interval it fired on, when the
        timer is aligned (see `_quiet_ticks`); None otherwise."""
        self._arrival.pulse(now)
        self._certify_again()
        self._say_plan(now)
        for voter in list(self._held_votes):
            self._ask_key(voter, now)       # (one asking lost: again, once an interval)
        stalled = self._arrival.stall_ended_at == now
        self._judge_health(now, stalled)
        # Right after this hub stalled (a long command, a pause), the peers' heartbeats that came
        # meanwhile are still unread: suspecting them now would have this node, alone, find
        # everyone silent (and, as the only live voter left in its view, dead). Read first.
        # Late again and again (a starved machine), it waits longer before it suspects anyone.
        if not stalled:
            self._handle_events(self.membership.tick(now, self.health.scaled(self.node_timeout_s)))
            self._judge_far_silence(now)
        self._name_stuck(now)
        for node_id in self.membership.forget_dead(now, self.slotmap.member_ids,
                                                   FORGET_DEAD_AFTER_TIMEOUTS * self.node_timeout_s):
            self._peer_stats.pop(node_id, None)
            self._joiner_progress.pop(node_id, None)
            self._arrived_at.pop(node_id, None)
            self._echoed_at.pop(node_id, None)
            self._answers.pop(node_id, None)
            self._answered_at.pop(node_id, None)
            self._voted_for.pop(node_id, None)
            self._far.forget(node_id)
            self._behind.pop(node_id, None)
            for known in (self._vote_keys, self._asked_key_at, self._answered_key_at, self._held,
                          self._direct_seen, self._direct_since):
                known.pop(node_id, None)
            self.links.disconnect(node_id)
        self._refresh_writes()
        self._call_the_roll(now)
        self._send_heartbeat(now, tick)
        if self._found_after is not None:
            self._found_anew(now)
        self._propose(now)

    def _judge_far_silence(self, now: float) -> None:
        """Hold dead the members their watchers have reported for long that this node did not
        hear meanwhile either (mesh/strand.py); a map without them needs a majority that did so."""
        if self.membership.watchers is None:
            return
        reported = {node_id for node_id in self.membership.firmly_reported(now, strand.REPORT_FRESH * self.node_timeout_s)
                    if self._majorities_meet(node_id)}
        for node_id in self._far.judge(now, reported):
            self._far_dead_at = now
            self._handle_events(self.membership.hold_dead_unheard(node_id, now))

    def _majorities_meet(self, node_id: str) -> bool:
        """Whether a majority of our map must meet a majority of each map `node_id` may hold.

        A stranded member's lease counts a majority of the map it holds and of the one it voted
        for (_whole_map_lease), and a map without it needs a majority of ours: the two must meet.
        They do when it is known to hold our map (a heartbeat named it) or to have voted for it (a
        certificate, _note_voters), and when each map it may hold since the one it was heard
        holding is near enough ours that any two majorities share a member. A review had a member
        holding the map before 4 removals keep its lease on their answers (11 of that map's 20)
        while 9 of the newer map's 16 removed it. Not known which map it holds: no."""
        current = self.slotmap.epoch
        held = self._held.get(node_id)
        if held == current or self._voted_for.get(node_id) == current:
            return True
        chain = self._chain(held) if held is not None and held < current else None
        if chain is None:
            return False
        ours = self._ids_at[current]
        for epoch in chain:
            theirs = self._ids_at[epoch]
            if len(ours) // 2 + 1 + len(theirs) // 2 + 1 <= len(set(ours).union(theirs)):
                return False
        return True

    def _call_the_roll(self, now: float) -> None:
        """While stranded, or about to be (a watcher silent for a node timeout), ask every member
        to answer: the evidence the lease needs then (mesh/strand.py)."""
        if self._strand_group is None or not self._stranding.calling(now, self._group_evidence):
            return
        if now - self._roll_called_at < strand.CALL_EVERY * self.node_timeout_s - self._interval_s / 2:
            return
        self._roll_called_at = now
        seq = self._next_seq()
        self._calls_sent.sent(seq, now)     # (an answer is worth what an echo of a heartbeat sent now is)
        self.counters["roll_calls"] += 1
        self.links.send(RollCall(self.me.node_id, seq, self.membership.incarnation))

    def _on_roll_call(self, call: RollCall, now: float) -> None:
        """A member stranded by its watchers' silence asks for an answer: it was heard (its silence
        is judged again from now), and it is answered, once per half its calling interval."""
        peer = self.membership.peers.get(call.sender)
        if peer is None or not self.slotmap.has_member(call.sender) or call.incarnation < peer.incarnation:
            return
        self._far.heard(call.sender, now)
        # Held suspect or dead here (a watcher that lost its heartbeats, say), or removed by the
        # map this node voted for: no evidence for its lease, since this node may count towards
        # its removal (a review: watchers that held it suspect answered, and voted it out).
        if peer.state != State.ALIVE or not self.slotmap.has_member(self.me.node_id) \
                or call.sender in self._voted_out():
            return
        if now - self._answered_at.get(call.sender, float("-inf")) < strand.CALL_EVERY * self.node_timeout_s / 2:
            return
        if not self.links.addressable(call.sender):
            # (not to every member, as `send` would fall back to: an answer names no addressee, only
            # the call's seq. Its subscription to its own topic is seen here within moments of its
            # link, and it calls again a third of a node timeout later.)
            self.counters["roll_answers_held"] += 1
            return
        self._answered_at[call.sender] = now
        self.links.send(RollAnswer(self.me.node_id, self._next_seq(), call.seq), addressed(call.sender))

    def _voted_out(self) -> frozenset[str]:
        """The members of our map that the map this node last voted for, on it, removes: no echo
        and no roll-call answer for them while that vote stands, since it may count towards their
        removal (a review: watchers that voted a cut-off member out, then missed the certificate and
        heard it again, echoed it back into its lease while the others served its slots)."""
        vote = self.election.vote
        if vote is None or vote[1] != self.slotmap.epoch:
            return frozenset()
        voted = vote[2]
        return frozenset(m.node_id for m in self.slotmap.members if not voted.has_member(m.node_id))

    def _removed_here(self, node_id: str) -> bool:
        """Whether `node_id` is outside our map while it was last heard holding a map, ours or
        older, with itself in it (or one not known here): a member our map removed, heard again
        after a cut. Its echo would renew a lease it must not have: members of the newer map
        echoed one they had removed for 0.1-0.2 s after a cut healed (a review). A newcomer, whose
        heartbeats name its own one-member map (epoch 0) or ours once admitted, is echoed: its
        lease is ready as it adopts the map that admits it (not echoed, it waited 0.4-0.6 s more)."""
        if self.slotmap.has_member(node_id):
            return False
        held = self._held.get(node_id)
        if held is None or held == 0 or held > self.slotmap.epoch:
            return False
        ids = self._ids_at.get(held)
        return ids is None or node_id in ids

    def _on_roll_answer(self, answer: RollAnswer, now: float) -> None:
        """A member answered this node's roll call: evidence as an echo is, the older of when the
        answer arrived and when the call left."""
        sent_at = self._calls_sent.sent_at(answer.call_seq)
        if sent_at == float("-inf") or not self.slotmap.has_member(answer.sender):
            return
        evidence = min(self._arrival.arrived_by(now), sent_at)
        if evidence > self._answers.get(answer.sender, float("-inf")):
            self._answers[answer.sender] = evidence
            self._refresh_writes()

    def _judge_health(self, now: float, late: bool) -> None:
        """Count a late tick (or a refutation) as evidence against this node's own timeliness, or an
        on-time one for it (mesh/awareness.py)."""
        before = self.health.score
        if late:
            self.health.late(now)
        else:
            self.health.tick(now)
        self._say_health(before)

    def _say_health(self, before: int) -> None:
        """Log a change of the local health score: once a little late (2, not every brief stall's 1),
        once at the top, once on time again; a starved node's score goes up and down meanwhile."""
        score, said = self.health.score, self._health_said
        if score > before and score >= 2 and said < 1:
            self._health_said = 1
            log.info("this node runs late node=%s: it suspects a silent peer after %.1fs, not %.1fs",
                     self.me.node_id[:8], self.health.scaled(self.node_timeout_s), self.node_timeout_s)
        if score == MAX_SCORE and said < 2:
            self._health_said = 2
            log.warning("this node runs late again and again node=%s (a starved machine?): it suspects a "
                        "silent peer after %.1fs, %d times node_timeout", self.me.node_id[:8],
                        self.health.scaled(self.node_timeout_s), MAX_SCORE + 1)
        elif score == 0 and said:
            self._health_said = 0
            log.info("this node runs on time again node=%s: it suspects a silent peer after node_timeout",
                     self.me.node_id[:8])

    def _send_heartbeat(self, now: float, tick: int | None = None) -> None:
        """Send a heartbeat, unless it would say nothing new and the last one left less than the quiet
        interval ago (less half a tick), or, on an aligned timer (`tick`), it is not this member's
        phase and the last one left less than the quiet interval and half a tick ago."""
        stats = self._local_stats()
        self._listen(now, stats.get("awaits", frozenset()))
        news = self.membership.has_news(now, NEWS_BEATS * self._interval_s)
        catching_up = tuple(stats.get("catching_up", ()))
        holds = int(stats.get("holds", 0))
        # What a member holds is for the members that wait for it (the proposer before a move
        # for balance, members keeping fallback copies): they hear this node's quiet heartbeats
        # (_listen). A change goes out at once, to them: said to every member, four times and
        # again 2, 6, 14 and 30 s later, each map change cost N x N x 8 heartbeats (README).
        # Once to every member when it no longer holds a map it said it held (a copy begun
        # again): the proposer stops listening once it heard it hold. And once to every
        # member while one of the version before is here: those hear what others hold only
        # as news (links.py `older_here`).
        prompt = holds != self._holds_sent
        loud_holds = prompt and (self.links.older_here() or (holds < self._holds_sent == self.slotmap.epoch))
        self._holds_sent = holds
        if self.membership.incarnation != self._incarnation_sent:
            self._incarnation_sent = self.membership.incarnation
            self._news_until = now + NEWS_BEATS * self._interval_s
        outside = self.joining or not self.slotmap.has_member(self.me.node_id)
        roster = now - self._roster_sent_at >= roster_every_s(len(self.membership.peers) + 1) or (
            self._roster_due and now - self._roster_sent_at >= ROSTER_AFTER_JOIN_S)
        # (behind: at every tick, so that a member that heard it name the old map sends it the
        # new one a tick later, not a quiet interval later: mesh/catchup.py)
        quiet = not (outside or news or catching_up or roster or now <= self._news_until
                     or now <= self._map_news_until or self._behind_now(now))
        # (half a timer interval of slack: the timer's ticks come a little late, never early)
        if quiet and not prompt:
            since = now - self._beat_sent_at
            if tick is None:
                due = since >= self._quiet_interval_s - self._interval_s / 2
            else:
                # on this member's phase (early after a heartbeat with news rather than late)
                due = (tick % self._quiet_ticks == self._quiet_phase and since > self._interval_s / 2
                       or since >= self._quiet_interval_s + self._interval_s / 2)
            if not due:
                return
        self._beat_sent_at = now
        seq = self._next_seq()
        self._sent_beats.sent(seq, now)     # `now` is before it leaves: an echo of it is not overrated
        # Echoes are for the members whose lease counts this node: its watchers (all, in a small map),
        # not one the map this node voted for removes (`_voted_out`), nor one our map removed that
        # still holds a map with itself in it (`_removed_here`).
        watching = self._watching[0]
        peers = self.membership.peers
        echoed = sorted(peers) if watching is None else sorted(n for n in watching if n in peers)
        voted_out = self._voted_out()
        heard = tuple((echo_key(node_id), peers[node_id].seq) for node_id in echoed
                      if peers[node_id].seq >= 0 and peers[node_id].state != State.DEAD
                      and node_id not in voted_out and not self._removed_here(node_id))
        if roster:
            # The whole member list, now and then and for a newcomer: news a member missed, and
            # incarnations a restarted member must outbid.
            self._roster_sent_at, self._roster_due = now, False
            gossip = self.membership.gossip()
        else:
            gossip = self.membership.gossip(now, NEWS_BEATS * self._interval_s)
        # Idle, a heartbeat is only for the watchers. With news (suspicions, members learned,
        # a refutation) it goes to every member: that is how news spreads in one hop. A node
        # outside its map (joining) speaks to the members (mesh/links.py). A map just adopted
        # is said at every tick, in a small map to every member, in a big one to whoever hears
        # this node's quiet heartbeats: its watchers, the members behind or joining (they adopt
        # on a majority's word, mesh/adoption.py), and those waiting for what it holds (to every
        # member, each map cost N x N heartbeats, 4 each). The others know it held the map's
        # base from its vote in the certificate (_note_voters); one whose vote is in none says
        # the map to every member (_adopt).
        # A quiet heartbeat with an empty member list leaves out this node's addresses: its
        # watchers hold them. With a suspicion, a death or the roster it names them, so that a
        # node that does not know this one (a member restarted under its old id, held dead
        # here, whose Hello was lost) learns it, reads the list and refutes.
        if outside:
            topic = OUTSIDE
        elif news or catching_up or loud_holds or now <= self._news_until or self.membership.watchers is None \
                or (now <= self._map_news_until and self._map_news_loud) or self._retelling(now):
            topic = b""
        else:
            topic = QUIET
        me = None if topic == QUIET and not gossip else self.me
        self.links.send(Heartbeat(
            self.me.node_id, seq, self.membership.incarnation, self.slotmap.epoch,
            self._map_digest(), me, gossip,
            int(stats.get("keys", 0)), int(stats.get("used_memory", 0)),
            float(stats.get("ops_per_sec", 0.0)), catching_up, heard=heard, holds=holds,
            vote_key=b"" if me is None else self._signer.public), topic)

    def _retelling(self, now: float) -> bool:
        """Whether this heartbeat goes to every member to renew this node's report of a map member
        it watches and holds suspect: one each RETELL while the suspicion stands, so that the report
        stays fresh everywhere (mesh/strand.py: a member whose watchers mostly died with it is
        judged by every member on its surviving watchers' reports)."""
        if now - self._retold_at < strand.RETELL * self.node_timeout_s - self._interval_s / 2:
            return False
        peers, slotmap = self.membership.peers, self.slotmap
        if not any(peers[node_id].state == State.SUSPECT and slotmap.has_member(node_id)
                   and self.membership.watches(node_id) for node_id in self.membership.doubted):
            return False
        self._retold_at = now
        return True

    def beat_if_due(self) -> None:
        """Send a heartbeat if one is due: called from inside a long command (hypercache/pulse.py).

        The node is busy, not dead: its peers keep hearing it. Only the heartbeat
        goes out (same content as the timer's, a fresh seq); nothing is read or
        decided, and the lease's pulse (`_arrival`) is left alone, so the command
        still counts as a stall of this node's hub: heartbeats that arrived
        meanwhile are not taken as fresh when they are read after it
        (mesh/lease.py). A hub stuck elsewhere, in no paced loop, sends nothing.
        """
        now = self._clock()
        if now - self._beat_sent_at < self._interval_s or self._pub_closed():
            return
        sent_at = self._beat_sent_at
        self._send_heartbeat(now)
        if self._beat_sent_at != sent_at:
            self.counters["busy_beats"] += 1

    def _pub_closed(self) -> bool:
        return not self.links.bound

    def _name_stuck(self, now: float) -> None:
        """Warn once about each map member suspect for long but never declared dead."""
        after = STUCK_AFTER_TIMEOUTS * self.node_timeout_s
        peers = self.membership.peers
        stuck = {node_id for node_id in self.membership.doubted
                 if peers[node_id].state == State.SUSPECT and now - peers[node_id].state_at > after
                 and self.slotmap.has_member(node_id)}
        for node_id in stuck - self._stuck_named:
            log.warning("member suspect for %.0f s and not declared dead node=%s peer=%s: its watchers are gone "
                        "or cut off with it (none left to report it), and its slots wait; if it is gone for good, run "
                        "CLUSTER FORGET %s on every member (if it is only cut off, both sides then serve "
                        "its slots)", after, self.me.node_id[:8], node_id[:8], node_id)
            self._record("stuck", node_id, "suspect for long, not declared dead: CLUSTER FORGET if it is gone")
        self._stuck_named = stuck

    def _behind_now(self, now: float) -> bool:
        """Whether a heartbeat named a newer map than ours lately (this node missed a commit)."""
        newest_epoch, heard_at = self._newest_heard
        return newest_epoch > self.slotmap.epoch and now - heard_at < 2 * self.node_timeout_s

    def _listen(self, now: float, awaited: frozenset[str]) -> None:
        """Choose whose quiet heartbeats to hear: the watched members, newcomers, the doubted,
        those whose `holds` this node waits for; or everyone.

        Everyone while this node is joining or behind (a newer map was heard: its
        adoption needs a majority's heartbeats naming it, mesh/adoption.py), and in
        small maps. A member in doubt or outside the map is heard whole, so that
        its refutation or its request to join reaches this node. The data plane
        names the members it waits for (`awaited`: the owners of its fallback
        copies' slots...), and the proposer waits for every member to hold the map
        before it moves slots for balance (_settled).
        """
        watchers = self.membership.watchers
        behind = self._behind_now(now)
        # (and for two quiet intervals after this process's first map: a restarted node must hear
        # every member say which map it holds, or it has no verdict on it: Mesh._pin)
        fresh = self._adopted_first_at is not None and now - self._adopted_first_at < 2 * self._quiet_interval_s
        if watchers is None or self.joining or behind or fresh or self.me.node_id not in watchers:
            wanted = None
        else:
            me = self.me.node_id
            peers = self.membership.peers
            # (set operations on the keys, not a walk of every peer each tick)
            wanted = frozenset(watchers[me] | (peers.keys() - watchers.keys()) | self.membership.doubted | {
                node_id for node_id, group in self.membership.pinned.items() if me in group})
            if awaited:
                wanted |= awaited - {me}
            # (the proposer: every member until heard holding the current map, then none of them
            # until the next; one that stops holding it says so to all, _send_heartbeat)
            current = self.slotmap
            if current.tokens is not self._even_tokens and self._proposer(current) == me:
                wanted |= {node_id for node_id in current.member_ids
                           if node_id != me and self.holds(node_id) < current.epoch}
        # Other joiners matter once there is a cluster map to plan a join on (a member's, or
        # the one a joiner adopted ahead of its admission); founders joining a seed do not.
        outsiders = self._has_cluster_map() and (self.slotmap.epoch > 0 or not self.joining)
        unheard = frozenset() if outsiders else frozenset(
            node_id for node_id in self.membership.peers
            if not self.slotmap.has_member(node_id) and node_id not in self.links.join_peers)
        if unheard != self.membership.unheard:
            self.membership.watch(self.membership.watchers, now, unheard)
        catch_up = wanted is None or not self.slotmap.has_member(self.me.node_id)
        if (wanted, outsiders, catch_up) != self._watching:
            self._watching = (wanted, outsiders, catch_up)
            self.links.watch(wanted, outsiders, catch_up)
        self._hear_unlinked(wanted, now)

    def _hear_unlinked(self, wanted: frozenset[str] | None, now: float) -> None:
        """Hear the peers this node has no link to (no room for their SUBs: hypercache/open_files.py),
        and the watched ones its link to has not brought a word from for half a node timeout,
        through two members it has links to, which publish again what those peers say
        (mesh/links.py `relay`): their watchers first, which hear their quiet heartbeats too,
        those of the peers this node wants to hear (`wanted`).

        Without it a peer with no link was never heard here: suspected for good if this node
        watched it, its news and proposals missed, and this node's own lease short of its
        watchers' echoes. A watched peer whose link alone fails (one way: it hears us, others
        hear it) is heard through others before its silence here counts, as SWIM asks others to
        probe a member that did not answer; one that is silent everywhere is suspected when it
        always was, at node_timeout."""
        if not self.links.relaying:
            return      # (a closed mesh: every message read off its sender's own link, mesh/links.py)
        silent = self._unheard_directly(now)
        unlinked = self.links.unlinked()
        membership = self.membership
        peers = membership.peers
        # (not the dead: nothing to hear; a suspect yes, its refutation may come only this way)
        asked = {origin for origin in unlinked | silent
                 if origin in peers and peers[origin].state != State.DEAD}
        if not asked and not self._relayed_by:
            return
        # Relayers: members this node hears on their own link and doubts not (not a joiner, nor a
        # peer relayed itself; the --join peers while it holds no cluster map yet), mesh/relays.py.
        candidates = self.slotmap.member_ids if self._has_cluster_map() else self.links.join_peers
        linked = (self.links.linked() & candidates) - membership.doubted - asked
        chosen = self._relays.choose(now, {origin: wanted is None or origin in wanted for origin in sorted(asked)},
                                     linked, lambda origin: membership.watchers_of(origin) or frozenset(),
                                     self.links.relays_heard)
        if chosen.keys() != self._relayed_by.keys():
            if chosen:
                log.info("mesh peers heard through relays node=%s unlinked=%s silent_link=%s",
                         self.me.node_id[:8], ",".join(sorted(p[:8] for p in chosen if p in unlinked)),
                         ",".join(sorted(p[:8] for p in chosen if p not in unlinked)))
            else:
                log.info("mesh peers all heard on their own links again node=%s", self.me.node_id[:8])
        self._relayed_by = chosen
        self.links.relay(self._relayed_by)      # (which sets its SUBs again only if they or the choice changed)

    def _unheard_directly(self, now: float) -> frozenset[str]:
        """The watched map members, heard directly before, whose own link brought nothing for half
        a node timeout (a quiet heartbeat comes every node_timeout / 6: three missed in a row)
        while other links brought messages for that long after: not this node's own stall or long
        command (no link read then), nor a joiner (suspected after twice the silence). A suspect
        stays on: its refutation may reach this node only through relays."""
        links, membership = self.links, self.membership
        counts, seen, since = links.heard_directly, self._direct_seen, self._direct_since
        if links.heard_directly_total != self._direct_total:
            self._direct_total, self._direct_any_at = links.heard_directly_total, now
        watched = membership.watched()
        # (who is no longer watched is counted afresh if watched again: the set changes in place too)
        for node_id in seen.keys() - watched:
            del seen[node_id], since[node_id]
        quiet_for = self.node_timeout_s / 2
        members = self.slotmap.member_ids
        # (right after this node's own stall, the links' backlogs are read one after another: a
        # peer read last is not silent, only late; none is newly found silent for a quiet interval)
        just_stalled = now - self._arrival.stall_ended_at < self._quiet_interval_s
        unheard = []
        for node_id in watched:
            count = counts.get(node_id, 0)
            if count != seen.get(node_id):
                seen[node_id], since[node_id] = count, now
            elif count and now - since[node_id] > quiet_for and self._direct_any_at - since[node_id] > quiet_for \
                    and node_id in members and (not just_stalled or node_id in self._relayed_by):
                unheard.append(node_id)
        return frozenset(unheard)

    def _map_digest(self) -> bytes:
        """The current map's digest, computed once per map (it hashes every token)."""
        if self._digest is None or self._digest[0] is not self.slotmap:
            self._digest = (self.slotmap, digest(self.slotmap))
        return self._digest[1]

    def _found_anew(self, now: float) -> None:
        """A restarted first node founds a cluster once nobody it hears holds one (see __init__)."""
        if not self.joining or self.slotmap.members != (self.me,):
            self._found_after = None
            return
        if any(beat.epoch > 0 and self.is_alive(node_id) for node_id, beat in self._peer_stats.items()):
            self._found_after = now + FOUND_AFTER_TIMEOUTS * self.node_timeout_s   # a cluster lives: wait
            return
        if self._found_after is not None and now >= self._found_after:
            self._found_after = None
            self.joining = False
            log.info("no cluster heard: founding one node=%s epoch=%d", self.me.node_id[:8], self.slotmap.epoch)
            self._refresh_writes()

    def _proposer(self, slotmap: SlotMap) -> str | None:
        """The lowest member of `slotmap` that no live member holds suspect (election.proposer)."""
        return election_rules.proposer(slotmap, self.membership.unsuspected_test())

    def _propose(self, now: float) -> None:
        """If this node is the proposer and the membership differs from the map, ask for votes."""
        current = self.slotmap
        # (the lowest member not suspect here: one held suspect may stay so, never declared dead,
        # when a cut leaves most of its watchers with it, and the maps must go on without it)
        if (self.joining or self.leaving
                or self._proposer(current) != self.me.node_id):
            self._ballots_in_vain = 0   # (a later turn as proposer starts its retries afresh)
            return
        # A proposal in flight gets one node_timeout to gather votes before a retry, counted
        # from when its map was placed: a placement still running is not retried (a second
        # one only competed with the first for the CPU: 47 founders were never placed). Each
        # further retry in vain waits twice as long (RETRY_BACKOFF_MAX).
        if self._placing or now - self._proposed_at < self._retry_after_s():
            return
        # (every member reaches its own verdict on a stranded member within a tick or two of the
        # others, mesh/strand.py: proposed at once, the removal lacked a vote or two and waited a
        # node timeout for its retry, 3 s in a 14-node test, and took the others one at a time)
        if now - self._far_dead_at < FAR_SETTLE_BEATS * self._interval_s:
            return
        dead, joining = self._changes()
        if not election_rules.changes(current, dead, joining) and not self._uneven(now):
            # (the change in vain is wanted no more: a joiner died, a suspect came back; the next
            # one's retries start afresh, not 4 node timeouts apart: a review)
            self._ballots_in_vain = 0
            return
        # Members dead by their watchers wait while another, reported as long and not dead, is
        # awaiting its verdict on silence (mesh/strand.py): removed first, in a map of several, they
        # would leave it pinned to the map before, where its verdict may not be safe
        # (_majorities_meet): a third of a cluster crashing at random left 1-4 members for the
        # operator in 9 of 10 runs. Together they go in one map, ~3 node timeouts later.
        if dead and self._far.awaited(now):
            return
        # (not at replication factor 1: there a first map admitting two joiners at once made a
        # later graceful leave wait out its timeout, its handoff never ending: 3 of 3 runs under
        # load of test_a_graceful_leave_at_replication_factor_1; issue 11 lists rf 1 double
        # joins as not handled by the data plane yet)
        if (current.epoch == 0 and current.replication_factor > 1 and joining and not dead
                and not self._joins_settled(joining, now)):
            return
        self._proposed_at = now
        self._ballots_in_vain += 1
        ballot_number = self.election.prepare(current)
        log.info("preparing node=%s ballot=%d dead=%d joining=%d",
                 self.me.node_id[:8], ballot_number, len(dead), len(joining))
        prepare = Prepare(self.me.node_id, self._next_seq(), ballot_number, current.epoch)
        self.links.send(prepare)
        self._on_prepare(prepare, now)

    def _retry_after_s(self) -> float:
        """How long the ballot in flight waits before the next: a node timeout after the first, then
        twice as long after each retry that decided nothing either, up to RETRY_BACKOFF_MAX."""
        return self.node_timeout_s * min(2 ** max(self._ballots_in_vain - 1, 0), RETRY_BACKOFF_MAX)

    def _joins_settled(self, joining: list[Member], now: float) -> bool:
        """True once no newcomer appeared for JOIN_SETTLE_S, or the first has waited a node_timeout.

        Founders start within a few seconds of each other: proposing for each one as
        it appears made one epoch per newcomer; waiting for a lull puts them in a few maps.
        """
        learned = [self.membership.peers[m.node_id].changed_at for m in joining
                   if m.node_id in self.membership.peers]
        if not learned:
            return True
        return now - max(learned) >= JOIN_SETTLE_S or now - min(learned) >= self.node_timeout_s

    def _uneven(self, now: float) -> bool:
        """Time to move slots for balance: the map is settled, and uneven past tolerance."""
        current = self.slotmap
        if current.tokens is self._even_tokens:
            return False
        if not balance.busiest(current.tokens, current.replication_factor)[2]:
            # (even: asked no more until the ring changes. _settled walks every slot, ~10 ms
            # measured at load 7, and this runs four times a second on the proposer)
            self._even_tokens = current.tokens
            return False
        return self._settled(now)

    def _settled(self, now: float) -> bool:
        """Time to move slots for balance: the map stood a while, every member and nobody
        else is alive (no death, leave or join under way), this node's data is in place, and
        every member says it holds all it owns."""
        current = self.slotmap
        return (current.epoch > 0 and len(current.members) > 1
                and now - self._adopted_at >= REBALANCE_AFTER_TIMEOUTS * self.node_timeout_s
                and all(m.node_id in self.membership.peers and self.membership.state(m.node_id) == State.ALIVE
                        for m in current.members if m.node_id != self.me.node_id)
                and not self.joiners() and not self.leaving and self._data_settled()
                # (from their heartbeats: a voter still copying refuses the map, but the
                # proposer's own vote carries it to a later ballot, where voters do not check)
                and all(self.holds(m.node_id) >= current.epoch for m in current.members
                        if m.node_id != self.me.node_id))

    def _changes(self) -> tuple[list[str], list[Member]]:
        """Return the members of the map now dead and the live peers not in it.

        Crashed members go at once (their copies are wherever they are). Members
        that left gracefully go one per map, and only on a Leave said since this
        map was adopted: the previous leaver's slots may have just landed on them,
        and they say Leave again only once those are copied on (Mesh.leave). A
        leaver silent on that for 2 node timeouts is taken as crashed.
        """
        current = self.slotmap
        left_at = self.membership.left_at
        now = self._clock()
        dead, left = [], []
        unheard_dead = self.membership.unheard_dead
        member_ids = current.member_ids
        for m in current.members:
            if m.node_id == self.me.node_id or self.membership.state(m.node_id) != State.DEAD:
                continue
            # Held dead on its silence (mesh/strand.py): proposed only once a majority of the map
            # holds it so, since a map once voted for is carried to its end by later ballots, and a
            # proposer deaf to a member the others hear would otherwise remove it alone (a review:
            # a closed mesh, the proposer and one watcher cut from it, it was removed).
            if m.node_id in unheard_dead and \
                    self.membership.held_dead_by(m.node_id, member_ids) < election_rules.majority(current):
                continue
            at = left_at.get(m.node_id)
            if at is None or now - self._adopted_at > 2 * self.node_timeout_s:
                dead.append(m.node_id)
            elif at > self._adopted_at:
                left.append(m.node_id)
        dead += sorted(left)[:1]
        if dead and current.epoch > 0:
            # A death or a leave goes first, in a map of its own: its arcs pass to members
            # holding them, while the joiners' copies ahead were planned on a map with the
            # member in it (admitted together, a joiner pulled behind TRYAGAIN the slots the
            # plan had not given it). The joiners' plan is made again on the new map.
            return dead, []
        # (one silent for more than a node timeout waits, unsuspected yet: a newcomer gets twice
        # that before its watchers suspect it, membership.OUTSIDE_SILENCE_FACTOR, and admitted it
        # would be a member silent past its watchers' patience, removed by the next map)
        peers = self.membership.peers
        joiners = {member.node_id: member for member in self.joiners()
                   if now - peers[member.node_id].heard_at <= self.node_timeout_s}
        stalled = {node_id for node_id in joiners
                   if now - self._joiner_progress.get(node_id, (None, now))[1] >= self._precopy_patience_s}
        progress = {node_id: entry for node_id, (entry, _) in self._joiner_progress.items() if entry is not None}
        # (a first formation is admitted at once: a founder's map at epoch 0 reaches no
        # joiner before it is a member, so nobody could copy it anything ahead)
        admitted = (sorted(joiners) if current.epoch == 0
                    else election_rules.admissible(current.epoch, sorted(joiners), progress, stalled))
        return dead, [joiners[node_id] for node_id in admitted]

    def joiners(self) -> list[Member]:
        """Live peers the map does not hold yet, suspected by none of their watchers: nodes asking to join.

        (In a big map only a newcomer's watchers suspect it on silence, Membership.watchers_of:
        this node reads their reports, or it would admit one they hold silent.)"""
        current = self.slotmap
        reported = self.membership.reported_by_watchers_test()
        return [p.member for p in self.membership.peers.values()
                if p.state == State.ALIVE and p.seq >= 0 and not current.has_member(p.member.node_id)
                and not reported(p.member.node_id)]

    def _note_progress(self, node_id: str, entry: tuple[int, int, int] | None, now: float) -> None:
        """Remember a joiner's pre-copy progress and when it last moved (stalled: admitted anyway)."""
        known = self._joiner_progress.get(node_id)
        if known is None or known[0] != entry:
            self._joiner_progress[node_id] = (entry, now)

    # -- events ----------------------------------------------------------

    def _handle_events(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Joined):
                self.links.connect(event.member.host, event.member.mesh_port, event.member.node_id)
                self._roster_due = True     # the newcomer learns the others from it
                self._record("join", event.member.node_id, "member learned")
            elif isinstance(event, Suspected):
                self._record("suspect", event.node_id, "its death counted again under the new map" if event.recounted
                             else "outside the map, no heartbeat within twice node_timeout"
                             if not self.slotmap.has_member(event.node_id) and self.membership.watchers is not None
                             else "no heartbeat within node_timeout" if not self.health.score
                             else f"no heartbeat within {self.health.scaled(self.node_timeout_s):.0f}s "
                                  "(this node runs late: local health)")
            elif isinstance(event, Died):
                self._record("dead", event.node_id, "removed by the map, and silent here" if event.removed_by_map
                             else "the operator's CLUSTER FORGET" if event.by_operator
                             else "its watchers reported it for long, and this node did not hear it either"
                             if event.unheard_by_all
                             else "a majority suspects it")
            elif isinstance(event, Recovered):
                self._record("alive", event.node_id, "heartbeat heard again")
            elif isinstance(event, Left):
                self._record("leave", event.node_id, "announced its leave")
            elif isinstance(event, Refuted):
                self._record("alive", self.me.node_id, f"refuted suspicion at incarnation {event.incarnation}")
                # the others did not hear this node in time: as much evidence of its lateness as a late tick
                self._judge_health(self._clock(), late=True)

    def _record(self, kind: str, node_id: str | None, text: str) -> None:
        self.events.append(MeshEvent(time.time(), kind, node_id, self.slotmap.epoch, text))
