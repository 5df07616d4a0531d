"""The command table: every command declared once, as data, with its handler.

A declaration carries what Redis's `src/commands/*.json` carries and what
clients read back through `COMMAND`: the name, the arity (negative means "at
least"), flags, and the first key / last key / step that locate keys in the
arguments. The dispatcher checks arity and the router extracts keys from the
same declaration, so no command parses its own keys for routing, and COMMAND
is generated from this table rather than typed out.

Handlers have the signature `handler(ctx, session, args) -> reply` and return
a reply value (see resp.encode); they never write to a connection.
"""
from __future__ import annotations

from typing import Callable

from .. import compiled
from ..command import Command, Handler

__path__ = compiled.extend(__path__, __name__)

TABLE: dict[bytes, Command] = {}


def command(name: str, arity: int, flags: str, first_key: int = 0, last_key: int = 0,
            step: int = 0, group: str = "generic", summary: str = "",
            since: str = "1.0.0", find_keys: Callable[[list], list] | None = None
            ) -> Callable[[Handler], Handler]:
    """Declare a command (or `container|sub` subcommand) with its handler."""
    flag_tuple = tuple(flags.split())

    def register(handler: Handler) -> Handler:
        cmd = Command(name=name, arity=arity, flags=flag_tuple, first_key=first_key,
                      last_key=last_key, step=step if first_key else 0, handler=handler,
                      group=group, summary=summary or (handler.__doc__ or "").strip().split("\n")[0],
                      since=since, write="write" in flag_tuple, denyoom="denyoom" in flag_tuple,
                      single_key=first_key == 1 and last_key == 1 and find_keys is None,
                      one_key_argc=(step - last_key if first_key == 1 and last_key < 0 and find_keys is None
                                    and abs(arity) >= 2 else 0),
                      find_keys=find_keys)
        if "|" in name:
            parent, sub = name.split("|", 1)
            TABLE[parent.encode()].subcommands[sub.encode()] = cmd
        else:
            TABLE[name.encode()] = cmd
        return handler

    return register


def container(name: str, arity: int, flags: str, group: str, summary: str,
              since: str = "1.0.0") -> None:
    """Declare a command that only dispatches to subcommands (CLIENT, CONFIG, CLUSTER...)."""
    TABLE[name.encode()] = Command(name=name, arity=arity, flags=tuple(flags.split()),
                                   first_key=0, last_key=0, step=0, handler=_no_handler,
                                   group=group, summary=summary, since=since)


def _no_handler(ctx, session, args):   # pragma: no cover - containers dispatch to subcommands
    raise AssertionError("container command has no handler")


def load_all() -> dict[bytes, Command]:
    """Import every command module (registration happens at import) and return the table."""
    import importlib
    import pkgutil
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return TABLE
