"""Compile the hot modules with mypyc into build/compiled (python build_compiled.py).

The modules are the ones the profile of a loaded node names (docs/performance.md);
the rest of the node stays Python. hypercache/compiled.py decides at start-up
whether a process imports these or the .py sources.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from setuptools import setup

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))
from hypercache.compiled import BUILD_DIR, COMPILED_MODULES, STAMP  # noqa: E402


def write_stamp(stamp: Path, started_at: float, text: str) -> None:
    """Mark a build done, dated when it started (a wall-clock time.time(), as file times are).

    mypyc reads the sources early in a build that takes a minute, so a source saved during the
    build is newer than what was compiled. Dated at the end, such an edit looked older than the
    build and the node silently ran the old compiled code; dated at the start, it is newer, so
    hypercache/compiled.py runs the sources (and make rebuilds).
    """
    stamp.write_text(text)
    os.utime(stamp, (started_at, started_at))


def main() -> None:
    from mypyc.build import mypycify
    os.chdir(REPO)
    started = time.monotonic()
    started_at = time.time()
    # while the extensions are rewritten, a node starting runs the sources, not a half-written .so
    STAMP.unlink(missing_ok=True)
    paths = [name.replace(".", "/") + ".py" for name in COMPILED_MODULES]
    c_dir = REPO / "build" / "mypyc-c"
    # one C file per module, compiled in parallel; -O2 builds faster than -O3
    extensions = mypycify(paths, opt_level="2", debug_level="0", multi_file=True,
                          group_name="hypercache.compiled_modules", target_dir=str(c_dir))
    for extension in extensions:
        # (mypyc writes the header of a group named inside a package into that package's directory)
        extension.include_dirs.append(str(c_dir / "hypercache"))
    setup(name="hypercache-compiled", ext_modules=extensions, script_name="build_compiled.py",
          script_args=["-q", "build_ext", "--build-lib", str(BUILD_DIR), "--build-temp", str(REPO / "build" / "mypyc-o"),
                       "--parallel", str(os.cpu_count() or 1)])
    write_stamp(STAMP, started_at, f"{len(COMPILED_MODULES)} modules built in {time.monotonic() - started:.0f}s\n")
    print(f"compiled {len(COMPILED_MODULES)} modules with mypyc into {BUILD_DIR.relative_to(REPO)} "
          f"in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
