"""INFO: the node's state in Redis 7.0's sections and field names, as `field:value` lines.

Sections come out in Redis's order whatever order they were asked in; with no
argument INFO prints the default sections, `all` adds commandstats and
latencystats, `everything` is the same here (no modules). Fields are those
Redis prints that have a truthful value in a hypercache node: memory is the
store's accounting (`used_memory`) and the process's resident size from
/proc/self/statm, CPU comes from getrusage, there is no persistence
(`aof_enabled:0`, `rdb_saves:0`) and every node is `redis_mode:cluster`.
The reply is a RESP3 verbatim string (a bulk string in RESP2), lines ending
in CRLF and sections separated by an empty line, as Redis writes it.
"""
from __future__ import annotations

import os
import platform
import resource
import secrets
import sys
import time
from itertools import islice
from typing import Callable

from .. import __version__, compiled, gc_policy
from ..roles import replica_port, replica_view
from ..reply import Verbatim
from . import command

RUN_ID = secrets.token_hex(20)          # new on every start, as Redis's run_id
REPLICATION_ID = secrets.token_hex(20)
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
HZ = 10
SECTIONS = ("server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules",
            "commandstats", "errorstats", "latencystats", "cluster", "keyspace")
DEFAULT = frozenset(SECTIONS) - {"commandstats", "latencystats"}
TITLES = {"cpu": "CPU"}
AVG_TTL_SAMPLE = 1000


def human(n: float) -> str:
    """Bytes as Redis's bytesToHuman prints them: 1.99M, 200B."""
    for unit, size in (("P", 1024**5), ("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{int(n)}B"


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


def total_system_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * PAGE_SIZE
    except (ValueError, OSError):
        return 0


Fields = list[tuple[str, object]]


def server(ctx, now: float) -> Fields:
    from .server import REDIS_VERSION
    uptime = int(time.monotonic() - ctx.started_at)
    uname = platform.uname()
    return [
        ("redis_version", REDIS_VERSION), ("hypercache_version", __version__),
        ("hypercache_compiled", int(compiled.COMPILED)), ("redis_git_sha1", "00000000"), ("redis_git_dirty", 0),
        ("redis_mode", "cluster"), ("os", f"{uname.system} {uname.release} {uname.machine}"),
        ("arch_bits", 64 if sys.maxsize > 2**32 else 32), ("multiplexing_api", "epoll"),
        ("process_id", os.getpid()), ("process_supervised", "no"), ("run_id", RUN_ID),
        ("tcp_port", ctx.config.port), ("server_time_usec", int(now * 1_000_000)),
        ("uptime_in_seconds", uptime), ("uptime_in_days", uptime // 86400),
        ("hz", HZ), ("configured_hz", HZ), ("executable", sys.executable), ("config_file", ""),
        ("io_threads_active", 0),
    ]


def clients(ctx, now: float) -> Fields:
    sessions = list(ctx.clients.values())
    blocked = getattr(ctx.blocking, "blocked_clients", 0)
    return [
        ("connected_clients", len(sessions)), ("cluster_connections", 0),
        ("maxclients", ctx.settings.maxclients),
        ("client_recent_max_input_buffer", max((s.query_buffer for s in sessions), default=0)),
        ("client_recent_max_output_buffer", max((s.output_buffer for s in sessions), default=0)),
        ("blocked_clients", blocked), ("tracking_clients", ctx.key_events.tracking.tracking_clients),
    ]


def startup_memory(store) -> int:
    """What the empty keyspace holds: the list of 16384 slot dicts (Redis's used_memory_startup counterpart)."""
    return sys.getsizeof(store.slots) + len(store.slots) * sys.getsizeof({})


def memory(ctx, now: float) -> Fields:
    # used_memory = the dataset (what maxmemory bounds and eviction frees) + the node's own
    # overhead: the empty keyspace and the clients' buffers. An empty node is not at 0 bytes.
    dataset = ctx.store.used_memory
    startup = startup_memory(ctx.store)
    overhead = startup + sum(s.query_buffer + s.output_buffer for s in ctx.clients.values())
    used = dataset + overhead
    rss = rss_bytes()
    system = total_system_memory()
    maxmemory = ctx.settings.maxmemory
    return [
        ("used_memory", used), ("used_memory_human", human(used)),
        ("used_memory_rss", rss), ("used_memory_rss_human", human(rss)),
        ("used_memory_startup", startup), ("used_memory_overhead", overhead),
        ("used_memory_dataset", dataset),
        ("total_system_memory", system), ("total_system_memory_human", human(system)),
        ("maxmemory", maxmemory), ("maxmemory_human", human(maxmemory)),
        ("maxmemory_policy", ctx.settings.maxmemory_policy),
        ("mem_fragmentation_ratio", f"{rss / used:.2f}" if used else "0.00"),
        ("mem_allocator", "pymalloc"), ("lazyfree_pending_objects", 0), ("lazyfreed_objects", 0),
        *gc_policy.COLLECTOR.fields(),
    ]


def persistence(ctx, now: float) -> Fields:
    started_unix = int(now - (time.monotonic() - ctx.started_at))
    return [
        ("loading", 0), ("async_loading", 0), ("rdb_changes_since_last_save", ctx.dirty),
        ("rdb_bgsave_in_progress", 0), ("rdb_last_save_time", started_unix),
        ("rdb_last_bgsave_status", "ok"), ("rdb_saves", 0),
        ("aof_enabled", 0), ("aof_rewrite_in_progress", 0), ("aof_last_write_status", "ok"),
    ]


def stats(ctx, now: float) -> Fields:
    s = ctx.stats
    store_stats = ctx.store.stats
    sessions = list(ctx.clients.values())
    tracking = ctx.key_events.tracking
    return [
        ("total_connections_received", s.total_connections),
        ("total_commands_processed", s.total_commands),
        ("instantaneous_ops_per_sec", int(s.ops_per_sec)),
        ("total_net_input_bytes", s.net_input_bytes), ("total_net_output_bytes", s.net_output_bytes),
        ("rejected_connections", s.rejected_connections),
        ("expired_keys", store_stats.expired_keys), ("evicted_keys", store_stats.evicted_keys),
        ("keyspace_hits", store_stats.keyspace_hits), ("keyspace_misses", store_stats.keyspace_misses),
        ("pubsub_channels", len(set().union(*(x.channels for x in sessions)))),
        ("pubsub_patterns", len(set().union(*(x.patterns for x in sessions)))),
        ("pubsubshard_channels", len(set().union(*(x.shard_channels for x in sessions)))),
        ("tracking_total_keys", len(tracking.table)), ("tracking_total_items", tracking.items),
        ("tracking_total_prefixes", len(tracking.prefixes)),
        ("unexpected_error_replies", s.unexpected_errors),
        ("total_error_replies", sum(s.errors_by_code.values())),
    ]


def replication(ctx, now: float) -> Fields:
    """Redis's fields, a `slaveN` line per replica this node feeds, then hypercache's own (hypercache_*).

    Every node is the primary of some slots and a replica of others: `role` is
    master, the replicas listed are the nodes holding copies of its slots, and
    each stream keeps its own offsets (`offset` is what that replica acknowledged).
    """
    replicator = ctx.replicator
    streams = replicator.replicas() if replicator is not None else []
    slotmap = ctx.cluster.slotmap
    fields: Fields = [("role", "master"), ("connected_slaves", len(streams))]
    for index, stream in enumerate(streams):
        try:
            member = slotmap.member(stream["node_id"])
            host, port = member.host, replica_port(member.port) or member.port
        except KeyError:
            host, port = "?", 0
        state = "online" if stream["in_sync"] else "send_bulk"
        fields.append((f"slave{index}", f"ip={host},port={port},state={state},"
                                        f"offset={stream['acked']},lag={stream['lag']}"))
    sent = sum(stream["offset"] for stream in streams)
    fields += [
        ("master_failover_state", "no-failover"),
        ("master_replid", REPLICATION_ID), ("master_replid2", "0" * 40),
        ("master_repl_offset", sent), ("second_repl_offset", -1), ("repl_backlog_active", 0),
    ]
    if replicator is not None:
        counters = replicator.stats
        fields += [
            ("hypercache_replication_mode", replicator.mode),
            ("hypercache_replicas_in_sync", sum(1 for stream in streams if stream["in_sync"])),
            # replicas whose notify-keyspace-events asks this primary to name its writes' events
            ("hypercache_replicas_wanting_events",
             sum(1 for stream in replicator.streams.values() if stream.wants_events)),
            ("hypercache_replica_slots_copying", sum(stream["copying"] for stream in streams)),
            ("hypercache_slots_loading", replicator.slots_loading()),
            ("hypercache_primaries_followed", len(replicator.following())),
            ("hypercache_slots_receiving_copy", len(replicator.copying_in)),
            ("hypercache_frames_applied", counters["frames_applied"]),
            ("hypercache_effects_applied", counters["effects_applied"]),
            ("hypercache_frames_refused", counters["frames_refused"]),
            ("hypercache_full_syncs", counters["full_syncs"]),
            ("hypercache_writes_held", counters["writes_held"]),
            ("hypercache_clients_held", len(replicator.held)),
            ("hypercache_clients_dropped_unacknowledged", counters["clients_dropped"]),
        ]
    return fields


def cpu(ctx, now: float) -> Fields:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    thread = resource.getrusage(getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF))
    return [
        ("used_cpu_sys", f"{me.ru_stime:.6f}"), ("used_cpu_user", f"{me.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{children.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{children.ru_utime:.6f}"),
        ("used_cpu_sys_main_thread", f"{thread.ru_stime:.6f}"),
        ("used_cpu_user_main_thread", f"{thread.ru_utime:.6f}"),
    ]


def commandstats(ctx, now: float) -> Fields:
    fields: Fields = []
    for name, c in ctx.stats.commands.items():
        if not (c.calls or c.failed_calls or c.rejected_calls):
            continue
        usec = c.usec
        per_call = usec / c.calls if c.calls else 0.0
        fields.append((f"cmdstat_{name}", f"calls={c.calls},usec={usec},usec_per_call={per_call:.2f},"
                                          f"rejected_calls={c.rejected_calls},failed_calls={c.failed_calls}"))
    return fields


def errorstats(ctx, now: float) -> Fields:
    return [(f"errorstat_{code}", f"count={count}") for code, count in ctx.stats.errors_by_code.items()]


def _percentile(buckets: list[int], fraction: float) -> float:
    """Upper bound (us) of the power-of-two bucket holding the given fraction of calls."""
    total = sum(buckets)
    wanted = fraction * total
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if count and seen >= wanted:
            return float(2 ** index)
    return 0.0


def latencystats(ctx, now: float) -> Fields:
    fields: Fields = []
    for name, c in ctx.stats.commands.items():
        if c.calls:
            p50, p99, p999 = (_percentile(c.latency, f) for f in (0.5, 0.99, 0.999))
            fields.append((f"latency_percentiles_usec_{name}", f"p50={p50:.3f},p99={p99:.3f},p99.9={p999:.3f}"))
    return fields


def cluster(ctx, now: float) -> Fields:
    return [("cluster_enabled", 1)]


def keyspace(ctx, now: float) -> Fields:
    store = ctx.store
    if not store.key_count:
        return []
    expires = store.expires
    now_ms = int(now * 1000)
    sample = [deadline - now_ms for deadline in islice(expires.values(), AVG_TTL_SAMPLE)]
    live = [ttl for ttl in sample if ttl > 0]
    avg_ttl = sum(live) // len(live) if live else 0
    return [("db0", f"keys={store.key_count},expires={len(expires)},avg_ttl={avg_ttl}")]


def modules(ctx, now: float) -> Fields:
    return []


def replica_endpoint_replication(ctx, now: float) -> Fields:
    """INFO replication on the replica endpoint (hypercache/roles.py): a Redis replica's fields,
    naming as its master the member whose slots this node holds most copies of."""
    view = replica_view(ctx.cluster, ctx.replicator, ctx.node_id)
    if view is None:
        host, port, up, offset = "", 0, False, 0
    else:
        host, port, up, offset = view
    return [
        ("role", "slave"), ("master_host", host), ("master_port", port),
        ("master_link_status", "up" if up else "down"), ("master_last_io_seconds_ago", 0 if up else -1),
        ("master_sync_in_progress", int(view is not None and not up)),
        ("slave_read_repl_offset", offset), ("slave_repl_offset", offset),
        ("slave_priority", 100), ("slave_read_only", 1), ("replica_announced", 1),
        ("connected_slaves", 0), ("master_failover_state", "no-failover"),
        ("master_replid", REPLICATION_ID), ("master_replid2", "0" * 40),
        ("master_repl_offset", offset), ("second_repl_offset", -1), ("repl_backlog_active", 0),
    ]


BUILDERS: dict[str, Callable[[object, float], Fields]] = {
    "server": server, "clients": clients, "memory": memory, "persistence": persistence,
    "stats": stats, "replication": replication, "cpu": cpu, "modules": modules,
    "commandstats": commandstats, "errorstats": errorstats, "latencystats": latencystats,
    "cluster": cluster, "keyspace": keyspace,
}


def wanted_sections(names: list[bytes]) -> set[str]:
    """The sections INFO prints for its arguments (unknown names select nothing)."""
    if not names:
        return set(DEFAULT)
    wanted: set[str] = set()
    for raw in names:
        name = raw.decode("utf-8", "replace").lower()
        if name == "default":
            wanted |= DEFAULT
        elif name in ("all", "everything"):
            wanted |= set(SECTIONS)
        elif name in BUILDERS:
            wanted.add(name)
    return wanted


def render(ctx, names: list[bytes], now: float, replica_endpoint: bool = False) -> bytes:
    """The INFO text for the requested sections, in Redis's section order."""
    wanted = wanted_sections(names)
    parts = []
    for section in SECTIONS:
        if section not in wanted:
            continue
        title = TITLES.get(section, section.capitalize())
        lines = [f"# {title}\r\n"]
        build = (replica_endpoint_replication if replica_endpoint and section == "replication"
                 else BUILDERS[section])
        lines.extend(f"{key}:{value}\r\n" for key, value in build(ctx, now))
        parts.append("".join(lines))
    return "\r\n".join(parts).encode()


@command("info", -1, "loading stale sentinel", group="server",
         summary="Returns information and statistics about the server.")
def info(ctx, session, args):
    """Format: INFO [section [section ...]]"""
    return Verbatim(render(ctx, args[1:], time.time(), session.replica_endpoint))
