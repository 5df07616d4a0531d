"""EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD|EXISTS|FLUSH|KILL, with Redis 7.0's replies.

Scripts are cached by the SHA1 of their body; the run itself (sandbox, redis.call,
busy threshold, kill) is hypercache/scripting/engine.py. The declared keys
(`numkeys key...`) are found by `script_keys`, so the router answers MOVED or
CROSSSLOT for them before a script starts, as for any command.
"""
from __future__ import annotations

from ..arguments import parse_int
from ..reply import OK, CommandError
from ..scripting.engine import Engine, Script, new_run, sha1hex
from ..scripting.flags import FlagError, parse_shebang
from . import command, container

NOSCRIPT = CommandError("NOSCRIPT No matching script. Please use EVAL.")
NUMKEYS_TOO_MANY = CommandError("ERR Number of keys can't be greater than number of args")
NUMKEYS_NEGATIVE = CommandError("ERR Number of keys can't be negative")
RO_WRITE = CommandError("ERR Can not execute a script with write flag using *_ro command.")
SHORT_CALL = 64            # up to this many arguments, KEYS and ARGV are built inside Lua
NO_CLUSTER = CommandError("ERR Can not run script on cluster, 'no-cluster' flag is set.")


def script_keys(args: list[bytes]) -> list[bytes]:
    """EVAL/FCALL's declared keys: `numkeys key [key ...]` at args[2]; [] when unusable."""
    if len(args) < 3:
        return []
    try:
        count = int(args[2])
    except ValueError:
        return []
    if count <= 0 or 3 + count > len(args):
        return []
    return args[3:3 + count]


def engine_of(ctx) -> Engine:
    """The node's script engine, made at the first script."""
    engine = ctx.scripts
    if engine is None:
        engine = ctx.scripts = Engine(ctx)
        dispatcher = ctx.dispatcher
        if dispatcher is not None and hasattr(dispatcher, "set_busy"):
            engine.on_busy = dispatcher.set_busy
    return engine


def numkeys(args: list[bytes]) -> int:
    count = parse_int(args[2])
    if count > len(args) - 3:
        raise NUMKEYS_TOO_MANY
    if count < 0:
        raise NUMKEYS_NEGATIVE
    return count


def cache(engine: Engine, body: bytes) -> Script:
    """The cached script for `body`, compiled on first sight (luaCreateFunction)."""
    sha = sha1hex(body)
    script = engine.scripts.get(sha)
    if script is not None:
        return script
    try:
        flags, skip = parse_shebang(body)
    except FlagError as error:
        raise CommandError(f"ERR {error}") from None
    try:
        function = engine.compile(body, flags, skip, b"@user_script")
    except CommandError as error:
        raise CommandError(f"ERR Error compiling script (new function): {error}") from None
    script = engine.scripts[sha] = Script(sha, body, flags, function)
    return script


def run_script(ctx, session, args: list[bytes], script: Script, read_only: bool, count: int):
    engine = engine_of(ctx)
    flags = script.flags
    if not flags.compat:
        if flags.no_cluster:
            raise NO_CLUSTER
        if not flags.no_writes and read_only:
            raise RO_WRITE
    run = new_run(ctx, session, script.sha, True, read_only or flags.no_writes and not flags.compat,
                  flags, args)
    run.slot = ctx.slot
    api = engine.api
    if len(args) <= SHORT_CALL:
        def call():
            return engine.finish(run, api.run_eval_args(script.function, count, *args[3:]))
    else:
        keys = engine.runtime.table_from(args[3:3 + count])
        argv = engine.runtime.table_from(args[3 + count:])

        def call():
            return engine.finish(run, api.run_eval(script.function, keys, argv))

    return engine.start(run, call)


def _eval(ctx, session, args, read_only: bool):
    count = numkeys(args)       # Redis checks numkeys before compiling
    return run_script(ctx, session, args, cache(engine_of(ctx), args[1]), read_only, count)


def _evalsha(ctx, session, args, read_only: bool):
    sha = args[1].lower()
    if len(sha) != 40:
        raise NOSCRIPT
    count = numkeys(args)
    script = engine_of(ctx).scripts.get(sha)
    if script is None:
        raise NOSCRIPT
    return run_script(ctx, session, args, script, read_only, count)


EVAL_FLAGS = "noscript stale skip-monitor may-replicate no-mandatory-keys movablekeys"
EVAL_RO_FLAGS = "noscript stale skip-monitor no-mandatory-keys readonly movablekeys"


@command("eval", -3, EVAL_FLAGS, group="scripting", since="2.6.0", find_keys=script_keys,
         summary="Executes a server-side Lua script.")
def eval_(ctx, session, args):
    """Format: EVAL script numkeys [key [key ...]] [arg [arg ...]]"""
    return _eval(ctx, session, args, False)


@command("evalsha", -3, EVAL_FLAGS, group="scripting", since="2.6.0", find_keys=script_keys,
         summary="Executes a server-side Lua script by SHA1 digest.")
def evalsha(ctx, session, args):
    """Format: EVALSHA sha1 numkeys [key [key ...]] [arg [arg ...]]"""
    return _evalsha(ctx, session, args, False)


@command("eval_ro", -3, EVAL_RO_FLAGS, group="scripting", since="7.0.0", find_keys=script_keys,
         summary="Executes a read-only server-side Lua script.")
def eval_ro(ctx, session, args):
    """Format: EVAL_RO script numkeys [key [key ...]] [arg [arg ...]]"""
    return _eval(ctx, session, args, True)


@command("evalsha_ro", -3, EVAL_RO_FLAGS, group="scripting", since="7.0.0", find_keys=script_keys,
         summary="Executes a read-only server-side Lua script by SHA1 digest.")
def evalsha_ro(ctx, session, args):
    """Format: EVALSHA_RO sha1 numkeys [key [key ...]] [arg [arg ...]]"""
    return _evalsha(ctx, session, args, True)


container("script", -2, "", "scripting", "A container for Lua scripts management commands.", "2.6.0")


@command("script|load", 3, "noscript stale", group="scripting", since="2.6.0",
         summary="Loads a server-side Lua script to the script cache.")
def script_load(ctx, session, args):
    """Format: SCRIPT LOAD script"""
    return cache(engine_of(ctx), args[2]).sha


@command("script|exists", -3, "noscript", group="scripting", since="2.6.0",
         summary="Determines whether server-side Lua scripts exist in the script cache.")
def script_exists(ctx, session, args):
    """Format: SCRIPT EXISTS sha1 [sha1 ...]"""
    scripts = ctx.scripts.scripts if ctx.scripts is not None else {}
    return [1 if sha.lower() in scripts else 0 for sha in args[2:]]


@command("script|flush", -2, "noscript", group="scripting", since="2.6.0",
         summary="Removes all server-side Lua scripts from the script cache.")
def script_flush(ctx, session, args):
    """Format: SCRIPT FLUSH [ASYNC | SYNC]"""
    if len(args) > 3 or (len(args) == 3 and args[2].lower() not in (b"sync", b"async")):
        raise CommandError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    if ctx.scripts is not None:
        ctx.scripts.flush_scripts()
    return OK


@command("script|kill", 2, "noscript allow-busy", group="scripting", since="2.6.0",
         summary="Terminates a server-side Lua script during execution.")
def script_kill(ctx, session, args):
    """Format: SCRIPT KILL"""
    if ctx.scripts is None:
        raise CommandError("NOTBUSY No scripts in execution right now.")
    ctx.scripts.kill(True)
    return OK


@command("script|help", 2, "loading stale", group="scripting", since="5.0.0",
         summary="Returns helpful text about the different subcommands.")
def script_help(ctx, session, args):
    """Format: SCRIPT HELP"""
    from ..reply import Status
    lines = [
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.",
    ]
    return [Status(line.encode()) for line in lines]


@command("script|debug", 3, "noscript", group="scripting", since="3.2.0",
         summary="Set the debug mode for executed scripts.")
def script_debug(ctx, session, args):
    """Format: SCRIPT DEBUG YES | SYNC | NO  (NO only: hypercache has no Lua debugger)"""
    mode = args[2].lower()
    if mode == b"no":
        return OK
    if mode in (b"yes", b"sync"):
        raise CommandError("ERR hypercache has no Lua debugger (SCRIPT DEBUG YES and SYNC): use redis.log() "
                           "in the script, or run it against a redis-server to step through it")
    raise CommandError("ERR Use SCRIPT DEBUG YES/SYNC/NO")
