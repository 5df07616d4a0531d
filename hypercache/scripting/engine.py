"""Running scripts: one at a time, atomically, with redis.call routed and checked as Redis Cluster does.

A run starts inside the command that asked for it (EVAL, FCALL...) and, in the
common case, ends there: the script runs in a greenlet of its own that the
command switches into and that finishes before the switch returns, so a short
script costs one greenlet switch and nothing else runs meanwhile (atomic).

Past `busy-reply-threshold` ms the count hook (sandbox.py) yields to the hub
at every call: the script's caller stays parked (a Suspend, like a blocked
client), the node keeps its mesh and replication going, and every other
client gets -BUSY except for the few commands Redis allows (SCRIPT KILL,
FUNCTION KILL/STATS, SHUTDOWN, AUTH...). A script that has not written can be
killed; one that has runs to its end as in Redis. A run that cannot yield
(inside MULTI/EXEC, or started outside the hub) is ended once it has run
NON_YIELDING_LIMIT times the threshold without writing, or
NON_YIELDING_HARD_LIMIT times it after writing, so no script can freeze a
node for good.

While a script is busy the node's other work keeps off its keys: the store's
clock is the script's (ctx.now_ms is reset before every redis.call), active
expiry and blocked-client wakeups wait (see Node), and replication copies
writes as they are made, through the same store seam as any command.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, NoReturn

import gevent
import greenlet

from ..blocking import Suspend
from ..command import Command
from ..context import Context
from ..dispatch import Dispatcher
from ..commands.acl import script_refusal
from ..reply import NULL_ARRAY, CommandError
from ..routing import NO_SLOT, slot_of
from mesh.keyslot import keyslot
from ..session import Session
from . import convert, luabits, sandbox
from .flags import ScriptFlags
from .library import Registry
from .rand import Rand48

log = logging.getLogger(__name__)

LUA_MAX_MEMORY = 256 * 1024 * 1024
# What a script may not take of LUA_MAX_MEMORY: values made from Python (a redis.call reply,
# cjson.decode...) are made only while this much stays free after them. lupa cannot fail an
# allocation made from Python inside a running script safely: at the limit, a loop of
# redis.call froze the node for good (its runtime lock was never given back), and no kill
# could reach it. Engine.room() ends a run short of it; see also uncapped() and clear_if_full().
LUA_RESERVE = 4 * 1024 * 1024
OUT_OF_MEMORY = b"not enough memory"
NON_YIELDING_LIMIT = 10            # x busy-reply-threshold: a run that cannot yield and has not written
NON_YIELDING_HARD_LIMIT = 100      # x busy-reply-threshold: ... even one that wrote (the node must live)
YIELD_EVERY_S = 0.001               # how long the hub gets between two slices of a busy script
VERSION = "7.0.15"
VERSION_NUM = 0x07000F
BUSY_EVAL = CommandError("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
BUSY_FUNCTION = CommandError("BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.")
NOTBUSY = CommandError("NOTBUSY No scripts in execution right now.")
UNKILLABLE = CommandError("UNKILLABLE Sorry the script already executed write commands against the dataset. "
                          "You can either wait the script termination or kill the server in a hard way "
                          "using the SHUTDOWN NOSAVE command.")
KILLED = sandbox.KILLED.encode()
# what the router answers for a key this node may not serve, and what a script gets instead
REDIRECTS = ("MOVED ", "ASK ", "CROSSSLOT ", "CLUSTERDOWN ", "TRYAGAIN ")
NON_LOCAL = b"Script attempted to access a non local key in a cluster node"


def script_redirect_error(text: str, write: bool) -> bytes:
    """The error a redis.call gets where a client would be redirected (Redis's scriptVerifyClusterState)."""
    if text.startswith("CLUSTERDOWN"):
        if write:
            return b"Script attempted to execute a write command while the cluster is down and readonly"
        return b"Script attempted to execute a command while the cluster is down"
    return NON_LOCAL
LOAD_TIMEOUT = b"FUNCTION LOAD timeout"
LOG_LEVELS = (logging.DEBUG, logging.INFO, logging.INFO, logging.WARNING)


def sha1hex(data: bytes) -> bytes:
    return hashlib.sha1(data).hexdigest().encode()


class Run:
    """One script execution.

    (A plain class, not a dataclass: compiled, the __init__ a dataclass generates stays a
    Python function, and its 18 assignments were ~2 us of every EVALSHA.)"""

    def __init__(self, name: bytes, is_eval: bool, read_only: bool, flags: ScriptFlags, caller: Session,
                 command: list[bytes], now_ms: int, started_at: float) -> None:
        self.name = name                  # the sha of an EVAL script, a function's name
        self.is_eval = is_eval
        self.read_only = read_only
        self.flags = flags
        self.caller = caller
        self.command = command            # the caller's command (FUNCTION STATS)
        self.now_ms = now_ms              # the store's clock for the whole run (Redis's snapshot time)
        self.started_at = started_at      # monotonic
        self.slot = NO_SLOT               # the one slot keys were touched in (without allow-cross-slot)
        self.resp = 2
        self.wrote = False
        self.kill = False
        self.kill_message: bytes | None = None    # why the hook ends the run (None: SCRIPT KILL)
        self.yielding = True              # may hand the hub control past the threshold
        self.busy = False                 # past the threshold: other clients get BUSY
        self.result: Any = None
        self.done = False
        self.on_done: Callable[[], None] | None = None


@dataclass(slots=True, eq=False)
class Script:
    sha: bytes
    body: bytes
    flags: ScriptFlags
    function: Any                     # the compiled Lua chunk


class Engine:
    """The Lua state, the EVAL script cache, function libraries, and the run in progress."""

    def __init__(self, ctx: Context, max_memory: int = LUA_MAX_MEMORY) -> None:
        self.ctx = ctx
        self.rand = Rand48()
        self.runtime = sandbox.new_runtime(max_memory)
        self.max_memory = max_memory
        self._cap = max_memory            # the Lua state's limit now (see room())
        # Lua's full collection, called from Python without compiling anything (room())
        self._collect = self.runtime.eval(b"function() collectgarbage('collect') end")
        self.scripts: dict[bytes, Script] = {}
        self.run: Run | None = None
        self.registering: Callable | None = None      # FUNCTION LOAD's register_function sink
        self.script_session = Session(id=-1, addr="lua")     # MONITOR shows "[0 lua]", as Redis
        self.on_busy: Callable[[bool], None] | None = None  # the dispatcher's lane switch
        self._worker: greenlet.greenlet | None = None
        self._rules: dict[str, tuple[bool, bool, bool]] = {}    # command name -> (noscript, writes, keyed)
        self.registry = Registry()
        self.load_deadline = 0.0          # FUNCTION LOAD's time limit (monotonic), 0 when not loading
        bridge = {
            "call_raise": self._call_raise, "call_protected": self._call_protected,
            "unwrap": self._unwrap, "tick": self._tick, "hook_every": sandbox.HOOK_EVERY,
            "sha1hex": self.guarded(self._sha1hex), "log": self.guarded(self._log),
            "setresp": self.guarded(self._setresp), "set_repl": self.guarded(self._set_repl),
            "acl_check_cmd": self.guarded(self._acl_check_cmd),
            "register_function": self.guarded(self._register_function),
            "version": VERSION.encode(), "version_num": VERSION_NUM,
        }
        bridge.update(luabits.tables(self.runtime, self.rand, self.room, self.uncapped, self.guarded))
        self.api = sandbox.install(self.runtime, bridge)
        api = self.api
        self.lua = convert.LuaSide(
            table=self.runtime.table_from, ok=api.ok, err=api.err, double=api.double,
            big_number=api.big_number, verbatim=api.verbatim,
            map=lambda flat: api.map(self.runtime.table_from(flat), len(flat)),
            set=lambda items: api.set(self.runtime.table_from(items), len(items)),
            kind=api.kind, lua_type=sandbox.lua_type)

    # -- the script cache ---------------------------------------------------------------

    def compile(self, body: bytes, flags: ScriptFlags, skip: int, chunkname: bytes) -> Any:
        """The compiled chunk; raises CommandError with Lua's message (without the ERR prefix)."""
        # the shebang line is skipped but its newline kept, so line numbers stay the user's
        result = self.api.compile(body[skip:], chunkname)
        function, error = (result if isinstance(result, tuple) else (result, None))
        if function is None:
            raise CommandError((error or b"").decode("utf-8", "replace"))
        return function

    def room(self, size: int) -> bool:
        """Whether `size` bytes of Lua values may be made from Python now (see LUA_RESERVE).

        Short of room, a full collection first: garbage of this or an earlier run (a table
        that ran into the limit) is not a script's to pay for. Still short, the running
        script ends at the count hook's next look (a pcall catches the error the caller
        raises, and a loop of such calls would never end)."""
        if (self.runtime.get_memory_used() or 0) + size + LUA_RESERVE <= self.max_memory:
            return True
        self.uncapped(self._collect)    # (a call into Lua at the limit panics the process)
        used = self.runtime.get_memory_used() or 0
        if used + size + LUA_RESERVE <= self.max_memory:
            return True
        run = self.run
        if run is not None and run.kill_message is not OUT_OF_MEMORY:
            run.kill, run.kill_message = True, OUT_OF_MEMORY
            # What ends it is made from Python too (the error a pcall may catch, the kill
            # hook's message), and a string made at the limit can need the string table to
            # double (64 MB for millions of short strings): the dying run gets as much again
            # as it holds, once, and the limit is back when it has ended.
            self._cap = 2 * used + LUA_RESERVE
            self.runtime.set_max_memory(self._cap)
        return False

    def clear_if_full(self) -> None:
        """A run has returned: what it held is garbage, and is collected if it leaves less than the
        reserve free (the next call from Python into Lua, this run's error table, the next EVAL's
        start, must not begin at the limit: that panicked the process)."""
        if (self.runtime.get_memory_used() or 0) + LUA_RESERVE > self._cap:
            self.uncapped(self._collect)

    def uncapped(self, make: Callable[[], Any]) -> Any:
        """make(): Lua values built from Python whose size was checked by room() only as an
        estimate (a table's slots, its strings): the limit is off while they are made, so
        an estimate short of the truth costs memory past the cap once, never the node."""
        self.runtime.set_max_memory(0)
        try:
            return make()
        finally:
            self.runtime.set_max_memory(self._cap)

    def guarded(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """A bridge function that hands Lua a value (or an error) made from Python: it runs
        only with the reserve free, and a string it returns must fit (see LUA_RESERVE)."""
        def run(*args: Any) -> Any:
            if not self.room(0):
                raise sandbox.LuaError(luabits.Positional(OUT_OF_MEMORY.decode()))
            result = function(*args)
            if type(result) is bytes and len(result) > 4096 and not self.room(len(result) + 64):
                raise sandbox.LuaError(luabits.Positional(OUT_OF_MEMORY.decode()))
            return result
        return run

    def memory(self) -> int:
        return self.runtime.get_memory_used() or 0

    def flush_scripts(self) -> None:
        self.scripts.clear()
        self.runtime.execute(b"collectgarbage('collect')")

    # -- running ------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.run is not None and self.run.busy

    def busy_error(self) -> CommandError:
        return BUSY_EVAL if self.run is None or self.run.is_eval else BUSY_FUNCTION

    def start(self, run: Run, call: Callable[[], Any]) -> Any:
        """Run `call` (which enters Lua) as `run`; returns the reply, or a Suspend while it goes on."""
        if self.run is not None:         # (redis.call refuses EVAL/FCALL: only a bug lands here)
            return CommandError("ERR a script is already running")
        self.run = run
        hub = _hub()
        here = greenlet.getcurrent()
        run.yielding = here is hub and not self.ctx.executing_multi
        worker = self._worker
        if worker is None or worker.dead:
            worker = self._worker = greenlet.greenlet(self._serve)
        worker.parent = here
        worker.switch(run, call)
        if run.done:
            return run.result
        # (the worker stays with this run until it ends: the next run gets a new one)
        self._worker = None
        # it yielded to the hub: park the caller until it ends
        wake = b"\x00script-run:%d" % id(run)

        def retry(_key: bytes) -> Any:
            return run.result if run.done else suspend

        suspend = Suspend([wake], 0, retry, None, keyed=False)

        def finished() -> None:
            blocking = self.ctx.blocking
            blocking.signal(wake)
            blocking.serve_ready()

        run.on_done = finished
        return suspend

    def _serve(self, run: Run, call: Callable[[], Any]) -> None:
        """The worker greenlet: runs one script per switch, kept for the next run (no new greenlet per EVAL)."""
        while True:
            self._body(run, call)
            if self._worker is not greenlet.getcurrent():
                return            # it yielded to the hub on the way: a fresh worker serves the next run
            run, call = self._worker.parent.switch()

    def _body(self, run: Run, call: Callable[[], Any]) -> None:
        try:
            run.result = call()
        except sandbox.LuaMemoryError:
            run.result = CommandError(f"ERR Error running script {run.name.decode()}, not enough memory")
        except Exception as error:     # a lupa failure: the client gets an error, the node goes on
            log.exception("script failed outside Lua name=%s", run.name.decode())
            run.result = CommandError(f"ERR Error running script {run.name.decode()}, {error}")
        finally:
            run.done = True
            self.run = None
            if run.kill_message is OUT_OF_MEMORY:
                self._cap = self.max_memory
            self.clear_if_full()
            if run.busy:
                self._slice_ends(run)
                run.busy = False
                if self.on_busy is not None:
                    self.on_busy(False)
                log.warning("slow script finished name=%s ms=%d", run.name.decode(),
                            (time.monotonic() - run.started_at) * 1000)
            if run.on_done is not None:
                _hub().loop.run_callback(run.on_done)

    def _slice_ends(self, run: Run) -> None:
        """A slice of a busy run ends (the hub runs next): its writes are its caller's to wait for."""
        replicator = self.ctx.replicator
        if run.wrote and replicator is not None:
            replicator.script_wrote(run.caller)

    def kill(self, is_eval: bool) -> Any:
        """SCRIPT KILL (is_eval) / FUNCTION KILL."""
        run = self.run
        if run is None:
            raise NOTBUSY
        if run.wrote:
            raise UNKILLABLE
        if is_eval and not run.is_eval:
            raise BUSY_FUNCTION
        if not is_eval and run.is_eval:
            raise BUSY_EVAL
        run.kill = True
        return True

    def _tick(self) -> bytes | bool:
        """The count hook: the error to kill the script with, or False; past the threshold, lets the hub run."""
        run = self.run
        if run is None:
            if self.load_deadline and time.monotonic() > self.load_deadline:
                return LOAD_TIMEOUT
            return False
        if run.kill or not self.room(0):
            return run.kill_message or KILLED
        threshold_ms = self.ctx.settings.busy_reply_threshold
        if threshold_ms <= 0:
            return False
        elapsed_s = time.monotonic() - run.started_at
        if elapsed_s * 1000 < threshold_ms:
            return False
        if not run.yielding:
            limit = NON_YIELDING_HARD_LIMIT if run.wrote else NON_YIELDING_LIMIT
            if elapsed_s * 1000 >= threshold_ms * limit:
                # nothing else runs while it does: past the limit it ends, written or not,
                # rather than leave the node deaf for good (its writes so far stay)
                log.warning("ending a script that cannot yield name=%s ms=%d wrote=%s",
                            run.name.decode(), elapsed_s * 1000, run.wrote)
                run.kill = True
                return KILLED
            return False
        if not run.busy:
            run.busy = True
            log.warning("script passed busy-reply-threshold name=%s ms=%d", run.name.decode(), threshold_ms)
            if self.on_busy is not None:
                self.on_busy(True)
        self._slice_ends(run)
        gevent.sleep(YIELD_EVERY_S)
        # (an if, not `KILLED if run.kill else False`: compiled, that expression was typed bool
        # and the kill failed with a TypeError)
        if run.kill:
            return run.kill_message or KILLED
        return False

    # -- the redis API ------------------------------------------------------------------

    def _raise(self, message: bytes) -> NoReturn:
        raise sandbox.LuaError(self.api.err(message))

    def _sha1hex(self, *args: Any) -> bytes:
        if len(args) != 1:
            self._raise(b"wrong number of arguments")
        return sha1hex(lua_tostring(args[0]) or b"")

    def _setresp(self, *args: Any) -> None:
        if len(args) != 1:
            self._raise(b"redis.setresp() requires one argument.")
        version = lua_tonumber(args[0])
        if version not in (2, 3):
            self._raise(b"RESP version must be 2 or 3.")
        if self.run is not None:
            self.run.resp = int(version)

    def _set_repl(self, *args: Any) -> None:
        if self.run is None:
            self._raise(b"redis.set_repl can only be called inside a script invocation")
        if len(args) != 1:
            self._raise(b"redis.set_repl() requires two arguments.")
        flags = lua_tonumber(args[0])
        if flags is None or flags != int(flags) or int(flags) & ~3:
            self._raise(b"Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")

    def _log(self, *args: Any) -> None:
        if len(args) < 2:
            self._raise(b"redis.log() requires two arguments or more.")
        level = lua_tonumber(args[0])
        if level is None:
            self._raise(b"First argument must be a number (log level).")
        if not 0 <= level <= 3:
            self._raise(b"Invalid debug level.")
        parts = [lua_tostring(arg) for arg in args[1:]]
        message = b" ".join(part for part in parts if part is not None)
        log.log(LOG_LEVELS[int(level)], "script log: %s", message.decode("utf-8", "replace"))

    def _acl_check_cmd(self, *args: Any) -> bool:
        if self.run is None:
            self._raise(b"redis.acl_check_cmd can only be called inside a script invocation")
        if not args:
            self._raise(b"Please specify at least one argument for this redis lib call")
        name = lua_tostring(args[0])
        if name is None or name.lower() not in self.ctx.dispatcher.table:
            self._raise(b"Invalid command passed to redis.acl_check_cmd()")
        return True

    def _register_function(self, name: bytes, callback: Any, flags: Any, description: Any) -> Any:
        if self.registering is None:
            return b"redis.register_function can only be called on FUNCTION LOAD command"
        names = [flags[i] for i in range(1, len(flags) + 1)]
        return self.registering(name, callback, names, description)

    def _call_raise(self, *args: Any) -> Any:
        ok, value = self._call(*args)
        if ok:
            return value
        raise sandbox.LuaError(self.api.err(value))

    def _call_protected(self, *args: Any) -> Any:
        ok, value = self._call(*args)
        return value if ok else self.api.err(value)

    def _unwrap(self, error: Any) -> Any:
        """The Lua value a Python exception raised into Lua carries (redis.call's error table)."""
        if isinstance(error, sandbox.LuaError) and error.args:
            value = error.args[0]
            if isinstance(value, luabits.Positional):
                return value.encode("utf-8", "replace"), True
            if sandbox.lua_type(value) == "table":
                return value
        if isinstance(error, BaseException):
            log.error("python error inside a script: %r", error)
            return b"internal error"
        return error

    def _call(self, *args: Any) -> tuple:
        """redis.call / redis.pcall: (True, Lua value) or (False, error text for push_error)."""
        run = self.run
        if run is None:
            return False, b"redis.call/pcall can only be called inside a script invocation"
        if not args:
            return False, b"Please specify at least one argument for this redis lib call"
        argv = []
        for arg in args:
            kind = type(arg)
            if kind is bytes:
                argv.append(arg)
            elif kind is int:
                argv.append(b"%d" % arg if -(1 << 53) <= arg <= 1 << 53 else b"%.17g" % arg)
            elif kind is float:
                argv.append(b"%.17g" % arg)
            else:
                return False, b"Lua redis lib command arguments must be strings or integers"
        ctx = self.ctx
        # (typed: compiled code then reads their fields and calls the dispatcher directly, as
        # it does twice for each script of EVALSHA's benchmark)
        dispatcher: Dispatcher = ctx.dispatcher
        cmd: Command | None = dispatcher.table.get(argv[0].lower())
        if cmd is not None and cmd.subcommands and len(argv) > 1:
            cmd = cmd.subcommands.get(argv[1].lower())
        if cmd is None:
            return False, b"Unknown Redis command called from script"
        if not cmd.arity_ok(len(argv)):
            return False, b"Wrong number of args calling Redis command from script"
        rules = self._rules.get(cmd.name)
        if rules is None:
            rules = self._rules[cmd.name] = ("noscript" in cmd.flags,
                                             cmd.write or "may-replicate" in cmd.flags,
                                             bool(cmd.first_key or cmd.find_keys is not None))
        noscript, writes, keyed = rules
        if noscript:
            return False, b"This Redis command is not allowed from script"
        if writes and run.read_only:
            return False, b"Write commands are not allowed from read-only scripts."
        if keyed and not run.flags.allow_cross_slot:
            # (declared-slot scripts: every key in the run's one slot, checked before the command runs)
            if cmd.first_key == 1 and cmd.last_key == 1 and cmd.find_keys is None:
                keys = argv[1:2]            # (GET, SET, INCR...: one key, no walk over a key list)
            else:
                keys = cmd.keys(argv)
            if keys:
                try:
                    slot = keyslot(keys[0]) if len(keys) == 1 else slot_of(keys)
                except CommandError:
                    return False, NON_LOCAL
                if run.slot == NO_SLOT:
                    run.slot = slot
                elif run.slot != slot:
                    return False, b"Script attempted to access keys that do not hash to the same slot"
        acl = ctx.acl
        if acl is not None and acl.checking:       # the script's caller's permissions, per call
            denied = script_refusal(ctx, run.caller, cmd, argv)
            if denied is not None:
                return False, denied
        if cmd.write:
            run.wrote = True
        session = self.script_session
        session.protocol = run.resp
        session.readonly = run.caller.readonly
        session.replica_endpoint = run.caller.replica_endpoint      # (no FLUSHALL through EVAL there)
        session.id = run.caller.id
        session.tracking = run.caller.tracking      # the keys a script reads are tracked for its caller
        ctx.now_ms = run.now_ms
        # the command's own path: routing, OOM, stats, MONITOR, and the store's replication seam
        reply = dispatcher.call(session, cmd, argv)
        ctx.now_ms = run.now_ms
        kind = type(reply)
        if kind is Suspend:
            reply = reply.timeout_reply
            kind = type(reply)
        # (most replies are a string or a number: sized here, without a call into Python)
        size = len(reply) + 64 if kind is bytes else 64 if kind is int else convert.lua_size(reply)
        if not self.room(size):
            return False, OUT_OF_MEMORY     # (and the script ends: see room())
        if kind is CommandError:
            text = str(reply)
            if keyed and text.startswith(REDIRECTS):
                return False, script_redirect_error(text, cmd.write)
            return False, b"-" + text.encode("utf-8", "replace")
        if kind is bytes or kind is int:
            return True, reply              # (what most calls return: as Lua gets them, in both RESPs)
        return True, self.uncapped(lambda: convert.to_lua(reply, run.resp, self.lua))

    # -- results ------------------------------------------------------------------------

    def finish(self, run: Run, outcome: Any) -> Any:
        """The caller's reply from what xpcall returned: (true, value) or (false, error)."""
        self.clear_if_full()
        if not isinstance(outcome, tuple):
            outcome = (outcome,)
        ok = outcome[0]
        value = outcome[1] if len(outcome) > 1 else None
        if ok:
            if type(value) is bytes:
                return value                # (convert.to_resp's first case, without the call)
            return convert.to_resp(value, run.caller.protocol, run.resp, self.lua)
        return self.error_reply(run, value)

    def error_reply(self, run: Run, error: Any) -> CommandError:
        if sandbox.lua_type(error) != "table":
            text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
            return CommandError(f"ERR Error running script {run.name.decode()}, {text[:100]}".rstrip())
        message, source, line = self.api.error_table(error)
        if message is None:
            message = b"ERR unknown error"
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
        if source is not None and line is not None:
            text += f" script: {run.name.decode('utf-8', 'replace')}, on {source.decode()}:{line}."
        return CommandError(text)


def lua_tostring(value: Any) -> bytes | None:
    """lua_tolstring: strings as they are, numbers as Lua prints them (%.14g), else None."""
    if type(value) is bytes:
        return value
    if type(value) is int or type(value) is float:
        return b"%.14g" % value
    return None


def lua_tonumber(value: Any) -> int | float | None:
    """lua_tonumber: numbers, and strings that read as one."""
    if type(value) is int or type(value) is float:
        return value
    if type(value) is bytes:
        try:
            return float(value.strip())
        except ValueError:
            try:
                return int(value.strip(), 16)
            except ValueError:
                return None
    return None


_hub = gevent.get_hub


def new_run(ctx, session: Session, name: bytes, is_eval: bool, read_only: bool, flags: ScriptFlags,
            args: list[bytes]) -> Run:
    return Run(name=name, is_eval=is_eval, read_only=read_only, flags=flags, caller=session,
               command=args, now_ms=ctx.now_ms, started_at=time.monotonic())


__all__ = ["Engine", "Run", "Script", "new_run", "sha1hex", "NULL_ARRAY"]
