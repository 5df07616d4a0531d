"""Map elections: Paxos per base map; one vote per member per ballot, commit on a majority of the base's members."""
from dataclasses import replace

from hypothesis import example, given, settings, strategies as st

from loadtest.ring_balance import node_id
from mesh.election import Election, Ready, changes, plan, proposer
from mesh.messages import digest
from mesh.slotmap import Member, SlotMap


def member(index: int) -> Member:
    return Member(node_id(index), "127.0.0.1", 8080 + index, 18080 + index, 9080 + index)


def cluster(size: int = 3) -> SlotMap:
    slotmap = SlotMap.single(member(0), 2)
    for index in range(1, size):
        slotmap = slotmap.with_member(member(index))
    return slotmap


def test_proposer_is_the_lowest_live_member():
    current = cluster()
    ids = sorted(m.node_id for m in current.members)
    assert proposer(current, set(ids).__contains__) == ids[0]
    assert proposer(current, set(ids[1:]).__contains__) == ids[1]
    assert proposer(current, set(ids[:1]).__contains__) == ids[0]
    assert proposer(current, set().__contains__) is None


def test_plan_removes_dead_and_adds_joining_at_the_given_epoch():
    current = cluster()
    candidate = plan(current, [node_id(1)], [member(7)], current.epoch + 3)
    assert candidate.epoch == current.epoch + 3
    assert not candidate.has_member(node_id(1)) and candidate.has_member(node_id(7))
    assert plan(current, [], [member(0)], 9) is None


class Cluster:
    """Elections of several nodes, each with its own current map; messages delivered only where a test says."""

    def __init__(self, current: SlotMap) -> None:
        self.nodes = {m.node_id: Election(m.node_id, voted_epoch=current.epoch) for m in current.members}
        self.current = {node: current for node in self.nodes}
        self.committed: dict[int, set[bytes]] = {}   # epoch -> digests committed by anyone
        self.successors: dict[int, set[bytes]] = {}  # base epoch -> digests committed on it

    def commit(self, node: str, slotmap: SlotMap) -> None:
        self.committed.setdefault(slotmap.epoch, set()).add(digest(slotmap))
        self.successors.setdefault(self.current[node].epoch, set()).add(digest(slotmap))
        if slotmap.epoch > self.current[node].epoch:
            self.current[node] = slotmap
            self.nodes[node].committed(slotmap)

    def run(self, proposer: str, promisers, voters, counters, want) -> SlotMap | None:
        """One ballot: prepare to `promisers`, propose to `voters`, votes to `counters`; return what it proposed."""
        election, current = self.nodes[proposer], self.current[proposer]
        ballot = election.prepare(current)
        ready = None
        for node in promisers:
            answer = self.nodes[node].promise(ballot, current.epoch, self.current[node])
            if answer is not None:
                ready = election.promised(node, ballot, current.epoch, *answer, current) or ready
        if ready is None:
            return None
        candidate = ready.carried or want(current, ballot)
        if candidate is None:
            return None
        d = digest(candidate)
        cast = [node for node in voters
                if self.nodes[node].consider(candidate, d, ballot, current.epoch, self.current[node], True)]
        for counter in counters:
            self.nodes[counter].consider(candidate, d, ballot, current.epoch, self.current[counter], False)
            for voter in cast:
                winner = self.nodes[counter].tally(voter, ballot, current.epoch, d, self.current[counter])
                if winner is not None:
                    self.commit(counter, winner)
        return candidate


def test_changes_says_whether_plan_makes_a_map_without_building_one():
    current = cluster(3)
    newcomer = member(7)
    for dead, joining in [([], []), ([node_id(1)], []), ([], [newcomer]), ([node_id(9)], []),
                          ([], [member(0)]), ([node_id(1)], [newcomer])]:
        assert changes(current, dead, joining) == (plan(current, dead, joining, 5) is not None), (dead, joining)
    alone = cluster(1)
    assert not changes(alone, [node_id(0)], []) and plan(alone, [node_id(0)], [], 5) is None


def test_majority_commits_and_minority_does_not():
    current = cluster(3)
    a, b, c = (node_id(i) for i in range(3))
    election = Election(a)
    ballot = election.prepare(current)
    assert election.promise(ballot, current.epoch, current) == (0, None)
    assert election.promised(a, ballot, current.epoch, 0, None, current) is None
    assert election.promised(node_id(7), ballot, current.epoch, 0, None, current) is None  # not a member
    assert election.promised(b, ballot, current.epoch, 0, None, current) == Ready(ballot, None)
    candidate = plan(current, [c], [], ballot)
    d = digest(candidate)
    assert election.consider(candidate, d, ballot, current.epoch, current, acceptable=True)
    assert election.tally(a, ballot, current.epoch, d, current) is None
    assert election.tally(node_id(7), ballot, current.epoch, d, current) is None  # not a member
    assert election.tally(b, ballot, current.epoch, d, current) == candidate


def test_votes_may_arrive_before_the_proposal():
    current = cluster(3)
    candidate = plan(current, [node_id(2)], [], current.epoch + 1)
    d = digest(candidate)
    election = Election(node_id(2))
    election.tally(node_id(0), candidate.epoch, current.epoch, d, current)
    election.tally(node_id(1), candidate.epoch, current.epoch, d, current)
    election.consider(candidate, d, candidate.epoch, current.epoch, current, acceptable=False)
    assert election.winner(candidate.epoch, current.epoch, d, current) == candidate


def test_a_member_votes_once_per_ballot_and_never_below_its_promise():
    current = cluster(3)
    first = plan(current, [node_id(2)], [], current.epoch + 1)
    rival = plan(current, [node_id(1)], [], current.epoch + 1)
    election = Election(node_id(0))
    assert election.consider(first, digest(first), first.epoch, current.epoch, current, True)
    assert not election.consider(rival, digest(rival), rival.epoch, current.epoch, current, True)
    assert election.promise(current.epoch + 3, current.epoch, current) == (first.epoch, first)
    assert election.promise(current.epoch + 3, current.epoch, current) is None   # one promise per ballot
    later = plan(current, [node_id(1)], [], current.epoch + 2)
    assert not election.consider(later, digest(later), later.epoch, current.epoch, current, True)
    latest = plan(current, [node_id(1)], [], current.epoch + 3)
    assert election.consider(latest, digest(latest), latest.epoch, current.epoch, current, True)


def test_no_vote_or_promise_on_another_base_or_when_not_acceptable():
    current = cluster(3)
    candidate = plan(current, [node_id(2)], [], current.epoch + 1)
    election = Election(node_id(0))
    assert not election.consider(candidate, digest(candidate), candidate.epoch, current.epoch - 1, current, True)
    assert not election.consider(candidate, digest(candidate), candidate.epoch, current.epoch, current, False)
    assert election.promise(candidate.epoch, current.epoch + 1, current) is None


def test_a_carried_map_is_voted_for_without_the_membership_check():
    """A map some member voted for may have been chosen: the next ballot carries it even if the voter now disagrees."""
    current = cluster(3)
    carried = plan(current, [node_id(2)], [], current.epoch + 1)
    election = Election(node_id(1))
    assert election.consider(carried, digest(carried), carried.epoch + 1, current.epoch, current, False)


def test_first_vote_of_a_voter_is_the_one_counted():
    current = cluster(3)
    first = plan(current, [node_id(2)], [], current.epoch + 1)
    rival = plan(current, [node_id(1)], [], current.epoch + 1)
    election = Election(node_id(0))
    election.consider(rival, digest(rival), rival.epoch, current.epoch, current, False)
    election.tally(node_id(1), first.epoch, current.epoch, digest(first), current)
    assert election.tally(node_id(1), rival.epoch, current.epoch, digest(rival), current) is None
    assert election.tally(node_id(0), rival.epoch, current.epoch, digest(rival), current) is None


def test_the_proposer_carries_forward_the_map_voted_at_the_highest_ballot():
    current = cluster(5)
    older = plan(current, [node_id(4)], [], current.epoch + 1)
    newer = plan(current, [node_id(3)], [], current.epoch + 2)
    election = Election(node_id(0), voted_epoch=current.epoch + 2)
    ballot = election.prepare(current)
    election.promised(node_id(0), ballot, current.epoch, 0, None, current)
    election.promised(node_id(1), ballot, current.epoch, older.epoch, older, current)
    assert election.promised(node_id(2), ballot, current.epoch, newer.epoch, newer, current) == Ready(ballot, newer)


def test_a_member_that_missed_a_commit_cannot_help_commit_a_rival_map_at_the_next_epoch():
    """Split brain from two quorums counted against two different current maps.

    M5 = {A..E}. A, B, C commit M6 = {A, B, C} at epoch 6; B voted for it but missed the commit.
    The partition shifts to {A, C} | {B, D, E}: B, D, E try X = {B, D, E} on base 5 (3 of 5 of M5),
    A, C try Y = {A, C} on base 6 (2 of 3 of M6). At most one map may commit at any epoch.
    """
    m5 = replace(cluster(5), epoch=5)
    a, b, c, d, e = (node_id(i) for i in range(5))
    sim = Cluster(m5)
    m6 = sim.run(a, [a, b, c], [a, b, c], [a, c], lambda base, ballot: plan(base, [d, e], [], ballot))
    assert m6.epoch == 6 and sim.current[a] == sim.current[c] == m6 and sim.current[b] == m5

    x = lambda base, ballot: plan(base, [a, c], [], ballot)
    for _ in range(3):   # D retries as proposer until a ballot gets through
        sim.run(d, [b, d, e], [b, d, e], [b, d, e], x)
    sim.run(a, [a, c], [a, c], [a, c], lambda base, ballot: plan(base, [b], [], ballot))
    assert all(len(digests) == 1 for digests in sim.committed.values()), sim.committed
    # B's vote for M6 was carried forward: the {B, D, E} side committed M6 too, not X.
    assert sim.current[b] == sim.current[d] == m6 and sim.current[a].epoch == 7


def test_a_split_ballot_followed_by_a_new_proposal_still_commits():
    """Votes split between two proposals (a proposer died mid-vote): the next ballot commits one map."""
    current = cluster(5)
    n = [node_id(i) for i in range(5)]
    sim = Cluster(current)
    drop4 = lambda base, ballot: plan(base, [n[4]], [], ballot)
    drop3 = lambda base, ballot: plan(base, [n[3]], [], ballot)
    # Proposer 0 reaches 0, 1, 2 with its prepare but only 0 and 1 with its proposal, then dies.
    first = sim.run(n[0], n[:3], n[:2], [], drop4)
    assert first is not None and sim.committed == {}
    # Proposer 1 reaches 1, 2, 3: 1 reports its vote, so 1, 2, 3 vote for the same map and commit it.
    carried = sim.run(n[1], n[1:4], n[1:4], n[1:4], drop3)
    assert carried == first
    assert all(sim.current[node] == first for node in n[1:4])
    assert sim.committed == {first.epoch: {digest(first)}}


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sets(st.integers(0, 4)), st.sets(st.integers(0, 4)),
                          st.sets(st.integers(0, 4)), st.integers(0, 4), st.sets(st.integers(0, 4))),
                max_size=25))
def test_two_different_maps_never_commit_in_one_epoch(steps):
    """Five members, any proposer, any loss of prepares, proposals, votes and commits: one map per epoch, no fork."""
    start = cluster(5)
    n = [node_id(i) for i in range(5)]
    sim = Cluster(start)
    for proposer_index, promisers, voters, counters, removed, caught_up in steps:
        proposer = n[proposer_index]
        sim.run(proposer, [n[i] for i in sorted(promisers | {proposer_index})],
                [n[i] for i in sorted(voters | {proposer_index})], [n[i] for i in sorted(counters)],
                lambda base, ballot: plan(base, [n[removed]], [], ballot)
                or plan(base, [], [start.members[removed]], ballot))
        # Commits re-sent to some members, as the bus does on a stale heartbeat.
        newest = max(sim.current.values(), key=lambda m: m.epoch)
        for i in caught_up:
            if newest.supersedes(sim.current[n[i]]):
                sim.current[n[i]] = newest
                sim.nodes[n[i]].committed(newest)
    assert all(len(digests) == 1 for digests in sim.committed.values()), sim.committed
    # And no fork: every committed map has one committed successor.
    assert all(len(digests) == 1 for digests in sim.successors.values()), sim.successors


def test_committed_forgets_old_ballots():
    current = cluster(3)
    candidate = plan(current, [node_id(2)], [], current.epoch + 1)
    election = Election(node_id(0))
    election.consider(candidate, digest(candidate), candidate.epoch, current.epoch, current, True)
    election.tally(node_id(0), candidate.epoch, current.epoch, digest(candidate), current)
    election.committed(candidate)
    assert election.candidates == {} and election.votes == {}
    assert election.voted_epoch == candidate.epoch


def test_joiners_are_admitted_together_once_each_holds_its_slots():
    from mesh.election import admissible
    a, b = node_id(7), node_id(8)
    assert admissible(5, [a, b], {a: (5, 100, 100), b: (5, 80, 80)}, ()) == [a, b]
    assert admissible(5, [a, b], {a: (5, 100, 100), b: (5, 80, 79)}, ()) == []     # b still copying
    assert admissible(5, [a], {a: (4, 100, 100)}, ()) == []          # planned on an older map
    assert admissible(5, [a], {}, ()) == []                          # nothing said yet
    # a copy that stopped moving does not hold the join back: it pulls what it lacks
    assert admissible(5, [a, b], {a: (5, 100, 100), b: (5, 80, 3)}, {b}) == [a, b]
    assert admissible(5, [], {}, ()) == []


@settings(max_examples=25, deadline=None)
@example(size=2, replication_factor=1, dead={1}, joining={1})   # (dead and joining again: a new map all the same)
@given(size=st.integers(1, 24), replication_factor=st.integers(1, 3),
       dead=st.sets(st.integers(0, 30), max_size=3), joining=st.sets(st.integers(0, 40), max_size=4))
def test_plan_makes_the_map_that_leaves_and_joins_one_at_a_time_make(size, replication_factor, dead, joining):
    # (plan places the ring member by member and derives the map once: the same map, slot for slot)
    current = SlotMap.single(member(0), replication_factor)
    for index in range(1, size):
        current = current.with_member(member(index))
    dead_ids = sorted(node_id(index) for index in dead)
    joiners = sorted((member(index) for index in joining), key=lambda m: m.node_id)
    stepwise = current
    for gone in dead_ids:
        if stepwise.has_member(gone) and len(stepwise.members) > 1:
            stepwise = stepwise.without_member(gone)
    for joiner in joiners:
        if not stepwise.has_member(joiner.node_id):
            stepwise = stepwise.with_member(joiner)
    planned = plan(current, dead_ids, joiners, current.epoch + 5)
    if stepwise is current:
        assert planned is None
    else:
        assert planned == replace(stepwise, epoch=current.epoch + 5, base_epoch=current.epoch)
        assert planned.owners == stepwise.owners
