"""A greenlet killed while it waits must not free the arguments of a function still running in it.

gevent's kill() drops a greenlet's arguments at once, and a function compiled with mypyc
borrows its arguments instead of owning them. `wait_then_read` stands for such a
function: it gives up its own reference to its argument, as compiled code never took one.
"""
from __future__ import annotations

import re
import types
import weakref
from pathlib import Path

import gevent
import pytest
from gevent.event import Event

from hypercache.compiled import COMPILED_MODULES
from mesh import greenlets


class Payload:
    pass


def wait_then_read(ready: Event, payload: Payload, seen: list) -> None:
    alive = weakref.ref(payload)
    del payload         # (what a compiled function holds: a borrowed pointer, no reference)
    ready.wait()
    seen.append(alive() is not None)


def killed_as_it_wakes(spawn) -> bool:
    """Run wait_then_read in a greenlet that is killed just after its wake-up was scheduled."""
    ready, seen = Event(), []
    greenlet = spawn(wait_then_read, ready, Payload(), seen)
    gevent.sleep(0)             # it starts, and waits
    ready.set()                 # its wake-up comes first...
    greenlet.kill(block=False)  # ...then the kill, which drops the greenlet's arguments now
    greenlet.join(timeout=5)
    assert seen, "the greenlet never woke"
    return seen[0]


def test_the_arguments_outlive_a_kill_while_the_function_still_runs():
    assert killed_as_it_wakes(greenlets.spawn)


@pytest.mark.skipif(gevent.Greenlet.__module__ == "gevent.greenlet",
                    reason="gevent's pure-Python build: its run() keeps the arguments on its own stack")
def test_without_it_they_would_not():
    """The hazard itself (so the test above can fail): plain gevent.spawn frees them (gevent's
    compiled Greenlet.run passes the greenlet's own tuple of arguments on, without a reference)."""
    assert not killed_as_it_wakes(gevent.spawn)


def test_the_holder_stays_interpreted():
    """Compiled, its frame would borrow the arguments too."""
    assert "mesh.greenlets" not in COMPILED_MODULES
    assert isinstance(greenlets._holding, types.FunctionType)


def test_no_compiled_module_starts_a_greenlet_without_the_holder():
    root = Path(__file__).resolve().parents[2]
    # (any spawn but the holder's, by whatever name: gevent.spawn, a Pool's or Group's, spawn_later,
    # Greenlet(...), a spawn imported by name)
    plain = re.compile(r"(?<!greenlets)\.spawn(_later)?\(|(?<![\w.])spawn(_later)?\(|\bGreenlet\(|\bimport\b.*\bspawn\b")
    offenders = [name for name in COMPILED_MODULES
                 if plain.search((root / (name.replace(".", "/") + ".py")).read_text())]
    assert offenders == []
