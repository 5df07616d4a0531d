"""A member with room for 4 mesh peers in a cluster of 12 hears the other 7 through relays.

`ulimit -n 84` leaves a node's mesh room for 4 SUBs besides the address it was told to --join
(hypercache/open_files.py), so it subscribes to 5 of its 11 peers. In a map of 12 it watches 8
members (mesh/watch.py) and its write lease counts the echoes of its 8 watchers. Without relays it
never heard the others, and this test fails at its first wait: the node was never admitted
("join stuck" for 120 s, on 6 December 2026). Now two
members with a link to each such peer publish again what it says for this node
(mesh/links.py `relay`, mesh/bus.py `Mesh._hear_unlinked`): it suspects nobody, takes writes for
the slots it leads, and when a member it has no link to dies, it learns that and holds the same
map as the others. It is still called degraded: its files are short, and it says so.
"""
from __future__ import annotations

import re
import urllib.request

import pytest
from redis.crc import key_slot

from tests.blackbox.test_replication import owners_of
from tests.nodes import agreed, call, cluster_info, nodes_lines, wait_until

pytestmark = pytest.mark.slow

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


def test_a_member_without_room_for_every_peer_hears_them_through_relays(node_factory):
    cluster = node_factory.start_cluster(MEMBERS - 1, *TIMEOUT)
    wait_until(lambda: agreed(cluster, MEMBERS - 1), timeout=120, interval=0.5,
               message=lambda: f"{MEMBERS - 1} members agreeing\n{node_factory.logs()}")
    crowded = node_factory.start(*TIMEOUT, join=cluster[0], http=True, nofile=ROOM_FILES)
    assert "the mesh to 4 peers" in crowded.logs()
    everyone = cluster + [crowded]
    wait_until(lambda: agreed(everyone, MEMBERS), timeout=120, interval=0.5,
               message=lambda: f"{MEMBERS} members agreeing\n{crowded.logs()}")
    refused = set(re.findall(r"mesh peer not subscribed to node=\S+ peer_address=\S+:(\d+)", crowded.logs(tail=None)))
    assert len(refused) >= MEMBERS - 1 - 5, crowded.logs()

    # Heard through relays for ten node timeouts' worth of their heartbeats: no member in doubt
    # there at any poll, and writable throughout (its lease counts its watchers' echoes).
    led = [slot for slot, owners in owners_of(everyone).items() if owners[0] is crowded]
    assert led
    key = next(f"k{i}" for i in range(100_000) if key_slot(f"k{i}".encode()) in led)
    start = _relayed_in(crowded)

    def heard_a_while() -> bool:
        assert not _suspects(crowded), (_suspects(crowded), crowded.logs())
        assert call(crowded, "SET", key, "v") == b"OK"
        # (each peer says a quiet heartbeat every node_timeout / 6: 7 unlinked peers, 2 relayers)
        return _relayed_in(crowded) - start >= 7 * 3 * 10
    wait_until(heard_a_while, timeout=120, interval=0.5, message=lambda: crowded.logs())
    assert "member suspect" not in crowded.logs(tail=None)
    info = cluster_info(crowded)
    assert info["hypercache_cluster_state"] == "degraded"
    assert "hears them only as other members relay them" in info["hypercache_cluster_state_reason"]

    # A member it has no link to dies: the crowded node learns it and holds the others' map.
    ports = {int(port) for port in refused}
    victim = next(node for node in cluster[1:] if node.mesh_port in ports)
    victim.kill()
    survivors = [node for node in everyone if node is not victim]
    wait_until(lambda: agreed(survivors, MEMBERS - 1), timeout=120, interval=0.5,
               message=lambda: f"{MEMBERS - 1} survivors agreeing\n{crowded.logs()}")
