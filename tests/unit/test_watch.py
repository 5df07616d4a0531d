"""Watchers: each member of a big map hears its 2 * SIDE ring neighbours; deaths are their verdict."""
from hypothesis import given, settings, strategies as st

from loadtest.ring_balance import node_id
from mesh import watch
from mesh.bus import STUCK_AFTER_TIMEOUTS
from mesh.membership import OUTSIDE_SILENCE_FACTOR, Died, Membership, Suspected
from mesh.messages import Gossip, Heartbeat, State
from mesh.slotmap import Member

TIMEOUT = 2.0
OUTSIDE_TIMEOUT = OUTSIDE_SILENCE_FACTOR * TIMEOUT      # a newcomer's silence before it is suspected


def member(index: int) -> Member:
    return Member(node_id(index), "127.0.0.1", 8080 + index, 18080 + index, 9080 + index)


def beat(index: int, seq: int, suspects: tuple[int, ...] = ()) -> Heartbeat:
    gossip = tuple(Gossip(member(s), 0, State.SUSPECT) for s in suspects)
    return Heartbeat(node_id(index), seq, 0, 1, b"d" * 20, member(index), gossip, 0, 0, 0.0)


def test_a_small_map_watches_everyone():
    ids = [node_id(i) for i in range(2 * watch.SIDE + 1)]
    assert watch.watchers(ids) is None
    assert watch.neighbours(ids, ids[0]) == frozenset(ids[1:])


@settings(max_examples=50, deadline=None)
@given(st.integers(2 * watch.SIDE + 2, 120), st.integers(0, 10_000))
def test_watchers_are_symmetric_fixed_in_number_and_agree_with_neighbours(members, salt):
    ids = [node_id(salt * 1000 + i) for i in range(members)]
    watchers = watch.watchers(ids)
    assert watchers is not None
    for node, group in watchers.items():
        assert len(group) == 2 * watch.SIDE and node not in group
        assert all(node in watchers[other] for other in group)
        assert group == watch.neighbours(ids, node)
        assert watch.watchers_in(sorted(ids), node) == group      # (the bisection finds the same)
    assert watch.watchers_in(sorted(ids), node_id(-1)) is None


def test_watchers_in_a_small_map_are_all_the_others():
    ids = sorted(node_id(i) for i in range(2 * watch.SIDE + 1))
    assert watch.watchers_in(ids, ids[3]) == frozenset(ids) - {ids[3]}


def test_a_join_changes_only_the_watchers_around_it():
    ids = [node_id(i) for i in range(40)]
    before = watch.watchers(ids)
    after = watch.watchers(ids + [node_id(99)])
    changed = [n for n in ids if before[n] != after[n]]
    assert len(changed) == 2 * watch.SIDE


def watched_view(me: int, members: int) -> Membership:
    membership = Membership(member(me), TIMEOUT)
    for other in range(members):
        if other != me:
            membership.learn(member(other), 0.0)
    membership.watch(watch.watchers(node_id(i) for i in range(members)), 0.0)
    return membership


def test_only_watched_members_are_suspected_on_silence():
    membership = watched_view(0, 20)
    membership.tick(TIMEOUT + 0.1)
    suspects = {n for n, p in membership.peers.items() if p.state == State.SUSPECT}
    assert suspects == set(membership.watchers[node_id(0)])


def test_a_member_is_dead_once_a_majority_of_its_watchers_suspect_it_even_unwatched_here():
    members = 20
    ids = sorted(node_id(i) for i in range(members))
    index = {node_id(i): i for i in range(members)}
    target = ids[10]
    groups = watch.watchers(ids)
    outsider = next(n for n in ids if n != target and n not in groups[target])
    membership = watched_view(index[outsider], members)
    reporters = sorted(groups[target])
    events = []
    for seq, reporter in enumerate(reporters[:watch.SIDE], start=1):     # 4 of 8: not yet
        events += membership.heartbeat(beat(index[reporter], seq, (index[target],)), 0.5)
    assert membership.peers[target].state == State.ALIVE and not events
    # A member that is no watcher of the target counts for nothing.
    other = next(n for n in ids if n not in groups[target] and n not in (target, outsider))
    assert membership.heartbeat(beat(index[other], 1, (index[target],)), 0.6) == []
    assert membership.heartbeat(beat(index[reporters[watch.SIDE]], 9, (index[target],)), 0.7) == [Died(target)]


def test_a_peer_newly_watched_gets_a_node_timeouts_grace():
    membership = watched_view(0, 20)
    far = next(n for n in membership.peers if not membership.watches(n))
    membership.tick(10.0)       # unwatched: never suspected on silence
    assert membership.peers[far].state == State.ALIVE
    membership.watch(None, 10.0)      # the map shrank: everyone is watched now
    membership.tick(10.0 + TIMEOUT / 2)
    assert membership.peers[far].state == State.ALIVE
    membership.tick(10.0 + TIMEOUT + 0.1)
    assert membership.peers[far].state != State.ALIVE


@settings(max_examples=50, deadline=None)
@given(st.integers(2 * watch.SIDE + 1, 120), st.integers(0, 10_000))
def test_a_member_outside_the_map_is_watched_by_the_watchers_it_would_have_as_a_member(members, salt):
    ids = sorted(node_id(salt * 1000 + i) for i in range(members))
    newcomer = node_id(salt * 1000 + members)
    assert watch.watchers_outside(ids, newcomer) == watch.neighbours(ids + [newcomer], newcomer)
    assert len(watch.watchers_outside(ids, newcomer)) == 2 * watch.SIDE


def test_a_member_outside_a_small_map_is_watched_by_all_of_it():
    ids = sorted(node_id(i) for i in range(2 * watch.SIDE))
    assert watch.watchers_outside(ids, node_id(99)) == frozenset(ids)


def newcomer_view(me: int, members: int, newcomer: int) -> Membership:
    """`me`'s view of a map of `members` members and of `newcomer`, outside the map, just heard."""
    membership = watched_view(me, members)
    membership.heartbeat(beat(newcomer, 1), 0.0)
    return membership


def outside_watcher_view(members: int, newcomer: int) -> Membership:
    """The view of the first (lowest id) of the map members that watch `newcomer` from outside."""
    ids = sorted(node_id(i) for i in range(members))
    first = min(watch.watchers_outside(ids, node_id(newcomer)))
    return newcomer_view(next(i for i in range(members) if node_id(i) == first), members, newcomer)


def test_a_newcomer_is_suspected_on_silence_only_by_its_watchers_and_dies_by_a_majority_of_them():
    # Watched by every member, a newcomer that stalled while it started (100 nodes on 2 cores)
    # was suspected by each of them, and each suspicion was news to every member.
    members, newcomer = 30, 99
    ids = sorted(node_id(i) for i in range(members))
    index = {node_id(i): i for i in range(members)}
    group = watch.watchers_outside(ids, node_id(newcomer))
    suspecting = [i for i in range(members) if Suspected(node_id(newcomer)) in newcomer_view(i, members, newcomer)
                  .tick(OUTSIDE_TIMEOUT + 0.1)]
    assert {node_id(i) for i in suspecting} == group
    # A member that is none of its watchers hears the verdict from them: 4 of 8 is not yet one.
    judge = next(i for i in range(members) if node_id(i) not in group)
    membership = newcomer_view(judge, members, newcomer)
    reporters = sorted(group)
    for seq, reporter in enumerate(reporters[:watch.SIDE], start=1):
        assert membership.heartbeat(beat(index[reporter], seq, (newcomer,)), 0.5) == []
    other = next(n for n in ids if n not in group and n != node_id(judge))
    assert membership.heartbeat(beat(index[other], 1, (newcomer,)), 0.6) == []     # (no watcher of it)
    assert Died(node_id(newcomer)) in membership.heartbeat(beat(index[reporters[watch.SIDE]], 9, (newcomer,)), 0.7)


def test_a_newcomer_gets_twice_a_members_silence_before_it_is_suspected():
    # A newcomer starting up on a machine busy with its join runs late; it holds no slots and no
    # lease, so it waits twice the node timeout. The members beside it keep the node timeout.
    newcomer = 99
    watcher = outside_watcher_view(30, newcomer)
    early = watcher.tick(TIMEOUT + 0.1)
    assert Suspected(node_id(newcomer)) not in early
    assert any(isinstance(event, Suspected) for event in early)     # (its silent watched members)
    assert watcher.state(node_id(newcomer)) == State.ALIVE
    assert Suspected(node_id(newcomer)) in watcher.tick(OUTSIDE_TIMEOUT + 0.1)


def test_in_a_big_map_only_what_a_member_saw_itself_is_news_for_every_member():
    members, newcomer = 30, 99
    ids = sorted(node_id(i) for i in range(members))
    index = {node_id(i): i for i in range(members)}
    group = watch.watchers_outside(ids, node_id(newcomer))
    news_s = 1.0
    # A member learned from another's list is not news to tell again; its own hello is.
    judge = next(i for i in range(members) if node_id(i) not in group)
    membership = watched_view(judge, members)
    teller = next(i for i in range(members) if i != judge)
    membership.heartbeat(beat(teller, 1, ()), 5.0)
    listed = Heartbeat(node_id(teller), 2, 0, 1, b"d" * 20, member(teller), (Gossip(member(newcomer), 0, State.ALIVE),),
                       0, 0, 0.0)
    membership.heartbeat(listed, 5.0)
    assert node_id(newcomer) in membership.peers and not membership.has_news(5.0, news_s)
    introduced = watched_view(judge, members)
    introduced.learn(member(newcomer), 5.0, tell=True)
    assert introduced.has_news(5.0, news_s)
    # Its death counted from its watchers' reports is not news here (they told everyone); a
    # watcher's own suspicion is, and so is taking it back.
    membership.heartbeat(beat(newcomer, 1), 5.0)
    for seq, reporter in enumerate(sorted(group)[:watch.SIDE + 1], start=3):
        membership.heartbeat(beat(index[reporter], seq, (newcomer,)), 10.0)
    assert membership.state(node_id(newcomer)) == State.DEAD and not membership.has_news(10.0, news_s)
    watcher = newcomer_view(index[min(group)], members, newcomer)
    assert Suspected(node_id(newcomer)) in watcher.tick(OUTSIDE_TIMEOUT + 0.1)
    assert watcher.has_news(OUTSIDE_TIMEOUT + 0.1, news_s) and not watcher.has_news(OUTSIDE_TIMEOUT + 1.2, news_s)
    watcher.heartbeat(beat(newcomer, 2), OUTSIDE_TIMEOUT + 2.0)
    assert watcher.has_news(OUTSIDE_TIMEOUT + 2.0, news_s)


def test_a_member_that_told_its_suspicion_tells_its_taking_back_also_when_it_no_longer_watches():
    # Others keep its report until its next word to them: a watcher that a map moved away from a
    # newcomer (a member admitted beside it) took its suspicion back to its own watchers only,
    # and the proposer left the newcomer out for good (review, reproduced in the simulation).
    members, newcomer = 30, 99
    ids = sorted(node_id(i) for i in range(members))
    index = {node_id(i): i for i in range(members)}
    watcher = newcomer_view(index[min(watch.watchers_outside(ids, node_id(newcomer)))], members, newcomer)
    assert Suspected(node_id(newcomer)) in watcher.tick(OUTSIDE_TIMEOUT + 0.1)
    watcher.watch({}, OUTSIDE_TIMEOUT + 0.2)      # (a map in which it watches the newcomer no more)
    assert not watcher.watches(node_id(newcomer))
    watcher.heartbeat(beat(newcomer, 2), OUTSIDE_TIMEOUT + 5.0)
    assert watcher.state(node_id(newcomer)) == State.ALIVE and watcher.has_news(OUTSIDE_TIMEOUT + 5.0, 1.0)
    # One that never told a suspicion of it has nothing to take back.
    judge = next(i for i in range(members) if node_id(i) not in watch.watchers_outside(ids, node_id(newcomer)))
    other = newcomer_view(judge, members, newcomer)
    for seq, reporter in enumerate(sorted(watch.watchers_outside(ids, node_id(newcomer)))[:watch.SIDE + 1], start=3):
        other.heartbeat(beat(index[reporter], seq, (newcomer,)), 10.0)
    assert other.state(node_id(newcomer)) == State.DEAD
    other.heartbeat(Heartbeat(node_id(newcomer), 5, 1, 1, b"d" * 20, member(newcomer), (), 0, 0, 0.0), 20.0)
    assert other.state(node_id(newcomer)) == State.ALIVE and not other.has_news(20.0, 1.0)


def test_only_a_newcomer_s_watchers_reports_keep_it_out():
    members, newcomer = 30, 99
    ids = sorted(node_id(i) for i in range(members))
    index = {node_id(i): i for i in range(members)}
    group = watch.watchers_outside(ids, node_id(newcomer))
    judge = next(i for i in range(members) if node_id(i) not in group)
    membership = newcomer_view(judge, members, newcomer)
    stranger = next(n for n in ids if n not in group and n != node_id(judge))
    membership.heartbeat(beat(index[stranger], 1, (newcomer,)), 0.5)
    assert not membership.reported_by_watchers_test()(node_id(newcomer))
    membership.heartbeat(beat(index[min(group)], 1, (newcomer,)), 0.6)
    assert membership.reported_by_watchers_test()(node_id(newcomer))


def test_a_member_outside_the_map_keeps_its_verdict_when_a_map_is_adopted():
    # revisit() recounts the deaths of members whose lease a new map may count; one outside the
    # map has none there, and a map that moved its outside watchers must not make it suspect again.
    members, newcomer = 30, 99
    ids = sorted(node_id(i) for i in range(members))
    index = {node_id(i): i for i in range(members)}
    group = watch.watchers_outside(ids, node_id(newcomer))
    membership = newcomer_view(next(i for i in range(members) if node_id(i) not in group), members, newcomer)
    for seq, reporter in enumerate(sorted(group)[:watch.SIDE + 1], start=3):
        membership.heartbeat(beat(index[reporter], seq, (newcomer,)), 1.0)
    assert membership.state(node_id(newcomer)) == State.DEAD
    others = [node_id(i) for i in range(members)] + [node_id(200 + i) for i in range(10)]
    for extra in range(10):
        membership.learn(member(200 + extra), 1.5)
    membership.watch(watch.watchers(others), 2.0)
    assert watch.watchers_outside(sorted(others), node_id(newcomer)) != group
    assert membership.revisit(2.0) == [] and membership.state(node_id(newcomer)) == State.DEAD


def test_a_member_whose_watchers_crashed_with_it_keeps_its_whole_electorate():
    # A map member's lease counts all its watchers (mesh/watch.py): a judge among them that sees 4
    # others of them and the member fall silent, and the other 3 report it, holds it suspect and
    # never dead, also past the time after which such a member is named as stuck.
    members = 30
    ids = sorted(node_id(i) for i in range(members))
    index = {node_id(i): i for i in range(members)}
    target = ids[12]
    group = watch.watchers(ids)[target]
    judge = next(n for n in sorted(group) if len(group & watch.watchers(ids)[n]) > watch.SIDE)
    crashed = sorted(group & watch.watchers(ids)[judge])[:watch.SIDE]
    reporting = sorted(group - set(crashed) - {judge})
    assert len(reporting) == watch.SIDE - 1
    membership = watched_view(index[judge], members)
    events: list = []
    for seq, step in enumerate(range(1, 4 * (STUCK_AFTER_TIMEOUTS + 3)), start=2):
        now = step * TIMEOUT / 4
        for n in ids:
            if n not in crashed and n not in (judge, target):
                membership.heartbeat(beat(index[n], seq, (index[target],) if n in reporting and now > TIMEOUT
                                          else ()), now)
        events.extend(membership.tick(now))
        if step == 6:       # (1.5 node timeouts)
            assert Suspected(target) in events and membership.state(target) == State.SUSPECT
    assert Died(target) not in events


def test_a_newcomer_waits_twice_the_node_timeout_not_twice_this_nodes_own_lateness():
    # Scaled by this node's lateness (mesh/awareness.py) past twice the node timeout, a newcomer
    # gets that, not double it: multiplied, a crashed newcomer was found after up to 10 node
    # timeouts (review).
    newcomer = 99
    watcher = outside_watcher_view(30, newcomer)
    late = 3 * TIMEOUT
    assert Suspected(node_id(newcomer)) not in watcher.tick(late - 0.1, silence_s=late)
    assert Suspected(node_id(newcomer)) in watcher.tick(late + 0.1, silence_s=late)
