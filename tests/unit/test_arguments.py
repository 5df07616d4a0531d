"""parse_floats (ZADD's scores in one pass) answers exactly as parse_float one by one, errors included."""
from __future__ import annotations

import random

import pytest

from hypercache.arguments import NOT_FLOAT, parse_float, parse_floats
from hypercache.reply import CommandError

SHAPES = [b"1", b"-2", b"3.5", b".5", b"5.", b"-0", b"007", b"1e5", b"inf", b"-inf", b"1.2.3", b".", b"-",
          b"", b" 1", b"1 ", b"nan", b"9" * 400, b"-" + b"9" * 400, b"1 2", b"-.", b"1_0", b"\xff"]


def _one_by_one(raws: list[bytes]):
    try:
        return [parse_float(raw) for raw in raws]
    except CommandError as error:
        return str(error)


def _at_once(raws: list[bytes]):
    try:
        return parse_floats(raws)
    except CommandError as error:
        return str(error)


@pytest.mark.parametrize("seed", range(20))
def test_parse_floats_is_parse_float_of_each(seed):
    rng = random.Random(seed)
    for _ in range(200):
        raws = [rng.choice(SHAPES[:7] * 5 + SHAPES) for _ in range(rng.randint(0, 60))]
        assert _at_once(raws) == _one_by_one(raws), raws


def test_a_long_run_of_numbers_with_a_miss_at_the_end_is_refused():
    # (the pattern must not backtrack into each number: an ambiguous one took exponential time here)
    assert _at_once([b"1" * 1000] * 1000 + [b"x"]) == NOT_FLOAT
    assert parse_floats([b"%d" % i for i in range(1000)]) == [float(i) for i in range(1000)]
