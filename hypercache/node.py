"""The composition root: build a node's parts, start their greenlets, stop them. No decisions here."""
from __future__ import annotations

import functools
import logging
import signal
import time
from pathlib import Path

import gevent
from gevent.event import Event

from mesh import ballot, curve, exposure, ticks
from mesh.keyslot import keyslot
from mesh.bus import Mesh
from mesh.links import PeerLinks
from mesh.slotmap import Member, SlotMap

from . import commands, gc_policy, pulse, routing
from .blocking import Blocking
from .commands.acl import make_users
from .config import Config, Settings
from .context import Context
from .identity import ID_FILE, KEY_FILE, load_identity
from .join_probe import JoinProbe, stuck_reason
from .keyevents import KeyEvents
from .pubsub import PubSub
from .replication import Replicator
from .roles import replica_port
from .server import RespServer
from .stats import ServerStats
from .status import build_snapshot
from .status_server import StatusServer
from .store import Store

log = logging.getLogger(__name__)

ACTIVE_EXPIRE_EVERY_S = 0.1      # Redis's hz 10
# With no client connected, no key with a TTL, nothing paused and no map to check blocked
# clients against, a tick has nothing to do: the housekeeping waits this long instead (a client
# connecting wakes it). 10 idle ticks a second were ~0.1% of a core (loadtest/mesh_cost.py).
QUIET_EVERY_S = 1.0
ACTIVE_EXPIRE_BUDGET = 200       # keys per tick, so a tick never stalls clients for long


class Node:
    def __init__(self, config: Config) -> None:
        self.config = config
        commands.load_all()
        keys = _mesh_keys(config)
        refused = exposure.refusal(config.host, keys is not None, config.mesh_insecure)
        if refused is not None:
            raise exposure.MeshExposed(refused)
        # With mesh keys (per-node, or a member's own pair with a cluster secret) the node id is
        # derived from its public key (mesh/curve.py): no other member can claim it. Otherwise it
        # names this node's vote key (hypercache/identity.py), which relays then cannot swap.
        identity = load_identity(config.data_dir, None if keys is None else keys.node_id)
        self.node_id = identity.node_id
        if keys is None and not identity.bound:
            log.warning("node id %s names no vote key (a data directory from before ids named keys, or "
                        "one that lost %s): members with no mesh link to this node cannot count its votes, "
                        "and a proposer short of links may commit no map; to mint an id that names the key, "
                        "stop the node and remove %s (it then joins as a new member)",
                        identity.node_id, KEY_FILE, Path(config.data_dir) / ID_FILE)
        self.me = Member(self.node_id, config.resolved_announce_host, config.port,
                         config.resolved_mesh_port, config.http_port)
        settings = Settings.from_config(config)
        store = Store()
        store.configure_eviction(settings.maxmemory, settings.maxmemory_policy)
        # A lone node is a one-member cluster: the same Mesh, with nobody to join.
        self.cluster = Mesh(self.me, [_address(j) for j in config.join], config.replication_factor,
                            config.node_timeout_ms, self._local_stats, self._on_mesh_publish,
                            bind_host=config.host,
                            ballot_path=Path(config.data_dir) / ballot.FILE_NAME if config.data_dir else None,
                            keys=keys, signer=identity.signer, settled=self._data_settled,
                            links=functools.partial(PeerLinks, max_peers=config.max_mesh_peers))
        self.ctx = Context(config=config, settings=settings, store=store, stats=ServerStats(),
                           cluster=self.cluster, node_id=self.node_id, blocking=Blocking(),
                           started_at=time.monotonic())
        self.ctx.acl = make_users(settings.requirepass, config.aclfile)     # RuleError (ValueError): cannot start
        self.key_events = KeyEvents(store, self.ctx.blocking)
        self.ctx.key_events = self.key_events
        self.ctx.shutdown = self.request_stop
        self.server = RespServer(self.ctx, self.key_events, config.host, config.port,
                                 on_disconnect=self._on_disconnect, replica_port=replica_port(config.port))
        self.ctx.pubsub = PubSub(self.ctx.deliver)     # after the server: it installs ctx.deliver
        # keyspace notifications reach this node's subscribers only, as in Redis Cluster
        self.key_events.publish = self.ctx.pubsub.deliver_local
        self.key_events.tracking.deliver = self.ctx.deliver
        self.key_events.tracking.clients = self.ctx.clients
        # The first node of a new cluster holds every slot's (empty) data; a node that
        # joins, or comes back under an id the cluster knows, must first be given it.
        fresh = not config.join and not self.cluster.was_member
        self.replicator = Replicator(self.ctx, self.cluster, config.replication_mode, keys, config.host,
                                     fresh=fresh)
        self.server.replicator = self.replicator
        self.replicator.connections = self.server.connections
        self.cluster.on_adopt = self.replicator.wake
        self.cluster.on_tick = self.replicator.note_absence
        self.ctx.replicator = self.replicator
        self.key_events.on_own = self.replicator.events_wish_changed
        # PUBLISH reaches every node's subscribers, as in Redis Cluster: the
        # hub hands each local PUBLISH to the mesh, the mesh hands peers' back.
        self.ctx.pubsub.on_publish = self.cluster.publish
        # says on /health, and in the log, why a joining node hears nobody (a wrong --join)
        # (and why one that hears peers is not admitted: they may be joining too)
        self.join_probe = JoinProbe([_address(j) for j in config.join], lambda: self.cluster.joining,
                                    lambda: stuck_reason(self.cluster.joining_for_s(), self.cluster.node_timeout_s,
                                                         self.cluster.peer_epochs()))
        self.http: StatusServer | None = None
        self.stopping = Event()
        self._busy = Event()        # set by a client connecting (and by stopping): ends a quiet wait
        self.server.on_connect = self._busy.set
        self.greenlets: list[gevent.Greenlet] = []
        self._blocked_checked_map: SlotMap | None = None     # the slot map blocked clients were last checked against

    def _local_stats(self) -> dict:
        replicator = getattr(self, "replicator", None)     # (made after the mesh)
        return {"keys": self.ctx.store.key_count, "used_memory": self.ctx.store.used_memory,
                "ops_per_sec": self.ctx.stats.ops_per_sec,
                "catching_up": replicator.catching_up() if replicator is not None else (),
                "holds": replicator.holds() if replicator is not None else 0,
                "awaits": replicator.awaited() if replicator is not None else frozenset()}

    def _data_settled(self) -> bool:
        replicator = getattr(self, "replicator", None)     # (made after the mesh)
        return replicator is not None and replicator.settled()

    def _on_mesh_publish(self, channel: bytes, message: bytes) -> None:
        """A PUBLISH made on another node: deliver it to this node's subscribers only."""
        self.ctx.pubsub.deliver_local(channel, message)

    def _on_disconnect(self, session) -> None:
        if session.watched:
            self.key_events.unwatch_all(session)
        if session.tracking is not None or self.key_events.tracking.current is session:
            self.key_events.tracking.forget(session)
            self.key_events.refresh()
        pubsub = self.ctx.pubsub
        if pubsub is not None and session.in_pubsub:
            pubsub.forget(session)
        if session.monitor:
            self.ctx.monitors.remove(session)

    def snapshot(self) -> dict:
        return build_snapshot(self.ctx, self.cluster, self.me, join_reason=self.join_probe.reason)

    def start(self) -> None:
        self.server.start()
        if self.config.http_port:
            # in its own thread: HTTP load must not stall the RESP hub (hypercache/status_server.py);
            # before the mesh, whose hello tells the members to expect heartbeats (the status
            # server's start took 2 s of a loaded machine, and the members' patience is node_timeout)
            self.http = StatusServer(self.snapshot, self.config.host, self.config.http_port)
            self.http.start()
        self.cluster.start()
        # a command of a million elements keeps the heartbeat going (hypercache/pulse.py)
        pulse.install(self.cluster.beat_if_due)
        self.replicator.start()
        self.join_probe.start()
        self.greenlets = [gevent.spawn(self._housekeeping)]
        # (last: what start-up made is frozen, so full collections skip it; hypercache/gc_policy.py)
        gc_policy.COLLECTOR.install()
        log.info("node started node=%s port=%d mesh_port=%d http_port=%d",
                 self.node_id, self.config.port, self.me.mesh_port, self.config.http_port)

    def _housekeeping(self) -> None:
        """Active expiry, idle-client timeouts and the ops/sec sample, ten times a second (once, quiet)."""
        while not self.stopping.is_set():
            try:
                self._housekeeping_tick()
            except Exception:
                # one bad tick (say, a blocked client's retry failing) must not end expiry for good
                log.exception("housekeeping tick failed")
            if self._quiet():
                self._busy.wait(ticks.next_tick(QUIET_EVERY_S, time.time())[1])  # (with the others: mesh/ticks.py)
                self._busy.clear()
            else:
                self.stopping.wait(ACTIVE_EXPIRE_EVERY_S)

    def _quiet(self) -> bool:
        """Nothing for a housekeeping tick to do (see QUIET_EVERY_S)."""
        ctx = self.ctx
        return (not self.server.connections and not ctx.store.expires and not ctx.blocking.ready
                and not self.server.dispatcher.paused_until
                and self.cluster.slotmap is self._blocked_checked_map)

    def _housekeeping_tick(self) -> None:
        ctx = self.ctx
        now_ms = int(time.time() * 1000)
        # a busy script owns the keyspace until it ends: no expiry or wakeups under it
        script_busy = ctx.scripts is not None and ctx.scripts.busy
        dispatcher = self.server.dispatcher
        dispatcher.check_pause(time.monotonic())
        # (as Redis, keys do not expire while clients are paused: a paused node changes nothing)
        if not script_busy and not dispatcher.paused_until:
            ctx.now_ms = now_ms
            ctx.store.expire_due(now_ms, keyslot, ACTIVE_EXPIRE_BUDGET)
            if ctx.blocking.ready:
                ctx.blocking.serve_ready()
        now = time.monotonic()
        self.server.close_idle(now_ms)
        ctx.stats.sample_ops(now)
        gc_policy.COLLECTOR.tick()
        if self.cluster.slotmap is not self._blocked_checked_map:
            self._blocked_checked_map = self.cluster.slotmap
            self._redirect_moved_waiters()

    def _redirect_moved_waiters(self) -> None:
        """Clients blocked on keys whose slot this node no longer serves get the redirect,
        as Redis Cluster answers them (-MOVED, or -CLUSTERDOWN when nobody serves it)."""
        slotmap = self.cluster.slotmap
        blocking = self.ctx.blocking
        for waiter in blocking.waiters():
            if not waiter.suspend.keyed:
                continue
            slot = keyslot(waiter.suspend.keys[0])
            owners = slotmap.owners[slot]
            if owners and owners[0] == self.node_id:
                continue
            if owners:
                primary = slotmap.member(owners[0])
                blocking.finish(waiter, routing.moved(slot, primary.host, primary.port))
            else:
                blocking.finish(waiter, routing.CLUSTERDOWN_UNBOUND)

    def request_stop(self) -> None:
        self.stopping.set()
        self._busy.set()

    def run(self) -> None:
        self.start()
        gevent.signal_handler(signal.SIGTERM, self.request_stop)
        gevent.signal_handler(signal.SIGINT, self.request_stop)
        self.stopping.wait()
        self.stop()

    def stop(self) -> None:
        log.info("node stopping node=%s", self.node_id)
        self.stopping.set()
        self._busy.set()
        # Hand the slots over first: clients are still served (and writes replicated)
        # until the map without this node commits, so the next owners hold everything.
        deadline = time.monotonic() + self.config.leave_timeout_ms / 1000
        self.cluster.leave(self.config.leave_timeout_ms / 1000, self.replicator.ready_to_leave)
        # Slots whose only copy is here (replication factor 1) are pulled by their new
        # primaries from this node after that map: stay until they have them (unless every
        # other member has left too, as when a whole local cluster is stopped: nobody pulls).
        while self.replicator.handing_over() and self.cluster.others_alive() and time.monotonic() < deadline:
            gevent.sleep(0.05)
        if self.replicator.handing_over() and self.cluster.others_alive():
            log.warning("left before every slot whose only copy was here was handed over node=%s",
                        self.node_id[:8])
        self.join_probe.stop()
        self.replicator.stop()
        pulse.install(None)
        self.cluster.stop()
        self.server.stop()
        if self.http is not None:
            self.http.stop(timeout=1)
        gevent.killall(self.greenlets, timeout=1)


def _mesh_keys(config: Config) -> curve.MeshKeys | None:
    """The keys that close the mesh and the data channel: per-node pairs, or the pair of the cluster secret."""
    if config.cluster_secret and config.mesh_secret_key_file:
        raise ValueError("a cluster secret and per-node mesh keys exclude each other: choose one")
    if config.cluster_secret:
        # the member's own pair, kept in its data directory (its id across restarts), else a fresh one
        return curve.from_secret(config.cluster_secret, curve.member_pair(config.data_dir))
    if config.mesh_secret_key_file:
        return curve.load(config.mesh_secret_key_file, config.mesh_public_keys_dir)
    return None


def _address(text: str) -> tuple[str, int]:
    """Parse a --join "host:meshport" (IPv6 hosts in brackets)."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)
