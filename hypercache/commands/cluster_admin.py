"""Redis Cluster's administration commands (what `redis-cli --cluster` sends): done as hypercache does it, or refused.

Redis Cluster is run by hand: an operator assigns slots (ADDSLOTS, SETSLOT), picks
replicas (REPLICATE), moves slots (reshard: SETSLOT IMPORTING/MIGRATING + MIGRATE)
and fails over (FAILOVER). hypercache decides all of that itself: the ring places
every slot and its replicas, a majority votes each new map, data follows the map.
So a command that would take one of those decisions is refused at once, with an
error that says what to do instead, never an OK that changes nothing.

What maps onto a hypercache operation is done:
  CLUSTER MEET     (redis-cli --cluster add-node, create): joins (hypercache/commands/cluster.py)
  CLUSTER FORGET   a dead member the map has already dropped: forgotten now, instead
                   of after 10 node timeouts; a live or still-mapped member is refused
  CLUSTER FAILOVER TAKEOVER
                   the operator's way out of a majority lost for good: the survivors
                   drop the dead members without a vote (mesh/takeover.py)
The decisions are pure functions of values (`forget_refusal`), tested without a node.
"""
from __future__ import annotations

from mesh.takeover import TakeoverRefused

from ..arguments import parse_int
from ..reply import OK, CommandError
from . import cluster as _container  # noqa: F401  (declares the CLUSTER container these join)
from . import command

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


def forget_refusal(node_id: str, me: str, known: bool, alive: bool, in_map: bool) -> str | None:
    """Why CLUSTER FORGET node_id is refused, or None when the member is to be forgotten.

    Only a dead member the committed map no longer holds can go: a live one would be
    learned again from its next heartbeat, and one the map holds still owns slots
    (its removal is a new map, which a majority votes once it is declared dead).
    """
    if node_id == me:
        return FORGET_MYSELF
    if not known:
        return f"ERR Unknown node {node_id}"
    if alive:
        return (f"ERR {node_id} is alive: hypercache forgets dead members only. To remove a live "
                f"node stop it with SIGTERM (it hands its slots over and leaves)")
    if in_map:
        return (f"ERR {node_id} is dead but still in the slot map: the cluster drops it once a "
                f"majority of the members commits a map without it (see CLUSTER INFO)")
    return None


@command("cluster|forget", 3, ADMIN, group="cluster", since="3.0.0",
         summary="Removes a node from the nodes table.")
def cluster_forget(ctx, session, args):
    """Format: CLUSTER FORGET node-id (a dead member the map no longer holds)"""
    cluster = ctx.cluster
    node_id = args[2].decode("utf-8", "replace")
    membership = getattr(cluster, "membership", None)
    if membership is None:
        raise CommandError("ERR This instance has cluster support disabled")
    known = node_id in membership.peers or cluster.slotmap.has_member(node_id)
    refusal = forget_refusal(node_id, ctx.node_id, known, cluster.is_alive(node_id),
                             cluster.slotmap.has_member(node_id))
    if refusal is not None:
        raise CommandError(refusal)
    if membership.forget(node_id):
        cluster.links.disconnect(node_id)
    return OK
