"""Which form this process runs: the hot modules compiled with mypyc, or every module as Python.

`make` compiles the modules of COMPILED_MODULES into build/compiled (build_compiled.py);
the sources stay the only source. A package that holds compiled modules puts its
directory under build/compiled in front of its own on `__path__`, so `import
hypercache.resp` finds the extension before the .py. The choice is made once, for
all or none of the modules: compiled code calls the other compiled modules of its
build directly, so a mix of a compiled module and the .py of another would run two
copies of that module.

Python runs when HYPERCACHE_PURE=1, when nothing was built, or when a source is
newer than the build (an edited module whose `make` did not run yet: the compiled
copy would run the old code), which is logged as a warning at start-up.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
BUILD_DIR = REPO / "build" / "compiled"
STAMP = BUILD_DIR / "built"         # written after a whole build succeeded

# chosen by profile (docs/performance.md): the parser, the dispatcher and its lane, the
# connection, the keyspace, the commands and types of the benchmarked families, and
# replication's per-write path (the commit, the effects codec, the stream arithmetic,
# the data channel and the keyslot both the lane and the commit compute); the argument
# parsers and issue 13's families (bits, HyperLogLog, GEO: their arithmetic is per element
# or per candidate); the script engine and EVAL/EVALSHA (~35 us a script and ~10 us a redis.call
# interpreted, outside Lua itself); the router and the command counters, which every command
# off the dispatcher's lane calls (a script: once per redis.call); the classes every handler
# reads (the Context, a Command's declaration) and the heartbeat pacing of long loops
# (pulse.py), so that compiled code reads their fields and calls them directly: with them,
# LPUSH at -P 16 went from ~800k to ~990k requests/s, HSET and SADD +14-17% (alternated A/B, a
# quiet machine, 4 December 2026). commands/bitmaps.py stays Python: it asks CPython's reference count
# whether the store alone holds a value, which compiled code counts differently.
# The mesh's pure cores (the wire codec, the slot map, membership and its watchers, the
# election, adoption, the holdings), since 6 December 2026: every node runs them for every
# mesh message it reads, and reading the mesh was half of a node's busy time while 10 members
# joined 80 (py-spy, README "How the mesh scales"). The bus and its links stay Python: they
# are the I/O around those cores.
COMPILED_MODULES = (
    "hypercache.resp",
    "hypercache.dispatch",
    "hypercache.connection",
    "hypercache.server",
    "hypercache.store",
    "hypercache.pulse",
    "hypercache.command",
    "hypercache.context",
    "hypercache.session",
    "hypercache.commands.values",
    "hypercache.commands.strings",
    "hypercache.commands.hashes",
    "hypercache.commands.lists",
    "hypercache.commands.sets",
    "hypercache.commands.zsets",
    "hypercache.types.hash",
    "hypercache.types.list",
    "hypercache.types.set",
    "hypercache.types.zset",
    "hypercache.arguments",
    "hypercache.bits",
    "hypercache.hyperloglog",
    "hypercache.geo",
    "hypercache.commands.hyperloglog",
    "hypercache.commands.geo",
    "hypercache.commands.scripting",
    "hypercache.scripting.engine",
    "hypercache.routing",
    "hypercache.stats",
    "hypercache.slowlog",
    "hypercache.latency",
    "hypercache.config",
    "hypercache.replication",
    "hypercache.pulls",
    "hypercache.slot_roles",
    "hypercache.effects",
    "mesh.keyslot",
    "mesh.messages",
    "mesh.slotmap",
    "mesh.membership",
    "mesh.watch",
    "mesh.holdings",
    "mesh.election",
    "mesh.adoption",
    "mesh.ring",
    "mesh.replication",
    "mesh.datalink",
    "mesh.curvelink",
)
PACKAGES = ("hypercache", "hypercache.commands", "hypercache.types", "hypercache.scripting", "mesh")


def source_of(module: str) -> Path:
    return REPO / (module.replace(".", "/") + ".py")


def choose(pure_requested: bool, built_at: float | None, sources_changed_at: dict[str, float]) -> tuple[bool, str]:
    """(compiled?, why): pure when asked, when nothing was built or when a source is newer than the build."""
    if pure_requested:
        return False, "HYPERCACHE_PURE=1"
    if built_at is None:
        return False, "not built (make builds it)"
    newer = sorted(m for m, changed_at in sources_changed_at.items() if changed_at > built_at)
    if newer:
        return False, f"stale: {', '.join(newer)} changed after the build (run make)"
    return True, f"{len(sources_changed_at)} modules"


def _decide() -> tuple[bool, str]:
    try:
        built_at: float | None = STAMP.stat().st_mtime
    except OSError:
        built_at = None
    changed = {}
    for module in COMPILED_MODULES:
        try:
            changed[module] = source_of(module).stat().st_mtime
        except OSError:
            changed[module] = float("inf")
    return choose(os.environ.get("HYPERCACHE_PURE", "") not in ("", "0"), built_at, changed)


COMPILED, WHY = _decide()
# one line for --version, INFO server and /cluster/status
FORM = f"mypyc ({WHY})" if COMPILED else f"python ({WHY})"


def extend(path: list[str], package: str) -> list[str]:
    """A package's __path__ with its compiled directory first when this process runs compiled."""
    if COMPILED:
        compiled = BUILD_DIR.joinpath(*package.split("."))
        if str(compiled) not in path:
            path.insert(0, str(compiled))
    return path


def warn_if_stale(log_warning: Callable[..., None]) -> None:
    if not COMPILED and WHY.startswith("stale"):
        log_warning("running the Python sources, not the compiled build: %s", WHY)


def loaded_compiled(module_name: str) -> bool:
    """Whether the module this process imported is the compiled one (for tests)."""
    module = sys.modules.get(module_name)
    return bool(module and getattr(module, "__file__", "") and str(module.__file__).endswith(".so"))
