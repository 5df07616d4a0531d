"""Run the mesh's own code (mesh/bus.py's Mesh and the pure cores under it) for hundreds of members in virtual time.

Every simulated member is a real `Mesh` object: the same membership, election,
adoption, lease, ring and slot-map code a node runs, handed a virtual clock and
a simulated network (`SimLinks`) in place of its zmq sockets. Nothing about the
protocol is modelled here; only the network is. Messages are encoded with
mesh/messages.py to count their bytes, then delivered (the decoded value is
the one encoded, so decoding is skipped) after a random delay, or lost with a
given probability. Timers fire at each member's own phase, or (`aligned`) on the
clock's multiples of the interval, numbered, as a node's do (mesh/ticks.py).

What it reports, per scenario (cluster size, loss, delay):
- idle traffic per member: messages and bytes sent and received per second;
- CPU per member: the simulator's own process time divided by members and
  virtual seconds (the protocol's Python work per member, without zmq);
- convergence: after a join, a crash, a scale-up of many members at once, the
  virtual time until every live member holds one map with the change, and the
  epochs that took;
- false suspicions: members suspected (in anyone's view) that were never
  stopped;
- traffic after a crash: messages in per member per second, measured as idle
  is, from 1.5 s after the map without the dead member (which every
  heartbeat still names until it is forgotten);
- what a change costs each member: the messages it heard from a crash, or a
  join, until 1.5 s after the map with it was agreed, beyond what it hears
  idle meanwhile (the ballot, the news, the new map said). Flat as members are
  added if a round costs O(N) messages in all.

With --starved-s, a machine with more busy processes than cores instead: every
member's timer runs late (what arrives meanwhile waits), no one crashes, and
every suspicion is false (mesh/awareness.py); then one member crashes.

    python3 loadtest/mesh_sim.py --members 24 48 100 --loss 0.01
    python3 loadtest/mesh_sim.py --members 24 100 --starved-s 30
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import heapq
import itertools
import json
import logging
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mesh.bus import Mesh  # noqa: E402
from mesh.links import (_NOT_RELAYED, CATCH_UP, MAPS, OUTSIDE, QUIET, TO, addressed,  # noqa: E402
                        keys_checked, kinds_read_under)
from mesh.links import _Taken, relayed_to  # noqa: E402
from mesh.links import relayed as relay_topic  # noqa: E402
from mesh.messages import HELLO_BY_ADDRESS, Hello, Message, Prepare, digest, encode  # noqa: E402
from mesh.placement_worker import placements  # noqa: E402
from mesh.slotmap import Member  # noqa: E402


# Messages sent under a topic whose readers drop their kind (mesh/links.py kinds_read_under), by
# kind, over every simulated member of this process: the tests hold it at none (tests/unit/conftest.py).
UNREADABLE_SENT: collections.Counter[str] = collections.Counter()


@dataclass
class Network:
    """Virtual time and the messages in flight between simulated members."""

    loss: float = 0.0
    delay_s: tuple[float, float] = (0.0005, 0.005)
    seed: int = 1
    now: float = 0.0
    rng: random.Random = field(init=False)
    queue: list = field(default_factory=list)
    order: itertools.count = field(default_factory=itertools.count)
    by_address: dict[tuple[str, int], "SimLinks"] = field(default_factory=dict)
    by_topic: dict[bytes, "SimLinks"] = field(default_factory=dict)      # a member's own topics -> it
    by_id: dict[str, "SimLinks"] = field(default_factory=dict)
    # origin -> the relayers asked for its quiet heartbeats, with how many members asked each
    quiet_relayers: dict[str, collections.Counter] = field(default_factory=dict)
    # whose quiet heartbeats each member hears (SimLinks.watch): node id -> its listeners, and
    # the members that hear everyone's; so a quiet heartbeat finds its few receivers at once
    quiet_listeners: dict[str, set["SimLinks"]] = field(default_factory=dict)
    hears_all: set["SimLinks"] = field(default_factory=set)
    sent: collections.Counter = field(default_factory=collections.Counter)         # node id -> messages
    sent_bytes: collections.Counter = field(default_factory=collections.Counter)
    received: collections.Counter = field(default_factory=collections.Counter)
    received_bytes: collections.Counter = field(default_factory=collections.Counter)
    # (senders, receivers, seconds): messages from one set to the other take up to that much
    # longer, a congested path (a test's cut preceded by a brownout)
    brownout: tuple[frozenset[str], frozenset[str], float] | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def clock(self) -> float:
        return self.now

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.queue, (when, next(self.order), action))

    def deliver(self, source: "SimLinks", target: "SimLinks", message: Message, size: int,
                quiet: bool = False, relayed: bool = False, to_one: bool = False,
                for_member: "SimLinks | None" = None) -> None:
        """Send one message from `source` to `target`: maybe lost, else after a random delay
        (`for_member`: a message to that member alone, which `target` is to relay to it)."""
        self.sent[source.me.node_id] += 1
        self.sent_bytes[source.me.node_id] += size
        if self.rng.random() < self.loss:
            return

        def arrive() -> None:
            if target.listening and source.me.node_id not in target.blocked:
                self.received[target.me.node_id] += 1
                self.received_bytes[target.me.node_id] += size
                target.arrive(message, source, quiet, relayed, to_one, for_member)
        delay = self.rng.uniform(*self.delay_s)
        if self.brownout is not None and source.me.node_id in self.brownout[0] and target.me.node_id in self.brownout[1]:
            delay += self.rng.uniform(0.0, self.brownout[2])
        self.at(self.now + delay, arrive)

    def run_until(self, until: float) -> None:
        while self.queue and self.queue[0][0] <= until:
            when, _, action = heapq.heappop(self.queue)
            self.now = when
            action()
        self.now = until


class SimLinks:
    """What mesh/links.py's PeerLinks does, over the simulated network: publish to subscribers, subscribe to peers.

    A subscription is the simulated SUB: `connect` subscribes to the member at an
    address and introduces this member to it (the Hello), as the XPUB reports a
    subscriber; a message carries its sender as the link it came in on.
    """

    def __init__(self, network: Network, me: Member, on_message: Callable[[Message], None],
                 on_hello: Callable[[Member, bool], None], counters: collections.Counter) -> None:
        self.network = network
        self.me = me
        self.counters = counters
        self._on_message = on_message
        self._on_hello = on_hello
        # (a dict as an ordered set: a set of objects iterates in id() order, which made a seeded
        # run deliver, and draw its random delays, in a different order each time: review)
        self.subscribers: dict[SimLinks, None] = {}
        self._subscribed_at: dict[SimLinks, int] = {}   # each subscriber's place in that order
        self._subscriptions = itertools.count()
        self.subscribed: dict[tuple[str, int], SimLinks] = {}
        self.join_addresses: set[tuple[str, int]] = set()
        self.join_peers: set[str] = set()
        self.blocked: set[str] = set()      # senders this member cannot hear (a partition)
        self.watching: frozenset[str] | None = None     # whose quiet heartbeats it hears; None: all
        self.outsiders = True                            # hears joiners' heartbeats
        self.catch_up = True                             # hears maps sent again
        self.listening = False
        self.bound = False
        # relays (mesh/links.py `relay`): as a relayer, (origin, quiet) -> the members that asked it;
        # as a subscriber, (relayer, origin, quiet) asked; the last seq heard from each sender
        self.relay_for: dict[tuple[str, bool], dict[SimLinks, None]] = {}
        self._asked: set[tuple[str, str, bool]] = set()
        self._last_seq: dict[str, int] = {}
        self._relayed_seq: dict[str, int] = {}
        self._addressed_taken: dict[str, _Taken] = {}
        self.heard_directly: collections.Counter[str] = collections.Counter()
        self.heard_directly_total = 0
        self.relays_heard: collections.Counter[tuple[str, str]] = collections.Counter()
        network.by_id[me.node_id] = self
        # its hub is not running from the first to the second (SimCluster.starve)
        self.asleep: tuple[float, float] = (float("-inf"), float("-inf"))
        network.by_address[(me.host, me.mesh_port)] = self
        network.hears_all.add(self)
        # its own topics (promises, maps sent again), found without a walk of every subscriber
        # per message: that walk was most of an idle 300-member run's time, the simulator's and
        # not the protocol's (a node's XPUB filters natively, in zmq's I/O thread)
        for own in (addressed(me.node_id), addressed(me.node_id, MAPS)):
            network.by_topic[own] = self

    def close(self, linger_ms: int = 0) -> None:
        self.listening = self.bound = False
        for target in self.subscribed.values():
            target.subscribers.pop(self, None)
        self.subscribed.clear()

    @property
    def refused_now(self) -> int:
        return 0        # (no open-file limit here)

    relaying = True

    def unlinked(self) -> frozenset[str]:
        return frozenset()      # (no open-file limit: every peer subscribed to)

    def linked(self) -> frozenset[str]:
        return frozenset(target.me.node_id for target in self.subscribed.values())

    def relay(self, wanted: dict[str, tuple[tuple[str, ...], bool]]) -> None:
        """mesh/links.py's `relay`: ask the relayers, among the members subscribed to, to publish
        again what each origin says (its quiet heartbeats too where asked)."""
        by_id = {target.me.node_id: target for target in self.subscribed.values()}
        asked = set()
        for origin, (relayers, quiet) in wanted.items():
            for relayer in relayers:
                if relayer in by_id:
                    asked.add((relayer, origin, False))
                    if quiet:
                        asked.add((relayer, origin, True))
        # (in a fixed order, not a set's: a seeded run delivers, and draws its delays, the same each time)
        quiet_relayers = self.network.quiet_relayers
        for relayer, origin, quiet in sorted(self._asked - asked):
            target = self.network.by_id.get(relayer)
            if target is not None:
                target.relay_for.get((origin, quiet), {}).pop(self, None)
                if quiet:
                    quiet_relayers[origin][target] -= 1
        for relayer, origin, quiet in sorted(asked - self._asked):
            by_id[relayer].relay_for.setdefault((origin, quiet), {})[self] = None
            if quiet:
                quiet_relayers.setdefault(origin, collections.Counter())[by_id[relayer]] += 1
        self._asked = asked

    def addressable(self, node_id: str) -> bool:
        return addressed(node_id) in self.network.by_topic

    def older_here(self) -> bool:
        return False    # (every simulated member runs this version)

    def send(self, message: Message, topic: bytes = b"", fallback: bytes = b"") -> None:
        # (every simulated member subscribes to its own topic: `fallback` is never needed)
        size = len(encode(message)) + len(topic)
        self.counters["out"] += 1
        self.counters["out_bytes"] += size
        sender = self.me.node_id
        kinds = kinds_read_under(topic)
        if kinds is not None and not isinstance(message, kinds):
            # (every reader drops a kind that never goes under this topic, mesh/links.py: the answers
            # to a roll call were such, unseen here, and stranded members of real clusters of more
            # than 16 stayed so for good)
            self.counters["sent_unreadable"] += 1
            UNREADABLE_SENT[type(message).__name__] += 1
            return
        # (the publisher's topic filter, as zmq's: mesh/links.py; in the subscribers' order, so that
        # a seeded run draws its losses and delays as it always did)
        if not topic:
            targets = list(self.subscribers)
        elif topic == QUIET:
            listeners = self.network.hears_all | self.network.quiet_listeners.get(sender, set())
            relayers = self.network.quiet_relayers.get(sender)
            if relayers:    # (a relayer hears the quiet heartbeats it was asked to relay: mesh/links.py)
                listeners = listeners | {relayer for relayer, asking in relayers.items() if asking}
            targets = sorted((s for s in listeners if s in self.subscribers), key=self._subscribed_at.__getitem__)
        elif topic == OUTSIDE:     # (and relayers asked to relay this sender, as mesh/links.py)
            targets = [s for s in self.subscribers if s.outsiders or s.relay_for.get((sender, False))]
        elif topic == CATCH_UP:
            targets = [s for s in self.subscribers if s.catch_up]
        else:
            owner = self.network.by_topic.get(topic)
            targets = [owner] if owner is not None and owner in self.subscribers else []
            # (and the members the owner asked to relay this sender: they subscribe to its topic
            # here for it, mesh/links.py `relayed_to`)
            if owner is not None and owner._asked:
                for relayer_id, origin, quiet in sorted(owner._asked):
                    relayer = self.network.by_id.get(relayer_id) if origin == sender and not quiet else None
                    if relayer is not None and relayer in self.subscribers:
                        self.network.deliver(self, relayer, message, size, to_one=True, for_member=owner)
        to_one = topic[:1] == TO
        for subscriber in targets:
            self.network.deliver(self, subscriber, message, size, quiet=topic == QUIET, to_one=to_one)

    def watch(self, node_ids: frozenset[str] | None, outsiders: bool = True, catch_up: bool = True) -> None:
        if node_ids != self.watching:
            network = self.network
            if self.watching is None:
                network.hears_all.discard(self)
            else:
                for node_id in self.watching:
                    network.quiet_listeners[node_id].discard(self)
            if node_ids is None:
                network.hears_all.add(self)
            else:
                for node_id in node_ids:
                    network.quiet_listeners.setdefault(node_id, set()).add(self)
        self.watching, self.outsiders, self.catch_up = node_ids, outsiders, catch_up

    def connect(self, host: str, mesh_port: int, node_id: str | None = None) -> None:
        address = (host, mesh_port)
        if address == (self.me.host, self.me.mesh_port) or address in self.subscribed:
            return
        if node_id is None:
            self.join_addresses.add(address)
        target = self.network.by_address.get(address)
        if target is None or not target.listening:
            return
        self.subscribed[address] = target
        target.subscribers[self] = None
        target._subscribed_at[self] = next(target._subscriptions)
        hello = Hello(self.me.node_id, HELLO_BY_ADDRESS if address in self.join_addresses else 0, self.me)
        self.network.deliver(self, target, hello, len(encode(hello)))

    def disconnect(self, node_id: str) -> None:
        for address, target in list(self.subscribed.items()):
            if target.me.node_id == node_id:
                del self.subscribed[address]
                target.subscribers.pop(self, None)

    def arrive(self, message: Message, source: "SimLinks", quiet: bool = False, relayed: bool = False,
               to_one: bool = False, for_member: "SimLinks | None" = None) -> None:
        if self.asleep[0] <= self.network.now < self.asleep[1]:
            # (a starved hub reads it once it runs again, after its late timer tick: if it still runs)
            def read_late() -> None:
                if self.listening and source.me.node_id not in self.blocked:
                    self.arrive(message, source, quiet, relayed, to_one, for_member)
            self.network.at(self.asleep[1], read_late)
            return
        if for_member is not None:
            # for a member that asked this one to relay what `source` sends it alone (mesh/links.py)
            sender = message.sender
            self.heard_directly[sender] += 1        # (its own link works: mesh/links.py counts it so)
            self.heard_directly_total += 1
            if message.seq > self._last_seq.get(sender, -1):
                self._last_seq[sender] = message.seq
            if (self.me.host, self.me.mesh_port) in for_member.subscribed:
                size = len(encode(message)) + len(relayed_to(sender, for_member.me.node_id))
                self.counters["relayed_out"] += 1
                self.network.deliver(self, for_member, message, size, relayed=True, to_one=True)
            return
        if isinstance(message, Hello):
            self._on_hello(message.me, bool(message.seq & HELLO_BY_ADDRESS))
            self.connect(message.me.host, message.me.mesh_port, message.sender)
            return
        sender = message.sender
        if relayed:
            # (as mesh/links.py `_take_relayed`: what may be relayed, once)
            if isinstance(message, _NOT_RELAYED) or sender in (source.me.node_id, self.me.node_id):
                self.counters["invalid_relayed"] += 1
                return
            self.relays_heard[(sender, source.me.node_id)] += 1
            if to_one:      # (as mesh/links.py: by the message, which may come on its own link too)
                if not self._addressed_taken.setdefault(sender, _Taken()).first(message.seq):
                    self.counters["duplicate"] += 1
                    return
            elif message.seq <= max(self._last_seq.get(sender, -1), self._relayed_seq.get(sender, -1)):
                self.counters["duplicate"] += 1
                return
            else:
                self._relayed_seq[sender] = message.seq
            self.counters["relayed_in"] += 1
            message = keys_checked(message, self.counters)
        else:
            if (source.me.host, source.me.mesh_port) in self.join_addresses:
                self.join_peers.add(source.me.node_id)
            self.heard_directly[sender] += 1
            self.heard_directly_total += 1
            subscribers = self.relay_for.get((sender, quiet)) if self.relay_for and not to_one else None
            if subscribers:
                size = len(encode(message)) + len(relay_topic(sender))
                for subscriber in list(subscribers):
                    self.counters["relayed_out"] += 1
                    self.network.deliver(self, subscriber, message, size, quiet, relayed=True)
            if not to_one and message.seq <= self._relayed_seq.get(sender, -1):
                # (heard through a relay first, as mesh/links.py drops it; only senders relayed here have
                # such a seq, so runs without relays deliver as before)
                self.counters["duplicate"] += 1
                return
            if to_one:
                taken = self._addressed_taken.get(sender)
                if taken is None and any(origin == sender for _, origin, _ in self._asked):
                    taken = self._addressed_taken[sender] = _Taken()
                if taken is not None and not taken.first(message.seq):
                    self.counters["duplicate"] += 1
                    return
        if not relayed and message.seq > self._last_seq.get(sender, -1):     # (as mesh/links.py: its link's)
            self._last_seq[sender] = message.seq
        self.counters["in"] += 1
        self._on_message(message)


class SimCluster:
    """Members on one simulated network, each a real Mesh with its own timer phase."""

    def __init__(self, network: Network, node_timeout_ms: int, interval_s: float,
                 replication_factor: int = 2, aligned: bool = False) -> None:
        self.network = network
        # Each member's timer at a phase of its own (nodes before 7 December 2026), or every
        # timer on the clock's multiples of the interval, numbered, as a node's now is once its
        # quiet heartbeats go every few ticks (mesh/ticks.py, Mesh._quiet_ticks)
        self.aligned = aligned
        self.node_timeout_ms = node_timeout_ms
        self.interval_s = interval_s
        self.replication_factor = replication_factor
        self.members: dict[str, Mesh] = {}
        self.stopped: set[str] = set()
        self.holds: dict[str, int] = {}     # what a member's data plane would say it holds (none here)
        self.awaits: dict[str, frozenset[str]] = {}     # whose holds it would wait for (fallback copies)
        self._count = itertools.count()
        # how much later than due each timer tick runs (`starve`), or None: on time
        self.lateness: Callable[[], float] | None = None
        # members whose hub does not run at all from the first instant to the second (`stall`)
        self.stalls: dict[str, tuple[float, float]] = {}

    def start(self, join: list[tuple[str, int]]) -> Mesh:
        index = next(self._count)
        # (ids as a data directory from before 6 December 2026 (late) has them, naming no vote key: a key
        # is taken only off its sender's own link, never through a relay, mesh/links.py; the tests
        # name members by these ids and replay scenarios found under them)
        node_id = hashlib.sha1(f"sim-{index}".encode()).hexdigest()
        me = Member(node_id, f"10.{index // 250}.{index % 250}.1", 6379, 16379, 8080)
        network = self.network

        def links(member, bind_host, keys, on_message, on_hello, counters):
            return SimLinks(network, member, on_message, on_hello, counters)
        def stats() -> dict:
            # No data here: a joiner holding the cluster's map has copied everything it
            # will lead (nothing), as a node's replicator would say (catching_up)
            if mesh.joining and mesh.slotmap.members != (mesh.me,):
                return {"catching_up": ((mesh.slotmap.epoch, 0, 0),)}
            return {"holds": self.holds.get(node_id, 0), "awaits": self.awaits.get(node_id, frozenset())}
        mesh = Mesh(me, join, self.replication_factor, self.node_timeout_ms, stats,
                    lambda channel, message: None, heartbeat_interval_s=self.interval_s,
                    clock=network.clock, links=links, offload=lambda name, args, then, failed: then(placements()[name](*args)))
        mesh.links.listening = mesh.links.bound = True
        for host, mesh_port in join:
            mesh.links.connect(host, mesh_port)
        self.members[node_id] = mesh
        if self.aligned and mesh._quiet_ticks > 1:
            number = math.floor(network.now / self.interval_s) + 1
            self._tick(mesh, number * self.interval_s, number)
        else:
            self._tick(mesh, network.now + network.rng.uniform(0, self.interval_s))
        return mesh

    def _tick(self, mesh: Mesh, when: float, number: int | None = None) -> None:
        def fire() -> None:
            if mesh.me.node_id in self.stopped:
                return
            mesh.beat_once(self.network.now, number)
            if number is None:
                self._tick(mesh, self.network.now + self.interval_s)
            else:   # (the next multiple after now: a late tick does not shift the grid)
                after = math.floor(self.network.now / self.interval_s) + 1
                self._tick(mesh, after * self.interval_s, after)
        if self.lateness is not None:
            # the hub does not run from when the tick was due until it fires: what arrives meanwhile
            # waits, and nothing is sent
            due, when = when, when + self.lateness()
            mesh.links.asleep = (due, when)
        stall = self.stalls.get(mesh.me.node_id)
        if stall is not None and stall[0] <= when < stall[1]:
            mesh.links.asleep, when = stall, stall[1]
        self.network.at(when, fire)

    def stall(self, node_id: str, began: float, seconds: float) -> None:
        """Stop one member's hub for `seconds` from `began` (virtual time): nothing is sent, and
        what arrives is read after it, as a node busy with the rest of its start-up on a loaded
        machine (its timer tick due meanwhile fires at the end)."""
        self.stalls[node_id] = (began, began + seconds)

    def starve(self, seed: int, late_s: float, stall_chance: float, stall_s: tuple[float, float]) -> None:
        """Run every member's timer late from now on, as on a machine with more busy processes than cores:
        each tick up to `late_s` late, and with `stall_chance` a stall of `stall_s` instead."""
        rng = random.Random(seed)

        def lateness() -> float:
            return rng.uniform(*stall_s) if rng.random() < stall_chance else rng.uniform(0.0, late_s)
        self.lateness = lateness

    def crash(self, node_id: str) -> None:
        """Stop a member without a word, as SIGKILL does."""
        self.stopped.add(node_id)
        self.members[node_id].links.close()

    def live(self) -> list[Mesh]:
        return [m for n, m in self.members.items() if n not in self.stopped]

    def seed(self) -> tuple[str, int]:
        first = self.live()[0].me
        return first.host, first.mesh_port

    def agreed(self, members: set[str]) -> bool:
        """Every live member holds one map, and its members are exactly `members`."""
        # (members mostly hold the very same map object: digest each distinct one once, since
        # packing a 1,000-member map for every member every 50 ms was most of the run)
        distinct = {id(m.slotmap): m.slotmap for m in self.live()}
        maps = {digest(slotmap): slotmap for slotmap in distinct.values()}
        if len(maps) != 1:
            return False
        (only,) = maps.values()
        return {m.node_id for m in only.members} == members

    def run_until_agreed(self, members: set[str], limit_s: float, step_s: float = 0.05) -> float | None:
        """Advance until `agreed(members)`; return the virtual time it took, or None past `limit_s`."""
        began = self.network.now
        while self.network.now - began <= limit_s:
            if self.agreed(members):
                return self.network.now - began
            self.network.run_until(self.network.now + step_s)
        return None

    def epoch(self) -> int:
        return max(m.slotmap.epoch for m in self.live())

    def suspected(self) -> set[str]:
        """Members some live member ever suspected or held dead, from the members' own event logs."""
        return {event.node for m in self.live() for event in m.events
                if event.kind in ("suspect", "dead") and event.node is not None}


def form(network: Network, members: int, node_timeout_ms: int, interval_s: float,
         limit_s: float, aligned: bool = False) -> tuple[SimCluster, float | None, int]:
    """Start one member, then the others joining it in one go; return the cluster, time to agree and epochs."""
    cluster = SimCluster(network, node_timeout_ms, interval_s, aligned=aligned)
    cluster.start([])
    network.run_until(network.now + interval_s * 2)
    seed = cluster.seed()
    for _ in range(members - 1):
        cluster.start([seed])
    took = cluster.run_until_agreed(set(cluster.members), limit_s)
    return cluster, took, cluster.epoch()


def idle_rates(cluster: SimCluster, seconds: float) -> dict:
    """Traffic and CPU per member per second over `seconds` of an idle, agreed cluster."""
    network = cluster.network
    live = [m.me.node_id for m in cluster.live()]
    before = {name: dict(getattr(network, name)) for name in ("sent", "sent_bytes", "received", "received_bytes")}
    cpu_before = time.process_time()
    network.run_until(network.now + seconds)
    cpu = time.process_time() - cpu_before
    rates = {}
    for name in before:
        counter = getattr(network, name)
        total = sum(counter[n] - before[name].get(n, 0) for n in live)
        rates[name] = total / len(live) / seconds
    rates["cpu_ms_per_s"] = cpu * 1000 / len(live) / seconds
    return rates


# How long after a change is agreed its traffic is still counted: the new map said for NEWS_BEATS
# intervals (mesh/bus.py), with a margin.
AFTER_CHANGE_S = 1.5


def change_cost(cluster: SimCluster, before: dict[str, int], began: float, idle_per_s: float) -> float:
    """Messages each live member heard from `began` until now beyond what it hears idle (the mean):
    what a change cost it (its ballot, the news, the new map said)."""
    live = [m.me.node_id for m in cluster.live()]
    received = cluster.network.received
    heard = sum(received[n] - before.get(n, 0) for n in live) / len(live)
    return heard - idle_per_s * (cluster.network.now - began)


def scenario(members: int, loss: float, node_timeout_ms: int, interval_s: float, idle_s: float,
             scale_up: int, seed: int) -> dict:
    """Form a cluster, measure it idle, then a crash, a join and a scale-up; return the figures."""
    network = Network(loss=loss, seed=seed)
    limit_s = 60 + members * 0.5
    wall = time.perf_counter()
    cluster, formed_s, formed_epoch = form(network, members, node_timeout_ms, interval_s, limit_s)
    result: dict = {"members": members, "loss": loss, "node_timeout_ms": node_timeout_ms,
                    "formed_s": formed_s, "formed_epochs": formed_epoch}
    if formed_s is None:
        return result
    # News of the formation (members learned, the new map) goes to everyone for a second:
    # idle is what follows it.
    network.run_until(network.now + 2.0)
    result["idle"] = idle_rates(cluster, idle_s)
    suspected_before = cluster.suspected()

    idle_in = result["idle"]["received"]
    victim = cluster.live()[-1].me.node_id
    epoch = cluster.epoch()
    cluster.crash(victim)
    crashed_at = network.now
    before = dict(network.received)
    took = cluster.run_until_agreed({m.me.node_id for m in cluster.live()}, limit_s)
    network.run_until(network.now + AFTER_CHANGE_S)
    result["crash_cost_in"] = change_cost(cluster, before, crashed_at, idle_in)
    detected = [m for m in cluster.live() if any(e.kind == "dead" and e.node == victim for e in m.events)]
    result["crash_agreed_s"] = took
    result["crash_detected_by"] = len(detected)
    result["crash_epochs"] = cluster.epoch() - epoch
    del crashed_at
    # The dead member rides in every heartbeat until it is forgotten (10 node timeouts): what
    # the mesh costs meanwhile, from AFTER_CHANGE_S after the map without it, for as long as idle.
    result["after_crash"] = idle_rates(cluster, idle_s)

    epoch = cluster.epoch()
    before, began = dict(network.received), network.now
    cluster.start([cluster.seed()])
    result["join_agreed_s"] = cluster.run_until_agreed(set(m.me.node_id for m in cluster.live()), limit_s)
    result["join_epochs"] = cluster.epoch() - epoch
    network.run_until(network.now + AFTER_CHANGE_S)
    result["join_cost_in"] = change_cost(cluster, before, began, idle_in)

    if scale_up:
        epoch = cluster.epoch()
        seed_address = cluster.seed()
        for _ in range(scale_up):
            cluster.start([seed_address])
        result["scale_up"] = scale_up
        result["scale_up_agreed_s"] = cluster.run_until_agreed(
            set(m.me.node_id for m in cluster.live()), limit_s)
        result["scale_up_epochs"] = cluster.epoch() - epoch

    stopped = cluster.stopped
    result["false_suspicions"] = len((cluster.suspected() | suspected_before) - stopped)
    result["wall_s"] = round(time.perf_counter() - wall, 1)
    return result


def starved(members: int, seconds: float, node_timeout_ms: int, interval_s: float, seed: int,
            late_s: float = 0.6, stall_chance: float = 0.03, stall_s: tuple[float, float] = (1.5, 3.5)) -> dict:
    """Form a cluster, then run every member late for `seconds` (SimCluster.starve): no member
    crashed, so every suspicion and death is false; the local health each member ended with."""
    network = Network(seed=seed)
    cluster, formed_s, _ = form(network, members, node_timeout_ms, interval_s, 60 + members * 0.5)
    if formed_s is None:
        return {"members": members, "formed_s": None}
    network.run_until(network.now + 2.0)
    before = cluster.suspected()
    epoch = cluster.epoch()
    cluster.starve(seed, late_s, stall_chance, stall_s)
    network.run_until(network.now + seconds)
    deaths = {event.node for m in cluster.live() for event in m.events if event.kind == "dead"}
    scores = [m.health.score for m in cluster.live()]
    result = {"members": members, "seconds": seconds,
              "suspected": len(cluster.suspected() - before), "dead": len(deaths),
              "epochs": cluster.epoch() - epoch,
              "map_members": min(len(m.slotmap.members) for m in cluster.live()),
              "local_health_min_max": (min(scores), max(scores))}
    # A real crash, still starved: found later, (local health + 1) node timeouts, but found.
    cluster.crash(cluster.live()[-1].me.node_id)
    result["crash_agreed_s"] = cluster.run_until_agreed({m.me.node_id for m in cluster.live()}, 60.0)
    return result


def stalled_joins(members: int, joiners: int, node_timeout_ms: int, interval_s: float, seed: int,
                  stall_s: tuple[float, float] = (3.5, 4.5), window_s: float = 15.0) -> dict:
    """Form a cluster, then start `joiners` newcomers at once, each of whose hub stalls for
    `stall_s` half a second after it started (its first heartbeats sent), as 100 real nodes
    joining 10 at a time on 2 cores did: who suspects the newcomers, how long until all agree
    on a map with them, and the messages each old member heard in the `window_s` from the start
    (the news of the maps adopted goes out after the agreement)."""
    network = Network(seed=seed)
    cluster, formed_s, _ = form(network, members, node_timeout_ms, interval_s, 60 + members * 0.5)
    if formed_s is None:
        return {"members": members, "formed_s": None}
    network.run_until(network.now + 2.0)
    rng = random.Random(seed)
    old = set(cluster.members)
    epoch = cluster.epoch()
    received = dict(network.received)
    began = network.now
    newcomers = set()
    for _ in range(joiners):
        mesh = cluster.start([cluster.seed()])
        newcomers.add(mesh.me.node_id)
        cluster.stall(mesh.me.node_id, began + 0.5, rng.uniform(*stall_s))
    # (each member's own event log, from here on: the log keeps only its last 100 events)
    verdicts: collections.Counter = collections.Counter()
    suspecters: set[str] = set()
    for mesh in cluster.live():
        def record(kind, node_id, text, mesh=mesh, record=mesh._record):
            if node_id in newcomers and kind in ("suspect", "dead"):
                verdicts[kind] += 1
                if kind == "suspect":
                    suspecters.add(mesh.me.node_id)
            record(kind, node_id, text)
        mesh._record = record
    took = cluster.run_until_agreed(set(cluster.members), 120.0)
    network.run_until(max(network.now, began + window_s))
    return {"members": members, "joiners": joiners, "agreed_s": took, "epochs": cluster.epoch() - epoch,
            "suspicions": verdicts["suspect"], "suspecters": len(suspecters), "deaths": verdicts["dead"],
            "msgs_in_per_member": round(sum(network.received[n] - received.get(n, 0) for n in old) / len(old)),
            "in_s": round(network.now - began, 1)}


def slow_checks(members: int, node_timeout_ms: int, interval_s: float, seed: int,
                check_timeouts: tuple[float, float], loss: float = 0.01, limit_s: float = 60.0) -> dict:
    """Every voter's check of a proposed map (`follows`, in its placement worker) takes a random
    `check_timeouts` node timeouts, as on a machine too loaded to vote within one; crash the lowest
    member and say how long the others took to agree without it, and how many ballots that took."""
    network = Network(seed=seed, loss=loss)
    cluster, formed_s, _ = form(network, members, node_timeout_ms, interval_s, 120)
    network.run_until(network.now + 2 * node_timeout_ms / 1000)
    rng = random.Random(seed)
    prepares = collections.Counter()
    for mesh in cluster.members.values():
        def slow(name, args, then, failed, fast=mesh._offload):
            if name == "follows":
                delay = rng.uniform(*check_timeouts) * node_timeout_ms / 1000
                network.at(network.now + delay, lambda: fast(name, args, then, failed))
            else:
                fast(name, args, then, failed)
        mesh._offload = slow

        def send(message, *how, send=mesh.links.send):
            if isinstance(message, Prepare):
                prepares[message.sender] += 1
            send(message, *how)
        mesh.links.send = send
    ids = sorted(cluster.members)
    cluster.crash(ids[0])
    took = cluster.run_until_agreed(set(ids[1:]), limit_s)
    return {"members": members, "seed": seed, "check_timeouts": list(check_timeouts), "formed_s": formed_s,
            "crash_agreed_s": took, "ballots": sum(prepares.values())}


def broken_links(members: int, cuts: int, node_timeout_ms: int, interval_s: float, seed: int,
                 relays: bool = True, seconds: float = 30.0) -> dict:
    """Form a cluster, then have `cuts` watchers, at random, stop hearing one member they watch on
    their own link (one way: the member hears them, the others hear it) for `seconds`: the
    suspicions and deaths of those members, the messages heard per member per second meanwhile,
    the messages relayed; then crash one member and time its agreement. `relays` False: as
    before relays (mesh/links.py `relay`), for comparison."""
    network = Network(seed=seed)
    cluster, formed_s, _ = form(network, members, node_timeout_ms, interval_s, 60 + members * 0.5)
    if formed_s is None:
        return {"members": members, "formed_s": None}
    for mesh in cluster.members.values():
        mesh.links.relaying = relays
    network.run_until(network.now + 2 * node_timeout_ms / 1000)
    rng = random.Random(seed)
    ids = sorted(cluster.members)
    pairs: set[tuple[str, str]] = set()
    while len(pairs) < cuts:
        watched = rng.choice(ids)
        watchers = cluster.members[watched].membership.watchers
        group = sorted(ids if watchers is None else watchers[watched])
        pairs.add((rng.choice([w for w in group if w != watched]), watched))
    for watcher, watched in sorted(pairs):
        cluster.members[watcher].links.blocked.add(watched)
    verdicts: collections.Counter = collections.Counter()
    for mesh in cluster.live():
        def record(kind, node_id, text, record=mesh._record):
            if kind in ("suspect", "dead"):
                verdicts[kind] += 1
            record(kind, node_id, text)
        mesh._record = record
    received, relayed = dict(network.received), sum(m.counters["relayed_in"] for m in cluster.live())
    began, epoch = network.now, cluster.epoch()
    network.run_until(began + seconds)
    live = [m.me.node_id for m in cluster.live()]
    result = {"members": members, "cuts": cuts, "relays": relays,
              "suspicions": verdicts["suspect"], "deaths": verdicts["dead"], "epochs": cluster.epoch() - epoch,
              "msgs_in_per_member_s": round(sum(network.received[n] - received.get(n, 0) for n in live)
                                            / len(live) / seconds, 2),
              "relayed_per_s": round((sum(m.counters["relayed_in"] for m in cluster.live()) - relayed) / seconds, 1)}
    victim = rng.choice([n for n in ids if all(n not in pair for pair in pairs)])
    cluster.crash(victim)
    crashed_at = network.now
    took = cluster.run_until_agreed(set(cluster.members) - {victim}, 60.0)
    result["crash_agreed_s"] = None if took is None else round(network.now - crashed_at, 2)
    return result


def partition(members: int, minority: float, node_timeout_ms: int, interval_s: float, seconds: float,
              seed: int) -> dict:
    """Cut a formed cluster in two at random (`minority` of the members on one side, both ways)
    for `seconds`: the minority members the majority side's newest map left out, and those of
    them that still held their write lease meanwhile (two primaries for their slots: a split brain)."""
    network = Network(seed=seed)
    cluster, formed_s, _ = form(network, members, node_timeout_ms, interval_s, 60 + members * 0.5)
    if formed_s is None:
        return {"members": members, "formed_s": None}
    network.run_until(network.now + 2 * node_timeout_ms / 1000)
    ids = sorted(cluster.members)
    cut = set(random.Random(seed).sample(ids, int(members * minority)))
    rest = set(ids) - cut
    for node_id, mesh in cluster.members.items():
        mesh.links.blocked = set(rest if node_id in cut else cut)
    both_sides: set[str] = set()
    newest = None
    began = network.now
    while network.now - began < seconds:
        network.run_until(network.now + interval_s)
        newest = max((cluster.members[n].slotmap for n in rest), key=lambda slotmap: slotmap.epoch)
        left_out = cut - {m.node_id for m in newest.members}
        both_sides.update(n for n in left_out if cluster.members[n].accepting_writes())
    assert newest is not None
    return {"members": members, "minority": len(cut), "watchers_mode": members > 9,
            "left_out": len(cut - {m.node_id for m in newest.members}),
            "split_brain": len(both_sides),
            "still_writable_at_end": sum(cluster.members[n].accepting_writes() for n in both_sides)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, nargs="+", default=[24, 48, 100])
    parser.add_argument("--loss", type=float, default=0.01)
    parser.add_argument("--node-timeout-ms", type=int, default=3000)
    parser.add_argument("--interval-s", type=float, default=0.25)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--scale-up", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="one JSON line per size instead of the table")
    parser.add_argument("--starved-s", type=float, default=0.0,
                        help="instead: run every member late for this long (starved), then crash one, "
                             "and print the false suspicions and deaths, and how long the crash took to agree")
    parser.add_argument("--stalled-joins", type=int, default=0,
                        help="instead: start this many newcomers at once, each stalled for ~4 s as it "
                             "starts, and print who suspected them, the messages heard and the time to agree")
    parser.add_argument("--stall-s", type=float, nargs=2, default=(3.5, 4.5),
                        help="with --stalled-joins: each newcomer's stall, at random between the two (0 0: none)")
    parser.add_argument("--broken-links", type=int, default=0,
                        help="instead: this many watchers stop hearing a member they watch on their own "
                             "link, one way, for 30 s; print suspicions, deaths, messages, relays, then a crash's agreement")
    parser.add_argument("--no-relays", action="store_true", help="with --broken-links: as before relays")
    parser.add_argument("--slow-checks", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                        help="instead: every voter's check of a proposed map takes LOW-HIGH node timeouts; "
                             "crash a member and print how long the others took to agree, and the ballots")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)     # the members' own info and warning lines: thousands
    if args.slow_checks:
        for members in args.members:
            print(json.dumps(slow_checks(members, args.node_timeout_ms, args.interval_s, args.seed,
                                         tuple(args.slow_checks), args.loss)), flush=True)
        return
    if args.broken_links:
        for members in args.members:
            print(json.dumps(broken_links(members, args.broken_links, args.node_timeout_ms, args.interval_s,
                                          args.seed, relays=not args.no_relays)), flush=True)
        return
    if args.stalled_joins:
        for members in args.members:
            print(json.dumps(stalled_joins(members, args.stalled_joins, args.node_timeout_ms, args.interval_s,
                                           args.seed, tuple(args.stall_s))), flush=True)
        return
    if args.starved_s:
        for members in args.members:
            print(json.dumps(starved(members, args.starved_s, args.node_timeout_ms, args.interval_s, args.seed)),
                  flush=True)
        return
    print("members  loss  msgs/s out  msgs/s in  KB/s out  KB/s in  cpu ms/s  formed s  crash s  join s"
          "  scale-up s (epochs)  false susp  msgs/s in after crash  crash msgs in  join msgs in  wall s")
    for members in args.members:
        r = scenario(members, args.loss, args.node_timeout_ms, args.interval_s, args.idle_s, args.scale_up,
                     args.seed)
        if args.json:
            print(json.dumps(r), flush=True)
            continue
        idle = r.get("idle", {})
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        print(f"{members:7d}  {args.loss:4.2f}  {idle.get('sent', 0):10.1f}  {idle.get('received', 0):9.1f}"
              f"  {idle.get('sent_bytes', 0) / 1024:8.2f}  {idle.get('received_bytes', 0) / 1024:7.2f}"
              f"  {idle.get('cpu_ms_per_s', 0):8.2f}  {fmt(r['formed_s']):>8}  {fmt(r.get('crash_agreed_s')):>7}"
              f"  {fmt(r.get('join_agreed_s')):>6}  {fmt(r.get('scale_up_agreed_s')):>10} ({r.get('scale_up_epochs', '-')})"
              f"  {r.get('false_suspicions', '-'):>10}  {r.get('after_crash', {}).get('received', 0):21.1f}"
              f"  {r.get('crash_cost_in', 0):13.1f}  {r.get('join_cost_in', 0):12.1f}"
              f"  {r.get('wall_s', '-'):>6}", flush=True)


if __name__ == "__main__":
    main()
