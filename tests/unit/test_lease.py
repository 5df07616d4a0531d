"""mesh/lease.py: the write lease counts from when evidence arrived, and a stalled hub's evidence from the stall."""
from __future__ import annotations

import math

from hypothesis import given, strategies as st

from mesh.lease import ArrivalClock, SentBeats, lease_until, margin_s

BEAT = 0.25
STALL = 0.25


def test_on_time_a_message_arrived_when_it_is_read():
    clock = ArrivalClock(BEAT, STALL, now=100.0)
    for i in range(1, 10):
        clock.pulse(100.0 + i * BEAT + (0.3 if i == 5 else 0))     # late, but less than a stall
    assert clock.arrived_by(102.3) == 102.3


def test_read_during_a_stall_the_timer_has_not_seen_it_counts_from_the_last_pulse():
    clock = ArrivalClock(BEAT, STALL, now=100.0)
    clock.pulse(100.25)
    # the hub stalled at ~100.3 for 2.5 s; a reader runs before the timer does
    assert clock.arrived_by(102.8) == 100.25


def test_read_just_after_the_timer_saw_the_stall_still_counts_from_its_start():
    clock = ArrivalClock(BEAT, STALL, now=100.0)
    clock.pulse(100.25)
    clock.pulse(102.8)                          # the timer first: it sees the gap
    assert clock.arrived_by(102.8) == 100.25
    assert clock.arrived_by(102.8 + BEAT / 2) == 100.25   # queued ones are read over a few turns
    clock.pulse(103.05)
    clock.pulse(103.3)
    assert clock.arrived_by(103.4) == 103.4    # well past the stall: read is arrival again


@given(st.lists(st.floats(0, BEAT + 3, allow_nan=False), min_size=1, max_size=30), st.floats(0, 3))
def test_the_arrival_is_never_later_than_the_read_nor_than_the_last_time_the_hub_ran(gaps, read_after):
    clock = ArrivalClock(BEAT, STALL, now=0.0)
    now = 0.0
    for gap in gaps:
        now += gap
        clock.pulse(now)
    read = now + read_after
    arrived = clock.arrived_by(read)
    assert arrived <= read
    if read_after > BEAT + STALL:
        assert arrived <= now                   # the hub was not seen running after `now`


def test_the_lease_is_the_majoritys_oldest_recent_arrival_plus_the_timeout_less_the_margin():
    margin = margin_s(BEAT, 3.0)
    assert margin == 0.25 and margin_s(BEAT, 0.6) == 0.15
    # five members: this node (inf) and four peers; a majority is three
    assert lease_until([math.inf, 10.0, 9.0, 4.0, 1.0], 5, 3.0, margin) == 9.0 + 3.0 - 0.25
    assert lease_until([math.inf, 10.0], 5, 3.0, margin) == -math.inf
    assert lease_until([math.inf], 1, 3.0, margin) == math.inf        # a lone node always leads


def test_an_echo_is_worth_when_its_heartbeat_was_sent_and_only_recent_ones_are_remembered():
    beats = SentBeats(keep=3)
    for seq, at in ((10, 1.0), (11, 1.25), (12, 1.5), (13, 1.75)):
        beats.sent(seq, at)
    assert beats.sent_at(12) == 1.5
    assert beats.sent_at(10) == -math.inf      # forgotten: older than the lease could use
    assert beats.sent_at(99) == -math.inf      # never sent (or another node's seq): no evidence
