"""Ring placements in a worker process of low priority (mesh/placer.py): a real child, a real socket pair."""
from __future__ import annotations

import dataclasses
import hashlib
import os

import signal
import time

import gevent
import pytest

from mesh import election
from mesh.placement_worker import WORKER_NICE
from mesh.placer import Placer, PlacerClosed
from mesh.slotmap import Member, SlotMap


def _member(index: int) -> Member:
    return Member(hashlib.sha1(f"placer-{index}".encode()).hexdigest(), "127.0.0.1", 7000 + index, 17000 + index,
                  9000 + index)


@pytest.fixture()
def cluster_map() -> SlotMap:
    slotmap = SlotMap.single(_member(0), 2)
    for index in range(1, 12):
        slotmap = slotmap.with_member(_member(index))
    return slotmap


@pytest.fixture()
def placer():
    placer = Placer("ab" * 20)
    yield placer
    placer.close()


def _worker_pid(placer: Placer) -> int:
    assert placer._process is not None
    return placer._process.pid


def test_the_worker_places_what_the_node_would(placer, cluster_map):
    joiners = [_member(20), _member(21)]
    planned = placer.call("plan", cluster_map, [_member(3).node_id], joiners, cluster_map.epoch + 1)
    assert planned == election.plan(cluster_map, [_member(3).node_id], joiners, cluster_map.epoch + 1)
    assert planned.owners == election.plan(cluster_map, [_member(3).node_id], joiners, cluster_map.epoch + 1).owners
    assert placer.call("follows", cluster_map, planned) is True
    (first, a), (second, b) = planned.tokens[:2]
    assert a != b       # (normalized tokens: each next token is another member's)
    swapped = dataclasses.replace(planned, tokens=((first, b), (second, a)) + planned.tokens[2:])
    assert placer.call("follows", cluster_map, swapped) is False        # (not what `plan` makes)
    assert placer.counters == {"placer_workers_started": 1}     # one worker answers every call


def test_the_worker_runs_at_a_lower_priority_than_the_node(placer, cluster_map):
    placer.call("rebalanced", cluster_map, cluster_map.epoch + 1)
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, _worker_pid(placer)) == min(19, ours + WORKER_NICE)


def test_a_worker_that_dies_is_started_again(placer, cluster_map):
    placer.call("follows", cluster_map, cluster_map)
    first = _worker_pid(placer)
    os.kill(first, 9)
    placer._process.wait()
    assert placer.call("follows", cluster_map, cluster_map.with_member(_member(30))) is True
    assert _worker_pid(placer) != first and placer.counters["placer_workers_started"] == 2


def test_a_failed_placement_is_an_error_and_the_worker_stays(placer, cluster_map):
    with pytest.raises(RuntimeError, match="failed in the worker"):
        placer.call("plan", cluster_map, [], ["not a member"], cluster_map.epoch + 1)
    pid = _worker_pid(placer)
    assert placer.call("follows", cluster_map, cluster_map) is False   # (no change: no successor)
    assert _worker_pid(placer) == pid
    with pytest.raises(ValueError):
        placer.call("exec", "anything")     # only the placements, by name


def test_close_ends_the_worker_for_good(placer, cluster_map):
    placer.call("follows", cluster_map, cluster_map)
    process = placer._process
    placer.close()
    assert process is not None and process.poll() is not None
    with pytest.raises(PlacerClosed):
        placer.call("follows", cluster_map, cluster_map)
    assert placer._process is None and placer.counters["placer_workers_started"] == 1


def test_a_call_cut_short_leaves_no_answer_behind(placer, cluster_map):
    # a greenlet killed while the worker places: the next call must not read that answer as its own
    joiners = [_member(100 + k) for k in range(40)]        # (~0.1 s of placing: killed halfway)
    placer.call("follows", cluster_map, cluster_map)       # (a worker running, so the kill lands in the wait)
    asking = gevent.spawn(placer.call, "plan", cluster_map, [], joiners, cluster_map.epoch + 1)
    gevent.sleep(0.01)
    asking.kill()
    assert placer.call("follows", cluster_map, cluster_map) is False


def test_a_worker_that_makes_no_progress_is_replaced(cluster_map):
    # (stopped: not one tick of CPU while it owes an answer; a new worker's start is not counted)
    placer = Placer("cd" * 20, deadline_s=0.5)
    try:
        placer.call("follows", cluster_map, cluster_map)      # (started, and ready)
        os.kill(_worker_pid(placer), signal.SIGSTOP)
        stopped = _worker_pid(placer)
        with pytest.raises(RuntimeError, match="no progress"):
            placer.call("follows", cluster_map, cluster_map)
        assert placer.call("follows", cluster_map, cluster_map) is False
        assert _worker_pid(placer) != stopped
    finally:
        placer.close()


def test_the_hub_keeps_running_while_the_worker_places(placer, cluster_map):
    # (not a timing test: only that other greenlets run at all during a placement)
    placer.start()
    ticks = []
    ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.001)) for _ in range(10_000)])
    joiners = [_member(60 + k) for k in range(8)]
    placer.call("plan", cluster_map, [], joiners, cluster_map.epoch + 1)
    ticker.kill()
    assert ticks


def test_a_worker_that_places_slowly_is_left_to_finish(cluster_map):
    # (a placement much longer than the deadline, with CPU all along: slow is not hung; the worker
    # needs one tick of CPU in each half second, even at nice 10 on a loaded machine)
    placer = Placer("ef" * 20, deadline_s=0.5, progress_every_s=0.1)
    try:
        placer.start()
        joiners = [_member(200 + k) for k in range(200)]       # (~3 s of CPU here)
        started = time.monotonic()
        planned = placer.call("plan", cluster_map, [], joiners, cluster_map.epoch + 1)
        assert time.monotonic() - started > 0.5                 # (the deadline did pass meanwhile)
        assert len(planned.members) == len(cluster_map.members) + len(joiners)
        assert placer.counters == {"placer_workers_started": 1}
    finally:
        placer.close()


def test_a_stopped_worker_is_replaced_even_while_a_big_request_is_on_its_way(cluster_map):
    # (a request bigger than the socket holds: the node's sending waits on the worker's progress too)
    placer = Placer("0f" * 20, deadline_s=0.5, progress_every_s=0.1)
    try:
        placer.call("follows", cluster_map, cluster_map)      # (started, and ready)
        os.kill(_worker_pid(placer), signal.SIGSTOP)
        nobody = ["0" * 40] * 200_000                           # (~several MB pickled)
        with pytest.raises(RuntimeError, match="no progress"):
            placer.call("plan", cluster_map, nobody, [], cluster_map.epoch + 1)
        assert placer.call("follows", cluster_map, cluster_map) is False
        assert placer.counters["placer_workers_started"] == 2
    finally:
        placer.close()
