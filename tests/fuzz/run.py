"""A mutation fuzzer for the targets of tests/fuzz/targets.py, run for a set time (`make fuzz`).

    .venv/bin/python -m tests.fuzz.run --seconds 60            # every target, split evenly
    .venv/bin/python -m tests.fuzz.run --target resp --seconds 300 --seed 7

Inputs that broke an invariant are written to .fuzz/<target>-<n>.bin (replay
one with --replay FILE) and the run exits 1. Inputs are mutated from the seeds
and from earlier inputs that the target accepted, so the fuzzer keeps building
on well-formed requests and messages.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from pathlib import Path

from tests.fuzz.targets import TARGETS, mutate

OUT = Path(".fuzz")
POOL_SIZE = 512


def fuzz(name: str, seconds: float, seed: int, out: Path = OUT) -> tuple[int, list[Path]]:
    """Run one target for `seconds`; (inputs tried, files of the failing ones)."""
    target, seeds = TARGETS[name]
    rng = random.Random(seed)
    pool = list(seeds)
    failures: list[Path] = []
    tried = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = mutate(rng.choice(pool), rng, seeds)
        tried += 1
        try:
            target(data, random.Random(tried))
        except Exception:  # noqa: BLE001 - every failure is a finding
            out.mkdir(exist_ok=True)
            path = out / f"{name}-{seed}-{tried}.bin"
            path.write_bytes(data)
            failures.append(path)
            print(f"{name}: input {tried} broke the target, saved to {path}", file=sys.stderr)
            traceback.print_exc(limit=3)
            if len(failures) >= 10:
                break
            continue
        if len(pool) < POOL_SIZE:
            pool.append(data)
        else:
            pool[rng.randrange(POOL_SIZE)] = data
    return tried, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--target", choices=sorted(TARGETS), action="append")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--replay", type=Path)
    args = parser.parse_args()
    names = args.target or sorted(TARGETS)
    if args.replay is not None:
        for name in names:
            TARGETS[name][0](args.replay.read_bytes(), random.Random(0))
        print("no failure")
        return 0
    failed = False
    for name in names:
        tried, failures = fuzz(name, args.seconds / len(names), args.seed)
        print(f"{name}: {tried} inputs in {args.seconds / len(names):.0f} s (seed {args.seed}), "
              f"{len(failures)} failures")
        failed = failed or bool(failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
