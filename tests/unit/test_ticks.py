"""mesh/ticks.py: the wall clock's next multiple of a period, fed values."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from mesh.ticks import next_tick


def test_the_next_multiple_and_the_wait_until_it():
    assert next_tick(0.25, 100.1) == (401, pytest.approx(0.15))
    assert next_tick(1.0, 7.75) == (8, pytest.approx(0.25))


def test_on_a_multiple_it_waits_a_whole_period_not_zero():
    number, wait = next_tick(0.5, 10.0)
    assert number == 21 and wait == pytest.approx(0.5)
    # (where the float division rounds across a multiple, the number follows the wait)
    for period, wall in ((0.05, 2.15), (1 / 3, 7 / 3)):
        number, wait = next_tick(period, wall)
        assert 0 < wait <= period and number * period == pytest.approx(wall + wait)


@given(period=st.sampled_from([0.05, 0.25, 1 / 3, 1.0]), wall=st.floats(0, 2e9))
def test_the_wait_is_within_one_period_and_lands_on_its_multiple(period, wall):
    number, wait = next_tick(period, wall)
    assert 0 < wait <= period
    assert number * period == pytest.approx(wall + wait, abs=1e-6)
    # (two timers of one period reading the clock a little apart wake for the same multiple)
    if wait > 0.01:
        assert next_tick(period, wall + 0.005)[0] == number
