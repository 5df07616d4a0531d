"""Who sends a member that is behind the map it missed, and when (pure: the bus sends it).

A member whose message names an older map than this node's missed a commit (lost, or
it was starved or cut off meanwhile). Each of its watchers used to send it the whole map
again, at every heartbeat of it, under a topic that every member catching up heard: with
20 members of a 100-member map behind at once, each of them decoded ~40 maps (about 2 ms
of CPU each on a quiet core; on a saturated one the backlog fed itself). Now one member
sends it, to it alone (mesh/links.py `addressed`): the first of its senders that this node
neither doubts, nor has heard behind itself, nor finds silent lately. Its other senders step
in one by one while it stays behind, since the first may be cut off from it, paused, or seen
otherwise elsewhere (each member reads its own view).
"""
from __future__ import annotations

from typing import Collection, Mapping


def senders(behind: str, member_ids: Collection[str], watchers: Mapping[str, Collection[str]] | None,
            proposer: str | None) -> list[str]:
    """Who may send `behind` the map, in the order they are asked: its watchers in a big map,
    every other member in a small one (no watchers), the proposer and then every member for a
    node outside the map."""
    if behind not in member_ids:
        # (the proposer first: it admits it; the others in turn if it is cut off from it)
        return ([proposer] if proposer is not None else []) + sorted(
            node_id for node_id in member_ids if node_id != proposer)
    if watchers is None:
        return sorted(node_id for node_id in member_ids if node_id != behind)
    return sorted(watchers.get(behind, ()))


def due(me: str, asked: list[str], passed_over: Collection[str], behind_for_s: float, since_sent_s: float,
        spacing_s: float, step_s: float) -> bool:
    """Whether `me` sends the map now to a member behind for `behind_for_s`, which it last sent
    the map `since_sent_s` ago. The senders of `asked` not `passed_over` (in doubt here, heard
    behind themselves, or silent lately) take turns: the first at once, the next once the member
    is still behind `step_s` later, and so on; each at most every `spacing_s`."""
    if me not in asked or since_sent_s < spacing_s:
        return False
    ranked = [node_id for node_id in asked if node_id == me or node_id not in passed_over]
    return behind_for_s >= ranked.index(me) * step_s


def spacing_s(interval_s: float, behind_for_s: float) -> float:
    """How often a sender repeats itself to a member behind for `behind_for_s`: every timer
    interval at first, then no more often than a quarter of how long it has been behind (one
    behind for long is starved or cut off: more maps only add to its backlog)."""
    return max(interval_s, behind_for_s / 4)
