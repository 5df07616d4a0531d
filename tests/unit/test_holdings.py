"""mesh/holdings.py: which slots a node may serve or hand on, fed maps as owner tuples."""
import pytest

from mesh.holdings import Holdings
from mesh.keyslot import SLOT_COUNT

A, B, C, D = "a" * 40, "b" * 40, "c" * 40, "d" * 40


def owners(assign: dict[int, tuple[str, ...]], default: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [assign.get(slot, default) for slot in range(SLOT_COUNT)]


def test_a_fresh_node_holds_every_slot_and_a_joiner_none():
    assert all(Holdings(A, fresh=True).loaded)
    assert not any(Holdings(A, fresh=False).loaded)


def test_a_slot_owned_again_after_a_map_without_us_is_pulled_not_served():
    # The pause that lost writes: A retained slot 7 for joiner B, B pulled it from
    # C instead and took writes; two maps later A leads slot 7 again. A's copy is
    # older than B's: it must be pulled, never served nor copied over B's.
    held = Holdings(A, fresh=True)
    e1 = owners({}, (A, C))
    e2 = owners({7: (B, D)}, (A, C))
    e3 = owners({7: (A, B)}, (A, C))
    held.follow(e1, 1, e2, 2, now=0.0)
    assert held.retained[7].primary == B and held.loaded[7]
    held.follow(e2, 2, e3, 3, now=1.0)
    assert not held.loaded[7]
    assert 7 not in held.retained
    assert held.led_unheld(e3) == [7]
    assert held.loaded[8]       # slots we owned throughout stay held


def test_a_replica_that_regains_a_slot_waits_for_its_copy():
    held = Holdings(A, fresh=False)
    e1 = owners({}, (B, A))
    held.copy_done(range(SLOT_COUNT), epoch=1)
    e2 = owners({3: (B, C)}, (B, A))
    e3 = owners({}, (B, A))
    held.follow(e1, 1, e2, 2, now=0.0)
    held.release_unowned(e2, handing=())
    held.follow(e2, 2, e3, 3, now=0.0)
    assert not held.loaded[3] and held.loaded[4]
    assert not held.can_give(3, e3, B)


def test_a_copy_that_arrived_under_the_new_map_survives_the_map_change():
    # A replica's streams can deliver a whole copy before its replicator applies
    # the map that made it an owner: that copy is current, not a regained old one.
    held = Holdings(C, fresh=False)
    e1 = owners({}, (A, B))
    e2 = owners({}, (A, C))
    held.copy_done([5], epoch=2)
    held.follow(e1, 1, e2, 2, now=0.0)
    assert held.loaded[5]


def test_missed_maps_void_copies_older_than_the_last_map_seen():
    held = Holdings(A, fresh=False)
    held.copy_done([1, 2], epoch=2)
    held.copy_done([3], epoch=5)     # came from a primary of the newer map
    before = owners({}, (A, B))
    voided = held.follow(before, 2, before, 6, now=0.0, missed_maps=True)
    assert voided == 2
    assert [held.loaded[s] for s in (1, 2, 3)] == [0, 0, 1]


def test_maps_skipped_while_present_void_nothing():
    # two commits in a row under load: the node adopts the newest; it was there all
    # along (its streams kept it current). Voiding would leave every owner empty-handed.
    held = Holdings(A, fresh=True)
    same = owners({}, (A, B))
    assert held.follow(same, 4, same, 5, now=0.0) == 0
    assert held.follow(same, 5, same, 7, now=0.0, missed_maps=False) == 0
    assert all(held.loaded)


def test_a_retained_copy_is_for_its_new_primary_only_and_only_while_it_leads():
    held = Holdings(A, fresh=True)
    e1 = owners({}, (A, C))
    e2 = owners({9: (B, D)}, (A, C))          # two joiners take slot 9
    held.follow(e1, 1, e2, 2, now=0.0)
    assert held.can_give(9, e2, B)
    assert not held.can_give(9, e2, D)         # D does not lead it
    e3 = owners({9: (D, C)}, (A, C))          # B gone: D leads it now, maybe after taking writes
    held.follow(e2, 2, e3, 3, now=1.0)
    assert 9 not in held.retained
    assert not held.can_give(9, e3, D)
    # (not given as current, but kept: offered as a stale copy if nobody holds one current,
    # known current under map 1 only, when A owned it: B may have pulled it elsewhere and
    # taken writes under map 2)
    assert 9 in held.fallback and held.stale[9] == 1 and 9 not in held.release_unowned(e3, handing=())


def test_at_replication_factor_1_a_second_join_keeps_the_only_copy_for_the_stale_path():
    # A alone holds slot 4. Joiner B is admitted and leads it; before B pulls it, joiner D is
    # admitted and leads it instead. A's copy is the only one: it must not be dropped.
    held = Holdings(A, fresh=True)
    e1 = owners({}, (A,))
    e2 = owners({4: (B,)}, (A,))
    e3 = owners({4: (D,)}, (A,))
    held.follow(e1, 1, e2, 2, now=0.0)
    assert held.retained[4].primary == B
    held.follow(e2, 2, e3, 3, now=0.5)
    assert held.release_unowned(e3, handing=()) == []      # (kept: slot 4's keys stay)
    assert 4 in held.fallback and held.can_give_stale(4)
    # D asks everyone, finds nobody holding it current, and pulls the newest stale copy: ours
    give, offered, lacking = held.answer_pull([4], e3, D, stale_ok=False)
    assert (give, offered, lacking) == ([], [(4, 1)], [])
    give, offered, lacking = held.answer_pull([4], e3, D, stale_ok=True)
    assert give == [4]
    # once D says it holds what it owns, the fallback goes
    assert held.release_fallback([4]) == [4]
    assert held.release_unowned(e3, handing=()) == [4]


def test_a_copy_is_kept_for_a_new_primary_that_was_still_receiving_it():
    # B joined as an owner of everything and was pulling from A when a third node
    # joined: B now leads slot 6 without A, and never got it whole. A keeps it for B.
    held = Holdings(A, fresh=True)
    e1 = owners({}, (A, B))
    e2 = owners({6: (B, C), 7: (B, C)}, (A, B))
    held.follow(e1, 1, e2, 2, now=0.0, unacknowledged={B: {6}})
    assert held.can_give(6, e2, B)
    assert 7 not in held.retained       # acknowledged: B holds it


def test_a_copy_another_owner_gives_is_kept_as_a_fallback_until_the_owners_hold_it():
    # B takes slot 8 from A, and C (its replica before and after) holds it and gives it:
    # until B has its copy C holds the only one, so A keeps its own, not served
    held = Holdings(A, fresh=True)
    e1 = owners({}, (A, C))
    e2 = owners({8: (B, C)}, (A, C))
    held.follow(e1, 1, e2, 2, now=0.0)
    assert 8 not in held.retained
    assert 8 in held.fallback and not held.loaded[8] and held.stale[8] == 1
    assert held.release_unowned(e2, handing=()) == []
    assert held.release_fallback([8, 9]) == [8]
    assert 8 not in held.stale
    assert held.release_unowned(e2, handing=()) == [8]


def test_a_move_for_balance_leaves_the_demoted_primary_a_fallback_the_stale_path_can_pull():
    # mesh/balance.py moves slot 5 from A to B, its replica; C becomes B's new replica and
    # gets its copy from B only after the switch. A's copy, current when A stopped leading,
    # is offered only as a stale copy (when no owner holds the slot current).
    held = Holdings(A, fresh=True)
    e1 = owners({}, (A, B))
    e2 = owners({5: (B, C)}, (A, B))
    held.follow(e1, 1, e2, 2, now=0.0)
    assert 5 in held.fallback and held.can_give_stale(5) and not held.can_give(5, e2, B)
    assert held.best_stale(5, {}) is None
    # B dies before C's copy ends: the next map gives slot 5 to C and back to A, as replica.
    e3 = owners({5: (C, A)}, (A, B))
    held.follow(e2, 2, e3, 3, now=1.0)
    assert 5 not in held.fallback and held.stale[5] == 1 and not held.loaded[5]
    # a slot whose new owners all held it before leaves nothing behind
    e4 = owners({6: (B,)}, (A, B))
    fresh = Holdings(A, fresh=True)
    fresh.follow(e1, 1, e4, 2, now=0.0)
    assert 6 not in fresh.fallback and fresh.release_unowned(e4, handing=()) == [6]



def test_a_plain_pull_gets_only_current_copies_and_a_stale_one_only_when_asked_for():
    # A was demoted from slot 5 by a move for balance (its copy is a fallback) and holds
    # slot 9 current. B dies; C, the new primary of both, pulls them from A. A plain pull
    # must not be given the fallback: it would pass as current with no wait for the other
    # owners' answers (e6ad2f6's review: it lost a write acknowledged after the switch and
    # brought a deleted key back). It is offered (HELD_STALE), and given to PULL_STALE.
    held = Holdings(A, fresh=True)
    e1 = owners({5: (A, B), 9: (A, B)}, (B, D))
    e2 = owners({5: (B, C), 9: (A, B)}, (B, D))
    held.follow(e1, 1, e2, 2, now=0.0)
    e3 = owners({5: (C, A), 9: (C, A)}, (B, D))
    held.follow(e2, 2, e3, 3, now=1.0)
    assert held.answer_pull([5, 9, 11], e3, C, stale_ok=False) == ([9], [(5, 1)], [11])
    assert held.answer_pull([5, 9, 11], e3, C, stale_ok=True) == ([5, 9], [], [11])

def test_release_unowned_keeps_what_is_handed_on_or_retained():
    held = Holdings(A, fresh=True)
    e1 = owners({}, (A, C))
    e2 = owners({1: (B, D), 2: (C, D), 3: (C,)}, (A, C))
    held.follow(e1, 1, e2, 2, now=0.0)
    # slot 1: B and D are new -> retained; slot 2: C holds it, D does not yet -> a fallback;
    # slot 3: C, its only owner, holds it
    released = held.release_unowned(e2, handing={5})
    assert released == [3]
    assert held.loaded[1] and not held.loaded[2] and 2 in held.fallback


def test_retained_copies_expire_and_handed_off_ones_go():
    held = Holdings(A, fresh=True)
    e1 = owners({}, (A, C))
    e2 = owners({1: (B, D), 2: (B, D)}, (A, C))
    held.follow(e1, 1, e2, 2, now=10.0)
    held.handed_off([1])
    assert list(held.retained) == [2]
    assert held.expire_retained(now=69.0, keep_s=60.0) == []
    assert held.expire_retained(now=71.0, keep_s=60.0) == [2]
    assert not held.retained


def test_a_copy_in_progress_is_not_held():
    held = Holdings(A, fresh=True)
    held.copy_starts([4])
    e = owners({}, (B, A))
    assert not held.can_give(4, e, B)
    held.copy_done([4], epoch=3)
    assert held.can_give(4, e, B) and held.loaded_epoch[4] == 3


def test_every_owner_away_at_once_keeps_stale_copies_and_the_newest_one_wins():
    # The loss this guards against: a machine so starved that every node stalled past the
    # node timeout; each voided its copies on the next map, each answered the others'
    # pulls "not held", and the slots were served empty though every key was still there.
    e2 = owners({}, (A, B))
    e5 = owners({}, (B, A))
    primary, replica = Holdings(A, fresh=False), Holdings(B, fresh=False)
    primary.copy_done([9], epoch=1)
    replica.copy_done([9], epoch=2)
    primary.follow(e2, 2, e5, 5, now=0.0, missed_maps=True)
    replica.follow(e2, 2, e5, 5, now=0.0, missed_maps=True)
    assert not primary.loaded[9] and not replica.loaded[9]
    assert primary.stale[9] == replica.stale[9] == 2
    assert replica.can_give_stale(9) and not replica.can_give(9, e5, B)
    # B leads slot 9 now: A's copy is as new as B's own, so B keeps its own
    assert replica.best_stale(9, {A: 2}) is None
    # a copy current under a newer map than ours is pulled
    assert replica.best_stale(9, {A: 4, C: 3}) == A
    # nobody offers one and we have none: the slot is served empty
    assert Holdings(C, fresh=False).best_stale(9, {}) is None


def test_a_stale_copy_ends_when_a_copy_replaces_it_or_the_slot_is_served_or_released():
    held = Holdings(A, fresh=False)
    held.copy_done([1, 2, 3], epoch=1)
    e1, e2 = owners({}, (A, B)), owners({3: (B, C)}, (A, B))
    held.follow(e1, 1, e2, 4, now=0.0, missed_maps=True)
    assert set(held.stale) == {1, 2, 3}
    held.release_unowned(e2, handing=())
    # (away across the map that gave it to B: kept, stale, for B's pull)
    assert 3 in held.stale and held.retained[3].primary == B
    held.handed_off([3])
    held.release_unowned(e2, handing=())
    assert 3 not in held.stale              # handed off, not ours: its keys are dropped
    held.copy_starts([1])
    assert 1 not in held.stale              # the copy arriving replaces the keys
    held.given_up([2])
    assert held.loaded[2] and not held.stale   # served as it is


def test_a_copy_kept_for_a_new_primary_stays_kept_and_stale_after_missed_maps():
    # A scale-down on a machine that stalled every node past the node timeout: the leaver
    # had kept slot 1 for its new primary B, then went "away"; clearing what it kept
    # dropped the keys as not ours, and it left with the only copy.
    held = Holdings(A, fresh=True)
    e1 = owners({}, (A, C))
    e2 = owners({1: (B, D)}, (A, C))
    held.follow(e1, 1, e2, 2, now=0.0)
    assert held.retained[1].primary == B and held.loaded[1]
    held.follow(e2, 2, e2, 5, now=1.0, missed_maps=True)
    assert held.retained[1].primary == B and not held.loaded[1]
    assert held.stale[1] == 1                   # current until we stopped owning it
    assert 1 not in held.release_unowned(e2, handing=())
    # never given as current; given to the primary's pull for stale copies
    assert held.answer_pull([1], e2, B, stale_ok=False) == ([], [(1, 1)], [])
    assert held.answer_pull([1], e2, B, stale_ok=True) == ([1], [], [])


def test_a_node_away_across_the_map_that_took_its_slot_keeps_it_for_the_new_primary():
    # The leave map itself came while the leaver's hub was stalled: its copy is voided
    # (stale), and kept for the slot's new primary rather than dropped as not ours.
    held = Holdings(A, fresh=True)
    e1 = owners({}, (A, C))
    e3 = owners({1: (B, C)}, (C, B))
    held.follow(e1, 1, e3, 3, now=0.0, missed_maps=True)
    assert not held.loaded[1] and held.stale[1] == 1
    assert held.retained[1].primary == B
    assert 1 not in held.release_unowned(e3, handing=())
    # a slot whose primary changes before its pull stays a fallback (stale, not dropped)
    e4 = owners({1: (D, C)}, (C, B))
    held.follow(e3, 3, e4, 4, now=1.0)
    assert 1 not in held.retained and 1 in held.fallback and held.stale[1] == 1


def test_maps_skipped_while_present_hold_replica_copies_in_doubt_until_their_primary_speaks():
    # A skipped map may have taken slot 1 from us (replica of B) and the next given it
    # back: its writes meanwhile did not come to us. B's next frame of the new map comes
    # after any new copy it begins; until then the copy is not held.
    held = Holdings(A, fresh=False)
    held.copy_done([1, 2, 3, 4], epoch=2)
    e2 = owners({1: (B, A), 2: (B, A), 3: (C, A), 4: (A, B)}, (B, C))
    e5 = owners({1: (B, A), 2: (B, A), 3: (C, A), 4: (A, B)}, (B, C))
    assert held.follow(e2, 2, e5, 5, now=0.0) == 0
    # C's frames of map 5 came before we adopted it; slot 4 we lead
    assert held.doubt_after_skip(e2, 2, e5, 5, seen={B: 4, C: 5}) == 2
    assert [held.loaded[s] for s in (1, 2, 3, 4)] == [0, 0, 1, 1]
    assert held.stale[1] == 2 and 1 not in held.answer_pull([1], e5, C, stale_ok=False)[0]
    # B's new copy of slot 2 begins: that copy decides it
    held.copy_starts([2])
    assert held.primary_spoke(B, 4) == []          # it held all it leads under an older map only
    assert held.primary_spoke(B, 5) == [1]
    assert held.loaded[1] and 1 not in held.stale and not held.in_doubt
    assert not held.loaded[2]
    held.copy_done([2], epoch=5)
    assert held.loaded[2]


def test_a_doubt_ends_with_the_primary_or_our_ownership_and_away_voids_it():
    held = Holdings(A, fresh=False)
    held.copy_done([1, 2], epoch=2)
    e2 = owners({}, (B, A))
    assert held.doubt_after_skip(e2, 2, e2, 5, seen={}) == 2
    # slot 1's primary changes (B died): no longer B's to confirm; it stays not held (stale)
    e6 = owners({1: (C, A)}, (B, A))
    held.follow(e2, 5, e6, 6, now=0.0)
    assert held.in_doubt[B][1] == {2}
    assert held.primary_spoke(B, 6) == [2] and not held.loaded[1] and held.stale[1] == 2
    held.doubt_after_skip(e6, 6, e6, 8, seen={})
    assert held.in_doubt
    held.follow(e6, 8, e6, 10, now=0.0, missed_maps=True)
    assert not held.in_doubt


def test_a_second_skip_before_the_primary_spoke_waits_for_a_frame_of_the_newer_map():
    held = Holdings(A, fresh=False)
    held.copy_done([1, 2], epoch=2)
    e = owners({}, (B, A))
    assert held.doubt_after_skip(e, 2, e, 5, seen={}) == 2
    held.follow(e, 5, e, 8, now=0.0)
    held.copy_starts([2])                           # slot 2 was copied again meanwhile
    held.copy_done([2], epoch=6)
    assert held.doubt_after_skip(e, 5, e, 8, seen={B: 4}) == 1
    assert held.in_doubt[B] == (8, {1, 2})
    assert held.primary_spoke(B, 6) == []
    assert sorted(held.primary_spoke(B, 8)) == [1, 2]


@pytest.mark.parametrize("away", [False, True])
def test_a_copy_in_doubt_is_kept_like_any_copy_when_the_slot_leaves_us(away):
    # (B, A) -> (B, D): B holds it, D is new: our copy, in doubt, is a fallback (stale), as a
    # current one would be; away across the change, it is kept for B as a voided one is
    held = Holdings(A, fresh=False)
    held.copy_done([1], epoch=2)
    e2 = owners({}, (B, A))
    held.doubt_after_skip(e2, 2, e2, 5, seen={})
    e6 = owners({1: (B, D)}, (B, A))
    held.follow(e2, 5, e6, 6, now=0.0, missed_maps=away)
    assert not held.in_doubt and not held.loaded[1] and held.stale[1] == 2
    if away:
        assert held.retained[1].primary == B and 1 not in held.fallback
    else:
        assert 1 in held.fallback and 1 not in held.retained
    assert 1 not in held.release_unowned(e6, handing=())


def test_two_members_that_skipped_the_same_maps_do_not_wait_on_each_other():
    # A and B replicate each other's slots; both skipped 2 -> 5. Each doubts only its replica
    # copies: what it leads stays held, so each can say it holds all it leads (LED_HELD:
    # `led_unheld` is empty) and confirm the other's doubts. (Waiting on everything the other
    # holds, replica copies included, was a wait on each other that never ended.)
    e = owners({slot: (A, B) for slot in range(0, SLOT_COUNT, 2)}, (B, A))
    a, b = Holdings(A, fresh=False), Holdings(B, fresh=False)
    a.copy_done(range(SLOT_COUNT), epoch=2)
    b.copy_done(range(SLOT_COUNT), epoch=2)
    assert a.doubt_after_skip(e, 2, e, 5, seen={}) == SLOT_COUNT // 2
    assert b.doubt_after_skip(e, 2, e, 5, seen={}) == SLOT_COUNT // 2
    assert a.led_unheld(e) == [] and b.led_unheld(e) == []
    assert len(a.primary_spoke(B, 5)) == len(b.primary_spoke(A, 5)) == SLOT_COUNT // 2
    assert all(a.loaded) and all(b.loaded)


def test_a_slot_whose_primary_changed_across_the_skip_is_not_doubted_but_left_to_the_usual_rules():
    held = Holdings(A, fresh=False)
    held.copy_done([1, 2], epoch=2)
    before = owners({}, (B, A))
    after = owners({1: (C, A)}, (B, A))         # slot 1's primary changed in the maps skipped
    assert held.doubt_after_skip(before, 2, after, 5, seen={}) == 1
    assert held.in_doubt == {B: (5, {2})}


def test_a_copy_ahead_of_admission_counts_while_the_joiner_holds_its_own_map():
    # A member planned the joiner's slots on the cluster's map and copied them; the copy may end
    # before the joiner adopts that map, while its own one-member map gives it every slot.
    joiner = Holdings(A, fresh=False)
    own = owners({}, (A,))
    joiner.copied_ahead([1, 2], B, own, own_map=True)
    assert joiner.precopied == {1: B, 2: B}
    # under the cluster's map, a slot it owns already is not a copy ahead of its admission
    cluster = owners({3: (B,)}, (A,))
    joiner.copied_ahead([3, 4], B, cluster, own_map=False)
    assert joiner.precopied == {1: B, 2: B, 3: B}


def test_copies_counted_under_the_own_map_stay_only_where_the_cluster_map_makes_them_ahead():
    # A restarted node holds its own one-member map; its primary B re-copies it slot 5 as a
    # replica (the cluster's map names it a replica of 5), and slot 6, which the map gives to
    # C, came from B too: neither is a copy ahead of admission once the cluster's map is here.
    node = Holdings(A, fresh=False)
    node.copied_ahead([4, 5, 6], B, owners({}, (A,)), own_map=True)
    cluster = owners({4: (B,), 5: (B, A), 6: (C,)}, (D,))
    node.left_own_map(cluster)
    assert node.precopied == {4: B}
