"""Redis 7 functions: FUNCTION LOAD|DELETE|FLUSH|LIST|DUMP|RESTORE|STATS|KILL, FCALL, FCALL_RO.

The library rules and payload format are hypercache/scripting/library.py; a
library is compiled and run once at load so it registers its functions, and
FCALL runs a registered callback with (KEYS, ARGV) as its two arguments.
"""
from __future__ import annotations

import time

from ..arguments import parse_int
from ..glob import glob_match
from ..reply import OK, CommandError, OrderedSet, Status
from ..scripting.engine import Engine, new_run
from ..scripting.flags import ordered
from ..scripting.library import (BAD_NAME, NAME, Function, Library, LibraryError, dump, function_flags,
                                 metadata, parse_dump)
from . import command, container
from .scripting import (NO_CLUSTER, NUMKEYS_NEGATIVE, NUMKEYS_TOO_MANY, RO_WRITE, SHORT_CALL, engine_of,
                        script_keys)

LOAD_TIMEOUT_S = 0.5                 # Redis's FUNCTION LOAD time limit


def _error(error: LibraryError) -> CommandError:
    return CommandError(f"ERR {error}")


def build_library(engine: Engine, code: bytes, replacing: Library | None) -> Library:
    """Compile and run a library's code so it registers its functions (functionsCreateWithLibraryCtx)."""
    _, name, end = metadata(code)
    if replacing is not None and replacing.name != name:
        replacing = None
    try:
        chunk = engine.compile(code, None, end, b"@user_function")
    except CommandError as error:
        raise CommandError(f"ERR Error compiling function: {error}") from None
    library = Library(name, code)

    def register(fname: bytes, callback, flag_names: list, description) -> bytes | None:
        if not NAME.fullmatch(fname):
            return BAD_NAME.encode()
        if fname in library.functions:
            return b"Function already exists in the library"
        try:
            flags = function_flags(flag_names)
        except LibraryError as error:
            return str(error).encode()
        library.functions[fname] = Function(fname, callback, flags, description)
        return None

    engine.registering = register
    engine.load_deadline = time.monotonic() + LOAD_TIMEOUT_S
    try:
        outcome = engine.api.load_library(chunk)
    finally:
        engine.registering = None
        engine.load_deadline = 0.0
    if not (outcome[0] if isinstance(outcome, tuple) else outcome):
        error = outcome[1]
        message = engine.api.error_table(error)[0] if engine.api.is_table(error) else error
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
        raise CommandError(f"ERR Error registering functions: {text}")
    return library


def _add(engine: Engine, library: Library) -> None:
    registry = engine.registry
    try:
        registry.check_add(library, registry.libraries.get(library.name))
    except LibraryError as error:
        raise _error(error) from None
    registry.add(library)


container("function", -2, "", "scripting", "A container for function commands.", "7.0.0")


@command("function|load", -3, "write denyoom noscript", group="scripting", since="7.0.0",
         summary="Creates a library.")
def function_load(ctx, session, args):
    """Format: FUNCTION LOAD [REPLACE] function-code"""
    replace_ = False
    position = 2
    while position < len(args) - 1:
        if args[position].lower() == b"replace":
            replace_ = True
            position += 1
            continue
        raise CommandError(f"ERR Unknown option given: {args[position].decode('utf-8', 'replace')}")
    if position >= len(args):
        raise CommandError("ERR Function code is missing")
    code = args[position]
    engine = engine_of(ctx)
    try:
        _, name, _ = metadata(code)
    except LibraryError as error:
        raise _error(error) from None
    existing = engine.registry.libraries.get(name)
    if existing is not None and not replace_:
        raise CommandError(f"ERR Library '{name.decode('utf-8', 'replace')}' already exists")
    library = build_library(engine, code, existing)
    _add(engine, library)
    return library.name


@command("function|delete", 3, "write noscript", group="scripting", since="7.0.0",
         summary="Deletes a library and its functions.")
def function_delete(ctx, session, args):
    """Format: FUNCTION DELETE library-name"""
    engine = engine_of(ctx)
    library = engine.registry.libraries.get(args[2])
    if library is None:
        raise CommandError("ERR Library not found")
    engine.registry.remove(library)
    return OK


@command("function|flush", -2, "write noscript", group="scripting", since="7.0.0",
         summary="Deletes all libraries and functions.")
def function_flush(ctx, session, args):
    """Format: FUNCTION FLUSH [ASYNC | SYNC]"""
    if len(args) > 3 or (len(args) == 3 and args[2].lower() not in (b"sync", b"async")):
        raise CommandError("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    if ctx.scripts is not None:
        registry = ctx.scripts.registry
        registry.libraries.clear()
        registry.functions.clear()
    return OK


@command("function|list", -2, "noscript", group="scripting", since="7.0.0",
         summary="Returns information about all libraries.")
def function_list(ctx, session, args):
    """Format: FUNCTION LIST [LIBRARYNAME library-name-pattern] [WITHCODE]"""
    with_code = False
    pattern = None
    position = 2
    while position < len(args):
        arg = args[position]
        if not with_code and arg.lower() == b"withcode":
            with_code = True
            position += 1
            continue
        if pattern is None and arg.lower() == b"libraryname":
            if position >= len(args) - 1:
                raise CommandError("ERR library name argument was not given")
            pattern = args[position + 1]
            position += 2
            continue
        raise CommandError(f"ERR Unknown argument {arg.decode('utf-8', 'replace')}")
    libraries = ctx.scripts.registry.libraries.values() if ctx.scripts is not None else ()
    reply = []
    for library in libraries:
        if pattern is not None and not glob_match(pattern, library.name, nocase=True):
            continue
        entry = {b"library_name": library.name, b"engine": b"LUA",
                 b"functions": [{b"name": f.name, b"description": f.description,
                                 b"flags": OrderedSet(Status(n.encode()) for n in ordered(f.flags.names))}
                                for f in library.functions.values()]}
        if with_code:
            entry[b"library_code"] = library.code
        reply.append(entry)
    return reply


@command("function|dump", 2, "noscript", group="scripting", since="7.0.0",
         summary="Dumps all libraries into a serialized binary payload.")
def function_dump(ctx, session, args):
    """Format: FUNCTION DUMP"""
    libraries = list(ctx.scripts.registry.libraries.values()) if ctx.scripts is not None else []
    return dump(libraries)


@command("function|restore", -3, "write denyoom noscript", group="scripting", since="7.0.0",
         summary="Restores all libraries from a payload.")
def function_restore(ctx, session, args):
    """Format: FUNCTION RESTORE serialized-value [FLUSH | APPEND | REPLACE]"""
    policy = b"append"
    if len(args) > 4:
        raise CommandError("ERR syntax error")
    if len(args) == 4:
        policy = args[3].lower()
        if policy not in (b"flush", b"append", b"replace"):
            raise CommandError("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
    try:
        codes = parse_dump(args[2])
    except LibraryError as error:
        raise _error(error) from None
    engine = engine_of(ctx)
    libraries = []
    for code in codes:
        try:
            libraries.append(build_library(engine, code, None))
        except LibraryError as error:
            raise _error(error) from None
    registry = engine.registry
    names: dict[bytes, bytes] = {}
    for library in libraries:
        for fname in library.functions:
            if fname in names:
                raise CommandError(f"ERR Function {fname.decode()} already exists")
            names[fname] = library.name
    if policy == b"flush":
        registry.libraries.clear()
        registry.functions.clear()
    for library in libraries:
        existing = registry.libraries.get(library.name)
        if existing is not None and policy == b"append":
            raise CommandError(f"ERR Library {library.name.decode()} already exists")
        for fname in library.functions:
            owner = registry.functions.get(fname)
            if owner is not None and owner.library is not existing:
                raise CommandError(f"ERR Function {fname.decode()} already exists")
    for library in libraries:
        registry.add(library)
    return OK


@command("function|stats", 2, "noscript allow-busy", group="scripting", since="7.0.0",
         summary="Returns information about a function during execution.")
def function_stats(ctx, session, args):
    """Format: FUNCTION STATS"""
    engine = ctx.scripts
    run = engine.run if engine is not None else None
    if run is not None and run.is_eval and run.busy:
        raise CommandError("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
    running = None
    if run is not None and run.busy:
        running = {b"name": run.name, b"command": run.command,
                   b"duration_ms": int((time.monotonic() - run.started_at) * 1000)}
    registry = engine.registry if engine is not None else None
    return {b"running_script": running,
            b"engines": {b"LUA": {b"libraries_count": len(registry.libraries) if registry else 0,
                                  b"functions_count": registry.function_count() if registry else 0}}}


@command("function|kill", 2, "noscript allow-busy", group="scripting", since="7.0.0",
         summary="Terminates a function during execution.")
def function_kill(ctx, session, args):
    """Format: FUNCTION KILL"""
    if ctx.scripts is None:
        raise CommandError("NOTBUSY No scripts in execution right now.")
    ctx.scripts.kill(False)
    return OK


def _fcall(ctx, session, args, read_only: bool):
    engine = engine_of(ctx)
    function = engine.registry.functions.get(args[1])
    if function is None:
        raise CommandError("ERR Function not found")
    count = parse_int(args[2], "ERR Bad number of keys provided")
    if count > len(args) - 3:
        raise NUMKEYS_TOO_MANY
    if count < 0:
        raise NUMKEYS_NEGATIVE
    flags = function.flags
    if flags.no_cluster:
        raise NO_CLUSTER
    if not flags.no_writes and read_only:
        raise RO_WRITE
    run = new_run(ctx, session, function.name, False, read_only or flags.no_writes, flags, args)
    run.slot = ctx.slot
    callback = function.callback
    api = engine.api
    if len(args) <= SHORT_CALL:
        def call():
            return engine.finish(run, api.run_function_args(callback, count, *args[3:]))
    else:
        keys = engine.runtime.table_from(args[3:3 + count])
        argv = engine.runtime.table_from(args[3 + count:])

        def call():
            return engine.finish(run, api.run_function(callback, keys, argv))

    return engine.start(run, call)


FCALL_FLAGS = "noscript stale skip-monitor may-replicate no-mandatory-keys movablekeys"


@command("fcall", -3, FCALL_FLAGS, group="scripting", since="7.0.0", find_keys=script_keys,
         summary="Invokes a function.")
def fcall(ctx, session, args):
    """Format: FCALL function numkeys [key [key ...]] [arg [arg ...]]"""
    return _fcall(ctx, session, args, False)


@command("fcall_ro", -3, "noscript stale skip-monitor no-mandatory-keys readonly movablekeys",
         group="scripting", since="7.0.0", find_keys=script_keys,
         summary="Invokes a read-only function.")
def fcall_ro(ctx, session, args):
    """Format: FCALL_RO function numkeys [key [key ...]] [arg [arg ...]]"""
    return _fcall(ctx, session, args, True)



@command("function|help", 2, "loading stale", group="scripting", since="7.0.0",
         summary="Show helpful text about the different subcommands")
def function_help(ctx, session, args):
    """Format: FUNCTION HELP"""
    return [Status(line) for line in (
        b'FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
        b'LOAD [REPLACE] <FUNCTION CODE>',
        b'    Create a new library with the given library name and code.',
        b'DELETE <LIBRARY NAME>',
        b'    Delete the given library.',
        b'LIST [LIBRARYNAME PATTERN] [WITHCODE]',
        b'    Return general information on all the libraries:',
        b'    * Library name',
        b'    * The engine used to run the Library',
        b'    * Library description',
        b'    * Functions list',
        b'    * Library code (if WITHCODE is given)',
        b'    It also possible to get only function that matches a pattern using LIBRARYNAME argument.',
        b'STATS',
        b'    Return information about the current function running:',
        b'    * Function name',
        b'    * Command used to run the function',
        b'    * Duration in MS that the function is running',
        b'    If no function is running, return nil',
        b'    In addition, returns a list of available engines.',
        b'KILL',
        b'    Kill the current running function.',
        b'FLUSH [ASYNC|SYNC]',
        b'    Delete all the libraries.',
        b'    When called without the optional mode argument, the behavior is determined by the',
        b'    lazyfree-lazy-user-flush configuration directive. Valid modes are:',
        b'    * ASYNC: Asynchronously flush the libraries.',
        b'    * SYNC: Synchronously flush the libraries.',
        b'DUMP',
        b'    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command',
        b'RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]',
        b'    Restore the libraries represented by the given payload, it is possible to give a restore policy to',
        b'    control how to handle existing libraries (default APPEND):',
        b'    * FLUSH: delete all existing libraries.',
        b'    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.',
        b'    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old',
        b'      libraries with the new libraries (notice that even on this option there is a chance of failure',
        b'      in case of functions name collision with another library).',
        b'HELP',
        b'    Prints this help.',
    )]
