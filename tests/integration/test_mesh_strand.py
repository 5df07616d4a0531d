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

from tests.nodes import HOST, NodeFactory, cluster_info, node_ports, nodes_lines, wait_until

MEMBERS = 14
KILLED = 5

pytestmark = [pytest.mark.slow, pytest.mark.alone]


def one_map(nodes, members: int) -> str | None:
    """The epoch if every node holds a map of `members` members at one epoch and accepts writes."""
    infos = [cluster_info(n) for n in nodes]
    epochs = {i["cluster_current_epoch"] for i in infos}
    if len(epochs) == 1 and all(i["cluster_size"] == str(members) and i["cluster_state"] == "ok" for i in infos):
        return epochs.pop()
    return None


def test_five_neighbours_crashing_together_are_removed_without_the_operator(tmp_path):
    factory = NodeFactory(tmp_path)
    flags = ("--replication-factor", "2")       # (the default node timeout, 3 s)
    seed_port, seed_mesh_port = node_ports()
    try:
        joiners = [factory.start(*flags, join=f"{HOST}:{seed_mesh_port}", wait=False) for _ in range(MEMBERS - 1)]
        for node in joiners:
            node.wait_ready(timeout=120)
        seed = factory.start(*flags, port=seed_port)
        nodes = [seed, *joiners]
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
