"""A peer this node has no link to is heard through a member that has one (mesh/links.py `relay`),
on real zmq sockets: three PeerLinks in this process, the crowded one with room for one SUB."""
from __future__ import annotations

import collections
import hashlib
import socket

from mesh.links import QUIET, PeerLinks, relayed
from mesh.messages import Heartbeat, Leave, Message, Vote, encode
from mesh.slotmap import Member
from tests.integration.polling import wait_for


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _member(label: str) -> Member:
    return Member(hashlib.sha1(label.encode()).hexdigest(), "127.0.0.1", _free_port(), _free_port(), 0)


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


def test_a_peer_without_a_link_is_heard_through_a_relayer_and_only_what_may_be_relayed():
    origin, relayer, crowded = _three()
    try:
        assert crowded.links.unlinked() == {origin.me.node_id}
        assert crowded.links.linked() == {relayer.me.node_id}
        crowded.links.relay({origin.me.node_id: ((relayer.me.node_id,), False)})
        wait_for(lambda: relayed(origin.me.node_id) in relayer.links._relay_wanted)
        seq = iter(range(1, 10_000))

        def loud_heard() -> bool:
            # (sent again until heard: a SUB's subscription reaches its publisher a moment after it is made)
            origin.links.send(_heartbeat(origin.me, next(seq), vote_key=b"k" * 32))
            return bool(crowded.heard_from(origin.me))
        wait_for(loud_heard)
        first = crowded.heard_from(origin.me)[0]
        assert isinstance(first, Heartbeat) and first.me == origin.me
        assert first.vote_key == b""        # a vote key is taken first-hand only
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
        # a vote is never taken on a relayer's word (in a small map it counts unsigned)
        refused = crowded.counters["invalid_relayed"]
        vote = Vote(origin.me.node_id, next(seq), 1, 0, b"\1" * 8, b"")
        after = Leave(origin.me.node_id, next(seq) + 1000, 1)
        origin.links.send(vote)
        wait_for(lambda: (origin.links.send(after), after in crowded.heard)[1])
        assert vote not in crowded.heard and crowded.counters["invalid_relayed"] > refused
        # no relay asked: none sent
        crowded.links.relay({})
        wait_for(lambda: not relayer.links._relay_wanted)
        sent = relayer.counters["relayed_out"]
        origin.links.send(_heartbeat(origin.me, next(seq) + 2000))
        wait_for(lambda: relayer.links._last_seq[origin.me.node_id] > after.seq)
        assert relayer.counters["relayed_out"] == sent
    finally:
        _close(origin, relayer, crowded)


def test_a_relayer_cannot_pass_off_its_own_words_or_a_third_members_as_the_origins():
    origin, relayer, crowded = _three()
    third = _member("third")
    try:
        crowded.links.relay({origin.me.node_id: ((relayer.me.node_id,), True)})
        wait_for(lambda: relayed(origin.me.node_id) in relayer.links._relay_wanted)
        topic = relayed(origin.me.node_id)
        forged = [_heartbeat(relayer.me, 50), _heartbeat(third, 51)]     # under the origin's topic
        honest = Leave(origin.me.node_id, 52, 1)
        pub = relayer.links._pub
        assert pub is not None

        def sent() -> bool:
            for message in forged + [honest]:
                pub.send(topic + encode(message))
            return honest in crowded.heard
        wait_for(sent)
        assert not any(message in crowded.heard for message in forged)
        assert crowded.counters["invalid_impersonation"] >= 2
    finally:
        _close(origin, relayer, crowded)
