"""hypercache/compiled.py's choice of form, fed values: all compiled modules or none, never a stale one."""
from hypercache.compiled import COMPILED_MODULES, choose

SOURCES = {"hypercache.resp": 100.0, "hypercache.dispatch": 150.0}


def test_a_fresh_build_runs_compiled():
    assert choose(False, 200.0, SOURCES) == (True, "2 modules")


def test_asking_for_python_wins_over_a_fresh_build():
    assert choose(True, 200.0, SOURCES) == (False, "HYPERCACHE_PURE=1")


def test_no_build_runs_python():
    compiled, why = choose(False, None, SOURCES)
    assert not compiled and why.startswith("not built")


def test_one_source_edited_after_the_build_runs_every_module_as_python():
    compiled, why = choose(False, 120.0, SOURCES)
    assert not compiled
    assert why == "stale: hypercache.dispatch changed after the build (run make)"


def test_a_missing_source_counts_as_changed():
    assert choose(False, 200.0, {**SOURCES, "hypercache.store": float("inf")})[0] is False


def test_the_compiled_modules_are_the_ones_mypy_checks():
    """pyproject.toml's [tool.mypy] files hold every compiled module: mypyc compiles from those types."""
    import tomllib
    from pathlib import Path
    config = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    checked = set(config["tool"]["mypy"]["files"])
    assert {name.replace(".", "/") + ".py" for name in COMPILED_MODULES} <= checked


def test_a_source_saved_during_the_build_makes_the_build_stale(tmp_path):
    """build_compiled.py dates its stamp at the build's start: an edit made while mypyc ran is newer."""
    import time
    from build_compiled import write_stamp
    started_at = time.time() - 60      # a build that began a minute ago and ends now
    edited_during_the_build = started_at + 30
    stamp = tmp_path / "built"
    write_stamp(stamp, started_at, "25 modules built in 60s\n")
    assert stamp.read_text() == "25 modules built in 60s\n"
    compiled, why = choose(False, stamp.stat().st_mtime, {"hypercache.geo": edited_during_the_build})
    assert not compiled and why.startswith("stale: hypercache.geo")
