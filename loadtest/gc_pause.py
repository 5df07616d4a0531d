#!/usr/bin/env python3
"""The longest reply while a node fills with hashes: hypercache's garbage-collection policy, CPython's, redis-server.

Each run starts a fresh server pinned to cpu 0 and loads `--keys` random
one-field hashes (`HSET h:__rand_int__ f v`, redis-benchmark -r on cpu 1, -P 16,
-c 20; -r draws with repeats, so fewer distinct keys than requests), then reads
what redis-benchmark saw: requests/s, p50, p99 and the longest reply; for
hypercache also INFO's longest full garbage collection and the objects frozen
(hypercache/gc_policy.py). Servers: redis-server; hypercache as it runs
(`freeze`); hypercache with HYPERCACHE_GC_FREEZE_AT=0 (`cpython`: CPython's own
policy, whose full collections walk every stored container). Runs alternate, the
order flipped every repeat; medians of `--repeats`.

    python3 loadtest/gc_pause.py                    # 3M requests a run, 3 repeats
    python3 loadtest/gc_pause.py --keys 1000000 --repeats 1
"""
from __future__ import annotations

import argparse
import csv
import io
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vs_redis import CLIENT_CPU, HOST, Server, pinned, start_hypercache, start_redis  # noqa: E402

SYSTEMS = ("redis", "freeze", "cpython")


def start(system: str, workdir: Path, form: str) -> Server:
    if system == "redis":
        return start_redis(workdir)
    freeze_at = {} if system == "freeze" else {"HYPERCACHE_GC_FREEZE_AT": "0"}
    return start_hypercache(workdir, [], form, env_extra=freeze_at)


def load(server: Server, requests: int) -> dict[str, float]:
    args = pinned(CLIENT_CPU, ["redis-benchmark", "-h", HOST, "-p", str(server.port), "-r", "100000000",
                               "-n", str(requests), "-c", "20", "-P", "16", "--csv",
                               "hset", "h:__rand_int__", "f", "v"])
    done = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    rows = list(csv.reader(io.StringIO(done.stdout)))
    if len(rows) < 2:
        raise RuntimeError(f"no results from redis-benchmark against {server.name}: {done.stdout}{done.stderr}")
    header, values = rows[0], rows[-1]
    row = dict(zip(header, values))
    return {"rps": float(row["rps"]), "p50_ms": float(row["p50_latency_ms"]),
            "p99_ms": float(row["p99_latency_ms"]), "max_ms": float(row["max_latency_ms"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=3_000_000, help="HSET requests a run (random keys)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--form", choices=("mypyc", "python"), default="mypyc")
    a = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {system: [] for system in SYSTEMS}
    with tempfile.TemporaryDirectory(prefix="gc-pause-") as tmp:
        for repeat in range(a.repeats):
            order = SYSTEMS if repeat % 2 == 0 else tuple(reversed(SYSTEMS))
            for system in order:
                workdir = Path(tmp) / f"{system}-{repeat}"
                workdir.mkdir()
                server = start(system, workdir, a.form)
                try:
                    figures = load(server, a.keys)
                    figures["keys"] = float(server.info("keyspace").get("db0", "keys=0").split(",")[0][5:])
                    if system != "redis":
                        memory = server.info("memory")
                        figures["gc_max_full_ms"] = float(memory["hypercache_gc_max_full_ms"])
                        figures["gc_frozen"] = float(memory["hypercache_gc_frozen_objects"])
                finally:
                    server.stop()
                results[system].append(figures)
                print(f"repeat {repeat + 1} {system}: " + " ".join(f"{k}={v:,.1f}" for k, v in figures.items()),
                      flush=True)
    print(f"\nmedians of {a.repeats} ({a.form} form, {a.keys:,} HSET a run, -P 16 -c 20)")
    columns = ("keys", "rps", "p50_ms", "p99_ms", "max_ms", "gc_max_full_ms", "gc_frozen")
    print("| server | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for system in SYSTEMS:
        cells = []
        for column in columns:
            values = [figures[column] for figures in results[system] if column in figures]
            cells.append(f"{statistics.median(values):,.1f}" if values else "-")
        print(f"| {system} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
