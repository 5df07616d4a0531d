"""Server commands: COMMAND, DBSIZE, FLUSHALL/FLUSHDB, TIME, MEMORY, DEBUG, SHUTDOWN, LASTSAVE, SAVE, ROLE.

INFO lives in info.py and CONFIG in config.py; the COMMAND replies are built
by the pure functions of command_info.py from the command table, so what
COMMAND says is what the dispatcher enforces. A hypercache node keeps its
data in memory only: SAVE and BGSAVE say so instead of pretending.
"""
from __future__ import annotations

import logging
import re
import time

from mesh.keyslot import keyslot

from .. import gc_policy, keyspecs
from ..arguments import SYNTAX, parse_int
from ..glob import glob_match
from ..replication_state import read as read_replication, role_reply
from ..reply import OK, CommandError, OrderedSet, Raw, Status, Verbatim
from ..roles import replica_port, replica_view
from ..resp import CROSS_PROTOCOL
from ..store import KEY_OVERHEAD, value_size
from . import TABLE, Command, command, container
from .command_info import acl_categories, all_commands, docs_entry, find, info_entry, key_flags

REDIS_VERSION = "7.0.15"      # what HELLO and INFO report: the Redis behaviour we match

log = logging.getLogger(__name__)

NO_PERSISTENCE = "hypercache keeps its data in memory only (no persistence)"


# -- COMMAND ---------------------------------------------------------------------------

def _listed() -> dict[bytes, Command]:
    """The commands COMMAND shows: POST and Host: have handlers but, as in Redis 7, are not commands."""
    return {name: cmd for name, cmd in TABLE.items() if name not in CROSS_PROTOCOL}


@command("command", -1, "loading stale", group="server",
         summary="Returns detailed information about all commands.", since="2.8.13")
def command_(ctx, session, args):
    """Format: COMMAND"""
    return [info_entry(cmd) for cmd in _listed().values()]


@command("command|count", 2, "loading stale", group="server",
         summary="Returns a count of commands.", since="2.8.13")
def command_count(ctx, session, args):
    """Format: COMMAND COUNT"""
    return len(_listed())


@command("command|info", -2, "loading stale", group="server",
         summary="Returns information about one, multiple or all commands.", since="2.8.13")
def command_info(ctx, session, args):
    """Format: COMMAND INFO [command-name [command-name ...]]"""
    table = _listed()
    if len(args) == 2:
        return [info_entry(cmd) for cmd in table.values()]
    entries = []
    for name in args[2:]:
        cmd = find(table, name)
        entries.append(None if cmd is None else info_entry(cmd))
    return entries


@command("command|docs", -2, "loading stale", group="server",
         summary="Returns documentary information about one, multiple or all commands.", since="7.0.0")
def command_docs(ctx, session, args):
    """Format: COMMAND DOCS [command-name [command-name ...]]  (a map; unknown names are left out)"""
    table = _listed()
    if len(args) == 2:
        return {cmd.name.encode(): docs_entry(cmd) for cmd in table.values()}
    docs = {}
    for name in args[2:]:
        cmd = find(table, name)
        if cmd is not None:
            docs[cmd.name.encode()] = docs_entry(cmd)
    return docs


@command("command|list", -2, "loading stale", group="server",
         summary="Returns a list of command names.", since="7.0.0")
def command_list(ctx, session, args):
    """Format: COMMAND LIST [FILTERBY MODULE module-name | ACLCAT category | PATTERN pattern]"""
    commands = list(all_commands(_listed()))
    if len(args) == 2:
        return [cmd.name.encode() for cmd in commands]
    if len(args) != 5 or args[2].lower() != b"filterby":
        raise CommandError(SYNTAX)
    kind, value = args[3].lower(), args[4]
    if kind == b"module":
        return []
    if kind == b"aclcat":
        category = value.decode("utf-8", "replace").lower()
        return [cmd.name.encode() for cmd in commands if category in acl_categories(cmd)]
    if kind == b"pattern":
        return [cmd.name.encode() for cmd in commands if glob_match(value, cmd.name.encode(), nocase=True)]
    raise CommandError(SYNTAX)


def _keys_of_call(call: list[bytes]):
    """(command, keys) of a full command line for COMMAND GETKEYS[ANDFLAGS], with Redis's errors."""
    cmd = _listed().get(call[0].lower())
    if cmd is not None and cmd.subcommands and len(call) > 1:
        cmd = cmd.subcommands.get(call[1].lower(), cmd)
    if cmd is None:
        raise CommandError("ERR Invalid command specified")
    if (not cmd.first_key and cmd.find_keys is None) or not keyspecs.has_keys(cmd.name):
        raise CommandError("ERR The command has no key arguments")
    if not cmd.arity_ok(len(call)):
        raise CommandError("ERR Invalid number of arguments specified for command")
    try:
        keys = cmd.keys(call)
    except CommandError:
        keys = []
    if not keys and "no-mandatory-keys" not in cmd.flags:     # (EVAL with no keys: none, no error)
        raise CommandError("ERR Invalid arguments specified for command")
    return cmd, keys


@command("command|getkeys", -4, "loading stale", group="server",
         summary="Extracts the key names from an arbitrary command.", since="2.8.13")
def command_getkeys(ctx, session, args):
    """Format: COMMAND GETKEYS command [arg [arg ...]]"""
    return _keys_of_call(args[2:])[1]


@command("command|getkeysandflags", -4, "loading stale", group="server",
         summary="Extracts the key names and access flags for an arbitrary command.", since="7.0.0")
def command_getkeysandflags(ctx, session, args):
    """Format: COMMAND GETKEYSANDFLAGS command [arg [arg ...]]"""
    call = args[2:]
    cmd, keys = _keys_of_call(call)
    found = keyspecs.keys_and_flags(cmd.name, call)     # Redis's own key specs (RO/RW/OW/RM, insert...)
    if found:
        return [[call[index], OrderedSet(Status(flag.encode()) for flag in flags)] for index, flags in found]
    flags = key_flags(cmd)
    return [[key, OrderedSet(flags)] for key in keys]


@command("command|help", 2, "loading stale", group="server",
         summary="Returns helpful text about the different subcommands.", since="5.0.0")
def command_help(ctx, session, args):
    """Format: COMMAND HELP"""
    return [Status(line) for line in (
        b"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"(no subcommand)",
        b"    Return details about all Redis commands.",
        b"COUNT",
        b"    Return the total number of commands in this Redis server.",
        b"LIST",
        b"    Return a list of all commands in this Redis server.",
        b"INFO [<command-name> ...]",
        b"    Return details about multiple Redis commands.",
        b"    If no command names are given, documentation details for all",
        b"    commands are returned.",
        b"DOCS [<command-name> ...]",
        b"    Return documentation details about multiple Redis commands.",
        b"    If no command names are given, documentation details for all",
        b"    commands are returned.",
        b"GETKEYS <full-command>",
        b"    Return the keys from a full Redis command.",
        b"GETKEYSANDFLAGS <full-command>",
        b"    Return the keys and the access flags from a full Redis command.",
        b"HELP",
        b"    Prints this help.",
    )]


# -- keyspace-wide -----------------------------------------------------------------------

@command("dbsize", 1, "readonly fast", group="server",
         summary="Returns the number of keys in the database.")
def dbsize(ctx, session, args):
    """Format: DBSIZE  (keys of the slots held as a replica are counted by their primary)"""
    return ctx.store.key_count if session.readonly else ctx.store.own_key_count()


def _flush(ctx, args: list[bytes]):
    if len(args) > 2 or (len(args) == 2 and args[1].lower() not in (b"async", b"sync")):
        raise CommandError(SYNTAX)
    ctx.key_events.flush()   # notifies WATCHers of every key; ASYNC and SYNC are the same here
    return OK


@command("flushall", -1, "write", group="server",
         summary="Removes all keys from all databases.")
def flushall(ctx, session, args):
    """Format: FLUSHALL [ASYNC | SYNC]"""
    return _flush(ctx, args)


@command("flushdb", -1, "write", group="server",
         summary="Remove all keys from the current database.")
def flushdb(ctx, session, args):
    """Format: FLUSHDB [ASYNC | SYNC]"""
    return _flush(ctx, args)


@command("swapdb", 3, "write fast", group="server",
         summary="Swaps two Redis databases.", since="4.0.0")
def swapdb(ctx, session, args):
    """Format: SWAPDB index1 index2"""
    raise CommandError("ERR SWAPDB is not allowed in cluster mode")


@command("time", 1, "loading stale fast", group="server",
         summary="Returns the server time.", since="2.6.0")
def time_(ctx, session, args):
    """Format: TIME"""
    now_ns = time.time_ns()
    return [b"%d" % (now_ns // 1_000_000_000), b"%d" % (now_ns // 1000 % 1_000_000)]


@command("lastsave", 1, "loading stale fast", group="server",
         summary="Returns the Unix timestamp of the last successful save to disk.")
def lastsave(ctx, session, args):
    """Format: LASTSAVE  (never saved: the start time, as Redis reports before its first save)"""
    return int(time.time() - (time.monotonic() - ctx.started_at))


@command("save", 1, "admin noscript no-async-loading no-multi", group="server",
         summary="Synchronously saves the database(s) to disk.")
def save(ctx, session, args):
    """Format: SAVE"""
    raise CommandError(f"ERR SAVE is not supported: {NO_PERSISTENCE}")


@command("bgsave", -1, "admin noscript no-async-loading", group="server",
         summary="Asynchronously saves the database(s) to disk.")
def bgsave(ctx, session, args):
    """Format: BGSAVE [SCHEDULE]"""
    if len(args) > 2 or (len(args) == 2 and args[1].lower() != b"schedule"):
        raise CommandError(SYNTAX)
    raise CommandError(f"ERR BGSAVE is not supported: {NO_PERSISTENCE}")


@command("role", 1, "noscript loading stale fast", group="server",
         summary="Returns the replication role.", since="2.8.12")
def role(ctx, session, args):
    """Format: ROLE

    Every node is the primary of some slots: it answers as a master, listing
    the replicas it feeds whose full copy is done, with what each acknowledged
    (the same offsets as INFO replication's slaveN lines).
    """
    slotmap = ctx.cluster.slotmap
    if session.replica_endpoint:    # a Redis replica's answer (hypercache/roles.py)
        view = replica_view(ctx.cluster, ctx.replicator, ctx.node_id)
        if view is None:
            return [b"slave", b"", 0, b"connect", -1]
        host, port, up, offset = view
        return [b"slave", host.encode(), port, b"connected" if up else b"sync", offset]

    def address(node_id: str) -> tuple[str, int] | None:
        if not slotmap.has_member(node_id):
            return None
        member = slotmap.member(node_id)    # (its copies are on its replica endpoint)
        return member.host, replica_port(member.port) or member.port

    return role_reply(read_replication(ctx.replicator), address)


# -- MEMORY ------------------------------------------------------------------------------

container("memory", -2, "", "server", "A container for memory diagnostics commands.", "4.0.0")


@command("memory|usage", -3, "readonly", 2, 2, 1, group="server",
         summary="Estimates the memory usage of a key.", since="4.0.0")
def memory_usage(ctx, session, args):
    """Format: MEMORY USAGE key [SAMPLES count]  (our estimate is exact-by-construction: no sampling)"""
    if len(args) == 5 and args[3].lower() == b"samples":
        parse_int(args[4])
    elif len(args) != 3:
        raise CommandError(SYNTAX)
    key = args[2]
    value = ctx.store.peek(ctx.slot, key, ctx.now_ms)      # as Redis: not a keyspace hit or miss
    if value is None:
        return None
    return len(key) + KEY_OVERHEAD + value_size(value)


@command("memory|stats", 2, "", group="server",
         summary="Returns details about memory usage.", since="4.0.0")
def memory_stats(ctx, session, args):
    """Format: MEMORY STATS

    Redis 7.0's fields in its order, from INFO memory's accounting: the dataset, the empty
    keyspace (startup) and the clients' buffers. There is no allocator to ask (pymalloc): its
    fields report the accounted bytes as allocated and active and the RSS as resident, and
    the peak is not tracked (the current total is shown).
    """
    import sys

    from .info import rss_bytes, startup_memory
    store = ctx.store
    dataset = store.used_memory
    startup = startup_memory(store)
    clients = sum(s.query_buffer + s.output_buffer for s in ctx.clients.values())
    overhead = startup + clients
    total = dataset + overhead
    keys = store.key_count
    rss = rss_bytes()
    reply: dict = {
        b"peak.allocated": total, b"total.allocated": total, b"startup.allocated": startup,
        b"replication.backlog": 0, b"clients.slaves": 0, b"clients.normal": clients,
        b"cluster.links": 0, b"aof.buffer": 0, b"lua.caches": 0, b"functions.caches": 0,
    }
    if keys:
        reply[b"db.0"] = {
            b"overhead.hashtable.main": sum(sys.getsizeof(slot) for slot in store.slots if slot),
            b"overhead.hashtable.expires": sys.getsizeof(store.expires),
            b"overhead.hashtable.slot-to-keys": 0,
        }
    net = total - startup
    reply.update({
        b"overhead.total": overhead, b"keys.count": keys,
        b"keys.bytes-per-key": net // keys if keys else 0, b"dataset.bytes": dataset,
        b"dataset.percentage": dataset * 100 / net if net else 0.0, b"peak.percentage": 100.0,
        b"allocator.allocated": total, b"allocator.active": total, b"allocator.resident": rss,
        b"allocator-fragmentation.ratio": 1.0, b"allocator-fragmentation.bytes": 0,
        b"allocator-rss.ratio": rss / total if total else 0.0, b"allocator-rss.bytes": rss - total,
        b"rss-overhead.ratio": 1.0, b"rss-overhead.bytes": 0,
        b"fragmentation": rss / total if total else 0.0, b"fragmentation.bytes": rss - total,
    })
    return reply


@command("memory|malloc-stats", 2, "", group="server",
         summary="Show allocator internal stats", since="4.0.0")
def memory_malloc_stats(ctx, session, args):
    """Format: MEMORY MALLOC-STATS (as Redis built without jemalloc: CPython's pymalloc has no report)"""
    return Verbatim(b"Stats not supported for the current allocator")


@command("memory|purge", 2, "", group="server",
         summary="Ask the allocator to release memory", since="4.0.0")
def memory_purge(ctx, session, args):
    """Format: MEMORY PURGE (a full garbage collection, the frozen objects too: what CPython can
    give back; hypercache/gc_policy.py)"""
    gc_policy.COLLECTOR.purge()
    return OK


@command("memory|doctor", 2, "", group="server",
         summary="Outputs a memory problems report.", since="4.0.0")
def memory_doctor(ctx, session, args):
    """Format: MEMORY DOCTOR"""
    if ctx.store.used_memory < 5 * 1024 * 1024:
        return Verbatim(b"Hi Sam, this instance is empty or is using very little memory, my issues "
                        b"detector can't be used in these conditions. Please, leave for your mission "
                        b"on Earth and fill it with some data. The new Sam and I will be back to our "
                        b"programming as soon as I finished rebooting.")
    return Verbatim(b"Hi Sam, I can't find any memory issue in your instance. I can only account "
                    b"for what occurs on this base.")


@command("memory|help", 2, "loading stale", group="server",
         summary="Returns helpful text about the different subcommands.", since="4.0.0")
def memory_help(ctx, session, args):
    """Format: MEMORY HELP"""
    return [Status(line) for line in (
        b"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"DOCTOR",
        b"    Return memory problems reports.",
        b"MALLOC-STATS",
        b"    Return internal statistics report from the memory allocator.",
        b"PURGE",
        b"    Attempt to purge dirty pages for reclamation by the allocator.",
        b"STATS",
        b"    Return information about the memory usage of the server.",
        b"USAGE <key> [SAMPLES <count>]",
        b"    Return memory in bytes used by <key> and its value. Nested values are",
        b"    sampled up to <count> times (default: 5, 0 means sample all).",
        b"HELP",
        b"    Prints this help.",
    )]


# -- DEBUG, SHUTDOWN -----------------------------------------------------------------------

def _string_encoding(value: bytes) -> bytes:
    if len(value) <= 20 and re.fullmatch(rb"-?[1-9][0-9]*|0", value):
        return b"int"
    return b"embstr" if len(value) <= 44 else b"raw"


def _blocking_sleep():
    """time.sleep as the OS provides it, even where gevent has patched it to yield."""
    try:
        from gevent.monkey import get_original
    except ImportError:     # pragma: no cover - gevent is a dependency of the node
        return time.sleep
    return get_original("time", "sleep")


@command("monitor", 1, "admin noscript loading stale", group="server", since="1.0.0",
         summary="Listens for all requests received by the server in real-time.")
def monitor(ctx, session, args):
    """Format: MONITOR (the lines are hypercache/monitor.py's)"""
    if ctx.executing_multi:
        raise CommandError("ERR MONITOR isn't allowed for DENY BLOCKING client")
    if session.monitor:
        return Raw(b"")         # Redis does not answer a second MONITOR
    ctx.monitors.add(session)
    return OK


# Redis 7.0's refusal (processCommand), whatever the subcommand.
DEBUG_NOT_ALLOWED = ("ERR DEBUG command not allowed. If the enable-debug-command option is set to "
                     "\"local\", you can run it from a local connection, otherwise you need to set "
                     "this option in the configuration file, and then restart the server.")


def debug_allowed(mode: str, addr: str) -> bool:
    """Whether --enable-debug-command `mode` admits a client at `addr` ("ip:port" or "[ip6]:port").

    "local" is Redis's islocalClient(): the peer's address is exactly
    127.0.0.1 or ::1, not any loopback address (127.0.0.2 is refused).
    """
    if mode == "yes":
        return True
    if mode != "local":
        return False
    host = addr.rpartition(":")[0]
    return host in ("127.0.0.1", "[::1]")


@command("debug", -2, "admin noscript loading stale", group="server",
         summary="A container for debugging commands.")
def debug(ctx, session, args):
    """Format: DEBUG SLEEP seconds | DEBUG OBJECT key | DEBUG HELP

    Refused unless --enable-debug-command allows this client: DEBUG SLEEP
    stops the whole node, so it is not for everyone who can connect.
    """
    if not debug_allowed(ctx.config.enable_debug_command, session.addr):
        raise CommandError(DEBUG_NOT_ALLOWED)
    sub = args[1].lower()
    if sub == b"sleep" and len(args) == 3:
        try:
            seconds = float(args[2])
        except ValueError:
            raise CommandError("ERR value is not a valid float") from None
        # Blocks the whole node, exactly as in Redis: that is what DEBUG SLEEP is for.
        (ctx.sleep or _blocking_sleep())(max(0.0, seconds))
        return OK
    if sub == b"object" and len(args) == 3:
        key = args[2]
        value = ctx.store.peek(keyslot(key), key, ctx.now_ms)
        if value is None:
            raise CommandError("ERR no such key")
        if type(value) is bytes:
            encoding, length = _string_encoding(value), len(value)
        else:
            encoding, length = value.encoding, value.nbytes
        return Status(b"Value at:0x%x refcount:1 encoding:%s serializedlength:%d lru:0 lru_seconds_idle:0"
                      % (id(value), encoding, length))
    if sub == b"help" and len(args) == 2:
        return [Status(line) for line in (
            b"DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            b"OBJECT <key>",
            b"    Show low level info about the key and associated value.",
            b"SLEEP <seconds>",
            b"    Stop the server for <seconds>. Decimals allowed.",
            b"HELP",
            b"    Prints this help.",
        )]
    raise CommandError(f"ERR unknown subcommand or wrong number of arguments for "
                       f"'{args[1].decode('utf-8', 'replace')}'. Try DEBUG HELP.")


@command("shutdown", -1, "admin noscript loading stale no-multi allow-busy sentinel", group="server",
         summary="Synchronously saves the database(s) to disk and shuts down the Redis server.")
def shutdown(ctx, session, args):
    """Format: SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]

    Nothing is persisted, so NOSAVE and a plain SHUTDOWN are the same; SAVE
    cannot be honoured and fails unless FORCE is given. On success there is
    no reply: the connection closes as the node stops.
    """
    options = {arg.lower() for arg in args[1:]}
    if len(options) != len(args) - 1 or not options <= {b"nosave", b"save", b"now", b"force", b"abort"} \
            or {b"save", b"nosave"} <= options:
        raise CommandError(SYNTAX)
    if b"abort" in options:
        if len(options) > 1:
            raise CommandError(SYNTAX)
        raise CommandError("ERR No shutdown in progress.")
    if b"save" in options and b"force" not in options:
        log.warning("SHUTDOWN SAVE refused: %s", NO_PERSISTENCE)
        raise CommandError("ERR Errors trying to SHUTDOWN. Check logs.")
    log.info("SHUTDOWN requested by client id=%s addr=%s", session.id, session.addr)
    session.close_after_reply = True
    ctx.shutdown()
    return Raw(b"")
