"""Derives the JSON documents the API serves from one status snapshot.

Pure: a snapshot dict in, plain JSON-ready dicts out, so the contract is tested
without a server. Members are always listed in id order and the topology
digest covers only what the slot map decides (ids, addresses, ranges, epoch),
so every live node answers the same topology for the same epoch even though
each sees its peers' liveness from its own side.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Sequence
from typing import Any

from web.ring import member_shares, ring_layout
from web.snapshot import MEMBER_STATES, Member, SlotRange, Snapshot, Stats

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")  # RFC 1123 host names; IPs are checked apart


def status_view(snapshot: Snapshot) -> dict[str, Any]:
    """GET /cluster/status: this node's view of the cluster in one screenful."""
    cluster = snapshot["cluster"]
    node = snapshot["node"]
    return {
        "node_id": node["id"],
        "node": _address(node),
        "version": node["version"],
        "compiled": node["compiled"],
        "form": node["form"],
        "state": cluster["state"],
        "reason": cluster["reason"],
        "epoch": cluster["epoch"],
        "replication_factor": cluster["replication_factor"],
        "accepting_writes": cluster["accepting_writes"],
        "slots_assigned": cluster["slots_assigned"],
        "slots_ok": cluster["slots_ok"],
        "balance": dict(cluster["balance"]),
        "members": member_counts(snapshot["members"]),
        "replication": dict(snapshot["replication"]),
        "mesh": _mesh(snapshot["stats"]),
        "uptime_s": snapshot["stats"]["uptime_s"],
    }


def _mesh(stats: Stats) -> dict[str, Any]:
    """How well this node hears the mesh: peers refused for want of open files (counted since it
    started), and how late it runs itself."""
    return {
        "peers_refused": stats.get("mesh_peers_refused", 0),
        "local_health": stats.get("mesh_local_health", 0),
        "suspect_after_s": stats.get("mesh_suspect_after_s"),
        "late_evidence": stats.get("mesh_late_evidence", 0),
        "stranded": stats.get("mesh_stranded", False),
    }


def nodes_view(snapshot: Snapshot) -> dict[str, Any]:
    """GET /cluster/nodes: every member, its ranges and load, plus a digest of the topology."""
    members = sorted(snapshot["members"], key=lambda m: m["id"])
    return {
        "node_id": snapshot["node"]["id"],
        "epoch": snapshot["cluster"]["epoch"],
        "replication_factor": snapshot["cluster"]["replication_factor"],
        "topology_digest": topology_digest(snapshot["cluster"]["epoch"], members),
        "members": [_member(m) for m in members],
    }


def health_view(snapshot: Snapshot) -> tuple[dict[str, Any], int]:
    """GET /health: 200 while this node accepts writes, 503 when it refuses them (and why).

    "ok" only when the cluster state is: a node that serves while a copy is missing
    answers 200 (it takes writes) with status "degraded" and the reason.
    """
    cluster = snapshot["cluster"]
    healthy = bool(cluster["accepting_writes"])
    status = "unavailable" if not healthy else ("ok" if cluster["state"] == "ok" else "degraded")
    body: dict[str, Any] = {
        "status": status,
        "node_id": snapshot["node"]["id"],
        "accepting_writes": healthy,
        "cluster_state": cluster["state"],
        "epoch": cluster["epoch"],
    }
    if status != "ok":
        body["reason"] = cluster["reason"] or ("not accepting writes" if not healthy else "degraded")
    return body, 200 if healthy else 503


def events_view(snapshot: Snapshot, limit: int) -> dict[str, Any]:
    """GET /cluster/events: the most recent events, newest first."""
    events = sorted(snapshot["events"], key=lambda e: e["at_unix"], reverse=True)[:limit]
    return {"node_id": snapshot["node"]["id"], "events": [dict(e) for e in events]}


def overview_view(snapshot: Snapshot, event_limit: int) -> dict[str, Any]:
    """GET /cluster/overview: everything the page draws, from one snapshot so the parts agree."""
    return {
        "status": status_view(snapshot),
        "nodes": nodes_view(snapshot),
        "ring": ring_layout(snapshot["members"]),
        "shares": member_shares(snapshot["members"]),
        "events": events_view(snapshot, event_limit)["events"],
    }


def member_counts(members: Sequence[Member]) -> dict[str, int]:
    """Members by state; every state is present (as 0) so dashboards never see a gap."""
    counts = {state: 0 for state in MEMBER_STATES}
    for member in members:
        counts[member["state"]] = counts.get(member["state"], 0) + 1
    counts["total"] = len(members)
    return counts


def topology_digest(epoch: int, members: Sequence[Member]) -> str:
    """SHA-1 over what the slot map decides, so operators compare nodes with one field."""
    decided = [
        [m["id"], m["host"], m["port"], m["mesh_port"], m["http_port"],
         _normalised(m["primary_ranges"]), _normalised(m["replica_ranges"])]
        for m in sorted(members, key=lambda m: m["id"])
    ]
    canonical = json.dumps([epoch, decided], separators=(",", ":"), sort_keys=True)
    return hashlib.sha1(canonical.encode()).hexdigest()


def page_url(host: str, http_port: int | None) -> str | None:
    """http://host:port/ of a member's status page, or None when the address is not linkable.

    The host comes from the mesh, so it is only turned into a link when it is
    a plain hostname or IP address: anything else (markup, a userinfo '@', a
    path) must not steer the operator's browser elsewhere. Wildcard bind
    addresses are not reachable and get no link either.
    """
    if not isinstance(http_port, int) or not 0 < http_port < 65536:
        return None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{http_port}/" if _HOSTNAME.match(host) else None
    if ip.is_unspecified:
        return None
    shown = f"[{ip.compressed}]" if ip.version == 6 else ip.compressed
    return f"http://{shown}:{http_port}/"


def slot_count(ranges: Sequence[SlotRange]) -> int:
    return sum(end - start + 1 for start, end in _normalised(ranges))


def _member(member: Member) -> dict[str, Any]:
    return {
        **_address(member),
        "address": f"{member['host']}:{member['port']}",
        "url": page_url(member["host"], member["http_port"]),
        "state": member["state"],
        "incarnation": member["incarnation"],
        "last_heartbeat_age_s": member["last_heartbeat_age_s"],
        "myself": member["myself"],
        "primary_ranges": _normalised(member["primary_ranges"]),
        "replica_ranges": _normalised(member["replica_ranges"]),
        "primary_slots": slot_count(member["primary_ranges"]),
        "replica_slots": slot_count(member["replica_ranges"]),
        "keys": member["keys"],
        "used_memory": member["used_memory"],
        "ops_per_sec": member["ops_per_sec"],
        "replication": {
            "feed": _copy(member["replication"]["feed"]),
            "follow": _copy(member["replication"]["follow"]),
        },
    }


def _copy(value: Any) -> Any:
    return None if value is None else dict(value)


def _address(node: Any) -> dict[str, Any]:
    return {key: node[key] for key in ("id", "host", "port", "mesh_port", "http_port")}


def _normalised(ranges: Sequence[SlotRange]) -> list[list[int]]:
    """Ranges as sorted [start, end] int pairs: the same map must serialise the same way everywhere."""
    return sorted([int(start), int(end)] for start, end in ranges)
