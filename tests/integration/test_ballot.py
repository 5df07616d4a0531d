"""A node's ballot survives a restart, so it never votes twice in one epoch: the file, the bus, a real process."""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from mesh import ballot
from mesh.ballot import Ballot, BallotError
from mesh.bus import Mesh
from mesh.messages import digest
from mesh.slotmap import Member, SlotMap
from tests.integration.polling import wait_for
from tests.nodes import agreed, cluster_info as info, wait_until

# runs alone (Makefile): meshes on 50 ms ticks and 600 ms timeouts in one process
pytestmark = pytest.mark.alone

TIMEOUT_MS = 600
BEAT_S = 0.05


# -- the file ------------------------------------------------------------------------------

def test_missing_file_is_an_empty_ballot(tmp_path: Path):
    assert ballot.load(tmp_path / "ballot.json") == Ballot(0, 0)


def test_save_then_load_round_trips_and_leaves_no_tmp(tmp_path: Path):
    path = tmp_path / "ballot.json"
    ballot.save(path, Ballot(7, 6))
    ballot.save(path, Ballot(9, 9))
    assert ballot.load(path) == Ballot(9, 9)
    assert os.listdir(tmp_path) == ["ballot.json"]
    assert json.loads(path.read_text()) == {"voted_epoch": 9, "epoch": 9}


def test_the_last_vote_round_trips_with_its_map(tmp_path: Path):
    path = tmp_path / "ballot.json"
    voted = Ballot(9, 7, 9, 7, b"\x93\x01\x02")
    ballot.save(path, voted)
    assert ballot.load(path) == voted


@pytest.mark.parametrize("text", ["", "{", "[]", '{"voted_epoch": 3}', '{"voted_epoch": -1, "epoch": 0}',
                                  '{"voted_epoch": "3", "epoch": 0}',
                                  '{"voted_epoch": 3, "epoch": 0, "vote_ballot": 3, "vote_base": 0, "vote_map": "zz"}',
                                  '{"voted_epoch": 3, "epoch": 0, "vote_ballot": -3, "vote_base": 0, "vote_map": ""}'])
def test_a_damaged_file_is_refused_not_read_as_zero(tmp_path: Path, text: str):
    path = tmp_path / "ballot.json"
    path.write_text(text)
    with pytest.raises(BallotError):
        ballot.load(path)


def test_a_leftover_tmp_from_a_crash_does_not_matter(tmp_path: Path):
    path = tmp_path / "ballot.json"
    ballot.save(path, Ballot(4, 4))
    (tmp_path / "ballot.json.tmp").write_text('{"voted_ep')      # a crash mid-write
    assert ballot.load(path) == Ballot(4, 4)
    ballot.save(path, Ballot(5, 5))
    assert ballot.load(path) == Ballot(5, 5)


# -- the bus: in-process meshes on real zmq sockets ----------------------------------------------

def _node_id(index: int) -> str:
    return hashlib.sha1(f"ballot-{index}-{time.time_ns()}".encode()).hexdigest()


def _free_port() -> int:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _mesh(me: Member, join: list[tuple[str, int]], path: Path) -> Mesh:
    return Mesh(me, join, 2, TIMEOUT_MS, lambda: {}, lambda channel, message: None,
                heartbeat_interval_s=BEAT_S, ballot_path=path)




def test_votes_are_saved_and_a_restarted_mesh_will_not_vote_again(tmp_path: Path):
    members = [Member(_node_id(i), "127.0.0.1", _free_port(), _free_port(), 0) for i in range(3)]
    paths = [tmp_path / f"ballot-{i}.json" for i in range(3)]
    meshes: list[Mesh] = []
    try:
        for i, me in enumerate(members):
            mesh = _mesh(me, [("127.0.0.1", members[0].mesh_port)] if i else [], paths[i])
            mesh.start()
            meshes.append(mesh)
        wait_for(lambda: all(len(m.slotmap.members) == 3 for m in meshes)
              and len({digest(m.slotmap) for m in meshes}) == 1)
        epoch = meshes[0].slotmap.epoch
        assert epoch >= 1
        for mesh, path in zip(meshes, paths):
            saved = ballot.load(path)
            assert saved.epoch == epoch and saved.voted_epoch >= epoch
        # Whoever was a member when the last map was voted on has its vote on disk.
        voted = [ballot.load(p).voted_epoch for p in paths]
        assert max(voted) == epoch

        # "Restart" node 1: a new Mesh with the same id and ballot file, not started.
        restarted = _mesh(members[1], [("127.0.0.1", members[0].mesh_port)], paths[1])
        assert restarted.election.voted_epoch == ballot.load(paths[1]).voted_epoch >= epoch
        # Its last vote came back whole, and it refuses to vote below or again at a ballot it voted in.
        saved = ballot.load(paths[1])
        if saved.vote_map:
            assert restarted.election.vote is not None and restarted.election.vote[0] == saved.vote_ballot
        current = SlotMap.single(members[1], 2).with_member(members[0])
        base = SlotMap(0, 2, current.members, current.tokens)
        voted = restarted.election.voted_epoch
        rival = SlotMap(voted - 1, 2, current.members, current.tokens)
        assert not restarted.election.consider(rival, digest(rival), voted - 1, 0, base, acceptable=True)
        newer = SlotMap(voted + 1, 2, current.members, current.tokens)
        assert restarted.election.consider(newer, digest(newer), voted + 1, 0, base, acceptable=True)
        assert not restarted.election.consider(newer, digest(newer), voted + 1, 0, base, acceptable=True)
    finally:
        for mesh in meshes:
            mesh.stop()


# -- a real process ----------------------------------------------------------------------

def test_a_node_process_keeps_its_ballot_in_its_data_dir(node_factory):
    nodes = node_factory.start_cluster(3, "--node-timeout-ms", "1500")
    epoch = int(wait_until(lambda: agreed(nodes, 3), timeout=15, message=node_factory.logs))

    def saved() -> bool:
        ballots = [ballot.load(n.data_dir / ballot.FILE_NAME) for n in nodes]
        return all(b.epoch == epoch and b.voted_epoch >= epoch for b in ballots)
    wait_until(saved, timeout=5, message=node_factory.logs)
    # Restarted with the same data dir, it comes back and the cluster moves on without it voting twice.
    victim = nodes[2]
    before = ballot.load(victim.data_dir / ballot.FILE_NAME)
    victim.stop()
    wait_until(lambda: agreed(nodes[:2], 2), timeout=15, message=node_factory.logs)
    back = node_factory.restart(victim)
    wait_until(lambda: agreed(nodes[:2] + [back], 3), timeout=20, message=node_factory.logs)
    after = ballot.load(back.data_dir / ballot.FILE_NAME)
    assert after.voted_epoch >= before.voted_epoch
    assert after.epoch == int(info(back)["cluster_current_epoch"])
