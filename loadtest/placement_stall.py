"""How late a node's timer runs while the node places joiners on the ring: in a thread, or in the worker.

A node places a batch of joiners (mesh/election.py `plan`, 0.1-1 s of CPU) two or
three times per batch. mesh/placer.py runs it in a worker process at nice 10; it
used to run in a thread of gevent's pool, sharing the GIL with the hub. This
measures what that means for the hub: a greenlet stands in for the heartbeat
timer, waking every 10 ms, and records how late each wake-up comes while
placements run back to back, each on a fresh batch of joiners (no cache hit).
The two ways alternate, round after round, optionally with busy processes
beside them (a loaded machine: `--burners`), and the table gives the medians
over the rounds of each round's median, 99th percentile and worst lateness,
and of the time a placement took.

    .venv/bin/python loadtest/placement_stall.py --members 70 --joiners 10 --rounds 5 --burners 0 4
"""
from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import hashlib  # noqa: E402
import multiprocessing  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mesh.placer import Placer, run_in_thread  # noqa: E402
from mesh.slotmap import Member, SlotMap  # noqa: E402

TICK_S = 0.01


def _member(index: int) -> Member:
    return Member(hashlib.sha1(f"stall-{index}".encode()).hexdigest(), "127.0.0.1", 7000 + index % 1000,
                  17000 + index % 1000, 9000 + index % 1000)


def _burn() -> None:
    while True:
        pass


def _round(slotmap: SlotMap, joiners: int, placements: int, first: int, place) -> tuple[list[float], list[float]]:
    """Run `placements` placements back to back while a ticker records its lateness; (lateness, durations)."""
    lateness: list[float] = []
    done = False

    def ticker() -> None:
        due = time.monotonic() + TICK_S
        while not done:
            gevent.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            lateness.append(max(0.0, now - due))
            due = now + TICK_S
    timer = gevent.spawn(ticker)
    gevent.sleep(TICK_S * 3)
    durations = []
    for batch in range(placements):
        newcomers = [_member(first + batch * joiners + k) for k in range(joiners)]
        started = time.monotonic()
        place("plan", (slotmap, (), newcomers, slotmap.epoch + 1))
        durations.append(time.monotonic() - started)
    done = True
    timer.join()
    return lateness, durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=70)
    parser.add_argument("--joiners", type=int, default=10)
    parser.add_argument("--placements", type=int, default=4, help="per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--burners", type=int, nargs="+", default=[0, 4],
                        help="busy processes running beside it (one table line each)")
    args = parser.parse_args()
    slotmap = SlotMap.single(_member(0), 2)
    for index in range(1, args.members):
        slotmap = slotmap.with_member(_member(index))
    placer = Placer("5e" * 20)
    ways = {"thread": lambda name, call_args: run_in_thread(name, call_args),
            "worker": lambda name, call_args: placer.call(name, *call_args)}
    ways["worker"]("follows", (slotmap, slotmap))      # (the worker's start is not a placement's cost)
    print(f"{args.members} members, {args.joiners} joiners a placement, {args.placements} placements a round, "
          f"{args.rounds} rounds; timer every {TICK_S * 1000:.0f} ms; medians over the rounds")
    print("burners  placed in   timer late: median    p99      worst   placement s")
    first = 100_000
    for burners in args.burners:
        workers = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(burners)]
        for worker in workers:
            worker.start()
        figures: dict[str, list[tuple[float, float, float, float]]] = {way: [] for way in ways}
        try:
            for _ in range(args.rounds):
                for way, place in ways.items():
                    lateness, durations = _round(slotmap, args.joiners, args.placements, first, place)
                    first += args.placements * args.joiners
                    lateness.sort()
                    figures[way].append((statistics.median(lateness), lateness[int(len(lateness) * 0.99)],
                                         lateness[-1], statistics.median(durations)))
        finally:
            for worker in workers:
                worker.terminate()
        for way, rows in figures.items():
            median, p99, worst, placed = (statistics.median(column) for column in zip(*rows))
            print(f"{burners:7d}  {way:9s}  {median * 1000:12.2f} ms {p99 * 1000:7.2f} ms {worst * 1000:7.1f} ms"
                  f"  {placed:9.3f}", flush=True)
    placer.close()


if __name__ == "__main__":
    main()
