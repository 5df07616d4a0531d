"""Run requests: look the command up, check arity and auth, route, execute, encode.

`Dispatcher.run()` takes the requests of one read and appends every reply to
one output list, which the connection writes with a single send. It stops
early when a blocking command has to wait, when big replies should be sent
before going on, or when the client must be closed (see run()).
"""
from __future__ import annotations

import logging
from time import monotonic, perf_counter_ns, time
from typing import Any, Final

from mesh.keyslot import CRC16, keyslot
from mesh.slotmap import SlotMap

from .arguments import WRONGTYPE
from .blocking import LOADING, PAUSED, Suspend
from .commands import TABLE, Command
from .commands.acl import refusal
from .commands.transactions import end_transaction
from .context import Context
from .monitor import Monitors
from .reply import BULK_HEADERS, BULK_HEADERS_CACHED, OK, QUEUED, CommandError, Raw, encode
from .routing import LOADING_WAIT_S, NO_SLOT, NOREPLICAS, TRYAGAIN_LOADING, route
from .session import Session
from .stats import LATENCY_BUCKETS

log = logging.getLogger(__name__)

NOAUTH = CommandError("NOAUTH Authentication required.")
MONITOR_KEYSPACE = CommandError("ERR Replica can't interact with the keyspace")
OOM = CommandError("OOM command not allowed when used memory > 'maxmemory'.")
READONLY_REPLICA = CommandError("READONLY You can't write against a read only replica.")
# What a RESP2 connection in subscribed mode may still send (Redis 7).
PUBSUB_ALLOWED = frozenset((b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe",
                            b"ssubscribe", b"sunsubscribe", b"ping", b"quit", b"reset"))
# Commands that run immediately inside MULTI instead of being queued.
MULTI_IMMEDIATE = frozenset((b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"))
NO_AUTH_NEEDED = frozenset((b"auth", b"hello", b"quit", b"reset"))
NULL_BULK: Final = b"$-1\r\n"             # a GET miss, by protocol
NULL_RESP3: Final = b"_\r\n"
BIG_REPLY: Final = 64 * 1024               # replies above this count towards OUTPUT_BUDGET
OUTPUT_BUDGET: Final = 1024 * 1024         # big-reply bytes one run() produces before returning
# Command groups whose commands change the session's gates (auth, MULTI, pub/sub mode).
SESSION_GROUPS = frozenset(("connection", "transactions", "pubsub", "cluster"))
NO_SLOTS: Final = bytes(16384)            # the lane's table when this node may serve no slot


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


def wrong_arity(cmd: Command) -> CommandError:
    """The arity error; it names `cmd`, which Redis counts a rejected call of (execute())."""
    # Redis 7.0 names a subcommand by its full name here: 'config|get'
    error = CommandError(f"ERR wrong number of arguments for '{cmd.name}' command")
    error.command = cmd
    return error


def unknown_subcommand(cmd: Command, sub: bytes) -> CommandError:
    return CommandError(f"ERR unknown subcommand '{sub.decode('utf-8', 'replace')[:128]}'. "
                        f"Try {cmd.name.upper()} HELP.")


def may_write(cmd: Command) -> bool:
    """A write, or a script that may write (EVAL, FCALL): on a quiet slot both wait, since a
    script whose write met TRYAGAIN would fail half-way through, after its reads."""
    return cmd.write or (cmd.group == "scripting" and "may-replicate" in cmd.flags)


class Dispatcher:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.table = TABLE
        self.lane = self._full_lane = self._fast_lane(TABLE)
        self.get_cmd, self.set_cmd = TABLE[b"get"], TABLE[b"set"]
        for cmd in self.lane.values():
            ctx.stats.for_command(cmd.name)
        self.suspended: Suspend | None = None   # set when run() stops at a blocking command
        self.volume = 0                         # bytes of big replies of the current run()
        self._primary_map: SlotMap | None = None     # the slot map _primary was made from
        self._primary = b""
        ctx.monitors = Monitors(self._monitoring)
        self.to_feed: list[tuple[Session, Command, list[bytes]]] = []   # ran, not yet shown to MONITOR
        self._monitored = self._busy = self._notifying = False
        self._default_limited = False           # the default user is restricted: its calls are checked
        # CLIENT PAUSE: until when (monotonic s), and whether every command waits or only writes
        self.paused_until = 0.0
        self.pause_all = False
        self._tracking = False                  # some client tracks keys: run() goes through _run_tracking()
        if ctx.key_events is not None:
            ctx.key_events.on_notifying = self.set_notifying
            ctx.key_events.tracking.on_tracking = self._set_tracking

    @staticmethod
    def _fast_lane(table: dict[bytes, Command]) -> dict[bytes, Command]:
        """Commands that may skip the general checks, under their lower- and upper-case names.

        Excluded: commands that change what the general checks look at (auth,
        MULTI, subscriptions, the connection itself, MONITOR), containers of
        subcommands, and admin commands (rare, and MONITOR does not show them).
        """
        lane = {}
        for name, cmd in table.items():
            if (cmd.subcommands or cmd.group in SESSION_GROUPS or "no-multi" in cmd.flags
                    or "blocking" in cmd.flags      # may return Suspend: execute() handles it
                    or cmd.name == "wait"           # so may WAIT, which Redis does not flag "blocking"
                    or "admin" in cmd.flags):
                continue
            lane[name] = lane[name.upper()] = cmd
        return lane

    def _monitoring(self, on: bool) -> None:
        """While a client monitors, every command goes through call(), which feeds MONITOR."""
        self._monitored = on
        self._relane()

    def set_busy(self, on: bool) -> None:
        """While a script is past its busy threshold, every command goes through execute() (BUSY)."""
        self._busy = on
        self._relane()

    def set_notifying(self, on: bool) -> None:
        """While keyspace notifications are on, every command goes through call() (its events)."""
        self._notifying = on
        self._relane()

    def lane_for(self, allowed: set[str], keyed: bool) -> dict[bytes, Command]:
        """The fast lane of a restricted user: the lane's commands it may run; for a user with
        key patterns (`keyed`), only those with no key or one key at args[1], which the lane
        checks (Session.acl_keys)."""
        return {name: cmd for name, cmd in self._full_lane.items() if cmd.name in allowed
                and (not keyed or cmd.single_key or not (cmd.first_key or cmd.find_keys is not None))}

    def set_default_limited(self, on: bool) -> None:
        """While the default user is restricted, its sessions (every new one) skip the lane."""
        self._default_limited = on
        self._relane()

    def _relane(self) -> None:
        self.lane = ({} if self._monitored or self._busy or self._notifying or self.paused_until
                     or self._default_limited else self._full_lane)

    def pause(self, until: float, every_command: bool) -> None:
        """CLIENT PAUSE: a pause is only ever extended and widened (WRITE -> ALL), as in Redis."""
        self.paused_until = max(self.paused_until, until)
        self.pause_all = self.pause_all or every_command
        self._relane()

    def unpause(self) -> None:
        """CLIENT UNPAUSE, or the pause's end: the postponed commands run, in the order they came."""
        if not self.paused_until:
            return
        self.paused_until = 0.0
        self.pause_all = False
        self._relane()
        blocking = self.ctx.blocking
        blocking.signal(PAUSED)
        blocking.serve_ready()

    def check_pause(self, now: float) -> None:
        if self.paused_until and now >= self.paused_until:
            self.unpause()

    def _postponed(self, session: Session, cmd: Command) -> bool:
        """Whether the pause holds this command back (ALL: every one; WRITE: what may write)."""
        if self.pause_all:
            return True
        if cmd.write or "may-replicate" in cmd.flags:
            return True
        return cmd.name == "exec" and session.multi is not None and any(
            queued.write or "may-replicate" in queued.flags for queued, _ in session.multi)

    def _postpone(self, session: Session, args: list[bytes]) -> Suspend:
        def retry(key: bytes) -> Any:
            # (a Suspend on other names, say a BLPOP with nothing to pop once the pause is
            # over, blocks the client again on those: Blocking.serve_ready, Connection.resume)
            return self.execute(session, args)
        return Suspend([PAUSED], 0, retry, None, keyed=False)

    def _feed_monitors(self) -> None:
        """Show MONITOR the commands call() ran (EXEC's queued ones, then EXEC itself)."""
        ran, self.to_feed = self.to_feed, []
        for session, cmd, args in ran:
            self.ctx.monitors.feed(session, cmd, args)

    def lookup(self, args: list[bytes]) -> Command:
        """The command (or subcommand) for `args`, with arity checked; raises the Redis error."""
        cmd = self.table.get(args[0].lower())
        if cmd is None:
            raise unknown_command(args)
        if cmd.subcommands and (len(args) > 1 or cmd.arity != -1):   # bare COMMAND runs itself
            if len(args) < 2:
                raise wrong_arity(cmd)
            sub = cmd.subcommands.get(args[1].lower())
            if sub is None:
                raise unknown_subcommand(cmd, args[1])
            cmd = sub
        if not cmd.arity_ok(len(args)):
            raise wrong_arity(cmd)
        return cmd

    def _set_tracking(self, on: bool) -> None:
        self._tracking = on

    def run(self, session: Session, requests: list, out: list, start: int = 0) -> int:
        """Run requests[start:] for `session` (see _run)."""
        # (a method, not a swapped attribute: compiled, a native call costs next to nothing)
        if self._tracking:
            return self._run_tracking(session, requests, out, start)
        return self._run(session, requests, out, start)

    def _run_tracking(self, session: Session, requests: list, out: list, start: int = 0) -> int:
        """run() while clients track keys: _run() as the tracking's current session."""
        tracking = self.ctx.key_events.tracking
        tracking.current = session      # NOLOOP; its own invalidations follow its replies
        try:
            return self._run(session, requests, out, start)
        finally:
            tracking.current = None
            if tracking.pending:
                self._pushes(session, out)

    def _pushes(self, session: Session, out: list) -> None:
        """The invalidations of `session`'s own writes, after the reply of the write (as Redis)."""
        tracking = self.ctx.key_events.tracking
        pending, tracking.pending = tracking.pending, []
        for push in pending:
            encode(push, session.protocol, out)

    def _run(self, session: Session, requests: list, out: list, start: int = 0) -> int:
        """Run requests[start:] for `session`; returns where it stopped (len when all ran).

        It stops early at a blocking command that must wait (`self.suspended`
        is then set and the returned index is that command's), or after
        OUTPUT_BUDGET bytes of big replies (`self.suspended` is None and the
        index is the next request to run), so the connection can send first.

        Plain data commands from a plain session (authenticated, not in MULTI,
        not subscribed, no ASKING, on the primary endpoint, no lane_off) run in the lane (_lane()); every other
        request, and every one the lane turns down, goes through execute().
        """
        self.suspended = None
        self.volume = 0
        index = start
        count = len(requests)
        while index < count:
            if (session.multi is None and session.authenticated and not session.in_pubsub
                    and not session.asking and not session.replica_endpoint and not session.lane_off):
                index = self._lane(session, requests, out, index)
                if index == count or self.volume > OUTPUT_BUDGET:
                    return index
            reply = self.execute(session, requests[index])
            if type(reply) is Suspend:
                self.suspended = reply
                self._feed_monitors()
                return index
            index += 1
            if session.lane_off and (session.reply_off or session.skip_replies):
                if session.skip_replies:        # CLIENT REPLY SKIP: its own reply, then the next
                    session.skip_replies -= 1
                    session.refresh_lane()
            else:
                self.volume += encode_sized(reply, session.protocol, out)
            if self.ctx.key_events.tracking.pending:
                self._pushes(session, out)
            if self.to_feed:
                self._feed_monitors()
            if session.close_after_reply or session.kill:
                return count
            if self.ctx.blocking.ready:
                self.ctx.blocking.serve_ready()
            if self.volume > OUTPUT_BUDGET:
                return index
        return count

    def _lane(self, session: Session, requests: list, out: list, index: int) -> int:
        """Run plain data commands from requests[index:]; returns the first one it did not run.

        The steps of execute() and call(), inlined, because at 16 pipelined
        requests per read every function call is a measurable share of the
        node's throughput. GET and plain SET, most of a cache's traffic, go
        straight to the store. The lane turns down, before touching anything,
        whatever needs more than the common case: an unknown or non-lane
        command, a wrong arity, a key this node is not the primary for, a
        write while writes are refused, OOM. run() gives that one to execute(),
        which answers it exactly, then comes back here.

        A run of the same command in a row is timed as one (two clock reads
        for 16 pipelined GETs, not 32): calls and total time stay exact, and
        each call of the run is counted in the latency histogram at the run's
        mean. Keyspace hits and misses and the dirty count are summed locally
        and added once.
        """
        ctx = self.ctx
        store = ctx.store
        slots, expires, access = store.slots, store.expires, store.access
        blocking = ctx.blocking
        # A write makes a blocked client ready only through the store's on_modified hook
        # (KeyEvents installs it while anyone waits); without it, and with none ready now, the
        # lane skips asking after each write (an attribute of a Python object: ~2% of a SET).
        wakes = store.on_modified is not None or bool(blocking.ready)
        lane = self.lane
        if session.acl_lane is not None and lane:
            lane = session.acl_lane             # a restricted user's: only the commands it may run
        key_allowed = session.acl_keys          # its key patterns: (cmd, args) -> bool, else None
        primary = self._primary if ctx.cluster.slotmap is self._primary_map else self._primary_slots()
        leased = monotonic() <= ctx.cluster.writes_until   # accepting_writes(), inlined
        if not leased and not ctx.settings.cluster_allow_reads_when_down:
            primary = NO_SLOTS      # cut off from the majority: route() answers CLUSTERDOWN
        # (with min-replicas-to-write, writes take the general path, which counts replicas)
        writable = leased and not ctx.settings.min_replicas_to_write
        # A run whose mean reaches a threshold goes to SLOWLOG or the latency monitor. Both are
        # machine ints when compiled (NEVER included); a run under the lower of the two is
        # neither's, so most runs cost one comparison and no multiplication.
        slow_ns, latent_ns = ctx.slowlog.threshold_ns, ctx.latency.threshold_ns
        watch_ns = slow_ns if slow_ns < latent_ns else latent_ns
        get_cmd, set_cmd = self.get_cmd, self.set_cmd
        append = out.append
        # (locals: compiled, a module global that is not Final is looked up in the module's dict
        # at every use, and these come from reply.py, which is not compiled)
        ok, headers, headers_cached = OK, BULK_HEADERS, BULK_HEADERS_CACHED
        protocol = session.protocol
        null = NULL_BULK if protocol == 2 else NULL_RESP3
        volume = self.volume                # bytes of big replies produced by this run()
        hits = misses = dirty = 0
        timed: Command | None = None        # the command being timed since `clock`
        calls = clock = 0                   # how many times in a row it ran
        count = len(requests)
        while index < count and volume <= OUTPUT_BUDGET:
            args = requests[index]
            cmd = lane.get(args[0])
            if cmd is None:
                break
            if cmd is not timed:
                now = perf_counter_ns()
                if calls and timed is not None:
                    self._record(timed, calls, now - clock)
                    if now - clock >= watch_ns:
                        self._report(session, timed, requests[index - calls:index], now - clock)
                timed, calls, clock = cmd, 0, now
            if cmd is get_cmd:
                if len(args) != 2:
                    break
                key = args[1]
                # 123 is "{": an int needle is ~10x faster than b"{" here
                slot = (CRC16(key, 0) & 0x3FFF) if 123 not in key else keyslot(key)
                if not primary[slot] or (key_allowed is not None and not key_allowed(cmd, args)):
                    break
                if access is None and key not in expires:
                    value = slots[slot].get(key)
                    if value is None:
                        misses += 1
                    else:
                        hits += 1
                else:
                    value = store.get(slot, key, ctx.now_ms)    # expiry and LRU/LFU, counted there
                if value is None:
                    append(null)
                elif type(value) is bytes:
                    size = len(value)
                    if size < headers_cached:
                        append(headers[size])
                    else:
                        append(b"$%d\r\n" % size)
                        if size > BIG_REPLY:
                            volume += size
                    append(value)
                    append(b"\r\n")
                else:
                    append(self._failed(cmd, CommandError(WRONGTYPE), protocol))
            elif cmd is set_cmd and len(args) == 3:
                key = args[1]
                slot = (CRC16(key, 0) & 0x3FFF) if 123 not in key else keyslot(key)
                if not (primary[slot] and writable) or (key_allowed is not None and not key_allowed(cmd, args)):
                    break
                if store.maxmemory and store.over_maxmemory() and not store.evict(keyslot):
                    break
                store.set(slot, key, args[2])
                append(ok)
                dirty += 1
                if wakes and blocking.ready:
                    blocking.serve_ready()
            else:
                arity = cmd.arity
                if len(args) != arity and (arity > 0 or len(args) < -arity):
                    break
                if cmd.single_key or len(args) <= cmd.one_key_argc:     # (a multi-key command called with one)
                    key = args[1]
                    slot = (CRC16(key, 0) & 0x3FFF) if 123 not in key else keyslot(key)
                    if not (primary[slot] and (writable or not cmd.write)):
                        break
                    if key_allowed is not None and not key_allowed(cmd, args):
                        break                   # execute() answers -NOPERM and logs it
                    ctx.slot = slot
                elif cmd.first_key or cmd.find_keys is not None:
                    break                       # several keys: route() checks CROSSSLOT
                else:
                    ctx.slot = NO_SLOT
                if cmd.denyoom and store.maxmemory and store.over_maxmemory() and not store.evict(keyslot):
                    break
                try:
                    reply = cmd.handler(ctx, session, args)
                except CommandError as error:
                    reply = error.with_traceback(None)      # see call()
                    ctx.stats.commands[cmd.name].failed_calls += 1
                    ctx.stats.count_error(str(error))
                except Exception:
                    log.exception("command failed unexpectedly command=%s", cmd.name)
                    ctx.stats.unexpected_errors += 1
                    ctx.stats.commands[cmd.name].failed_calls += 1
                    reply = CommandError("ERR internal error while running the command")
                if cmd.write:
                    dirty += 1
                kind = type(reply)
                if kind is bytes:
                    size = len(reply)
                    append(headers[size] if size < headers_cached else b"$%d\r\n" % size)
                    append(reply)
                    append(b"\r\n")
                    if size > BIG_REPLY:
                        volume += size
                elif kind is int:               # HSET, LPUSH, SADD, INCR, DEL...: no encode() call
                    append(b":%d\r\n" % reply)
                elif kind is Raw:
                    append(reply)
                    if len(reply) > BIG_REPLY:
                        volume += len(reply)
                elif reply is None:
                    append(null)
                else:
                    volume += encode_sized(reply, protocol, out)
                if wakes and blocking.ready:
                    blocking.serve_ready()
                # a handler may have replaced what the locals hold (FLUSHALL, CONFIG SET)
                slots, access = store.slots, store.access
            calls += 1
            index += 1
        self.volume = volume
        if calls and timed is not None:
            session.last_cmd = timed
            # self._record(), inlined: at one request per read its calls cost ~10%
            elapsed = perf_counter_ns() - clock
            stats = ctx.stats.commands[timed.name]
            stats.calls += calls
            stats.nanos += elapsed
            bucket = (elapsed // (1000 * calls)).bit_length()
            stats.latency[bucket if bucket < LATENCY_BUCKETS else LATENCY_BUCKETS] += calls
            if elapsed >= watch_ns:
                self._report(session, timed, requests[index - calls:index], elapsed)
        if hits or misses:
            store.stats.keyspace_hits += hits
            store.stats.keyspace_misses += misses
        if dirty:
            ctx.dirty += dirty
        return index

    def _report(self, session: Session, cmd: Command, ran: list, elapsed_ns: int) -> None:
        """A lane run of `cmd` (the requests `ran`) took `elapsed_ns` in all: to SLOWLOG and the
        latency monitor if its mean reaches their thresholds."""
        mean_ns = elapsed_ns // len(ran)
        if mean_ns >= self.ctx.slowlog.threshold_ns:
            self._slow(session, ran, mean_ns)
        if mean_ns >= self.ctx.latency.threshold_ns:
            self._latent(cmd, mean_ns)

    def _slow(self, session: Session, ran: list, elapsed_ns: int) -> None:
        """Commands that took `elapsed_ns` each (a lane run: its mean) go to SLOWLOG."""
        scripts = self.ctx.scripts
        # a script's own client has no peer: Redis shows ?:0
        addr = "?:0" if scripts is not None and session is scripts.script_session else session.addr
        for args in ran:
            self.ctx.slowlog.push(args, elapsed_ns // 1000, int(time()), addr, session.name)

    def _latent(self, cmd: Command, elapsed_ns: int) -> None:
        """A command at or past latency-monitor-threshold: a sample of its event (Redis's call())."""
        self.ctx.latency.add("fast-command" if "fast" in cmd.flags else "command", elapsed_ns // 1_000_000,
                             int(time()))

    def _record(self, cmd: Command, calls: int, elapsed_ns: int) -> None:
        """Count `calls` runs in a row of a lane command that took `elapsed_ns` in all."""
        self.ctx.stats.commands[cmd.name].record_many(calls, elapsed_ns)

    def _failed(self, cmd: Command, error: CommandError, protocol: int) -> bytes:
        """A lane command's error reply, counted as Redis counts a failed call."""
        stats = self.ctx.stats
        stats.commands[cmd.name].failed_calls += 1
        stats.count_error(str(error))
        out: list[bytes] = []
        encode(error, protocol, out)
        return out[0]

    def _primary_slots(self) -> bytes:
        """A byte per slot, 1 where this node is the slot's primary: the lane's routing test.

        Made once per slot map (maps are values, replaced whole on a new epoch).
        """
        slotmap = self.ctx.cluster.slotmap
        if slotmap is not self._primary_map:
            me = self.ctx.node_id
            replicator = self.ctx.replicator
            if replicator is not None:
                replicator.follow_map()     # (see _redirect)
            loaded = replicator.loaded if replicator is not None else b"\x01" * len(slotmap.owners)
            # a slot whose data is still being copied here goes the general way (TRYAGAIN),
            # and so does one whose writes wait for a new replica's copy (Replicator.quiet)
            table = bytearray(1 if owners and owners[0] == me and held else 0
                              for owners, held in zip(slotmap.owners, loaded))
            for slot in (replicator.quiet if replicator is not None else ()):
                table[slot] = 0     # (apart: a test per slot in the loop cost ~55% more)
            self._primary = bytes(table)
            self._primary_map = slotmap
        return self._primary

    def invalidate_routes(self) -> None:
        """The slots this node serves changed without a new map (a slot's data arrived)."""
        self._primary_map = None

    def execute(self, session: Session, args: list[bytes]) -> Any:
        """Run one request and return its reply value (or Suspend)."""
        ctx = self.ctx
        try:
            cmd = self.lookup(args)
        except CommandError as error:
            error.with_traceback(None)      # see call()
            rejected = error.command
            if rejected is not None:
                ctx.stats.for_command(rejected.name).rejected_calls += 1
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
        acl = ctx.acl
        if acl is not None and acl.checking:        # some user is restricted: is this one? (acl.py)
            user = session.user or acl.default
            if not user.unrestricted:
                denied = refusal(ctx, session, cmd, args)
                if denied is not None:
                    return self._reject(name, self._refused(session, base, denied))
        scripts = ctx.scripts
        if scripts is not None and scripts.busy and "allow-busy" not in cmd.flags:
            return self._reject(name, self._refused(session, base, scripts.busy_error()))
        if session.monitor and (cmd.write or "readonly" in cmd.flags):
            return self._reject(name, self._refused(session, base, MONITOR_KEYSPACE))
        if self.paused_until and self._postponed(session, cmd):
            return self._postpone(session, args)
        if session.multi is not None and base not in MULTI_IMMEDIATE:
            if "no-multi" in cmd.flags:
                session.multi_error = True
                return self._reject(name, CommandError("ERR Command not allowed inside a transaction"))
            if cmd.first_key or cmd.find_keys is not None:
                # As Redis Cluster: a redirect is answered when the command is
                # queued, and it dooms the transaction (EXECABORT). Not a slot whose
                # data is arriving, or that is quiet: EXEC waits for it (route_transaction).
                redirect = self._redirect(session, cmd, args)
                if redirect is not None and redirect is not TRYAGAIN_LOADING:
                    session.multi_error = True
                    return redirect
            session.multi.append((cmd, args))
            return QUEUED
        if session.protocol == 2 and session.in_pubsub and base not in PUBSUB_ALLOWED:
            return self._reject(name, self._refused(session, base, CommandError(
                f"ERR Can't execute '{name.replace('|', ' ')}': only (P|S)SUBSCRIBE / "
                "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")))
        reply = self.call(session, cmd, args)
        if reply is TRYAGAIN_LOADING:
            return self._await_loading(session, args, name)
        return reply

    def _await_loading(self, session: Session, args: list[bytes], name: str) -> Suspend:
        """Park a command whose slot this node leads but whose data is still arriving.

        Redis clients treat TRYAGAIN differently (redis-py and ioredis retry it,
        `redis-cli -c` prints it), and the wait is usually one round trip: the
        former primary's confirmation after a switch, or a pull. So the command
        waits, with its connection's pipeline behind it, and runs once the slot
        is served (or is redirected, if the map moved it meanwhile); after
        LOADING_WAIT_S it gets the TRYAGAIN it would have got at once.
        """
        def retry(name: bytes) -> Any:
            return self.execute(session, args)      # (a Suspend again: it keeps waiting)

        exec_ = session.multi is not None and args[0].lower() == b"exec"

        def gave_up() -> None:
            # answered TRYAGAIN after all: counted as a refused call, as one answered at once is
            self._reject(name, TRYAGAIN_LOADING)
            if exec_:
                # an EXEC that waited in vain: as Redis Cluster's redirected EXEC, its
                # transaction (and every WATCH) is gone with the TRYAGAIN
                end_transaction(self.ctx, session)
        return Suspend([LOADING], LOADING_WAIT_S, retry, TRYAGAIN_LOADING, keyed=False, on_timeout=gave_up)

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
        feed_at = len(self.to_feed)
        key_events = ctx.key_events
        mark = key_events.begin(args) if self._notifying else -1
        if session.no_touch and cmd.name != "touch":
            ctx.store.touching = False
        started = perf_counter_ns()
        try:
            reply = cmd.handler(ctx, session, args)
        except CommandError as error:
            stats.failed_calls += 1
            ctx.stats.count_error(str(error))
            # An error kept as the reply must not keep its traceback: the traceback holds
            # this frame, whose `reply` holds the error, a cycle that kept the request's
            # arguments (54 MB for a million of them) alive until a full collection.
            reply = error.with_traceback(None)
        except Exception:
            log.exception("command failed unexpectedly command=%s", cmd.name)
            ctx.stats.unexpected_errors += 1
            stats.failed_calls += 1
            reply = CommandError("ERR internal error while running the command")
        elapsed = perf_counter_ns() - started
        ctx.store.touching = True
        if reply is TRYAGAIN_LOADING:
            # an EXEC whose slot's data is still arriving: it waits and runs again (execute()),
            # and is counted, timed and fed to MONITOR once, by the run that answers it
            if mark >= 0:
                key_events.end(args, reply, mark)
            return reply
        stats.record(elapsed)
        if elapsed >= ctx.slowlog.threshold_ns and "skip-slowlog" not in cmd.flags and type(reply) is not Suspend:
            self._slow(session, [args], elapsed)
        if elapsed >= ctx.latency.threshold_ns and type(reply) is not Suspend:
            self._latent(cmd, elapsed)
        if mark >= 0:
            key_events.end(args, reply, mark)
        if session.tracking is not None:
            key_events.tracking.after_call(session, cmd, args, ctx.executing_multi)
        if cmd.write:
            ctx.dirty += 1
        if ctx.monitors.sessions:
            # fed once the reply is written, as Redis feeds after the call (run()); a script
            # (skip-monitor) comes before the commands it ran, as Redis feeds EVAL first
            self.to_feed.insert(feed_at if "skip-monitor" in cmd.flags else len(self.to_feed),
                                (session, cmd, args))
        if type(reply) is Suspend and ctx.executing_multi:
            return reply.timeout_reply   # inside EXEC a blocking command never blocks
        return reply

    def _redirect(self, session: Session, cmd: Command, args: list[bytes]) -> CommandError | None:
        """Route the command: set ctx.slot and return None to run here, else the counted redirect."""
        if not (cmd.first_key or cmd.find_keys is not None):
            self.ctx.slot = NO_SLOT
            return self._keyless_redirect(session, cmd.name, cmd.write)
        return self._route(session, cmd.name, cmd.keys(args), cmd.write, may_write(cmd))

    def _keyless_redirect(self, session: Session, name: str, write: bool) -> CommandError | None:
        if write and session.replica_endpoint:
            return self._reject(name, READONLY_REPLICA)   # (FLUSHALL on a Redis replica)
        replicator = self.ctx.replicator
        if write and replicator is not None and replicator.quiet:
            # (FLUSHALL / FLUSHDB would empty quiet slots too: were this node to die before
            # their new replicas' copies end, the former owners' fallbacks bring the keys back)
            return TRYAGAIN_LOADING
        return None

    def _route(self, session: Session, name: str, keys: list[bytes], write: bool,
               waits_if_quiet: bool) -> CommandError | None:
        """Route keyed work (a command, or EXEC's whole queue): set ctx.slot, or the redirect."""
        ctx = self.ctx
        cluster = ctx.cluster
        try:
            replicator = ctx.replicator
            if replicator is not None and replicator.followed_map is not cluster.slotmap:
                replicator.follow_map()     # its rules run before a slot of the new map is served
            ctx.slot = route(keys, write, cluster.slotmap, ctx.node_id,
                             session.readonly, monotonic() <= cluster.writes_until,   # accepting_writes()
                             replicator.loaded if replicator is not None else None,
                             ctx.settings.cluster_allow_reads_when_down, session.replica_endpoint)
        except CommandError as error:
            error.with_traceback(None)      # see call()
            text = str(error)
            if text.startswith("MOVED"):
                ctx.stats.moved_sent += 1
            elif text.startswith("ASK"):
                ctx.stats.ask_sent += 1
            elif error is TRYAGAIN_LOADING:
                return error    # (counted by the caller when sent: execute() may wait instead)
            return self._reject(name, error)
        if waits_if_quiet and replicator is not None and replicator.quiet and ctx.slot in replicator.quiet:
            return TRYAGAIN_LOADING     # (uncounted: execute() waits, see Replicator.quiet)
        wanted = ctx.settings.min_replicas_to_write
        if (write and wanted and replicator is not None
                and replicator.good_replicas(ctx.slot, ctx.settings.min_replicas_max_lag) < wanted):
            return self._reject(name, NOREPLICAS)
        return None

    def route_transaction(self, session: Session, queued: list) -> CommandError | None:
        """EXEC's routing: as Redis Cluster, a transaction is routed as one request.

        All its keys must be in one slot served here; a slot whose data is still
        arriving, or that is quiet while the transaction writes, makes the whole
        EXEC wait (TRYAGAIN_LOADING): never some of its commands run and others not.
        """
        keys = [key for cmd, argv in queued for key in cmd.keys(argv)]
        write = any(cmd.write for cmd, _ in queued)
        # a keyless write among them (FLUSHALL) waits for every quiet slot, as it would alone
        keyless_write = any(cmd.write and not (cmd.first_key or cmd.find_keys is not None) for cmd, _ in queued)
        if not keys or keyless_write:
            redirect = self._keyless_redirect(session, "exec", keyless_write)
            if redirect is not None or not keys:
                self.ctx.slot = NO_SLOT
                return redirect
        return self._route(session, "exec", keys, write, any(may_write(cmd) for cmd, _ in queued))

    def _refused(self, session: Session, base: bytes, error: CommandError) -> CommandError:
        """The error for a command refused before it ran (Redis's rejectCommand).

        A refused command dooms an open transaction; a refused EXEC, in MULTI
        or not, discards it (and, as Redis's discardTransaction, every WATCH)
        and answers EXECABORT with the reason.
        """
        if base == b"exec":
            end_transaction(self.ctx, session)
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

