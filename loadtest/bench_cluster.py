#!/usr/bin/env python3
"""Measure a 3-node hypercache cluster against a real 3-master Redis Cluster, in one run.

Three numbers, each printed as a table:

1. Throughput: `redis-benchmark --cluster -t set,get -c 50` against 3 hypercache
   nodes (`--replication-factor 1`, so no replication traffic: the same work as
   3 Redis masters without replicas) in each of its forms (--forms: "python", the
   sources, and "mypyc", the hot modules compiled; hypercache/compiled.py) and
   against a 3-master Redis Cluster, all on loopback. Runs alternate between the
   clusters (the order flips every repeat) so that drift of the machine hits all
   alike; medians and each form's ratio to redis-cluster are reported. The other
   parts run the form the environment selects (HYPERCACHE_PURE=1: python).
2. Idle CPU: utime+stime from /proc/<pid>/stat over a window, per node of an
   idle 3-node cluster and of a lone node (the lone node runs the same timers
   with no peer: the difference is what the peers' traffic costs), in % of one core.
3. Failure detection: SIGKILL one node of a 3-node cluster and time until every
   survivor's CLUSTER NODES shows it `fail`, and until the survivors agree on a
   2-member map (the next epoch); the median of several kills. The victim is
   restarted (same data dir, so same id) between kills.
4. Replication: the same redis-benchmark at -P 1 and -P 16 against five
   clusters on loopback, each on cpu 0: hypercache `--replication-factor 1`,
   rf 2 `--replication-mode sync`, rf 2 async, a Redis Cluster of 3 masters
   with 1 replica each (6 redis-servers) and the 3-master Redis Cluster of part 1.
   One cluster runs at a time (started, waited for, measured at both -P, stopped),
   so the idle ones cost the measured one nothing; the order of the five flips
   every repeat. Hypercache is measured only once every node shows
   `connected_slaves:2`, `hypercache_replicas_in_sync:2` and
   `hypercache_slots_loading:0`; the Redis Cluster once every replica shows
   `master_link_status:up`. SET and GET run separately, each with -n sized to
   last about 3 s (redis-benchmark --cluster rounds a run's length up to a
   multiple of 250 ms: see QUANTUM_S); server CPU per request is printed too. Ratios: rf2 sync and async against the Redis Cluster with
   replicas, and rf2 sync against rf1 (what waiting for the replica costs).
   Redis's replication is asynchronous: rf2 async is its like, rf2 sync does more.

CPU placement: the machine has 2 cores. Every server (the 3 hypercache nodes,
or the 3 redis-servers) is pinned to cpu 0 and redis-benchmark to cpu 1, so
each cluster gets exactly one core: the comparison is per core, not "how well
does it spread", and the client never competes with the servers. Without
taskset (or with one cpu) nothing is pinned and the tables say so.

    python3 loadtest/bench_cluster.py            # N=200000, 3 repeats, 10 s idle window, 5 kills,
                                                 # replication: 3 s runs, 5 repeats (~8 min)
    python3 loadtest/bench_cluster.py --quick    # N=30000, 1 repeat, 5 s idle window, 3 kills,
                                                 # replication: 2 s runs, 1 repeat (~1.5 min)
    python3 loadtest/bench_cluster.py --replication [--quick]   # only part 4
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
BUS_OFFSET = 10000          # hypercache's mesh port and Redis Cluster's bus port are both P+10000
DATA_OFFSET = 20000         # hypercache's data (replication) port, bound whatever the replication factor
SERVER_CPU = "0"
CLIENT_CPU = "1"
TESTS = "set,get"
CLK_TCK = os.sysconf("SC_CLK_TCK")

T = TypeVar("T")


# -- plumbing --------------------------------------------------------------------------

def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll predicate until it returns something truthy; exceptions count as "not yet"."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - not ready yet
            last = error
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last!r})")
        time.sleep(interval)


def free_port() -> int:
    """A free port P whose bus port P+10000 and data port P+20000 are free too, all below the ephemeral range.

    Every port handed out is remembered with its two companions, so that no
    later P (or P+10000, P+20000) lands on one a server has not bound yet.
    """
    import random
    rng = random.SystemRandom()
    for _ in range(2000):
        port = rng.randint(2000, 32767 - DATA_OFFSET)
        candidates = (port, port + BUS_OFFSET, port + DATA_OFFSET)
        if any(c in _issued for c in candidates):
            continue
        ok = True
        for candidate in candidates:
            with socket.socket() as s:
                try:
                    s.bind((HOST, candidate))
                except OSError:
                    ok = False
                    break
        if ok:
            _issued.update(candidates)
            return port
    raise RuntimeError("no free port")


_issued: set[int] = set()


def pinning_available() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pinned(cpu: str, args: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *args] if pinning_available() else args


class Connection:
    """One persistent RESP connection: commands encoded by hand, replies read with hiredis."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        import hiredis
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = hiredis.Reader()

    def call(self, *args: str):
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))
        while (reply := self.reader.gets()) is False:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            self.reader.feed(chunk)
        return reply

    def close(self) -> None:
        self.sock.close()


def call(port: int, *args: str):
    conn = Connection(port)
    try:
        return conn.call(*args)
    finally:
        conn.close()


def cluster_info(port: int) -> dict[str, str]:
    text = call(port, "CLUSTER", "INFO").decode()
    return dict(line.split(":", 1) for line in text.strip().splitlines())


def agreed(ports: list[int], members: int) -> bool:
    """Every node reports cluster_state:ok, `members` masters with slots, and one epoch."""
    infos = [cluster_info(p) for p in ports]
    return (all(i["cluster_state"] == "ok" and i["cluster_size"] == str(members) for i in infos)
            and len({i["cluster_current_epoch"] for i in infos}) == 1)


def myself_id(port: int) -> str:
    for line in call(port, "CLUSTER", "NODES").decode().splitlines():
        fields = line.split(" ")
        if "myself" in fields[2].split(","):
            return fields[0]
    raise RuntimeError("no myself line")


@dataclass
class Server:
    """One server process (hypercache node or redis-server) and how to start it again."""

    name: str
    port: int
    args: list[str]
    log: Path
    proc: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)    # on top of this process's environment

    def start(self) -> None:
        if self not in STARTED:
            STARTED.append(self)
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), **self.env)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text(errors='replace')[-3000:]}")
            return call(self.port, "PING") == b"PONG"
        wait_until(ready, timeout, f"{self.name} to answer PING")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


STARTED: list[Server] = []     # every server ever started, stopped at the end whatever failed


# -- the two clusters ------------------------------------------------------------------------

def hypercache_args(port: int, data_dir: Path, join: list[int], extra: list[str]) -> list[str]:
    args = [sys.executable, "-m", "hypercache", "--host", HOST, "--port", str(port),
            "--mesh-port", str(port + BUS_OFFSET), "--http-port", "0", "--data-dir", str(data_dir),
            "--log-level", "WARNING", *extra]
    for peer in join:
        args += ["--join", f"{HOST}:{peer + BUS_OFFSET}"]
    return pinned(SERVER_CPU, args)


def start_hypercache(workdir: Path, count: int, extra: list[str], form: str | None = None) -> list[Server]:
    """`count` nodes of one cluster; of `form` ("python" or "mypyc"; None: as the environment selects)."""
    env = {} if form is None else {"HYPERCACHE_PURE": "1" if form == "python" else "0"}
    servers: list[Server] = []
    first_port: int | None = None
    for index in range(count):
        port = free_port()
        data_dir = workdir / f"hc-{port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        join = [] if first_port is None else [first_port]
        server = Server(f"hypercache-{index}", port, hypercache_args(port, data_dir, join, extra),
                        workdir / f"hc-{port}.log", env=env)
        server.start()
        server.wait_ready()
        compiled = info(port, "server").get("hypercache_compiled") == "1"
        if form is not None and compiled != (form == "mypyc"):
            raise RuntimeError(f"asked for a {form} node, it runs {'mypyc' if compiled else 'python'}: "
                               "`make compiled` builds the compiled form")
        servers.append(server)
        first_port = first_port or port
    ports = [s.port for s in servers]
    wait_until(lambda: agreed(ports, count), 60, f"{count} hypercache nodes to agree")
    return servers


def start_redis_cluster(workdir: Path, count: int, replicas: int = 0) -> list[Server]:
    """`count` redis-servers made one cluster by redis-cli; with `replicas`, count / (1 + replicas) masters.

    Returns once every node shows cluster_state:ok and knows all `count` nodes,
    and every replica's link to its master is up (its initial sync is done).
    """
    servers: list[Server] = []
    for index in range(count):
        port = free_port()
        node_dir = workdir / f"redis-{port}"
        node_dir.mkdir(parents=True, exist_ok=True)
        args = pinned(SERVER_CPU, ["redis-server", "--port", str(port), "--bind", HOST,
                                   "--cluster-enabled", "yes",
                                   "--cluster-config-file", str(node_dir / f"nodes-{port}.conf"),
                                   "--save", "", "--appendonly", "no", "--dir", str(node_dir)])
        server = Server(f"redis-{index}", port, args, workdir / f"redis-{port}.log")
        server.start()
        server.wait_ready()
        servers.append(server)
    create = subprocess.run(["redis-cli", "--cluster", "create", *[f"{HOST}:{s.port}" for s in servers],
                             "--cluster-replicas", str(replicas), "--cluster-yes"],
                            capture_output=True, text=True, timeout=60)
    if create.returncode != 0:
        raise RuntimeError(f"redis-cli --cluster create failed:\n{create.stdout}\n{create.stderr}")
    ports = [s.port for s in servers]
    wait_until(lambda: all(cluster_info(p)["cluster_state"] == "ok"
                           and cluster_info(p)["cluster_known_nodes"] == str(count) for p in ports), 60,
               f"the Redis Cluster to reach cluster_state:ok with {count} known nodes")
    if replicas:
        def linked() -> bool:
            infos = [info(p, "replication") for p in ports]
            slaves = [i for i in infos if i["role"] == "slave"]
            return (len(slaves) == count - count // (1 + replicas)
                    and all(i["master_link_status"] == "up" for i in slaves))
        wait_until(linked, 60, "every Redis replica's master_link_status:up")
    return servers


def info(port: int, section: str) -> dict[str, str]:
    """One INFO section as a dict (comment lines dropped)."""
    text = call(port, "INFO", section).decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def replicas_synced(ports: list[int], replicas: int) -> bool:
    """Every hypercache node feeds `replicas` replica streams, all in sync, and loads no slot."""
    for port in ports:
        i = info(port, "replication")
        if not (i["connected_slaves"] == str(replicas) and i["hypercache_replicas_in_sync"] == str(replicas)
                and i["hypercache_slots_loading"] == "0"):
            return False
    return True


def a_master(servers: list[Server]) -> Server:
    """A server whose INFO says role:master (the one redis-benchmark is pointed at)."""
    return next(s for s in servers if info(s.port, "replication")["role"] == "master")


# -- 1. throughput ---------------------------------------------------------------------------

def benchmark(port: int, requests: int, clients: int, pipeline: int = 1, tests: str = TESTS) -> dict[str, float]:
    """One redis-benchmark --cluster run; requests/s per test.

    An error reply (redis-benchmark prints "Error from server: ..." and goes on
    counting) fails the run, as a non-zero exit does: its rate would not be one
    of served requests.
    """
    done = subprocess.run(pinned(CLIENT_CPU, ["redis-benchmark", "--cluster", "-h", HOST, "-p", str(port),
                                              "-t", tests, "-c", str(clients), "-n", str(requests),
                                              "-P", str(pipeline), "-q", "--csv"]),
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or "error" in (done.stdout + done.stderr).lower():
        raise RuntimeError(f"redis-benchmark failed on {port} (exit {done.returncode}):\n"
                           f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    # --cluster prints "Cluster has N master nodes" lines before the CSV header.
    text = done.stdout[done.stdout.index('"test"'):]
    return {row["test"]: float(row["rps"]) for row in csv.DictReader(io.StringIO(text))}


@dataclass
class Throughput:
    runs: dict[str, dict[str, list[float]]] = field(default_factory=dict)   # test -> system -> rps per run

    def add(self, system: str, result: dict[str, float]) -> None:
        for test, rps in result.items():
            self.runs.setdefault(test, {}).setdefault(system, []).append(rps)


def measure_throughput(systems: list[tuple[str, int]], repeats: int, requests: int, clients: int) -> Throughput:
    """Each (name, port) of `systems` in turn, the order flipped every repeat."""
    results = Throughput()
    for repeat in range(repeats):
        for system, port in (systems if repeat % 2 == 0 else systems[::-1]):
            result = benchmark(port, requests, clients)
            results.add(system, result)
            print(f"  run {repeat + 1}/{repeats} {system:13s} "
                  + "  ".join(f"{t}={v:,.0f}" for t, v in result.items()), flush=True)
    return results


# -- 2. idle CPU -----------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()     # after "pid (comm) ": field 3 is fields[0]
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def idle_cpu(servers: list[Server], window_s: float) -> list[float]:
    """% of one core each server used over window_s while nobody sends it a command."""
    before = [cpu_seconds(s.pid) for s in servers]
    started = time.monotonic()
    time.sleep(window_s)          # measuring a window, not waiting for a condition
    elapsed = time.monotonic() - started
    return [100 * (cpu_seconds(s.pid) - b) / elapsed for s, b in zip(servers, before)]


# -- 3. failure detection ----------------------------------------------------------------------

@dataclass
class Detection:
    fail_s: float        # until every survivor's CLUSTER NODES flags the victim `fail`
    epoch_s: float       # until every survivor agrees on a 2-member map


def time_detection(servers: list[Server], victim: Server, timeout_s: float) -> Detection:
    survivors = [s for s in servers if s is not victim]
    victim_id = myself_id(victim.port)
    conns = {s.port: Connection(s.port) for s in survivors}
    failed_at: dict[int, float] = {}
    agreed_at: float | None = None
    try:
        victim.kill()
        killed_at = time.monotonic()
        while len(failed_at) < len(survivors) or agreed_at is None:
            now = time.monotonic()
            if now - killed_at > timeout_s:
                raise TimeoutError(f"victim not marked fail everywhere within {timeout_s}s")
            for port, conn in conns.items():
                if port in failed_at:
                    continue
                for line in conn.call("CLUSTER", "NODES").decode().splitlines():
                    fields = line.split(" ")
                    if fields[0] == victim_id and "fail" in fields[2].split(","):
                        failed_at[port] = time.monotonic()
            if agreed_at is None:
                infos = [dict(line.split(":", 1) for line in conn.call("CLUSTER", "INFO").decode().split())
                         for conn in conns.values()]
                if (all(i["cluster_state"] == "ok" and i["cluster_size"] == "2" for i in infos)
                        and len({i["cluster_current_epoch"] for i in infos}) == 1):
                    agreed_at = time.monotonic()
            time.sleep(0.01)      # the poll period: 10 ms resolution
        return Detection(max(failed_at.values()) - killed_at, agreed_at - killed_at)
    finally:
        for conn in conns.values():
            conn.close()


def measure_detection(servers: list[Server], kills: int, timeout_s: float, extra: list[str]) -> list[Detection]:
    results: list[Detection] = []
    for run in range(kills):
        victim = servers[run % len(servers)]
        detection = time_detection(servers, victim, timeout_s)
        results.append(detection)
        print(f"  kill {run + 1}/{kills} {victim.name}: fail everywhere after {detection.fail_s:.2f} s, "
              f"new epoch after {detection.epoch_s:.2f} s", flush=True)
        # Back with the same data dir (same id), joining through a survivor.
        survivor = next(s for s in servers if s is not victim)
        data_dir = Path(victim.args[victim.args.index("--data-dir") + 1])
        victim.args = hypercache_args(victim.port, data_dir, [survivor.port], extra)
        victim.start()
        victim.wait_ready()
        ports = [s.port for s in servers]
        wait_until(lambda: agreed(ports, len(servers)), 60, "the victim to rejoin")
    return results


# -- 4. replication ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Setup:
    """One cluster of part 4: how to start it and wait until it is ready to measure."""

    name: str
    start: Callable[[Path], list[Server]]


def hypercache_setup(name: str, extra: list[str], replicas: int, form: str | None = None) -> Setup:
    def start(workdir: Path) -> list[Server]:
        servers = start_hypercache(workdir, 3, extra, form)
        if replicas:
            wait_until(lambda: replicas_synced([s.port for s in servers], replicas), 60,
                       f"connected_slaves:{replicas}, hypercache_replicas_in_sync:{replicas} "
                       "and hypercache_slots_loading:0 on every node")
        return servers
    return Setup(name, start)


def redis_setup(name: str, masters: int, replicas: int) -> Setup:
    return Setup(name, lambda workdir: start_redis_cluster(workdir, masters * (1 + replicas), replicas))


def hypercache_state(servers: list[Server]) -> dict[int, tuple[str, str, str]]:
    """Per node: epoch, full syncs started, frames refused; a change across a run means the run saw churn."""
    state = {}
    for s in servers:
        if s.name.startswith("hypercache"):
            r = info(s.port, "replication")
            state[s.port] = (cluster_info(s.port)["cluster_current_epoch"],
                             r.get("hypercache_full_syncs", "?"), r.get("hypercache_frames_refused", "?"))
    return state


def log_tails(servers: list[Server], chars: int = 1500) -> str:
    return "\n".join(f"--- {s.name} ({s.log.name}) ---\n{s.log.read_text(errors='replace')[-chars:]}"
                     for s in servers if s.log.exists())


# redis-benchmark --cluster runs one thread per master, and with threads the only
# place a run stops is its 250 ms progress timer (showThroughput): the elapsed
# time it divides by is rounded up to a multiple of 250 ms. A 0.3 s run reads as
# 0.5 s (-40%); so part 4 sizes every run to last about `target_s`, which bounds
# that error to 250 ms / target_s for every cluster alike.
QUANTUM_S = 0.25


def machine_busy_s() -> float:
    """CPU seconds all cpus spent busy (user, nice, system, irq, softirq, steal), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


@dataclass(frozen=True, slots=True)
class CpuUse:
    servers_s: float        # CPU seconds the cluster's servers used
    others_cores: float     # cores that processes other than ours kept busy, on average


def cpu_use(servers: list[Server], run: Callable[[], T]) -> tuple[T, CpuUse]:
    """run(), with the CPU the servers used and the CPU everything else on the machine used meanwhile.

    The machine is shared: a test suite running beside the benchmark takes cpu 0
    or 1 from it, and `others_cores` says which runs it disturbed. Server CPU per
    request is the steadier number when it does (it is not time spent waiting).
    """
    def servers_s() -> float:
        return sum(cpu_seconds(s.pid) for s in servers)

    def ours_s() -> float:       # redis-benchmark (a waited-for child) and this script
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        return children.ru_utime + children.ru_stime + me.ru_utime + me.ru_stime
    busy, servers_before, ours_before, started_at = machine_busy_s(), servers_s(), ours_s(), time.monotonic()
    value = run()
    elapsed = time.monotonic() - started_at
    used = servers_s() - servers_before
    others = (machine_busy_s() - busy) - used - (ours_s() - ours_before)
    return value, CpuUse(used, max(0.0, others) / elapsed)


@dataclass
class ReplicationRuns:
    runs: dict[tuple[int, str], dict[str, list[float]]] = field(default_factory=dict)  # (P, test) -> setup -> rps
    cpu_us: dict[tuple[int, str], dict[str, list[float]]] = field(default_factory=dict)  # ... -> server us/request
    sizes: dict[tuple[str, int, str], int] = field(default_factory=dict)   # (setup, P, test) -> next -n
    others: list[float] = field(default_factory=list)  # cores other processes used, per counted run
    notes: list[str] = field(default_factory=list)     # failures and churn, printed under the tables

    def add(self, pipeline: int, setup: str, test: str, rps: float, n: int, cpu: CpuUse) -> None:
        self.runs.setdefault((pipeline, test), {}).setdefault(setup, []).append(rps)
        self.cpu_us.setdefault((pipeline, test), {}).setdefault(setup, []).append(1e6 * cpu.servers_s / n)
        self.others.append(cpu.others_cores)


def sized_run(results: ReplicationRuns, setup: str, servers: list[Server], clients: int, pipeline: int,
              test: str, target_s: float, first_n: int) -> tuple[float, int, CpuUse]:
    """One redis-benchmark run of `test` lasting about target_s: (requests/s, -n used, CPU used).

    -n starts from what the last run of this setup, -P and test measured
    (first_n the first time); a run shorter than 60% of target_s was sized on a
    guess, so it is thrown away and run again with -n scaled to its rate.
    """
    key = (setup, pipeline, test)
    port = a_master(servers).port
    n = results.sizes.get(key, first_n)
    for _ in range(4):
        result, cpu = cpu_use(servers, lambda: benchmark(port, n, clients, pipeline, test))
        rps = next(iter(result.values()))
        results.sizes[key] = max(1000, int(round(rps * target_s, -3)))
        if n / rps >= 0.6 * target_s:
            break
        n = results.sizes[key]
    return rps, n, cpu


def measure_replication(workdir: Path, setups: list[Setup], repeats: int, pipelines: list[int],
                        target_s: float, clients: int) -> ReplicationRuns:
    """Each repeat starts, measures (every -P and test) and stops each setup in turn; the order flips every repeat."""
    results = ReplicationRuns()
    for repeat in range(repeats):
        for setup in (setups if repeat % 2 == 0 else setups[::-1]):
            started_at = time.monotonic()
            first = len(STARTED)
            try:
                setup_dir = workdir / f"r{repeat}-{setup.name.replace(' ', '-')}"
                setup_dir.mkdir(parents=True)
                servers = setup.start(setup_dir)
            except Exception as error:  # noqa: BLE001 - reported, the other setups still run
                note = f"run {repeat + 1} {setup.name}: did not start: {error}\n{log_tails(STARTED[first:])}"
                results.notes.append(note)
                print(f"  {note}", flush=True)
                for s in STARTED[first:]:
                    s.stop()
                continue
            ready_s = time.monotonic() - started_at
            try:
                for pipeline in pipelines:
                    for test in TESTS.split(","):
                        before = hypercache_state(servers)
                        try:
                            rps, n, cpu = sized_run(results, setup.name, servers, clients, pipeline, test,
                                                       target_s, first_n=20_000 * pipeline)
                        except Exception as error:  # noqa: BLE001 - reported, the next run still runs
                            note = (f"run {repeat + 1} {setup.name} P={pipeline} {test}: {error}\n"
                                    f"{log_tails(servers)}")
                            results.notes.append(note)
                            print(f"  {note}", flush=True)
                            continue
                        after = hypercache_state(servers)
                        if before != after:
                            note = (f"run {repeat + 1} {setup.name} P={pipeline} {test}: (epoch, full_syncs, "
                                    f"frames_refused) per node moved from {before} to {after}")
                            results.notes.append(note)
                            print(f"  {note}", flush=True)
                        results.add(pipeline, setup.name, test.upper(), rps, n, cpu)
                        print(f"  run {repeat + 1}/{repeats} {setup.name:13s} P={pipeline:<2d} {test.upper()} "
                              f"{rps:>11,.0f}/s  n={n:<9,d} {n / rps:5.2f} s  "
                              f"servers {1e6 * cpu.servers_s / n:5.1f} us/req  others {cpu.others_cores:.2f} cores"
                              f"  (ready after {ready_s:.1f} s)", flush=True)
            finally:
                for s in servers:
                    s.stop()
    return results


def replication_tables(results: ReplicationRuns, setups: list[Setup], repeats: int, target_s: float,
                       clients: int) -> None:
    names = [s.name for s in setups]
    medians: dict[tuple[int, str], dict[str, float]] = {
        key: {name: statistics.median(rps) for name, rps in by_setup.items() if rps}
        for key, by_setup in results.runs.items()}
    order = TESTS.upper().split(",")        # the CSV names tests in capitals, in this order
    keys = sorted(medians, key=lambda k: (k[0], order.index(k[1]) if k[1] in order else len(order)))
    table(f"Replication, median requests/s of {repeats} run(s) (c={clients}, -n sized for ~{target_s:g} s a run, "
          f"so up to {100 * QUANTUM_S / target_s:.0f}% low; each cluster on one core)",
          ["test", "P", *names],
          [[test, str(p), *(f"{medians[(p, test)][n]:,.0f}" if n in medians[(p, test)] else "failed"
                            for n in names)] for p, test in keys])

    def ratio(m: dict[str, float], top: str, bottom: str) -> str:
        return f"{m[top] / m[bottom]:.2f}x" if top in m and bottom in m else "-"

    rf1, sync, async_, rc_repl, rc = names
    pairs = [(sync, rc_repl), (async_, rc_repl), (sync, rf1), (rc_repl, rc), (rf1, rc)]
    table("Replication, ratios of the medians", ["test", "P", *(f"{a} / {b}" for a, b in pairs)],
          [[test, str(p), *(ratio(medians[(p, test)], a, b) for a, b in pairs)] for p, test in keys])
    cpu = {key: {name: statistics.median(us) for name, us in by_setup.items() if us}
           for key, by_setup in results.cpu_us.items()}
    table(f"Replication, server CPU per request, median microseconds of {repeats} run(s) "
          "(user+sys of all the cluster's servers / -n)",
          ["test", "P", *names, f"{sync} / {rf1}"],
          [[test, str(p), *(f"{cpu[(p, test)][n]:.1f}" if n in cpu[(p, test)] else "failed" for n in names),
            ratio(cpu[(p, test)], sync, rf1)] for p, test in keys])
    if results.others:
        print(f"\nOther processes on the machine kept {statistics.median(results.others):.2f} cores busy during "
              f"the median run (max {max(results.others):.2f}; the machine has {os.cpu_count()})")
    if results.notes:
        print("\nNotes (failures, churn during a run):")
        for note in results.notes:
            print("  " + note.replace("\n", "\n    "))


# -- output ---------------------------------------------------------------------------------

def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    print(f"\n{title}")
    print("  " + "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
    print("  " + "  ".join("-" * w for w in widths))
    for row in rows:
        print("  " + "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="N=30000, 1 repeat, 5 s idle, 3 kills; replication: 2 s runs, 1 repeat")
    p.add_argument("-n", "--requests", type=int, default=None, help="requests per redis-benchmark run")
    p.add_argument("-r", "--repeats", type=int, default=None, help="runs per system")
    p.add_argument("-c", "--clients", type=int, default=50)
    p.add_argument("--idle-s", type=float, default=None, help="idle CPU window")
    p.add_argument("--kills", type=int, default=None, help="SIGKILL runs for the detection time")
    p.add_argument("--node-timeout-ms", type=int, default=None,
                   help="hypercache --node-timeout-ms (default: the node's own default)")
    p.add_argument("--forms", default="python,mypyc", help="part 1: the hypercache forms measured (python, mypyc)")
    p.add_argument("--replication-form", choices=("python", "mypyc"), default=None,
                   help="part 4: the hypercache form (default: the compiled one when built), to see what sync "
                        "costs in each")
    p.add_argument("--skip", default="",
                   help="comma list of parts to skip: throughput,idle,detection,replication")
    p.add_argument("--replication", action="store_true",
                   help="run only part 4: rf1, rf2 sync, rf2 async against Redis Cluster with and without replicas")
    p.add_argument("--replication-seconds", type=float, default=None,
                   help="part 4: the length of each redis-benchmark run (-n is sized to it)")
    p.add_argument("--replication-repeats", type=int, default=None, help="part 4: runs per cluster, -P and test")
    a = p.parse_args(argv)
    requests = a.requests or (30_000 if a.quick else 200_000)
    repeats = a.repeats or (1 if a.quick else 3)
    idle_s = a.idle_s or (5.0 if a.quick else 10.0)
    kills = a.kills or (3 if a.quick else 5)
    replication_s = a.replication_seconds or (2.0 if a.quick else 3.0)
    replication_repeats = a.replication_repeats or (1 if a.quick else 5)
    pipelines = [1, 16]
    skip = set(filter(None, a.skip.split(",")))
    if a.replication:
        skip |= {"throughput", "idle", "detection"}
    for tool in ("redis-server", "redis-cli", "redis-benchmark"):
        if shutil.which(tool) is None:
            print(f"{tool} is required", file=sys.stderr)
            return 2
    timeout_flags = ["--node-timeout-ms", str(a.node_timeout_ms)] if a.node_timeout_ms else []
    extra = ["--replication-factor", "1", *timeout_flags]
    parts_1_to_3 = not {"throughput", "idle", "detection"} <= skip
    placement = (f"servers on cpu {SERVER_CPU}, redis-benchmark on cpu {CLIENT_CPU}" if pinning_available()
                 else "not pinned (no taskset or one cpu)")
    if parts_1_to_3:
        print(f"hypercache 3 nodes {' '.join(extra)} vs Redis Cluster 3 masters, {os.cpu_count()} cpus, {placement}")
        print(f"redis-benchmark --cluster -t {TESTS} -c {a.clients} -n {requests}, {repeats} repeat(s)")
    form = a.replication_form
    setups = [hypercache_setup("hc rf1", ["--replication-factor", "1", *timeout_flags], 0, form),
              hypercache_setup("hc rf2 sync", ["--replication-factor", "2", "--replication-mode", "sync",
                                               *timeout_flags], 2, form),
              hypercache_setup("hc rf2 async", ["--replication-factor", "2", "--replication-mode", "async",
                                                *timeout_flags], 2, form),
              redis_setup("redis 3m+3r", 3, 1),
              redis_setup("redis 3m", 3, 0)]
    if "replication" not in skip:
        print(f"replication: {', '.join(s.name for s in setups)} (hypercache form: {form or 'as built'}); "
              f"{os.cpu_count()} cpus, {placement}; "
              f"redis-benchmark --cluster -t {TESTS} -c {a.clients} -P {'|'.join(map(str, pipelines))}, "
              f"-n sized for ~{replication_s:g} s a run, {replication_repeats} repeat(s), "
              f"load average {os.getloadavg()[0]:.2f}")

    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        workdir = Path(tmp)
        try:
            hc = start_hypercache(workdir, 3, extra) if parts_1_to_3 else []
            servers += hc

            if "idle" not in skip:
                print(f"\nidle CPU over {idle_s:.0f} s ...", flush=True)
                lone = start_hypercache(workdir, 1, extra)
                servers += lone
                idle = idle_cpu(hc + lone, idle_s)
                lone[0].stop()
                rows = [[s.name + " (3-node cluster)", f"{pct:.2f}"] for s, pct in zip(hc, idle[:3])]
                rows.append(["mean per cluster node", f"{statistics.mean(idle[:3]):.2f}"])
                rows.append(["lone node (no peers)", f"{idle[3]:.2f}"])
                rows.append(["peer traffic per node (mean - lone)", f"{statistics.mean(idle[:3]) - idle[3]:.2f}"])
                table(f"Idle CPU per hypercache node, % of one core over {idle_s:.0f} s "
                      "(heartbeats every 250 ms + housekeeping at 10 Hz)", ["node", "% cpu"], rows)

            if "throughput" not in skip:
                print("\nthroughput ...", flush=True)
                forms = [form for form in a.forms.split(",") if form]
                clusters = {form: start_hypercache(workdir, 3, extra, form) for form in forms}
                rc = start_redis_cluster(workdir, 3)
                servers += rc + [s for cluster in clusters.values() for s in cluster]
                systems = [(form, cluster[0].port) for form, cluster in clusters.items()]
                results = measure_throughput([*systems, ("redis-cluster", rc[0].port)], repeats, requests, a.clients)
                for s in rc + [s for cluster in clusters.values() for s in cluster]:
                    s.stop()
                rows = []
                for test, by_system in results.runs.items():
                    rc_med = statistics.median(by_system["redis-cluster"])
                    row = [test, f"{rc_med:,.0f}"]
                    for form in forms:
                        hc_med = statistics.median(by_system[form])
                        row += [f"{hc_med:,.0f}", f"{hc_med / rc_med:.2f}x"]
                    rows.append(row)
                table(f"Throughput, median requests/s of {repeats} run(s) (c={a.clients}, n={requests}, P=1)",
                      ["test", "redis-cluster", *(h for form in forms for h in (form, "ratio"))], rows)

            if "detection" not in skip:
                timeout_ms = a.node_timeout_ms or 3000
                print(f"\nfailure detection (node timeout {timeout_ms} ms), {kills} kills ...", flush=True)
                for s in hc:
                    call(s.port, "FLUSHALL")
                detections = measure_detection(hc, kills, timeout_ms / 1000 * 5 + 10, extra)
                fails = [d.fail_s for d in detections]
                epochs = [d.epoch_s for d in detections]
                table(f"Detection after SIGKILL, seconds over {kills} kills (polled every 10 ms)",
                      ["measure", "median", "min", "max"],
                      [["victim `fail` on every survivor", f"{statistics.median(fails):.2f}",
                        f"{min(fails):.2f}", f"{max(fails):.2f}"],
                       ["survivors agree on the next epoch", f"{statistics.median(epochs):.2f}",
                        f"{min(epochs):.2f}", f"{max(epochs):.2f}"]])

            if "replication" not in skip:
                for s in servers:       # the measured cluster has cpu 0 to itself
                    s.stop()
                print(f"\nreplication, {replication_repeats} repeat(s) ...", flush=True)
                replication = measure_replication(workdir, setups, replication_repeats, pipelines,
                                                  replication_s, a.clients)
                replication_tables(replication, setups, replication_repeats, replication_s, a.clients)
                print(f"(load average at the end {os.getloadavg()[0]:.2f})")
        finally:
            for s in servers + STARTED:
                s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
