"""How many files a node may hold open: the limit it asks for, and the clients and mesh peers that fit in it.

Every client is a file, and so is each mesh peer, several times over: the SUB a node keeps to it (its
TCP connection and zmq's mailbox), that peer's SUB connected to our XPUB, the replication stream each
way. Redis raises its soft RLIMIT_NOFILE to maxclients + 32 at start and lowers maxclients when the
hard limit is in the way; a node does the same, with room for a full map's peers (MAX_MEMBERS) besides
the clients. Without that room a node of a big cluster ran out in the middle of the mesh: its files,
or zmq's default of 1,023 sockets a context (mesh/links.py raises that), and a member past that was
never heard. When the hard limit is too low for both, the two share what there is (the mesh half of
it, or what the clients leave if more), and the node says so at start, as Redis does.

`plan()` decides (pure); `settle()` asks the OS, once, at start.
"""
from __future__ import annotations

import resource
from dataclasses import dataclass

RESERVED_FDS = 32       # as Redis's CONFIG_MIN_RESERVED_FDS: listeners, logs, the event loop, zmq's own
FILES_PER_PEER = 6      # SUB connection + mailbox, the peer's SUB on our XPUB, a replication stream each way, slack


@dataclass(frozen=True, slots=True)
class FilePlan:
    limit: int              # the soft RLIMIT_NOFILE to hold
    maxclients: int         # clients that fit in it (the asked-for number, or fewer)
    mesh_peers: int         # mesh peers that fit in it (SUBs the node may open)
    wanted: int             # the limit that would fit every client and a full map's peers
    short: bool = False     # the limit is below `wanted`: fewer clients or peers than asked


def files_for(maxclients: int, mesh_peers: int) -> int:
    """The open-file limit that fits this many clients and mesh peers."""
    return RESERVED_FDS + maxclients + FILES_PER_PEER * mesh_peers


def plan(soft: int, hard: int, maxclients: int, mesh_peers: int) -> FilePlan:
    """What to hold under these soft and hard limits (RLIM_INFINITY counts as no limit).

    The soft limit is raised as far as needed and the hard limit allows, never lowered. When even
    the hard limit is short, the mesh keeps room for as many peers as half the files allow (more
    where the clients asked for less than their half), and the clients get the rest, up to what was
    asked (Redis lowers maxclients the same way). A limit that leaves no client a file gives
    maxclients 0: the caller refuses to start.
    """
    wanted = files_for(maxclients, mesh_peers)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return FilePlan(soft, maxclients, mesh_peers, wanted)
    limit = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)    # (hard >= soft)
    if limit >= wanted:
        return FilePlan(limit, maxclients, mesh_peers, wanted)
    spare = max(0, limit - RESERVED_FDS)
    peers = min(mesh_peers, max(spare // 2, spare - maxclients) // FILES_PER_PEER)
    return FilePlan(limit, clients_room(limit, peers, maxclients), peers, wanted, short=True)


def clients_room(limit: int, mesh_peers: int, maxclients: int) -> int:
    """How many of `maxclients` fit under `limit` beside room for `mesh_peers` (0 if none do)."""
    if limit == resource.RLIM_INFINITY:
        return maxclients
    return max(0, min(maxclients, limit - RESERVED_FDS - FILES_PER_PEER * mesh_peers))


def settle(maxclients: int, mesh_peers: int) -> tuple[FilePlan, OSError | None]:
    """Plan under this process's RLIMIT_NOFILE and raise its soft limit to the plan's.

    If the OS refuses that limit (one below the hard limit may still be refused: macOS caps a process
    at kern.maxfilesperproc), the highest it takes is found 16 files at a time, as Redis does, and the
    plan made again under it; the first refusal is returned for the caller to report.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    chosen = plan(soft, hard, maxclients, mesh_peers)
    if chosen.limit == soft:
        return chosen, None
    refused: OSError | None = None
    for limit in range(chosen.limit, soft, -16):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
        except (OSError, ValueError) as error:
            refused = refused or OSError(f"cannot raise the open-file limit to {limit}: {error}")
            continue
        return (chosen if limit == chosen.limit else plan(soft, limit, maxclients, mesh_peers)), refused
    return plan(soft, soft, maxclients, mesh_peers), refused


def make_room(maxclients: int, mesh_peers: int) -> int:
    """Raise the soft limit for `maxclients` beside the mesh's fixed room; how many of them fit (CONFIG SET)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = files_for(maxclients, mesh_peers)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (OSError, ValueError):
            pass    # the limit stays; what fits in it is the answer
    return clients_room(soft, mesh_peers, maxclients)
