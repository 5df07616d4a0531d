"""CLUSTER commands: the topology replies cluster clients read, in Redis 7's shapes.

The replies are built by pure functions of the slot map and the mesh's status
(`slots_reply`, `nodes_reply`, `shards_reply`, `info_reply`), so they are
tested with values, no node needed. Our ring gives every member primary slots
and (with replication_factor > 1) replica slots of others, so every member is
shown as a `master` of its primary slots; the replicas of each slot range are
listed in CLUSTER SLOTS and SHARDS.
"""
from __future__ import annotations

import time
from itertools import islice

from mesh.keyslot import SLOT_COUNT, keyslot
from mesh.slotmap import SlotMap

from ..arguments import parse_int
from ..resp import OK, CommandError, Verbatim
from . import command, container

INVALID_SLOT = CommandError("ERR Invalid or out of range slot")


def slots_reply(slotmap: SlotMap) -> list:
    """CLUSTER SLOTS: [first, last, [host, port, id, {}] primary, then replicas] per run of owners."""
    entries = []
    for first, last, owners in slotmap.owner_ranges():
        entry: list = [first, last]
        for node_id in owners:
            member = slotmap.member(node_id)
            entry.append([member.host.encode(), member.port, node_id.encode(), {}])
        entries.append(entry)
    return entries


def _ranges_text(ranges: list[tuple[int, int]]) -> list[str]:
    return [str(first) if first == last else f"{first}-{last}" for first, last in ranges]


def nodes_reply(slotmap: SlotMap, members: dict[str, dict], me: str, now_unix: float) -> bytes:
    """CLUSTER NODES: one line per known member, map members first; dead ones flagged `fail`."""
    lines = []
    ordered = [m.node_id for m in slotmap.members] + sorted(n for n in members if not slotmap.has_member(n))
    for node_id in ordered:
        info = members.get(node_id, {})
        member = slotmap.member(node_id) if slotmap.has_member(node_id) else None
        host = member.host if member else info.get("host", "")
        port = member.port if member else info.get("port", 0)
        mesh_port = member.mesh_port if member else info.get("mesh_port", 0)
        state = info.get("state", "alive")
        flags = (["myself"] if node_id == me else []) + ["master"]
        if state == "suspect":
            flags.append("fail?")
        elif state == "dead":
            flags.append("fail")
        age = info.get("last_heartbeat_age_s")
        pong_ms = int((now_unix - age) * 1000) if age is not None else 0
        link = "connected" if node_id == me or state != "dead" else "disconnected"
        primary = _ranges_text(slotmap.ranges(node_id)[0]) if member else []
        lines.append(" ".join([node_id, f"{host}:{port}@{mesh_port}", ",".join(flags), "-",
                               "0", str(pong_ms), str(slotmap.epoch), link, *primary]))
    return ("\n".join(lines) + "\n").encode()


def shards_reply(slotmap: SlotMap, members: dict[str, dict]) -> list:
    """CLUSTER SHARDS: one shard per distinct owner list: its slot ranges, its primary and replicas."""
    shards: dict[tuple[str, ...], list[int]] = {}
    for first, last, owners in slotmap.owner_ranges():
        shards.setdefault(owners, []).extend((first, last))
    reply = []
    for owners, ranges in shards.items():
        nodes = []
        for index, node_id in enumerate(owners):
            member = slotmap.member(node_id)
            state = members.get(node_id, {}).get("state", "alive")
            nodes.append({
                "id": node_id, "port": member.port, "ip": member.host, "endpoint": member.host,
                "replication-offset": 0, "role": "master" if index == 0 else "replica",
                "health": "online" if state == "alive" else ("loading" if state == "suspect" else "fail"),
            })
        reply.append({"slots": ranges, "nodes": nodes})
    return reply


def info_reply(slotmap: SlotMap, status: dict) -> bytes:
    """CLUSTER INFO: cluster_state and slot counts as Redis reports them, plus mesh message counts."""
    members = status.get("members", {})
    states = {node_id: info.get("state", "alive") for node_id, info in members.items()}
    pfail = sum(1 for owners in slotmap.owners if states.get(owners[0]) == "suspect")
    fail = sum(1 for owners in slotmap.owners if states.get(owners[0]) == "dead")
    accepting = status.get("accepting_writes", True)
    assigned = sum(1 for owners in slotmap.owners if owners)
    fields = [
        ("cluster_enabled", 1),
        ("cluster_state", "ok" if accepting and fail == 0 and assigned == SLOT_COUNT else "fail"),
        ("cluster_slots_assigned", assigned),
        ("cluster_slots_ok", assigned - pfail - fail),
        ("cluster_slots_pfail", pfail),
        ("cluster_slots_fail", fail),
        ("cluster_known_nodes", len(members) or len(slotmap.members)),
        ("cluster_size", sum(1 for m in slotmap.members if slotmap.ranges(m.node_id)[0])),
        ("cluster_current_epoch", slotmap.epoch),
        ("cluster_my_epoch", slotmap.epoch),
        ("cluster_replication_factor", slotmap.replication_factor),
        ("cluster_stats_messages_sent", status.get("mesh_out", 0)),
        ("cluster_stats_messages_received", status.get("mesh_in", 0)),
        ("cluster_stats_messages_dropped", status.get("mesh_dropped", 0)),
        ("total_cluster_links_buffer_limit_exceeded", 0),
    ]
    return "".join(f"{name}:{value}\r\n" for name, value in fields).encode()


def _slot(raw: bytes) -> int:
    slot = parse_int(raw, "ERR Invalid or out of range slot")
    if not 0 <= slot < SLOT_COUNT:
        raise INVALID_SLOT
    return slot


container("cluster", -2, "", "cluster", "A container for Redis Cluster commands.", "3.0.0")


@command("cluster|slots", 2, "loading stale", group="cluster",
         summary="Returns the mapping of cluster slots to nodes.", since="3.0.0")
def cluster_slots(ctx, session, args):
    """Format: CLUSTER SLOTS"""
    return slots_reply(ctx.cluster.slotmap)


@command("cluster|shards", 2, "loading stale", group="cluster",
         summary="Returns the mapping of cluster slots to shards.", since="7.0.0")
def cluster_shards(ctx, session, args):
    """Format: CLUSTER SHARDS"""
    return shards_reply(ctx.cluster.slotmap, ctx.cluster.status().get("members", {}))


@command("cluster|nodes", 2, "loading stale", group="cluster",
         summary="Returns the cluster configuration for a node.", since="3.0.0")
def cluster_nodes(ctx, session, args):
    """Format: CLUSTER NODES"""
    status = ctx.cluster.status()
    return Verbatim(nodes_reply(ctx.cluster.slotmap, status.get("members", {}), ctx.node_id, time.time()))


@command("cluster|info", 2, "loading stale", group="cluster",
         summary="Returns information about the state of a node.", since="3.0.0")
def cluster_info(ctx, session, args):
    """Format: CLUSTER INFO"""
    return Verbatim(info_reply(ctx.cluster.slotmap, ctx.cluster.status()))


@command("cluster|myid", 2, "loading stale", group="cluster",
         summary="Returns the ID of a node.", since="3.0.0")
def cluster_myid(ctx, session, args):
    """Format: CLUSTER MYID"""
    return ctx.node_id.encode()


@command("cluster|keyslot", 3, "stale", group="cluster",
         summary="Returns the hash slot for a key.", since="3.0.0")
def cluster_keyslot(ctx, session, args):
    """Format: CLUSTER KEYSLOT key"""
    return keyslot(args[2])


@command("cluster|countkeysinslot", 3, "stale", group="cluster",
         summary="Returns the number of keys in a hash slot.", since="3.0.0")
def cluster_countkeysinslot(ctx, session, args):
    """Format: CLUSTER COUNTKEYSINSLOT slot"""
    return len(ctx.store.slots[_slot(args[2])])


@command("cluster|getkeysinslot", 4, "stale", group="cluster",
         summary="Returns the key names in a hash slot.", since="3.0.0")
def cluster_getkeysinslot(ctx, session, args):
    """Format: CLUSTER GETKEYSINSLOT slot count"""
    slot = _slot(args[2])
    count = parse_int(args[3], "ERR Invalid number of keys")
    if count < 0:
        raise CommandError("ERR Invalid number of keys")
    return list(islice(ctx.store.slots[slot], count))


@command("cluster|meet", -4, "admin stale no-async-loading", group="cluster",
         summary="Forces a node to handshake with another node.", since="3.0.0")
def cluster_meet(ctx, session, args):
    """Format: CLUSTER MEET ip port [cluster-bus-port]"""
    if len(args) > 5:
        raise CommandError("ERR syntax error")
    host = args[2].decode("utf-8", "replace")
    try:
        port = int(args[3])
        mesh_port = int(args[4]) if len(args) == 5 else port + 10000
        if not (0 < port < 65536 and 0 < mesh_port < 65536):
            raise ValueError
    except ValueError:
        raise CommandError(f"ERR Invalid node address specified: {host}:{args[3].decode('utf-8', 'replace')}") from None
    meet = getattr(ctx.cluster, "meet", None)
    if meet is None:
        raise CommandError("ERR This instance has cluster support disabled")
    meet(host, mesh_port)
    return OK
