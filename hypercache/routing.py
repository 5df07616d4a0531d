"""Decide where a command runs: here, or a redirect. The only place redirects are formatted.

`route()` is pure: given the command's keys, the current slot map, this node's
id and the session's flags, it returns the slot to run on (or NO_SLOT for a
keyless command) or a CommandError whose text is exactly what Redis Cluster
writes: `MOVED <slot> <host>:<port>`, `ASK ...`, `CROSSSLOT ...`,
`CLUSTERDOWN ...`. Commands never see the cluster; they run only after this
said "here".
"""
from __future__ import annotations

from typing import Final
from itertools import repeat

from mesh.keyslot import keyslot

from .pulse import chunks
from .reply import CommandError

NO_SLOT: Final = -1
CROSSSLOT: Final = CommandError("CROSSSLOT Keys in request don't hash to the same slot")
CLUSTERDOWN: Final = CommandError("CLUSTERDOWN The cluster is down")
CLUSTERDOWN_UNBOUND: Final = CommandError("CLUSTERDOWN Hash slot not served")
# This node leads the slot but is still receiving its data (it joined or restarted):
# Redis Cluster clients retry TRYAGAIN after a short pause.
TRYAGAIN_LOADING: Final = CommandError("TRYAGAIN The slot's data is still being copied to this node")
# ... but a command waits this long for the data first (Dispatcher._await_loading).
LOADING_WAIT_S = 2.0
# min-replicas-to-write: too few replicas acknowledged recently (Dispatcher._route)
NOREPLICAS = CommandError("NOREPLICAS Not enough good replicas to write.")


def moved(slot: int, host: str, port: int) -> CommandError:
    return CommandError(f"MOVED {slot} {host}:{port}")


def ask(slot: int, host: str, port: int) -> CommandError:
    return CommandError(f"ASK {slot} {host}:{port}")


def slot_of(keys: list[bytes]) -> int:
    """The one slot all `keys` hash to; raises CROSSSLOT otherwise."""
    first = keys[0]
    slot = keyslot(first)
    if len(keys) == 1:
        return slot
    prefix = _tag_prefix(first)
    for chunk in chunks(keys):    # (the heartbeat goes on through a million keys, hypercache/pulse.py)
        # Keys that begin with the first key's text up to the end of its {tag} have that tag:
        # their first "{" and the "}" after it are where the first key has them. Checked in C,
        # this is the usual many-key command (MSET/DEL {t}k0 ...): a Python keyslot() per key
        # was a third of a 500k-key MSET's 1.4 s.
        if prefix is not None and all(map(bytes.startswith, chunk, repeat(prefix))):
            continue
        for key in chunk:
            if keyslot(key) != slot:
                raise CROSSSLOT
    return slot


def _tag_prefix(key: bytes) -> bytes | None:
    """`key` up to the end of its non-empty {hash tag} (b"user:{42}" of b"user:{42}:name"), if any."""
    start = key.find(b"{")
    if start == -1:
        return None
    end = key.find(b"}", start + 1)
    return key[:end + 1] if end > start + 1 else None


def route(keys: list[bytes], write: bool, slotmap, me: str, readonly_session: bool,
          accepting_writes: bool, loaded=None, reads_when_down: bool = True,
          replica_endpoint: bool = False) -> int:
    """Return the slot to run on here, NO_SLOT for keyless commands; raise a redirect.

    `loaded` (a byte per slot, or None for all) says which slots' data this node
    holds whole: a primary without it answers TRYAGAIN, a replica sends readers on.
    `accepting_writes` False means this node cannot hear a majority: it refuses
    writes, and reads too unless `reads_when_down` (cluster-allow-reads-when-down).
    On the `replica_endpoint` (hypercache/roles.py) this node is a replica only:
    the slots it leads are redirected to its own primary endpoint.
    """
    if not keys:
        return NO_SLOT
    slot = slot_of(keys)
    owners = slotmap.owners[slot]
    if not owners:
        raise CLUSTERDOWN_UNBOUND
    if not accepting_writes and (write or not reads_when_down):
        raise CLUSTERDOWN       # as Redis answers every keyed command while cluster_state is fail
    if owners[0] == me and not replica_endpoint:
        if loaded is not None and not loaded[slot]:
            # (a node still joining holds nothing yet and says so as Redis does: the cluster is down)
            raise TRYAGAIN_LOADING if accepting_writes else CLUSTERDOWN
        return slot
    # Reads may be served by a replica of the slot when the client said READONLY.
    if not write and readonly_session and me in owners[1:]:
        if loaded is None or loaded[slot]:
            return slot
        if replica_endpoint:
            # (its copy is still arriving: a Redis replica never MOVEDs a READONLY read of
            # its master's slots, and redis-py would take such a MOVED for a failover)
            raise TRYAGAIN_LOADING
    primary = slotmap.member(owners[0])
    raise moved(slot, primary.host, primary.port)
