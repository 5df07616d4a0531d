#!/usr/bin/env python3
"""Measure a 3-node hypercache cluster against a real 3-master Redis Cluster, in one run.

Three numbers, each printed as a table:

1. Throughput: `redis-benchmark --cluster -t set,get -c 50` against 3 hypercache
   nodes (`--replication-factor 1`, so no replication traffic: the same work as
   3 Redis masters without replicas) and against a 3-master Redis Cluster, both
   on loopback. Runs alternate between the two (the order flips every repeat)
   so that drift of the machine hits both alike; medians and the
   hypercache / redis-cluster ratio are reported.
2. Idle CPU: utime+stime from /proc/<pid>/stat over a window, per node of an
   idle 3-node cluster and of a lone node (the lone node runs the same timers
   with no peer: the difference is what the peers' traffic costs), in % of one core.
3. Failure detection: SIGKILL one node of a 3-node cluster and time until every
   survivor's CLUSTER NODES shows it `fail`, and until the survivors agree on a
   2-member map (the next epoch); the median of several kills. The victim is
   restarted (same data dir, so same id) between kills.

CPU placement: the machine has 2 cores. Every server (the 3 hypercache nodes,
or the 3 redis-servers) is pinned to cpu 0 and redis-benchmark to cpu 1, so
each cluster gets exactly one core: the comparison is per core, not "how well
does it spread", and the client never competes with the servers. Without
taskset (or with one cpu) nothing is pinned and the tables say so.

    python3 loadtest/bench_cluster.py            # N=200000, 3 repeats, 10 s idle window, 5 kills
    python3 loadtest/bench_cluster.py --quick    # N=30000, 1 repeat, 5 s idle window, 3 kills
"""
from __future__ import annotations

import argparse
import csv
import io
import os
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
    """A free port P whose bus port P+10000 is free too, below the ephemeral range."""
    import random
    rng = random.SystemRandom()
    for _ in range(2000):
        port = rng.randint(12000, 32767 - BUS_OFFSET)
        if port in _issued:
            continue
        ok = True
        for candidate in (port, port + BUS_OFFSET):
            with socket.socket() as s:
                try:
                    s.bind((HOST, candidate))
                except OSError:
                    ok = False
                    break
        if ok:
            _issued.add(port)
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

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
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


# -- the two clusters ------------------------------------------------------------------------

def hypercache_args(port: int, data_dir: Path, join: list[int], extra: list[str]) -> list[str]:
    args = [sys.executable, "-m", "hypercache", "--host", HOST, "--port", str(port),
            "--mesh-port", str(port + BUS_OFFSET), "--http-port", "0", "--data-dir", str(data_dir),
            "--log-level", "WARNING", *extra]
    for peer in join:
        args += ["--join", f"{HOST}:{peer + BUS_OFFSET}"]
    return pinned(SERVER_CPU, args)


def start_hypercache(workdir: Path, count: int, extra: list[str]) -> list[Server]:
    servers: list[Server] = []
    first_port: int | None = None
    for index in range(count):
        port = free_port()
        data_dir = workdir / f"hc-{port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        join = [] if first_port is None else [first_port]
        server = Server(f"hypercache-{index}", port, hypercache_args(port, data_dir, join, extra),
                        workdir / f"hc-{port}.log")
        server.start()
        server.wait_ready()
        servers.append(server)
        first_port = first_port or port
    ports = [s.port for s in servers]
    wait_until(lambda: agreed(ports, count), 60, f"{count} hypercache nodes to agree")
    return servers


def start_redis_cluster(workdir: Path, count: int) -> list[Server]:
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
                             "--cluster-replicas", "0", "--cluster-yes"],
                            capture_output=True, text=True, timeout=60)
    if create.returncode != 0:
        raise RuntimeError(f"redis-cli --cluster create failed:\n{create.stdout}\n{create.stderr}")
    ports = [s.port for s in servers]
    wait_until(lambda: all(cluster_info(p)["cluster_state"] == "ok" for p in ports), 60,
               "the Redis Cluster to reach cluster_state:ok")
    return servers


# -- 1. throughput ---------------------------------------------------------------------------

def benchmark(port: int, requests: int, clients: int) -> dict[str, float]:
    """One redis-benchmark --cluster run; requests/s per test."""
    done = subprocess.run(pinned(CLIENT_CPU, ["redis-benchmark", "--cluster", "-h", HOST, "-p", str(port),
                                              "-t", TESTS, "-c", str(clients), "-n", str(requests),
                                              "-q", "--csv"]),
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"redis-benchmark failed on {port}:\n{done.stdout}\n{done.stderr}")
    # --cluster prints "Cluster has N master nodes" lines before the CSV header.
    text = done.stdout[done.stdout.index('"test"'):]
    return {row["test"]: float(row["rps"]) for row in csv.DictReader(io.StringIO(text))}


@dataclass
class Throughput:
    runs: dict[str, dict[str, list[float]]] = field(default_factory=dict)   # test -> system -> rps per run

    def add(self, system: str, result: dict[str, float]) -> None:
        for test, rps in result.items():
            self.runs.setdefault(test, {}).setdefault(system, []).append(rps)


def measure_throughput(hc_port: int, rc_port: int, repeats: int, requests: int, clients: int) -> Throughput:
    results = Throughput()
    systems = [("hypercache", hc_port), ("redis-cluster", rc_port)]
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
    p.add_argument("--quick", action="store_true", help="N=30000, 1 repeat, 5 s idle, 3 kills")
    p.add_argument("-n", "--requests", type=int, default=None, help="requests per redis-benchmark run")
    p.add_argument("-r", "--repeats", type=int, default=None, help="runs per system")
    p.add_argument("-c", "--clients", type=int, default=50)
    p.add_argument("--idle-s", type=float, default=None, help="idle CPU window")
    p.add_argument("--kills", type=int, default=None, help="SIGKILL runs for the detection time")
    p.add_argument("--node-timeout-ms", type=int, default=None,
                   help="hypercache --node-timeout-ms (default: the node's own default)")
    p.add_argument("--skip", default="", help="comma list of parts to skip: throughput,idle,detection")
    a = p.parse_args(argv)
    requests = a.requests or (30_000 if a.quick else 200_000)
    repeats = a.repeats or (1 if a.quick else 3)
    idle_s = a.idle_s or (5.0 if a.quick else 10.0)
    kills = a.kills or (3 if a.quick else 5)
    skip = set(filter(None, a.skip.split(",")))
    for tool in ("redis-server", "redis-cli", "redis-benchmark"):
        if shutil.which(tool) is None:
            print(f"{tool} is required", file=sys.stderr)
            return 2
    extra = ["--replication-factor", "1"]
    if a.node_timeout_ms:
        extra += ["--node-timeout-ms", str(a.node_timeout_ms)]
    placement = (f"servers on cpu {SERVER_CPU}, redis-benchmark on cpu {CLIENT_CPU}" if pinning_available()
                 else "not pinned (no taskset or one cpu)")
    print(f"hypercache 3 nodes {' '.join(extra)} vs Redis Cluster 3 masters, {os.cpu_count()} cpus, {placement}")
    print(f"redis-benchmark --cluster -t {TESTS} -c {a.clients} -n {requests}, {repeats} repeat(s)")

    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        workdir = Path(tmp)
        try:
            hc = start_hypercache(workdir, 3, extra)
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
                rc = start_redis_cluster(workdir, 3)
                servers += rc
                results = measure_throughput(hc[0].port, rc[0].port, repeats, requests, a.clients)
                for s in rc:
                    s.stop()
                rows = []
                for test, by_system in results.runs.items():
                    hc_med = statistics.median(by_system["hypercache"])
                    rc_med = statistics.median(by_system["redis-cluster"])
                    rows.append([test, f"{hc_med:,.0f}", f"{rc_med:,.0f}", f"{hc_med / rc_med:.2f}x"])
                table(f"Throughput, median requests/s of {repeats} run(s) (c={a.clients}, n={requests}, P=1)",
                      ["test", "hypercache", "redis-cluster", "ratio"], rows)

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
        finally:
            for s in servers:
                s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
