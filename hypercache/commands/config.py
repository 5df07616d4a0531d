"""CONFIG GET/SET/RESETSTAT/HELP over the node's runtime Settings, with Redis 7.0's parsing and errors.

Each parameter is declared once (`Param`): its name, how to show it, how to
parse a new value and how to apply it. Parameters the node cannot change
while running (port, bind, ...) are shown truthfully and refuse CONFIG SET
as Redis refuses an immutable config. `save` and `appendonly` report that
nothing is persisted ("" and "no") and accept only those values, since a
hypercache node keeps its data in memory only.

CONFIG SET is atomic as in Redis 7: every pair is parsed and checked before
any is applied.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from mesh.keyslot import keyslot

from .. import notifications, open_files
from ..glob import glob_match
from ..reply import OK, CommandError, Status
from ..store import EVICTION_POLICIES
from . import command, container

INT_MAX = 2**31 - 1
UINT_MAX = 2**32 - 1
LLONG_MAX = 2**63 - 1
# Redis lists the policies in this order in its error text.
POLICY_ORDER = ("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
                "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction")
_MEMORY = re.compile(rb"([0-9]+)(b|k|kb|m|mb|g|gb)?", re.IGNORECASE)
_UNITS = {b"": 1, b"b": 1, b"k": 1000, b"kb": 1024, b"m": 1000**2, b"mb": 1024**2,
          b"g": 1000**3, b"gb": 1024**3}


class Invalid(Exception):
    """A value CONFIG SET refuses; the text follows "- " in Redis's error."""


def parse_memory(raw: bytes) -> int:
    """A memory value as Redis's memtoull reads it: digits with an optional unit (1k=1000, 1kb=1024)."""
    match = _MEMORY.fullmatch(raw)
    if match is None:
        raise Invalid("argument must be a memory value")
    value = int(match.group(1)) * _UNITS[(match.group(2) or b"").lower()]
    if value > LLONG_MAX:
        raise Invalid("argument must be a memory value")
    return value


def _ranged(parse: Callable[[bytes], int], low: int, high: int) -> Callable[[bytes], int]:
    def check(raw: bytes) -> int:
        value = parse(raw)
        if not low <= value <= high:
            raise Invalid(f"argument must be between {low} and {high} inclusive")
        return value
    return check


def _integer(raw: bytes) -> int:
    text = raw.decode("ascii", "replace")
    if not re.fullmatch(r"-?[0-9]+", text):
        raise Invalid("argument couldn't be parsed into an integer")
    return int(text)


def _yes_no(raw: bytes) -> bool:
    value = raw.lower()
    if value not in (b"yes", b"no"):
        raise Invalid("argument must be 'yes' or 'no'")
    return value == b"yes"


def _policy(raw: bytes) -> str:
    value = raw.decode("utf-8", "replace").lower()
    if value not in EVICTION_POLICIES:
        raise Invalid("argument(s) must be one of the following: " + ", ".join(POLICY_ORDER))
    return value


def _only(current: bytes, reason: str) -> Callable[[bytes], bytes]:
    def check(raw: bytes) -> bytes:
        if raw.lower() != current:
            raise Invalid(reason)
        return raw
    return check


def _immutable(raw: bytes) -> Any:
    raise Invalid("can't set immutable config")


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    show: Callable[[Any], bytes]                      # ctx -> the value CONFIG GET prints
    parse: Callable[[bytes], Any] = _immutable        # raises Invalid
    apply: Callable[[Any, Any], None] | None = None   # (ctx, parsed value)
    check: Callable[[Any, Any], None] | None = None   # (ctx, parsed value): raises Invalid before any is applied


def _setting(attr: str) -> Callable[[Any, Any], None]:
    def apply(ctx, value) -> None:
        setattr(ctx.settings, attr, value)
    return apply


def _fit_maxclients(ctx, value: int) -> None:
    """As Redis: maxclients is refused where the open-file limit cannot hold that many (beside the mesh's room)."""
    room = open_files.make_room(value, ctx.config.max_mesh_peers)
    if room < value:
        raise Invalid(f"The operating system is not able to handle the specified number of clients, try with {room}")


def _apply_requirepass(ctx, value: str) -> None:
    """As Redis: requirepass is the default user's password (`resetpass` then `>pass`, or `nopass`)."""
    ctx.settings.requirepass = value
    if ctx.acl is not None:
        from ..acl import set_default_password
        from .acl import sync_all
        set_default_password(ctx.acl.default, value, ctx.acl.catalog)
        ctx.acl.refresh()
        sync_all(ctx)


def _apply_acllog_max_len(ctx, value: int) -> None:
    ctx.acl.log.max_len = value
    del ctx.acl.log.entries[value:]


def _pubsub_default(raw: bytes) -> bool:
    value = raw.lower()
    if value not in (b"allchannels", b"resetchannels"):
        raise Invalid("argument(s) must be one of the following: allchannels, resetchannels")
    return value == b"allchannels"


def _apply_pubsub_default(ctx, value: bool) -> None:
    ctx.acl.catalog.all_channels_by_default = value


def _apply_maxmemory(ctx, value: int) -> None:
    ctx.settings.maxmemory = value
    ctx.store.configure_eviction(value, ctx.settings.maxmemory_policy)
    if ctx.store.over_maxmemory():
        ctx.store.evict(keyslot)    # as Redis: lowering maxmemory evicts at once


def _apply_policy(ctx, value: str) -> None:
    ctx.settings.maxmemory_policy = value
    ctx.store.configure_eviction(ctx.settings.maxmemory, value)


def _notify_flags(raw: bytes) -> int:
    try:
        return notifications.parse_flags(raw)
    except ValueError as error:
        raise Invalid(str(error)) from None


def _apply_notify(ctx, flags: int) -> None:
    ctx.key_events.configure(flags)


def _apply_tracking_max(ctx, value: int) -> None:
    ctx.key_events.tracking.max_keys = value


def _num(attr: str) -> Callable[[Any], bytes]:
    return lambda ctx: b"%d" % getattr(ctx.settings, attr)


def _yes(value: bool) -> bytes:
    return b"yes" if value else b"no"


PARAMS: tuple[Param, ...] = (
    Param("maxmemory", _num("maxmemory"), _ranged(parse_memory, 0, LLONG_MAX), _apply_maxmemory),
    Param("maxmemory-policy", lambda ctx: ctx.settings.maxmemory_policy.encode(), _policy, _apply_policy),
    Param("maxmemory-samples", _num("maxmemory_samples"), _ranged(_integer, 1, INT_MAX),
          _setting("maxmemory_samples")),
    Param("requirepass", lambda ctx: ctx.settings.requirepass.encode(),
          lambda raw: raw.decode("utf-8", "surrogateescape"), _apply_requirepass),
    Param("aclfile", lambda ctx: ctx.config.aclfile.encode()),
    Param("acllog-max-len", lambda ctx: b"%d" % (ctx.acl.log.max_len if ctx.acl is not None else 128),
          _ranged(_integer, 0, LLONG_MAX), _apply_acllog_max_len),
    Param("acl-pubsub-default", lambda ctx: b"allchannels" if ctx.acl is not None
          and ctx.acl.catalog.all_channels_by_default else b"resetchannels", _pubsub_default, _apply_pubsub_default),
    Param("timeout", _num("timeout"), _ranged(_integer, 0, INT_MAX), _setting("timeout")),
    Param("maxclients", _num("maxclients"), _ranged(_integer, 1, UINT_MAX), _setting("maxclients"),
          check=_fit_maxclients),
    Param("proto-max-bulk-len", _num("proto_max_bulk_len"), _ranged(parse_memory, 1024 * 1024, LLONG_MAX),
          _setting("proto_max_bulk_len")),
    Param("client-query-buffer-limit", _num("client_query_buffer_limit"),
          _ranged(parse_memory, 1024 * 1024, LLONG_MAX), _setting("client_query_buffer_limit")),
    Param("protected-mode", lambda ctx: _yes(ctx.settings.protected_mode), _yes_no,
          _setting("protected_mode")),
    # No persistence: shown truthfully, and only the truth may be set.
    Param("save", lambda ctx: b"", _only(b"", "hypercache keeps no data on disk: save points cannot be set")),
    Param("appendonly", lambda ctx: b"no", _only(b"no", "hypercache keeps no data on disk: appendonly cannot be enabled")),
    # Fixed at start (command line or the cluster's design).
    Param("port", lambda ctx: b"%d" % ctx.config.port),
    Param("bind", lambda ctx: ctx.config.host.encode()),
    Param("databases", lambda ctx: b"1"),
    Param("cluster-enabled", lambda ctx: b"yes"),
    Param("cluster-port", lambda ctx: b"%d" % ctx.config.resolved_mesh_port),
    Param("cluster-node-timeout", lambda ctx: b"%d" % ctx.config.node_timeout_ms),
    Param("cluster-announce-ip", lambda ctx: ctx.config.resolved_announce_host.encode()),
    Param("cluster-require-full-coverage", lambda ctx: b"yes"),
    # Redis's default: a node cut off from the majority refuses reads too (they would be stale)
    Param("min-replicas-to-write", _num("min_replicas_to_write"), _ranged(_integer, 0, INT_MAX),
          _setting("min_replicas_to_write")),
    Param("min-replicas-max-lag", _num("min_replicas_max_lag"), _ranged(_integer, 0, INT_MAX),
          _setting("min_replicas_max_lag")),
    Param("cluster-allow-reads-when-down", lambda ctx: _yes(ctx.settings.cluster_allow_reads_when_down),
          _yes_no, _setting("cluster_allow_reads_when_down")),
    Param("busy-reply-threshold", _num("busy_reply_threshold"), _ranged(_integer, 0, LLONG_MAX),
          _setting("busy_reply_threshold")),
    Param("lua-time-limit", _num("busy_reply_threshold"), _ranged(_integer, 0, LLONG_MAX),
          _setting("busy_reply_threshold")),
    Param("slowlog-log-slower-than", lambda ctx: b"%d" % ctx.slowlog.threshold_us,
          _ranged(_integer, -1, LLONG_MAX), lambda ctx, value: ctx.slowlog.configure(threshold_us=value)),
    Param("slowlog-max-len", lambda ctx: b"%d" % ctx.slowlog.max_len, _ranged(_integer, 0, LLONG_MAX),
          lambda ctx, value: ctx.slowlog.configure(max_len=value)),
    Param("notify-keyspace-events", lambda ctx: notifications.format_flags(ctx.key_events.flags),
          _notify_flags, _apply_notify),
    Param("tracking-table-max-keys", lambda ctx: b"%d" % ctx.key_events.tracking.max_keys,
          _ranged(_integer, 0, LLONG_MAX), _apply_tracking_max),
    Param("dir", lambda ctx: ctx.config.data_dir.encode()),
    Param("enable-debug-command", lambda ctx: ctx.config.enable_debug_command.encode()),
)
INT_MIN = -2**31


def _tuning(name: str, default: bytes, parse: Callable[[bytes], Any], stored_as: str = "") -> Param:
    """A Redis encoding/tuning parameter: accepted, checked and reported, changing nothing here
    (tools and test harnesses set them). `stored_as` shares the value with an alias's name."""
    key = stored_as or name

    def show(ctx) -> bytes:
        return ctx.settings.extra.get(key, default)

    def apply(ctx, value) -> None:
        if isinstance(value, bool):
            value = b"yes" if value else b"no"
        elif isinstance(value, int):
            value = b"%d" % value
        ctx.settings.extra[key] = value

    return Param(name, show, parse, apply)


def _hz(raw: bytes) -> int:
    return min(max(_ranged(_integer, 0, INT_MAX)(raw), 1), 500)     # Redis clamps hz to 1..500


_SIZE = _ranged(_integer, 0, LLONG_MAX)
TUNING: tuple[Param, ...] = (
    _tuning("hash-max-listpack-entries", b"512", _SIZE),
    _tuning("hash-max-ziplist-entries", b"512", _SIZE, "hash-max-listpack-entries"),
    _tuning("hash-max-listpack-value", b"64", _SIZE),
    _tuning("hash-max-ziplist-value", b"64", _SIZE, "hash-max-listpack-value"),
    _tuning("list-max-listpack-size", b"-2", _ranged(_integer, INT_MIN, INT_MAX)),
    _tuning("list-max-ziplist-size", b"-2", _ranged(_integer, INT_MIN, INT_MAX), "list-max-listpack-size"),
    _tuning("list-compress-depth", b"0", _ranged(_integer, 0, INT_MAX)),
    _tuning("set-max-intset-entries", b"512", _SIZE),
    _tuning("zset-max-listpack-entries", b"128", _SIZE),
    _tuning("zset-max-ziplist-entries", b"128", _SIZE, "zset-max-listpack-entries"),
    _tuning("zset-max-listpack-value", b"64", _SIZE),
    _tuning("zset-max-ziplist-value", b"64", _SIZE, "zset-max-listpack-value"),
    _tuning("hll-sparse-max-bytes", b"3000", _ranged(parse_memory, 0, LLONG_MAX)),
    _tuning("stream-node-max-bytes", b"4096", _ranged(parse_memory, 0, LLONG_MAX)),
    _tuning("stream-node-max-entries", b"100", _SIZE),
    _tuning("hz", b"10", _hz),
    _tuning("dynamic-hz", b"yes", _yes_no),
    _tuning("activerehashing", b"yes", _yes_no),
    _tuning("active-expire-effort", b"1", _ranged(_integer, 1, 10)),
    _tuning("lazyfree-lazy-eviction", b"no", _yes_no),
    _tuning("lazyfree-lazy-expire", b"no", _yes_no),
    _tuning("lazyfree-lazy-server-del", b"no", _yes_no),
    _tuning("lazyfree-lazy-user-del", b"no", _yes_no),
    _tuning("lazyfree-lazy-user-flush", b"no", _yes_no),
    _tuning("lfu-log-factor", b"10", _ranged(_integer, 0, INT_MAX)),
    _tuning("lfu-decay-time", b"1", _ranged(_integer, 0, INT_MAX)),
    Param("latency-monitor-threshold", lambda ctx: b"%d" % ctx.latency.threshold_ms,
          _ranged(_integer, 0, LLONG_MAX), lambda ctx, value: ctx.latency.configure(value)),
    _tuning("latency-tracking", b"yes", _yes_no),
)
PARAMS = PARAMS + TUNING
BY_NAME = {param.name: param for param in PARAMS}


def _has_glob(pattern: bytes) -> bool:
    return any(c in pattern for c in b"*?[")


container("config", -2, "", "server", "A container for server configuration commands.", "2.0.0")


@command("config|get", -3, "admin noscript loading stale", group="server",
         summary="Returns the effective values of configuration parameters.", since="2.0.0")
def config_get(ctx, session, args):
    """Format: CONFIG GET parameter [parameter ...]  (glob patterns; a map in RESP3)"""
    reply: dict[bytes, bytes] = {}
    shown: set[str] = set()
    for pattern in args[2:]:
        if not _has_glob(pattern):
            # An exact name is echoed back as it was typed, as Redis 7.0 does.
            param = BY_NAME.get(pattern.decode("utf-8", "replace").lower())
            if param is not None and param.name not in shown:
                shown.add(param.name)
                reply[pattern] = param.show(ctx)
            continue
        for param in PARAMS:
            if param.name not in shown and glob_match(pattern.lower(), param.name.encode()):
                shown.add(param.name)
                reply[param.name.encode()] = param.show(ctx)
    return reply


def set_error(name: str, reason: str) -> CommandError:
    return CommandError(f"ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")


@command("config|set", -4, "admin noscript loading stale", group="server",
         summary="Sets configuration parameters in-flight.", since="2.0.0")
def config_set(ctx, session, args):
    """Format: CONFIG SET parameter value [parameter value ...]"""
    if len(args) % 2:
        raise CommandError("ERR wrong number of arguments for 'config|set' command")
    parsed: list[tuple[Param, Any]] = []
    seen: set[str] = set()
    for i in range(2, len(args), 2):
        typed = args[i].decode("utf-8", "replace")
        param = BY_NAME.get(typed.lower())
        if param is None:
            raise CommandError(f"ERR Unknown option or number of arguments for CONFIG SET - '{typed}'")
        if param.name in seen:
            raise set_error(typed, "duplicate parameter")
        seen.add(param.name)
        try:
            value = param.parse(args[i + 1])
            if param.check is not None:
                param.check(ctx, value)
        except Invalid as reason:
            raise set_error(typed, str(reason)) from None
        parsed.append((param, value))
    for param, value in parsed:
        if param.apply is not None:
            param.apply(ctx, value)
    return OK


@command("config|resetstat", 2, "admin noscript loading stale", group="server",
         summary="Resets the server's statistics.", since="2.0.0")
def config_resetstat(ctx, session, args):
    """Format: CONFIG RESETSTAT"""
    stats = ctx.stats
    for entry in stats.commands.values():
        entry.reset()
    stats.errors_by_code.clear()
    stats.total_connections = stats.rejected_connections = 0
    stats.last_sample_commands = 0
    stats.ops_samples.clear()
    stats.net_input_bytes = stats.net_output_bytes = 0
    stats.moved_sent = stats.ask_sent = stats.unexpected_errors = 0
    store_stats = ctx.store.stats
    store_stats.expired_keys = store_stats.evicted_keys = 0
    store_stats.keyspace_hits = store_stats.keyspace_misses = 0
    return OK


@command("config|rewrite", 2, "admin noscript loading stale", group="server",
         summary="Persists the effective configuration to file.", since="2.8.0")
def config_rewrite(ctx, session, args):
    """Format: CONFIG REWRITE"""
    raise CommandError("ERR The server is running without a config file")


@command("config|help", 2, "loading stale", group="server",
         summary="Returns helpful text about the different subcommands.", since="5.0.0")
def config_help(ctx, session, args):
    """Format: CONFIG HELP"""
    return [Status(line) for line in (
        b"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"GET <pattern>",
        b"    Return parameters matching the glob-like <pattern> and their values.",
        b"SET <directive> <value>",
        b"    Set the configuration <directive> to <value>.",
        b"RESETSTAT",
        b"    Reset statistics reported by the INFO command.",
        b"REWRITE",
        b"    Rewrite the configuration file.",
        b"HELP",
        b"    Prints this help.",
    )]
