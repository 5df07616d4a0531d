"""Membership: alive -> suspect -> dead on the local clock, majority-confirmed, refuted by incarnation."""
from hypothesis import given, settings, strategies as st

from loadtest.ring_balance import node_id
from mesh.membership import Died, Joined, Left, Membership, Recovered, Refuted, Suspected
from mesh.messages import Gossip, Heartbeat, State
from mesh.slotmap import Member

TIMEOUT = 2.0


def member(index: int) -> Member:
    return Member(node_id(index), "127.0.0.1", 8080 + index, 18080 + index, 9080 + index)


def beat(index: int, seq: int, incarnation: int = 0, gossip: tuple = ()) -> Heartbeat:
    return Heartbeat(node_id(index), seq, incarnation, 1, b"d" * 20, member(index), gossip, 0, 0, 0.0)


def view(index: int = 0, peers: int = 2, now: float = 0.0) -> Membership:
    membership = Membership(member(index), TIMEOUT)
    for other in range(peers + 1):
        if other != index:
            membership.learn(member(other), now)
    return membership


def test_heartbeat_from_unknown_sender_joins_it_and_its_member_list():
    membership = Membership(member(0), TIMEOUT)
    events = membership.heartbeat(beat(1, 1, gossip=(Gossip(member(2), 0, State.ALIVE),)), 0.0)
    assert events == [Joined(member(1)), Joined(member(2))]
    assert set(membership.live()) == {node_id(0), node_id(1), node_id(2)}


def test_a_quiet_heartbeat_renews_a_known_sender_and_is_dropped_from_an_unknown_one():
    import dataclasses
    membership = view(peers=1)
    quiet = dataclasses.replace(beat(1, 5), me=None)
    membership.heartbeat(quiet, 1.5)
    assert membership.peers[node_id(1)].heard_at == 1.5 and membership.peers[node_id(1)].member == member(1)
    stranger = Membership(member(0), TIMEOUT)
    assert stranger.heartbeat(quiet, 0.0) == [] and not stranger.peers and stranger.stale == 1
    # ... though what it says of this node is still read: held dead, it refutes
    held_dead = dataclasses.replace(quiet, members=(Gossip(member(0), 0, State.DEAD),))
    assert stranger.heartbeat(held_dead, 0.1) == [Refuted(1)] and stranger.incarnation == 1


def test_a_death_rides_in_every_heartbeat_but_is_news_only_while_recent():
    membership = view(peers=2)
    membership.leave(node_id(2), 0, 10.0)
    assert membership.has_news(10.5, 1.0) and not membership.has_news(11.5, 1.0)
    assert [g.member.node_id for g in membership.gossip(11.5, 1.0)] == [node_id(2)]


def test_dead_members_in_gossip_are_not_learned():
    membership = Membership(member(0), TIMEOUT)
    membership.heartbeat(beat(1, 1, gossip=(Gossip(member(2), 0, State.DEAD),)), 0.0)
    assert node_id(2) not in membership.peers


def test_silence_makes_suspect_but_one_voice_is_not_a_majority():
    membership = view(peers=2)
    membership.heartbeat(beat(1, 1), 1.0)
    membership.heartbeat(beat(2, 1), 1.0)
    assert membership.tick(2.9) == []
    membership.heartbeat(beat(1, 2), 3.0)
    # Node 2 has been silent longer than the timeout; only this node suspects it.
    assert membership.tick(3.1) == [Suspected(node_id(2))]
    assert membership.state(node_id(2)) == State.SUSPECT


def test_suspect_becomes_dead_when_a_majority_reports_it():
    membership = view(peers=2)
    membership.tick(2.5)
    assert membership.state(node_id(2)) == State.SUSPECT
    events = membership.heartbeat(beat(1, 1, gossip=(Gossip(member(2), 0, State.SUSPECT),)), 2.6)
    assert events == [Recovered(node_id(1)), Died(node_id(2))]
    assert node_id(2) not in membership.live()


def test_reports_at_an_older_incarnation_do_not_count():
    membership = view(peers=2)
    membership.heartbeat(beat(2, 1, incarnation=3), 0.5)
    membership.tick(2.6)
    events = membership.heartbeat(beat(1, 1, gossip=(Gossip(member(2), 2, State.SUSPECT),)), 2.7)
    assert Died(node_id(2)) not in events


def test_suspect_recovers_on_a_heartbeat():
    membership = view(peers=2)
    membership.tick(2.5)
    assert Recovered(node_id(2)) in membership.heartbeat(beat(2, 1), 2.6)
    assert membership.state(node_id(2)) == State.ALIVE


def test_dead_member_returns_only_with_a_higher_incarnation():
    membership = view(peers=1)
    membership.tick(2.5)
    assert membership.state(node_id(1)) == State.DEAD  # two members: this node alone is a majority
    assert membership.heartbeat(beat(1, 5, incarnation=0), 3.0) == []
    assert membership.stale == 1
    assert membership.heartbeat(beat(1, 6, incarnation=1), 3.1) == [Recovered(node_id(1))]


def test_reported_suspect_refutes_with_higher_incarnation():
    membership = view(peers=1)
    events = membership.heartbeat(beat(1, 1, gossip=(Gossip(member(0), 0, State.SUSPECT),)), 0.1)
    assert events == [Refuted(1)]
    assert membership.incarnation == 1


def test_restart_learns_its_incarnation_from_gossip():
    membership = view(peers=1)
    membership.heartbeat(beat(1, 1, gossip=(Gossip(member(0), 6, State.ALIVE),)), 0.1)
    assert membership.incarnation == 7


def test_stale_and_duplicate_sequence_numbers_are_dropped():
    membership = view(peers=1)
    membership.heartbeat(beat(1, 10), 0.1)
    membership.heartbeat(beat(1, 10), 0.2)
    membership.heartbeat(beat(1, 9), 0.3)
    assert membership.stale == 2
    assert membership.peers[node_id(1)].heard_at == 0.1


def test_leave_is_immediate():
    membership = view(peers=2)
    assert membership.leave(node_id(1), 0, 0.5) == [Left(node_id(1))]
    assert membership.state(node_id(1)) == State.DEAD


def test_dead_members_gone_from_the_map_are_forgotten_after_a_while():
    # Churn (nodes replaced with new ids) must not grow the member list without bound:
    # past MAX_MEMBERS gossip entries a heartbeat no longer decodes at all.
    membership = view(peers=2)
    membership.leave(node_id(2), 0, 1.0)
    in_map, out_of_map = {node_id(0), node_id(1), node_id(2)}, {node_id(0), node_id(1)}
    assert membership.forget_dead(5.0, out_of_map, after_s=10.0) == []
    assert membership.forget_dead(12.0, in_map, after_s=10.0) == []
    assert membership.forget_dead(12.0, out_of_map, after_s=10.0) == [node_id(2)]
    assert node_id(2) not in membership.peers and node_id(2) not in membership.reports
    assert [g.member.node_id for g in membership.gossip()] == [node_id(1)]
    # Never a live member, whatever the map says.
    assert membership.forget_dead(100.0, set(), after_s=10.0) == []


def test_heard_within_counts_recent_members_and_self():
    membership = view(peers=2)
    membership.heartbeat(beat(1, 1), 1.0)
    ids = [node_id(0), node_id(1), node_id(2)]
    assert membership.heard_within(ids, 2.5) == 2
    assert membership.heard_within(ids, 3.5) == 1


def test_gossip_lists_every_peer_with_state():
    membership = view(peers=2)
    membership.tick(2.5)
    assert {(g.member.node_id, g.state) for g in membership.gossip()} == {
        (node_id(1), State.SUSPECT), (node_id(2), State.SUSPECT)}


def test_heartbeat_gossip_is_suspicions_and_news_not_the_roster():
    membership = view(peers=3, now=0.0)
    # Learned at 0.0: news for news_s, then left out while alive and unchanged.
    assert len(membership.gossip(0.5, news_s=1.0)) == 3
    assert membership.gossip(1.5, news_s=1.0) == ()
    membership.heartbeat(beat(1, 1, incarnation=2), 2.0)        # a new incarnation is news again
    membership.heartbeat(beat(2, 1), 2.0)
    assert [g.member.node_id for g in membership.gossip(2.5, news_s=1.0)] == [node_id(1)]
    # A suspicion travels in every heartbeat until it changes, however old.
    membership.heartbeat(beat(1, 2, incarnation=2), 3.5)
    membership.tick(4.1)
    assert {(g.member.node_id, g.state) for g in membership.gossip(9.0, news_s=1.0)} == {
        (node_id(2), State.SUSPECT), (node_id(3), State.SUSPECT)}
    assert len(membership.gossip()) == 3       # the roster: everyone


def test_a_heartbeat_without_suspicions_withdraws_the_senders_earlier_ones():
    membership = view(peers=3)
    membership.heartbeat(beat(1, 1, gossip=(Gossip(member(2), 0, State.SUSPECT),)), 0.5)
    assert membership.reports[node_id(1)] == {node_id(2): 0}
    membership.heartbeat(beat(1, 2), 0.7)            # news-only: 1 no longer suspects 2
    assert node_id(1) not in membership.reports


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(2, 4), st.floats(0, 1.9), st.booleans()), max_size=60))
def test_a_member_heard_within_the_timeout_is_never_suspect_or_dead(schedule):
    """However loudly others accuse it, a member this node keeps hearing stays alive in its view."""
    membership = view(peers=4)
    now = 0.0
    for seq, (sender, gap, accuse) in enumerate(schedule, start=1):
        now += gap
        gossip = tuple(Gossip(member(i), 0, State.SUSPECT) for i in range(1, 5) if accuse and i != sender)
        membership.heartbeat(beat(sender, seq, gossip=gossip), now)
        membership.heartbeat(beat(1, seq), now)
        membership.tick(now)
        assert membership.state(node_id(1)) == State.ALIVE


def test_a_member_the_map_removed_is_dead_here_once_unheard_without_a_vote():
    # A non-watcher that missed the watchers' death news: the committed map is the word it gets.
    membership = view(peers=3)
    membership.heartbeat(beat(3, 1), 5.0)           # still speaking when the map removed it
    membership.heartbeat(beat(1, 1), 5.0)           # (the member that stays)
    membership.left_the_map([node_id(2), node_id(3)], {node_id(0), node_id(1)})
    assert membership.tick(5.5) == [Died(node_id(2), removed_by_map=True)]
    assert membership.state(node_id(3)) == State.ALIVE      # heard 0.5 s ago: its heartbeats decide
    membership.heartbeat(beat(3, 2), 6.0)
    membership.heartbeat(beat(1, 2), 6.0)
    assert membership.tick(6.0 + TIMEOUT) == []
    assert Died(node_id(3), removed_by_map=True) in membership.tick(6.1 + TIMEOUT)  # (node 1 suspect too)
    assert membership.peers[node_id(3)].dead_incarnation == 0
    # ... and comes back only with a higher incarnation, like any dead member
    assert membership.heartbeat(beat(3, 3), 9.0) == [] and membership.state(node_id(3)) == State.DEAD
    assert membership.heartbeat(beat(3, 4, incarnation=1), 9.1) == [Recovered(node_id(3))]


def test_a_member_admitted_again_is_no_longer_buried_by_an_old_removal():
    membership = view(peers=2)
    membership.heartbeat(beat(2, 1), 1.0)
    membership.heartbeat(beat(1, 1), 2.0)
    membership.left_the_map([node_id(2)], {node_id(0), node_id(1)})
    assert membership.tick(1.5) == []
    membership.left_the_map([], {node_id(0), node_id(1), node_id(2)})
    # silent now, it is a map member again: suspect on its watchers' silence, dead on a majority
    events = membership.tick(1.1 + TIMEOUT)
    assert events == [Suspected(node_id(2))]
    assert membership.state(node_id(2)) == State.SUSPECT


def _watched_view(watchers: dict[str, frozenset[str]]) -> Membership:
    membership = view(index=0, peers=12)
    membership.watch(watchers, 0.0)
    return membership


def _reports(membership: Membership, target: int, reporters, now: float, seq: int = 1) -> list:
    events = []
    for index in reporters:
        events += membership.heartbeat(beat(index, seq, gossip=(Gossip(member(target), 0, State.SUSPECT),)), now)
    return events


def test_watchers_held_dead_do_not_shrink_the_electorate():
    # Member 12's watchers are 1-8 (this node, 0, is not one). 1-4 died (or are cut off with it:
    # from here the same); 5-8 suspecting it are 4 of 8, not a majority: it is not dead. Counting
    # only live watchers (4 of 4) declared it dead while 1-4 may still echo it for its lease.
    watchers = {node_id(12): frozenset(node_id(i) for i in range(1, 9))}
    membership = _watched_view(watchers)
    for index in range(1, 5):
        membership.leave(node_id(index), 0, 0.5)
    events = _reports(membership, 12, range(5, 9), 1.0)
    assert Died(node_id(12)) not in events and membership.state(node_id(12)) == State.ALIVE
    _reports(membership, 12, range(9, 12), 1.1, seq=2)       # not its watchers: no say
    assert membership.state(node_id(12)) == State.ALIVE
    # a fifth watcher's report (one that came back) makes the majority of all eight
    assert membership.heartbeat(beat(4, 9, incarnation=1), 1.2) == [Recovered(node_id(4))]
    events = membership.heartbeat(beat(4, 10, incarnation=1,
                                       gossip=(Gossip(member(12), 0, State.SUSPECT),)), 1.3)
    assert Died(node_id(12)) in events


def test_a_member_holding_an_older_map_is_judged_by_its_watchers_in_that_map():
    # The current map gives member 12 the watchers 5-12's neighbours 1-4 left; it was last heard
    # holding a map where its watchers were 1-8 (pinned): reports of the current map's watchers
    # that were not its watchers then do not count.
    membership = _watched_view({node_id(12): frozenset(node_id(i) for i in range(5, 13) if i != 12) | {node_id(0)}})
    membership.pin(node_id(12), (frozenset(node_id(i) for i in range(1, 9)),), 0.0)
    assert membership.watchers_of(node_id(12)) == frozenset(node_id(i) for i in range(1, 9))
    assert not membership.watches(node_id(12))      # this node watched it in the old map only
    _reports(membership, 12, [9, 10, 11, 5, 6], 1.0)
    assert membership.state(node_id(12)) == State.ALIVE      # 2 of its pinned watchers
    events = _reports(membership, 12, [1, 2, 3], 1.1, seq=2)
    assert Died(node_id(12)) in events                       # 5 of them
    membership.pin(node_id(12), None, 2.0)
    assert membership.watchers_of(node_id(12)) is not None and membership.watches(node_id(12))


def test_a_member_that_may_hold_either_of_two_maps_is_dead_only_when_both_groups_say_so():
    # Heard holding map E (watchers 1-8), it may hold E+1 unheard (watchers 3-10): its lease
    # holds in whichever while 4 of that one's watchers echo it. 5 of 1-8 suspecting is not
    # enough while 9 and 10 with 3 and 4 could still hear it in E+1; 5 of each is.
    membership = view(index=0, peers=12)
    old, new = frozenset(node_id(i) for i in range(1, 9)), frozenset(node_id(i) for i in range(3, 11))
    membership.pin(node_id(12), (new, old), 0.0)
    assert membership.watchers_of(node_id(12)) == old | new
    assert Died(node_id(12)) not in _reports(membership, 12, [1, 2, 5, 6, 7], 1.0)     # 5 of E, 3 of E+1
    assert Died(node_id(12)) in _reports(membership, 12, [8, 9], 1.1, seq=2)           # 7 of E, 5 of E+1
    membership.pin(node_id(11), (), 1.2)                    # a map not known here: no verdict
    assert Died(node_id(11)) not in _reports(membership, 11, range(1, 11), 1.3, seq=3)


def test_the_operator_declares_a_silent_member_dead_and_no_other():
    # Silent: suspect here, or reported suspect by a live member. Unheard is not silent: in a
    # big map this node hears only the members it watches.
    membership = view(peers=3)
    membership.heartbeat(beat(1, 1), 5.0)
    assert not membership.silent(node_id(2)) and membership.declare_dead(node_id(2), 5.5) == []
    membership.heartbeat(beat(1, 2, gossip=(Gossip(member(2), 0, State.SUSPECT),)), 5.6)
    assert membership.silent(node_id(2)) and not membership.silent(node_id(1))
    # (and no proposer: a member reported suspect may stay so for good in a big map)
    unsuspected = membership.unsuspected_test()
    assert not unsuspected(node_id(2)) and unsuspected(node_id(1)) and unsuspected(membership.me.node_id)
    assert membership.declare_dead(node_id(1), 5.7) == []
    assert membership.declare_dead(node_id(2), 5.7) == [Died(node_id(2), by_operator=True)]
    assert membership.state(node_id(2)) == State.DEAD and not membership.silent(node_id(2))


def test_a_death_voted_under_one_map_is_counted_again_under_the_next():
    # Member 12 was declared dead by 5 of its watchers 1-8 under map E. Map E+1 gives it the
    # watchers 3-10, and it was last heard holding E: it may hold E+1, its lease counting 3-10.
    # Only 3 of those (3, 5, 6) said it died: it is suspect again, not dead, until 5 of them do.
    old, new = frozenset(node_id(i) for i in range(1, 9)), frozenset(node_id(i) for i in range(3, 11))
    membership = _watched_view({node_id(12): old})
    assert Died(node_id(12)) in _reports(membership, 12, [1, 2, 3, 5, 6], 1.0)
    membership.watch({node_id(12): new}, 2.0)
    membership.pin(node_id(12), (new, old), 2.0)
    assert membership.revisit(2.0) == [Suspected(node_id(12), recounted=True)]
    assert membership.state(node_id(12)) == State.SUSPECT
    assert membership.revisit(2.1) == []                    # (counted once)
    assert Died(node_id(12)) not in _reports(membership, 12, [9], 2.2, seq=2)         # 4 of E+1
    assert Died(node_id(12)) in _reports(membership, 12, [10], 2.3, seq=2)            # 5 of each


def test_a_recount_keeps_deaths_a_new_map_does_not_question():
    # Dead by 5 of 1-8, and the new map leaves its watchers as they were: the verdict stands.
    # A leave is not a vote: no recount either.
    watchers = {node_id(12): frozenset(node_id(i) for i in range(1, 9))}
    membership = _watched_view(watchers)
    _reports(membership, 12, [1, 2, 3, 4, 5], 1.0)
    membership.leave(node_id(11), 0, 1.0)
    membership.watch(dict(watchers), 2.0)
    assert membership.revisit(2.0) == [] and membership.state(node_id(12)) == State.DEAD
    membership.watch({node_id(n): frozenset(node_id(i) for i in range(1, 9) if i != n) | {node_id(0)}
                      for n in (11, 12)}, 3.0)
    assert membership.revisit(3.0) == [] and membership.state(node_id(11)) == State.DEAD


def test_a_refuted_vote_is_not_recounted_when_the_member_dies_another_way():
    # Voted dead, it refutes (it was slow); later the operator's CLUSTER FORGET declares it dead.
    # That death is no vote: a map that keeps it must not make it suspect again (review).
    watchers = {node_id(12): frozenset(node_id(i) for i in range(1, 9))}
    membership = _watched_view(watchers)
    _reports(membership, 12, [1, 2, 3, 4, 5], 1.0)
    assert membership.heartbeat(beat(12, 1, incarnation=1), 1.5) == [Recovered(node_id(12))]
    for index in (6, 7, 8):
        membership.heartbeat(beat(index, 5, gossip=(Gossip(member(12), 1, State.SUSPECT),)), 20.0)
    assert membership.declare_dead(node_id(12), 21.0) == [Died(node_id(12), by_operator=True)]
    membership.watch(dict(watchers), 22.0)
    assert membership.revisit(22.0) == [] and membership.state(node_id(12)) == State.DEAD


def test_a_member_pinned_to_a_map_not_known_here_is_still_watched_by_its_watchers_here():
    # No verdict here on a member heard holding a map this node cannot place, but as one of its
    # watchers in our map this node listens to it and reports its silence: its report is its own
    # observation, and the members that can judge it count it (review: a crash at a scale-up).
    membership = _watched_view({node_id(12): frozenset(node_id(i) for i in range(0, 8))})
    membership.pin(node_id(12), (), 0.0)
    assert membership.watches(node_id(12))
    assert Suspected(node_id(12)) in membership.tick(TIMEOUT + 0.5)
    assert Died(node_id(12)) not in _reports(membership, 12, range(1, 8), TIMEOUT + 0.6)


MEMBERS = 14        # above 2 * SIDE + 1: maps of them have watchers


def _naive(membership: Membership, now: float, news_s: float):
    """What the indexes stand for, recounted from every peer."""
    peers = membership.peers
    return ({n for n, p in peers.items() if p.state != State.ALIVE},
            max((p.changed_at for p in peers.values()), default=float("-inf")),
            {n for n in peers if membership.watches(n)},
            tuple(sorted(n for n, p in peers.items() if p.state != State.ALIVE or now - p.changed_at <= news_s)),
            any(now - p.told_at <= news_s for p in peers.values()),
            max((p.told_at for p in peers.values()), default=float("-inf")))


operations = st.lists(st.tuples(
    st.sampled_from(["beat", "suspect", "tick", "leave", "map", "pin", "forget_dead", "forget", "operator",
                     "revisit", "learn"]),
    st.integers(1, MEMBERS - 1), st.integers(0, MEMBERS - 1), st.floats(0.0, 3.0)), max_size=60)


@settings(max_examples=400, deadline=None)
@given(operations)
def test_the_timer_s_indexes_always_match_the_peers_they_stand_for(ops):
    """doubted, changed_last, told_last and watched() are kept in step with every write to the peers
    (the timer reads them instead of walking every peer), whatever the sequence of events."""
    from mesh import watch
    membership = view(peers=MEMBERS - 1)
    now, seqs = 0.0, [0] * MEMBERS
    for kind, i, j, step in ops:
        now += step
        seqs[i] += 1
        if kind == "beat":
            membership.heartbeat(beat(i, seqs[i]), now)
        elif kind == "suspect":
            membership.heartbeat(beat(i, seqs[i], gossip=(Gossip(member(j), 0, State.SUSPECT),)), now)
        elif kind == "tick":
            membership.tick(now)
        elif kind == "leave":
            membership.leave(node_id(i), 0, now)
        elif kind == "map":     # a map of members 0..j (at least 0 and i), its watchers
            ids = [node_id(k) for k in sorted({0, i, *range(j + 1)})]
            membership.watch(watch.watchers(ids), now, frozenset([node_id(j)]) if j % 3 == 0 else frozenset())
        elif kind == "pin":
            groups = None if j % 3 == 0 else () if j % 3 == 1 else (frozenset(node_id(k) for k in range(j)),)
            membership.pin(node_id(i), groups, now)
        elif kind == "forget_dead":
            membership.forget_dead(now, {node_id(j)}, step)
        elif kind == "forget":
            membership.forget(node_id(i))
        elif kind == "operator":
            membership.declare_dead(node_id(i), now)
        elif kind == "revisit":
            membership.revisit(now)
        else:
            membership.learn(member(i), now)
        doubted, changed_last, watched, listed, news, told_last = _naive(membership, now, 1.0)
        assert membership.doubted == doubted
        assert membership.changed_last == changed_last
        assert membership.told_last == told_last
        assert membership.watched() == watched
        assert tuple(g.member.node_id for g in membership.gossip(now, 1.0)) == listed
        assert membership.has_news(now, 1.0) == news
        if membership.watchers is not None:     # (the outside groups kept per map: made afresh)
            map_ids = sorted(membership.watchers)
            assert all(membership.watchers_of(n) == watch.watchers_outside(map_ids, n) for n in membership.peers
                       if n not in membership.watchers and n not in membership.pinned)


def test_who_dies_in_one_count_does_not_depend_on_the_order_of_the_count():
    """A member without watchers is judged by the members live when the count began, also when
    a pinned member died earlier in the same count (a review: the electorate was made lazily,
    after such a death, so the order of the count decided: the peers' order, then their ids)."""
    def mem(char: str) -> Member:
        return Member(char * 40, "10.0.0.1", 6379, 16379, 8080)
    me, r, q = mem("0"), mem("1"), mem("2")
    for p, s in ((mem("b"), mem("a")), (mem("a"), mem("b"))):     # the pinned one counted last, then first
        for learned in ([r, q, p, s], [s, p, q, r]):
            membership = Membership(me, TIMEOUT)
            for other in learned:
                membership.learn(other, 0.0)
            membership.pin(p.node_id, (frozenset({me.node_id, r.node_id}),), 0.0)   # p: judged by its group
            membership.heartbeat(Heartbeat(r.node_id, 1, 0, 1, b"d" * 20, r,
                                           (Gossip(s, 0, State.SUSPECT), Gossip(p, 0, State.SUSPECT)), 0, 0, 0.0), 2.5)
            membership.heartbeat(Heartbeat(q.node_id, 1, 0, 1, b"d" * 20, q, (), 0, 0, 0.0), 2.5)
            # p dies in the first count; s, whose electorate still held p then, in the next
            assert [e for e in membership.tick(2.5) if isinstance(e, Died)] == [Died(p.node_id)]
            assert [e for e in membership.tick(2.75) if isinstance(e, Died)] == [Died(s.node_id)]


def test_a_node_learned_by_its_hello_gets_a_node_timeout_more_before_its_silence_counts():
    # a hello comes as the node's mesh starts; the rest of its start-up may hold its first
    # heartbeat back longer than node_timeout on a loaded machine (Mesh._hello)
    membership = Membership(member(0), TIMEOUT)
    membership.learn(member(1), 0.0, patience_s=TIMEOUT)
    membership.learn(member(2), 0.0)
    membership.tick(TIMEOUT + 0.1)
    assert membership.state(node_id(1)) == State.ALIVE and membership.state(node_id(2)) == State.SUSPECT
    membership.tick(2 * TIMEOUT + 0.1)
    assert membership.state(node_id(1)) == State.SUSPECT
    # heard once, it is judged as any other: node_timeout from its last heartbeat
    membership.heartbeat(beat(1, 1), 2 * TIMEOUT + 0.2)
    membership.tick(3 * TIMEOUT + 0.3)
    assert membership.state(node_id(1)) == State.SUSPECT


def test_the_patience_ends_with_the_first_heartbeat():
    # heard within its patience, then silent: a crash right after a join is found node_timeout later
    membership = Membership(member(0), TIMEOUT)
    membership.learn(member(1), 0.0, patience_s=TIMEOUT)
    membership.heartbeat(beat(1, 1), 0.1)
    membership.tick(TIMEOUT + 0.2)
    assert membership.state(node_id(1)) != State.ALIVE      # (suspect, and dead: it is the only peer)


def test_a_node_first_heard_of_in_anothers_list_gets_the_same_patience():
    # this node's SUB to it is only opened now, and it may still be starting
    membership = view(peers=1)
    membership.heartbeat(beat(1, 1, gossip=(Gossip(member(3), 0, State.ALIVE),)), 0.5)
    membership.heartbeat(beat(1, 2), TIMEOUT + 0.5)         # (its reporter stays heard)
    membership.tick(TIMEOUT + 0.6)
    assert membership.state(node_id(3)) == State.ALIVE
    membership.heartbeat(beat(1, 3), 2 * TIMEOUT + 0.5)
    membership.tick(2 * TIMEOUT + 0.6)
    assert membership.state(node_id(3)) == State.SUSPECT


def test_a_node_first_heard_of_as_suspect_gets_no_patience():
    membership = view(peers=1)
    membership.heartbeat(beat(1, 1, gossip=(Gossip(member(3), 0, State.SUSPECT),)), 0.5)
    membership.heartbeat(beat(1, 2), TIMEOUT + 0.5)
    membership.tick(TIMEOUT + 0.6)
    assert membership.state(node_id(3)) == State.SUSPECT


def test_a_node_that_doubts_its_own_timeliness_suspects_later():
    # tick(silence_s=...): the bus passes (local health + 1) node timeouts (mesh/awareness.py)
    membership = view(peers=1)
    membership.heartbeat(beat(1, 1), 0.0)
    membership.tick(TIMEOUT + 0.1, silence_s=2 * TIMEOUT)
    assert membership.state(node_id(1)) == State.ALIVE
    membership.tick(2 * TIMEOUT + 0.1, silence_s=2 * TIMEOUT)
    assert membership.state(node_id(1)) != State.ALIVE      # (suspect, and dead: it is the only peer)


def test_a_silence_shorter_than_node_timeout_is_never_applied():
    membership = view(peers=1)
    membership.heartbeat(beat(1, 1), 0.0)
    membership.tick(TIMEOUT - 0.1, silence_s=TIMEOUT / 10)
    assert membership.state(node_id(1)) == State.ALIVE
