#!/usr/bin/env python3
"""Measure what an idle cluster's mesh costs each node: CPU and mesh traffic, at several cluster sizes.

For each size N: start N real nodes on 127.0.0.1 (the first alone, the others
--join it, `--replication-factor 2`), wait until every node holds one map of N
members and accepts writes, let it settle, then for --seconds read per node:

- CPU: user + system time of the process and its children (/proc/<pid>/stat: the
  node and its placement worker, mesh/placer.py), as % of one core;
- mesh messages sent and received per second (CLUSTER INFO's
  cluster_stats_messages_sent/received);
- mesh bytes received per second: the bytes accepted from every peer
  (/metrics hypercache_mesh_received_bytes). What a node sends is not counted
  per peer (its PUB filters for each subscriber: a quiet heartbeat reaches the
  watchers only, mesh/watch.py); over the cluster, bytes out equal bytes in.

The joiners start first and the seed they --join last, so that all of them
reach it at once and the founder admits them in one map (one ring placement
on one node, mesh/ring.py, instead of a pre-copy plan per join on every
member). With --batch K the seed starts alone and the others join a running
cluster K at a time, each batch once the last is in the map: on this 2-core
machine 100 Python processes starting together (~1.5 s of CPU each to import)
starve the members that already run, at the default node timeout.

Medians and maxima over the nodes go to stdout as one table line per size.
The machine is shared and small (2 cores): N nodes' idle cost must fit in it,
and other load shows up as CPU; run it on a quiet machine and compare sizes
within one run.

    .venv/bin/python loadtest/mesh_cost.py --sizes 3 12 24 48 --seconds 20
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mesh.placer import cpu_ticks  # noqa: E402
from tests.nodes import HOST, NodeFactory, NodeProcess, cluster_info, node_ports, wait_until  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
# How often the waits for a batch's admission and for agreement ask (CLUSTER INFO): the
# instrument's own load. Asked every 0.5 s, a CLUSTER INFO of 39 ms (before 6 December) was 42%
# of the seed's CPU while 60 nodes joined, and each round of `agreed` asks every node. (So
# `formed s` is up to 2 s coarser than in the tables measured before 6 December.)
POLL_S = 2.0
# (--calm: the window over which the nodes' CPU is read before the next batch starts)
CALM_WINDOW_S = 5.0


def cpu_s(node: NodeProcess) -> float:
    """The node's CPU and its live children's: its ring placements run in a worker (mesh/placer.py)."""
    children = set()
    for task in Path(f"/proc/{node.proc.pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):    # (a thread of gevent's pool that ended meanwhile)
            children.update(int(pid) for pid in (task / "children").read_text().split())
    # (a child that ended meanwhile, a worker replaced, says None: nothing to add)
    return sum(cpu_ticks(pid) or 0 for pid in (node.proc.pid, *children)) / TICKS


def metrics(node: NodeProcess) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/metrics", timeout=10) as response:
        return response.read().decode().splitlines()


def metric_sum(lines: list[str], name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines
               if line.startswith(name + "{") or line.startswith(name + " "))


def heard_by_kind(lines: list[str]) -> dict[str, float]:
    """Messages accepted from peers, by kind (heartbeat, commit, vote...), from /metrics."""
    prefix = 'hypercache_mesh_received_by_kind_total{kind="'
    return {line[len(prefix):].split('"', 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in lines if line.startswith(prefix)}


def sample(node: NodeProcess) -> dict[str, float]:
    info = cluster_info(node)
    lines = metrics(node)
    return {"cpu": cpu_s(node),
            "sent": float(info["cluster_stats_messages_sent"]),
            "received": float(info["cluster_stats_messages_received"]),
            "received_bytes": metric_sum(lines, "hypercache_mesh_received_bytes_total"),
            **{"heard_" + kind: count for kind, count in heard_by_kind(lines).items()},
            "at": time.monotonic()}


def agreed(nodes: list[NodeProcess]) -> bool:
    """Every node holds one map of all of them and says ok: each asked in turn, a busy one (a machine
    loaded by 100 nodes) asked again, up to three times, before the round counts as not yet."""
    said = []
    for node in nodes:
        for attempt in range(3):
            try:
                said.append(cluster_info(node))
                break
            except Exception:  # noqa: BLE001 - a busy node answers the next time
                if attempt == 2:
                    return False
    return (len({info["cluster_current_epoch"] for info in said}) == 1
            and all(info["cluster_size"] == str(len(nodes)) and info["cluster_state"] == "ok" for info in said))


def sample_all(nodes: list[NodeProcess]) -> list[dict[str, float]]:
    """sample() of every node, asking a slow one again (a loaded machine times some out)."""
    return [wait_until(lambda node=node: sample(node), timeout=60, interval=0.2, message=f"node {node.port}")
            for node in nodes]


def nodes_cpu_share(nodes: list[NodeProcess], window_s: float) -> float:
    """The share of the machine's CPUs the nodes (and their workers) used together over `window_s`."""
    before = [cpu_s(node) for node in nodes]
    began = time.monotonic()
    time.sleep(window_s)       # a measuring window, not a wait for a condition
    used = sum(cpu_s(node) - b for node, b in zip(nodes, before))
    return used / (time.monotonic() - began) / (os.cpu_count() or 1)


def wait_calm(nodes: list[NodeProcess], calm: float, limit_s: float = 300.0) -> None:
    """Wait until every node holds one map of them all and, over a window of CALM_WINDOW_S, the nodes
    used under `calm` of the machine's CPUs together: the last batch's copies and hand-offs are done."""
    began = time.monotonic()
    while time.monotonic() - began < limit_s:
        if agreed(nodes):
            share = nodes_cpu_share(nodes, CALM_WINDOW_S)
            if share < calm:
                print(f"    calm after {time.monotonic() - began:.0f} s ({100 * share:.0f}% of the machine)",
                      flush=True)
                return
        else:
            time.sleep(POLL_S)      # (agreed asks every node: POLL_S apart, as wait_until would)
    print(f"    not calm within {limit_s:.0f} s: the next batch starts anyway", flush=True)


def start_in_batches(factory: NodeFactory, size: int, batch: int, extra: list[str],
                     calm: float = 0.0) -> list[NodeProcess]:
    """A seed alone, then the others joining the running cluster `batch` at a time, each batch once the
    one before is in the seed's map (and with `calm`, once the cluster is calm again: wait_calm)."""
    seed = factory.start("--replication-factor", "2", *extra, http=True)
    nodes = [seed]
    while len(nodes) < size:
        if calm and len(nodes) > 1:
            wait_calm(nodes, calm)
        joining = [factory.start("--replication-factor", "2", *extra, join=seed, http=True, wait=False)
                   for _ in range(min(batch, size - len(nodes)))]
        for node in joining:
            node.wait_ready(timeout=300)
        nodes += joining
        wait_until(lambda: int(cluster_info(seed)["cluster_size"]) >= len(nodes), timeout=300, interval=POLL_S,
                   message=f"{len(nodes)} members in the seed's map")
        print(f"    {len(nodes)} members in the map", flush=True)
    return nodes


def measure(size: int, seconds: float, settle_s: float, base: Path, extra: list[str],
            per_node: bool = False, batch: int = 0, calm: float = 0.0) -> dict[str, float]:
    factory = NodeFactory(base / f"n{size}")
    try:
        began = time.monotonic()
        if batch:
            nodes = start_in_batches(factory, size, batch, extra, calm)
            seed_port = nodes[0].port
        else:
            seed_port, seed_mesh_port = node_ports()
            joiners = [factory.start("--replication-factor", "2", *extra, join=f"{HOST}:{seed_mesh_port}",
                                     http=True, wait=False) for _ in range(size - 1)]
            for node in joiners:
                node.wait_ready(timeout=120)
            nodes = [factory.start("--replication-factor", "2", *extra, http=True, port=seed_port), *joiners]
        wait_until(lambda: agreed(nodes), timeout=60 + 3 * size, interval=POLL_S,
                   message=f"{size} nodes agreeing on one map")
        formed_s = time.monotonic() - began
        if calm:
            wait_calm(nodes, calm)
        time.sleep(settle_s)        # a benchmark's settling time, not a wait for a condition
        before = sample_all(nodes)
        time.sleep(seconds)
        after = sample_all(nodes)
        rows = []
        for b, a in zip(before, after):
            elapsed = a["at"] - b["at"]
            rows.append({"cpu_pct": 100 * (a["cpu"] - b["cpu"]) / elapsed,
                         "sent": (a["sent"] - b["sent"]) / elapsed,
                         "received": (a["received"] - b["received"]) / elapsed,
                         "received_kb": (a["received_bytes"] - b["received_bytes"]) / elapsed / 1024,
                         **{key: (a[key] - b.get(key, 0.0)) / elapsed for key in a if key.startswith("heard_")}})
        if per_node:     # the costliest nodes first: which one is it, and does it send or hear more?
            ranked = sorted(zip(nodes, rows), key=lambda pair: -pair[1]["cpu_pct"])
            for node, row in ranked[:5]:
                role = "seed" if node.port == seed_port else "joiner"
                print(f"    port {node.port} ({role}): cpu {row['cpu_pct']:.2f}%  out {row['sent']:.1f}/s"
                      f"  in {row['received']:.1f}/s  {row['received_kb']:.2f} KB/s in", flush=True)
        logs = [node.logs(tail=None) for node in nodes]
        epoch = wait_until(lambda: cluster_info(nodes[0])["cluster_current_epoch"], timeout=60, interval=0.2)
        result = {"size": size, "formed_s": formed_s, "epoch": float(epoch),
                  "suspicions": float(sum(text.count("member suspect node=") for text in logs)),
                  # (a node whose timer ran late by more than the lease's margin again and again:
                  # mesh/awareness.py; the nodes' timers all fire on the same instants, mesh/ticks.py)
                  "late": float(sum(text.count("this node runs late node=") for text in logs)),
                  # (ballots prepared: more than one per epoch are retries, Mesh._retry_after_s)
                  "ballots": float(sum(text.count("preparing node=") for text in logs)),
                  "deaths": float(sum(line.count("member dead node=") - line.count("(removed by the map)")
                                      for text in logs for line in text.splitlines())),
                  # (of which held dead on the watchers' long reports and silence everywhere, mesh/strand.py)
                  "deaths_unheard": float(sum(text.count("and this node did not hear it either") for text in logs))}
        for key in sorted({key for row in rows for key in row}):
            values = [r.get(key, 0.0) for r in rows]
            result[key] = statistics.median(values)
            result[key + "_max"] = max(values)
        return result
    finally:
        for node in factory.nodes:      # SIGKILL: N graceful leaves at once would wait out their timeout
            node.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 12, 24, 48])
    parser.add_argument("--seconds", type=float, default=20.0)
    # (for ~10 s after a map forms its members still copy their empty slots to their new replicas
    # and say what they hold: a 5 s settle read 1.85% of a core on the busiest of 48, 20 s 0.95%)
    parser.add_argument("--settle-s", type=float, default=20.0)
    parser.add_argument("--node-flag", action="append", default=[],
                        help="one more flag for every node, e.g. --node-flag=--node-timeout-ms=1000")
    parser.add_argument("--per-node", action="store_true", help="also print the five costliest nodes of each size")
    parser.add_argument("--batch", type=int, default=0,
                        help="start the seed alone and the others K at a time into the running cluster (0: all at once)")
    parser.add_argument("--calm", type=float, default=0.0, metavar="SHARE",
                        help="with --batch: start a batch only once every node holds one map and the nodes "
                             "together used under SHARE of the machine's CPUs over 5 s (0: do not wait)")
    parser.add_argument("--kinds", action="store_true",
                        help="also print the messages heard per second by kind (median over the nodes)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="run the nodes under DIR and leave their data and logs there, for a run that "
                             "fails to form (default: a temporary directory, removed at the end)")
    args = parser.parse_args()
    extra = [part for flag in args.node_flag for part in flag.split("=", 1)]
    print("members  formed s  cpu % core (median/max)  msgs/s out  msgs/s in  KB/s in (median/max)")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    with (contextlib.nullcontext(str(args.keep)) if args.keep is not None
          else tempfile.TemporaryDirectory(prefix="mesh-cost-")) as base:
        for size in args.sizes:
            r = measure(size, args.seconds, args.settle_s, Path(base), extra, args.per_node, args.batch, args.calm)
            print(f"{size:7d}  {r['formed_s']:8.1f}  {r['cpu_pct']:10.2f} / {r['cpu_pct_max']:5.2f}"
                  f"  {r['sent']:10.1f}  {r['received']:9.1f}  {r['received_kb']:7.2f} / {r['received_kb_max']:5.2f}",
                  flush=True)
            print(f"         from the start: final epoch {r['epoch']:.0f} after {r['ballots']:.0f} ballots, "
                  f"{r['suspicions']:.0f} suspicions, {r['deaths']:.0f} death verdicts "
                  f"({r['deaths_unheard']:.0f} on silence everywhere) and {r['late']:.0f} nodes running late "
                  "in the nodes' logs",
                  flush=True)
            if args.kinds:
                kinds = {key[len("heard_"):]: value for key, value in r.items()
                         if key.startswith("heard_") and not key.endswith("_max")}
                print("         heard/s by kind (median): " + ", ".join(
                    f"{kind} {rate:.1f}" for kind, rate in sorted(kinds.items(), key=lambda kv: -kv[1])), flush=True)


if __name__ == "__main__":
    main()
