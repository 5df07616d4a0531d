"""Turn command-table entries into COMMAND's replies: INFO entries, DOCS maps, ACL categories, keys.

Pure functions of `Command` values (hypercache/commands/__init__.py), so the
reply shapes are tested without a node. The shapes are Redis 7.0's:

    [name, arity, flags, first_key, last_key, step, acl_categories, tips, key_specs, subcommands]

where flags, ACL categories, tips and key specs are RESP3 sets (arrays in
RESP2) and subcommands is an array of entries of the same shape (an empty
set when there are none), exactly as redis-server 7.0.15 sends them.

ACL categories are derived as Redis derives the implicit ones (write ->
@write, readonly -> @read, admin -> @admin @dangerous, pubsub -> @pubsub,
fast -> @fast else @slow, blocking -> @blocking) plus the command group's
category (string -> @string, generic -> @keyspace, ...). Where a Redis
command's JSON declares different categories than that rule gives, the
difference is listed in ACL_EXCEPTIONS; test_command_table checks the whole
table against this derivation.
"""
from __future__ import annotations

from typing import Iterable

from .. import keyspecs
from ..reply import OrderedSet, Status
from . import Command

# Redis's order of ACL categories (ACLCommandCategories in acl.c): replies list them in it.
ACL_ORDER = ("keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
             "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
             "dangerous", "connection", "transaction", "scripting")

# Command group (COMMAND DOCS "group") -> the ACL category it implies.
GROUP_CATEGORY = {
    "string": "string", "generic": "keyspace", "hash": "hash", "list": "list", "set": "set",
    "sorted-set": "sortedset", "connection": "connection", "transactions": "transaction",
    "pubsub": "pubsub", "scripting": "scripting", "bitmap": "bitmap",
    "hyperloglog": "hyperloglog", "geo": "geo", "stream": "stream",
}
# Group spellings the table may use, normalised to Redis's COMMAND DOCS names.
GROUP_ALIASES = {"sorted_set": "sorted-set", "zset": "sorted-set", "sortedset": "sorted-set",
                 "transaction": "transactions", "keys": "generic", "strings": "string",
                 "hashes": "hash", "lists": "list", "sets": "set"}

# Where Redis's command JSON departs from the derivation: (categories added, categories removed).
ACL_EXCEPTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "asking": (("connection",), ()),
    "readonly": (("connection",), ()),
    "readwrite": (("connection",), ()),
    "command": (("connection",), ()),
    "dbsize": (("keyspace",), ()),
    "flushall": (("keyspace", "dangerous"), ()),
    "flushdb": (("keyspace", "dangerous"), ()),
    "swapdb": (("keyspace", "dangerous"), ()),
    "info": (("dangerous",), ()),
    "keys": (("dangerous",), ()),
    "migrate": (("dangerous",), ()),
    "restore": (("dangerous",), ()),
    "restore-asking": (("keyspace", "dangerous"), ()),
    "lastsave": (("admin", "dangerous"), ()),
    "role": (("admin", "dangerous"), ()),
    "sort": (("set", "sortedset", "list", "dangerous"), ("keyspace",)),
    "sort_ro": (("set", "sortedset", "list", "dangerous"), ("keyspace",)),
    "wait": (("connection",), ("keyspace",)),
    "pubsub|help": ((), ("pubsub",)),
    "eval_ro": ((), ("read",)),
    "evalsha_ro": ((), ("read",)),
    "fcall_ro": ((), ("read",)),
}
# Every COMMAND subcommand is @connection too (command.json's acl_categories).
ACL_EXCEPTION_PREFIXES = {"command|": (("connection",), ())}

# Flags as COMMAND prints them, in Redis's order; sentinel-only flags are not printed.
FLAG_ORDER = ("write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript", "blocking",
              "loading", "stale", "skip_monitor", "skip_slowlog", "asking", "fast", "no_auth",
              "may_replicate", "no_mandatory_keys", "no_async_loading", "no_multi", "movablekeys",
              "allow_busy")
HIDDEN_FLAGS = frozenset(("sentinel", "only-sentinel", "only_sentinel",
                          "may-replicate"))     # internal in Redis 7.0: COMMAND never prints it

# Command tips, as Redis 7.0 declares them (`command_tips`): how a cluster client
# fans a command out and merges replies, and which outputs are not deterministic.
TIPS: dict[str, tuple[str, ...]] = {
    "client|info": ("nondeterministic_output",),
    "client|list": ("nondeterministic_output",),
    "cluster|bumpepoch": ("nondeterministic_output",),
    "cluster|count-failure-reports": ("nondeterministic_output",),
    "cluster|myshardid": ("nondeterministic_output",),
    "latency|doctor": ("nondeterministic_output", "request_policy:all_nodes", "response_policy:special"),
    "latency|graph": ("nondeterministic_output", "request_policy:all_nodes", "response_policy:special"),
    "latency|histogram": ("nondeterministic_output", "request_policy:all_nodes", "response_policy:special"),
    "latency|history": ("nondeterministic_output", "request_policy:all_nodes", "response_policy:special"),
    "latency|latest": ("nondeterministic_output", "request_policy:all_nodes", "response_policy:special"),
    "latency|reset": ("request_policy:all_nodes", "response_policy:all_succeeded"),
    "module|list": ("nondeterministic_output_order",),
    "cluster|getkeysinslot": ("nondeterministic_output",),
    "cluster|info": ("nondeterministic_output",),
    "cluster|links": ("nondeterministic_output",),
    "cluster|nodes": ("nondeterministic_output",),
    "cluster|replicas": ("nondeterministic_output",),
    "cluster|shards": ("nondeterministic_output",),
    "cluster|slaves": ("nondeterministic_output",),
    "cluster|slots": ("nondeterministic_output",),
    "command": ("nondeterministic_output_order",),
    "command|docs": ("nondeterministic_output_order",),
    "command|info": ("nondeterministic_output_order",),
    "command|list": ("nondeterministic_output_order",),
    "config|set": ("request_policy:all_nodes", "response_policy:all_succeeded"),
    "slowlog|get": ("request_policy:all_nodes", "nondeterministic_output"),
    "slowlog|len": ("request_policy:all_nodes", "response_policy:agg_sum", "nondeterministic_output"),
    "slowlog|reset": ("request_policy:all_nodes", "response_policy:all_succeeded"),
    "function|delete": ("request_policy:all_shards", "response_policy:all_succeeded"),
    "function|flush": ("request_policy:all_shards", "response_policy:all_succeeded"),
    "function|kill": ("request_policy:all_shards", "response_policy:one_succeeded"),
    "function|list": ("nondeterministic_output_order",),
    "function|load": ("request_policy:all_shards", "response_policy:all_succeeded"),
    "function|restore": ("request_policy:all_shards", "response_policy:all_succeeded"),
    "function|stats": ("nondeterministic_output", "request_policy:all_shards", "response_policy:special"),
    "script|exists": ("request_policy:all_shards", "response_policy:agg_logical_and"),
    "script|flush": ("request_policy:all_nodes", "response_policy:all_succeeded"),
    "script|kill": ("request_policy:all_shards", "response_policy:one_succeeded"),
    "script|load": ("request_policy:all_nodes", "response_policy:all_succeeded"),
    "dbsize": ("request_policy:all_shards", "response_policy:agg_sum"),
    "del": ("request_policy:multi_shard", "response_policy:agg_sum"),
    "dump": ("nondeterministic_output",),
    "exists": ("request_policy:multi_shard", "response_policy:agg_sum"),
    "flushall": ("request_policy:all_shards", "response_policy:all_succeeded"),
    "flushdb": ("request_policy:all_shards", "response_policy:all_succeeded"),
    "hgetall": ("nondeterministic_output_order",),
    "hkeys": ("nondeterministic_output_order",),
    "hrandfield": ("nondeterministic_output",),
    "hscan": ("nondeterministic_output",),
    "hvals": ("nondeterministic_output_order",),
    "info": ("nondeterministic_output", "request_policy:all_shards", "response_policy:special"),
    "keys": ("request_policy:all_shards", "nondeterministic_output_order"),
    "lastsave": ("nondeterministic_output",),
    "memory|doctor": ("nondeterministic_output", "request_policy:all_shards", "response_policy:special"),
    "memory|malloc-stats": ("nondeterministic_output", "request_policy:all_shards", "response_policy:special"),
    "memory|purge": ("request_policy:all_shards", "response_policy:all_succeeded"),
    "memory|stats": ("nondeterministic_output", "request_policy:all_shards", "response_policy:special"),
    "mget": ("request_policy:multi_shard",),
    "migrate": ("nondeterministic_output",),
    "mset": ("request_policy:multi_shard", "response_policy:all_succeeded"),
    "msetnx": ("request_policy:multi_shard", "response_policy:agg_min"),
    "object|encoding": ("nondeterministic_output",),
    "object|freq": ("nondeterministic_output",),
    "object|idletime": ("nondeterministic_output",),
    "object|refcount": ("nondeterministic_output",),
    "ping": ("request_policy:all_shards", "response_policy:all_succeeded"),
    "pttl": ("nondeterministic_output",),
    "randomkey": ("request_policy:all_shards", "nondeterministic_output"),
    "scan": ("nondeterministic_output", "request_policy:special"),
    "sdiff": ("nondeterministic_output_order",),
    "sinter": ("nondeterministic_output_order",),
    "smembers": ("nondeterministic_output_order",),
    "spop": ("nondeterministic_output",),
    "srandmember": ("nondeterministic_output",),
    "sscan": ("nondeterministic_output",),
    "sunion": ("nondeterministic_output_order",),
    "time": ("nondeterministic_output",),
    "touch": ("request_policy:multi_shard", "response_policy:agg_sum"),
    "ttl": ("nondeterministic_output",),
    "unlink": ("request_policy:multi_shard", "response_policy:agg_sum"),
    "wait": ("request_policy:all_shards", "response_policy:agg_min"),
    "zrandmember": ("nondeterministic_output",),
    "zscan": ("nondeterministic_output",),
}


def group_name(cmd: Command) -> str:
    """The command's group as COMMAND DOCS names it ("sorted-set", "transactions", ...)."""
    return GROUP_ALIASES.get(cmd.group, cmd.group)


def printed_flags(cmd: Command) -> list[str]:
    """The command's flags as COMMAND prints them: underscores, Redis's order, no sentinel flags."""
    flags = {flag.replace("-", "_") for flag in cmd.flags if flag not in HIDDEN_FLAGS}
    ordered = [flag for flag in FLAG_ORDER if flag in flags]
    return ordered + sorted(flags.difference(FLAG_ORDER))


def acl_categories(cmd: Command) -> list[str]:
    """The command's ACL categories (without '@'), in Redis's order."""
    flags = set(cmd.flags)
    cats: set[str] = set()
    if "write" in flags:
        cats.add("write")
    if "readonly" in flags:
        cats.add("read")
    if "admin" in flags:
        cats.update(("admin", "dangerous"))
    if "pubsub" in flags:
        cats.add("pubsub")
    cats.add("fast" if "fast" in flags else "slow")
    if "blocking" in flags:
        cats.add("blocking")
    # A container (a command made only of subcommands) carries no group category.
    is_container = bool(cmd.subcommands) and cmd.arity != -1
    group_cat = GROUP_CATEGORY.get(group_name(cmd))
    if group_cat and not is_container:
        cats.add(group_cat)
    added, removed = ACL_EXCEPTIONS.get(cmd.name, ((), ()))
    for prefix, (more, fewer) in ACL_EXCEPTION_PREFIXES.items():
        if cmd.name.startswith(prefix):
            added, removed = added + more, removed + fewer
    cats.update(added)
    cats.difference_update(removed)
    return [cat for cat in ACL_ORDER if cat in cats]


def key_flags(cmd: Command) -> list[Status]:
    """A key's access flags: RW+update for a write command, RO+access otherwise."""
    if "write" in cmd.flags:
        return [Status(b"RW"), Status(b"update")]
    return [Status(b"RO"), Status(b"access")]


def key_specs(cmd: Command) -> list[dict]:
    """Redis 7 key specifications: Redis 7.0.15's own (hypercache/keyspecs.py) where Redis has the
    command, else derived from first/last/step (one range spec, or none), with RO+access for
    reads and RW+update for writes."""
    specs = keyspecs.SPECS.get(cmd.name)
    if specs is not None:
        return [_spec_reply(*spec) for spec in specs]
    if not cmd.first_key or cmd.find_keys is not None:
        return []     # movable keys (numkeys forms) are found by code, not by a range spec
    if cmd.last_key < 0:
        lastkey = cmd.last_key
    else:
        lastkey = cmd.last_key - cmd.first_key
    return [{
        b"flags": OrderedSet(key_flags(cmd)),
        b"begin_search": {b"type": b"index", b"spec": {b"index": cmd.first_key}},
        b"find_keys": {b"type": b"range",
                       b"spec": {b"lastkey": lastkey, b"keystep": cmd.step or 1, b"limit": 0}},
    }]


def _spec_reply(flags: str, begin: tuple, find: tuple, notes: str = "") -> dict:
    """One key spec as COMMAND shows it, from keyspecs.py's tuples."""
    if begin[0] == "index":
        search: dict = {b"type": b"index", b"spec": {b"index": begin[1]}}
    elif begin[0] == "keyword":
        search = {b"type": b"keyword", b"spec": {b"keyword": begin[1].encode(), b"startfrom": begin[2]}}
    else:
        search = {b"type": b"unknown", b"spec": {}}
    if find[0] == "range":
        keys: dict = {b"type": b"range", b"spec": {b"lastkey": find[1], b"keystep": find[2], b"limit": find[3]}}
    elif find[0] == "keynum":
        keys = {b"type": b"keynum", b"spec": {b"keynumidx": find[1], b"firstkey": find[2], b"keystep": find[3]}}
    else:
        keys = {b"type": b"unknown", b"spec": {}}
    spec: dict = {b"notes": notes.encode()} if notes else {}
    spec.update({b"flags": OrderedSet(Status(flag.encode()) for flag in flags.split()), b"begin_search": search,
                 b"find_keys": keys})
    return spec


def info_entry(cmd: Command) -> list:
    """One COMMAND / COMMAND INFO entry: [name, arity, flags, first, last, step, acl, tips, specs, subs]."""
    subs = ([info_entry(sub) for sub in cmd.subcommands.values()]
            if cmd.subcommands else OrderedSet())
    return [
        cmd.name.encode(),
        cmd.arity,
        OrderedSet(Status(flag.encode()) for flag in printed_flags(cmd)),
        cmd.first_key,
        cmd.last_key,
        cmd.step,
        OrderedSet(Status(b"@" + cat.encode()) for cat in acl_categories(cmd)),
        OrderedSet(tip.encode() for tip in TIPS.get(cmd.name, ())),
        OrderedSet(key_specs(cmd)),
        subs,
    ]


def docs_entry(cmd: Command, redis_doc: tuple | None = None) -> dict:
    """One COMMAND DOCS map: Redis 7.0's own (commands/redis_docs.py) where Redis has the command,
    else what the table holds (summary, since, group); subcommands are the table's."""
    if redis_doc is None and "|" not in cmd.name:
        from .redis_docs import DOCS
        redis_doc = DOCS.get(cmd.name)
    if redis_doc is not None:
        doc = {key.encode(): _reply_value(value) for key, value in redis_doc[1] if key != "subcommands"}
        theirs = dict(next((value[1] for key, value in redis_doc[1] if key == "subcommands"), []))
    else:
        doc = {b"summary": cmd.summary.encode(), b"since": cmd.since.encode(), b"group": group_name(cmd).encode()}
        theirs = {}
    if cmd.subcommands:
        doc[b"subcommands"] = {sub.name.encode(): docs_entry(sub, theirs.get(sub.name))
                               for sub in cmd.subcommands.values()}
    return doc


def _reply_value(value):
    """redis_docs.py's data as reply values: maps, sets, simple strings, arrays, bulk strings."""
    kind = type(value)
    if kind is tuple:
        tag, items = value
        if tag == "%":
            return {key.encode(): _reply_value(item) for key, item in items}
        if tag == "~":
            return OrderedSet(_reply_value(item) for item in items)
        return Status(items.encode())
    if kind is list:
        return [_reply_value(item) for item in value]
    if kind is str:
        return value.encode()
    return value


def find(table: dict[bytes, Command], name: bytes) -> Command | None:
    """Look up "get" or "config|get" (case-insensitive), as COMMAND INFO/DOCS accept names."""
    parent, _, sub = name.lower().partition(b"|")
    cmd = table.get(parent)
    if cmd is None or not sub:
        return cmd
    return cmd.subcommands.get(sub)


def all_commands(table: dict[bytes, Command]) -> Iterable[Command]:
    """Every command and subcommand in the table."""
    for cmd in table.values():
        yield cmd
        yield from cmd.subcommands.values()
