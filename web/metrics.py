"""Turns a status snapshot into Prometheus metric families at scrape time.

The node counts in plain integers on its hot path; nothing here is called per
command. A scrape takes one snapshot and translates it, so Prometheus costs
the node nothing between scrapes.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator, Mapping, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from web.snapshot import CommandStats, Member, Replication, Snapshot, SnapshotSource
from web.views import member_counts

_US = 1e-6  # microseconds -> seconds: Prometheus base units are seconds


class SnapshotCollector(Collector):
    """A collector that reads the node only through its snapshot callable."""

    def __init__(self, snapshot: SnapshotSource) -> None:
        self._snapshot = snapshot

    def describe(self) -> list[Metric]:
        # Returning nothing keeps registration from taking a snapshot early.
        return []

    def collect(self) -> Iterator[Metric]:
        yield from metric_families(self._snapshot())


def metric_families(snapshot: Snapshot) -> Iterator[Metric]:
    """Every metric family for one snapshot."""
    node, cluster, stats = snapshot["node"], snapshot["cluster"], snapshot["stats"]

    info = InfoMetricFamily("hypercache_node", "This node's identity.")
    info.add_metric([], {"node_id": node["id"], "host": node["host"], "port": str(node["port"])})
    yield info
    build = InfoMetricFamily("hypercache_build", "The running build: hypercache's version and its Python's.")
    build.add_metric([], {"version": node["version"], "python": platform.python_version(),
                          "implementation": platform.python_implementation()})
    yield build
    yield _gauge("hypercache_uptime_seconds", "Seconds since the node started.", stats["uptime_s"])

    yield from _command_families(stats["commands"])

    yield _gauge("hypercache_keys", "Keys held by this node.", stats["keys"])
    yield _gauge("hypercache_used_memory_bytes", "Memory used by the keyspace.", stats["used_memory"])
    yield _gauge("hypercache_stranded_keys", "Keys held for slots this node no longer owns (served by nobody).",
                 stats.get("stranded_keys", 0))
    yield _gauge("hypercache_ops_per_second", "Commands per second, recent average.", stats["ops_per_sec"])
    yield _gauge("hypercache_connected_clients", "Client connections open now.", stats["connected_clients"])
    yield _counter("hypercache_expired_keys", "Keys removed because they expired.", stats["expired_keys"])
    yield _counter("hypercache_evicted_keys", "Keys evicted to stay under maxmemory.", stats["evicted_keys"])

    redirects = CounterMetricFamily("hypercache_redirects", "Redirects sent to clients.", labels=["kind"])
    redirects.add_metric(["moved"], stats["moved_sent"])
    redirects.add_metric(["ask"], stats["ask_sent"])
    yield redirects

    mesh = CounterMetricFamily("hypercache_mesh_messages", "Mesh messages by direction.", labels=["direction"])
    mesh.add_metric(["in"], stats["mesh_in"])
    mesh.add_metric(["out"], stats["mesh_out"])
    yield mesh
    by_kind = CounterMetricFamily("hypercache_mesh_received_by_kind", "Mesh messages accepted, by kind.",
                                  labels=["kind"])
    for kind, count in sorted(stats.get("mesh_in_by_kind", {}).items()):
        by_kind.add_metric([kind], count)
    yield by_kind
    yield _counter("hypercache_mesh_messages_dropped", "Mesh messages dropped (invalid or overflow).",
                   stats["mesh_dropped"])
    by_reason = CounterMetricFamily("hypercache_mesh_messages_dropped_by_reason",
                                    "Mesh messages dropped, by why (the total above, broken down).", labels=["reason"])
    for reason, count in sorted(stats.get("mesh_dropped_by_reason", {}).items()):
        by_reason.add_metric([reason], count)
    yield by_reason
    yield _counter("hypercache_mesh_peers_refused", "Subscriptions to mesh peers refused for want of open files "
                   "(in an open mesh such a peer is heard only as other members relay it: raise ulimit -n).",
                   stats.get("mesh_peers_refused", 0))
    relayed = CounterMetricFamily("hypercache_mesh_relayed", "Mesh messages relayed for peers without a link of "
                                  "their own: in, heard through a relayer; out, relayed by this node.",
                                  labels=["direction"])
    relayed.add_metric(["in"], stats.get("mesh_relayed_in", 0))
    relayed.add_metric(["out"], stats.get("mesh_relayed_out", 0))
    yield relayed
    yield _gauge("hypercache_mesh_local_health", "How late this node runs, 0 when on time: it suspects a silent "
                 "peer after this plus one node timeouts (Lifeguard's local health, mesh/awareness.py).",
                 stats.get("mesh_local_health", 0))
    yield _counter("hypercache_mesh_late_evidence", "Late heartbeat timer ticks and refuted suspicions of this node "
                   "(each raises its local health score).", stats.get("mesh_late_evidence", 0))
    yield _gauge("hypercache_mesh_stranded", "1 while a watcher of this node is silent for long: it accepts writes "
                 "only while a majority of the whole map answers its roll calls (mesh/strand.py).",
                 int(stats.get("mesh_stranded", False)))
    yield _counter("hypercache_mesh_roll_calls", "Roll calls this node made while stranded or about to be.",
                   stats.get("mesh_roll_calls", 0))
    yield _counter("hypercache_mesh_sent_bytes", "Bytes this node published on the mesh (each reaches every peer).",
                   stats.get("mesh_out_bytes", 0))
    received = CounterMetricFamily("hypercache_mesh_received_messages", "Mesh messages accepted from each peer.",
                                   labels=["peer"])
    received_bytes = CounterMetricFamily("hypercache_mesh_received_bytes", "Mesh bytes accepted from each peer.",
                                         labels=["peer"])
    for member in sorted(snapshot["members"], key=lambda m: m["id"]):
        if not member["myself"]:
            received.add_metric([member["id"]], member.get("mesh_received", 0))
            received_bytes.add_metric([member["id"]], member.get("mesh_received_bytes", 0))
    yield received
    yield received_bytes

    yield _gauge("hypercache_cluster_epoch", "Epoch of the slot map this node serves.", cluster["epoch"])
    yield _gauge("hypercache_cluster_state_ok", "1 when the cluster state is ok.", cluster["state"] == "ok")
    yield _gauge("hypercache_accepting_writes", "1 when this node accepts writes.", cluster["accepting_writes"])
    yield _gauge("hypercache_cluster_replication_factor", "Copies of each slot, primary included.",
                 cluster["replication_factor"])
    yield _gauge("hypercache_cluster_slots_assigned", "Slots with an owner in the slot map.", cluster["slots_assigned"])
    yield _gauge("hypercache_cluster_slots_ok", "Slots whose primary is alive.", cluster["slots_ok"])
    balance = cluster["balance"]
    yield _gauge("hypercache_cluster_primary_load_max_ratio", "The busiest member's primary slots over its share.",
                 balance["primary_max_over_ideal"])
    yield _gauge("hypercache_cluster_replica_load_max_ratio", "The busiest member's replica slots over its share.",
                 balance["replica_max_over_ideal"])

    members = GaugeMetricFamily("hypercache_cluster_members", "Members by state, as this node sees them.",
                                labels=["state"])
    for state, count in member_counts(snapshot["members"]).items():
        if state != "total":
            members.add_metric([state], count)
    yield members

    yield from _replication_families(snapshot["replication"], snapshot["members"])


def _replication_families(replication: Replication, members: Sequence[Member]) -> Iterator[Metric]:
    yield _gauge("hypercache_replication_in_sync",
                 "1 when every slot this node leads is here and complete on its replicas, and every slot it holds "
                 "as a replica is complete here.", replication["in_sync"])
    yield _gauge("hypercache_replication_slots_behind",
                 "Slots this node copies out whose copy on the other owner is incomplete.", replication["slots_behind"])
    yield _gauge("hypercache_replication_slots_loading",
                 "Slots this node leads but does not hold yet: it pulls them (commands on them wait, then get TRYAGAIN).",
                 replication["slots_loading"])
    yield _gauge("hypercache_replication_slots_receiving",
                 "Slots this node holds as a replica whose copy is not complete here.", replication["slots_receiving"])
    yield _gauge("hypercache_clients_held", "Clients whose replies wait for their replicas' acknowledgements.",
                 replication["clients_held"])
    yield _counter("hypercache_writes_held", "Writes whose replies waited for the replicas (sync mode).",
                   replication["writes_held"])
    yield _counter("hypercache_replication_frames_applied", "Replication frames applied here as a replica.",
                   replication["frames_applied"])
    yield _counter("hypercache_replication_effects_applied", "Key effects applied here as a replica.",
                   replication["effects_applied"])
    yield _counter("hypercache_replication_frames_refused", "Frames refused here: from a node not the slots' primary.",
                   replication["frames_refused"])
    yield _counter("hypercache_replication_full_syncs", "Replica streams started with a full copy.",
                   replication["full_syncs"])
    yield _counter("hypercache_replication_clients_dropped",
                   "Clients closed because their writes could not be acknowledged.", replication["clients_dropped"])

    in_sync = GaugeMetricFamily("hypercache_replica_in_sync",
                                "1 when the stream to the replica finished its full copy and is not broken.",
                                labels=["replica"])
    lag = GaugeMetricFamily("hypercache_replica_lag_frames", "Frames sent to the replica and not acknowledged.",
                            labels=["replica"])
    copying = GaugeMetricFamily("hypercache_replica_slots_copying",
                                "Slots whose full copy to the replica is not acknowledged yet.", labels=["replica"])
    acked = GaugeMetricFamily("hypercache_replica_acked_offset", "The offset the replica acknowledged on its stream.",
                              labels=["replica"])
    applied = GaugeMetricFamily("hypercache_replication_applied_offset",
                                "The offset applied here of the stream from the primary.", labels=["primary"])
    for member in sorted(members, key=lambda m: m["id"]):
        feed, follow = member["replication"]["feed"], member["replication"]["follow"]
        if feed is not None:
            in_sync.add_metric([member["id"]], float(feed["in_sync"]))
            lag.add_metric([member["id"]], feed["lag"])
            copying.add_metric([member["id"]], feed["slots_copying"])
            acked.add_metric([member["id"]], feed["acked"])
        if follow is not None:
            applied.add_metric([member["id"]], follow["applied"])
    yield from (in_sync, lag, copying, acked, applied)


# A scrape stays small: counters only for commands that ran, latency histograms for the
# busiest few (the rest summed as command="other"), on a coarse fixed bucket set
# (4x steps from 1 us to ~1 s). Every command at 2x steps made ~3,100 lines per scrape.
HISTOGRAM_COMMANDS = 10
OTHER = "other"
LATENCY_BOUNDS_US = tuple(4 ** i for i in range(11))      # 1 us .. 1.05 s


def _command_families(commands: Mapping[str, CommandStats]) -> Iterator[Metric]:
    calls = CounterMetricFamily("hypercache_commands", "Calls by command (commands never called are left out).",
                                labels=["command"])
    seconds = CounterMetricFamily("hypercache_commands_duration_seconds", "Time spent in each command.",
                                  labels=["command"])
    failed = CounterMetricFamily("hypercache_commands_failed", "Calls that replied with an error.", labels=["command"])
    rejected = CounterMetricFamily("hypercache_commands_rejected", "Calls refused before running.",
                                   labels=["command"])
    latency = HistogramMetricFamily(
        "hypercache_command_latency_seconds",
        f"Latency of the {HISTOGRAM_COMMANDS} most called commands; the others summed as command=\"{OTHER}\".",
        labels=["command"])

    ran = {name: stat for name, stat in commands.items() if stat["calls"] or stat["rejected_calls"]}
    for name in sorted(ran):
        stat = ran[name]
        calls.add_metric([name], stat["calls"])
        seconds.add_metric([name], stat["usec"] * _US)
        failed.add_metric([name], stat["failed_calls"])
        rejected.add_metric([name], stat["rejected_calls"])
    for name, (buckets, usec) in sorted(_histogram_groups(ran).items()):
        # One bucket set for all commands: histogram_quantile over a sum across
        # commands needs the same `le` bounds in every series.
        latency.add_metric([name], _cumulative(buckets, LATENCY_BOUNDS_US), sum_value=usec * _US)
    yield from (calls, seconds, failed, rejected, latency)


def _histogram_groups(commands: Mapping[str, CommandStats]) -> dict[str, tuple[dict[int, int], int]]:
    """The busiest commands by name, the rest merged into OTHER: name -> (per-bucket counts, usec)."""
    ranked = sorted(commands, key=lambda name: (-commands[name]["calls"], name))
    groups: dict[str, tuple[dict[int, int], int]] = {}
    for index, name in enumerate(ranked):
        if not commands[name]["calls"]:
            continue
        group = name if index < HISTOGRAM_COMMANDS else OTHER
        buckets, usec = groups.get(group, ({}, 0))
        for bound, count in commands[name]["latency_us_buckets"].items():
            buckets[int(bound)] = buckets.get(int(bound), 0) + int(count)
        groups[group] = (buckets, usec + commands[name]["usec"])
    return groups


def _cumulative(buckets: Mapping[int, int] | Mapping[str, int],
                bounds: Sequence[int]) -> list[tuple[str, float]]:
    """Per-bucket counts (keyed by their upper bound in us) -> Prometheus's cumulative `le` buckets, ending with +Inf."""
    per_bound = sorted((int(b), int(n)) for b, n in buckets.items())
    out = []
    for bound in bounds:
        out.append((floatToGoString(bound * _US), sum(n for b, n in per_bound if b <= bound)))
    out.append(("+Inf", sum(n for _, n in per_bound)))
    return out


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=float(value))
