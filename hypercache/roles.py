"""How the ring maps onto Redis's model of masters and replicas: every member is two nodes.

On the ring a member is the primary of some slot ranges and a replica of
others, whose primaries are several other members. Redis clients cannot hold
that: a Redis node is a master or a replica of one master, and clients key
nodes by host:port. redis-py keeps the first role it sees for an address in
CLUSTER SLOTS (on 3 members at replication factor 2 it counted 1 primary and
2 replicas, so `flushdb(target_nodes="primaries")` reached one node), and
ioredis with `scaleReads: "slave"` never sent READONLY to an address it had
taken for a master.

So each member shows itself as two Redis nodes, on two ports of one process:

* its **primary endpoint**, the RESP port, with the member's id: a master,
  owning the ranges the member leads;
* its **replica endpoint**, RESP port + 5000, with an id derived
  from the member's: a replica, serving (after READONLY) the ranges the member
  holds copies of. CLUSTER SLOTS lists it per range as that range's replica, so
  a client reading from replicas finds the right one for each slot.

Both serve from the same store: reads after READONLY on the replica endpoint
are reads of the member's copies; writes sent there are redirected (MOVED) to
the slot's primary endpoint, and keyless writes refused with READONLY, as a
Redis replica answers.
"""
from __future__ import annotations

import hashlib

# The replica endpoint's port is the RESP port plus this (8080 -> 13080, 6379 ->
# 11379), as the mesh is + 10000 and the data channel + 20000. (+ 30000 would
# land in the kernel's ephemeral range, where an outgoing connection can hold
# the port.) A RESP port past 60535 has no replica endpoint.
REPLICA_PORT_OFFSET = 5000
MAX_PORT = 65535


def replica_port(port: int) -> int | None:
    """The replica endpoint's port of a member whose RESP port is `port` (None: it has none)."""
    if not port:
        return None
    derived = port + REPLICA_PORT_OFFSET
    return derived if derived <= MAX_PORT else None


def replica_id(node_id: str) -> str:
    """The replica endpoint's node id: 40 hex characters, fixed for a member, never a member's id."""
    return hashlib.sha1(b"hypercache replica endpoint " + node_id.encode()).hexdigest()


def replicated_master(owner_ranges, node_id: str) -> str | None:
    """The member whose primary slots `node_id` holds most copies of: the one master Redis's
    CLUSTER NODES lets a replica line name (`slave <master id>`); None if it holds none."""
    counts: dict[str, int] = {}
    for first, last, owners in owner_ranges:
        if node_id in owners[1:]:
            counts[owners[0]] = counts.get(owners[0], 0) + last - first + 1
    if not counts:
        return None
    return max(sorted(counts), key=lambda primary: counts[primary])


def replica_view(cluster, replicator, me: str) -> tuple[str, int, bool, int] | None:
    """What the replica endpoint says of its master in ROLE and INFO replication:
    (host, port, link up, offset applied) of the member it copies most; None: no copies."""
    slotmap = cluster.slotmap
    master = replicated_master(slotmap.owner_ranges(), me)
    if master is None:
        return None
    member = slotmap.member(master)
    follow = replicator.inbound.get(master) if replicator is not None else None
    applied = follow.applied if follow is not None else 0
    up = follow is not None and cluster.is_alive(master) and not replicator.copying_in
    return member.host, member.port, up, applied
