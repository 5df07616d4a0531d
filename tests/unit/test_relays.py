"""mesh/relays.py: who relays a peer this node does not hear on its own link, fed values."""
from __future__ import annotations

import collections

from mesh.relays import Relays

PATIENCE = 1.0
MEMBERS = frozenset(f"m{i:02d}" for i in range(12))
ORIGIN = "m00"
WATCHERS = frozenset({"m01", "m02", "m03", "m04"})


def _watchers_of(origin: str) -> frozenset[str]:
    return WATCHERS if origin == ORIGIN else frozenset()


def _relays(me: str = "me") -> Relays:
    return Relays(me, 2, PATIENCE)


def test_the_first_choice_is_two_of_the_peers_watchers_the_same_in_every_instance():
    heard: collections.Counter[tuple[str, str]] = collections.Counter()
    first = _relays().choose(0.0, {ORIGIN: True}, MEMBERS, _watchers_of, heard)
    again = _relays().choose(5.0, {ORIGIN: True}, MEMBERS, _watchers_of, heard)
    relayers, quiet = first[ORIGIN]
    assert len(relayers) == 2 and set(relayers) <= WATCHERS and quiet
    assert again == first
    # others than watchers only when there are no watchers to ask
    alone = _relays().choose(0.0, {ORIGIN: False}, MEMBERS - WATCHERS, _watchers_of, heard)
    assert len(alone[ORIGIN][0]) == 2 and alone[ORIGIN][1] is False


def test_askers_spread_over_the_watchers():
    heard: collections.Counter[tuple[str, str]] = collections.Counter()
    pairs = {_relays(f"asker{i}").choose(0.0, {ORIGIN: True}, MEMBERS, _watchers_of, heard)[ORIGIN][0]
             for i in range(20)}
    assert len(pairs) > 2


def test_a_relayer_that_passed_nothing_on_is_replaced_and_one_that_works_is_kept():
    relays = _relays()
    heard: collections.Counter[tuple[str, str]] = collections.Counter()
    working, silent = relays.choose(0.0, {ORIGIN: True}, MEMBERS, _watchers_of, heard)[ORIGIN][0]
    heard[(ORIGIN, working)] += 3
    assert relays.choose(PATIENCE / 2, {ORIGIN: True}, MEMBERS, _watchers_of, heard)[ORIGIN][0] == (working, silent)
    after = relays.choose(PATIENCE, {ORIGIN: True}, MEMBERS, _watchers_of, heard)[ORIGIN][0]
    assert after[0] == working and after[1] not in (working, silent) and after[1] in WATCHERS
    # the newcomer works too: both kept from then on
    heard[(ORIGIN, working)] += 1
    heard[(ORIGIN, after[1])] += 1
    assert relays.choose(2 * PATIENCE, {ORIGIN: True}, MEMBERS, _watchers_of, heard)[ORIGIN][0] == after


def test_when_every_candidate_was_tried_the_tries_start_over():
    relays = _relays()
    heard: collections.Counter[tuple[str, str]] = collections.Counter()
    candidates = frozenset({"m01", "m02", "m03"})
    seen = set()
    for step in range(6):
        relayers = relays.choose(step * PATIENCE, {ORIGIN: True}, candidates, _watchers_of, heard)[ORIGIN][0]
        assert len(relayers) == 2
        seen.update(relayers)
    assert seen == candidates


def test_a_peer_not_watched_keeps_its_relayers_however_quiet():
    relays = _relays()
    heard: collections.Counter[tuple[str, str]] = collections.Counter()
    first = relays.choose(0.0, {ORIGIN: False}, MEMBERS, _watchers_of, heard)
    assert relays.choose(10 * PATIENCE, {ORIGIN: False}, MEMBERS, _watchers_of, heard) == first


def test_a_relayer_gone_from_the_candidates_is_replaced_at_once_and_origins_no_longer_asked_are_forgotten():
    relays = _relays()
    heard: collections.Counter[tuple[str, str]] = collections.Counter()
    relayers = relays.choose(0.0, {ORIGIN: True}, MEMBERS, _watchers_of, heard)[ORIGIN][0]
    after = relays.choose(0.1, {ORIGIN: True}, MEMBERS - {relayers[0]}, _watchers_of, heard)[ORIGIN][0]
    assert relayers[0] not in after and relayers[1] in after and len(after) == 2
    assert relays.choose(0.2, {}, MEMBERS, _watchers_of, heard) == {}
    assert relays.choose(0.3, {ORIGIN: True}, frozenset({ORIGIN}), _watchers_of, heard) == {}     # (no one to ask)
