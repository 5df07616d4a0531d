"""Local health awareness (mesh/awareness.py): a pure score, fed late ticks and refutations."""
from __future__ import annotations

from mesh.awareness import CALM_S, MAX_SCORE, LocalHealth

TIMEOUT = 3.0


def test_a_node_on_time_applies_node_timeout():
    health = LocalHealth(0.0)
    for step in range(1, 100):
        health.tick(step * 0.25)
    assert health.score == 0
    assert health.scaled(TIMEOUT) == TIMEOUT


def test_each_late_tick_adds_a_node_timeout_up_to_the_cap():
    health = LocalHealth(0.0)
    health.late(1.0)
    assert health.scaled(TIMEOUT) == 2 * TIMEOUT
    health.late(1.5)
    assert health.scaled(TIMEOUT) == 3 * TIMEOUT
    for step in range(20):
        health.late(2.0 + step * 0.5)
    assert health.score == MAX_SCORE
    assert health.scaled(TIMEOUT) == (MAX_SCORE + 1) * TIMEOUT
    assert health.raised == 22


def test_the_score_falls_a_step_per_calm_second():
    health = LocalHealth(0.0)
    for _ in range(3):
        health.late(10.0)
    health.tick(10.0 + CALM_S / 2)
    assert health.score == 3                # not a whole calm second yet
    health.tick(10.0 + CALM_S)
    assert health.score == 2
    health.tick(10.0 + CALM_S * 1.5)
    assert health.score == 2                # the step was counted from the first one's end
    health.tick(10.0 + CALM_S * 2)
    assert health.score == 1
    health.tick(10.0 + CALM_S * 9)          # a long quiet stretch (ticks may be sparse): the rest at once
    assert health.score == 0


def test_a_node_late_more_often_than_it_calms_stays_doubtful():
    # a starved machine: a late tick every 0.8 s
    health = LocalHealth(0.0)
    now = 0.0
    for _ in range(40):
        now += 0.4
        health.tick(now)
        now += 0.4
        health.late(now)
    assert health.score == MAX_SCORE


def test_one_stall_now_and_then_does_not_keep_it_doubtful():
    # a late tick every 3 s: back to on time within a second of each
    health = LocalHealth(0.0)
    now = 0.0
    scores = []
    for _ in range(10):
        health.late(now)
        for _ in range(12):
            now += 0.25
            health.tick(now)
            scores.append(health.score)
    assert max(scores) == 1
    assert scores.count(0) > scores.count(1)
