"""A promise goes to its proposer only, on real zmq sockets: under the proposer's own topic when
the proposer subscribed to it, and to every member when it did not (a member of an older version
of the same wire protocol, which subscribes to every first byte below 0xfc and to no topic of its
own): members upgrade one by one, and an old proposer must still hear its promises (review)."""
from __future__ import annotations

import collections
import hashlib

import zmq.green as zmq

from mesh.links import CATCH_UP, MAPS, TO, PeerLinks, addressed
from mesh.messages import Commit, Promise, RollAnswer, Vote, VoteKey, decode, encode
from mesh.slotmap import Member, SlotMap
from tests.integration.polling import wait_for
from tests.nodes import free_port   # (below the ephemeral range, and this xdist worker's own)


def _member(label: str) -> Member:
    return Member(hashlib.sha1(label.encode()).hexdigest(), "127.0.0.1", free_port(), free_port(), 0)


def _sub(port: int, firsts: range, *own: bytes) -> zmq.Socket:
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    for first in firsts:
        sub.setsockopt(zmq.SUBSCRIBE, bytes([first]))
    for topic in own:
        sub.setsockopt(zmq.SUBSCRIBE, topic)
    sub.connect(f"tcp://127.0.0.1:{port}")
    return sub


def _heard(sub: zmq.Socket, into: list[bytes]) -> bool:
    while True:
        try:
            into.append(sub.recv(zmq.NOBLOCK))
        except zmq.Again:
            return bool(into)


def _reader(label: str) -> tuple[Member, Member, list[object], collections.Counter, PeerLinks, zmq.Socket]:
    """A member's PeerLinks (what it hears, its counters) subscribed to a bare XPUB a test publishes on."""
    me, peer = _member(label), _member(label + " peer")
    heard: list[object] = []
    counters: collections.Counter = collections.Counter()
    links = PeerLinks(me, "127.0.0.1", None, heard.append, lambda member, by_address: None, counters)
    links.open()
    xpub = zmq.Context.instance().socket(zmq.XPUB)
    xpub.setsockopt(zmq.LINGER, 0)
    xpub.bind(f"tcp://127.0.0.1:{peer.mesh_port}")
    links.connect("127.0.0.1", peer.mesh_port, peer.node_id)
    return me, peer, heard, counters, links, xpub


def test_a_promise_goes_under_its_proposers_topic_or_to_all_when_the_proposer_has_none():
    voter, old, new = _member("voter"), _member("old"), _member("new")
    links = PeerLinks(voter, "127.0.0.1", None, lambda message: None, lambda member, by_address: None, collections.Counter())
    links.open()
    old_sub = _sub(voter.mesh_port, range(0xfc))                 # an older member
    new_sub = _sub(voter.mesh_port, range(0xfb), addressed(new.node_id))
    try:
        wait_for(lambda: addressed(new.node_id) in links._addressable)
        to_old = Promise(voter.node_id, 1, 3, 1, old.node_id, 0, None)
        to_new = Promise(voter.node_id, 2, 3, 1, new.node_id, 0, None)
        old_frames: list[bytes] = []
        new_frames: list[bytes] = []
        mine = addressed(new.node_id)

        def loud(frames: list[bytes]) -> list[object]:
            return [decode(frame) for frame in frames if frame[:1] != TO]

        def sent_and_heard() -> bool:
            # a frame sent after another may still be on its way when the first is read: wait for
            # each expected frame itself, not for any frame
            links.send(to_old, addressed(old.node_id))
            links.send(to_new, addressed(new.node_id))
            _heard(old_sub, old_frames)
            _heard(new_sub, new_frames)
            under_mine = [decode(frame[len(mine):]) for frame in new_frames if frame.startswith(mine)]
            return to_old in loud(old_frames) and to_old in loud(new_frames) and to_new in under_mine
        # the older proposer hears its promise as every message was heard before: whole, no topic
        # (and so does everyone, as before); the newer proposer hears its own under its topic
        wait_for(sent_and_heard)
        # ... and never loud
        assert to_new not in loud(new_frames + old_frames)
    finally:
        old_sub.close()
        new_sub.close()
        links.close()


def test_a_map_sent_again_goes_under_its_members_map_topic_or_catch_up_when_it_has_none():
    """A member of the version that addressed promises only subscribes to its promise topic, and
    would drop a map under it: it gets maps sent again under CATCH_UP, as before."""
    sender, old, new = _member("sender"), _member("promises only"), _member("maps too")
    links = PeerLinks(sender, "127.0.0.1", None, lambda message: None, lambda member, by_address: None, collections.Counter())
    links.open()
    # (both catching up: subscribed to CATCH_UP, as members behind are)
    old_sub = _sub(sender.mesh_port, range(0xfb), CATCH_UP, addressed(old.node_id))
    new_sub = _sub(sender.mesh_port, range(0xfb), CATCH_UP, addressed(new.node_id), addressed(new.node_id, MAPS))
    try:
        wait_for(lambda: addressed(new.node_id, MAPS) in links._addressable
                 and addressed(old.node_id) in links._addressable)
        to_old = Commit(sender.node_id, 1, SlotMap.single(old))
        to_new = Commit(sender.node_id, 2, SlotMap.single(new))
        old_frames: list[bytes] = []
        new_frames: list[bytes] = []
        mine = addressed(new.node_id, MAPS)

        def sent_and_heard() -> bool:
            links.send(to_old, addressed(old.node_id, MAPS), CATCH_UP)
            links.send(to_new, addressed(new.node_id, MAPS), CATCH_UP)
            _heard(old_sub, old_frames)
            _heard(new_sub, new_frames)
            return (to_old in [decode(frame[1:]) for frame in old_frames if frame[:1] == CATCH_UP]
                    and to_new in [decode(frame[len(mine):]) for frame in new_frames if frame.startswith(mine)])
        wait_for(sent_and_heard)
        # the map for the newer member reached no one else, and never under CATCH_UP
        assert not any(frame.startswith(mine) for frame in old_frames)
        assert to_new not in [decode(frame[1:]) for frame in new_frames + old_frames if frame[:1] == CATCH_UP]
        # nothing under the older member's promise topic: it would drop a map there
        assert not any(frame.startswith(addressed(old.node_id)) for frame in old_frames)
    finally:
        old_sub.close()
        new_sub.close()
        links.close()


def test_a_member_reads_maps_under_its_map_topic_and_promises_under_its_own_only():
    """The reader's side: a Commit under this member's MAPS topic and a Promise under its plain
    one are read; each kind under the other's topic is dropped as invalid."""
    me, peer, heard, counters, links, xpub = _reader("reader")
    try:
        wanted = {addressed(me.node_id), addressed(me.node_id, MAPS)}
        frames: list[bytes] = []    # (the XPUB's subscription frames: 1, then the topic)
        wait_for(lambda: _heard(xpub, frames) and wanted <= {frame[1:] for frame in frames if frame[:1] == b"\x01"})
        commit = Commit(peer.node_id, 1, SlotMap.single(peer))
        promise = Promise(peer.node_id, 3, 3, 1, me.node_id, 0, None)
        xpub.send(addressed(me.node_id, MAPS) + encode(commit))
        xpub.send(addressed(me.node_id, MAPS) + encode(Promise(peer.node_id, 2, 3, 1, me.node_id, 0, None)))
        xpub.send(addressed(me.node_id) + encode(promise))
        xpub.send(addressed(me.node_id) + encode(Commit(peer.node_id, 4, SlotMap.single(peer))))
        wait_for(lambda: counters["invalid_kind_under_topic"] == 2 and len(heard) == 2)
        assert heard == [commit, promise]
    finally:
        xpub.close()
        links.close()


def test_every_kind_sent_to_one_member_alone_is_read_under_its_topic():
    """What the mesh sends one member alone (mesh/bus.py: a promise, a vote, a vote key, a roll
    call's answer) is read when it comes under that member's topic. The answers to a roll call
    were dropped as invalid, and a member stranded in a map of more than 16 stayed so for good."""
    me, peer, heard, counters, links, xpub = _reader("addressee")
    try:
        frames: list[bytes] = []
        wait_for(lambda: _heard(xpub, frames) and addressed(me.node_id) in {frame[1:] for frame in frames})
        sent = [Promise(peer.node_id, 1, 3, 1, me.node_id, 0, None),
                Vote(peer.node_id, 2, 3, 1, b"x" * 20, b"s" * 64),
                VoteKey(peer.node_id, 3, b"k" * 32, me.node_id),
                RollAnswer(peer.node_id, 4, 17)]
        for message in sent:
            xpub.send(addressed(me.node_id) + encode(message))
        wait_for(lambda: len(heard) + counters["invalid"] == len(sent))
        assert heard == sent
        assert counters["invalid"] == 0
    finally:
        xpub.close()
        links.close()


def test_a_publisher_knows_when_a_member_of_a_version_before_listens():
    """`older_here`: a subscriber to its promise topic without its map topic (the version
    before), or to the TO byte itself (the one before that), is of an older version."""
    me, new, old = _member("publisher"), _member("new member"), _member("previous member")
    links = PeerLinks(me, "127.0.0.1", None, lambda message: None, lambda member, by_address: None, collections.Counter())
    links.open()
    subs = [_sub(me.mesh_port, range(0xfb), addressed(new.node_id), addressed(new.node_id, MAPS))]
    try:
        wait_for(lambda: addressed(new.node_id, MAPS) in links._addressable
                 and addressed(new.node_id) in links._addressable)
        assert not links.older_here()
        subs.append(_sub(me.mesh_port, range(0xfb), addressed(old.node_id)))
        wait_for(links.older_here)
        subs.pop().close()
        wait_for(lambda: not links.older_here())
        subs.append(_sub(me.mesh_port, range(0xfc)))      # (0xfb among them)
        wait_for(links.older_here)
    finally:
        for sub in subs:
            sub.close()
        links.close()


def test_a_hello_says_whether_its_sender_came_through_an_address_the_operator_gave():
    """HELLO_BY_ADDRESS: the publisher behind a --join or MEET address may be the only member
    that knows of the newcomer, and tells every member; one subscribed to as a member heard of
    from others is not news to tell again (Membership.has_news)."""
    seed, newcomer, member = _member("hello seed"), _member("hello newcomer"), _member("hello member")
    hellos: dict[str, list[tuple[str, bool]]] = {seed.node_id: [], member.node_id: []}
    publishers = [PeerLinks(one, "127.0.0.1", None, lambda message: None,
                            lambda who, by_address, heard=hellos[one.node_id]: heard.append((who.node_id, by_address)),
                            collections.Counter()) for one in (seed, member)]
    links = PeerLinks(newcomer, "127.0.0.1", None, lambda message: None, lambda who, by_address: None,
                      collections.Counter())
    try:
        for one in publishers + [links]:
            one.open()
        links.connect("127.0.0.1", seed.mesh_port)                       # (--join: a bare address)
        links.connect("127.0.0.1", member.mesh_port, member.node_id)     # (heard of from the seed)
        wait_for(lambda: all(hellos.values()))
        assert set(hellos[seed.node_id]) == {(newcomer.node_id, True)}
        assert set(hellos[member.node_id]) == {(newcomer.node_id, False)}
    finally:
        for one in publishers + [links]:
            one.close()
