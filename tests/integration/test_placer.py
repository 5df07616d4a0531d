"""Ring placements in a worker process of low priority (mesh/placer.py): a real child, a real socket pair."""
from __future__ import annotations

import dataclasses
import hashlib
import os

import pytest

from mesh import election
from mesh.placer import WORKER_NICE, Placer
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
    swapped = dataclasses.replace(planned, tokens=((first, b), (second, a)) + planned.tokens[2:])
    assert placer.call("follows", cluster_map, swapped) is False        # (not what `plan` makes)
    assert placer.started == 1              # one worker answers every call


def test_the_worker_runs_at_a_lower_priority_than_the_node(placer, cluster_map):
    placer.call("rebalanced", cluster_map, cluster_map.epoch + 1)
    assert os.getpriority(os.PRIO_PROCESS, _worker_pid(placer)) == os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICE


def test_a_worker_that_dies_is_started_again(placer, cluster_map):
    placer.call("follows", cluster_map, cluster_map)
    first = _worker_pid(placer)
    os.kill(first, 9)
    placer._process.wait()
    assert placer.call("follows", cluster_map, cluster_map.with_member(_member(30))) is True
    assert _worker_pid(placer) != first and placer.started == 2


def test_a_failed_placement_is_an_error_and_the_worker_stays(placer, cluster_map):
    with pytest.raises(RuntimeError, match="failed in the worker"):
        placer.call("plan", cluster_map, [], ["not a member"], cluster_map.epoch + 1)
    pid = _worker_pid(placer)
    assert placer.call("follows", cluster_map, cluster_map) is False   # (no change: no successor)
    assert _worker_pid(placer) == pid
    with pytest.raises(ValueError):
        placer.call("exec", "anything")     # only the placements, by name


def test_close_ends_the_worker(placer, cluster_map):
    placer.call("follows", cluster_map, cluster_map)
    process = placer._process
    placer.close()
    assert process is not None and process.poll() is not None
