"""Real processes: 5 neighbours in id order crash together, and the others remove them on their own.

14 members, each watched by its 8 neighbours in id order (mesh/watch.py). Killing 5 in a row
leaves each of them only 4 live watchers, short of the 5 a death needs: before mesh/strand.py
they stayed suspect for good and their slots waited for CLUSTER FORGET on every member. Now their
surviving watchers keep reporting them, every member listens for them, and a map without them
commits about 4 node timeouts later (12-13 s at the default 3 s). The 9 left hold that map and
take writes. Marked `alone`: 14 nodes at the default timeout want the machine to themselves.
"""
from __future__ import annotations

import pytest

from tests.nodes import NodeFactory, nodes_lines, one_map, start_joiners_first, wait_until

MEMBERS = 14
KILLED = 5

pytestmark = [pytest.mark.slow, pytest.mark.alone]


def test_five_neighbours_crashing_together_are_removed_without_the_operator(tmp_path):
    factory = NodeFactory(tmp_path)
    try:
        nodes = start_joiners_first(factory, MEMBERS, "--replication-factor", "2")    # (node timeout 3 s)
        formed = wait_until(lambda: one_map(nodes, MEMBERS), timeout=120, interval=0.5,
                            message=f"{MEMBERS} members holding one map")
        ids = {}
        for node in nodes:
            ids[node] = next(line[0] for line in nodes_lines(node) if "myself" in line[2])
        in_order = sorted(nodes, key=ids.__getitem__)
        victims = in_order[3:3 + KILLED]
        for victim in victims:
            victim.kill()
        survivors = [node for node in nodes if node not in victims]
        after = wait_until(lambda: one_map(survivors, MEMBERS - KILLED), timeout=90, interval=0.5,
                           message=f"{MEMBERS - KILLED} survivors holding one map without the 5 neighbours")
        assert int(after) > int(formed)
        dead = {ids[victim] for victim in victims}
        for node in survivors:
            assert not dead & {line[0] for line in nodes_lines(node)} or all(
                "fail" in line[2] for line in nodes_lines(node) if line[0] in dead)
    finally:
        for node in factory.nodes:
            node.kill()
