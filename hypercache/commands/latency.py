"""LATENCY LATEST | HISTORY | RESET | GRAPH | DOCTOR | HISTOGRAM | HELP, with Redis 7.0's reply shapes.

The samples come from the dispatcher: a command whose run time reaches
`latency-monitor-threshold` (ms; 0, the default, keeps the monitor off) is a sample of the
"command" event, or "fast-command" for a command flagged fast, as Redis's call() records
them. HISTOGRAM reads the per-command latency buckets INFO latencystats reads.
"""
from __future__ import annotations

import time

from ..reply import CommandError, Status, Verbatim
from . import command, container

FLAGS = "admin noscript loading stale"
container("latency", -2, "", "server", "A container for latency diagnostics commands", "2.8.13")


def _now_s() -> int:
    return int(time.time())


@command("latency|latest", 2, FLAGS, group="server", since="2.8.13",
         summary="Return the latest latency samples for all events.")
def latency_latest(ctx, session, args):
    """Format: LATENCY LATEST"""
    return ctx.latency.latest()


@command("latency|history", 3, FLAGS, group="server", since="2.8.13",
         summary="Return timestamp-latency samples for the event.")
def latency_history(ctx, session, args):
    """Format: LATENCY HISTORY event"""
    return ctx.latency.history(args[2].decode("utf-8", "replace"))


@command("latency|reset", -2, FLAGS, group="server", since="2.8.13",
         summary="Reset latency data for one or more events.")
def latency_reset(ctx, session, args):
    """Format: LATENCY RESET [event [event ...]]"""
    return ctx.latency.reset([arg.decode("utf-8", "replace") for arg in args[2:]])


@command("latency|graph", 3, FLAGS, group="server", since="2.8.13",
         summary="Return a latency graph for the event.")
def latency_graph(ctx, session, args):
    """Format: LATENCY GRAPH event"""
    event = args[2].decode("utf-8", "replace")
    graph = ctx.latency.graph(event, _now_s())
    if graph is None:
        raise CommandError(f"ERR No samples available for event '{event}'")
    return Verbatim(graph.encode())


@command("latency|doctor", 2, FLAGS, group="server", since="2.8.13",
         summary="Return a human readable latency analysis report.")
def latency_doctor(ctx, session, args):
    """Format: LATENCY DOCTOR"""
    return Verbatim(ctx.latency.doctor(_now_s(), ctx.slowlog.threshold_us, ctx.slowlog.max_len).encode())


@command("latency|histogram", -2, FLAGS, group="server", since="7.0.0",
         summary="Return the cumulative distribution of latencies of a subset of commands or all.")
def latency_histogram(ctx, session, args):
    """Format: LATENCY HISTOGRAM [command [command ...]]"""
    stats = ctx.stats.commands
    if len(args) > 2:
        names = []
        for arg in args[2:]:
            name = arg.decode("utf-8", "replace").lower()
            if name in stats and name not in names:
                names.append(name)
    else:
        names = list(stats)
    reply = {}
    for name in names:
        counted = stats[name]
        if not counted.calls:
            continue
        cumulative, buckets = 0, {}
        for bucket, calls in enumerate(counted.latency):
            if calls:       # bucket b holds calls under 2**b us: Redis's hdr bucket of that bound
                cumulative += calls
                buckets[1 << bucket] = cumulative
        reply[name.encode()] = {b"calls": counted.calls, b"histogram_usec": buckets}
    return reply


@command("latency|help", 2, "loading stale", group="server", since="2.8.13",
         summary="Show helpful text about the different subcommands.")
def latency_help(ctx, session, args):
    """Format: LATENCY HELP"""
    return [Status(line) for line in (
        b"LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"DOCTOR",
        b"    Return a human readable latency analysis report.",
        b"GRAPH <event>",
        b"    Return an ASCII latency graph for the <event> class.",
        b"HISTORY <event>",
        b"    Return time-latency samples for the <event> class.",
        b"LATEST",
        b"    Return the latest latency samples for all events.",
        b"RESET [<event> ...]",
        b"    Reset latency data of one or more <event> classes.",
        b"    (default: reset all data for all event classes)",
        b"HISTOGRAM [COMMAND ...]",
        b"    Return a cumulative distribution of latencies in the format of a histogram for the specified "
        b"command names.",
        b"    If no commands are specified then all histograms are replied.",
        b"HELP",
        b"    Prints this help.",
    )]
