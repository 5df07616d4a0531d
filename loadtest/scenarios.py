#!/usr/bin/env python3
"""Run fault scenarios against real 3-node rf 2 clusters under a concurrent workload and check what survived.

Each scenario starts a fresh cluster (`--replication-factor 2 --node-timeout-ms 1000`),
waits until it agrees and every replica stream is in sync, then starts:

- the workload: --threads threads, each with its own redis-py RedisCluster, looping
  SET of a unique key (value: a unique token), RPUSH of a unique element to one of a
  few shared lists, INCR of one of a few shared counters; every operation is logged
  with its start and end instant and whether it was acknowledged (returned without
  an exception);
- a probe: one more RedisCluster writing a key whose slot the victim leads, so that
  "failover" is the first acknowledged write on one of the victim's slots.

Then the fault; then the cluster must agree again with every replica in sync; the
workload runs on for a moment, stops, and the checker reads everything back through
RedisCluster and from every owner (READONLY, owners from CLUSTER SLOTS):

- lost_set: acknowledged SETs whose key does not hold its token (must be 0);
- miss_elem: acknowledged RPUSH elements missing from their list;
- lost_incr / excess_incr: acknowledged INCRs minus the counter value if positive, and
  the other way round (a failed INCR may have applied, or a retried one applied twice);
- dup_elem: RPUSH elements found more than once (a resent or failed RPUSH may apply twice);
- unexplained: extra INCRs and duplicate elements beyond what failed or resent operations
  account for (resent: redis-py sent it again after a timeout or a closed connection, which
  it does inside one call, unseen by the caller: see CountingCluster); must be 0;
- fail_present: failed SETs/RPUSHes whose effect is there anyway (allowed);
- owners_diff: keys some owner holds differently from its primary (must be 0).

Figures: detect_s (fault -> every survivor's CLUSTER INFO/NODES shows the new map;
for a join, every node shows the joiner leading slots), failover_s (fault -> first
acknowledged probe write started after the fault), gap_s (the longest time without
any acknowledged workload write, over the whole run), recover_s (fault -> the
cluster agrees and every replica is in sync). Rolling restart reports the largest
step for detect_s and failover_s and the whole roll for recover_s. `rebalance` grows
the cluster to 4, SIGKILLs the member whose loss leaves the ring most uneven, and
waits (under the workload) until the maps moving slots back towards balance have
committed and settled; its note says how long that took and how even the ring is.

    .venv/bin/python loadtest/scenarios.py --quick           # every scenario once
    .venv/bin/python loadtest/scenarios.py                    # 3 repeats, medians
    .venv/bin/python loadtest/scenarios.py --only kill-n1 pause --repeats 5

One line per run goes to stderr as it finishes; the table of medians to stdout.
A run whose checker finds lost_set or owners_diff keeps its nodes' logs (path on stderr).
"""
from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import redis  # noqa: E402
from redis.cluster import ClusterNode, RedisCluster  # noqa: E402

from mesh import balance, ring  # noqa: E402
from mesh.keyslot import keyslot  # noqa: E402
from tests import nodes  # noqa: E402
from tests.nodes import NodeFactory, NodeProcess, call, wait_until  # noqa: E402

NODE_TIMEOUT_MS = 1000
FLAGS = ("--node-timeout-ms", str(NODE_TIMEOUT_MS), "--replication-factor", "2")
LISTS = 4
COUNTERS = 4
SETTLE_S = 30.0            # bound on every "wait until the cluster agrees / is in sync"
BEFORE_FAULT_S = 1.5       # workload running before the fault
AFTER_RECOVERY_S = 1.5     # workload running after the cluster recovered
POLL_S = 0.02
# redis-py's socket timeout for the workload and the probe: a write to a paused node
# blocks this long before the client retries elsewhere, so it bounds gap_s and
# failover_s from below in the pause scenario (--client-timeout changes it).
CLIENT_TIMEOUT_S = 1.0


# -- operations log ------------------------------------------------------------------------

@dataclass(slots=True)
class Op:
    kind: str          # "set", "rpush", "incr"
    key: str
    value: str         # token / element / "" for incr
    start_at: float
    end_at: float
    acked: bool
    attempts: int      # times redis-py sent it (it resends after a timeout or a closed connection)


class CountingCluster(RedisCluster):
    """A RedisCluster that counts how many times it sent a command: redis-py resends a command after a
    timeout, a closed connection or CLUSTERDOWN, inside one call, unseen by the caller; a resent write
    may have been applied twice. (Redirects and TRYAGAIN are followed in one attempt: never applied.)"""

    attempts = 0

    def _execute_command(self, target_node, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.attempts += 1
        return super()._execute_command(target_node, *args, **kwargs)


@dataclass
class Worker:
    """One thread with its own RedisCluster: unique SETs, RPUSHes to shared lists, INCRs of shared counters."""
    index: int
    ports: list[int]
    stop: threading.Event
    ops: list[Op] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)

    def run(self) -> None:
        client = connect(self.ports, self.stop)
        n = 0
        while client is not None and not self.stop.is_set():
            kind = ("set", "rpush", "incr")[n % 3]
            token = f"w{self.index}:{n}"
            if kind == "set":
                key, value = f"set:{token}", f"tok:{token}"
            elif kind == "rpush":
                key, value = f"list:{n % LISTS}", f"el:{token}"
            else:
                key, value = f"ctr:{n % COUNTERS}", ""
            start_at = time.monotonic()
            client.attempts = 0
            try:
                if kind == "set":
                    client.set(key, value)
                elif kind == "rpush":
                    client.rpush(key, value)
                else:
                    client.incr(key)
                acked = True
            except (redis.RedisError, OSError) as error:
                self.errors[error_name(error)] += 1
                acked = False
            self.ops.append(Op(kind, key, value, start_at, time.monotonic(), acked, client.attempts))
            if not acked:
                self.stop.wait(0.01)          # a failing cluster is not hammered in a hot loop
            n += 1
        if client is not None:
            client.close()


@dataclass
class Probe:
    """Writes one key at a time (set by target()) whose slot a chosen node leads; logs (key, start, end, acked)."""
    ports: list[int]
    stop: threading.Event
    key: str | None = None
    ops: list[tuple[str, float, float, bool]] = field(default_factory=list)

    def run(self) -> None:
        client = connect(self.ports, self.stop)
        n = 0
        while client is not None and not self.stop.is_set():
            key = self.key
            if key is None:
                self.stop.wait(0.01)
                continue
            start_at = time.monotonic()
            try:
                client.set(key, n)
                acked = True
            except (redis.RedisError, OSError):
                acked = False
            self.ops.append((key, start_at, time.monotonic(), acked))
            if not acked:
                self.stop.wait(0.01)
            n += 1
        if client is not None:
            client.close()

    def failover_s(self, key: str, fault_at: float) -> float | None:
        acked = [end for k, start, end, ok in self.ops if ok and k == key and start >= fault_at]
        return min(acked) - fault_at if acked else None


def error_name(error: BaseException) -> str:
    name = type(error).__name__
    if type(error) is redis.ResponseError and str(error):
        name += ":" + str(error).split()[0]
    return name


def connect(ports: list[int], stop: threading.Event) -> CountingCluster | None:
    """A RedisCluster on any of ports, retried until one answers (None if told to stop first)."""
    while not stop.is_set():
        try:
            return CountingCluster(startup_nodes=[ClusterNode(nodes.HOST, p) for p in ports],
                                socket_timeout=CLIENT_TIMEOUT_S, socket_connect_timeout=1)
        except (redis.RedisError, OSError):
            stop.wait(0.1)
    return None


# -- cluster state ---------------------------------------------------------------------------

def info_replication(node: NodeProcess) -> dict[str, str]:
    return nodes.replication_info(node)


def in_sync(cluster: list[NodeProcess]) -> bool:
    """Every node feeds at least one replica stream (on 2 or 3 nodes: every other node) and all finished copying."""
    for node in cluster:
        info = info_replication(node)
        feeds = int(info["connected_slaves"])
        expected = len(cluster) - 1 if len(cluster) <= 3 else 1
        if feeds < expected:
            return False
        if info["hypercache_replicas_in_sync"] != str(feeds) or info["hypercache_slots_loading"] != "0":
            return False
    return True


def settled(cluster: list[NodeProcess]) -> bool:
    return bool(nodes.agreed(cluster, len(cluster))) and in_sync(cluster)


def owners_of(cluster: list[NodeProcess]) -> dict[int, list[NodeProcess]]:
    """slot -> [primary, replicas...] as CLUSTER SLOTS on the first node tells them."""
    node_at = nodes.by_port(cluster)
    owners: dict[int, list[NodeProcess]] = {}
    for first, last, *members in call(cluster[0], "CLUSTER", "SLOTS"):
        for slot in range(first, last + 1):
            owners[slot] = [node_at[member[1]] for member in members]
    return owners


def led_key(cluster: list[NodeProcess], leader: NodeProcess, prefix: str) -> str:
    owners = owners_of(cluster)
    for i in range(100000):
        key = f"{prefix}:{i}"
        if owners[keyslot(key.encode())][0] is leader:
            return key
    raise RuntimeError(f"no key led by {leader.name}")


def leading(node: NodeProcess) -> set[str]:
    """Ids of the members holding slots in node's CLUSTER NODES (fields past the 8th are slot ranges)."""
    return {line[0] for line in nodes.nodes_lines(node) if len(line) > 8}


class Detector(threading.Thread):
    """Polls each watched node until shows(node) holds; remembers when each first did."""

    def __init__(self, watched: list[NodeProcess], shows: Callable[[NodeProcess], bool]) -> None:
        super().__init__(daemon=True)
        self.watched, self.shows = watched, shows
        self.seen_at: dict[int, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set() and len(self.seen_at) < len(self.watched):
            for node in self.watched:
                if node.port in self.seen_at:
                    continue
                try:
                    if self.shows(node):
                        self.seen_at[node.port] = time.monotonic()
                except Exception:  # noqa: BLE001 - a node not answering has not seen it yet
                    pass
            self.done.wait(POLL_S)

    def finish(self, fault_at: float) -> float | None:
        self.done.set()
        self.join(10)
        if len(self.seen_at) < len(self.watched):
            return None
        return max(self.seen_at.values()) - fault_at


def without(victim_id: str, size: int) -> Callable[[NodeProcess], bool]:
    def shows(node: NodeProcess) -> bool:
        return nodes.cluster_info(node)["cluster_size"] == str(size) and victim_id not in leading(node)
    return shows


def with_leader(node_id: str, size: int) -> Callable[[NodeProcess], bool]:
    def shows(node: NodeProcess) -> bool:
        return nodes.cluster_info(node)["cluster_size"] == str(size) and node_id in leading(node)
    return shows


def myid(node: NodeProcess) -> str:
    return call(node, "CLUSTER", "MYID").decode()


# -- one run ----------------------------------------------------------------------------------

@dataclass
class Run:
    """One scenario on one fresh cluster: the factory, the live nodes, the workload, the figures."""
    name: str
    factory: NodeFactory
    cluster: list[NodeProcess]
    threads: int
    stop: threading.Event = field(default_factory=threading.Event)
    workers: list[Worker] = field(default_factory=list)
    probe: Probe | None = None
    pool: list[threading.Thread] = field(default_factory=list)
    figures: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def start_workload(self) -> None:
        ports = [n.port for n in self.cluster]
        self.workers = [Worker(i, ports, self.stop) for i in range(self.threads)]
        self.probe = Probe(ports, self.stop)
        self.pool = [threading.Thread(target=w.run, daemon=True) for w in self.workers]
        self.pool.append(threading.Thread(target=self.probe.run, daemon=True))
        for thread in self.pool:
            thread.start()

    def stop_workload(self) -> None:
        self.stop.set()
        for thread in self.pool:
            thread.join(15)
        stuck = sum(thread.is_alive() for thread in self.pool)
        if stuck:
            self.notes.append(f"{stuck} workload threads still running after 15s")

    def settle(self, what: str) -> float | None:
        """Wait until the live cluster agrees and is in sync; the instant it did (None on timeout)."""
        try:
            wait_until(lambda: settled(self.cluster), timeout=SETTLE_S, interval=POLL_S)
            return time.monotonic()
        except nodes.WaitTimeout as error:
            self.notes.append(f"{what}: {error}")
            return None

    def rejoin_target(self, node: NodeProcess) -> None:
        """A restarted node joins a live peer (node 0 was started without --join)."""
        peer = next(n for n in self.cluster if n is not node and n.alive)
        node.join = [peer.mesh_address]


# -- scenarios ----------------------------------------------------------------------------------
# Each returns after the fault has played out and the cluster settled (or timed out);
# it sets run.figures detect_s, failover_s, recover_s as they apply.

def remove_fault(run: Run, victim: NodeProcess, fault: Callable[[], None], restart: bool = False) -> None:
    """A fault taking victim out of the map: detection by the others, failover on its slots."""
    assert run.probe is not None
    victim_id = myid(victim)
    key = led_key(run.cluster, victim, f"probe-{victim.name}")
    run.probe.key = key
    wait_until(lambda: any(k == key and ok for k, _, _, ok in run.probe.ops), timeout=10)
    survivors = [n for n in run.cluster if n is not victim]
    detector = Detector(survivors, without(victim_id, len(survivors)))
    fault_at = time.monotonic()
    fault()
    detector.start()
    if restart:
        run.rejoin_target(victim)
        restarted = run.factory.restart(victim)
        run.cluster[run.cluster.index(victim)] = restarted
    else:
        run.cluster = survivors
    settled_at = run.settle(run.name)
    await_failover(run.probe, key, fault_at)
    run.figures["detect_s"] = detector.finish(fault_at)
    run.figures["failover_s"] = run.probe.failover_s(key, fault_at)
    run.figures["recover_s"] = settled_at - fault_at if settled_at else None


def await_failover(probe: Probe, key: str, fault_at: float, timeout_s: float = 10.0) -> None:
    """Give the probe a bounded moment to land its first write after the fault (no error if it never does)."""
    try:
        wait_until(lambda: probe.failover_s(key, fault_at) is not None, timeout=timeout_s, interval=POLL_S)
    except nodes.WaitTimeout:
        pass


def scenario_kill(index: int) -> Callable[[Run, int], None]:
    def kill(run: Run, repeat: int) -> None:
        victim = run.cluster[index]
        remove_fault(run, victim, victim.kill)
    return kill


def scenario_kill_restart(run: Run, repeat: int) -> None:
    victim = run.cluster[(repeat + 1) % 3]
    remove_fault(run, victim, victim.kill, restart=True)


def scenario_leave(run: Run, repeat: int) -> None:
    victim = run.cluster[(repeat + 1) % 3]

    def leave() -> None:
        code = victim.stop()
        if code != 0:
            run.notes.append(f"{victim.name} exited {code} on SIGTERM")
    remove_fault(run, victim, leave)


def scenario_pause(run: Run, repeat: int) -> None:
    """SIGSTOP for 2x the node timeout, then SIGCONT: the node is dropped, then must come back."""
    assert run.probe is not None
    victim = run.cluster[(repeat + 1) % 3]
    victim_id = myid(victim)
    key = led_key(run.cluster, victim, f"probe-{victim.name}")
    run.probe.key = key
    wait_until(lambda: any(k == key and ok for k, _, _, ok in run.probe.ops), timeout=10)
    survivors = [n for n in run.cluster if n is not victim]
    detector = Detector(survivors, without(victim_id, len(survivors)))
    fault_at = time.monotonic()
    victim.pause()
    detector.start()
    try:
        time.sleep(2 * NODE_TIMEOUT_MS / 1000)
    finally:
        victim.resume()
    resumed_at = time.monotonic()
    settled_at = run.settle(run.name)
    await_failover(run.probe, key, fault_at)
    run.figures["detect_s"] = detector.finish(fault_at)
    run.figures["failover_s"] = run.probe.failover_s(key, fault_at)
    run.figures["recover_s"] = settled_at - fault_at if settled_at else None
    if run.figures["detect_s"] is None:
        run.notes.append("the survivors never dropped the paused node before it resumed")
    elif run.figures["detect_s"] > resumed_at - fault_at:
        run.notes.append("detected only after SIGCONT")


def scenario_join(run: Run, repeat: int) -> None:
    fault_at = time.monotonic()
    fourth = run.factory.start(*FLAGS, join=run.cluster[0], name="node3")
    run.cluster.append(fourth)
    detector = Detector(run.cluster, with_leader(myid(fourth), 4))
    detector.start()
    settled_at = run.settle(run.name)
    run.figures["detect_s"] = detector.finish(fault_at)
    run.figures["failover_s"] = None
    run.figures["recover_s"] = settled_at - fault_at if settled_at else None


def scenario_rolling(run: Run, repeat: int) -> None:
    """SIGTERM and restart each node in turn, settling between steps."""
    assert run.probe is not None
    detects: list[float | None] = []
    failovers: list[float | None] = []
    first_at = time.monotonic()
    settled_at: float | None = None
    for index in range(3):
        victim = run.cluster[index]
        victim_id = myid(victim)
        key = led_key(run.cluster, victim, f"probe-{victim.name}-{index}")
        run.probe.key = key
        wait_until(lambda: any(k == key and ok for k, _, _, ok in run.probe.ops), timeout=10)
        survivors = [n for n in run.cluster if n is not victim]
        detector = Detector(survivors, without(victim_id, 2))
        fault_at = time.monotonic()
        detector.start()
        code = victim.stop()
        if code != 0:
            run.notes.append(f"{victim.name} exited {code} on SIGTERM")
        try:
            wait_until(lambda: nodes.agreed(survivors, 2), timeout=SETTLE_S, interval=POLL_S)
        except nodes.WaitTimeout as error:
            run.notes.append(f"step {index}: survivors never agreed on 2: {error}")
        detects.append(detector.finish(fault_at))
        await_failover(run.probe, key, fault_at)
        failovers.append(run.probe.failover_s(key, fault_at))
        run.rejoin_target(victim)
        run.cluster[index] = run.factory.restart(victim)
        settled_at = run.settle(f"step {index}")
        if settled_at is None:
            break
    run.figures["detect_s"] = None if None in detects or not detects else max(detects)     # type: ignore[type-var]
    run.figures["failover_s"] = None if None in failovers or not failovers else max(failovers)  # type: ignore[type-var]
    run.figures["recover_s"] = settled_at - first_at if settled_at else None


def ring_of(node: NodeProcess) -> tuple[ring.Tokens, dict[str, NodeProcess]]:
    """The ring as CLUSTER SLOTS shows it (a token ends each run of one primary), and node by id."""
    positions: dict[int, str] = {}
    ports: dict[str, int] = {}
    for first, last, primary, *_ in call(node, "CLUSTER", "SLOTS"):
        positions[last] = primary[2].decode()
        ports[primary[2].decode()] = primary[1]
    return ring.normalize(positions), ports


def scenario_rebalance(run: Run, repeat: int) -> None:
    """A 4th node joins; then the member whose loss leaves the ring most uneven is SIGKILLed.
    Its arcs pass to their replicas, and maps moving slots back towards balance follow under
    the workload (mesh/balance.py; the demoted owners keep fallback copies meanwhile)."""
    run.cluster.append(run.factory.start(*FLAGS, join=run.cluster[0], name="node3"))
    if run.settle("the 4th node's join") is None:
        return
    tokens, ports = ring_of(run.cluster[0])
    worst = max(sorted(ports), key=lambda node_id: max(ring.primary_counts(ring.leave(tokens, node_id)).values()))
    victim = nodes.by_port(run.cluster)[ports[worst]]
    remove_fault(run, victim, victim.kill)
    after_death = time.monotonic()

    def even() -> bool:
        return settled(run.cluster) and not balance.busiest(ring_of(run.cluster[0])[0], 2)[2]
    try:
        wait_until(even, timeout=SETTLE_S, interval=POLL_S)
        primary, replica, _ = balance.busiest(ring_of(run.cluster[0])[0], 2)
        run.notes.append(f"even again {time.monotonic() - after_death:.1f} s after the death's map settled "
                         f"(busiest: primary {primary:.2f}x, replica {replica:.2f}x of its share)")
    except nodes.WaitTimeout as error:
        run.notes.append(f"never even again: {error}")


SCENARIOS: dict[str, Callable[[Run, int], None]] = {
    "kill-n0": scenario_kill(0),
    "kill-n1": scenario_kill(1),
    "kill-n2": scenario_kill(2),
    "kill-restart": scenario_kill_restart,
    "pause": scenario_pause,
    "join": scenario_join,
    "leave": scenario_leave,
    "rolling": scenario_rolling,
    "rebalance": scenario_rebalance,
}


# -- the checker ----------------------------------------------------------------------------------

def read_all(client: redis.Redis | RedisCluster, commands: list[tuple[str, str]], chunk: int = 500) -> list:
    """(command, key) pairs, pipelined in chunks; the replies in order."""
    replies: list = []
    for i in range(0, len(commands), chunk):
        pipe = client.pipeline(transaction=False)
        for command, key in commands[i:i + chunk]:
            if command == "LRANGE":
                pipe.lrange(key, 0, -1)
            else:
                pipe.get(key)
        replies += pipe.execute()
    return replies


def _wall(monotonic_at: float) -> str:
    """A monotonic instant as the wall-clock time the node logs use, to the millisecond."""
    at = monotonic_at + time.time() - time.monotonic()
    return time.strftime("%H:%M:%S", time.localtime(at)) + f",{int(at % 1 * 1000):03d}"


def check(run: Run) -> dict[str, int]:
    ops = [op for worker in run.workers for op in worker.ops]
    set_ops = [op for op in ops if op.kind == "set"]
    lists = sorted({op.key for op in ops if op.kind == "rpush"})
    counters = sorted({op.key for op in ops if op.kind == "incr"})
    commands = [("GET", op.key) for op in set_ops] + [("LRANGE", k) for k in lists] + [("GET", k) for k in counters]

    rc = RedisCluster(startup_nodes=[ClusterNode(nodes.HOST, n.port) for n in run.cluster], socket_timeout=10)
    try:
        replies = read_all(rc, commands)
    finally:
        rc.close()
    seen = dict(zip(commands, replies))

    result = Counter({name: 0 for name in ("lost_set", "miss_elem", "lost_incr", "excess_incr", "dup_elem",
                                           "fail_present", "owners_diff", "unexplained")})
    for op in set_ops:
        present = seen[("GET", op.key)] == op.value.encode()
        if op.acked and not present:
            result["lost_set"] += 1
            if len(run.notes) < 20:
                # (slot and wall-clock time: what finding it in the node logs needs)
                run.notes.append(f"lost SET {op.key} (slot {keyslot(op.key.encode())}) acked at "
                                 f"{_wall(op.end_at)} after {op.attempts} send(s): read {seen[('GET', op.key)]!r}")
        elif not op.acked and present:
            result["fail_present"] += 1
    for key in lists:
        elements = Counter(seen[("LRANGE", key)] or [])
        for op in ops:
            if op.kind == "rpush" and op.key == key:
                count = elements.get(op.value.encode(), 0)
                if op.acked and not count:
                    result["miss_elem"] += 1
                    if len(run.notes) < 20:
                        run.notes.append(f"missing {op.value} of {key} (slot {keyslot(key.encode())}) acked at "
                                         f"{_wall(op.end_at)} after {op.attempts} send(s); the list holds "
                                         f"{sum(elements.values())}")
                elif not op.acked and count:
                    result["fail_present"] += 1
                if count > 1:
                    result["dup_elem"] += count - 1
                    if not maybe_retried(op) and len(run.notes) < 20:
                        result["unexplained"] += count - 1
                        run.notes.append(f"{op.value} is {count} times in {key} though its RPUSH was "
                                         f"acknowledged on its first send")
    for key in counters:
        incrs = [op for op in ops if op.kind == "incr" and op.key == key]
        acked = sum(1 for op in incrs if op.acked)
        retried = sum(1 for op in incrs if maybe_retried(op))
        value = int(seen[("GET", key)] or 0)
        result["lost_incr"] += max(0, acked - value)
        if acked > value and len(run.notes) < 20:
            last = max((op.end_at for op in incrs if op.acked), default=0.0)
            run.notes.append(f"{key} (slot {keyslot(key.encode())}) = {value}: {acked} INCRs acknowledged, "
                             f"the last at {_wall(last)}")
        result["excess_incr"] += max(0, value - acked)
        if value - acked > retried:
            result["unexplained"] += value - acked - retried
            run.notes.append(f"{key} = {value}: {acked} INCRs acknowledged, only {retried} failed or "
                             f"sent more than once by redis-py")

    # every owner against its primary, READONLY, key by key
    for attempt in range(3):
        owners = owners_of(run.cluster)
        try:
            copies = read_copies(run, owners, commands)
            break
        except redis.exceptions.MovedError as error:
            # (the map changed between reading the owners and reading the copies:
            # read the owners again rather than call the run failed)
            if attempt == 2:
                raise
            run.notes.append(f"the map changed during the owners check (MOVED {error}): read again")
    for command, key in commands:
        members = owners[keyslot(key.encode())]
        primary = copies[(members[0].port, key)]
        for replica in members[1:]:
            if copies[(replica.port, key)] != primary:
                result["owners_diff"] += 1
                if len(run.notes) < 20:
                    run.notes.append(f"owner {replica.name} differs on {key} (slot {keyslot(key.encode())}): "
                                     f"{_short(copies[(replica.port, key)])} vs primary {members[0].name} "
                                     f"{_short(primary)}")
                break
    result["sets_acked"] = sum(1 for op in set_ops if op.acked)
    return dict(result)


def read_copies(run: Run, owners, commands) -> dict[tuple[int, str], object]:
    """(node port, key) -> the reply of each owner of the key, READONLY."""
    by_owner: dict[int, list[tuple[str, str]]] = {}
    for command, key in commands:
        for node in owners[keyslot(key.encode())]:
            by_owner.setdefault(node.port, []).append((command, key))
    copies: dict[tuple[int, str], object] = {}
    for node in run.cluster:
        wanted = by_owner.get(node.port, [])
        client = node.client()
        try:
            client.execute_command("READONLY")
            for (command, key), reply in zip(wanted, read_all(client, wanted)):
                copies[(node.port, key)] = reply
        finally:
            client.close()
    return copies


def maybe_retried(op: Op) -> bool:
    """Whether op may have been applied more than once: it failed (and may have applied anyway), or
    redis-py sent it more than once (see CountingCluster)."""
    return not op.acked or op.attempts > 1


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def longest_gap(ops: list[Op]) -> float:
    ends = sorted(op.end_at for op in ops if op.acked)
    return max((b - a for a, b in zip(ends, ends[1:])), default=float("nan"))


# -- driver ---------------------------------------------------------------------------------------

COLUMNS = ["detect_s", "failover_s", "gap_s", "recover_s", "acked", "failed", "resent",
           "lost_set", "miss_elem", "lost_incr", "excess_incr", "dup_elem", "unexplained", "fail_present", "owners_diff"]


def _keep_logs(base: Path, keep: Path) -> str:
    """Copy the node logs of a run (they live under its nodes/ folder) before it is removed."""
    keep.mkdir(parents=True, exist_ok=True)
    for log in base.rglob("*.log"):
        shutil.copy(log, keep / log.name)
    return f"node logs kept in {keep}"


def run_once(name: str, repeat: int, threads: int, keep_logs: Path) -> tuple[dict, Counter, list[str]]:
    base = Path(tempfile.mkdtemp(prefix=f"hc-scenario-{name}-"))
    factory = NodeFactory(base, python=sys.executable)
    row: dict = {}
    errors: Counter = Counter()
    run: Run | None = None
    try:
        cluster = factory.start_cluster(3, *FLAGS)
        run = Run(name, factory, cluster, threads)
        if run.settle("initial") is None:
            raise RuntimeError("the fresh cluster never settled: " + "; ".join(run.notes))
        run.start_workload()
        time.sleep(BEFORE_FAULT_S)
        try:
            SCENARIOS[name](run, repeat)
            time.sleep(AFTER_RECOVERY_S)
        finally:
            run.stop_workload()
        if run.settle("before checking") is None:
            run.notes.append("checking a cluster that did not settle")
        row.update(run.figures)
        row.update(check(run))
        ops = [op for worker in run.workers for op in worker.ops]
        row["gap_s"] = longest_gap(ops)
        row["acked"] = sum(op.acked for op in ops)
        row["failed"] = sum(not op.acked for op in ops)
        row["resent"] = sum(op.acked and op.attempts > 1 for op in ops)
        for worker in run.workers:
            errors.update(worker.errors)
        if any(row.get(c) for c in ("lost_set", "owners_diff", "miss_elem", "lost_incr", "unexplained")):
            run.notes.append(_keep_logs(base, keep_logs / f"{name}-{repeat}"))
    except Exception as error:  # noqa: BLE001 - one broken run must not stop the others
        notes = run.notes if run else []
        notes.append(f"run failed: {error!r}"[:2000])
        notes.append(_keep_logs(base, keep_logs / f"{name}-{repeat}"))
        return row, errors, notes
    finally:
        factory.stop_all()
        shutil.rmtree(base, ignore_errors=True)
    return row, errors, run.notes


def fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.2f}"
    return str(value)


def median(values: list) -> object:
    """The median of the values present (None: not measured; nan: nothing acknowledged)."""
    present = [v for v in values if v is not None and v == v]
    return statistics.median(present) if present else None


def main() -> None:
    global CLIENT_TIMEOUT_S, NODE_TIMEOUT_MS, FLAGS
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run of each scenario")
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--client-timeout", type=float, default=CLIENT_TIMEOUT_S,
                        help="redis-py socket timeout of the workload clients, seconds")
    parser.add_argument("--node-timeout-ms", type=int, default=NODE_TIMEOUT_MS,
                        help="the nodes' failure detection timeout (the node's own default is 3000)")
    args = parser.parse_args()
    CLIENT_TIMEOUT_S = args.client_timeout
    NODE_TIMEOUT_MS = args.node_timeout_ms
    FLAGS = ("--node-timeout-ms", str(NODE_TIMEOUT_MS), "--replication-factor", "2")
    repeats = 1 if args.quick else args.repeats
    keep_logs = Path(tempfile.gettempdir()) / f"hc-scenario-logs-{int(time.time())}"

    rows: dict[str, list[dict]] = {name: [] for name in args.only}
    errors: dict[str, Counter] = {name: Counter() for name in args.only}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))     # finally blocks stop the nodes
    for repeat in range(repeats):
        for name in args.only:
            started_at = time.monotonic()
            row, errs, notes = run_once(name, repeat, args.threads, keep_logs)
            rows[name].append(row)
            errors[name].update(errs)
            took = time.monotonic() - started_at
            figures = " ".join(f"{c}={fmt(row.get(c))}" for c in COLUMNS if c in row)
            print(f"[{name} #{repeat + 1}] {took:.0f}s {figures} errors={dict(errs)}", file=sys.stderr, flush=True)
            for note in notes:
                print(f"    {note}", file=sys.stderr, flush=True)

    header = ["scenario", "runs"] + COLUMNS
    table = [header]
    for name in args.only:
        done = [r for r in rows[name] if r]
        table.append([name, str(len(done))] + [fmt(median([r.get(c, 0 if c not in (
            "detect_s", "failover_s", "recover_s", "gap_s") else None) for r in done])) for c in COLUMNS])
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print(f"medians of {repeats} run(s) per scenario; 3 nodes, rf 2, --node-timeout-ms {NODE_TIMEOUT_MS}, "
          f"{args.threads} workload threads, client timeout {CLIENT_TIMEOUT_S:g}s")
    for line in table:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths)))
    print("client errors (all runs):")
    for name in args.only:
        print(f"  {name}: " + (", ".join(f"{k}={v}" for k, v in errors[name].most_common()) or "none"))


if __name__ == "__main__":
    main()
