"""Redis Cluster's administration commands (what `redis-cli --cluster` sends): done as hypercache does it, or refused.

Redis Cluster is run by hand: an operator assigns slots (ADDSLOTS, SETSLOT), picks
replicas (REPLICATE), moves slots (reshard: SETSLOT IMPORTING/MIGRATING + MIGRATE)
and fails over (FAILOVER). hypercache decides all of that itself: the ring places
every slot and its replicas, a majority votes each new map, data follows the map.
So a command that would take one of those decisions is refused at once, with an
error that says what to do instead, never an OK that changes nothing.

What maps onto a hypercache operation is done:
  CLUSTER MEET     (redis-cli --cluster add-node, or by hand): joins the cluster of the address
                   given; but not when `redis-cli --cluster create` sends it (below)
  CLUSTER FORGET   a dead member the map has already dropped: forgotten now, instead
                   of after 10 node timeouts; a live or still-mapped member is refused
  CLUSTER FAILOVER TAKEOVER
                   the operator's way out of a majority lost for good: the survivors
                   drop the dead members without a vote (mesh/takeover.py)
`redis-cli --cluster create A B C` computes and prints a slot plan before it sends anything
but INFO, CLUSTER NODES and CLUSTER INFO, the same checks add-node makes on its new node, so
no reply can stop it before the plan. Then it sends each node ADDSLOTS (refused, and redis-cli
7.0 goes on: it clears the node's dirty flag whatever the reply) and SET-CONFIG-EPOCH (reply
ignored), then CLUSTER MEET to all but the first: the first reply it stops on. A MEET on a
connection that sent SET-CONFIG-EPOCH, which no other redis-cli tool sends, is that one: it is
refused with the add-node command to run instead, so create ends in an error right after its
plan, nothing joined, rather than in a cluster whose layout is not the one it printed.
The decisions are pure functions of values (`forget_refusal`, `create_refusal`), tested without a node.
"""
from __future__ import annotations

import time

from mesh.takeover import TakeoverRefused

from ..arguments import parse_int
from ..reply import OK, CommandError
from . import command
from .cluster import meet_address   # (importing it declares the CLUSTER container these join)

ADMIN = "admin stale no-async-loading"

# One line each, as redis-cli prints them after "[ERR]" or "failed:".
SLOTS_ARE_PLACED = (
    "ERR hypercache places slots itself on its consistent-hash ring (no ADDSLOTS, DELSLOTS, SETSLOT: "
    "redis-cli --cluster reshard, rebalance and fix cannot move them). To add a node start it with "
    "--join HOST:MESHPORT (or redis-cli --cluster add-node); to remove one stop it with SIGTERM, "
    "it hands its slots over and leaves")
EPOCHS_ARE_VOTED = ("ERR hypercache numbers its slot maps itself: each epoch is voted by a majority "
                    "of the members (no SET-CONFIG-EPOCH, BUMPEPOCH)")
REPLICAS_ARE_PLACED = (
    "ERR hypercache places replicas itself: every slot has --replication-factor copies on the next "
    "members of the ring, and every member is a primary of some slots and a replica of others "
    "(CLUSTER SHARDS shows them); no CLUSTER REPLICATE")
FAILOVER_IS_AUTOMATIC = (
    "ERR hypercache fails over by itself: a primary unheard for --node-timeout-ms is declared dead "
    "by a majority and its replicas take its slots. To move a node's slots away, stop it with "
    "SIGTERM (a graceful leave); no CLUSTER FAILOVER")
NO_RESET = ("ERR hypercache does not reset a member: stop it with SIGTERM (it hands its slots over "
            "and leaves), then start it with an empty --data-dir to make it a new node")
FORGET_MYSELF = "ERR I tried hard but I can't forget myself..."


def _slot_range_check(args: list[bytes], start: int) -> None:
    """Redis's own argument errors come first, so a typo reads as it would on redis-server."""
    for raw in args[start:]:
        slot = parse_int(raw, "ERR Invalid or out of range slot")
        if not 0 <= slot < 16384:
            raise CommandError("ERR Invalid or out of range slot")


@command("cluster|addslots", -3, ADMIN, group="cluster", since="3.0.0",
         summary="Assigns new hash slots to a node.")
def cluster_addslots(ctx, session, args):
    """Format: CLUSTER ADDSLOTS slot [slot ...] (refused: the ring places slots)"""
    _slot_range_check(args, 2)
    raise CommandError(SLOTS_ARE_PLACED)


@command("cluster|addslotsrange", -4, ADMIN, group="cluster", since="7.0.0",
         summary="Assigns new hash slot ranges to a node.")
def cluster_addslotsrange(ctx, session, args):
    """Format: CLUSTER ADDSLOTSRANGE start-slot end-slot [start-slot end-slot ...] (refused)"""
    if len(args) % 2:
        raise CommandError("ERR wrong number of arguments for 'cluster|addslotsrange' command")
    _slot_range_check(args, 2)
    raise CommandError(SLOTS_ARE_PLACED)


@command("cluster|delslots", -3, ADMIN, group="cluster", since="3.0.0",
         summary="Sets hash slots as unbound for a node.")
def cluster_delslots(ctx, session, args):
    """Format: CLUSTER DELSLOTS slot [slot ...] (refused)"""
    _slot_range_check(args, 2)
    raise CommandError(SLOTS_ARE_PLACED)


@command("cluster|delslotsrange", -4, ADMIN, group="cluster", since="7.0.0",
         summary="Sets hash slot ranges as unbound for a node.")
def cluster_delslotsrange(ctx, session, args):
    """Format: CLUSTER DELSLOTSRANGE start-slot end-slot [start-slot end-slot ...] (refused)"""
    if len(args) % 2:
        raise CommandError("ERR wrong number of arguments for 'cluster|delslotsrange' command")
    _slot_range_check(args, 2)
    raise CommandError(SLOTS_ARE_PLACED)


@command("cluster|flushslots", 2, ADMIN, group="cluster", since="3.0.0",
         summary="Deletes all slots information from a node.")
def cluster_flushslots(ctx, session, args):
    """Format: CLUSTER FLUSHSLOTS (refused)"""
    raise CommandError(SLOTS_ARE_PLACED)


@command("cluster|setslot", -4, ADMIN, group="cluster", since="3.0.0",
         summary="Binds a hash slot to a node.")
def cluster_setslot(ctx, session, args):
    """Format: CLUSTER SETSLOT slot IMPORTING node-id | MIGRATING node-id | NODE node-id | STABLE (refused)"""
    _slot_range_check(args[:3], 2)
    raise CommandError(SLOTS_ARE_PLACED)


@command("cluster|set-config-epoch", 3, ADMIN, group="cluster", since="3.0.0",
         summary="Sets the configuration epoch for a new node.")
def cluster_set_config_epoch(ctx, session, args):
    """Format: CLUSTER SET-CONFIG-EPOCH config-epoch (refused)"""
    session.sent_config_epoch = True     # redis-cli --cluster create: its MEET comes next
    raise CommandError(EPOCHS_ARE_VOTED)


@command("cluster|bumpepoch", 2, ADMIN, group="cluster", since="3.0.0",
         summary="Advances the cluster config epoch.")
def cluster_bumpepoch(ctx, session, args):
    """Format: CLUSTER BUMPEPOCH (refused)"""
    raise CommandError(EPOCHS_ARE_VOTED)


@command("cluster|replicate", 3, ADMIN, group="cluster", since="3.0.0",
         summary="Configure a node as replica of a master node.")
def cluster_replicate(ctx, session, args):
    """Format: CLUSTER REPLICATE node-id (refused: the ring places replicas)"""
    raise CommandError(REPLICAS_ARE_PLACED)


@command("cluster|failover", -2, ADMIN, group="cluster", since="3.0.0",
         summary="Forces a replica to perform a manual failover of its master.")
def cluster_failover(ctx, session, args):
    """Format: CLUSTER FAILOVER [FORCE | TAKEOVER] (TAKEOVER: after a majority is lost for good)"""
    if len(args) > 3 or (len(args) == 3 and args[2].lower() not in (b"force", b"takeover")):
        raise CommandError("ERR syntax error")
    if len(args) < 3 or args[2].lower() != b"takeover":
        raise CommandError(FAILOVER_IS_AUTOMATIC)
    try:
        ctx.cluster.take_over()
    except TakeoverRefused as refusal:
        raise CommandError(str(refusal)) from None
    return OK


@command("cluster|reset", -2, "admin noscript stale", group="cluster", since="3.0.0",
         summary="Resets a node.")
def cluster_reset(ctx, session, args):
    """Format: CLUSTER RESET [HARD | SOFT] (refused)"""
    if len(args) > 3 or (len(args) == 3 and args[2].lower() not in (b"hard", b"soft")):
        raise CommandError("ERR syntax error")
    raise CommandError(NO_RESET)


def create_refusal(me: str, first: str) -> str:
    """The error for `redis-cli --cluster create`'s MEET: this node at `me` told to meet the first
    node, `first` (both host:port as redis-cli connected to them)."""
    return (f"ERR hypercache places slots itself, so redis-cli --cluster create's slot plan was not "
            f"applied and no node joined. Add the other nodes to the first one at a time instead, as: "
            f"redis-cli --cluster add-node {me} {first} (or start them with --join HOST:MESHPORT)")


@command("cluster|meet", -4, "admin stale no-async-loading", group="cluster",
         summary="Forces a node to handshake with another node.", since="3.0.0")
def cluster_meet(ctx, session, args):
    """Format: CLUSTER MEET ip port [cluster-bus-port]"""
    host, mesh_port = meet_address(args)
    meet = getattr(ctx.cluster, "meet", None)
    if meet is None:
        raise CommandError("ERR This instance has cluster support disabled")
    if session.sent_config_epoch:
        raise CommandError(create_refusal(session.laddr, f"{host}:{int(args[3])}"))
    meet(host, mesh_port)
    return OK


def forget_refusal(node_id: str, me: str, known: bool, alive: bool, in_map: bool,
                   suspect: bool = False) -> str | None:
    """Why CLUSTER FORGET node_id is refused, or None when the member is to be forgotten.

    A dead member the committed map no longer holds goes: a live one would be learned
    again from its next heartbeat, and a dead one the map holds still owns slots (its
    removal is a new map, which a majority votes since it is declared dead). A member
    held suspect here or reported suspect by another (`suspect`) is declared dead on the operator's word: in
    a map of more than 9 members one whose watchers mostly went with it is never
    declared dead by the others (mesh/watch.py), and its slots wait for this.
    """
    if node_id == me:
        return FORGET_MYSELF
    if not known:
        return f"ERR Unknown node {node_id}"
    if alive and not suspect:
        return (f"ERR {node_id} is alive: hypercache forgets dead members only. To remove a live "
                f"node stop it with SIGTERM (it hands its slots over and leaves)")
    if in_map and not suspect:
        return (f"ERR {node_id} is dead but still in the slot map: the cluster drops it once a "
                f"majority of the members commits a map without it (see CLUSTER INFO)")
    return None


@command("cluster|forget", 3, ADMIN, group="cluster", since="3.0.0",
         summary="Removes a node from the nodes table.")
def cluster_forget(ctx, session, args):
    """Format: CLUSTER FORGET node-id (a dead member the map no longer holds, or a silent one)"""
    cluster = ctx.cluster
    node_id = args[2].decode("utf-8", "replace")
    membership = getattr(cluster, "membership", None)
    if membership is None:
        raise CommandError("ERR This instance has cluster support disabled")
    known = node_id in membership.peers or cluster.slotmap.has_member(node_id)
    suspect = cluster.silent(node_id)
    refusal = forget_refusal(node_id, ctx.node_id, known, cluster.is_alive(node_id),
                             cluster.slotmap.has_member(node_id), suspect)
    if refusal is not None:
        raise CommandError(refusal)
    if suspect:
        # (run on every member, as Redis's FORGET is: the proposer then drops it from the map,
        # and the voters, which hold it suspect or dead, vote for that)
        cluster.declare_dead(node_id)
    if not cluster.slotmap.has_member(node_id) and membership.forget(node_id):
        cluster.links.disconnect(node_id)
    return OK


# -- introspection: what Redis Cluster's bus shows, from the mesh ---------------------------------

@command("cluster|links", 2, "stale", group="cluster", since="7.0.0",
         summary="Returns a list of all TCP links to and from peer nodes in cluster")
def cluster_links(ctx, session, args):
    """Format: CLUSTER LINKS

    A member hears every other on the mesh (a SUB to its PUB) and is heard by it: one "to" and
    one "from" link per member not known dead, as Redis shows its bus links. The mesh does not
    date its sockets: create-time is this node's start; the mesh's queues are not counted here
    (send-buffer 0; INFO and /metrics count mesh messages).
    """
    started_ms = int((time.time() - (time.monotonic() - ctx.started_at)) * 1000)
    links = []
    for node_id, member in ctx.cluster.status()["members"].items():
        if member["myself"] or member["state"] == "dead":
            continue
        for direction, events in (("to", b"rw"), ("from", b"r")):
            links.append({b"direction": direction.encode(), b"node": node_id.encode(),
                          b"create-time": started_ms, b"events": events,
                          b"send-buffer-allocated": 0, b"send-buffer-used": 0})
    return links


@command("cluster|count-failure-reports", 3, "admin stale", group="cluster", since="3.0.0",
         summary="Return the number of failure reports active for a given node")
def cluster_count_failure_reports(ctx, session, args):
    """Format: CLUSTER COUNT-FAILURE-REPORTS node-id

    0 for a known node: the mesh decides a member's death by its own suspicion and a voted
    map, not by collecting failure reports, so there are none to count.
    """
    node_id = args[2].decode("utf-8", "replace")
    if node_id not in ctx.cluster.status()["members"]:
        raise CommandError(f"ERR Unknown node {node_id}")
    return 0


@command("cluster|saveconfig", 2, ADMIN, group="cluster", since="3.0.0",
         summary="Forces the node to save cluster state on disk")
def cluster_saveconfig(ctx, session, args):
    """Format: CLUSTER SAVECONFIG

    OK: what a member keeps on disk (its id, its vote key and its election vote, with --data-dir) is written
    when it changes, so there is nothing left to save.
    """
    return OK


@command("cluster|myshardid", 2, "loading stale", group="cluster", since="7.2.0",
         summary="Returns the shard ID of a node.")
def cluster_myshardid(ctx, session, args):
    """Format: CLUSTER MYSHARDID  (Redis 7.2's)

    Every member is the primary of the slots the ring gives it, and the shard CLUSTER SHARDS
    shows for them is led by it: the member's id names its shard.
    """
    return ctx.node_id.encode()
