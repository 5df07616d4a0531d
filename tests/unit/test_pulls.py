"""Whom a primary without a slot's data asks for it (hypercache/pulls.py), by values."""
from __future__ import annotations

import pytest

from hypercache import pulls

LIVE = ["a", "b", "c", "d", "e", "f"]      # every live member but this node ("me"), in map order


def test_owners_first_then_every_other_live_member():
    assert pulls.order(["me", "d"], LIVE, None, (), ()) == ["d", "a", "b", "c", "e", "f"]


def test_the_member_that_fed_us_ahead_comes_first():
    assert pulls.order(["me", "d"], LIVE, "b", (), ())[:2] == ["b", "d"]


def test_earlier_owners_still_members_come_before_the_rest():
    # A join's donors ("e", "f") keep what they held: asked before "a".."c", not after them.
    assert pulls.order(["me", "d"], LIVE, None, (), ["f", "e"]) == ["d", "f", "e", "a", "b", "c"]


def test_owners_that_left_are_asked_though_not_live_and_before_the_earlier_ones():
    assert pulls.order(["me", "d"], LIVE, None, ["gone"], ["e"]) == ["d", "gone", "e", "a", "b", "c", "f"]


def test_dead_owners_and_dead_earlier_owners_are_not_asked():
    sources = pulls.order(["me", "x"], LIVE, "y", (), ["z", "c"])
    assert sources == ["c", "a", "b", "d", "e", "f"]


def test_no_source_twice():
    sources = pulls.order(["me", "d", "e"], LIVE, "e", ["e"], ["d", "e", "a"])
    assert sorted(sources) == sorted(set(sources)) == LIVE


def test_next_source_skips_the_lacking_and_the_asked_then_starts_a_new_round():
    sources = ["d", "e", "a", "b"]
    first, asked = pulls.next_source(sources, set(), frozenset())
    assert (first, asked) == ("d", {"d"})
    second, asked = pulls.next_source(sources, {"e"}, asked)       # "e" said it lacks the slot
    assert (second, asked) == ("a", {"d", "a"})
    third, asked = pulls.next_source(sources, {"e"}, asked)
    assert (third, asked) == ("b", {"d", "a", "b"})
    # every source not lacking was asked in vain: a new round, from the first
    assert pulls.next_source(sources, {"e"}, asked) == ("d", {"d"})


def test_next_source_refuses_when_every_source_lacks_the_slot():
    with pytest.raises(ValueError):
        pulls.next_source(["a", "b"], {"a", "b"}, frozenset())
