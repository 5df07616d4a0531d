"""hypercache/health.py: "ok" only when nothing hides behind it."""
from __future__ import annotations

from hypercache.health import NO_MAJORITY, stranded_keys, verdict

IN_SYNC = {"in_sync": True, "not_in_sync": [], "slots_behind": 0, "slots_loading": 0, "slots_receiving": 0}
A, B = "a" * 40, "b" * 40


def test_ok_only_when_everything_is_served_and_copied() -> None:
    assert verdict(True, 16384, IN_SYNC, []) == ("ok", None)


def test_fail_when_writes_are_refused_or_slots_have_no_owner() -> None:
    assert verdict(False, 16384, IN_SYNC, []) == ("fail", NO_MAJORITY)
    assert verdict(False, 16384, IN_SYNC, [], "joining: no --join target reachable") == \
        ("fail", "joining: no --join target reachable")
    assert verdict(True, 16000, IN_SYNC, []) == ("fail", "384 slots have no owner")


def test_degraded_names_every_missing_copy() -> None:
    state, reason = verdict(True, 16384, {**IN_SYNC, "slots_loading": 3}, [])
    assert state == "degraded" and reason == "3 slots led here are still being pulled (commands on them wait, and get TRYAGAIN after 2 s)"
    state, reason = verdict(True, 16384, {**IN_SYNC, "slots_behind": 12, "not_in_sync": [A, B]}, [])
    assert state == "degraded" and reason == "12 slots lack a complete copy on replica aaaaaaaa, bbbbbbbb (copying)"
    state, reason = verdict(True, 16384, {**IN_SYNC, "slots_receiving": 5}, [])
    assert state == "degraded" and reason == "5 slots copied here are not complete yet"
    state, reason = verdict(True, 16384, {**IN_SYNC, "slots_receiving": 5}, [(B, "dead"), (A, "suspect")])
    assert state == "degraded"
    assert reason.startswith("member aaaaaaaa is suspect: ") and "; member bbbbbbbb is dead: " in reason
    assert reason.endswith("; 5 slots copied here are not complete yet")


def test_stranded_keys_are_counted_and_named() -> None:
    owners = [(A,), (B,), (B, A), ()]
    slots = [{"k1": 1}, {"k2": 1, "k3": 1}, {"k4": 1}, {"k5": 1}]
    assert stranded_keys(slots, owners, A) == 3      # slot 1 (B's alone) and slot 3 (nobody's)
    assert stranded_keys(slots, owners, B) == 2
    state, reason = verdict(True, 16384, IN_SYNC, [], None, 3)
    assert state == "degraded" and reason.startswith("3 keys held here for slots this node no longer owns")


def test_mesh_peers_without_room_are_named() -> None:
    state, reason = verdict(True, 16384, IN_SYNC, [], None, 0, 2)
    assert state == "degraded" and reason.startswith("2 mesh peers are not subscribed to for want of open files")
    assert verdict(True, 16384, IN_SYNC, [], None, 0, 0) == ("ok", None)


def test_the_reason_says_how_many_unsubscribed_peers_are_heard_through_relays() -> None:
    # (mesh/links.py: in an open mesh, where relayers could be chosen; still degraded either way)
    assert "this node does not hear them" in verdict(True, 16384, IN_SYNC, [], None, 0, 3, 0)[1]
    some = verdict(True, 16384, IN_SYNC, [], None, 0, 3, 1)
    assert some[0] == "degraded" and "hears 1 of them only as other members relay them, the others not" in some[1]
    every = verdict(True, 16384, IN_SYNC, [], None, 0, 3, 3)
    assert every[0] == "degraded" and "this node hears them only as other members relay them" in every[1]


def test_a_join_that_waits_on_joining_peers_says_there_is_no_cluster():
    from hypercache.join_probe import stuck_reason
    assert stuck_reason(2.0, 1.0, {"a" * 40: 0}) is None              # a join takes a moment
    assert stuck_reason(60.0, 1.0, {}) is None                        # hears nobody: the probe says why
    alone = stuck_reason(6.0, 1.0, {"a" * 40: 0, "b" * 40: 0})
    assert alone is not None and "no cluster to join" in alone and "aaaaaaaa, bbbbbbbb" in alone
    members = stuck_reason(6.0, 1.0, {"a" * 40: 0, "c" * 40: 7})
    assert members is not None and "cccccccc" in members and "majority" in members
