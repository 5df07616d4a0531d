"""The ring picture's layout: slot ranges in, tracks of arcs out."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from web.ring import ring_layout

SLOTS = 16384


def _m(member_id: str, primary: list[list[int]], replica: list[list[int]] | None = None) -> dict[str, Any]:
    return {"id": member_id, "primary_ranges": primary, "replica_ranges": replica or []}


def _slots(arcs: list[tuple[int, int, str]], owner: str | None = None) -> set[int]:
    return {s for start, end, who in arcs if owner in (None, who) for s in range(start, end + 1)}


def test_a_single_node_is_one_full_primary_arc_and_no_replica_track() -> None:
    layout = ring_layout([_m("a", [[0, SLOTS - 1]])])  # type: ignore[list-item]
    assert layout == {"slots": SLOTS, "tracks": [{"role": "primary", "arcs": [(0, SLOTS - 1, "a")]}]}


def test_no_members_draws_an_empty_primary_track() -> None:
    assert ring_layout([])["tracks"] == [{"role": "primary", "arcs": []}]


def test_adjacent_ranges_of_one_member_merge_and_gaps_stay_gaps() -> None:
    layout = ring_layout([_m("a", [[0, 99], [100, 199], [300, 399]])])  # type: ignore[list-item]
    assert layout["tracks"][0]["arcs"] == [(0, 199, "a"), (300, 399, "a")]


def test_three_members_with_two_copies_each_slot_drawn_once_per_track() -> None:
    thirds = [[0, 5460], [5461, 10922], [10923, SLOTS - 1]]
    members = [_m(name, [thirds[i]], [thirds[(i + 1) % 3]]) for i, name in enumerate("abc")]
    layout = ring_layout(members)  # type: ignore[arg-type]
    assert [t["role"] for t in layout["tracks"]] == ["primary", "replica"]
    assert layout["tracks"][1]["arcs"] == [(0, 5460, "c"), (5461, 10922, "a"), (10923, SLOTS - 1, "b")]


def test_nonsense_ranges_are_clipped_or_dropped_never_fatal() -> None:
    layout = ring_layout([_m("a", [[-5, 10], [20, 10], [16000, 99999], [1]])])  # type: ignore[list-item]
    assert layout["tracks"][0]["arcs"] == [(0, 10, "a"), (16000, SLOTS - 1, "a")]


def test_the_same_topology_in_any_member_order_draws_the_same_ring() -> None:
    members = [_m("b", [[0, 99]], [[100, 199]]), _m("a", [[100, 199]], [[0, 99]])]
    assert ring_layout(members) == ring_layout(list(reversed(members)))  # type: ignore[arg-type]


def test_a_replica_keeps_its_track_where_the_other_replica_changes() -> None:
    # rf 3: "x" is a replica of 0..199 throughout while its partner changes at 100.
    members = [_m("p", [[0, 199]]), _m("x", [], [[0, 199]]), _m("a", [], [[0, 99]]), _m("b", [], [[100, 199]])]
    tracks = ring_layout(members)["tracks"]  # type: ignore[arg-type]
    x_tracks = [i for i, t in enumerate(tracks) if any(who == "x" for _, _, who in t["arcs"])]
    assert len(x_tracks) == 1
    assert [(s, e) for s, e, who in tracks[x_tracks[0]]["arcs"] if who == "x"] == [(0, 199)]


@st.composite
def _topologies(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[int, set[str]], dict[int, str]]:
    """Random intervals, each with a primary and distinct replicas, turned into per-member ranges."""
    names = ["a", "b", "c", "d"]
    cuts = sorted(draw(st.sets(st.integers(1, SLOTS - 1), max_size=8)) | {0, SLOTS})
    primary_of: dict[int, str] = {}
    replicas_of: dict[int, set[str]] = {}
    ranges: dict[str, tuple[list[list[int]], list[list[int]]]] = {n: ([], []) for n in names}
    for start, stop in zip(cuts, cuts[1:]):
        owners = draw(st.permutations(names))[: draw(st.integers(0, 3))]
        if not owners:
            continue
        primary_of[start] = owners[0]
        replicas_of[start] = set(owners[1:])
        ranges[owners[0]][0].append([start, stop - 1])
        for name in owners[1:]:
            ranges[name][1].append([start, stop - 1])
    members = [_m(n, p, r) for n, (p, r) in ranges.items()]
    return members, replicas_of, primary_of


@settings(max_examples=60, deadline=None)
@given(_topologies())
def test_every_owned_slot_is_drawn_for_exactly_its_owners(topology) -> None:
    members, replicas_of, primary_of = topology
    tracks = ring_layout(members)["tracks"]
    primary, replica_tracks = tracks[0]["arcs"], [t["arcs"] for t in tracks[1:]]
    for arcs in [primary, *replica_tracks]:
        assert all(s <= e for s, e, _ in arcs)
        assert all(a[1] < b[0] for a, b in zip(arcs, arcs[1:])), "arcs overlap or are unsorted"
    for start, owner in primary_of.items():
        assert start in _slots(primary, owner)
        drawn = {who for arcs in replica_tracks for s, e, who in arcs if s <= start <= e}
        assert drawn == replicas_of[start]
    assert _slots(primary) == {s for m in members for a, b in m["primary_ranges"] for s in range(a, b + 1)}


def test_shares_count_each_members_slots_in_id_order() -> None:
    from web.ring import member_shares
    members = [
        {"id": "b" * 40, "primary_ranges": [[0, 9], [20, 29]], "replica_ranges": [[10, 19]]},
        {"id": "a" * 40, "primary_ranges": [[10, 19]], "replica_ranges": [[0, 9], [20, 29], [16380, 99999]]},
        {"id": "c" * 40, "primary_ranges": [], "replica_ranges": [[5, 1]]},       # nonsense is ignored
    ]
    assert member_shares(members) == [     # type: ignore[arg-type]
        {"id": "a" * 40, "primary": 10, "replica": 24},
        {"id": "b" * 40, "primary": 20, "replica": 10},
        {"id": "c" * 40, "primary": 0, "replica": 0},
    ]
