"""One verdict on the cluster as this node sees it: ok, degraded (every slot served, but a copy is missing) or fail.

"ok" is said only when nothing hides behind it: every slot has an owner, this node
hears a majority, every member of the map is alive (none is gone from a replica set),
this node holds every slot it leads, and every copy it sends or receives is complete.
Pure: values in, (state, reason in words) out; the status snapshot, /health, the
page and CLUSTER INFO's hypercache_* fields all read it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence, Sized
from typing import Any

from .routing import LOADING_WAIT_S

SLOT_COUNT = 16384
NO_MAJORITY = "no majority of members heard within node_timeout"


def stranded_keys(slot_keys: Sequence[Sized], owners: Sequence[Sequence[str]], me: str) -> int:
    """Keys this node holds in slots the map gives it no part in: nobody reads them through it."""
    return sum(len(keys) for slot, keys in enumerate(slot_keys) if keys and me not in owners[slot])


def verdict(accepting_writes: bool, slots_assigned: int, replication: Mapping[str, Any],
            members_down: Sequence[tuple[str, str]], join_reason: str | None = None,
            stranded: int = 0, peers_unsubscribed: int = 0, peers_relayed: int = 0) -> tuple[str, str | None]:
    """(state, reason): state is "ok", "degraded" or "fail"; reason is None only for "ok".

    members_down: (node id, state) of the map's members that are not alive here;
    stranded: keys held here for slots this node no longer owns;
    peers_unsubscribed: mesh peers this node has no room to subscribe to (hypercache/open_files.py);
    peers_relayed: how many of them it hears through members that relay them (an open mesh, where
    a relayer could be chosen: mesh/links.py, mesh/relays.py).
    """
    if not accepting_writes:
        return "fail", join_reason or NO_MAJORITY
    if slots_assigned < SLOT_COUNT:
        return "fail", f"{SLOT_COUNT - slots_assigned} slots have no owner"
    reasons = []
    for node_id, state in sorted(members_down):
        reasons.append(f"member {node_id[:8]} is {state}: its slots are short of a copy until the "
                       f"cluster commits a map without it")
    if replication.get("slots_loading"):
        reasons.append(f"{replication['slots_loading']} slots led here are still being pulled "
                       f"(commands on them wait, and get TRYAGAIN after {LOADING_WAIT_S:g} s)")
    behind = replication.get("not_in_sync") or []
    if replication.get("slots_behind") or behind:
        who = ", ".join(node_id[:8] for node_id in behind)
        reasons.append(f"{replication.get('slots_behind', 0)} slots lack a complete copy on "
                       f"{'replica ' + who if who else 'their replicas'} (copying)")
    if replication.get("slots_receiving"):
        reasons.append(f"{replication['slots_receiving']} slots copied here are not complete yet")
    if stranded:
        reasons.append(f"{stranded} keys held here for slots this node no longer owns (a fallback copy "
                       f"until their new owners hold them, or stranded: served by nobody, still in memory)")
    if peers_unsubscribed:
        if peers_relayed >= peers_unsubscribed:
            heard = "hears them only as other members relay them"
        elif peers_relayed:
            heard = f"hears {peers_relayed} of them only as other members relay them, the others not at all"
        else:
            heard = "does not hear them"
        reasons.append(f"{peers_unsubscribed} mesh peers are not subscribed to for want of open files: this "
                       f"node {heard} (raise 'ulimit -n' and restart it)")
    if reasons:
        return "degraded", "; ".join(reasons)
    return "ok", None
