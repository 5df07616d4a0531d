"""The operator's way out after a majority is lost for good: CLUSTER FAILOVER TAKEOVER.

Every map is voted by a majority of the map before it (mesh/election.py). That
keeps two sides of a partition from both deciding, and it also means that a
cluster which lost its majority for good (2 of 4 members destroyed) can never
decide again: the survivors refuse writes on every slot the dead held, forever.
Redis Cluster's way out is `CLUSTER FAILOVER TAKEOVER`: the operator tells a
replica to take over without the cluster's agreement, at the risk of a split if
the "dead" masters were only cut off. hypercache offers the same, with the same
risk, and no wider door:

- The operator runs it on *every* surviving member (`redis-cli --cluster call
  HOST:PORT CLUSTER FAILOVER TAKEOVER` reaches them all). Each survivor makes,
  on its own, the map without the members it holds dead (`forced_map`). Given
  the same map and the same dead, every survivor makes the same owners; only
  the epoch may differ (each takes one above every ballot it has seen).
- A survivor that took over adopts a peer's forced map only when it is the very
  decision it made itself at a higher epoch (`same_decision`), so the survivors
  converge on one epoch; no message can make a node take over that was not told
  to, and no insider can slip it any other map.
- It is refused while this node hears a majority (failover is automatic then),
  while any member is only suspected (the survivors must agree on who is dead:
  retry once the failure detector has declared it), and when nobody is dead.

Slots whose every owner died are lost (their new owners start empty): that is
the risk the operator takes, written in the README with the command.

Pure: values in, a map or a refusal out.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from mesh.election import plan
from mesh.messages import State
from mesh.slotmap import SlotMap

HAS_MAJORITY = ("ERR this node hears a majority of the cluster: failover is automatic "
                "(a primary unheard for --node-timeout-ms is replaced by its replica); TAKEOVER is "
                "for a cluster that lost its majority for good")


class TakeoverRefused(Exception):
    """Why this node will not take over now (the text is the reply's error line)."""


def forced_map(current: SlotMap, me: str, states: Mapping[str, str], hears_majority: bool,
               voted_epoch: int, joining: bool = False) -> SlotMap:
    """Return the map without the members this node holds dead, at an epoch above every
    ballot it has seen, made from `current`; raise TakeoverRefused with the reason.

    `states` maps each other member of `current` to its state in this node's view
    (a member it never heard counts as suspect: nothing says it is dead)."""
    if joining or not current.has_member(me):
        raise TakeoverRefused("ERR this node is not a member of the cluster yet: nothing to take over")
    if hears_majority:
        raise TakeoverRefused(HAS_MAJORITY)
    others = [m.node_id for m in current.members if m.node_id != me]
    unsure = sorted(n for n in others if states.get(n, State.SUSPECT) == State.SUSPECT)
    if unsure:
        raise TakeoverRefused(
            f"ERR member {unsure[0]} is suspected, not yet declared dead: the survivors must agree "
            f"on who is dead, retry after --node-timeout-ms")
    dead = [n for n in others if states.get(n) == State.DEAD]
    if not dead:
        raise TakeoverRefused("ERR no member is dead: nothing to take over")
    forced = plan(current, dead, (), max(voted_epoch, current.epoch) + 1)
    assert forced is not None     # (dead members of the map were removed: the map changed)
    return forced


def same_decision(candidate: SlotMap, forced: SlotMap) -> bool:
    """True if `candidate` is `forced` at another epoch: the same members and owners,
    made from the same map (another survivor's takeover)."""
    return candidate.base_epoch == forced.base_epoch and replace(candidate, epoch=forced.epoch) == forced
