#!/usr/bin/env python3
"""Does a big full copy delay heartbeats? Measure the hubs during a ~1 GB replica catch-up.

Three nodes at replication factor 2, filled with --gigabytes of values
(--value-kb each). Then one node is SIGKILLed, the other two commit the map
without it, and it is restarted with the same id: it pulls the slots it leads
and receives a full copy of the ones it replicates, about two thirds of the
data set, from the other two. Throughout, a pinger sends PING to each
node every 10 ms and records how long each took: a PING waits exactly as long
as a heartbeat would, since both need the hub. Reported per node: the copy's
duration and rate, PING latency p50/p99/max during the copy, and whether
any node showed another `fail?`/`fail` in CLUSTER NODES or logged a
suspicion (a false failure) while the copy ran.

    python3 loadtest/copy_stall.py                      # 1 GB of 64 KB values, node timeout 3 s
    python3 loadtest/copy_stall.py --gigabytes 0.2      # quicker
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis  # noqa: E402

from tests.nodes import NodeFactory, call, replication_info, wait_until  # noqa: E402

NODE_TIMEOUT_MS = 3000


class Pinger(threading.Thread):
    """PING one node every 10 ms; keep (wall time, latency) pairs."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.samples: list[tuple[float, float]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        client = None
        while not self.stopped.is_set():
            start = time.monotonic()
            try:
                if client is None:
                    client = redis.Redis(port=self.port, socket_timeout=30)
                client.ping()
                self.samples.append((start, time.monotonic() - start))
            except redis.RedisError:
                client = None       # (the node is down: the restart)
            time.sleep(0.01)

    def during(self, start: float, end: float) -> list[float]:
        return [latency for at, latency in self.samples if start <= at <= end]


def suspicions(node) -> int:
    return sum(1 for line in node.logs(tail=None).splitlines() if "member suspect" in line or "member dead" in line)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gigabytes", type=float, default=1.0)
    p.add_argument("--value-kb", type=int, default=64)
    args = p.parse_args(argv)
    value = b"v" * (args.value_kb * 1024)
    count = int(args.gigabytes * 1024 * 1024 / args.value_kb)
    base = Path(tempfile.mkdtemp(prefix="hc-copy-stall-"))
    factory = NodeFactory(base)
    try:
        flags = ("--replication-factor", "2", "--node-timeout-ms", str(NODE_TIMEOUT_MS))
        a, c, b = factory.start_cluster(3, *flags)
        wait_until(lambda: all(replication_info(n).get("hypercache_replicas_in_sync") == "2" for n in (a, b, c)),
                   timeout=60, message="replicas in sync")
        cluster = redis.RedisCluster(host="127.0.0.1", port=a.port, socket_timeout=30)
        loaded_at = time.monotonic()
        for start in range(0, count, 64):
            pipe = cluster.pipeline(transaction=False)
            for i in range(start, min(count, start + 64)):
                pipe.set(f"big:{i}", value)
            pipe.execute()
        print(f"loaded {count} values of {args.value_kb} KB ({count * len(value) / 2**30:.2f} GiB) "
              f"in {time.monotonic() - loaded_at:.1f} s", flush=True)
        pingers = {n.port: Pinger(n.port) for n in (a, b, c)}
        for pinger in pingers.values():
            pinger.start()
        time.sleep(1.0)         # a baseline of quiet PINGs before the fault
        b.kill()
        killed_at = time.monotonic()
        # wait for the survivors to commit the map without it, then bring it back
        def without_victim() -> bool:
            ports = {entry[2][1] for n in (a, c) for entry in call(n, "CLUSTER", "SLOTS")}
            return b.port not in ports
        wait_until(without_victim, timeout=60, message="the survivors' map without it")
        before = {n.port: suspicions(n) for n in (a, c)}
        b = factory.restart(b)
        restarted_at = time.monotonic()
        flags_seen: set[str] = set()

        def caught_up() -> bool:
            for node in (a, b, c):
                for line in call(node, "CLUSTER", "NODES").decode().splitlines():
                    flags_seen.update(flag for flag in line.split()[2].split(",") if flag.startswith("fail"))
            return all(replication_info(n).get("hypercache_replicas_in_sync") == "2"
                       and replication_info(n).get("hypercache_slots_loading") == "0" for n in (a, b, c))
        wait_until(caught_up, timeout=600, interval=0.2, message="the restarted node caught up")
        done_at = time.monotonic()
        for pinger in pingers.values():
            pinger.stopped.set()
        copied = int(replication_info(b).get("hypercache_effects_applied", 0))
        seconds = done_at - restarted_at
        print(f"SIGKILL -> restart {restarted_at - killed_at:.1f} s; restart -> caught up {seconds:.1f} s "
              f"({copied} values, {copied * len(value) / 2**20 / seconds:.0f} MiB/s, copied to the restarted node)")
        print(f"{'node':>10} {'pings':>6} {'p50_ms':>7} {'p99_ms':>7} {'max_ms':>7} {'suspicions':>10}")
        for name, node in (("survivor", a), ("survivor", c), ("restarted", b)):
            lat = sorted(pingers[node.port].during(restarted_at, done_at))
            if not lat:
                print(f"{name:>10} {0:>6}")
                continue
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            new = suspicions(node) - before.get(node.port, 0)
            worst_at = max((sample for sample in pingers[node.port].samples
                            if restarted_at <= sample[0] <= done_at), key=lambda sample: sample[1])[0]
            print(f"{name:>10} {len(lat):>6} {statistics.median(lat) * 1000:>7.1f} {p99 * 1000:>7.1f} "
                  f"{lat[-1] * 1000:>7.1f} {new:>10}  (worst {worst_at - restarted_at:.1f} s after the restart)")
        print(f"CLUSTER NODES fail flags seen while copying: {sorted(flags_seen) or 'none'} "
              f"(node timeout {NODE_TIMEOUT_MS} ms)")
        lost = [i for i in range(0, count, max(1, count // 200)) if cluster.get(f"big:{i}") != value]
        print(f"spot check: {len(lost)} of {len(range(0, count, max(1, count // 200)))} sampled keys missing")
        return 0 if not lost else 1
    finally:
        factory.stop_all()


if __name__ == "__main__":
    sys.exit(main())
