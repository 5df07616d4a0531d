"""What one map asks of one node, slot by slot: derived once per map, read on every pass over it.

The replicator applies its map again whenever what it feeds changes (a pull
asked for slots, a stream broke, a hand-off ended: hypercache/replication.py
`_on_map`), several times a second while members join. Each pass walked the
16,384 slots' owners several times to find the same things: the slots this
node leads and their replicas, the slots it holds as a replica, the slots it
owns at all. Those depend on the map alone, so they are derived here once per
map from its owner runs (mesh/slotmap.py `owner_ranges`, a few thousand runs),
and each pass reads them; what changes between passes (which slots are loaded)
is still read at each.

Pure: a map's owner runs and a node id in, values out.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mesh.keyslot import SLOT_COUNT

Owners = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SlotRoles:
    led: tuple[int, ...]                            # slots this node leads (is their primary), in order
    led_replicas: tuple[tuple[int, Owners], ...]    # (slot, its replicas) of led slots that have some
    replica_flags: bytes                            # 1 for each slot this node holds as a replica
    owned_flags: bytes                              # 1 for each slot this node owns (primary or replica)


def slot_roles(owner_ranges: Sequence[tuple[int, int, Owners]], me: str) -> SlotRoles:
    """`me`'s roles under a map, from its (first, last, owners) runs."""
    led: list[int] = []
    led_replicas: list[tuple[int, Owners]] = []
    replica_flags = bytearray(SLOT_COUNT)
    owned_flags = bytearray(SLOT_COUNT)
    for first, last, owners in owner_ranges:
        if me not in owners:
            continue
        count = last - first + 1
        owned_flags[first:last + 1] = b"\x01" * count
        if owners[0] == me:
            run = range(first, last + 1)
            led.extend(run)
            if len(owners) > 1:
                replicas = owners[1:]
                led_replicas.extend((slot, replicas) for slot in run)
        else:
            replica_flags[first:last + 1] = b"\x01" * count
    return SlotRoles(tuple(led), tuple(led_replicas), bytes(replica_flags), bytes(owned_flags))
