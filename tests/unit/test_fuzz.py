"""A short run of the fuzzer (tests/fuzz): the RESP parser and the mesh decoder hold their invariants.

`make fuzz` runs the same targets for longer (FUZZ_SECONDS) with a new seed
each time; here the seed is fixed so that a failure can be replayed.
"""
from __future__ import annotations

import random

import pytest

from tests.fuzz.run import fuzz
from tests.fuzz.targets import TARGETS, mutate

SECONDS = 3.0


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_a_short_fuzz_run_finds_nothing(name, tmp_path):
    tried, failures = fuzz(name, SECONDS, seed=14, out=tmp_path)
    print(f"\n{name}: {tried} inputs")
    assert tried > 500
    assert failures == [], [path.read_bytes()[:200] for path in failures]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_seeds_hold_the_invariants(name):
    target, seeds = TARGETS[name]
    for seed in seeds:
        target(seed, random.Random(0))


def test_a_target_that_breaks_is_caught(tmp_path, monkeypatch):
    """The harness reports a broken invariant (a fuzzer that cannot fail finds nothing)."""
    def broken(data, rng):
        assert b"\r\n" not in data[4:]

    monkeypatch.setitem(TARGETS, "broken", (broken, [b"*1\r\n$4\r\nPING\r\n"]))
    tried, failures = fuzz("broken", 1.0, seed=1, out=tmp_path)
    assert failures and failures[0].exists()


def test_mutations_stay_bounded():
    rng = random.Random(3)
    data = b"*1\r\n$4\r\nPING\r\n"
    for _ in range(2000):
        data = mutate(data, rng, [data])
        assert len(data) <= 1 << 16
