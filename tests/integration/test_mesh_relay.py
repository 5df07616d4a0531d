"""A peer this node has no link to is heard through a member that has one (mesh/links.py `relay`),
on real zmq sockets: three PeerLinks in this process, the crowded one with room for one SUB."""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import time

from mesh import votes
from mesh.links import (MAPS, QUIET, RELAY, RELAY_QUIET, RELAY_TO, TO, PeerLinks, _own_topic, addressed, relayed,
                        relayed_to)
from mesh.messages import Heartbeat, Leave, Message, Promise, VoteKey, encode
from mesh.slotmap import Member
from tests.integration.polling import wait_for
from tests.nodes import free_port


def _signer(label: str) -> votes.Signer:
    return votes.Signer(hashlib.sha256(label.encode()).digest())


def _member(label: str) -> Member:
    """A member whose id names its vote key (`_signer(label)`), as hypercache/identity.py mints them."""
    mesh_port = free_port()
    return Member(votes.id_naming(_signer(label).public), "127.0.0.1", mesh_port - 10000, mesh_port, 0)


def _heartbeat(sender: Member, seq: int, vote_key: bytes = b"") -> Heartbeat:
    return Heartbeat(sender.node_id, seq, 1, 0, b"\0" * 8, sender, (), 0, 0, 0.0, vote_key=vote_key)


class _Node:
    def __init__(self, label: str, max_peers: int = 10) -> None:
        self.me = _member(label)
        self.heard: list[Message] = []
        self.counters: collections.Counter[str] = collections.Counter()
        self.links = PeerLinks(self.me, "127.0.0.1", None, self.heard.append, lambda member, by_address: None,
                               self.counters, max_peers=max_peers)
        self.links.open()

    def connect(self, other: "_Node") -> None:
        self.links.connect(other.me.host, other.me.mesh_port, other.me.node_id)

    def heard_from(self, sender: Member) -> list[Message]:
        return [message for message in self.heard if message.sender == sender.node_id]


def _three() -> tuple[_Node, _Node, _Node]:
    """origin, relayer, crowded: the crowded one subscribes to the relayer and has no room for the origin."""
    origin, relayer, crowded = _Node("origin"), _Node("relayer"), _Node("crowded", max_peers=1)
    relayer.connect(origin)
    crowded.connect(relayer)
    crowded.connect(origin)
    return origin, relayer, crowded


def _close(*nodes: _Node) -> None:
    for node in nodes:
        node.links.close()


def test_a_peer_without_a_link_is_heard_through_a_relayer_quiet_heartbeats_on_request():
    origin, relayer, crowded = _three()
    # the relayer does not watch the origin: it hears its quiet heartbeats only to relay them
    relayer.links.watch(frozenset())
    try:
        assert crowded.links.unlinked() == {origin.me.node_id}
        assert crowded.links.linked() == {relayer.me.node_id}
        crowded.links.relay({origin.me.node_id: ((relayer.me.node_id,), False)})
        wait_for(lambda: relayed(origin.me.node_id) in relayer.links._relay_wanted)
        seq = iter(range(1, 10_000))

        def loud_heard() -> bool:
            # (sent again until heard: a SUB's subscription reaches its publisher a moment after it is made)
            origin.links.send(_heartbeat(origin.me, next(seq), vote_key=_signer("origin").public))
            return bool(crowded.heard_from(origin.me))
        wait_for(loud_heard)
        first = crowded.heard_from(origin.me)[0]
        assert isinstance(first, Heartbeat) and first.me == origin.me and first.vote_key == _signer("origin").public
        assert crowded.counters["relayed_key_unbound"] == 0
        assert crowded.counters["relayed_in"] >= 1 and relayer.counters["relayed_out"] >= 1
        # its quiet heartbeats are not relayed to a member that did not ask for them
        crowded.heard.clear()
        quiet = [_heartbeat(origin.me, next(seq)) for _ in range(5)]
        for beat in quiet:
            origin.links.send(beat, QUIET)
        mark = Leave(origin.me.node_id, next(seq), 1)
        wait_for(lambda: (origin.links.send(mark), mark in crowded.heard)[1])
        assert not any(beat in crowded.heard for beat in quiet)
        # ... and are once it does
        crowded.links.relay({origin.me.node_id: ((relayer.me.node_id,), True)})
        wait_for(lambda: relayed(origin.me.node_id, quiet=True) in relayer.links._relay_wanted)
        beat = _heartbeat(origin.me, next(seq))
        wait_for(lambda: (origin.links.send(beat, QUIET), beat in crowded.heard)[1])
        after = Leave(origin.me.node_id, next(seq) + 1000, 1)
        wait_for(lambda: (origin.links.send(after), after in crowded.heard)[1])
        # no relay asked: none sent
        crowded.links.relay({})
        wait_for(lambda: not relayer.links._relay_wanted)
        sent = relayer.counters["relayed_out"]
        origin.links.send(_heartbeat(origin.me, next(seq) + 2000))
        wait_for(lambda: relayer.links._last_seq[origin.me.node_id] > after.seq)
        assert relayer.counters["relayed_out"] == sent
    finally:
        _close(origin, relayer, crowded)


def test_what_a_relayer_may_not_pass_off_as_the_origins():
    # Under the origin's topic a relayer is taken at its word for the origin (it can mislead the
    # node that asked it, mesh/links.py), but not for itself, a third member, a sequence number
    # so far ahead that every later message of the origin would be dropped as a repeat, or a vote
    # key that the origin's id does not name (mesh/votes.py `binds`).
    origin, relayer, crowded = _three()
    third = _member("third")
    try:
        crowded.links.relay({origin.me.node_id: ((relayer.me.node_id,), True)})
        wait_for(lambda: relayed(origin.me.node_id) in relayer.links._relay_wanted)
        topic = relayed(origin.me.node_id)
        now_us = time.time_ns() // 1000
        forged = [_heartbeat(relayer.me, now_us), _heartbeat(third, now_us + 1),
                  Leave(origin.me.node_id, 2 ** 62, 1)]
        in_its_name = Leave(origin.me.node_id, now_us + 2, 1)
        pub = relayer.links._pub
        assert pub is not None

        def sent() -> bool:
            for message in forged + [in_its_name]:
                pub.send(topic + encode(message))
            return in_its_name in crowded.heard
        wait_for(sent)
        assert not any(message in crowded.heard for message in forged)
        assert crowded.counters["invalid_impersonation"] >= 2 and crowded.counters["invalid_relayed_seq"] >= 1
        # nor for a vote key the origin's id does not name: a heartbeat or a VoteKey carrying
        # another key is taken without it (the heartbeat still says the origin is alive, the
        # VoteKey still asks for a key); the key the origin's id names comes through
        swapped = _heartbeat(origin.me, now_us + 3, vote_key=_signer("relayer").public)
        key_swap = VoteKey(origin.me.node_id, now_us + 4, _signer("relayer").public, crowded.me.node_id)
        own_key = VoteKey(origin.me.node_id, now_us + 5, _signer("origin").public, "")
        after = Leave(origin.me.node_id, now_us + 6, 1)

        def swapped_sent() -> bool:
            for message in (swapped, key_swap, own_key, after):
                pub.send(topic + encode(message))
            return after in crowded.heard
        wait_for(swapped_sent)
        assert key_swap not in crowded.heard and swapped not in crowded.heard
        by_seq = {m.seq: m for m in crowded.heard if m.sender == origin.me.node_id}
        assert by_seq[swapped.seq] == dataclasses.replace(swapped, vote_key=b"")
        assert by_seq[key_swap.seq] == dataclasses.replace(key_swap, key=b"")
        assert by_seq[own_key.seq] == own_key
        assert crowded.counters["relayed_key_unbound"] == 2
        # the origin's own next words still come through
        beat = _heartbeat(origin.me, time.time_ns() // 1000 + 10)
        wait_for(lambda: (origin.links.send(beat), beat in crowded.heard)[1])
    finally:
        _close(origin, relayer, crowded)


def test_no_members_own_topic_reads_as_a_relay():
    # A relay kind that is a hex digit made the own topic of every member whose id begins with it
    # (1 in 16) a malformed relay request: never addressable, its promises dropped (review).
    kinds = (RELAY, RELAY_QUIET, RELAY_TO, MAPS)
    assert len(set(kinds)) == len(kinds) and not any(kind in b"0123456789abcdef" for kind in kinds)
    for digit in "0123456789abcdef":
        node_id = digit * 40
        for own in (addressed(node_id), addressed(node_id, MAPS)):
            assert own[1:2] not in (RELAY, RELAY_QUIET, RELAY_TO) and _own_topic(own)
    assert _own_topic(TO) and not _own_topic(relayed_to("a" * 40, "b" * 40)) and not _own_topic(relayed("a" * 40))


def test_what_a_peer_sends_one_member_alone_is_relayed_to_that_member_only():
    # A promise, a vote, a vote key or a map sent again goes to its addressee alone (addressed()).
    # The crowded node asks its relayer for them too (`relayed_to`): the relayer subscribes to the
    # crowded node's own topic at the origin, passes on what comes under it, and takes none of it
    # as its own; the origin finds the crowded node addressable. A member with a link of its own as
    # well as a relay takes each such message once.
    origin, relayer, crowded = _three()
    linked = _Node("linked")
    linked.connect(origin)
    linked.connect(relayer)
    try:
        assert not origin.links.addressable(crowded.me.node_id)
        crowded.links.relay({origin.me.node_id: ((relayer.me.node_id,), False)})
        linked.links.relay({origin.me.node_id: ((relayer.me.node_id,), False)})
        wait_for(lambda: relayed_to(origin.me.node_id, crowded.me.node_id) in relayer.links._relay_wanted
                 and relayed_to(origin.me.node_id, linked.me.node_id) in relayer.links._relay_wanted)
        wait_for(lambda: origin.links.addressable(crowded.me.node_id))
        seq = iter(range(time.time_ns() // 1000, 2 ** 62))

        def promise(to: _Node) -> Promise:
            return Promise(origin.me.node_id, next(seq), 3, 2, to.me.node_id, 0, None)
        to_crowded = promise(crowded)
        wait_for(lambda: (origin.links.send(to_crowded, addressed(crowded.me.node_id)),
                          to_crowded in crowded.heard)[1])
        assert crowded.heard.count(to_crowded) == 1
        assert to_crowded not in relayer.heard and to_crowded not in linked.heard
        assert crowded.counters["relayed_in"] >= 1
        # heard on its own link and through the relay: taken once (sent once, after the relay
        # works, so that the relayed copy of this very message is what the wait sees arrive)
        relayed_before = linked.links.relays_heard[(origin.me.node_id, relayer.me.node_id)]
        to_linked = promise(linked)
        origin.links.send(to_linked, addressed(linked.me.node_id))
        wait_for(lambda: linked.links.relays_heard[(origin.me.node_id, relayer.me.node_id)] > relayed_before
                 and to_linked in linked.heard)
        assert linked.heard.count(to_linked) == 1 and linked.counters["duplicate"] >= 1
        # a relayer may not pass off as the crowded node's what was sent to another member
        pub = relayer.links._pub
        assert pub is not None
        for_another = promise(linked)
        data = addressed(linked.me.node_id) + encode(for_another)
        mark = Leave(origin.me.node_id, next(seq), 1)
        invalid = crowded.counters["invalid_relayed"]
        crowded.links.relay({origin.me.node_id: ((relayer.me.node_id,), False)})
        wait_for(lambda: (pub.send(relayed_to(origin.me.node_id, crowded.me.node_id) + data),
                          origin.links.send(mark), mark in crowded.heard)[2])
        assert for_another not in crowded.heard and crowded.counters["invalid_relayed"] > invalid
        # asked no more: the relayer lets go of the crowded node's topic at the origin
        crowded.links.relay({})
        wait_for(lambda: relayed_to(origin.me.node_id, crowded.me.node_id) not in relayer.links._relay_wanted)
        wait_for(lambda: not origin.links.addressable(crowded.me.node_id))
    finally:
        _close(origin, relayer, crowded, linked)


def test_a_closed_mesh_relays_nothing():
    # With mesh keys every message is bound to its sender's own link (mesh/curve.py): a relay asked
    # for is refused by the relayer, and a relayed frame is refused by the reader.
    origin, relayer, crowded = _three()
    try:
        relayer.links.relaying = crowded.links.relaying = False
        crowded.links.relay({origin.me.node_id: ((relayer.me.node_id,), True)})
        wait_for(lambda: relayer.counters["relay_refused"] >= 1)
        assert not relayer.links._relay_wanted
        pub = relayer.links._pub
        assert pub is not None
        leave = Leave(origin.me.node_id, time.time_ns() // 1000, 1)
        wait_for(lambda: (pub.send(relayed(origin.me.node_id) + encode(leave)),
                          crowded.counters["invalid_impersonation"] >= 1)[1])
        assert leave not in crowded.heard
    finally:
        _close(origin, relayer, crowded)
