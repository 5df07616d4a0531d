"""Run requests: look the command up, check arity and auth, route, execute, encode.

`Dispatcher.run()` takes the requests of one read and appends every reply to
one output list, which the connection writes with a single send. It stops
early when a blocking command has to wait, when big replies should be sent
before going on, or when the client must be closed (see run()).
"""
from __future__ import annotations

import logging
from binascii import crc_hqx
from time import monotonic, perf_counter_ns
from typing import Any

from mesh.keyslot import keyslot

from .arguments import WRONGTYPE
from .blocking import Suspend
from .commands import TABLE, Command
from .context import Context
from .reply import BULK_HEADERS, BULK_HEADERS_CACHED, OK, QUEUED, CommandError, Raw, encode
from .routing import NO_SLOT, route
from .session import Session
from .stats import LATENCY_BUCKETS

log = logging.getLogger(__name__)

NOAUTH = CommandError("NOAUTH Authentication required.")
OOM = CommandError("OOM command not allowed when used memory > 'maxmemory'.")
# What a RESP2 connection in subscribed mode may still send (Redis 7).
PUBSUB_ALLOWED = frozenset((b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe",
                            b"ssubscribe", b"sunsubscribe", b"ping", b"quit", b"reset"))
# Commands that run immediately inside MULTI instead of being queued.
MULTI_IMMEDIATE = frozenset((b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"))
NO_AUTH_NEEDED = frozenset((b"auth", b"hello", b"quit", b"reset"))
BIG_REPLY = 64 * 1024                # replies above this count towards OUTPUT_BUDGET
OUTPUT_BUDGET = 1024 * 1024          # big-reply bytes one run() produces before returning
# Command groups whose commands change the session's gates (auth, MULTI, pub/sub mode).
SESSION_GROUPS = frozenset(("connection", "transactions", "pubsub", "cluster"))


def encode_sized(reply: Any, protocol: int, out: list) -> int:
    """Encode `reply` into `out`; return its size when it is big (it counts towards OUTPUT_BUDGET)."""
    before = len(out)
    encode(reply, protocol, out)
    size = len(out[before]) if len(out) - before == 1 else sum(map(len, out[before:]))
    return size if size > BIG_REPLY else 0


def unknown_command(args: list[bytes]) -> CommandError:
    # As Redis: the arguments shown share a budget of 128 bytes ("'%.*s' " while under it)
    shown = b""
    for arg in args[1:]:
        if len(shown) >= 128:
            break
        shown += b"'" + arg[:128 - len(shown)] + b"' "
    return CommandError(f"ERR unknown command '{args[0][:128].decode('utf-8', 'replace')}', "
                        f"with args beginning with: {shown.decode('utf-8', 'replace')}")


def unknown_subcommand(cmd: Command, sub: bytes) -> CommandError:
    return CommandError(f"ERR unknown subcommand '{sub.decode('utf-8', 'replace')[:128]}'. "
                        f"Try {cmd.name.upper()} HELP.")


class Dispatcher:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.table = TABLE
        self.lane = self._fast_lane(TABLE)
        self.get_cmd, self.set_cmd = TABLE[b"get"], TABLE[b"set"]
        for cmd in self.lane.values():
            ctx.stats.for_command(cmd.name)
        self.suspended: Suspend | None = None   # set when run() stops at a blocking command

    @staticmethod
    def _fast_lane(table: dict[bytes, Command]) -> dict[bytes, Command]:
        """Commands that may skip the general checks, under their lower- and upper-case names.

        Excluded: commands that change what the general checks look at (auth,
        MULTI, subscriptions, the connection itself) and containers of subcommands.
        """
        lane = {}
        for name, cmd in table.items():
            if (cmd.subcommands or cmd.group in SESSION_GROUPS or "no-multi" in cmd.flags
                    or "blocking" in cmd.flags):     # may return Suspend: execute() handles it
                continue
            lane[name] = lane[name.upper()] = cmd
        return lane

    def lookup(self, args: list[bytes]) -> Command:
        """The command (or subcommand) for `args`, with arity checked; raises the Redis error."""
        cmd = self.table.get(args[0].lower())
        if cmd is None:
            raise unknown_command(args)
        if cmd.subcommands and (len(args) > 1 or cmd.arity != -1):   # bare COMMAND runs itself
            if len(args) < 2:
                raise CommandError(f"ERR wrong number of arguments for '{cmd.name}' command")
            sub = cmd.subcommands.get(args[1].lower())
            if sub is None:
                raise unknown_subcommand(cmd, args[1])
            cmd = sub
        if not cmd.arity_ok(len(args)):
            # Redis 7.0 names a subcommand by its full name here: 'config|get'
            raise CommandError(f"ERR wrong number of arguments for '{cmd.name}' command")
        return cmd

    def run(self, session: Session, requests: list, out: list, start: int = 0) -> int:
        """Run requests[start:] for `session`; returns where it stopped (len when all ran).

        It stops early at a blocking command that must wait (`self.suspended`
        is then set and the returned index is that command's), or after
        OUTPUT_BUDGET bytes of big replies (`self.suspended` is None and the
        index is the next request to run), so the connection can send first.

        Plain data commands from a plain session (authenticated, not in MULTI,
        not subscribed) take the fast lane: the same steps as execute() and
        call(), inlined, because at 16 pipelined requests per read every
        function call is a measurable share of the node's throughput.
        Everything else, and every error, goes through execute().

        The fast lane times a run of the same command in a row as one (two
        clock reads for 16 pipelined GETs, not 32): calls and total time stay
        exact, and each call of the run is counted in the latency histogram
        at the run's mean.
        """
        ctx = self.ctx
        protocol = session.protocol
        lane = self.lane
        blocking = ctx.blocking
        cluster = ctx.cluster
        owners_of = cluster.slotmap.owners
        me = ctx.node_id
        store = ctx.store
        append = out.append
        get_cmd, set_cmd = self.get_cmd, self.set_cmd
        plain = (session.multi is None and session.authenticated and not session.in_pubsub
                 and not session.asking)
        self.suspended = None
        writable = None                     # cluster.accepting_writes(), found at the first write
        volume = 0                          # bytes of big replies produced by this call
        timed = None                        # the fast-lane command being timed since `clock`
        calls = 0                           # how many times in a row it ran
        clock = 0
        index = start
        count = len(requests)
        while index < count:
            if volume > OUTPUT_BUDGET:
                # big replies: hand back to the connection to send before going on
                # (with no Suspend: only one returned by this very call is ours)
                if timed is not None:
                    session.last_cmd = timed
                    self._record(timed, calls, perf_counter_ns() - clock)
                return index
            args = requests[index]
            index += 1
            cmd = lane.get(args[0]) if plain and args else None
            routed = True                       # False: call() routes it (redirects, several keys)
            if cmd is not None and (len(args) == cmd.arity or (cmd.arity < 0 and len(args) >= -cmd.arity)):
                # -- the fast lane: route, run, encode, count --
                if cmd.single_key:
                    key = args[1]
                    # 123 is "{": an int needle is ~10x faster than b"{" here
                    slot = (crc_hqx(key, 0) & 0x3FFF) if 123 not in key else keyslot(key)
                    owners = owners_of[slot]
                    if cmd.write and writable is None:
                        writable = monotonic() <= cluster.writes_until   # accepting_writes(), inlined
                    if owners and owners[0] == me and (writable or not cmd.write):
                        ctx.slot = slot
                    else:
                        routed = False          # a redirect: call() formats and counts it
                elif cmd.first_key or cmd.find_keys is not None:
                    routed = False              # several keys
                else:
                    ctx.slot = NO_SLOT
            else:
                cmd = None
            if cmd is None or not routed:
                if timed is not None:
                    session.last_cmd = timed
                    self._record(timed, calls, perf_counter_ns() - clock)
                    timed = None
                if cmd is not None:
                    session.last_cmd = cmd
                    reply = self.call(session, cmd, args)
                elif args:
                    reply = self.execute(session, args)
                else:
                    continue
                protocol = session.protocol     # HELLO/RESET switch it, for their own reply too
                if type(reply) is Suspend:
                    self.suspended = reply
                    return index - 1
                volume += encode_sized(reply, protocol, out)
                if session.close_after_reply or session.kill:
                    return count
                if blocking.ready:
                    blocking.serve_ready()
                owners_of = cluster.slotmap.owners      # CLUSTER commands may have moved slots
                plain = (session.multi is None and session.authenticated
                         and not session.in_pubsub and not session.asking)
                continue
            if cmd is not timed:
                now = perf_counter_ns()
                if timed is not None:
                    self._record(timed, calls, now - clock)
                timed = cmd
                calls = 0
                clock = now
            if cmd.denyoom and store.maxmemory and store.over_maxmemory() and not store.evict(keyslot):
                reply = self._reject(cmd.name, OOM)
            else:
                try:
                    # GET and plain SET are most of a cache's traffic: straight to
                    # the store (what their handlers do), one call less each
                    if cmd is get_cmd:
                        reply = store.get(slot, key, ctx.now_ms)
                        if reply is not None and type(reply) is not bytes:
                            raise CommandError(WRONGTYPE)
                    elif cmd is set_cmd and len(args) == 3:
                        store.set(slot, key, args[2])
                        reply = OK
                    else:
                        reply = cmd.handler(ctx, session, args)
                except CommandError as error:
                    reply = error
                    ctx.stats.for_command(cmd.name).failed_calls += 1
                    ctx.stats.count_error(str(error))
                except Exception:
                    log.exception("command failed unexpectedly command=%s", cmd.name)
                    ctx.stats.unexpected_errors += 1
                    reply = CommandError("ERR internal error while running the command")
                if cmd.write:
                    ctx.dirty += 1
            kind = type(reply)
            if kind is bytes:
                size = len(reply)
                if size < BULK_HEADERS_CACHED:
                    append(BULK_HEADERS[size])
                    append(reply)
                    append(b"\r\n")
                else:
                    append(b"$%d\r\n" % size)
                    append(reply)
                    append(b"\r\n")
                    if size > BIG_REPLY:
                        volume += size
            elif kind is Raw:
                append(reply)
                if len(reply) > BIG_REPLY:
                    volume += len(reply)
            elif kind is Suspend:
                self.suspended = reply
                session.last_cmd = cmd
                if timed is not None and calls:
                    self._record(timed, calls, perf_counter_ns() - clock)
                return index - 1
            else:
                volume += encode_sized(reply, protocol, out)
            calls += 1
            if blocking.ready:
                blocking.serve_ready()
        if timed is not None:
            session.last_cmd = timed
            # self._record(), inlined: at one request per read its calls cost ~10%
            elapsed = perf_counter_ns() - clock
            stats = ctx.stats
            stats.total_commands += calls
            stats = stats.commands[timed.name]
            stats.calls += calls
            stats.nanos += elapsed
            bucket = (elapsed // (1000 * calls)).bit_length()
            stats.latency[bucket if bucket < LATENCY_BUCKETS else LATENCY_BUCKETS] += calls
        return count

    def _record(self, cmd: Command, calls: int, elapsed_ns: int) -> None:
        """Count `calls` runs in a row of a fast-lane command that took `elapsed_ns` in all."""
        stats = self.ctx.stats
        stats.total_commands += calls
        if calls:
            stats.commands[cmd.name].record_many(calls, elapsed_ns)

    def execute(self, session: Session, args: list[bytes]) -> Any:
        """Run one request and return its reply value (or Suspend)."""
        ctx = self.ctx
        try:
            cmd = self.lookup(args)
        except CommandError as error:
            error = self._refused(session, args[0].lower(), error)
            ctx.stats.count_error(str(error))
            return error
        except (AttributeError, TypeError):
            # hiredis handed us a non-bulk element (a crafted request): refuse it
            return CommandError("ERR Protocol error: expected bulk strings")
        name = cmd.name
        session.last_cmd = cmd
        base = args[0].lower()              # the gates below are keyed by the command's own name
        if not session.authenticated and base not in NO_AUTH_NEEDED:
            return self._reject(name, self._refused(session, base, NOAUTH))
        if session.multi is not None and base not in MULTI_IMMEDIATE:
            if "no-multi" in cmd.flags:
                session.multi_error = True
                return self._reject(name, CommandError("ERR Command not allowed inside a transaction"))
            if cmd.first_key or cmd.find_keys is not None:
                # As Redis Cluster: a redirect is answered when the command is
                # queued, and it dooms the transaction (EXECABORT).
                redirect = self._redirect(session, cmd, args)
                if redirect is not None:
                    session.multi_error = True
                    return redirect
            session.multi.append((cmd, args))
            return QUEUED
        if session.protocol == 2 and session.in_pubsub and base not in PUBSUB_ALLOWED:
            return self._reject(name, self._refused(session, base, CommandError(
                f"ERR Can't execute '{name.replace('|', ' ')}': only (P|S)SUBSCRIBE / "
                "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")))
        return self.call(session, cmd, args)

    def call(self, session: Session, cmd: Command, args: list[bytes]) -> Any:
        """Route and run a looked-up command (also used by EXEC for queued commands)."""
        ctx = self.ctx
        redirect = self._redirect(session, cmd, args)
        if redirect is not None:
            return redirect
        if cmd.denyoom and ctx.store.maxmemory and ctx.store.over_maxmemory():
            if not ctx.store.evict(keyslot):
                return self._reject(cmd.name, OOM)
        if cmd.name != "asking":
            session.asking = False   # ASKING admits exactly the next command
        stats = ctx.stats.commands.get(cmd.name) or ctx.stats.for_command(cmd.name)
        started = perf_counter_ns()
        try:
            reply = cmd.handler(ctx, session, args)
        except CommandError as error:
            stats.failed_calls += 1
            ctx.stats.count_error(str(error))
            reply = error
        except Exception:
            log.exception("command failed unexpectedly command=%s", cmd.name)
            ctx.stats.unexpected_errors += 1
            stats.failed_calls += 1
            reply = CommandError("ERR internal error while running the command")
        stats.record(perf_counter_ns() - started)
        ctx.stats.total_commands += 1
        if cmd.write:
            ctx.dirty += 1
        if type(reply) is Suspend and ctx.executing_multi:
            return reply.timeout_reply   # inside EXEC a blocking command never blocks
        return reply

    def _redirect(self, session: Session, cmd: Command, args: list[bytes]) -> CommandError | None:
        """Route the command: set ctx.slot and return None to run here, else the counted redirect."""
        ctx = self.ctx
        if not (cmd.first_key or cmd.find_keys is not None):
            ctx.slot = NO_SLOT
            return None
        cluster = ctx.cluster
        try:
            ctx.slot = route(cmd.keys(args), cmd.write, cluster.slotmap, ctx.node_id,
                             session.readonly, cluster.accepting_writes())
        except CommandError as error:
            text = str(error)
            if text.startswith("MOVED"):
                ctx.stats.moved_sent += 1
            elif text.startswith("ASK"):
                ctx.stats.ask_sent += 1
            return self._reject(cmd.name, error)
        return None

    def _refused(self, session: Session, base: bytes, error: CommandError) -> CommandError:
        """The error for a command refused before it ran (Redis's rejectCommand).

        A refused command dooms an open transaction; a refused EXEC, in MULTI
        or not, discards it and answers EXECABORT with the reason.
        """
        if base == b"exec":
            if session.multi is not None:
                session.multi = None
                session.multi_error = False
                if session.watched or session.watch_dirty:
                    self.ctx.key_events.unwatch_all(session)
            reason = str(error).removeprefix("ERR ")
            return CommandError(f"EXECABORT Transaction discarded because of: {reason}")
        if session.multi is not None:
            session.multi_error = True
        return error

    def _reject(self, name: str, error: CommandError) -> CommandError:
        stats = self.ctx.stats
        stats.for_command(name).rejected_calls += 1
        stats.count_error(str(error))
        return error

