"""A member with room for 4 mesh peers in a cluster of 12 hears the others through relays.

`ulimit -n 84` leaves a node's mesh room for 4 SUBs besides the address it was told to --join
(hypercache/open_files.py), so it subscribes to 5 of its 11 peers. In a map of 12 it watches 8
members (mesh/watch.py) and its write lease counts the echoes of its 8 watchers. Without relays it
never heard the others, and this test fails at its first wait: the node was never admitted
("join stuck" for 120 s, on 6 December 2026). Now two
members with a link to each such peer publish again what it says for this node
(mesh/links.py `relay`, mesh/bus.py `Mesh._hear_unlinked`): it suspects nobody, takes writes for
the slots it leads, and, as the proposer (the lowest id), has a map without a dead member it has
no link to agreed. It is still called degraded: its files are short, and it says so.
"""
from __future__ import annotations

import re
import urllib.request

import pytest
from redis.crc import key_slot

from mesh import votes

from tests.nodes import agreed, call, cluster_info, nodes_lines, request, wait_until

# runs alone (Makefile): starved links timed against the node timeout
pytestmark = [pytest.mark.slow, pytest.mark.alone]

MEMBERS = 12
ROOM_FILES = (84, 84)       # room for 4 peers: open_files.plan(84, 84, 10_000, ...) -> mesh_peers 4
TIMEOUT = ("--node-timeout-ms", "2000")


def _relayed_in(node) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/metrics", timeout=5) as response:
        lines = [line for line in response.read().decode().splitlines()
                 if line.startswith('hypercache_mesh_relayed_total{direction="in"}')]
    return float(lines[0].split()[1]) if lines else 0.0


def _suspects(node) -> list[str]:
    """The members `node` shows in doubt in CLUSTER NODES (fail? or fail)."""
    return [line[0][:8] for line in nodes_lines(node) if "fail" in line[2]]


def _a_key_it_leads(node) -> str | None:
    """A key of a slot `node` leads, by its own CLUSTER SLOTS."""
    for first, last, primary, *_ in call(node, "CLUSTER", "SLOTS"):
        if primary[1] == node.port:
            return next(f"k{i}" for i in range(1_000_000) if first <= key_slot(f"k{i}".encode()) <= last)
    return None


def test_a_member_without_room_for_every_peer_hears_them_through_relays(node_factory, tmp_path):
    cluster = node_factory.start_cluster(MEMBERS - 1, *TIMEOUT)
    wait_until(lambda: agreed(cluster, MEMBERS - 1), timeout=120, interval=0.5,
               message=lambda: f"{MEMBERS - 1} members agreeing\n{node_factory.logs()}")
    # The lowest id: the crowded node proposes every map, and hears the promises and votes of the
    # members it has no link to through relays.
    data_dir = tmp_path / "crowded"
    data_dir.mkdir()
    (data_dir / "node.id").write_text("0" * 40 + "\n")
    crowded = node_factory.start(*TIMEOUT, join=cluster[0], http=True, nofile=ROOM_FILES, data_dir=data_dir)
    assert "the mesh to 4 peers" in crowded.logs()
    # Its id was written by hand, so it names no vote key (hypercache/identity.py), and it says so;
    # the others minted theirs from their keys, kept beside them, which relays can then check.
    assert "names no vote key" in crowded.logs(tail=None)
    for node in cluster:
        seed = bytes.fromhex((node.data_dir / "vote.key").read_text().strip())
        assert call(node, "CLUSTER", "MYID").decode() == votes.id_naming(votes.Signer(seed).public)
        assert (node.data_dir / "vote.key").stat().st_mode & 0o077 == 0
        assert "names no vote key" not in node.logs(tail=None)
    everyone = cluster + [crowded]
    wait_until(lambda: agreed(everyone, MEMBERS), timeout=120, interval=0.5,
               message=lambda: f"{MEMBERS} members agreeing\n{crowded.logs()}")
    refused = set(re.findall(r"mesh peer not subscribed to node=\S+ peer_address=\S+:(\d+)", crowded.logs(tail=None)))
    assert len(refused) >= MEMBERS - 1 - 5, crowded.logs()

    # Heard through relays for ten node timeouts' worth of their heartbeats: no member in doubt
    # there at any poll, and writable at every poll (its lease counts its watchers' echoes).
    logged = len(crowded.logs(tail=None))
    start = _relayed_in(crowded)
    problems: list[str] = []
    written: list[str] = []

    def heard_a_while() -> bool:
        suspects = _suspects(crowded)
        if suspects:
            problems.append(f"in doubt: {suspects}")
        key = _a_key_it_leads(crowded)
        if key is not None:     # (none while a move for balance takes its slots: nothing to ask then)
            reply = request(crowded, "SET", key, "v")
            # (a slot the map moved away since CLUSTER SLOTS, or whose data moves, is not the lease's)
            if reply == b"OK":
                written.append(key)
            elif not str(reply).startswith(("MOVED", "TRYAGAIN")):
                problems.append(f"SET {key}: {reply}")
        # (the unlinked peers it watches say a quiet heartbeat every node_timeout / 6, the others a
        # heartbeat with news now and then: relayed by two members each, this is several timeouts)
        return _relayed_in(crowded) - start >= 6 * 3 * 10
    wait_until(heard_a_while, timeout=120, interval=0.5, message=lambda: crowded.logs())
    assert not problems, (problems, crowded.logs())
    assert len(written) >= 10, f"{len(written)} writes taken"
    assert "member suspect" not in crowded.logs(tail=None)[logged:]
    info = cluster_info(crowded)
    assert info["hypercache_cluster_state"] == "degraded"
    assert "hears them only as other members relay them" in info["hypercache_cluster_state_reason"]

    # A member it has no link to dies: the crowded node, the proposer, has the survivors agree
    # on a map without it (the promises and votes of its unlinked members came through relays).
    ports = {int(port) for port in refused}
    victim = next(node for node in cluster[1:] if node.mesh_port in ports)
    victim.kill()
    survivors = [node for node in everyone if node is not victim]
    wait_until(lambda: agreed(survivors, MEMBERS - 1), timeout=120, interval=0.5,
               message=lambda: f"{MEMBERS - 1} survivors agreeing\n{crowded.logs()}")
