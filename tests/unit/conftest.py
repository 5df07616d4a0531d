"""What every test of the simulated mesh (loadtest/mesh_sim.py) must also hold."""
from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _nothing_said_that_nobody_reads() -> Iterator[None]:
    """Every message a simulated member sends is of a kind its topic's readers take (mesh/links.py
    kinds_read_under): the answers to a roll call were not, and no simulation saw it."""
    sim = sys.modules.get("mesh_sim")
    before = dict(sim.UNREADABLE_SENT) if sim is not None else {}
    yield
    sim = sys.modules.get("mesh_sim")
    if sim is not None:
        assert dict(sim.UNREADABLE_SENT) == before, "sent under a topic whose readers drop its kind"
