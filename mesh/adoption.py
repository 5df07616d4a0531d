"""Decide whether a map a peer sent may be adopted: only when enough authenticated members hold it.

A `Commit` carries a map and proves nothing: anyone who can speak on the mesh can
send one, at any epoch. A node takes a map as its own in one of two ways:

1. *Tallied* (mesh/election.py): it counted votes for the map from a majority of
   the base map's members, each vote read off a link bound to its voter
   (mesh/links.py). This is how every member that heard the votes commits.
2. *Attested* (here): a node that missed the votes (paused, messages dropped)
   or is only joining takes a map it was sent once enough members say in their
   own heartbeats, each also read off a link bound to its sender, that they
   hold exactly that map (its epoch and digest). Honest members hold committed
   maps only, so a majority that cannot be all liars vouches for the map.
   (In an open mesh, what a node hears of a peer it has no link to comes through
   a relayer, on that member's word, mesh/links.py: a lying relayer can mislead
   that node, and only it.)

   - a member (it holds a cluster map, `current`) needs a majority of
     `current`'s members: the map it already trusts names who may vouch. Its
     own vote for the map counts as its voice (in a two-member cluster the
     other member is not a majority on its own);
   - a node that holds no cluster map (its own one-member map from the start,
     epoch 0: joining, or a first node restarted without --join) has nothing
     that names the voters. It takes the word of a member it reached through
     an address the operator gave it (--join, CLUSTER MEET): its anchor. Or,
     with no anchor (a restarted first node, found again by the members that
     still list it), a map that makes it a member, held by a majority of that
     map's other members: the cluster then added it by its own majority.
     Counting a majority of any new map's members would let one insider
     invent a map whose only member is itself, and would deadlock two nodes
     joining in one map (each waits for the other to hold it).

A member that missed a commit *and* lost the majority of its old map's members
before catching up cannot catch up by this rule and stays on its map (safe,
not live); a restart with --join makes it a joining node again.

Pure: values in, a verdict out; no clock, no sockets.
"""
from __future__ import annotations

from typing import Collection, Mapping

from mesh.slotmap import SlotMap


def holders(epoch: int, map_digest: bytes, held: Mapping[str, tuple[int, bytes]],
            among: Collection[str]) -> set[str]:
    """Return the members of `among` whose last authenticated heartbeat names the map (epoch, digest)."""
    return {node_id for node_id in among if held.get(node_id) == (epoch, map_digest)}


def attested(candidate: SlotMap, map_digest: bytes, current: SlotMap, me: str,
             held: Mapping[str, tuple[int, bytes]], *, anchors: Collection[str] = (),
             voted_for_it: bool = False) -> bool:
    """True if this node may adopt `candidate` (digest `map_digest`) over `current`.

    `held` maps a peer to the (epoch, digest) of the map its last authenticated
    heartbeat carried; `anchors` are the peers heard on links to a --join/MEET
    address; `voted_for_it` is true if this node's own last vote was for this
    map. `current` at epoch 0 with this node alone is no cluster map.
    """
    if current.epoch == 0 and current.members == (current.member(me),):
        if holders(candidate.epoch, map_digest, held, [a for a in anchors if a != me]):
            return True
        others = [m.node_id for m in candidate.members if m.node_id != me]
        vouching = holders(candidate.epoch, map_digest, held, others)
        return candidate.has_member(me) and bool(others) and len(vouching) >= len(others) // 2 + 1
    if candidate.epoch <= current.epoch:
        return False
    voters = [m.node_id for m in current.members if m.node_id != me]
    vouching = holders(candidate.epoch, map_digest, held, voters)
    voices = len(vouching) + (1 if voted_for_it and current.has_member(me) else 0)
    return voices >= len(current.members) // 2 + 1
