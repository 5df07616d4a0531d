"""A command's declaration: what the table holds for each command (hypercache/commands/__init__.py).

Its own module so that it can be compiled (hypercache/compiled.py): the dispatcher's lane reads
up to six of its fields for every command it runs, and compiled code reads a compiled class's
fields directly instead of through Python's attribute lookup.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

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
