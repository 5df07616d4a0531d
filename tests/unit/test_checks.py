"""mesh/checks.py: each map proposed on a base map checked once, values in."""
from __future__ import annotations

from dataclasses import dataclass

from mesh.checks import Checks


@dataclass(frozen=True)
class Proposed:
    ballot: int


BASE, OTHER = object(), object()


def test_a_map_not_checked_yet_is_checked_by_its_first_proposal_and_later_ones_wait():
    checks: Checks[Proposed] = Checks(limit=16)
    assert checks.verdict(BASE, b"m") is None
    assert checks.wait(b"m", Proposed(5)) is False      # the caller checks it
    assert checks.verdict(BASE, b"m") is None
    assert checks.wait(b"m", Proposed(6)) is True       # under way: waits
    assert checks.wait(b"m", Proposed(7)) is True
    assert checks.done(BASE, b"m", True) == [Proposed(6), Proposed(7)]
    assert checks.verdict(BASE, b"m") is True
    assert checks.done(BASE, b"m", True) == []          # (nothing waits any more)


def test_a_verdict_holds_for_its_base_map_only():
    checks: Checks[Proposed] = Checks(limit=16)
    checks.verdict(BASE, b"m")
    checks.wait(b"m", Proposed(1))
    checks.done(BASE, b"m", False)
    assert checks.verdict(BASE, b"m") is False
    assert checks.verdict(OTHER, b"m") is None          # a new map: checked anew
    assert checks.verdict(BASE, b"m") is None           # and the old one is not kept


def test_a_check_that_ended_on_an_old_base_hands_back_nothing_and_leaves_the_new_base_alone():
    checks: Checks[Proposed] = Checks(limit=16)
    checks.verdict(BASE, b"m")
    checks.wait(b"m", Proposed(1))
    checks.wait(b"m", Proposed(2))
    checks.verdict(OTHER, b"m")                         # the map changed meanwhile; m proposed on it too
    checks.wait(b"m", Proposed(3))
    checks.wait(b"m", Proposed(4))
    assert checks.done(BASE, b"m", True) == []
    assert checks.failed(BASE, b"m") is None
    assert checks.verdict(OTHER, b"m") is None          # (the old base's verdict is not the new one's)
    assert checks.done(OTHER, b"m", False) == [Proposed(4)]
    assert checks.verdict(OTHER, b"m") is False


def test_waiting_proposals_keep_the_newest_ballots():
    checks: Checks[Proposed] = Checks(limit=3)
    checks.verdict(BASE, b"m")
    checks.wait(b"m", Proposed(10))
    for ballot in (14, 11, 12, 13):
        assert checks.wait(b"m", Proposed(ballot)) is True
    assert sorted(p.ballot for p in checks.done(BASE, b"m", True)) == [12, 13, 14]


def test_a_failed_check_hands_back_its_newest_waiting_proposal_to_check_again():
    checks: Checks[Proposed] = Checks(limit=16)
    checks.verdict(BASE, b"m")
    checks.wait(b"m", Proposed(3))
    assert checks.failed(BASE, b"m") is None            # nothing waited
    assert checks.wait(b"m", Proposed(4)) is False      # so the next one checks it again
    checks.wait(b"m", Proposed(6))
    checks.wait(b"m", Proposed(5))
    assert checks.failed(BASE, b"m") == Proposed(6)
    assert checks.verdict(BASE, b"m") is None
    assert checks.wait(b"m", Proposed(6)) is False


def test_a_flood_of_maps_is_not_remembered_past_the_limit():
    checks: Checks[Proposed] = Checks(limit=2)
    checks.verdict(BASE, b"a")
    for name in (b"a", b"b", b"c"):
        assert checks.wait(name, Proposed(1)) is False
    assert checks.wait(b"c", Proposed(2)) is False      # c was not registered: checked again
    for name in (b"a", b"b", b"c"):
        checks.done(BASE, name, True)
    assert [checks.verdict(BASE, name) for name in (b"a", b"b", b"c")] == [True, True, None]
