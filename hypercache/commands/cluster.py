"""CLUSTER commands: the topology replies cluster clients read, in Redis 7.0's shapes.

The replies are built by pure functions of the slot map and the mesh's status
(`slots_reply`, `shards_reply`, `nodes_reply`, `info_reply`), so they are
tested with values, no node needed; they are the same code for a lone node
(a one-member cluster owning all 16384 slots) and for N members.

How our ring maps onto Redis's master/replica model: every member is two
Redis nodes, its primary endpoint (a master, the member's id and RESP port)
and its replica endpoint (a replica, hypercache/roles.py). So:

* CLUSTER SLOTS lists every run of slots with the same owners as
  `[first, last, primary, replica...]`, each node as `[host, port, id, {}]`
  (Redis 7.0 with `cluster-preferred-endpoint-type ip`): the primary's
  primary endpoint, then the replica endpoints of the other owners. Dead
  replicas are left out, as Redis leaves out failed replicas. A client
  reading from replicas (READONLY) finds the right ones per slot, and no
  address is ever both a master and a replica.
* CLUSTER SHARDS groups slot ranges by their owner tuple: one shard per
  distinct (primary, replicas...) list, the primary's primary endpoint as
  `master`, the others' replica endpoints as `replica`. A member that owns no
  slot at all (e.g. one that is still joining) gets a shard of its own with
  no slots, as Redis shows a master without slots. `replication-offset` and
  `health` come from this node's replication streams: a replica whose copy
  of the shard is incomplete is `loading` (hypercache/replication_state.py).
* CLUSTER REPLICAS / SLAVES of a member are the CLUSTER NODES lines of the
  replica endpoints of the members holding copies of its primary slots.
* CLUSTER NODES has a `master` line per known member with its *primary*
  ranges, and a `slave` line per replica endpoint holding copies, naming the
  member whose slots it copies most (the format allows one master); this is
  what redis-benchmark --cluster and redis-cli --cluster need. `myself` is the
  endpoint the client is connected to. Suspect members
  are flagged `fail?` (Redis's PFAIL), dead ones `fail` with link
  `disconnected`; ping-sent is 0 and pong-received is the wall-clock time of
  the last heartbeat heard, derived from its age; the config epoch is the
  slot map's epoch for everyone.
* CLUSTER INFO counts a slot as pfail/fail when its primary is suspect/dead,
  and reports `cluster_state:fail` while this node cannot hear a majority
  (it then refuses writes with -CLUSTERDOWN).
"""
from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from itertools import islice

from mesh.keyslot import SLOT_COUNT, keyslot
from mesh.slotmap import Member, SlotMap

from ..arguments import parse_int
from .. import health
from ..replication_state import NO_REPLICATION, ReplicationState, read, replicas_of, shard_progress
from ..replication_state import summary as replication_summary
from ..roles import replica_id, replica_port, replicated_master
from ..reply import CommandError, Status, Verbatim
from . import command, container

INVALID_SLOT = CommandError("ERR Invalid slot")
INVALID_SLOT_OR_COUNT = CommandError("ERR Invalid slot or number of keys")
ALIVE, SUSPECT, DEAD = "alive", "suspect", "dead"


@dataclass(frozen=True, slots=True)
class Known:
    """A member as CLUSTER NODES/SHARDS show it: addresses from the map (or the mesh), and its state."""
    node_id: str
    host: str
    port: int
    mesh_port: int
    state: str
    heartbeat_age_s: float | None


def known_members(slotmap: SlotMap, members: dict[str, dict], me: Member | None = None) -> list[Known]:
    """Every member this node knows of: the map's members first, then ones only the mesh knows, then me."""
    known = []
    for member in slotmap.members:
        info = members.get(member.node_id, {})
        known.append(Known(member.node_id, member.host, member.port, member.mesh_port,
                           info.get("state", ALIVE), info.get("last_heartbeat_age_s")))
    for node_id in sorted(n for n in members if not slotmap.has_member(n)):
        info = members[node_id]
        known.append(Known(node_id, info.get("host", ""), info.get("port", 0), info.get("mesh_port", 0),
                           info.get("state", ALIVE), info.get("last_heartbeat_age_s")))
    if me is not None and not any(k.node_id == me.node_id for k in known):
        known.append(Known(me.node_id, me.host, me.port, me.mesh_port, ALIVE, None))
    return known


def _state(members: dict[str, dict], node_id: str) -> str:
    return members.get(node_id, {}).get("state", ALIVE)


def slots_reply(slotmap: SlotMap, members: dict[str, dict] | None = None) -> list:
    """CLUSTER SLOTS: [first, last, [host, port, id, {}] of the primary, then of live replicas] per run
    (a replica as its member's replica endpoint)."""
    members = members or {}
    entries = []
    for first, last, owners in slotmap.owner_ranges():
        if not owners:
            continue
        primary = slotmap.member(owners[0])
        entry: list = [first, last, [primary.host.encode(), primary.port, owners[0].encode(), {}]]
        for node_id in owners[1:]:
            member = slotmap.member(node_id)
            port = replica_port(member.port)
            if _state(members, node_id) != DEAD and port is not None:
                entry.append([member.host.encode(), port, replica_id(node_id).encode(), {}])
        entries.append(entry)
    return entries


def _ranges_text(ranges: list[tuple[int, int]]) -> list[str]:
    return [str(first) if first == last else f"{first}-{last}" for first, last in ranges]


def _node_line(k: Known, slotmap: SlotMap, me: Member, now_unix: float, myself_id: str | None = None,
               replica_endpoint: bool = False, master_of: str | None = None) -> str:
    """One CLUSTER NODES line, without its newline: `k`'s primary endpoint as a `master` of its
    primary ranges, or its replica endpoint as a `slave` of `master_of` (with no master to name,
    a replica endpoint holding no copies yet, a slotless `master`, as Redis shows such a node)."""
    node_id, port = k.node_id, k.port
    if replica_endpoint:
        node_id, port = replica_id(k.node_id), replica_port(k.port) or 0
    flags = ["myself"] if node_id == (myself_id or me.node_id) else []
    flags.append("slave" if master_of is not None else "master")
    member_is_me = k.node_id == me.node_id
    if not member_is_me and k.state == SUSPECT:
        flags.append("fail?")
    elif not member_is_me and k.state == DEAD:
        flags.append("fail")
    pong_ms = int((now_unix - k.heartbeat_age_s) * 1000) if k.heartbeat_age_s is not None and not member_is_me else 0
    link = "connected" if member_is_me or k.state != DEAD else "disconnected"
    primary = (_ranges_text(slotmap.ranges(k.node_id)[0])
               if not replica_endpoint and slotmap.has_member(k.node_id) else [])
    return " ".join([node_id, f"{k.host}:{port}@{k.mesh_port}", ",".join(flags), master_of or "-",
                     "0", str(pong_ms), str(slotmap.epoch), link, *primary])


def _replica_lines(slotmap: SlotMap, known: list[Known], me: Member, now_unix: float,
                   myself_id: str | None, holders: list[str] | None = None, master_of: str | None = None) -> list[str]:
    """The lines of the replica endpoints of `holders` (default: every member holding copies, and the
    endpoint the client is on even without copies), each naming `master_of` or else the member
    whose slots it copies most."""
    ranges = slotmap.owner_ranges()
    by_id = {k.node_id: k for k in known}
    lines = []
    for node_id in holders if holders is not None else list(by_id):
        k = by_id.get(node_id)
        if k is None or replica_port(k.port) is None:
            continue
        master = master_of or replicated_master(ranges, node_id)
        if master is not None or (holders is None and replica_id(node_id) == myself_id):
            lines.append(_node_line(k, slotmap, me, now_unix, myself_id, replica_endpoint=True, master_of=master))
    return lines


def nodes_reply(slotmap: SlotMap, members: dict[str, dict], me: Member, now_unix: float,
                myself_id: str | None = None) -> bytes:
    """CLUSTER NODES: a `master` line per known member (its primary ranges), then a `slave` line per
    replica endpoint holding copies; `myself` marks `myself_id` (default: my primary endpoint)."""
    known = known_members(slotmap, members, me)
    lines = [_node_line(k, slotmap, me, now_unix, myself_id) for k in known]
    lines += _replica_lines(slotmap, known, me, now_unix, myself_id)
    return ("\n".join(lines) + "\n").encode()


def replicas_reply(slotmap: SlotMap, members: dict[str, dict], me: Member, now_unix: float,
                   node_id: bytes, myself_id: str | None = None) -> list[bytes]:
    """CLUSTER REPLICAS/SLAVES: the CLUSTER NODES lines (no newline) of the replica endpoints of the
    members holding copies of `node_id`'s primary slots; Redis's errors for an unknown id and for
    a replica endpoint's id.

    A member that leads no slot has no replicas (an empty array, as Redis answers
    for a master without replicas). Ids are matched exactly, as Redis does.
    """
    known = known_members(slotmap, members, me)
    ids = [k.node_id for k in known]
    wanted = node_id.decode("utf-8", "replace")
    if wanted in {replica_id(i) for i in ids}:
        raise CommandError("ERR The specified node is not a master")
    if wanted not in ids:
        raise CommandError(f"ERR Unknown node {wanted}")
    holders = replicas_of(slotmap.owner_ranges(), wanted, ids)
    return [line.encode() for line in _replica_lines(slotmap, known, me, now_unix, myself_id, holders, wanted)]


def _shard_node(k: Known, role: str, offset: int, loading: bool) -> dict:
    host = k.host.encode()
    # Redis 7.0.15 sends "fail" for a failed node (its documentation says "failed")
    health = b"fail" if k.state == DEAD else b"loading" if loading else b"online"
    node_id, port = k.node_id, k.port
    if role == "replica":       # (a member's copies are its replica endpoint's)
        node_id, port = replica_id(k.node_id), replica_port(k.port) or 0
    return {
        b"id": node_id.encode(), b"port": port, b"ip": host, b"endpoint": host,
        b"role": role.encode(), b"replication-offset": offset, b"health": health,
    }


def shards_reply(slotmap: SlotMap, members: dict[str, dict], me: Member | None = None,
                 replication: ReplicationState = NO_REPLICATION) -> list:
    """CLUSTER SHARDS: one shard per distinct owner list (its slot ranges, primary then replicas).

    Offsets and health come from this node's replication streams, as
    hypercache/replication_state.py defines them.
    """
    known = {k.node_id: k for k in known_members(slotmap, members, me)}
    shards: dict[tuple[str, ...], list[int]] = {}
    for first, last, owners in slotmap.owner_ranges():
        if owners:
            shards.setdefault(owners, []).extend((first, last))
    progress = shard_progress(replication, me.node_id if me is not None else "", slotmap.owners)
    reply = []
    for owners, ranges in shards.items():
        # (a member without a replica endpoint, RESP port past 60535, is no replica here, as in SLOTS)
        nodes = [_shard_node(known[node_id], "master" if index == 0 else "replica", offset, loading)
                 for index, (node_id, (offset, loading)) in enumerate(zip(owners, progress(owners)))
                 if index == 0 or replica_port(known[node_id].port) is not None]
        reply.append({b"slots": ranges, b"nodes": nodes})
    owning = {node_id for owners in shards for node_id in owners}
    for node_id, k in known.items():
        if node_id not in owning:
            offset = replication.master_offset if me is not None and node_id == me.node_id else 0
            reply.append({b"slots": [], b"nodes": [_shard_node(k, "master", offset, False)]})
    return reply


def info_reply(slotmap: SlotMap, status: dict, me: Member | None = None) -> bytes:
    """CLUSTER INFO: cluster_state and slot counts as Redis reports them, plus mesh message counts."""
    members = status.get("members", {})
    # (by runs of slots, a primary's state read once a run: per slot, and cluster_size per member
    # over all slots, it was most of a seed's CPU while 60 nodes joined, polled by mesh_cost.py)
    pfail = fail = assigned = 0
    primaries: set[str] = set()
    for first, last, owners in slotmap.owner_ranges():
        if not owners:
            continue
        count = last - first + 1
        assigned += count
        primaries.add(owners[0])
        state = _state(members, owners[0])
        if state == SUSPECT:
            pfail += count
        elif state == DEAD:
            fail += count
    accepting = status.get("accepting_writes", True)
    ok = accepting and fail == 0 and assigned == SLOT_COUNT
    fields = [
        ("cluster_state", "ok" if ok else "fail"),
        ("cluster_slots_assigned", assigned),
        ("cluster_slots_ok", assigned - pfail - fail),
        ("cluster_slots_pfail", pfail),
        ("cluster_slots_fail", fail),
        ("cluster_known_nodes", len(known_members(slotmap, members, me))),
        ("cluster_size", len(primaries)),
        ("cluster_current_epoch", max(slotmap.epoch, status.get("epoch", 0))),
        ("cluster_my_epoch", slotmap.epoch),
        ("cluster_stats_messages_sent", status.get("mesh_out", 0)),
        ("cluster_stats_messages_received", status.get("mesh_in", 0)),
        ("total_cluster_links_buffer_limit_exceeded", 0),
    ]
    return "".join(f"{name}:{value}\r\n" for name, value in fields).encode()


def _status(ctx) -> dict:
    """The mesh's status with the write flag filled in (a lone node's status may not carry it)."""
    status = dict(ctx.cluster.status())
    status.setdefault("accepting_writes", ctx.cluster.accepting_writes())
    return status


def _slot(raw: bytes, error: CommandError) -> int:
    slot = parse_int(raw)
    if not 0 <= slot < SLOT_COUNT:
        raise error
    return slot


container("cluster", -2, "", "cluster", "A container for Redis Cluster commands.", "3.0.0")


@command("cluster|slots", 2, "stale", group="cluster",
         summary="Returns the mapping of cluster slots to nodes.", since="3.0.0")
def cluster_slots(ctx, session, args):
    """Format: CLUSTER SLOTS"""
    return slots_reply(ctx.cluster.slotmap, ctx.cluster.status().get("members", {}))


@command("cluster|shards", 2, "stale", group="cluster",
         summary="Returns the mapping of cluster slots to shards.", since="7.0.0")
def cluster_shards(ctx, session, args):
    """Format: CLUSTER SHARDS"""
    return shards_reply(ctx.cluster.slotmap, ctx.cluster.status().get("members", {}), ctx.cluster.me,
                        read(ctx.replicator))


@command("cluster|nodes", 2, "stale", group="cluster",
         summary="Returns the cluster configuration for a node.", since="3.0.0")
def cluster_nodes(ctx, session, args):
    """Format: CLUSTER NODES"""
    members = ctx.cluster.status().get("members", {})
    return Verbatim(nodes_reply(ctx.cluster.slotmap, members, ctx.cluster.me, time.time(), _myself(ctx, session)))


@command("cluster|replicas", 3, "admin stale", group="cluster",
         summary="Lists the replica nodes of a master node.", since="5.0.0")
def cluster_replicas(ctx, session, args):
    """Format: CLUSTER REPLICAS node-id"""
    members = ctx.cluster.status().get("members", {})
    return replicas_reply(ctx.cluster.slotmap, members, ctx.cluster.me, time.time(), args[2], _myself(ctx, session))


@command("cluster|slaves", 3, "admin stale", group="cluster",
         summary="Lists the replica nodes of a master node.", since="3.0.0")
def cluster_slaves(ctx, session, args):
    """Format: CLUSTER SLAVES node-id"""
    return cluster_replicas(ctx, session, args)


@command("cluster|info", 2, "stale", group="cluster",
         summary="Returns information about the state of a node.", since="3.0.0")
def cluster_info(ctx, session, args):
    """Format: CLUSTER INFO"""
    status = _status(ctx)
    return Verbatim(info_reply(ctx.cluster.slotmap, status, ctx.cluster.me) + _verdict_fields(ctx, status))


def _verdict_fields(ctx, status: dict) -> bytes:
    """hypercache_cluster_state(_reason): cluster_state keeps Redis's meaning (every slot
    served), this says "degraded" while a copy is missing (hypercache/health.py)."""
    slotmap = ctx.cluster.slotmap
    summary = replication_summary(read(getattr(ctx, "replicator", None)), ctx.node_id, slotmap.owners)
    members = status.get("members", {})
    down = [(m.node_id, _state(members, m.node_id)) for m in slotmap.members
            if m.node_id != ctx.node_id and _state(members, m.node_id) != ALIVE]
    assigned = sum(last - first + 1 for first, last, owners in slotmap.owner_ranges() if owners)   # (by runs, as info_reply)
    stranded = health.stranded_keys(ctx.store.slots, slotmap.owners, ctx.node_id)
    state, reason = health.verdict(status.get("accepting_writes", True), assigned, summary, down, None, stranded,
                                   status.get("peers_unsubscribed", 0), status.get("peers_relayed", 0))
    fields = f"hypercache_cluster_state:{state}\r\n"
    if reason is not None:
        fields += f"hypercache_cluster_state_reason:{reason}\r\n"
    return fields.encode()


@command("cluster|myid", 2, "stale", group="cluster",
         summary="Returns the ID of a node.", since="3.0.0")
def cluster_myid(ctx, session, args):
    """Format: CLUSTER MYID"""
    return _myself(ctx, session).encode()


def _myself(ctx, session) -> str:
    """The id of the endpoint this client is connected to: the member's, or its replica endpoint's."""
    return replica_id(ctx.node_id) if session.replica_endpoint else ctx.node_id


@command("cluster|keyslot", 3, "stale", group="cluster",
         summary="Returns the hash slot for a key.", since="3.0.0")
def cluster_keyslot(ctx, session, args):
    """Format: CLUSTER KEYSLOT key"""
    return keyslot(args[2])


@command("cluster|countkeysinslot", 3, "stale", group="cluster",
         summary="Returns the number of keys in a hash slot.", since="3.0.0")
def cluster_countkeysinslot(ctx, session, args):
    """Format: CLUSTER COUNTKEYSINSLOT slot"""
    return len(ctx.store.slots[_slot(args[2], INVALID_SLOT)])


@command("cluster|getkeysinslot", 4, "stale", group="cluster",
         summary="Returns the key names in a hash slot.", since="3.0.0")
def cluster_getkeysinslot(ctx, session, args):
    """Format: CLUSTER GETKEYSINSLOT slot count"""
    slot = parse_int(args[2])
    count = parse_int(args[3])
    if not 0 <= slot < SLOT_COUNT or count < 0:
        raise INVALID_SLOT_OR_COUNT
    return list(islice(ctx.store.slots[slot], count))


@command("cluster|help", 2, "loading stale", group="cluster",
         summary="Returns helpful text about the different subcommands.", since="5.0.0")
def cluster_help(ctx, session, args):
    """Format: CLUSTER HELP"""
    return [Status(line) for line in (
        b"CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"COUNTKEYSINSLOT <slot>",
        b"    Return the number of keys in <slot>.",
        b"GETKEYSINSLOT <slot> <count>",
        b"    Return key names stored by current node in a slot.",
        b"INFO",
        b"    Return information about the cluster.",
        b"KEYSLOT <key>",
        b"    Return the hash slot for <key>.",
        b"MEET <ip> <port> [<bus-port>]",
        b"    Connect nodes into a working cluster.",
        b"MYID",
        b"    Return the node id.",
        b"NODES",
        b"    Return cluster configuration seen by node. Output format:",
        b"    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
        b"REPLICAS <node-id>",
        b"    Return <node-id> replicas.",
        b"SLOTS",
        b"    Return information about slots range mappings. Each range is made of:",
        b"    start, end, master and replicas IP addresses, ports and ids",
        b"SHARDS",
        b"    Return information about slot range mappings and the nodes associated with them.",
        b"HELP",
        b"    Prints this help.",
    )]


def _is_ip(host: bytes) -> bool:
    """A literal IPv4 or IPv6 address, as inet_pton() reads it in Redis's clusterStartHandshake.

    Host names are refused, as Redis refuses them; so are what inet_pton does
    not read: "127.1", leading zeros ("01.2.3.4"), an IPv6 zone ("fe80::1%lo").
    """
    try:
        text = host.decode("ascii")
        ipaddress.ip_address(text)
    except ValueError:      # UnicodeDecodeError is one
        return False
    return "%" not in text


def meet_address(args: list[bytes]) -> tuple[str, int]:
    """(ip, mesh port) of `CLUSTER MEET ip port [bus-port]`, refused with Redis 7.0's errors.

    The bus port defaults to port + 10000, as Redis's; a port is an integer as
    string2ll reads it, then both must be 1..65535 and the ip a literal address.
    """
    if len(args) > 5:
        raise CommandError("ERR unknown subcommand or wrong number of arguments for "
                           f"'{args[1].decode('utf-8', 'replace')}'. Try CLUSTER HELP.")   # as typed
    ip, port_arg = args[2], args[3]
    shown = port_arg.decode("utf-8", "replace")
    port = parse_int(port_arg, f"ERR Invalid TCP base port specified: {shown}")
    if len(args) == 5:
        mesh_port = parse_int(args[4], "ERR Invalid TCP bus port specified: "
                              + args[4].decode("utf-8", "replace"))
    else:
        mesh_port = port + 10000
    if not (_is_ip(ip) and 0 < port <= 65535 and 0 < mesh_port <= 65535):
        # as Redis, the address is shown with the base port even when the bus port is the bad one
        raise CommandError(f"ERR Invalid node address specified: {ip.decode('utf-8', 'replace')}:{shown}")
    return ip.decode("ascii"), mesh_port
