#!/usr/bin/env python3
"""What ACL users cost the node: server CPU per request, before ACLs, with the default user, with restricted users.

Two nodes run the same redis-benchmark traffic, one configuration after the other (the order
flips every repeat), pinned to cpu 0 with redis-benchmark on cpu 1:

- "before": the sources of another checkout (--before DIR, e.g. `git archive <commit>`),
- "default": this checkout, clients logged in as the all-permissions `default` user (the
  fast lane, and an unchanged general path but for one attribute read),
- "lane user": this checkout, clients logged in as `ops` (`~* &* +@all -@dangerous`): every key,
  not every command: the commands it may run keep a fast lane of their own,
- "keyed user": this checkout, clients logged in as `app` (`~key:* ~counter:* +@all -@dangerous`,
  redis-benchmark's keys): one-key commands stay in a lane that checks the key against the
  patterns; the others go the general way and are checked there.

The figure is the node process's CPU time (utime+stime from /proc) over the run divided by
the requests: on a shared machine it moves far less than requests/s.

    python3 loadtest/acl_cost.py --before /tmp/base          # GET, SET, INCR, PING at -P 1 and -P 16
    python3 loadtest/acl_cost.py --before /tmp/base --repeat 1 -n 50000
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "loadtest"))
from bench_vs_redis import CLIENT_CPU, HOST, SERVER_CPU, Server, free_port, pinned, wait_ready  # noqa: E402

TESTS = ("get", "set", "incr", "ping_mbulk")     # PING goes the general way (execute()) for every user
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start(repo: Path, workdir: Path, name: str) -> Server:
    port = free_port()
    log = workdir / f"{name}.log"
    env = dict(os.environ, PYTHONPATH=str(repo), HYPERCACHE_PURE="1")
    with open(log, "wb") as out:
        proc = subprocess.Popen(pinned(SERVER_CPU, [
            sys.executable, "-m", "hypercache", "--host", HOST, "--port", str(port), "--http-port", "0",
            "--mesh-port", str(port + 10000), "--log-level", "WARNING"]), cwd=repo, env=env,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(name, port, proc, log)
    wait_ready(server)
    return server


def run(server: Server, test: str, pipeline: int, requests: int, user: list[str]) -> float:
    """Microseconds of node CPU per request of one redis-benchmark run."""
    args = pinned(CLIENT_CPU, ["redis-benchmark", "-h", HOST, "-p", str(server.port), *user, "-t", test,
                               "-c", "50", "-n", str(requests), "-P", str(pipeline), "-r", "100000", "-q"])
    before = cpu_seconds(server.proc.pid)
    done = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0 or "error" in (done.stdout + done.stderr).lower():
        raise RuntimeError(f"redis-benchmark failed against {server.name}: {done.stdout}{done.stderr}")
    return (cpu_seconds(server.proc.pid) - before) / requests * 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", required=True, type=Path, help="a checkout of the code before ACLs")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("-n", "--requests", type=int, default=100_000, help="requests per -P 1 run (x4 at -P 16)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        before, after = start(a.before, work, "before"), start(REPO, work, "after")
        try:
            after.command("ACL", "SETUSER", "ops", "on", ">ops-pw", "~*", "&*", "+@all", "-@dangerous")
            after.command("ACL", "SETUSER", "app", "on", ">app-pw", "~key:*", "~counter:*", "+@all", "-@dangerous")
            runs = {"before": (before, []), "default": (after, []),
                    "lane": (after, ["--user", "ops", "-a", "ops-pw"]), "keyed": (after, ["--user", "app", "-a", "app-pw"])}
            found: dict[tuple[str, int, str], list[float]] = {}
            for repeat in range(a.repeat):
                order = list(runs) if repeat % 2 == 0 else list(reversed(runs))
                for test in TESTS:
                    for pipeline in (1, 16):
                        requests = a.requests * (4 if pipeline > 1 else 1)
                        for name in order:
                            server, user = runs[name]
                            found.setdefault((test, pipeline, name), []).append(
                                run(server, test, pipeline, requests, user))
        finally:
            before.stop()
            after.stop()
    print(f"node CPU per request, us (median of {a.repeat}); pure Python; redis-benchmark -c 50 -r 100000\n")
    print("| test | -P | before | default user | lane user | keyed user | default / before | lane / before "
          "| keyed / before |")
    print("|---|---|---|---|---|---|---|---|---|")
    for test in TESTS:
        for pipeline in (1, 16):
            before, default, lane, keyed = (statistics.median(found[(test, pipeline, n)])
                                            for n in ("before", "default", "lane", "keyed"))
            print(f"| {test.upper()} | {pipeline} | {before:.1f} | {default:.1f} | {lane:.1f} | {keyed:.1f} | "
                  f"{default / before:.2f}x | {lane / before:.2f}x | {keyed / before:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
