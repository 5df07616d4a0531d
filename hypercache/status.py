"""Build the read-only status snapshot the web UI renders (see web/snapshot.py for its shape)."""
from __future__ import annotations

import time

from mesh import balance
from mesh.links import HEARD, dropped_by_reason

from . import __version__, compiled, health, replication_state
from .context import Context


def _balance(slotmap) -> dict:
    primary, replica, uneven = balance.busiest(slotmap.tokens, slotmap.replication_factor)
    return {"primary_max_over_ideal": round(primary, 3), "replica_max_over_ideal": round(replica, 3),
            "evening_out": uneven}


def build_snapshot(ctx: Context, cluster, me, join_reason: str | None = None) -> dict:
    stats = ctx.stats
    store = ctx.store
    slotmap = cluster.slotmap
    mesh = cluster.status()
    accepting = cluster.accepting_writes()
    member_state = mesh.get("members", {})
    replication = replication_state.read(ctx.replicator)
    # The slot map's members, plus members the mesh still knows but the map
    # has dropped (a dead node stays listed, with no slots, so operators see it).
    listed = {m.node_id: m for m in slotmap.members}
    members = []
    links = getattr(cluster, "links", None)
    received = getattr(links, "received", {})
    received_bytes = getattr(links, "received_bytes", {})
    ids = sorted(set(listed) | set(member_state))
    streams = replication_state.member_views(replication, me.node_id, slotmap.owners, ids)
    for node_id in ids:
        member = listed.get(node_id)
        info = member_state.get(node_id, {})
        if member is not None:
            primary, replica = slotmap.ranges(node_id)
            address = {"host": member.host, "port": member.port,
                       "mesh_port": member.mesh_port, "http_port": member.http_port}
        else:
            primary, replica = [], []
            address = {k: info.get(k) for k in ("host", "port", "mesh_port", "http_port")}
        myself = node_id == me.node_id
        state = info.get("state", "alive") if member is not None else info.get("state", "dead")
        members.append({
            "id": node_id, **address,
            "state": str(state), "incarnation": info.get("incarnation", 0),
            "last_heartbeat_age_s": None if myself else info.get("last_heartbeat_age_s"),
            "myself": myself,
            "primary_ranges": [list(r) for r in primary],
            "replica_ranges": [list(r) for r in replica],
            "keys": store.key_count if myself else info.get("keys"),
            "used_memory": store.used_memory if myself else info.get("used_memory"),
            "ops_per_sec": stats.ops_per_sec if myself else info.get("ops_per_sec"),
            # the streams between this node and the member (none with myself)
            "replication": streams[node_id],
            # mesh messages and bytes accepted from the member (heartbeats, maps, votes, PUBLISH)
            "mesh_received": received.get(node_id, 0),
            "mesh_received_bytes": received_bytes.get(node_id, 0),
        })
    assigned = sum(1 for owners in slotmap.owners if owners)
    replication_summary = replication_state.summary(replication, me.node_id, slotmap.owners)
    down = [(m["id"], m["state"]) for m in members if m["id"] in listed and m["state"] != "alive"]
    stranded = health.stranded_keys(store.slots, slotmap.owners, me.node_id)
    state, reason = health.verdict(accepting, assigned, replication_summary, down, join_reason, stranded,
                                   mesh.get("peers_unsubscribed", 0), mesh.get("peers_relayed", 0))
    return {
        "node": {"id": me.node_id, "host": me.host, "port": me.port,
                 "mesh_port": me.mesh_port, "http_port": me.http_port, "version": __version__,
                 "compiled": compiled.COMPILED, "form": compiled.FORM},
        "cluster": {"state": state, "reason": reason, "epoch": slotmap.epoch,
                    "replication_factor": slotmap.replication_factor,
                    "accepting_writes": accepting, "slots_assigned": assigned,
                    "slots_ok": assigned if accepting else 0,
                    "balance": _balance(slotmap)},
        "members": members,
        "replication": replication_summary,
        "stats": {
            "keys": store.key_count, "used_memory": store.used_memory,
            "ops_per_sec": stats.ops_per_sec, "connected_clients": len(ctx.clients),
            "expired_keys": store.stats.expired_keys, "evicted_keys": store.stats.evicted_keys,
            "moved_sent": stats.moved_sent, "ask_sent": stats.ask_sent,
            "mesh_in": mesh.get("mesh_in", 0), "mesh_out": mesh.get("mesh_out", 0),
            "mesh_out_bytes": mesh.get("counters", {}).get("out_bytes", 0),
            "stranded_keys": stranded,
            "mesh_dropped": mesh.get("mesh_dropped", 0),
            # ...and why: "send_queue_full" (a PUB over its high-water mark), "too_big", and what
            # the reader refused (mesh/links.py: impersonation, relayed, schema, unendorsed...)
            "mesh_dropped_by_reason": dropped_by_reason(mesh.get("counters", {})),
            # peers this node could not subscribe to for want of files (open_files.py): heard only
            # as members with a link to them relay them (mesh/links.py `relay`), counted both ways
            "mesh_peers_refused": mesh.get("counters", {}).get("peers_refused", 0),
            "mesh_relayed_in": mesh.get("counters", {}).get("relayed_in", 0),
            "mesh_relayed_out": mesh.get("counters", {}).get("relayed_out", 0),
            # how late this node runs (mesh/awareness.py): 0 on time; its suspicions of a silent
            # peer wait mesh_suspect_after_s, (local health + 1) node timeouts
            "mesh_local_health": mesh.get("local_health", 0),
            "mesh_suspect_after_s": mesh.get("suspect_after_s"),
            "mesh_late_evidence": mesh.get("late_evidence", 0),
            # a watcher silent for long: writes need the whole map's majority (mesh/strand.py)
            "mesh_stranded": bool(mesh.get("stranded", False)),
            "mesh_roll_calls": mesh.get("counters", {}).get("roll_calls", 0),
            "mesh_in_by_kind": {name[len(HEARD):]: n for name, n in mesh.get("counters", {}).items()
                                if name.startswith(HEARD)},
            "uptime_s": time.monotonic() - ctx.started_at,
            "commands": {
                name: {"calls": s.calls, "usec": s.usec, "failed_calls": s.failed_calls,
                       "rejected_calls": s.rejected_calls,
                       "latency_us_buckets": {2 ** i: n for i, n in enumerate(s.latency) if n}}
                for name, s in stats.commands.items()
            },
        },
        "events": list(mesh.get("events", [])),
    }
