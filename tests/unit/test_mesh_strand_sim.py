"""The races a review found in the first version of mesh/strand.py, replayed in virtual time.

Each cuts a formed cluster at a chosen instant (monkeypatching the moment a proposer decides a
map), then checks every 10 ms that no member is writable while a live member holds a newer map
without it (a split brain: both would serve its slots). All three split before their fix.
"""
from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "loadtest"))
import mesh_sim  # noqa: E402
from mesh.bus import Mesh  # noqa: E402
from mesh.messages import Heartbeat, Message  # noqa: E402

TIMEOUT_MS = 1000


def settled(members: int, seed: int) -> mesh_sim.SimCluster:
    network = mesh_sim.Network(seed=seed)
    cluster, formed_s, _ = mesh_sim.form(network, members, TIMEOUT_MS, 0.25, 60 + members)
    assert formed_s is not None
    network.run_until(network.now + 2 * TIMEOUT_MS / 1000)
    return cluster


def cut(cluster: mesh_sim.SimCluster, side: set[str], other: set[str]) -> None:
    for node_id in side:
        cluster.members[node_id].links.blocked |= other
    for node_id in other:
        cluster.members[node_id].links.blocked |= side


def split(cluster: mesh_sim.SimCluster, seconds: float) -> set[str]:
    """The members writable, at some 10 ms step, while a live member held a newer map without them."""
    network = cluster.network
    end = network.now + seconds
    both: set[str] = set()
    while network.now < end:
        network.run_until(network.now + 0.01)
        live = cluster.live()
        for mesh in live:
            if mesh.accepting_writes() and mesh.slotmap.has_member(mesh.me.node_id) and any(
                    other.slotmap.epoch > mesh.slotmap.epoch and not other.slotmap.has_member(mesh.me.node_id)
                    for other in live):
                both.add(mesh.me.node_id)
    return both


def drop(monkeypatch: pytest.MonkeyPatch, lost: Callable[[str, Message], bool]) -> None:
    """Lose the messages `lost(receiver, message)` names, relayed copies too."""
    arrive = mesh_sim.SimLinks.arrive

    def arrive_unless_lost(self, message, source, *args, **kwargs):
        if not lost(self.me.node_id, message):
            arrive(self, message, source, *args, **kwargs)
    monkeypatch.setattr(mesh_sim.SimLinks, "arrive", arrive_unless_lost)


def on_decide(monkeypatch: pytest.MonkeyPatch, action: Callable[[Mesh, object], bool]) -> dict:
    """Run `action(mesh, winner)` as a member decides a map, until it returns True once."""
    fired: dict = {}
    decide = Mesh._decide

    def decide_then(self, winner, base, ballot, map_digest):
        if not fired and action(self, winner):
            fired["at"] = self._clock()
        return decide(self, winner, base, ballot, map_digest)
    monkeypatch.setattr(Mesh, "_decide", decide_then)
    return fired


def test_a_member_holding_the_map_before_several_removals_is_not_removed_by_a_minority_of_that_map(monkeypatch):
    # 20 members; D (4) is cut off and the others remove it (map E'). As the proposer decides E',
    # the cut becomes {M, S (6), D} against B (9): M and S voted for E' and never got it, so they
    # hold E (D in it), and M, stranded, had 11 of E's 20 answering its roll calls, while the 9 of
    # B, a majority of E' (16), removed it by its silence. Now M's stranded lease counts a majority
    # of the map it voted for (E') too, and a member is judged by its silence only when it is known
    # to hold or to have voted for the judge's map (Mesh._majorities_meet).
    cluster = settled(20, seed=0)
    ids = sorted(cluster.members)
    m, b = ids[9], set(ids[0:9])
    s, d = set(ids[10:14]) | set(ids[18:20]), set(ids[14:18])
    drop(monkeypatch, lambda receiver, message: receiver == ids[8] and message.sender == m)
    cluster.network.run_until(cluster.network.now + 4 * TIMEOUT_MS / 1000)
    cut(cluster, d, set(ids) - d)

    def reshape(mesh: Mesh, winner) -> bool:
        if mesh.me.node_id not in b or d & {member.node_id for member in winner.members}:
            return False
        for node in cluster.members.values():
            node.links.blocked = set()
        cut(cluster, {m} | s | d, b)
        return True
    fired = on_decide(monkeypatch, reshape)
    began = cluster.network.now
    while not fired:
        cluster.network.run_until(cluster.network.now + 0.01)
        assert cluster.network.now - began < 20
    assert split(cluster, 12) == set()


def test_a_verdict_on_a_silent_member_is_taken_back_by_the_next_map(monkeypatch):
    # A joiner J lands next to M, so in the map E'' that admits it M swaps a watcher W for J. The
    # cut comes as the proposer decides E'': M, its E'' watchers and J on one side; the rest voted
    # for E'' but hold E, judge M by E's watchers (W reports it), hear nothing (M is not stranded:
    # its E'' watchers are all with it) and hold it dead; they then adopt E'' and removed M while
    # its lease held. Now each new map takes such verdicts back (Membership.revoke_unheard).
    members = 26
    cluster = settled(members, seed=0)
    ids = sorted(cluster.members)
    joiner = hashlib.sha1(f"sim-{members}".encode()).hexdigest()
    place = sum(1 for node_id in ids if node_id < joiner)
    m, w = ids[place], ids[(place - 4) % members]
    block = {ids[(place + k) % members] for k in range(-3, 5)} | {joiner}
    rest = set(ids) - block
    drop(monkeypatch, lambda receiver, message: receiver == w and message.sender == m)

    def cut_at_admission(mesh: Mesh, winner) -> bool:
        if not winner.has_member(joiner):
            return False
        cut(cluster, block, rest)
        return True
    fired = on_decide(monkeypatch, cut_at_admission)
    seed_member = cluster.members[ids[0]].me
    cluster.start([(seed_member.host, seed_member.mesh_port)])
    began = cluster.network.now
    while not fired:
        cluster.network.run_until(cluster.network.now + 0.01)
        assert cluster.network.now - began < 20
    assert split(cluster, 15) == set()


def test_a_watcher_that_holds_a_member_suspect_does_not_answer_its_roll_calls(monkeypatch):
    # M's heartbeats (big) never reach 4 of its watchers W, while its small roll calls do (an MTU
    # black hole), and 7 far members are cut from M. W held M suspect and voted for its removal,
    # yet answered its roll calls: M's stranded lease counted them. Now only a member that holds
    # the caller alive answers.
    cluster = settled(20, seed=0)
    ids = sorted(cluster.members)
    m, watchers, far = ids[9], set(ids[10:14]), set(ids[14:20]) | {ids[0]}
    drop(monkeypatch, lambda receiver, message: receiver in watchers and message.sender == m
         and isinstance(message, Heartbeat))
    cut(cluster, {m}, far)
    assert split(cluster, 15) == set()


def test_a_proposer_deaf_to_a_member_the_others_hear_does_not_remove_it():
    # A closed mesh (no relays): Y's messages stop reaching the proposer P and one of Y's watchers.
    # That watcher reports Y, P hears nothing from it and holds it dead on its silence; the others
    # hear Y's roll calls. P once proposed Y's removal alone, its own vote carried the map through
    # later ballots, and Y was removed (a review). Now P waits for a majority holding Y dead so.
    cluster = settled(20, seed=1)
    for mesh in cluster.live():
        mesh.links.relaying = False
    ids = sorted(cluster.members)
    proposer = ids[0]
    watchers = cluster.members[proposer].membership.watchers
    assert watchers is not None
    y = next(node_id for node_id in ids[1:] if proposer not in watchers[node_id])
    deaf_watcher = sorted(w for w in watchers[y] if w != proposer)[0]
    cluster.members[proposer].links.blocked.add(y)
    cluster.members[deaf_watcher].links.blocked.add(y)
    assert split(cluster, 8) == set()
    assert all(mesh.slotmap.has_member(y) for mesh in cluster.live())
    assert cluster.members[y].accepting_writes()
