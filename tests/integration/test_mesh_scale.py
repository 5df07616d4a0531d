"""48 real nodes on 127.0.0.1 form one cluster, then lose 3 at once and agree again without them.

The mesh at a size the rest of the suite never reaches, with watchers in play
(mesh/watch.py: each member hears 8 of the 47 others): every member must end
up holding the same map of 48 members, and after 3 SIGKILLs every survivor
must hold one map of the 45 others, within node_timeout plus the time a map
takes to commit. The joiners start first and the seed they --join last, as a
scale-out whose seed comes up late: all 47 reach it within a second, and the
founder admits them in one map (only it places them on the ring, ~0.3 s a
newcomer at this size, mesh/ring.py; the others adopt the map as it is).

It runs in the suite (~35 s of it; marked slow). On this shared 2-core machine
48 idle nodes take about half a core (0.9% each, `loadtest/mesh_cost.py`), so
the risk is a hub stalled past node_timeout by other sessions' load, which
would have a live member declared dead and removed (seen once at load 20-60
with an 8 s timeout, before quiet heartbeats halved the mesh's traffic). The
node timeout here is therefore Redis Cluster's default, 15 s: a stall that
long is a machine in trouble, not load. Measured on 4 December 2026: passed in
43 s twice at load ~1, and in 31 s at load 80 (the tail of a 100-node run); in
the whole suite of three fresh-clone CI runs it took 54, 122 and 120 s (40-45 s
alone on the same machine, forming in 14-20 s and agreeing without the dead
20-22 s later: why it is slower inside the suite is not found yet), so its
waits are generous: 240 s to form, 120 s to agree without the dead.
"""
from __future__ import annotations

import pytest

from tests.nodes import NodeFactory, nodes_lines, one_map, start_joiners_first, wait_until

MEMBERS = 48
KILLED = 3
NODE_TIMEOUT_MS = 15000

# runs alone (Makefile): 48 nodes take the machine
pytestmark = [pytest.mark.slow, pytest.mark.alone]


def test_48_members_agree_and_survive_3_deaths(tmp_path):
    factory = NodeFactory(tmp_path)
    try:
        nodes = start_joiners_first(factory, MEMBERS, "--replication-factor", "2",
                                    "--node-timeout-ms", str(NODE_TIMEOUT_MS))
        formed = wait_until(lambda: one_map(nodes, MEMBERS), timeout=240, interval=1.0,
                            message="48 members holding one map")
        assert int(formed) <= 3, f"forming 48 members took {formed} epochs: joins are not batched"

        victims = nodes[-KILLED:]
        dead_ids = set()
        for victim in victims:
            dead_ids.add(next(line[0] for line in nodes_lines(victim) if "myself" in line[2]))
        for victim in victims:
            victim.kill()
        survivors = nodes[:-KILLED]
        # Detection and a new map: node_timeout, one heartbeat for the watchers' verdict, one ballot.
        after = wait_until(lambda: one_map(survivors, MEMBERS - KILLED), timeout=120, interval=0.5,
                           message="45 survivors holding one map without the dead")
        assert int(after) > int(formed)

        def dead_shown_failed() -> bool:
            # A survivor that is not among a victim's watchers learns its death from the map
            # (mesh/membership.py left_the_map): within node_timeout after it, `fail`.
            for node in survivors:
                lines = nodes_lines(node)
                if any(line[0] in dead_ids and "fail" not in line[2] for line in lines):
                    return False
            return True
        wait_until(dead_shown_failed, timeout=NODE_TIMEOUT_MS / 1000 + 30, interval=1.0,
                   message="every survivor shows the dead as failed in CLUSTER NODES")
    finally:
        for node in factory.nodes:      # SIGKILL: 45 graceful leaves at once would wait out their timeout
            node.kill()
