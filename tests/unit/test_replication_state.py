"""What CLUSTER SHARDS, CLUSTER REPLICAS, ROLE and the status page say of replication, from state values."""
from types import SimpleNamespace

import pytest

from hypercache.commands.cluster import nodes_reply, replicas_reply, shards_reply
from hypercache.replication_state import (NO_REPLICATION, Feed, Follow, ReplicationState, member_views, read,
                                          role_reply, summary)
from hypercache.reply import CommandError, encode, error_bytes
from hypercache.roles import replica_id
from loadtest.ring_balance import node_id
from mesh.replication import InStream, OutStream
from mesh.slotmap import Member, SlotMap

A, B, C = node_id(0), node_id(1), node_id(2)
MEMBER_OF = {replica_id(n): n for n in (A, B, C)}      # a replica endpoint's id -> its member


def member(index: int) -> Member:
    return Member(node_id(index), "127.0.0.1", 8080 + index, 18080 + index, 9080 + index)


def three(replication_factor: int = 2) -> SlotMap:
    return SlotMap.single(member(0), replication_factor).with_member(member(1)).with_member(member(2))


def alive(slotmap: SlotMap) -> dict:
    return {m.node_id: {"state": "alive", "last_heartbeat_age_s": 0.5} for m in slotmap.members}


def slots_led(slotmap: SlotMap, primary: str, replica: str) -> frozenset[int]:
    return frozenset(s for s, owners in enumerate(slotmap.owners) if owners[0] == primary and replica in owners[1:])


def feed(replica: str, slots: frozenset[int], sent: int, acked: int, copying: frozenset[int] = frozenset(),
         broken: bool = False) -> Feed:
    return Feed(replica, slots, sent, acked, sent - acked, not copying and not broken, copying, broken)


def caught_up(slotmap: SlotMap, me: str = A) -> ReplicationState:
    """`me` feeds both others (caught up) and follows both (applied something)."""
    others = [peer for peer in (A, B, C) if peer != me]
    feeds = {peer: feed(peer, slots_led(slotmap, me, peer), 10 + i, 10 + i) for i, peer in enumerate(others)}
    follows = {peer: Follow(peer, 7 + i) for i, peer in enumerate(others)}
    counters = {"writes_held": 5, "frames_applied": 9}
    return ReplicationState("sync", feeds, follows, frozenset(), frozenset(), counters, 0)


def entries(reply: list) -> dict[tuple[str, ...], list[tuple[int, bytes]]]:
    """shard owner list -> [(replication-offset, health)] per node, primary first."""
    return {tuple(MEMBER_OF.get(n[b"id"].decode(), n[b"id"].decode()) for n in shard[b"nodes"]):
            [(n[b"replication-offset"], n[b"health"]) for n in shard[b"nodes"]] for shard in reply}


# -- CLUSTER SHARDS ----------------------------------------------------------------------------

def test_caught_up_replicas_are_online_at_their_primarys_offset():
    slotmap = three()
    shards = entries(shards_reply(slotmap, alive(slotmap), member(0), caught_up(slotmap)))
    assert shards[(A, B)] == [(10, b"online"), (10, b"online")]
    assert shards[(A, C)] == [(11, b"online"), (11, b"online")]
    # as a replica this node knows what it applied of each primary's stream
    assert shards[(B, A)] == [(7, b"online"), (7, b"online")]
    assert shards[(C, A)] == [(8, b"online"), (8, b"online")]
    # a stream between two other nodes is not visible from here
    assert shards[(B, C)] == shards[(C, B)] == [(0, b"online"), (0, b"online")]


def test_a_replica_whose_copy_is_incomplete_is_loading_and_behind():
    slotmap = three()
    state = caught_up(slotmap)
    copying = frozenset(sorted(slots_led(slotmap, A, C))[:3])
    feeds = dict(state.feeds)
    feeds[C] = feed(C, slots_led(slotmap, A, C), 40, 31, copying)
    state = ReplicationState("sync", feeds, state.follows, frozenset(), frozenset(), {}, 2)
    shards = entries(shards_reply(slotmap, alive(slotmap), member(0), state))
    assert shards[(A, C)] == [(40, b"online"), (31, b"loading")]
    assert shards[(A, B)] == [(10, b"online"), (10, b"online")]

    report = summary(state, A, slotmap.owners)
    assert report["in_sync"] is False and report["not_in_sync"] == [C]
    assert (report["slots_behind"], report["streams"], report["streams_in_sync"]) == (3, 2, 1)
    assert report["lag_frames"] == 9 and report["clients_held"] == 2
    assert member_views(state, A, slotmap.owners, [C])[C]["feed"] == {
        "in_sync": False, "broken": False, "lag": 9, "sent": 40, "acked": 31,
        "slots": len(slots_led(slotmap, A, C)), "slots_copying": 3}


def test_a_broken_stream_or_a_missing_one_is_loading_for_all_its_slots():
    slotmap = three()
    state = caught_up(slotmap)
    feeds = {B: feed(B, slots_led(slotmap, A, B), 12, 5, broken=True)}      # none at all to C
    state = ReplicationState("sync", feeds, state.follows, frozenset(), frozenset(), {}, 0)
    shards = entries(shards_reply(slotmap, alive(slotmap), member(0), state))
    assert shards[(A, B)] == [(12, b"online"), (5, b"loading")]
    assert shards[(A, C)] == [(12, b"online"), (0, b"loading")]       # no stream: its offset is 0
    report = summary(state, A, slotmap.owners)
    led = sum(1 for owners in slotmap.owners if owners[0] == A)
    assert report["in_sync"] is False and report["slots_behind"] == led


def test_this_node_as_a_replica_is_loading_until_its_copy_is_complete():
    slotmap = three()
    state = caught_up(slotmap)
    receiving = frozenset(sorted(slots_led(slotmap, B, A))[:2])
    copying_in = ReplicationState("sync", state.feeds, state.follows, receiving, receiving, {}, 0)
    shards = entries(shards_reply(slotmap, alive(slotmap), member(0), copying_in))
    assert shards[(B, A)] == [(7, b"online"), (7, b"loading")]
    assert shards[(C, A)] == [(8, b"online"), (8, b"online")]
    report = summary(copying_in, A, slotmap.owners)
    assert report["in_sync"] is False and report["slots_receiving"] == 2
    assert report["slots_behind"] == report["slots_loading"] == 0
    views = member_views(copying_in, A, slotmap.owners, [A, B, C])
    assert views[B]["follow"] == {"applied": 7, "slots_receiving": 2}
    assert views[C]["follow"] == {"applied": 8, "slots_receiving": 0}
    assert views[A] == {"feed": None, "follow": None}


def test_a_restarted_node_is_loading_everywhere_until_it_holds_its_slots_again():
    # restarted with the same id: it holds nothing; it pulls the slots it leads, its
    # primaries copy it the ones it replicates
    slotmap = three()
    state = ReplicationState("sync", {}, {}, frozenset(), frozenset(range(16384)), {}, 0)
    shards = entries(shards_reply(slotmap, alive(slotmap), member(0), state))
    assert shards[(A, B)] == [(0, b"loading"), (0, b"loading")]      # not here, not copied out yet
    assert shards[(B, A)] == [(0, b"online"), (0, b"loading")]
    assert shards[(B, C)] == [(0, b"online"), (0, b"online")]
    report = summary(state, A, slotmap.owners)
    led = sum(1 for owners in slotmap.owners if owners[0] == A)
    held = sum(1 for owners in slotmap.owners if A in owners[1:])
    # its replicas hold what it leads: the gap is here (loading), not on them (behind)
    assert (report["slots_loading"], report["slots_receiving"], report["slots_behind"]) == (led, held, 0)
    assert report["in_sync"] is False


def test_a_dead_member_is_fail_even_while_loading():
    slotmap = three()
    members = alive(slotmap)
    members[C]["state"] = "dead"
    state = ReplicationState("sync", {B: caught_up(slotmap).feeds[B]}, {}, frozenset(), frozenset(), {}, 0)
    shards = entries(shards_reply(slotmap, members, member(0), state))
    assert shards[(A, C)] == [(10, b"online"), (0, b"fail")]
    assert shards[(C, A)][0] == (0, b"fail")


def test_a_lone_node_has_nothing_to_copy():
    slotmap = SlotMap.single(member(0))
    assert entries(shards_reply(slotmap, {}, member(0), NO_REPLICATION)) == {(A,): [(0, b"online")]}
    report = summary(NO_REPLICATION, A, slotmap.owners)
    assert report["in_sync"] is True and report["streams"] == 0 and report["offset"] == 0


def test_rf_3_shards_list_each_replicas_own_stream():
    slotmap = three(3)
    state = caught_up(slotmap)
    shards = entries(shards_reply(slotmap, alive(slotmap), member(0), state))
    for owners, nodes in shards.items():
        if owners[0] == A:
            assert nodes[0] == (11, b"online")                           # the highest offset sent
            assert nodes[1:] == [(state.feeds[r].acked, b"online") for r in owners[1:]]


# -- CLUSTER REPLICAS --------------------------------------------------------------------------

@pytest.mark.parametrize("rf", [2, 3])
def test_replicas_are_the_nodes_lines_of_the_members_holding_copies(rf):
    slotmap = three(rf)
    members = alive(slotmap)
    lines = nodes_reply(slotmap, members, member(0), 1000.0).decode().split("\n")
    by_id = {line.split(" ")[0]: line.encode() for line in lines if line}
    for primary in (A, B, C):
        holders = {r for owners in slotmap.owners if owners[0] == primary for r in owners[1:]}
        reply = replicas_reply(slotmap, members, member(0), 1000.0, primary.encode())
        # the replica endpoints' CLUSTER NODES lines, naming the master asked about (a replica
        # endpoint copies several; its CLUSTER NODES line names the one it copies most)
        expected = [by_id[replica_id(h)].split(b" ") for h in holders]
        for fields in expected:
            fields[3] = primary.encode()
        assert sorted(reply) == sorted(b" ".join(fields) for fields in expected)
        # vnodes spread each member's slots around the ring: its copies are on both others
        assert len(reply) == 2 and all(b"\n" not in line for line in reply)


def test_replicas_of_a_member_without_slots_and_of_an_unknown_node():
    slotmap = three()
    members = alive(slotmap)
    members[node_id(5)] = {"host": "127.0.0.1", "port": 8085, "mesh_port": 18085, "state": "alive"}
    assert replicas_reply(slotmap, members, member(0), 1000.0, node_id(5).encode()) == []
    for unknown, text in ((b"nosuch", "ERR Unknown node nosuch"), (b"", "ERR Unknown node "),
                          (A.upper().encode(), f"ERR Unknown node {A.upper()}")):
        with pytest.raises(CommandError) as error:
            replicas_reply(slotmap, members, member(0), 1000.0, unknown)
        assert str(error.value) == text
    with pytest.raises(CommandError) as error:
        replicas_reply(slotmap, members, member(0), 1000.0, b"a\r\nb c")
    assert error_bytes(str(error.value)) == b"-ERR Unknown node a  b c\r\n"     # as redis-server 7.0 sends it


# -- ROLE --------------------------------------------------------------------------------------

def wire(value) -> bytes:
    out: list = []
    encode(value, 2, out)
    return b"".join(out)


def test_role_lists_the_online_replicas_with_their_acknowledged_offsets():
    slotmap = three()
    state = caught_up(slotmap)
    feeds = dict(state.feeds)
    feeds[C] = feed(C, slots_led(slotmap, A, C), 30, 20, frozenset({1}))     # still copying: not online
    state = ReplicationState("sync", feeds, {}, frozenset(), frozenset(), {}, 0)

    def address(node: str) -> tuple[str, int] | None:
        return (slotmap.member(node).host, slotmap.member(node).port) if slotmap.has_member(node) else None

    reply = role_reply(state, address)
    assert reply == [b"master", 40, [[b"127.0.0.1", b"8081", b"10"]]]
    # the shape of redis-server 7.0's reply: integer offset, then ip, port and offset as bulk strings
    assert wire(reply) == b"*3\r\n$6\r\nmaster\r\n:40\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n$4\r\n8081\r\n$2\r\n10\r\n"
    assert role_reply(state, lambda node: None) == [b"master", 40, []]
    assert role_reply(NO_REPLICATION, address) == [b"master", 0, []]


# -- reading the live replicator ----------------------------------------------------------------

def test_read_takes_the_streams_as_values():
    out = OutStream(B, 99, frozenset({1, 2, 3}))
    out.copy_starts([1, 2, 3])
    for _ in range(4):
        out.sent(100)
    out.on_ack(99, 2)
    inbound = InStream(C, 5, 17)
    loaded = bytearray(b"\x01" * 16384)
    loaded[9] = loaded[16383] = 0
    replicator = SimpleNamespace(streams={B: out}, following=lambda: {C: inbound}, copying_in={9}, mode="async",
                                 stats={"frames_applied": 17, "writes_held": 3}, held={object()}, loaded=loaded)
    state = read(replicator)
    assert state.feeds[B] == Feed(B, frozenset({1, 2, 3}), 4, 2, 2, False, frozenset({1, 2, 3}), False)
    assert state.follows == {C: Follow(C, 17)} and state.receiving == {9} and state.missing == {9, 16383}
    assert state.counters["frames_applied"] == 17 and state.counters["full_syncs"] == 0
    assert (state.mode, state.clients_held, state.master_offset) == ("async", 1, 4)
    out.copy_finishes(4, [1, 2, 3])
    out.on_ack(99, 4)
    assert state.feeds[B].in_sync is False and read(replicator).feeds[B].in_sync is True   # a value, not a view
    assert read(None) is NO_REPLICATION
