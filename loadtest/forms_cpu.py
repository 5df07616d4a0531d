#!/usr/bin/env python3
"""CPU per command of the node's hot path in-process, in both forms of the source, in one run.

No sockets: each form runs in its own process (HYPERCACHE_PURE=1 for "python"), pinned
to one cpu, feeding 16-request pipelines through the RESP parser and the dispatcher of
a one-member node (tests/unit/typeharness.py's), and reports the process CPU time per
command. The forms alternate (order flipped every repeat); medians are printed. What
this leaves out is what redis-benchmark adds: the kernel's socket work and the hub.

    python3 loadtest/forms_cpu.py              # 5 repeats of 64k commands a test
    python3 loadtest/forms_cpu.py --repeat 1   # a short run
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CPU = "1"
PIPELINE = 16
TESTS = {   # name -> the arguments of the n-th request
    "GET": lambda n: [b"GET", b"key:%012d" % (n % 100_000)],
    "SET": lambda n: [b"SET", b"key:%012d" % (n % 100_000), b"xxx"],
    "HSET": lambda n: [b"HSET", b"myhash", b"element:%012d" % (n % 100_000), b"xxx"],
    "LPUSH": lambda n: [b"LPUSH", b"mylist", b"xxx"],
    "LPOP": lambda n: [b"LPOP", b"mylist"],
    "SADD": lambda n: [b"SADD", b"myset", b"element:%012d" % (n % 100_000)],
    "SPOP": lambda n: [b"SPOP", b"myset"],
    "ZADD": lambda n: [b"ZADD", b"myzset", b"%d" % (n % 1000), b"element:%012d" % (n % 100_000)],
}


def encode(args: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def measure(commands: int) -> dict[str, float]:
    """In this process: microseconds of CPU per command for every test, in TESTS's order."""
    sys.path.insert(0, str(REPO))
    from hypercache import compiled
    from hypercache.resp import Limits, RequestParser
    from tests.unit.typeharness import Harness
    harness = Harness()
    session = harness.session()
    result = {"form": compiled.FORM}
    for name, request in TESTS.items():
        reads = [b"".join(encode(request(i * PIPELINE + j)) for j in range(PIPELINE))
                 for i in range(commands // PIPELINE)]
        parser = RequestParser(Limits(512 << 20, 1 << 30), authenticated=True)
        out: list[bytes] = []
        started = time.process_time()
        for data in reads:
            harness.dispatcher.run(session, parser.feed(data), out)
            out.clear()
        result[name] = (time.process_time() - started) / len(reads) / PIPELINE * 1e6
    return result


def run_form(form: str, commands: int) -> dict:
    env = dict(os.environ, HYPERCACHE_PURE="1" if form == "python" else "0")
    args = [sys.executable, __file__, "--child", str(commands)]
    if shutil.which("taskset") and (os.cpu_count() or 1) > int(CPU):
        args = ["taskset", "-c", CPU, *args]
    done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=600, check=True)
    got = json.loads(done.stdout)
    if got["form"].split(" ")[0] != form:
        raise RuntimeError(f"asked for {form}, the process ran {got['form']}: `make compiled` builds it")
    return got


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("-n", "--commands", type=int, default=64_000, help="commands per test and run")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(measure(a.child)))
        return 0
    forms = ["python", "mypyc"]
    runs: dict[str, list[dict]] = {form: [] for form in forms}
    for repeat in range(a.repeat):
        for form in (forms if repeat % 2 == 0 else forms[::-1]):
            runs[form].append(run_form(form, a.commands))
            print(f"  repeat {repeat + 1}/{a.repeat} {form}", flush=True)
    print(f"\nCPU per command in-process, median of {a.repeat} (us; -P {PIPELINE}, parser + dispatcher + store)")
    print("| test  | python | mypyc | python / mypyc |")
    print("|-------|--------|-------|----------------|")
    for name in TESTS:
        py, mc = (statistics.median(run[name] for run in runs[form]) for form in forms)
        print(f"| {name:<5} | {py:6.2f} | {mc:5.2f} | {py / mc:13.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
