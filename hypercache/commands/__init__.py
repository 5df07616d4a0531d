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

from dataclasses import dataclass, field
from typing import Any, Callable

from .. import compiled

__path__ = compiled.extend(__path__, __name__)

Handler = Callable[[Any, Any, list], Any]


@dataclass(frozen=True, slots=True)
class Command:
    name: str                     # lowercase, e.g. "get", or "client|setname" for a subcommand
    arity: int
    flags: tuple[str, ...]
    first_key: int
    last_key: int
    step: int
    handler: Handler
    group: str                    # "string", "generic", "server", ... (COMMAND DOCS, ACL categories)
    summary: str = ""
    since: str = "1.0.0"
    subcommands: dict[bytes, "Command"] = field(default_factory=dict)
    # flags as booleans, precomputed for the hot path
    write: bool = False
    denyoom: bool = False
    # movable keys (numkeys forms: ZUNION, LMPOP...): finds the keys when first/last/step cannot
    find_keys: Callable[[list], list] | None = None
    single_key: bool = False      # exactly one key, at args[1]
    # keys from args[1] to a position counted from the end (PFCOUNT, MGET, DEL, MSET): a call of
    # at most this many arguments names one key, at args[1], and the lane serves it as a
    # single-key command; 0 for every other command
    one_key_argc: int = 0

    def keys(self, args: list[bytes]) -> list[bytes]:
        """The key arguments of a call, by the declared positions."""
        if self.find_keys is not None:
            return self.find_keys(args)
        if self.first_key == 0:
            return []
        last = self.last_key if self.last_key >= 0 else len(args) + self.last_key
        return args[self.first_key:last + 1:self.step]

    def arity_ok(self, argc: int) -> bool:
        return argc == self.arity if self.arity >= 0 else argc >= -self.arity


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
