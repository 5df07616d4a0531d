"""MODULE LIST | HELP | LOAD | LOADEX | UNLOAD: no modules, as a Redis 7.0 server that loads none.

Clients and tools ask MODULE LIST which extensions a server has (RedisInsight, redis-om, test
fixtures): the answer is none. Loading is refused with Redis 7.0's own error for a server whose
`enable-module-command` is `no` (its default), which is what hypercache is: it has no module API.
"""
from __future__ import annotations

from ..reply import CommandError, Status
from . import command, container

NOT_ALLOWED = ("ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you "
               "can run it from a local connection, otherwise you need to set this option in the "
               "configuration file, and then restart the server.")
FLAGS = "admin noscript no-async-loading"

container("module", -2, "", "server", "A container for module commands", "4.0.0")


@command("module|list", 2, "admin noscript", group="server", since="4.0.0",
         summary="List all modules loaded by the server")
def module_list(ctx, session, args):
    """Format: MODULE LIST"""
    return []


@command("module|load", -3, FLAGS, group="server", since="4.0.0", summary="Load a module")
def module_load(ctx, session, args):
    """Format: MODULE LOAD path [arg ...] (refused)"""
    raise CommandError(NOT_ALLOWED)


@command("module|loadex", -3, FLAGS, group="server", since="7.0.0",
         summary="Load a module with extended parameters")
def module_loadex(ctx, session, args):
    """Format: MODULE LOADEX path [CONFIG name value ...] [ARGS arg ...] (refused)"""
    raise CommandError(NOT_ALLOWED)


@command("module|unload", 3, FLAGS, group="server", since="4.0.0", summary="Unload a module")
def module_unload(ctx, session, args):
    """Format: MODULE UNLOAD name (refused)"""
    raise CommandError(NOT_ALLOWED)


@command("module|help", 2, "loading stale", group="server", since="5.0.0",
         summary="Show helpful text about the different subcommands")
def module_help(ctx, session, args):
    """Format: MODULE HELP"""
    return [Status(line) for line in (
        b"MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"LIST",
        b"    Return a list of loaded modules.",
        b"LOAD <path> [<arg> ...]",
        b"    Load a module library from <path>, passing to it any optional arguments.",
        b"LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
        b"    Load a module library from <path>, while passing it module configurations and optional arguments.",
        b"UNLOAD <name>",
        b"    Unload a module.",
        b"HELP",
        b"    Prints this help.",
    )]
