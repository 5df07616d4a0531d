"""Whom a primary without a slot's data asks for it (hypercache/pulls.py), by values."""
from __future__ import annotations

import pytest

from hypercache import pulls

LIVE = ["a", "b", "c", "d", "e", "f"]      # every live member but this node ("me"), in map order


def order(owners, precopied, left, earlier):
    return pulls.order(owners, LIVE, set(LIVE), precopied, left, earlier)


def test_owners_first_then_every_other_live_member():
    assert order(["me", "d"], None, (), ()) == ["d", "a", "b", "c", "e", "f"]


def test_the_member_that_fed_us_ahead_comes_first():
    assert order(["me", "d"], "b", (), ())[:2] == ["b", "d"]


def test_earlier_owners_still_members_come_before_the_rest():
    # A join's donors ("e", "f") keep what they held: asked before "a".."c", not after them.
    assert order(["me", "d"], None, (), ["f", "e"]) == ["d", "f", "e", "a", "b", "c"]


def test_owners_that_left_are_asked_though_not_live_and_before_the_earlier_ones():
    assert order(["me", "d"], None, ["gone"], ["e"]) == ["d", "gone", "e", "a", "b", "c", "f"]


def test_dead_owners_and_dead_earlier_owners_are_not_asked():
    sources = order(["me", "x"], "y", (), ["z", "c"])
    assert sources == ["c", "a", "b", "d", "e", "f"]


def test_no_source_twice():
    sources = order(["me", "d", "e"], "e", ["e"], ["d", "e", "a"])
    assert sorted(sources) == sorted(set(sources)) == LIVE


def test_earlier_owners_are_the_previous_owners_still_members_that_no_longer_own_the_slot():
    previous = [("a", "b"), ("c", "d"), ("me", "e"), ("f", "g")]
    current = [("me", "b"), ("me", "a"), ("me", "x"), ("g", "me")]
    members = {"me", "a", "b", "d", "e", "f", "g", "x"}     # "c" left the map
    found = pulls.earlier_owners([0, 1, 2], previous, current, members, {})
    # slot 0: "b" still owns it (an owner, asked as such); slot 1: "c" left (asked as a former
    # owner that left, not here); slot 2: "me" was an owner; slot 3: not led by this node
    assert found == {0: ("a",), 1: ("d",), 2: ("e",)}


def test_earlier_owners_of_a_slot_still_unheld_are_kept_over_the_next_map_newest_first():
    # map 1 -> 2: we lead slot 0, "a" held it; map 2 -> 3: still not loaded, "b" owned it under map 2
    first = pulls.earlier_owners([0], [("a", "b")], [("me", "b")], {"me", "a", "b"}, {})
    assert first == {0: ("a",)}
    second = pulls.earlier_owners([0], [("me", "b")], [("me", "c")], {"me", "a", "b", "c"}, first)
    assert second == {0: ("b", "a")}
    # "a" is an owner again and "b" left: neither is an earlier owner any more
    third = pulls.earlier_owners([0], [("me", "c")], [("me", "a")], {"me", "a", "c"}, second)
    assert third == {0: ("c",)}
    # loaded meanwhile (not led unheld): nothing carried
    assert pulls.earlier_owners([], [("me", "a")], [("me", "c")], {"me", "a", "c"}, third) == {}


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
