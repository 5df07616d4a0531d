"""Who sends a member behind the map it missed (mesh/catchup.py): values in, decisions out."""
from __future__ import annotations

from mesh import catchup

MEMBERS = frozenset("abcdefghijkl")
WATCHERS = {"e": frozenset("cdfg"), "x": frozenset("ab")}


def test_a_member_of_a_big_map_is_sent_the_map_by_its_watchers():
    assert catchup.senders("e", MEMBERS, WATCHERS, "a") == ["c", "d", "f", "g"]


def test_a_small_map_has_every_other_member_send_it():
    assert catchup.senders("c", frozenset("abc"), None, "a") == ["a", "b"]


def test_a_node_outside_the_map_is_sent_it_by_the_proposer_first_then_by_every_member():
    assert catchup.senders("z", frozenset("abcd"), WATCHERS, "c") == ["c", "a", "b", "d"]
    assert catchup.senders("z", frozenset("abc"), None, "b") == ["b", "a", "c"]
    assert catchup.senders("z", frozenset("abc"), None, None) == ["a", "b", "c"]


def _due(me: str, passed_over: set[str] = set(), behind_for_s: float = 0.0,
         since_sent_s: float = float("inf")) -> bool:
    return catchup.due(me, ["c", "d", "f", "g"], passed_over, behind_for_s, since_sent_s,
                       spacing_s=0.25, step_s=0.5)


def test_the_first_sender_sends_at_once_and_the_others_wait():
    assert _due("c")
    assert not _due("d") and not _due("g")


def test_a_sender_in_doubt_behind_or_silent_is_passed_over():
    assert _due("d", passed_over={"c"})
    assert not _due("f", passed_over={"c"})
    assert _due("f", passed_over={"c", "d"})


def test_the_first_sender_never_passes_itself_over():
    # (`passed_over` is this node's view of others: a node does not doubt itself)
    assert _due("c", passed_over={"c"})


def test_the_others_take_turns_while_the_member_stays_behind():
    assert not _due("d", behind_for_s=0.4) and _due("d", behind_for_s=0.5)
    assert not _due("f", behind_for_s=0.9) and _due("f", behind_for_s=1.0)
    assert not _due("g", behind_for_s=1.4) and _due("g", behind_for_s=1.5)
    assert _due("g", passed_over={"c"}, behind_for_s=1.0)


def test_a_sender_repeats_itself_no_more_often_than_the_spacing():
    assert not _due("c", since_sent_s=0.2)
    assert _due("c", since_sent_s=0.25)
    assert not _due("f", behind_for_s=10.0, since_sent_s=0.1)


def test_a_node_not_asked_never_sends():
    assert not _due("a", behind_for_s=100.0)


def test_a_member_behind_for_long_is_sent_the_map_less_often():
    assert catchup.spacing_s(0.25, 0.0) == 0.25
    assert catchup.spacing_s(0.25, 1.0) == 0.25
    assert catchup.spacing_s(0.25, 8.0) == 2.0
