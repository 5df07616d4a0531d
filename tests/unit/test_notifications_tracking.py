"""Pure cores of keyspace notifications (event names, class flags) and of client tracking (the table)."""
from __future__ import annotations

import pytest

from hypercache import notifications as kn
from hypercache.commands import TABLE, load_all
from hypercache.reply import Push
from hypercache.session import Session
from hypercache.tracking import ClientTracking, Tracking


@pytest.mark.parametrize("typed, shown", [
    (b"KEA", b"AKE"), (b"Kx$", b"$xK"), (b"Egn", b"gnE"), (b"KEAnm", b"AKEm"), (b"", b""), (b"Ag", b"A"),
])
def test_flags_are_shown_as_redis_normalizes_them(typed, shown):
    assert kn.format_flags(kn.parse_flags(typed)) == shown


def test_a_letter_redis_does_not_know_is_refused():
    with pytest.raises(ValueError, match="Invalid event class character"):
        kn.parse_flags(b"KEq")


def test_nothing_is_published_without_a_channel_kind_or_a_class():
    assert not kn.active(kn.parse_flags(b"A")) and not kn.active(kn.parse_flags(b"KE"))
    assert kn.active(kn.parse_flags(b"Kg"))


def test_events_follow_redis_order():
    # LMOVE: the push on the destination, the pop on the source, then "del" for the emptied source
    assert kn.events_of(b"lmove", [b"LMOVE", b"a", b"b", b"LEFT", b"RIGHT"], [b"a", b"b"], {b"a"}, b"x") == [
        (kn.LIST, b"rpush", b"b"), (kn.LIST, b"lpop", b"a"), (kn.GENERIC, b"del", b"a")]
    # SET with a TTL option: set, then expire; a SET that changed nothing (NX) emits nothing
    assert kn.events_of(b"set", [b"SET", b"k", b"v", b"px", b"5"], [b"k"], set(), b"OK") == [
        (kn.STRING, b"set", b"k"), (kn.GENERIC, b"expire", b"k")]
    assert kn.events_of(b"set", [b"SET", b"k", b"v", b"NX"], [], set(), None) == []
    # a *STORE with an empty result deletes its destination
    assert kn.events_of(b"sinterstore", [b"SINTERSTORE", b"d", b"a"], [b"d"], {b"d"}, 0) == [
        (kn.GENERIC, b"del", b"d")]


def test_new_comes_before_the_first_event_of_its_key_but_before_everything_for_rename():
    events = [(kn.STRING, b"set", b"a"), (kn.STRING, b"set", b"b")]
    assert kn.place_new(b"mset", [b"a", b"b"], events) == [
        (kn.NEW, b"new", b"a"), events[0], (kn.NEW, b"new", b"b"), events[1]]
    renamed = [(kn.GENERIC, b"rename_from", b"a"), (kn.GENERIC, b"rename_to", b"b")]
    assert kn.place_new(b"rename", [b"b"], renamed) == [(kn.NEW, b"new", b"b")] + renamed


def test_every_write_command_with_an_event_in_redis_has_a_rule():
    load_all()
    writes = {name for name, cmd in TABLE.items() if cmd.write}
    # writes Redis announces nothing for, or that are not per key
    silent = {b"flushall", b"flushdb", b"swapdb", b"function", b"pfcount"}
    assert writes - set(kn.RULES) - silent == set()


def _tracker(sid: int, clients: dict, tracking: Tracking, **options) -> Session:
    session = Session(id=sid, protocol=3)
    clients[sid] = session
    tracking.enable(session, ClientTracking(**options))
    return session


def test_a_read_key_is_invalidated_once_and_the_table_is_bounded():
    sent: list = []
    clients: dict = {}
    tracking = Tracking(lambda session, push: sent.append((session.id, push)), clients)
    reader = _tracker(1, clients, tracking)
    tracking.remember(reader, [b"a", b"b"])
    tracking.invalidate(b"a")
    tracking.invalidate(b"a")
    assert sent == [(1, Push([b"invalidate", [b"a"]]))]
    tracking.max_keys = 2
    tracking.remember(reader, [b"c", b"d"])         # b, c, d: one too many, the oldest goes
    assert list(tracking.table) == [b"c", b"d"] and sent[-1] == (1, Push([b"invalidate", [b"b"]]))
    assert reader.lane_off
    tracking.disable(reader)
    assert not reader.lane_off and tracking.tracking_clients == 0


def test_bcast_prefixes_and_noloop():
    sent: list = []
    clients: dict = {}
    tracking = Tracking(lambda session, push: sent.append((session.id, push)), clients)
    watcher = _tracker(1, clients, tracking, bcast=True, prefixes=[b"user:"], noloop=True)
    tracking.invalidate(b"user:1")
    tracking.invalidate(b"job:1")
    tracking.current = watcher                      # its own write: nothing for it (NOLOOP)
    tracking.invalidate(b"user:2")
    tracking.current = None
    assert sent == []                               # nothing before the loop turn ends
    tracking.flush_broadcast()
    assert sent == [(1, Push([b"invalidate", [b"user:1"]]))] and not tracking.broadcast


def test_bcast_sends_one_sorted_invalidation_per_loop_turn():
    sent: list = []
    clients: dict = {}
    tracking = Tracking(lambda session, push: sent.append((session.id, push)), clients)
    _tracker(1, clients, tracking, bcast=True)
    _tracker(2, clients, tracking, bcast=True, prefixes=[b"b", b"a"])
    for key in (b"b", b"c", b"a", b"b"):
        tracking.invalidate(key)
    tracking.flush_broadcast()
    assert sorted(sent) == [(1, Push([b"invalidate", [b"a", b"b", b"c"]])), (2, Push([b"invalidate", [b"a"]])),
                            (2, Push([b"invalidate", [b"b"]]))]


def test_the_replicator_hears_at_once_when_this_node_starts_or_stops_wanting_events():
    """KeyEvents.on_own fires when notify-keyspace-events starts or stops selecting something (a
    replica's primaries are then told in an ACK of their own, not with their next frame's ACK),
    and not when the flags change without changing that."""
    from hypercache.blocking import Blocking
    from hypercache.keyevents import KeyEvents
    from hypercache.store import Store
    events = KeyEvents(Store(), Blocking())
    heard = []
    events.on_own = lambda: heard.append(events.own)
    events.configure(kn.parse_flags(b"KEA"))
    events.configure(kn.parse_flags(b"Kg"))        # still selects something
    events.configure(kn.parse_flags(b"K"))         # a channel kind but no class: nothing
    events.configure(kn.parse_flags(b""))
    assert heard == [True, False]
