"""The stranded member's two sides (mesh/strand.py), values in: its own lease, and every member's verdict."""
from __future__ import annotations

from mesh.strand import CALL_EVERY, LISTEN_AFTER, LISTEN_FOR, SETTLE, STRANDED_AFTER, FarSilence, Stranding

TIMEOUT = 3.0
WATCHERS = ["w1", "w2", "w3"]
NEVER = float("-inf")


def fresh(now: float, **ages: float) -> dict[str, float]:
    """Each watcher's evidence: `now` less its age (0 unless given)."""
    return {w: now - ages.get(w, 0.0) for w in WATCHERS}


def test_a_member_is_stranded_once_a_watcher_gave_no_evidence_for_long():
    stranding = Stranding(TIMEOUT)
    stranding.watchers(WATCHERS, now=0.0)
    limit = STRANDED_AFTER * TIMEOUT
    now = 100.0
    assert not stranding.judge(now, fresh(now, w2=limit - 0.1), whole_map_answers=False)
    assert not stranding.calling(now, fresh(now, w2=TIMEOUT - 0.1))
    assert stranding.calling(now, fresh(now, w2=TIMEOUT + 0.1))
    assert stranding.judge(now, fresh(now, w2=limit + 0.1), whole_map_answers=False)
    assert stranding.since == now and stranding.calling(now, fresh(now))


def test_a_stranded_member_stays_so_until_every_watcher_and_the_whole_map_answer():
    stranding = Stranding(TIMEOUT)
    stranding.watchers(WATCHERS, now=0.0)
    now = 100.0
    assert stranding.judge(now, fresh(now, w1=STRANDED_AFTER * TIMEOUT + 1), whole_map_answers=True)
    # the watcher is heard again, but the whole map has not answered: still stranded
    assert stranding.judge(now + 1, fresh(now + 1), whole_map_answers=False)
    # the whole map answers, but a watcher is older than a node timeout: still stranded
    assert stranding.judge(now + 2, fresh(now + 2, w3=TIMEOUT + 0.1), whole_map_answers=True)
    assert not stranding.judge(now + 3, fresh(now + 3, w3=TIMEOUT), whole_map_answers=True)
    assert stranding.since is None


def test_a_new_watcher_is_counted_from_when_it_became_one():
    stranding = Stranding(TIMEOUT)
    stranding.watchers(WATCHERS, now=0.0)
    stranding.watchers([*WATCHERS, "w4"], now=50.0)     # a map gave it a new watcher, never heard yet
    evidence = {**fresh(50.0 + STRANDED_AFTER * TIMEOUT), "w4": NEVER}
    assert not stranding.judge(50.0 + STRANDED_AFTER * TIMEOUT, evidence, whole_map_answers=False)
    assert stranding.judge(50.0 + STRANDED_AFTER * TIMEOUT + 0.1, evidence, whole_map_answers=False)


def test_a_small_map_strands_no_one():
    stranding = Stranding(TIMEOUT)
    stranding.watchers(WATCHERS, now=0.0)
    assert stranding.judge(100.0, fresh(100.0, w1=100.0), whole_map_answers=False)
    stranding.watchers(None, now=100.0)
    assert stranding.since is None
    assert not stranding.judge(200.0, {}, whole_map_answers=False)
    assert not stranding.calling(200.0, {})


def verdict_time(silence: FarSilence, member: str, start: float, step: float = 0.25) -> float:
    """The first instant, stepping from `start`, at which `member`, reported all along, is held dead."""
    now = start
    while member not in silence.judge(now, {member}):
        now += step
        assert now < start + 100 * TIMEOUT
    return now


def test_a_member_reported_for_long_is_held_dead_after_listening_for_it():
    silence = FarSilence(TIMEOUT)
    silence.held("m", now=0.0)
    at = verdict_time(silence, "m", start=100.0)
    assert at == 100.0 + (LISTEN_AFTER + LISTEN_FOR) * TIMEOUT


def test_a_member_learned_to_hold_its_map_lately_is_judged_later():
    # its evidence from a watcher is counted from when that watcher became one, at the latest when
    # it took the map this node heard it hold: stranded STRANDED_AFTER timeouts after that
    silence = FarSilence(TIMEOUT)
    silence.held("m", now=99.0)
    at = verdict_time(silence, "m", start=100.0)
    assert at == 99.0 + (STRANDED_AFTER + 0.5 + LISTEN_FOR) * TIMEOUT
    assert at > 100.0 + (LISTEN_AFTER + LISTEN_FOR) * TIMEOUT


def test_no_verdict_on_a_member_whose_map_is_not_known_here():
    silence = FarSilence(TIMEOUT)
    assert all(silence.judge(100.0 + i, {"m"}) == [] for i in range(0, 100, 3))


def test_hearing_the_member_or_a_report_that_stops_starts_the_wait_over():
    silence = FarSilence(TIMEOUT)
    silence.held("m", now=0.0)
    assert silence.judge(100.0, {"m"}) == []
    silence.heard("m", now=105.0)
    assert verdict_time(silence, "m", start=105.0) == 105.0 + (LISTEN_AFTER + LISTEN_FOR) * TIMEOUT
    silence.forget("m")
    silence.held("m", now=0.0)
    assert silence.judge(200.0, {"m"}) == []
    assert silence.judge(200.0 + LISTEN_AFTER * TIMEOUT, set()) == []     # the reports stopped
    assert verdict_time(silence, "m", start=210.0) == 210.0 + (LISTEN_AFTER + LISTEN_FOR) * TIMEOUT


def test_the_roll_is_called_often_enough_for_the_lease_window():
    # answers to two calls at least fit in the lease's window (node_timeout less a heartbeat)
    assert 2 * CALL_EVERY * TIMEOUT < TIMEOUT - 0.25


def test_a_verdict_on_its_way_holds_back_the_proposer_until_it_is_due():
    silence = FarSilence(TIMEOUT)
    silence.held("m", now=0.0)
    silence.held("talker", now=0.0)
    assert not silence.awaited(100.0)
    silence.judge(100.0, {"m", "talker", "unknown"})
    due = 100.0 + (LISTEN_AFTER + LISTEN_FOR) * TIMEOUT
    assert silence.awaited(100.0) and silence.awaited(due + SETTLE * TIMEOUT - 0.1)
    assert not silence.awaited(due + SETTLE * TIMEOUT)
    # one heard meanwhile (alive somewhere: a one-way broken link, say) holds nothing back
    silence.forget("m")
    silence.heard("talker", now=101.0)
    assert not silence.awaited(102.0)
    # nor one whose map is not known here (no verdict comes)
    assert silence.judge(103.0, {"unknown"}) == [] and not silence.awaited(103.0)


def test_a_restarted_member_starts_stranded_until_its_watchers_and_the_whole_map_answer():
    # the process before may have been cut off and judged by its silence: a new one cannot know
    stranding = Stranding(TIMEOUT, restarted=True)
    stranding.watchers(WATCHERS, now=10.0)
    assert stranding.since == 10.0
    assert stranding.judge(10.5, fresh(10.5), whole_map_answers=False)
    assert not stranding.judge(10.6, fresh(10.6), whole_map_answers=True)
    # only the first map after the start: the next one strands no one
    stranding.watchers([*WATCHERS, "w4"], now=20.0)
    assert stranding.since is None
