"""Replication: ship every write's effect to the slot's replicas, hold replies until they applied it.

The write seam is the store's `written` list: every mutation appends its key
(the dispatcher's lane and the general path alike, expiry and eviction too),
so no write reaches the store without reaching this module. Once per loop
iteration (`commit`, called by the server's prepare watcher before replies
go out) the keys written are read back as effects (hypercache/effects.py) and
sent, one frame per replica stream, over the data channel (mesh/datalink.py);
the stream arithmetic is mesh/replication.py's.

In `sync` mode the connections that wrote in the iteration keep their replies
(Connection.held) until every stream their keys went to acknowledged the
frame: a pipeline of 16 SETs costs one round trip, and the hub never waits.
A replica that stops answering holds them until the map drops it; a client
whose slot got another primary meanwhile is closed, never acknowledged. In
`async` mode replies go out at once and the effects follow in LAZY frames,
which the replica acknowledges once per upkeep tick (WAIT asks at once).

A replica applies frames in order per stream, refuses gaps (the primary then
restarts the stream with a full copy) and frames from a node its map does not
name as the slots' primary (fencing), and acknowledges what it applied.
"""
from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import Event

from mesh import greenlets, plans, ticks, replication as wire
from mesh.placer import PlacerClosed
from mesh.datalink import data_port, open_link
from mesh.holdings import Holdings
from mesh.keyslot import keyslot
from mesh.replication import Frame, InStream, OutStream, lost_their_lead

from .blocking import LOADING
from . import pulls
from .effects import BadState, joined, pieces_of, state_of, value_of
from .slot_roles import SlotRoles, slot_roles

if TYPE_CHECKING:
    from .connection import Connection

log = logging.getLogger(__name__)

MODES = ("sync", "async")
MAINTAIN_EVERY_S = 0.05         # the upkeep's pace while anything is under way; also how long a LAZY frame waits for its ACK
# With nothing under way (no copy, pull, hand-off, held client, lazy ACK, joiner or map to follow)
# the upkeep ticks this often instead, and is woken early by what starts such work (a LAZY frame, a
# new map). 20 ticks a second cost an idle node of 12 members ~0.3% of a core (loadtest/mesh_cost.py);
# 4 a second, ~0.4-0.6 ms each, were still a fifth of its idle CPU (docs/performance.md). What is
# left at this pace is measured in seconds: keep-alives (KEEP_ALIVE_S at the least), kept copies'
# expiry; a stall and a lapsed lease are noted at the mesh's ticks (note_absence).
IDLE_EVERY_S = 1.0
# A full copy goes out in frames of at most this many keys or bytes, one per
# hub turn, so clients and heartbeats go on while a big slot is copied.
COPY_CHUNK_KEYS = 512
COPY_CHUNK_BYTES = 4 * 1024 * 1024
# A commit's frame of effects is closed once they pass this many bytes, and a value
# bigger than PART_BYTES travels in PART frames of that size (mesh/replication.py):
# every frame stays far below the data channel's MAX_FRAME_BYTES, and a replica
# receives a 400 MB value a piece per hub turn instead of in one frame.
BATCH_BYTES = COPY_CHUNK_BYTES
PART_BYTES = 1024 * 1024
# Copy frames sent and not yet acknowledged before the copy waits for the replica.
COPY_WINDOW = 8
# A held client whose replicas have not acknowledged after this many node
# timeouts (the failure detector changes the map long before) is closed.
HOLD_LIMIT_TIMEOUTS = 3
NO_STREAMS: tuple = ()
NO_WRITERS: frozenset = frozenset()
AFTER_COPY = -1
PULL_EVERY_S = 1.0              # a pull unanswered this long asks the next owner
# An idle stream gets an empty frame this often (Redis's REPLCONF ACK): its ACK dates the replica's
# last word (min-replicas-to-write reads it: good_replicas), and a replica that restarted empty
# answers it with a GAP, which restarts the stream with a full copy. Every member feeds most
# others (vnodes): once a second each, it was the idle cost that grew with the members. So over
# plain TCP, whose link reports a broken connection (a restarted replica's), that stream gets its
# empty frame at once (_on_reset) and the others every IDLE_KEEP_ALIVE_S, unless
# min-replicas-to-write is set; over CURVE (zmq reconnects unseen) every second, as before.
KEEP_ALIVE_S = 1.0
IDLE_KEEP_ALIVE_S = 10.0
NO_SOURCE_GRACE_S = 3.0         # how long after a map change "nobody holds it" is believed
RETAIN_S = 60.0                 # how long a former owner keeps a slot for its new primary to pull
FALLBACK_S = 300.0              # a fallback copy's longest stay when its owners never say they hold it
COPY_SILENCE_S = 5.0            # a copy in progress with no frame for this long is asked for again
DROP_KEYS_PER_TICK = 2000       # keys of slots we no longer own deleted per upkeep tick
FORMER_PULLS = 3                # pulls a member that left may leave unanswered before it counts as gone
# The proposer's new plan for joiners waits this many times as long as its last one took: placing
# 55 newcomers on a 45-member ring takes ~0.7 s of CPU compiled (1.4 s as Python), made again each
# time one more joiner appeared. (When every member and joiner placed it, 100 nodes starting over a
# minute on 2 cores planned until none of them heard a majority: README, "How the mesh scales".)
# Small rings plan in milliseconds and wait as little.
PLAN_SPACING = 2.0


class Hold:
    """What a client's held replies wait for: the offset each stream must acknowledge."""

    __slots__ = ("need", "slots", "since")

    def __init__(self) -> None:
        self.need: dict[OutStream, int] = {}
        self.slots: set[int] = set()        # the slots its writes went to
        self.since = 0.0                    # monotonic instant the hold began

    def acknowledged(self) -> bool:
        # an offset of AFTER_COPY: the stream restarted, and the writes travel in its full copy
        return all(stream.in_sync if offset == AFTER_COPY else stream.acked >= offset
                   for stream, offset in self.need.items())


class Replicator:
    """This node's replication: the streams it feeds as a primary and the ones it follows as a replica."""

    def __init__(self, ctx: Any, cluster: Any, mode: str, keys: Any, bind_host: str,
                 fresh: bool = True) -> None:
        if mode not in MODES:
            raise ValueError(f"replication mode must be one of {MODES}")
        self.ctx = ctx
        self.store = ctx.store
        self.cluster = cluster
        self.me = cluster.me.node_id
        self.sync = mode == "sync"
        self.mode = mode
        self.link = open_link(self.me, bind_host, data_port(cluster.me.mesh_port),
                              cluster.links.context, keys, self._on_frame, self._acknowledge)
        self.link.on_reset = self._on_reset
        self._acks: dict[bytes, Frame] = {}         # identity -> the last frame applied from it
        self._lazy_acks: dict[bytes, Frame] = {}    # the same, for LAZY frames (acknowledged by _maintain)
        self._latest: dict[str, tuple[bytes, Frame]] = {}   # primary -> (identity, last frame applied)
        self._ack_now = False                       # the next commit's frames are not LAZY (a WAIT asks)
        self.streams: dict[str, OutStream] = {}         # replica node id -> stream we feed
        self.inbound: dict[str, InStream] = {}          # primary node id -> stream we follow
        self.copying_in: set[int] = set()               # slots whose full copy we are receiving
        self._copy_from: dict[int, str] = {}            # slot -> the member whose copy of it came last
        # slot -> the streams its writes go to (empty where we are not the primary)
        self.targets: list[tuple[OutStream, ...]] = [NO_STREAMS] * 16384
        self._map_changed = False   # a new map was followed since the last commit
        self._led_held_sent = -1    # the map epoch of the last LED_HELD sent on our streams
        self._led_held: dict[str, int] = {}     # primary -> the newest map epoch of its LED_HELD
        self.writers: list[tuple[Connection, int, int]] = []   # this iteration's: (conn, start, end) in store.written
        self.held: set[Connection] = set()
        # the node's clients by session id (the server's table): a busy script's caller is
        # found there, since its later slices write with no client's run around them
        self.connections: dict[int, Connection] = {}
        self._map: Any = None      # the slot map last applied (follow_map)
        self._copies: dict[str, gevent.Greenlet] = {}
        self._greenlets: list[gevent.Greenlet] = []
        self._wake = Event()      # ends an idle upkeep's wait early (wake)
        self._committing = False
        self.waits: set[bytes] = set()      # wake-up names of clients blocked in WAIT
        # Slots whose data this node holds whole (mesh/holdings.py keeps the rules): as
        # their primary, or as a replica once its copy is done. The first node of a new
        # cluster holds all (empty is the truth); a joining or restarted node none: it
        # pulls its primary slots from another owner (never serving, nor copying to its
        # replicas, an empty slot). `loaded` is the routing table's view of it.
        self.holdings = Holdings(self.me, fresh)
        self.loaded = self.holdings.loaded
        self.importing: dict[int, str] = {}         # slot -> the owner we asked for it
        self._pulled_at: dict[int, float] = {}
        self._not_held: dict[int, set[str]] = {}    # slot -> owners that answered they lack it too
        self._stale_offers: dict[int, dict[str, int]] = {}  # slot -> owner -> epoch its stale copy is current at
        # Slots we lead now whose owners under the previous map left it (a graceful
        # leave at replication factor 1: nobody else holds them), and those members'
        # addresses: they keep serving pulls while their leave finishes.
        self._former: dict[int, tuple[str, ...]] = {}
        self._former_members: dict[str, Any] = {}
        # Slots we lead without their data and their owners under the map before that are
        # still members (the donors of a join): they keep what they held for us (retained)
        # and are asked before every other member (hypercache/pulls.py).
        self._earlier_owners: dict[int, tuple[str, ...]] = {}
        self._asked: dict[int, frozenset[str]] = {}     # slot -> sources asked this round (hypercache/pulls.py)
        self._unanswered: dict[str, int] = {}       # former member -> pulls it has not answered
        self._unanswered_at: dict[str, float] = {}  # former member -> when one was counted last
        self._restarted_at: dict[str, float] = {}
        self._heard_at: dict[str, float] = {}       # primary or source -> its last stream frame
        self.acked_at: dict[str, float] = {}        # replica -> when it last acknowledged (monotonic)
        self._sent_at: dict[str, float] = {}        # replica -> when a frame last went to it
        self._to_pull: list[int] = []               # slots we lead without their data (as of the map)
        self.handoffs: dict[str, set[int]] = {}     # peer -> slots we copy to it (its PULL)
        # The map is to be applied again (_on_map) at the upkeep's next turn: a pull asked for slots,
        # a hand-off or a fallback ended, the joiners changed. One pass for all that a turn brings:
        # applied at each, a 10-member join made each member walk the 16,384 slots ~30 times.
        self._remap = False
        self._planner: gevent.Greenlet | None = None    # the placement of joiners under way (_follow_joiners)
        self._fallback_checked_at = float("-inf")
        # slots we lead whose writes wait for a new replica's copy (_go_quiet)
        self.quiet: set[int] = set()
        # (map, what it asks of this node): derived once per map, read by every pass over it
        self._roles: tuple[Any, SlotRoles | None] = (None, None)
        # (what awaited() last found: for which map, how many kept copies and keys, and when)
        self._awaited: tuple[Any, int, int, int, float, frozenset[str]] = (None, 0, 0, -1, float("-inf"), frozenset())
        self._presynced: dict[str, set[int]] = {}   # replica -> slots it holds as we do (we pulled them from it)
        self._pulled_stale: set[int] = set()        # slots asked for as a stale copy (PULL_STALE)
        self._pulled_now = False
        self._unowned: set[int] = set()             # slots with keys that the map gives us no part in
        self._map_at = time.monotonic()             # when the current map was adopted
        self._tick_at = time.monotonic()            # the upkeep loop's last turn
        self._noted_at = self._tick_at              # the last note_absence (a gap: the hub stalled)
        self._lapses_seen = 0                       # the mesh's long_lease_lapses at the last note
        self._away = False                          # see note_absence
        self._lease_lost_at: float | None = None
        self._incarnation = cluster.membership.incarnation
        self._next_pull_at = 0.0
        self._ahead: set[str] = set()   # streams' replicas that are joiners, not members yet
        # Joins are "replicate, catch up, switch": the primaries copy a joiner the slots
        # the map with it will give it, as an extra replica, before that map is proposed
        # (the joiner's heartbeats say how far it is: catching_up()). `_plan` is that map, for
        # the joiners in `_plan_key`: placed here on the proposer, heard from it elsewhere.
        self._plan_key: tuple = ()
        self._plan: Any = None
        self._plan_source = ""      # "placed" here, as the proposer, or "heard" from it (_take_plan)
        self._plan_next_at = float("-inf")      # no new plan for joiners before (monotonic)
        self._joiner_members: dict[str, Any] = {}
        # replica -> (run id, slots it was fed without a break since their copy, while we
        # led them): after a switch that makes it their primary, a pull of them is answered
        # with a SYNC_DONE on that run (it holds every write we took), not a new copy
        self._carried: dict[str, tuple[int, set[int]]] = {}
        # replica -> (run id, offset of the SYNC_DONE, slots) confirmed that way and not yet
        # acknowledged: our copy of them stays kept for it until the ACK (_finish_handoffs)
        self._confirming: dict[str, tuple[int, int, set[int]]] = {}
        self.stats = {"frames_applied": 0, "effects_applied": 0, "frames_refused": 0,
                      "full_syncs": 0, "writes_held": 0, "clients_dropped": 0}

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self._noted_at = time.monotonic()       # (the node's start-up before this is no stall)
        self.link.open()
        self._greenlets.append(greenlets.spawn(self._maintain))

    def stop(self) -> None:
        planner = [self._planner] if self._planner is not None else []
        gevent.killall(self._greenlets + planner + list(self._copies.values()), block=False)
        self.link.close()

    def _maintain(self) -> None:
        """Follow map changes, restart broken streams, bound holds, even when nobody writes."""
        while True:
            try:
                self._acknowledge_lazy()
                self.follow_map()
                self._follow_joiners()
                # (before the restarts: a stream the pass ends is closed, not restarted)
                self._apply_remap()
                now = self._tick_at = time.monotonic()
                # (a peer that keeps refusing, say while it restarts, is retried once a second)
                broken = [peer for peer, stream in self.streams.items()
                          if stream.broken and now - self._restarted_at.get(peer, float("-inf")) >= 1.0]
                if broken:
                    self._restarted_at.update((peer, now) for peer in broken)
                    self._restart(broken)
                self._pull(now)
                self._keep_alive(now)
                self._finish_handoffs()
                self._release_fallbacks(now)
                self._apply_remap()
                self._drop_unowned()
                self._serve_waiting()
                # never forever: a primary cut off from its replicas and from the map's
                # majority would otherwise hold its clients for as long as the cut lasts
                give_up = time.monotonic() - HOLD_LIMIT_TIMEOUTS * self.cluster.node_timeout_s
                for conn in [c for c in self.held if c.held is not None and c.held.since < give_up]:
                    self._drop(conn, "no acknowledgement within the hold limit")
                if self._idle():
                    # (the mesh's timer notes a stall, note_absence; a third of the node timeout
                    # keeps a gap below it should that timer ever stop; on the wall clock's
                    # multiples, with the node's other timers: mesh/ticks.py)
                    self._wake.wait(ticks.next_tick(min(IDLE_EVERY_S, self.cluster.node_timeout_s / 3),
                                                    time.time())[1])
                    self._wake.clear()
            except Exception:
                log.exception("replication upkeep failed node=%s", self.me[:8])
            # a woken upkeep still leaves MAINTAIN_EVERY_S between ticks: LAZY frames
            # arriving one by one are acknowledged together, as before
            gevent.sleep(max(0.0, self._tick_at + MAINTAIN_EVERY_S - time.monotonic()))

    def wake(self) -> None:
        """Have an idle upkeep tick now (the mesh adopted a map; a LAZY frame waits for its ACK)."""
        self._wake.set()

    def _idle(self) -> bool:
        """Nothing under way that the upkeep follows at its fast pace (see IDLE_EVERY_S)."""
        cluster = self.cluster
        return not (self._remap or self._lazy_acks or self.held or self._to_pull or self.handoffs or self._confirming
                    or self._unowned
                    or self.importing or self.copying_in or self._joiner_members
                    or self._plan_key[1:] not in ((), ((),)) or cluster.joining
                    or cluster.slotmap is not self._map
                    or any(stream.broken or stream.copying for stream in self.streams.values())
                    or any(not copy.dead for copy in self._copies.values()))

    # -- the map decides who feeds whom ------------------------------------------------

    @property
    def followed_map(self) -> Any:
        """The map this replicator last applied (the mesh may hold a newer one: follow_map)."""
        return self._map

    def follow_map(self) -> None:
        """Apply the cluster's current map if it is new to us. Called before anything
        decides with `loaded` or `targets` (routing, the fast lane's table, a pull's
        answer), not only by the upkeep loop: between the mesh adopting a map and this
        running, a node back from a pause would serve its old copies as current."""
        self.note_absence()
        slotmap = self.cluster.slotmap
        if slotmap is not self._map:
            self._on_map(slotmap)

    def note_absence(self) -> None:
        """Remember whether this node was away since the last map: its hub stalled past
        the node timeout (a pause), it could not hear a majority for a node timeout (a
        cut), or others declared it suspect or dead (it had to refute). Maps it missed
        while away may have been written without it; maps missed while present only went
        by unseen (two commits in a row under load), and its copies are current, unless a
        skipped map took a slot away from it and the next gave it back: its replica copies
        are in doubt until their primaries say they hold what they lead (LED_HELD,
        Holdings.doubt_after_skip).

        The mesh calls it after every tick of its timer (Mesh.on_tick, four times a second),
        and so do the upkeep and whatever follows the map: a gap between two calls is a stall
        of the hub. A lapse of the lease is timed from when it lapsed, and one that ended between
        two calls is counted by the mesh as the lease comes back (long_lease_lapses), so
        neither depends on how often this runs. (The upkeep, which ticked four times a second
        idle to keep that gap short, now ticks once a second: IDLE_EVERY_S.)"""
        cluster = self.cluster
        now = time.monotonic()
        if cluster.accepting_writes():
            self._lease_lost_at = None
        elif self._lease_lost_at is None:
            # (since it lapsed; one that never had a lease, joining, from now)
            lapsed_at = cluster.lease_lapsed_at
            self._lease_lost_at = lapsed_at if lapsed_at is not None else now
        lapses = cluster.long_lease_lapses
        if (now - self._noted_at > cluster.node_timeout_s
                or (self._lease_lost_at is not None and now - self._lease_lost_at >= cluster.node_timeout_s)
                or lapses != self._lapses_seen
                or cluster.membership.incarnation != self._incarnation):
            self._away = True
        self._lapses_seen = lapses
        self._noted_at = now

    def _remap_later(self) -> None:
        """Have the upkeep apply the map again at its next turn (woken if idle)."""
        self._remap = True
        self.wake()

    def _apply_remap(self) -> None:
        if self._remap and self._map is not None:
            self._on_map(self._map)

    def _on_map(self, slotmap) -> None:
        if self._remap and self._map is not None and slotmap is not self._map:
            # A pass asked for under the old map comes first: a pull answered under it has its
            # slots on their stream's copy before Holdings.follow reads which copies are
            # unacknowledged (else they would turn into a stale fallback, not be retained).
            self._on_map(self._map)
        self._remap = False     # (whatever asked for a pass gets this one)
        previous, self._map = self._map, slotmap
        me = self.me
        if previous is not None and previous is not slotmap:
            self._map_changed = True        # (writers not committed yet are checked: _commit_writes)
            self.note_absence()
            unacknowledged = {peer: stream.copying for peer, stream in self.streams.items()}
            if previous.epoch == 0 and slotmap.epoch > 0:
                self.holdings.left_own_map(slotmap.owners)
            missed, away = slotmap.skips_from(previous), self._away
            voided = self.holdings.follow(previous.owners, previous.epoch, slotmap.owners, slotmap.epoch,
                                          time.monotonic(), unacknowledged, missed_maps=missed and away)
            self._away = False
            self._incarnation = self.cluster.membership.incarnation
            if missed and previous.epoch > 0:   # (a joiner's first map follows its own one-member map)
                doubted = 0
                if not away:
                    doubted = self.holdings.doubt_after_skip(previous.owners, previous.epoch, slotmap.owners,
                                                             slotmap.epoch, self._led_held)
                log.warning("missed maps node=%s epoch=%d previous_epoch=%d away=%s slots_no_longer_held=%d "
                            "in_doubt=%d", me[:8], slotmap.epoch, previous.epoch, away, voided, doubted)
            self._map_at = time.monotonic()
            self._carry_over(previous, slotmap)
            self._remember_former_owners(previous, slotmap)
            self._go_quiet(previous, slotmap)
            self._not_held.clear()      # owners may hold other slots now: ask again
            self._asked.clear()
            self._stale_offers.clear()
        wanted: dict[str, set[int]] = {}
        loaded = self.loaded
        roles = self._roles_under(slotmap)
        for slot, replicas in roles.led_replicas:
            # (a slot we lead without its data is pulled first, never copied out empty)
            if loaded[slot]:
                for replica in replicas:
                    wanted.setdefault(replica, set()).add(slot)
        self._to_pull = self.holdings.led_unheld(slotmap.owners, roles.led)
        for peer, slots in self.handoffs.items():
            wanted.setdefault(peer, set()).update(slots)
        for peer, slots in self._precopies(slotmap).items():
            wanted.setdefault(peer, set()).update(slots)
        handing = set().union(*self.handoffs.values()) if self.handoffs else set()
        if self._outside_of(slotmap):
            handing |= self.copying_in      # (copies ahead of our admission, still arriving)
        else:
            self.holdings.precopied = {slot: source for slot, source in self.holdings.precopied.items()
                                       if slotmap.owners[slot][:1] == (me,) and not loaded[slot]}
            for slot, source in self.holdings.precopied.items():
                # its primary's frames for it are taken until it confirms the copy (_pull asks)
                self.importing.setdefault(slot, source)
        key_slots = self.store.slots
        self._unowned = {slot for slot in self.holdings.release_unowned(slotmap.owners, handing)
                         if key_slots[slot]}
        for slot in [s for s, _ in self.importing.items() if slotmap.owners[s][:1] != (me,)]:
            del self.importing[slot]        # no longer ours to lead: nothing to pull
        for peer in list(self.streams):
            # (a stream with slots to confirm lives on until they are pulled: _confirm)
            if peer not in wanted and not self._confirmable(peer, slotmap) and peer not in self._confirming:
                self._close(peer)
        for peer, slots in wanted.items():
            stream = self.streams.get(peer)
            if stream is None:
                self._connect(peer)
                self._start(peer, frozenset(slots))
            elif slots != stream.slots:
                carried = self._carried.get(peer)
                if carried is not None:     # (a slot we still lead that the stream stops carrying)
                    carried[1].difference_update(
                        [slot for slot in stream.slots - slots if slotmap.owners[slot][:1] == (me,)])
                added = sorted(slots - stream.slots - self._presynced.pop(peer, set()))
                stream.slots = frozenset(slots)
                if added:
                    self._copy(stream, added)
        # A connection lives as long as its peer is a member: a stream that ends may
        # leave a pull, or its answer, in flight on it.
        members = ({member.node_id for member in slotmap.members} | set(self._former_members)
                   | set(self._joiner_members))
        for peer in self.link.peers() - members:
            self.link.disconnect(peer)
        self._ahead = {peer for peer in self.streams if not slotmap.has_member(peer)}
        self._retarget()
        self.store.replica_slots = bytearray(roles.replica_flags) if 1 in roles.replica_flags else None
        # A client whose writes went to a slot we no longer lead is never acknowledged:
        # the new primary may not have them.
        for conn in list(self.held):
            hold = conn.held
            if hold is not None and any(slotmap.owners[slot][:1] != (me,) for slot in hold.slots):
                self._drop(conn, "the slot's primary changed")
        self._recheck()
        if self.quiet:
            self._release_quiet()       # (replicas that needed no copy after all)
        if not self._to_pull and self._led_held_sent != slotmap.epoch:
            # Every slot we lead is held, and the copies this map begins went out first: a
            # replica that skipped maps holds its copies of our slots in doubt until it sees
            # this (Holdings.doubt_after_skip). Once per map, when the last pull is in.
            self._led_held_sent = slotmap.epoch
            for stream in self.streams.values():
                if not stream.broken:
                    self._send(stream, wire.LED_HELD, [])
        self._serving_changed()
        log.info("replication map node=%s epoch=%d mode=%s streams=%d importing=%d", me[:8], slotmap.epoch,
                 self.mode, len(self.streams), len(self._to_pull))

    # -- joins: replicate, catch up, switch --------------------------------------------

    def _follow_joiners(self) -> None:
        """Follow the map the proposer will make with the nodes asking to join (this one too,
        while it joins): a member then copies them their slots ahead of it (_precopies).

        The proposer places it, once per change of the joiners, and says it to the others
        (mesh/plans.py); they take it as heard. The ring's placement takes ~0.1 s of a core at
        50 members: it runs in the mesh's worker process (mesh/placer.py), so the hub serves
        meanwhile, and the placement is waited for in a greenlet of its own: the upkeep keeps
        its turns (a pull answered meanwhile gets its stream within one, not after the
        placement, which the puller would not wait for: it asks another after PULL_EVERY_S)."""
        cluster, slotmap = self.cluster, self._map
        if slotmap is None or slotmap.epoch == 0:
            return      # (a first formation admits its joiners at once: Mesh._changes)
        if not cluster.plans_for_joiners():
            self._follow_heard_plan(slotmap)
            return
        joiners = {member.node_id: member for member in cluster.joiners()}
        key = (slotmap.epoch, tuple(sorted(joiners)))
        if ((key == self._plan_key and self._plan_source == "placed")
                or (self._planner is not None and not self._planner.dead)):
            return      # (one placement at a time: the upkeep asks again once it is in)
        if not joiners:
            if self._take_plan(slotmap, key, joiners, None, "placed"):
                cluster.announce_plan(None)     # (said no more)
        elif time.monotonic() >= self._plan_next_at:
            # (until then the upkeep asks again each turn: joiners that come meanwhile join this plan)
            self._planner = greenlets.spawn(self._place_joiners, slotmap, key, joiners)

    def _follow_heard_plan(self, slotmap) -> None:
        """Take the proposer's plan for this map as heard (none until then: nothing copied ahead),
        with its joiners this node knows alive (mesh/plans.py `followed`); again whenever another
        plan is heard or one of them is no longer a live joiner here."""
        heard = self.cluster.heard_plan()
        alive = {member.node_id: member for member in self.cluster.joiners()} if heard is not None else {}
        planned, joiners = plans.followed(heard, slotmap, alive, self.me, self._outside())
        key = (slotmap.epoch, tuple(sorted(joiners)))
        if key != self._plan_key or planned is not self._plan or self._plan_source != "heard":
            self._take_plan(slotmap, key, joiners, planned, "heard")

    def _place_joiners(self, slotmap, key: tuple, joiners: dict[str, Any]) -> None:
        started = time.monotonic()
        try:
            planned = self.cluster.place("plan", slotmap, (), list(joiners.values()), slotmap.epoch + 1)
        except PlacerClosed:
            return      # (the node is stopping)
        except Exception as error:  # (no copies ahead this time: admission waits, the upkeep goes on)
            log.warning("no plan for joiners node=%s epoch=%d: %s", self.me[:8], slotmap.epoch, error)
            return
        finished = time.monotonic()
        # (at most a node timeout: the wall time also counts a stall of the hub meanwhile)
        self._plan_next_at = finished + min(PLAN_SPACING * (finished - started), self.cluster.node_timeout_s)
        if self._take_plan(slotmap, key, joiners, planned, "placed"):
            self.cluster.announce_plan(planned)     # (to the members and joiners: mesh/plans.py)

    def _take_plan(self, slotmap, key: tuple, joiners: dict[str, Any], planned: Any, source: str) -> bool:
        """Follow `planned` for `joiners`, `source` "placed" here (the proposer) or "heard" from it."""
        if self._map is not slotmap or self.cluster.slotmap is not slotmap:
            return False    # the map changed meanwhile (here, or in the mesh): plan again on the next turn
        self._plan_key, self._plan, self._plan_source = key, planned, source
        self._joiner_members = {node_id: m for node_id, m in joiners.items() if node_id != self.me}
        if joiners:
            log.info("planning for joiners node=%s epoch=%d plan=%s joiners=%s", self.me[:8], slotmap.epoch, source,
                     ",".join(node_id[:8] for node_id in sorted(joiners)))
        if not self._outside():
            self._remap_later()         # (streams to the joiners start, or end)
        return True

    def _outside(self) -> bool:
        """Not a member of the map this node holds: joining, or back from a pause or a cut
        to find itself removed (the cluster admits it again like any joiner)."""
        return self._outside_of(self.cluster.slotmap)

    def _outside_of(self, slotmap) -> bool:
        """The same of the map a pass applies, which may be one the mesh has moved past (a pass
        asked under the last map runs before the new one is applied): a joiner just admitted
        applies that one as outside still, and keeps the copies it took ahead of admission."""
        return self.cluster.joining or not slotmap.has_member(self.me)

    def _precopies(self, slotmap) -> dict[str, set[int]]:
        """joiner -> the slots we lead and hold that the map with it gives it."""
        planned = self._plan
        if planned is None or self._plan_key[:1] != (slotmap.epoch,) or self._outside_of(slotmap):
            return {}
        loaded, joiners, planned_owners = self.loaded, self._joiner_members, planned.owners
        wanted: dict[str, set[int]] = {}
        for slot in self._roles_under(slotmap).led:
            if loaded[slot]:
                for owner in planned_owners[slot]:
                    if owner in joiners:
                        wanted.setdefault(owner, set()).add(slot)
        return wanted

    def catching_up(self) -> tuple[tuple[int, int, int], ...]:
        """For this node's heartbeats while it joins: (the epoch of the map it plans on,
        slots the map with it gives it, slots it holds of them from their primary)."""
        planned, slotmap = self._plan, self._map
        if not self._outside() or planned is None or slotmap is None or self._plan_key[:1] != (slotmap.epoch,):
            return ()
        me, loaded, precopied = self.me, self.loaded, self.holdings.precopied
        mine = [slot for slot, owners in enumerate(planned.owners) if me in owners]
        held = sum(1 for slot in mine if loaded[slot] and precopied.get(slot) == slotmap.owners[slot][0])
        return ((slotmap.epoch, len(mine), held),)

    def _go_quiet(self, previous, slotmap) -> None:
        """Slots we now lead whose former owner, still a member, stopped owning them while a
        new replica has no copy yet (a move for balance, mostly): their writes wait until
        the new replicas' copies are in (`quiet`, released by _release_quiet).

        The former owner keeps its copy as a fallback meanwhile (mesh/holdings.py). Were we
        to die during the copy, that fallback is what the slot's next primary pulls, and it
        replaces whatever the new replica held: so it must hold every acknowledged write,
        and no write may be acknowledged until the new replica's copy is whole. Reads go on.
        """
        me, before, after = self.me, previous.owners, slotmap.owners
        quiet = {slot for slot in self.quiet if after[slot][:1] == (me,)}
        for slot, owners in enumerate(after):
            if owners[:1] != (me,):
                continue
            was = before[slot]
            if (any(owner not in was for owner in owners[1:])
                    and any(owner not in owners and slotmap.has_member(owner) for owner in was)):
                quiet.add(slot)
        self.quiet = quiet
        if quiet:
            log.info("writes wait for new replicas' copies node=%s slots=%d", me[:8], len(quiet))

    def _release_quiet(self) -> bool:
        """Quiet slots whose every replica holds a complete copy take writes again (True if any
        did: the caller, outside any client's command, lets their waiting writes run)."""
        owners, streams = self._map.owners, self.streams

        def whole(slot: int) -> bool:
            # each replica the map names, by name: a joiner's copy ahead of its admission
            # is a stream of the slot too, and must neither count for one nor hold it back;
            # `copies`, not `copying` (a new set per call: 2,048 quiet slots took 155 ms an ACK)
            for replica in owners[slot][1:]:
                stream = streams.get(replica)
                if stream is None or stream.broken or slot not in stream.slots or slot in stream.copies:
                    return False
            return True

        done = {slot for slot in self.quiet if whole(slot)}
        if done:
            self.quiet -= done
            log.info("writes taken again: new replicas hold their copies node=%s slots=%d",
                     self.me[:8], len(done))
            self._serving_changed()
        return bool(done)

    def _carry_over(self, previous, slotmap) -> None:
        """What each stream's replica holds without a break after a map change: the slots
        we still lead, and those we led until now that the change gives it to lead
        (confirmable: it holds every write we took). Any other slot we stopped leading
        went to someone else first: writes since did not come through us."""
        me, before, after = self.me, previous.owners, slotmap.owners
        for peer, (run, carried) in list(self._carried.items()):
            # (only a joiner just admitted needs a confirmation: a member that was our
            # replica holds the slot already and will not ask)
            newcomer = not previous.has_member(peer)
            kept = {slot for slot in carried
                    if after[slot][:1] == (me,)
                    or (newcomer and before[slot][:1] == (me,) and after[slot][:1] == (peer,))}
            self._carried[peer] = (run, kept)
            # (ours to confirm, owner or not: kept for it meanwhile)
            self.holdings.keep_for([slot for slot in kept if after[slot][:1] == (peer,) and me not in after[slot]],
                                   peer, self._map_at, previous.epoch)

    def _confirmable(self, peer: str, slotmap) -> bool:
        carried = self._carried.get(peer)
        return carried is not None and any(slotmap.owners[slot][:1] == (peer,) for slot in carried[1])

    def _confirm(self, peer: str, slots: set[int]) -> set[int]:
        """Of `slots` that `peer` now leads and pulls, those it holds already: fed to it on
        the stream it still follows, without a break, since their copy while we led them
        (a joiner's copy ahead of its admission). A SYNC_DONE on that stream, after all we
        sent on it, says so; we took no write for them since (our map gives them to it)."""
        stream, carried = self.streams.get(peer), self._carried.get(peer)
        if stream is None or carried is None or carried[0] != stream.run_id or stream.broken:
            return set()
        held = sorted(slot for slot in slots if slot in carried[1] and slot not in stream.copies)
        if held:
            offset = self._send(stream, wire.SYNC_DONE, held)
            carried[1].difference_update(held)
            # Kept until it acknowledges the SYNC_DONE: at replication factor 1 ours may be
            # the only other copy, and a frame lost with a broken stream would lose them
            # (it pulls again then, and gets a copy of what we kept).
            _, _, confirming = self._confirming.get(peer, (0, 0, set()))
            self._confirming[peer] = (stream.run_id, offset, confirming | set(held))
            log.info("confirmed slots copied ahead of the switch node=%s to=%s slots=%d",
                     self.me[:8], peer[:8], len(held))
        return set(held)

    def _remember_former_owners(self, previous, slotmap) -> None:
        """Note, for the slots we lead without their data, who held them before: owners that left
        the map (`_former`, reached at their old addresses) and owners still members (`_earlier_owners`)."""
        me, loaded = self.me, self.loaded
        gone = {m.node_id: m for m in previous.members if not slotmap.has_member(m.node_id)}
        former = {slot: left for slot, left in self._former.items()
                  if slotmap.owners[slot][:1] == (me,) and not loaded[slot]}
        if gone:
            for slot, owners in enumerate(slotmap.owners):
                if owners[:1] == (me,) and not loaded[slot] and me not in previous.owners[slot]:
                    left = tuple(owner for owner in previous.owners[slot] if owner in gone)
                    if left:
                        former[slot] = left
        self._former = former
        earlier = pulls.earlier_owners([slot for slot in self._roles_under(slotmap).led if not loaded[slot]],
                                       previous.owners, slotmap.owners, slotmap.member_ids, self._earlier_owners)
        self._earlier_owners = earlier
        self._former_members.update(gone)
        named = {owner for left in former.values() for owner in left}
        self._former_members = {node: m for node, m in self._former_members.items() if node in named}

    def _connect(self, peer: str) -> bool:
        try:
            member = self._map.member(peer)
        except KeyError:
            member = self._former_members.get(peer) or self._joiner_members.get(peer)
            if member is None:
                return False
        self.link.connect(peer, member.host, data_port(member.mesh_port))
        return True

    def _serving_changed(self) -> None:
        """Which slots this node serves changed: the dispatcher's lane re-derives its table, and
        commands waiting for a slot's data are tried again (served, redirected, or still waiting)."""
        dispatcher = self.ctx.dispatcher
        if dispatcher is not None:
            dispatcher.invalidate_routes()
        self.ctx.blocking.signal(LOADING)

    def _serve_waiting(self) -> None:
        """Run what _serving_changed made ready, from the replicator's own greenlet (never from
        inside a client's command: the dispatcher serves after each command by itself).

        Not while a busy script lets the hub run between its slices: it owns the keyspace
        until it ends (a client blocked on a key it pushed to would pop mid-script), and
        its end serves every waiter (hypercache/scripting/engine.py)."""
        blocking, scripts = self.ctx.blocking, self.ctx.scripts
        if blocking.ready and not (scripts is not None and scripts.busy):
            # the store's clock as a client's read sets it (a waiter's SET PX counts from now,
            # not from the last read, up to LOADING_WAIT_S ago), as housekeeping does
            self.ctx.now_ms = time.time_ns() // 1_000_000
            blocking.serve_ready()

    def _roles_under(self, slotmap) -> SlotRoles:
        """What `slotmap` asks of this node (hypercache/slot_roles.py), derived once per map."""
        slotmap_then, roles = self._roles
        if slotmap_then is not slotmap or roles is None:
            roles = slot_roles(slotmap.owner_ranges(), self.me)
            self._roles = (slotmap, roles)
        return roles

    def _retarget(self) -> None:
        # (the slots with streams only: a list per slot, 16,384 of them at every pass, was most of it)
        found: dict[int, list[OutStream]] = {}
        owners, me = self._map.owners, self.me
        for stream in self.streams.values():
            for slot in stream.slots:
                if owners[slot][:1] == (me,):     # (a hand-off's slots take no writes here)
                    found.setdefault(slot, []).append(stream)
        targets = [NO_STREAMS] * 16384
        for slot, streams in found.items():
            targets[slot] = tuple(streams)
        self.targets = targets
        # The write seam records keys only while some slot has a replica to feed.
        if self.streams and self.store.written is None:
            self.store.written = []
        elif not self.streams and not self.store.written:
            self.store.written = None

    def _start(self, peer: str, slots: frozenset[int]) -> OutStream:
        """A new run of the stream to `peer`: a full copy of its slots, then the live writes.

        (Slots we just pulled from `peer` itself are not copied back: it holds them.)"""
        stream = OutStream(peer, random.getrandbits(62), slots)
        self.streams[peer] = stream
        self._carried[peer] = (stream.run_id, set())
        self.stats["full_syncs"] += 1
        self._copy(stream, sorted(slots - self._presynced.pop(peer, set())))
        return stream

    def _restart(self, peers: list[str]) -> None:
        """New runs of these broken streams, each with the slots the map gives its peer now: one
        pass over the map for all of them (a new map breaks many at once, as replicas fence)."""
        old: dict[str, OutStream] = {}
        for peer in peers:
            stream = old[peer] = self.streams.pop(peer)
            self._carried.pop(peer, None)
            copy = self._copies.pop(peer, None)
            if copy is not None:
                copy.kill(block=False)
            log.warning("replication stream restarts with a full copy node=%s replica=%s acked=%d sent=%d",
                        self.me[:8], peer[:8], stream.acked, stream.next_offset - 1)
        self._on_map(self._map)
        # Their writes are on this primary, so in the copy a new run starts with:
        # they now wait for that stream to acknowledge at least that far.
        for peer, stream in old.items():
            new = self.streams.get(peer)
            for conn in self.held:
                hold = conn.held
                if hold is not None and hold.need.pop(stream, None) is not None and new is not None:
                    hold.need[new] = AFTER_COPY

    def _close(self, peer: str) -> None:
        """`peer` replicates none of our slots any more (it left the map, or the ring moved)."""
        stream = self.streams.pop(peer)
        self._carried.pop(peer, None)
        copy = self._copies.pop(peer, None)
        if copy is not None:
            copy.kill(block=False)
        # A replica the map dropped no longer counts: the writes are on every live
        # owner (a slot's new replica receives them in its full copy).
        for conn in self.held:
            hold = conn.held
            if hold is not None:
                hold.need.pop(stream, None)
        if stream.wants_events:
            self._events_wanted()

    # -- sending ---------------------------------------------------------------------

    def _send(self, stream: OutStream, kind: int, body: Any) -> int:
        epoch = self._map.epoch if self._map is not None else 0
        offset = stream.next_offset
        data = wire.encode(Frame(kind, self.me, epoch, stream.run_id, offset, body))
        stream.sent(len(data))
        self._sent_at[stream.peer] = time.monotonic()
        if not self.link.send(stream.peer, data):
            stream.broken = True
        return offset

    def _send_big(self, stream: OutStream, effect: list) -> int:
        """A big value's effect: its data in PART frames, then a BATCH of that effect
        alone with the data left out (the replica joins the pieces); the BATCH's offset."""
        slot, key, state = effect
        kind, data, deadline, big = state
        epoch = self._map.epoch if self._map is not None else 0
        for piece in pieces_of(data, PART_BYTES):
            if type(piece) is memoryview:       # (a string's: sent from the value itself)
                offset = stream.next_offset
                frame = wire.encode_part(self.me, epoch, stream.run_id, offset, slot, piece)
                stream.sent(len(frame[0]) + len(piece))
                if not self.link.send(stream.peer, frame):
                    stream.broken = True
            else:
                self._send(stream, wire.PART, [slot, piece])
        return self._send(stream, wire.BATCH, [[slot, key, [kind, None, deadline, big]]])

    def _copy(self, stream: OutStream, slots: list[int]) -> None:
        """Full copy of `slots` to the stream's replica, in bounded frames, one per hub turn."""
        number = stream.copy_starts(slots)
        carried = self._carried.get(stream.peer)
        if carried is not None and carried[0] == stream.run_id:
            owners, me = self._map.owners, self.me
            carried[1].update(slot for slot in slots if owners[slot][:1] == (me,))
        self._send(stream, wire.SYNC_START, slots)
        previous = self._copies.get(stream.peer)
        self._copies[stream.peer] = greenlets.spawn(self._copy_slots, stream, number, slots, previous)

    def _copy_slots(self, stream: OutStream, number: int, slots: list[int], previous) -> None:
        if previous is not None:
            previous.join()         # copies of one stream run one after the other
        store = self.store
        for slot in slots:
            if stream.superseded(number, slot):
                continue        # a later copy (queued behind this one) sends it whole
            keys = list(store.slots[slot])
            start = 0
            while start < len(keys):
                while stream.lag > COPY_WINDOW and not stream.broken:
                    gevent.sleep(0.001)     # the replica is behind: let it catch up first
                if stream.broken or self.streams.get(stream.peer) is not stream:
                    return
                effects: list = []
                size = 0
                slot_keys, expires = store.slots[slot], store.expires
                for key in keys[start:start + COPY_CHUNK_KEYS]:
                    start += 1
                    value = slot_keys.get(key)
                    if value is None:
                        continue    # deleted since: its deletion went out as a live write
                    effect = [slot, key, state_of(value, expires.get(key))]
                    value_size = len(key) + (len(value) if type(value) is bytes else value.nbytes)
                    if value_size > PART_BYTES:
                        if effects:
                            self._send(stream, wire.BATCH, effects)
                            effects = []
                        self._send_big(stream, effect)
                        break       # (its pieces are this turn's frames: the slot's next keys wait)
                    effects.append(effect)
                    size += value_size
                    if size > COPY_CHUNK_BYTES:
                        break
                if effects:
                    self._send(stream, wire.BATCH, effects)
                gevent.sleep(0)
        if stream.broken or self.streams.get(stream.peer) is not stream:
            return      # (a copy killed with its stream runs on until it next waits: nothing to end here)
        # (every slot's count of copies in flight ends with this frame's acknowledgement;
        # the replica is told only of those no later copy began again)
        stream.copy_finishes(self._send(stream, wire.SYNC_DONE, stream.copy_ends(number, slots)), slots)

    # -- the commit: once per loop iteration ------------------------------------------------

    def wrote(self, conn: "Connection", start: int, end: int) -> None:
        """`conn` ran writes store.written[start:end]: its replies wait for the commit."""
        if conn.held is None:
            conn.held = Hold()
        self.writers.append((conn, start, end))

    def script_wrote(self, caller: Any) -> None:
        """A busy script's slice ends: what is written so far waits for acknowledgement as its caller's.

        Past its busy threshold a script lets the hub run between slices (scripting/engine.py),
        and what a slice wrote is committed at the end of a loop iteration with no client's run
        around it. Unclaimed, those writes held no reply: the script's reply could go out
        before their acknowledgements, and a map change between a slice and its commit did not
        close the caller. While it is busy no other client writes (they get -BUSY; blocked
        clients and active expiry wait), so the list is claimed whole (a range already
        registered by the caller's own run, or another client's before the script began, is
        held for once more, which changes nothing)."""
        written = self.store.written
        conn = self.connections.get(caller.id)
        if written and conn is not None and not conn.closed:
            self.wrote(conn, 0, len(written))

    def commit(self) -> None:
        """Ship the iteration's writes, one frame per stream; hold or release their clients."""
        if self._committing:
            return
        self._committing = True
        try:
            self._commit()
        finally:
            self._committing = False

    def _events_wanted(self) -> None:
        """Name events for the replicas while one of them asks (KeyEvents.ship)."""
        key_events = self.ctx.key_events
        if key_events is not None:
            key_events.ship(any(stream.wants_events for stream in self.streams.values()))

    def _ship_events(self) -> None:
        """The events of the writes just shipped, to the streams of their slots that asked for them."""
        key_events = self.ctx.key_events
        shipped, key_events.shipped = key_events.shipped, []
        targets = self.targets
        frames: dict[OutStream, list] = {}
        for cls, event, key in shipped:
            slot = keyslot(key)
            for stream in targets[slot]:
                if stream.wants_events:
                    frames.setdefault(stream, []).append([slot, cls, event, key])
        for stream, events in frames.items():
            self._send(stream, wire.EVENTS, events)

    def _commit(self) -> None:
        store = self.store
        written = store.written
        writers, self.writers = self.writers, []
        key_events = self.ctx.key_events
        if key_events is not None and key_events.shipped:
            # (after the writes' frames: a replica emits an event once the write is applied)
            self._commit_writes(written, writers)
            self._ship_events()
            return
        self._commit_writes(written, writers)

    def _commit_writes(self, written: Any, writers: list) -> None:
        store = self.store
        if not written:
            for conn, _, _ in writers:
                if conn not in self.held:
                    self._release(conn)
            return
        targets = self.targets
        # (in async mode no reply waits for the replicas: their acknowledgements may come later)
        batch = wire.BATCH if self.sync or self._ack_now else wire.LAZY
        self._ack_now = False
        frames: dict[OutStream, list] = {}
        sizes: dict[OutStream, int] = {}
        offsets: dict[OutStream, int] = {}
        shipped: set[bytes] = set()
        store_slots, expires = store.slots, store.expires
        for slot, key in written:
            streams = targets[slot]
            if not streams or key in shipped:
                continue
            shipped.add(key)
            value = store_slots[slot].get(key)
            if value is None:
                effect, size = [slot, key, None], len(key)
            else:
                effect = [slot, key, state_of(value, expires.get(key))]
                size = len(key) + (len(value) if type(value) is bytes else value.nbytes)
            for stream in streams:
                effects = frames.get(stream)
                if size > PART_BYTES and value is not None:
                    if effects:         # (what was written before it goes first)
                        offsets[stream] = self._send(stream, batch, effects)
                        del frames[stream]
                    offsets[stream] = self._send_big(stream, effect)
                elif effects is None:
                    frames[stream] = [effect]
                    sizes[stream] = size
                else:
                    effects.append(effect)
                    sizes[stream] += size
                    if sizes[stream] > BATCH_BYTES:
                        offsets[stream] = self._send(stream, batch, effects)
                        del frames[stream]
        for stream, effects in frames.items():
            offsets[stream] = self._send(stream, batch, effects)
        ahead = self._ahead
        lost_lead: set | frozenset = NO_WRITERS
        if self._map_changed:
            # (a map followed since the writes ran: see lost_their_lead; async mode promises
            # no acknowledgement, so it is not checked there)
            self._map_changed = False
            if self.sync:
                lost_lead = lost_their_lead(writers, written, self._map.owners, self.me, self.loaded)
        for conn, start, end in writers:        # a client may have written in several runs
            hold = conn.held
            if hold is None:
                continue
            for slot, _ in written[start:end]:
                streams = targets[slot]
                if streams:
                    hold.slots.add(slot)
                    for stream in streams:
                        # (a joiner's copy ahead of its admission holds no reply until it is
                        # in sync: a joiner that refuses, or restarts, never stalls writers)
                        if not (ahead and stream.peer in ahead and not stream.in_sync):
                            hold.need[stream] = offsets[stream]
        written.clear()
        now = time.monotonic()
        for conn, _, _ in writers:
            if conn in lost_lead and not conn.closed:
                # (one held already too: its earlier replies wait for acknowledgements that
                # would release this write with them)
                self._drop(conn, "the slot's primary changed before its writes were shipped")
                continue
            hold = conn.held
            if hold is None:
                continue
            if conn in self.held:
                # Held and writing still: a busy script's caller (script_wrote). The hold
                # limit counts from its newest writes: a script writing for longer than the
                # limit, to replicas that keep acknowledging, is not closed for it.
                hold.since = now
                continue
            conn.session.replication_need.update({s.peer: (s, o) for s, o in hold.need.items()})
            if hold.need and self.sync and not conn.closed:
                hold.since = now
                self.held.add(conn)
                self.stats["writes_held"] += 1
                if conn.pending is None:
                    conn.pending = []       # what the client sends meanwhile waits its turn
            else:
                self._release(conn)

    def _release(self, conn: "Connection") -> None:
        conn.held = None
        conn.release_held()

    def _drop(self, conn: "Connection", why: str) -> None:
        """Never acknowledge: close the client (its writes failed, though they may be applied)."""
        log.warning("closing a client whose writes cannot be acknowledged node=%s id=%d why=%s",
                    self.me[:8], conn.session.id, why)
        self.stats["clients_dropped"] += 1
        self.held.discard(conn)
        conn.held = None
        conn.close()

    def _recheck(self, stream: OutStream | None = None) -> None:
        """Release every held client whose acknowledgements are all in; wake WAIT."""
        for conn in list(self.held):
            hold = conn.held
            if hold is None:
                self.held.discard(conn)
            elif (stream is None or stream in hold.need) and hold.acknowledged():
                self.held.discard(conn)
                self._release(conn)
        if self.waits:
            blocking = self.ctx.blocking
            for name in list(self.waits):
                if name in blocking.by_key:
                    blocking.signal(name)
                else:
                    self.waits.discard(name)    # answered, timed out, or gone
            if stream is not None:
                # (an ACK, in the link's greenlet; a map change may be applied inside a client's
                # command (Dispatcher._redirect), whose end, or the upkeep loop, serves them)
                self._serve_waiting()

    # -- WAIT ----------------------------------------------------------------------------

    def acknowledged_by(self, session: Any) -> int:
        """Replicas that acknowledged everything `session` wrote (WAIT's count)."""
        count = 0
        for peer, stream in self.streams.items():
            if peer in self._ahead:
                continue        # (a joiner is nobody's replica yet)
            wrote = session.replication_need.get(peer)
            if wrote is None:
                count += 1
            else:
                written_to, offset = wrote
                # a stream restarted since: the write travels in its full copy
                count += stream.acked >= offset if written_to is stream else stream.in_sync
        return count

    @staticmethod
    def wake_name(session: Any) -> bytes:
        """The private name a WAIT of `session` blocks under (never a key: keyed=False)."""
        return b"\x00wait\x00%d" % session.id

    # -- frames in -------------------------------------------------------------------------

    def _on_frame(self, frame: Frame, identity: bytes | None) -> None:
        # replies come back on the connections we opened, stream frames in on those
        # peers opened to us (identity: the sender's name): nothing else
        self._unanswered.pop(frame.sender, None)
        self._unanswered_at.pop(frame.sender, None)
        if identity is None and frame.kind in (wire.ACK, wire.REFUSE):
            self._on_reply(frame)
        elif identity is None and frame.kind == wire.NOT_HELD:
            for slot in frame.body:
                self._not_held.setdefault(slot, set()).add(frame.sender)
                self._stale_offers.get(slot, {}).pop(frame.sender, None)
                self._next_source_now(slot, frame.sender)
        elif identity is None and frame.kind == wire.HELD_STALE:
            for slot, epoch in frame.body:
                self._not_held.setdefault(slot, set()).add(frame.sender)
                self._stale_offers.setdefault(slot, {})[frame.sender] = epoch
                self._next_source_now(slot, frame.sender)
        elif identity is not None and frame.kind in (wire.BATCH, wire.LAZY, wire.PART, wire.SYNC_START,
                                                      wire.SYNC_DONE, wire.EVENTS, wire.LED_HELD):
            self._on_stream_frame(frame, identity)
        elif identity is not None and frame.kind in (wire.PULL, wire.PULL_STALE):
            self._on_pull(frame)
        else:
            self.link.counters["invalid"] += 1

    def _on_reply(self, frame: Frame) -> None:
        """A replica's ACK or REFUSE on a stream we feed."""
        stream = self.streams.get(frame.sender)
        if stream is None or frame.run_id != stream.run_id:
            return
        if frame.kind == wire.REFUSE:
            log.warning("replica refused a frame node=%s replica=%s reason=%s", self.me[:8],
                        frame.sender[:8], frame.body)
            if frame.body[:1] == [wire.FENCED]:
                self.handoffs.pop(frame.sender, None)   # it does not want them (any more)
            stream.broken = True
            return
        if frame.kind == wire.ACK:
            wants = frame.body == wire.WANTS_EVENTS
            if wants != stream.wants_events:
                stream.wants_events = wants
                self._events_wanted()
        copies = len(stream.copies)
        if frame.kind == wire.ACK and stream.on_ack(frame.run_id, frame.offset):
            self.acked_at[stream.peer] = time.monotonic()
            self._recheck(stream)
            # (only an ACK that ends a copy can release a quiet slot: most ACKs end none)
            if self.quiet and len(stream.copies) < copies and self._release_quiet():
                self._serve_waiting()

    def _on_stream_frame(self, frame: Frame, identity: bytes) -> None:
        """A frame of a stream we follow, as a replica."""
        self._heard_at[frame.sender] = time.monotonic()
        instream = self.inbound.get(frame.sender)
        if instream is None:
            instream = self.inbound[frame.sender] = InStream(frame.sender)
        previous_run = instream.run_id
        verdict = instream.admit(frame.run_id, frame.offset)
        if instream.run_id != previous_run:
            # a new run: copies the old one had started are void (the new one says what it sends)
            self.copying_in.difference_update(
                [slot for slot, source in self.importing.items() if source == frame.sender])
        if verdict == wire.GAP:
            self._answer(identity, frame, wire.REFUSE, [wire.GAP, instream.applied])
            return
        if verdict == wire.APPLY:
            slotmap = self.cluster.slotmap
            slots = ({effect[0] for effect in frame.body} if frame.kind in (wire.BATCH, wire.LAZY, wire.EVENTS)
                     else [frame.body[0]] if frame.kind == wire.PART else frame.body)
            # (joining only lets more frames through, and _outside() costs a walk of the
            # map's members: asked only for a frame that would be refused without it)
            if (wire.fenced(slotmap.owners, slotmap.epoch, frame, slots, self.importing, self.me, False)
                    and wire.fenced(slotmap.owners, slotmap.epoch, frame, slots, self.importing, self.me,
                                    self._outside())):
                self.stats["frames_refused"] += 1
                self._answer(identity, frame, wire.REFUSE, [wire.FENCED, slotmap.epoch])
                return
            try:
                self._apply(frame, instream)
                if self._pulled_now:
                    # streams to our replicas exist before any client writes these slots
                    self._pulled_now = False
                    self._on_map(self.cluster.slotmap)
                    self._serve_waiting()
            except BadState as error:
                log.warning("bad frame from primary=%s: %s", frame.sender[:8], error)
                self._answer(identity, frame, wire.REFUSE, [wire.GAP, instream.applied])
                instream.run_id = -1    # whatever comes next of this run is refused until it restarts
                return
            instream.applied = frame.offset
            self.stats["frames_applied"] += 1
        if frame.kind == wire.LAZY:
            if not self._lazy_acks:
                self.wake()
            self._lazy_acks[identity] = frame   # acknowledged by the upkeep's next tick
        else:
            self._acks[identity] = frame        # acknowledged once the queued frames are read
        self._latest[frame.sender] = (identity, frame)
        if frame.kind == wire.LED_HELD and verdict == wire.APPLY:
            self._on_led_held(frame)

    def _on_led_held(self, frame: Frame) -> None:
        """A primary holds every slot it leads under the frame's map: our copies of its slots in
        doubt after skipped maps are current again (Holdings.primary_spoke)."""
        sender = frame.sender
        if frame.epoch > self._led_held.get(sender, -1):
            self._led_held[sender] = frame.epoch
        confirmed = self.holdings.primary_spoke(sender, frame.epoch) if self.holdings.in_doubt else []
        if confirmed:
            log.info("copies in doubt after skipped maps held again node=%s primary=%s slots=%d",
                     self.me[:8], sender[:8], len(confirmed))
            self._serving_changed()
            self._serve_waiting()

    def _acknowledge(self) -> None:
        """One ACK per stream for the frames just read (they queue while the hub is busy)."""
        acks, self._acks = self._acks, {}
        lazy = self._lazy_acks
        for identity, frame in acks.items():
            if lazy:
                lazy.pop(identity, None)    # (an ACK says all that was applied: the lazy ones too)
            instream = self.inbound.get(frame.sender)
            if instream is not None and instream.run_id == frame.run_id:
                # (the body asks for the events of the writes: see KeyEvents.ship)
                wants = wire.WANTS_EVENTS if self.ctx.key_events is not None and self.ctx.key_events.own else None
                self._answer(identity, frame, wire.ACK, wants, instream.applied)

    def events_wish_changed(self) -> None:
        """This node's notify-keyspace-events started or stopped selecting something: tell every
        primary we follow now, in an ACK of what we applied (its body carries the wish), rather
        than with the next frame's ACK (up to a keep-alive, ~1 s, on a quiet stream)."""
        for identity, frame in self._latest.values():
            self._acks.setdefault(identity, frame)
        self._acknowledge()

    def _acknowledge_lazy(self) -> None:
        """The ACK that LAZY frames wait for (the upkeep's tick, every MAINTAIN_EVERY_S)."""
        if self._lazy_acks:
            self._acks.update(self._lazy_acks)
            self._lazy_acks.clear()
            self._acknowledge()

    def ask_acks(self) -> None:
        """Ask every replica with frames unacknowledged to acknowledge now (WAIT, in async
        mode: its live frames are LAZY): an empty BATCH is acknowledged at once."""
        for stream in self.streams.values():
            if stream.lag and not stream.broken:
                self._send(stream, wire.BATCH, [])
        self._ack_now = True        # (and this turn's own writes, committed after the command)

    def _answer(self, identity: bytes, frame: Frame, kind: int, body: Any, offset: int | None = None) -> None:
        epoch = self.cluster.slotmap.epoch
        reply = Frame(kind, self.me, epoch, frame.run_id, frame.offset if offset is None else offset, body)
        self.link.reply(identity, wire.encode(reply))

    def _apply(self, frame: Frame, instream: InStream) -> None:
        """Apply one frame to the store, as one atomic step (no yield), without recording it."""
        store = self.store
        recording, store.written = store.written, None
        # ("new" comes from the primary with the write's other events, not from applying it)
        created_hook, store.on_created = store.on_created, None
        try:
            if frame.kind == wire.SYNC_START:
                self._unowned.difference_update(frame.body)     # (the copy's keys are not to drop)
                for slot in frame.body:
                    store.flush_slot(slot)
                self.holdings.copy_starts(frame.body)
                self.copying_in.update(frame.body)
                self._copy_from.update((slot, frame.sender) for slot in frame.body)
            elif frame.kind == wire.SYNC_DONE:
                self.copying_in.difference_update(frame.body)
                pulled = False
                self.holdings.copy_done(frame.body, frame.epoch)
                if self._outside():        # ahead of our admission: see Holdings.precopied
                    slotmap = self.cluster.slotmap
                    self.holdings.copied_ahead(frame.body, frame.sender, slotmap.owners, own_map=slotmap.epoch == 0)
                for slot in frame.body:
                    if self.importing.get(slot) == frame.sender:
                        del self.importing[slot]
                        pulled = True
                if pulled:      # ours to serve now, and to copy to our replicas
                    log.info("pulled slots node=%s from=%s slots=%d", self.me[:8], frame.sender[:8],
                             len(frame.body))
                    # the owner we pulled them from holds exactly this: it needs no copy back,
                    # unless it was a stale copy (the owner does not count it as held: a copy
                    # from us makes it so, else its heartbeats never say it holds what it owns)
                    owners, stale = self.cluster.slotmap.owners, self._pulled_stale
                    self._presynced.setdefault(frame.sender, set()).update(
                        slot for slot in frame.body if frame.sender in owners[slot][1:] and slot not in stale)
                    stale.difference_update(frame.body)
                    self._pulled_now = True
            elif frame.kind == wire.PART:
                instream.pieces.append(frame.body[1])
            elif frame.kind == wire.EVENTS:
                key_events = self.ctx.key_events
                if key_events is not None:
                    for _, cls, event, key in frame.body:
                        key_events.replayed(cls, event, key)
            elif frame.kind == wire.BATCH or frame.kind == wire.LAZY:
                body = frame.body
                if len(body) == 1 and type(body[0][2]) is list and len(body[0][2]) == 4 and body[0][2][1] is None:
                    # a big value: its data is the pieces received since the last one
                    slot, key, (kind, _, deadline, big) = body[0]
                    pieces, instream.pieces = instream.pieces, []
                    body = [[slot, key, [kind, joined(kind, pieces), deadline, big]]]
                decoded = [(slot, key, None if state is None else value_of(state))
                           for slot, key, state in body]
                for slot, key, entry in decoded:
                    if entry is None:
                        store.delete(slot, key)
                        continue
                    value, deadline = entry
                    store.set(slot, key, value)
                    if deadline:
                        store.set_deadline(key, deadline)
                self.stats["effects_applied"] += len(decoded)
        finally:
            store.written = recording
            if store.on_created is None:
                store.on_created = created_hook

    def _keep_alive(self, now: float) -> None:
        """An empty frame to a replica nothing went to for a while: its ACK measures its lag."""
        every = (KEEP_ALIVE_S if self.ctx.settings.min_replicas_to_write or not self.link.reports_resets
                 else IDLE_KEEP_ALIVE_S)
        for peer, stream in self.streams.items():
            # (half an idle tick early: idle ticks on the wall clock's seconds come a little under
            # or over a second apart, and one a little early must not wait a whole second more)
            if not stream.broken and now - self._sent_at.get(peer, float("-inf")) >= every - IDLE_EVERY_S / 2:
                self._send(stream, wire.BATCH, [])

    def _on_reset(self, peer: str) -> None:
        """Our connection to `peer` broke: its stream gets an empty frame on the next tick (see KEEP_ALIVE_S)."""
        self._sent_at.pop(peer, None)
        self.wake()

    def good_replicas(self, slot: int, max_lag_s: float) -> int:
        """Replicas of `slot` in sync that acknowledged within `max_lag_s` (min-replicas-to-write)."""
        now = time.monotonic()
        streams = self.targets[slot] if slot >= 0 else tuple(self.streams.values())
        return sum(1 for stream in streams
                   if stream.in_sync and stream.peer not in self._ahead
                   and now - self.acked_at.get(stream.peer, float("-inf")) <= max_lag_s)

    # -- data follows the map: pulls, hand-offs, dropping what is not ours ----------------------

    def _pull(self, now: float) -> None:
        """Ask another owner for the slots we lead without their data, again every PULL_EVERY_S."""
        slotmap, me, loaded = self._map, self.me, self.loaded
        if slotmap is None or not self._to_pull or now < self._next_pull_at:
            return
        self._next_pull_at = now + PULL_EVERY_S / 4
        asks: dict[str, list[int]] = {}
        stale_asks: dict[str, list[int]] = {}
        lost: list[int] = []
        members = [m.node_id for m in slotmap.members if m.node_id != me and self.cluster.is_alive(m.node_id)]
        alive = set(members)
        self._to_pull = [slot for slot in self._to_pull if not loaded[slot]]
        for slot in self._to_pull:
            owners = slotmap.owners[slot]
            if not owners or owners[0] != me:
                continue
            if now - self._pulled_at.get(slot, float("-inf")) < PULL_EVERY_S:
                continue
            source = self.importing.get(slot)
            # (a copy that another member started, say the primary that fed us as its replica
            # and died, is not on the way: waiting on `source` for it never ended)
            if (slot in self.copying_in and source is not None and self._copy_from.get(slot) == source
                    and now - self._heard_at.get(source, float("-inf")) < COPY_SILENCE_S):
                continue        # its copy is on the way: asking another owner would restart it
            left = self._former.get(slot, ())
            sources = pulls.order(owners, members, alive, self.holdings.precopied.get(slot), left,
                                  self._earlier_owners.get(slot, ()))
            lacking = self._not_held.get(slot, set())
            silent = [o for o in left if self._unanswered.get(o, 0) >= FORMER_PULLS]
            if silent:      # (gone for good: it counts as not holding it)
                lacking = lacking | set(silent)
            if all(source in lacking for source in sources):
                # Every other live member said it does not hold it current either (a
                # whole-cluster restart, replication factor 1 with the holder dead, every
                # owner away at once): after a grace for answers still in flight, the
                # newest stale copy is the best left, ours or another's; else nothing.
                if now - self._map_at > NO_SOURCE_GRACE_S:
                    offers = {member: epoch for member, epoch in self._stale_offers.get(slot, {}).items()
                              if member in sources}
                    source = self.holdings.best_stale(slot, offers)
                    if source is None:
                        lost.append(slot)
                    else:
                        self._pulled_at[slot] = now
                        self.importing[slot] = source
                        self._pulled_stale.add(slot)
                        stale_asks.setdefault(source, []).append(slot)
                continue
            self._pulled_at[slot] = now
            source, self._asked[slot] = pulls.next_source(sources, lacking, self._asked.get(slot, frozenset()))
            self.importing[slot] = source
            asks.setdefault(source, []).append(slot)
        if lost:
            ours = sum(1 for slot in lost if self.holdings.can_give_stale(slot))
            if ours:
                log.warning("no owner holds these slots current: serving this node's stale copy of %d "
                            "(it may miss writes made while it was away) node=%s", ours, me[:8])
            if len(lost) > ours:
                log.warning("no owner holds these slots' data: serving them empty node=%s slots=%d",
                            me[:8], len(lost) - ours)
            self.holdings.given_up(lost)
            for slot in lost:
                self.importing.pop(slot, None)
                self._not_held.pop(slot, None)
            self._on_map(slotmap)
        for kind, by_source in ((wire.PULL, asks), (wire.PULL_STALE, stale_asks)):
            for source, slots in by_source.items():
                # (once per PULL_EVERY_S at most: pulls now follow each other faster than that,
                # and FORMER_PULLS of them in a row must still mean seconds of silence)
                if source in self._former_members and now - self._unanswered_at.get(source, float("-inf")) \
                        >= PULL_EVERY_S:
                    self._unanswered[source] = self._unanswered.get(source, 0) + 1
                    self._unanswered_at[source] = now
                if self._connect(source):
                    self.link.send(source, wire.encode(Frame(kind, me, slotmap.epoch, 0, 0, slots)))
                    if kind == wire.PULL:
                        log.info("pulling slots node=%s from=%s slots=%d", me[:8], source[:8], len(slots))
                    else:
                        log.warning("no owner holds these slots current: pulling the newest stale copy "
                                    "(it may miss writes made while its node was away) node=%s from=%s "
                                    "slots=%d", me[:8], source[:8], len(slots))

    def _next_source_now(self, slot: int, sender: str) -> None:
        """The source asked last for `slot` lacks it: the next pull turn asks the next one, not a
        PULL_EVERY_S later. (Only the one asked last: a late answer of an earlier one must not
        move a pull under way, whose copy would then be refused as not imported from its sender.)"""
        if self.importing.get(slot) == sender and slot not in self.copying_in:
            self._pulled_at.pop(slot, None)

    def _on_pull(self, frame: Frame) -> None:
        """An owner asks for slots it leads: copy the ones we hold, if our map agrees it leads them."""
        self.follow_map()       # (what we retain is decided by the map we know)
        slotmap = self.cluster.slotmap
        if frame.epoch > slotmap.epoch:
            return      # we would still take writes for them: it asks again once we know its map
        sender, me, holdings = frame.sender, self.me, self.holdings
        theirs = [slot for slot in frame.body if slotmap.owners[slot][:1] == (sender,)]
        # (slots it was fed ahead of its admission are confirmed, whatever we keep of them:
        # a copy we stopped owning may be only a fallback here now)
        confirmed = self._confirm(sender, set(theirs))
        # (we restarted too, were away, or are still receiving them: it must look elsewhere)
        given, stale, lacking = holdings.answer_pull([slot for slot in theirs if slot not in confirmed],
                                                     slotmap.owners, sender, frame.kind == wire.PULL_STALE)
        if stale:
            body = [list(offer) for offer in stale]
            self.link.reply(sender.encode(), wire.encode(Frame(wire.HELD_STALE, me, slotmap.epoch, 0, 0, body)))
        if lacking:
            self.link.reply(sender.encode(), wire.encode(Frame(wire.NOT_HELD, me, slotmap.epoch, 0, 0, lacking)))
        slots = set(given)
        if slots - self.handoffs.get(sender, set()):
            # (its stream starts at the upkeep's next turn, before _finish_handoffs looks at it:
            # one pass over the map for all the pulls that came meanwhile)
            self.handoffs.setdefault(sender, set()).update(slots)
            self._remap_later()
        elif confirmed:
            # (a stream kept only for these confirmations ends at the next turn, not at the next
            # map: at replication factor 1 it kept every write recorded and every reply held
            # for the commit until then, ~15% more CPU per SET)
            self._remap_later()

    def _finish_handoffs(self) -> None:
        # (a pull answered since the last pass, maybe while this turn waited on a socket, has its
        # slots on a stream first: judged before, its hand-off would look done)
        self._apply_remap()
        changed = False
        for peer, (run_id, offset, slots) in list(self._confirming.items()):
            stream = self.streams.get(peer)
            if stream is not None and stream.run_id == run_id and not stream.broken and stream.acked < offset:
                continue
            del self._confirming[peer]
            changed = True
            if stream is not None and stream.run_id == run_id and not stream.broken:
                self.holdings.handed_off(slots)     # acknowledged: it holds them
        for peer, slots in list(self.handoffs.items()):
            stream = self.streams.get(peer)
            if stream is None or not (slots & stream.copying):
                del self.handoffs[peer]     # copied and acknowledged (or the peer is gone)
                self.holdings.handed_off(slots)
                changed = True
        expired = self.holdings.expire_retained(time.monotonic(), RETAIN_S)
        if changed or expired:
            self._remap = True      # (applied by the upkeep's turn, after the fallbacks)

    def _release_fallbacks(self, now: float) -> None:
        """Fallback copies (mesh/holdings.py) go once every owner of their slot says, in its
        heartbeats, that it holds all it owns under our map; looked at once a second."""
        fallback, slotmap = self.holdings.fallback, self._map
        if not fallback or slotmap is None or now - self._fallback_checked_at < 1.0:
            return
        self._fallback_checked_at = now
        epoch, holds, owners = slotmap.epoch, self.cluster.holds, slotmap.owners
        holding = {m.node_id for m in slotmap.members if holds(m.node_id) >= epoch}
        done = [slot for slot in fallback if all(owner in holding for owner in owners[slot])]
        overdue = [slot for slot, since in fallback.items() if now - since > FALLBACK_S and slot not in done]
        if overdue:
            log.warning("fallback copies dropped unconfirmed: their owners never said they hold them "
                        "node=%s slots=%d after_s=%.0f", self.me[:8], len(overdue), FALLBACK_S)
        if done or overdue:
            log.info("fallback copies released: every owner holds them node=%s slots=%d",
                     self.me[:8], len(done))
            self.holdings.release_fallback(done + overdue)
            self._remap = True          # (their keys are to drop now: applied by the upkeep's turn)

    def holds(self) -> int:
        """For this node's heartbeats: the epoch of the map under which it holds a complete
        copy of every slot it owns, 0 while some is missing or the map is not applied yet."""
        slotmap, loaded = self._map, self.loaded
        if slotmap is None or slotmap is not self.cluster.slotmap:
            return 0
        # (16,384 bytes as two big integers: a few microseconds, four times a second)
        owned = int.from_bytes(self._roles_under(slotmap).owned_flags, "little")
        return slotmap.epoch if owned & ~int.from_bytes(loaded, "little") == 0 else 0

    def awaited(self) -> frozenset[str]:
        """For this node's mesh: the members whose `holds` it waits for, the owners of the slots
        of its fallback copies and the primaries of the copies with keys it keeps for them (as
        _release_fallbacks and a leave read them), so that it hears their quiet heartbeats
        (mesh/bus.py _listen): what a member holds is not said to every member. Counted again
        when the map or the number of kept copies changes, and at most once a second otherwise
        (the bus asks four times a second) while the store's key count moves: which kept slots
        still have keys is all the rest of it. (Counted every second, a formed cluster's node
        walked its ~10,000 slots kept after formation for a minute: 0.9 ms a second, idle.)"""
        slotmap, fallback, retained = self._map, self.holdings.fallback, self.holdings.retained
        if slotmap is None:
            return frozenset()
        now = time.monotonic()
        last_map, last_fallback, last_retained, last_keys, counted_at, found = self._awaited
        key_count = self.store.key_count
        if (last_map is slotmap and last_fallback == len(fallback) and last_retained == len(retained)
                and (last_keys == key_count or now - counted_at < 1.0)):
            return found
        owners = slotmap.owners
        ids = {owner for slot in fallback for owner in owners[slot]}
        keys = self.store.slots
        ids.update(kept.primary for slot, kept in retained.items() if keys[slot])
        ids.discard(self.me)
        found = frozenset(ids)
        self._awaited = (slotmap, len(fallback), len(retained), key_count, now, found)
        return found

    def _drop_unowned(self) -> None:
        """Keys of slots this node no longer owns go, a bounded number per tick (no stall)."""
        store = self.store
        if not self._unowned:
            return
        budget = DROP_KEYS_PER_TICK
        recording, store.written = store.written, None     # not ours to replicate
        try:
            for slot in list(self._unowned):
                keys = store.slots[slot]
                for key in list(keys)[:budget]:
                    store.delete(slot, key)
                    budget -= 1
                if keys:
                    return
                self._unowned.discard(slot)
        finally:
            store.written = recording

    # -- what INFO, ROLE, CLUSTER and the status page show ------------------------------------

    def ready_to_leave(self) -> bool:
        """Everything this node leads is on its replicas: its removal loses nothing."""
        return (all(stream.in_sync for peer, stream in self.streams.items() if peer not in self._ahead)
                and not self.handoffs
                and self.slots_loading() == 0)

    def settled(self) -> bool:
        """Nothing of this node's is in motion: every stream it feeds is in sync, it holds every
        slot it leads and every copy it receives is complete, no hand-off or pull is open.
        The mesh moves slots for balance only while a majority says so (Mesh._settled)."""
        return (self._map is self.cluster.slotmap and not self.copying_in and not self._to_pull
                and not self.importing and not self.holdings.fallback and self.ready_to_leave())

    def handing_over(self) -> bool:
        """Whether this node holds the only copy of slots others lead now (retained for
        their pull, or being copied to them): a leaving node waits for that to end.

        A retained slot without a key here hands nothing over: a formation or a restart
        retains thousands of empty ones that no primary asks for (it pulls every slot it
        lacks in one request per source, so empty ones asked for go with the rest), and
        waiting for them held a leave up for its whole timeout. Nor is one whose primary
        says it holds every slot it owns under our map: it has the slot, from us or from a
        copy it found as new (a node away across maps keeps its copies for their primaries
        whether or not they need them: waiting for pulls that never come held the leave up
        for its whole timeout, then warned that a slot was not handed over)."""
        self.follow_map()       # (the map without this node may not be applied yet)
        if self.handoffs:
            return True
        keys, epoch, holds = self.store.slots, self.cluster.slotmap.epoch, self.cluster.holds
        return any(keys[slot] and holds(kept.primary) < epoch for slot, kept in self.holdings.retained.items())

    def slots_loading(self) -> int:
        """Slots this node leads but cannot serve yet: their data is still being copied here."""
        slotmap, me, loaded = self.cluster.slotmap, self.me, self.loaded
        return sum(1 for slot, owners in enumerate(slotmap.owners) if owners[:1] == (me,) and not loaded[slot])

    def replicas(self) -> list[dict]:
        return [{"node_id": s.peer, "slots": len(s.slots), "offset": s.next_offset - 1,
                 "acked": s.acked, "lag": s.lag, "in_sync": s.in_sync, "copying": len(s.copying)}
                for s in self.streams.values() if s.peer not in self._ahead]

    def primaries(self) -> list[dict]:
        return [{"node_id": s.primary, "applied": s.applied} for s in self.following().values()]

    def following(self) -> dict[str, InStream]:
        """The inbound streams of primaries that feed this node now: they lead a slot it
        replicates, or their copy is still arriving. (`inbound` keeps a stream's state after
        its primary stopped feeding it, for a frame still in flight: not one to show.)"""
        slotmap, me = self._map, self.me
        if slotmap is None or not self.inbound:
            return {}
        if self._outside():
            return dict(self.inbound)       # (joining: members copy us our slots ahead of the map)
        feeding = {owners[0] for owners in slotmap.owners if me in owners[1:]}
        feeding.update(self._copy_from.get(slot) for slot in self.copying_in)
        return {primary: stream for primary, stream in self.inbound.items() if primary in feeding}
