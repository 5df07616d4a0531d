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

from mesh.keyslot import keyslot
from tests.nodes import NodeFactory, call, cluster_info, nodes_lines, one_map, start_joiners_first, wait_until

MEMBERS = 14
KILLED = 5
# Past 16 members a member's 8 watchers and itself are no majority of the map: a stranded member's
# lease needs answers to its roll call from members that do not watch it.
BEYOND_ITS_WATCHERS = 20

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


def test_a_member_restarted_in_a_map_beyond_its_watchers_takes_writes_again(tmp_path):
    """A member restarted from its data directory starts stranded (mesh/strand.py): until a majority
    of the whole map answers its roll call, it takes no writes. Of 20 members, its watchers' echoes
    and itself are 9, short of the 11 a majority needs, so answers from the others are needed. They
    were dropped as invalid by every reader (mesh/links.py ADDRESSED_KINDS), and the member stayed
    without a lease, its slots unwritable, for good."""
    factory = NodeFactory(tmp_path)
    try:
        nodes = start_joiners_first(factory, BEYOND_ITS_WATCHERS, "--replication-factor", "2")
        wait_until(lambda: one_map(nodes, BEYOND_ITS_WATCHERS), timeout=180, interval=0.5,
                   message=f"{BEYOND_ITS_WATCHERS} members holding one map")
        member = nodes[BEYOND_ITS_WATCHERS // 2]
        wait_until(lambda: cluster_info(member)["cluster_state"] == "ok", timeout=60, interval=0.5,
                   message="the member takes writes before its restart")
        member.kill()
        logged_before = len(member.logs(tail=None))     # (the restarted process appends to the same log)
        restarted = factory.restart(member)

        def said_since(text: str) -> bool:
            return text in restarted.logs(tail=None)[logged_before:]

        wait_until(lambda: said_since("mesh stranded node="), timeout=60, interval=0.5,
                   message="the restarted member stranded until the whole map answers")
        wait_until(lambda: said_since("mesh not stranded any more node="), timeout=60, interval=0.5,
                   message="the restarted member not stranded any more")
        # (its slots come back once pulled: a SET may meet -TRYAGAIN meanwhile, and is asked again)
        key = _key_led_by(restarted)
        wait_until(lambda: call(restarted, "SET", key, "after the restart") == b"OK", timeout=60, interval=0.5,
                   message="a write to a slot the restarted member leads")
        assert call(restarted, "GET", key) == b"after the restart"
        assert cluster_info(restarted)["cluster_state"] == "ok"
    finally:
        for node in factory.nodes:
            node.kill()


def _key_led_by(node) -> bytes:
    """A key of a slot `node` leads as the primary (CLUSTER SLOTS as it says)."""
    ranges = [(start, end) for start, end, primary, *_ in call(node, "CLUSTER", "SLOTS") if primary[1] == node.port]
    return next(key for key in (b"k%d" % n for n in range(100_000))
                if any(start <= keyslot(key) <= end for start, end in ranges))
