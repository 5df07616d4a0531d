"""The data channel over real sockets on 127.0.0.1: plain TCP (open mesh) and ZeroMQ CURVE (closed mesh).

Two links in one process play a primary and its replica; frames are real
mesh/replication.py frames. Polled with deadlines inside the one gevent hub.
"""
import hashlib
import socket
import struct
import time

import gevent
import pytest
import zmq.green as zmq
from gevent import socket as green_socket

from mesh import replication as wire
from mesh import curve
from mesh.datalink import HEADER, MAX_FRAME_BYTES, TcpLink, open_link
from mesh.replication import Frame
from mesh.zap import ZapHandler
from tests.integration.polling import wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_id(name: str) -> str:
    return hashlib.sha1(f"datalink-{name}-{time.time_ns()}".encode()).hexdigest()


class End:
    """One node's link and what reached it."""

    def __init__(self, name: str, keys=None, context=None, port: int | None = None) -> None:
        self.id = keys.node_id if keys is not None else node_id(name)   # (with keys, bound to them)
        self.port = port or free_port()
        self.frames: list[tuple[Frame, bytes | None]] = []
        self.drained = 0
        self.link = open_link(self.id, "127.0.0.1", self.port, context, keys, self._on_frame, self._on_drained)
        self.link.open()

    def _on_frame(self, frame: Frame, identity: bytes | None) -> None:
        self.frames.append((frame, identity))

    def _on_drained(self) -> None:
        self.drained += 1

    def batch(self, offset: int, body=None) -> bytes:
        return wire.encode(Frame(wire.BATCH, self.id, 1, 7, offset, body if body is not None else []))


def offsets(end: End) -> list[int]:
    return [frame.offset for frame, _ in end.frames]


@pytest.fixture
def ends():
    made: list[End] = []

    def make(name: str, **kwargs) -> End:
        made.append(End(name, **kwargs))
        return made[-1]
    yield make
    for end in made:
        end.link.close()


def test_frames_go_in_order_and_replies_come_back_on_the_same_connection(ends):
    primary, replica = ends("primary"), ends("replica")
    assert isinstance(primary.link, TcpLink)
    primary.link.connect(replica.id, "127.0.0.1", replica.port)
    # queued while the connection is being made, then sent in order
    for offset in range(1, 501):
        assert primary.link.send(replica.id, primary.batch(offset, [[5, b"k%d" % offset, None]]))
    wait_for(lambda: len(replica.frames) == 500)
    assert offsets(replica) == list(range(1, 501))
    assert {identity for _, identity in replica.frames} == {primary.id.encode()}
    assert replica.drained >= 1
    ack = Frame(wire.ACK, replica.id, 1, 7, 500, None)
    replica.link.reply(primary.id.encode(), wire.encode(ack))
    wait_for(lambda: primary.frames)
    assert primary.frames == [(ack, None)]      # a reply: no identity


def test_a_big_frame_arrives_whole(ends):
    primary, replica = ends("primary"), ends("replica")
    primary.link.connect(replica.id, "127.0.0.1", replica.port)
    # nearly the largest frame a peer may send: many reads, one frame
    value = bytes(range(256)) * ((MAX_FRAME_BYTES - 64 * 1024) // 256)
    assert primary.link.send(replica.id, primary.batch(1, [[1, b"big", value]]))
    assert primary.link.send(replica.id, primary.batch(2))
    wait_for(lambda: len(replica.frames) == 2, timeout_s=30)
    assert replica.frames[0][0].body[0][2] == value
    assert offsets(replica) == [1, 2]


def test_a_peer_not_listening_yet_gets_the_frames_once_it_is(ends):
    port = free_port()
    primary = ends("primary")
    late_id = node_id("late")
    primary.link.connect(late_id, "127.0.0.1", port)
    assert primary.link.send(late_id, primary.batch(1))
    wait_for(lambda: primary.link.counters["dial_failed"] >= 1)
    replica = ends("late", port=port)
    wait_for(lambda: len(replica.frames) == 1, timeout_s=10)


def test_a_restarted_replica_is_redialled_and_the_lost_frames_show_as_a_gap(ends):
    primary, replica = ends("primary"), ends("replica")
    primary.link.connect(replica.id, "127.0.0.1", replica.port)
    primary.link.send(replica.id, primary.batch(1))
    wait_for(lambda: len(replica.frames) == 1)
    replica.link.close()
    # frames sent while the replica is down are lost with the connection (the stream's
    # offsets turn that into a gap); the link redials and later frames arrive
    restarted = ends("replica-again", port=replica.port)

    def sent_and_arrived() -> bool:
        primary.link.send(replica.id, primary.batch(9))
        gevent.sleep(0.05)
        return bool(restarted.frames)
    wait_for(sent_and_arrived, timeout_s=10)
    assert restarted.frames[0][0].offset == 9
    assert primary.link.counters["resets"] >= 1


def test_hostile_connections_are_dropped_without_disturbing_a_primary(ends):
    # (gevent's sockets: the replica's link runs in this same hub while the test waits)
    primary, replica = ends("primary"), ends("replica")
    primary.link.connect(replica.id, "127.0.0.1", replica.port)
    # a length past the limit is refused before anything is kept
    with green_socket.create_connection(("127.0.0.1", replica.port)) as hostile:
        hostile.sendall(HEADER.pack(MAX_FRAME_BYTES + 1))
        hostile.settimeout(5)
        assert hostile.recv(1) == b""       # closed by the replica
    # garbage that is not a frame
    with green_socket.create_connection(("127.0.0.1", replica.port)) as hostile:
        hostile.sendall(struct.pack(">I", 5) + b"hello")
        hostile.settimeout(5)
        assert hostile.recv(1) == b""
    # a connection that speaks for one member, then for another
    other = End.__new__(End)
    other.id = node_id("other")
    with green_socket.create_connection(("127.0.0.1", replica.port)) as hostile:
        for sender in (primary, other):
            data = End.batch(sender, 1)
            hostile.sendall(HEADER.pack(len(data)) + data)
        hostile.settimeout(5)
        assert hostile.recv(1) == b""
    assert replica.link.counters["invalid"] == 3
    primary.link.send(replica.id, primary.batch(2))
    wait_for(lambda: any(frame.sender == primary.id and frame.offset == 2 for frame, _ in replica.frames))


def test_a_reconnecting_primary_takes_its_name_back(ends):
    primary, replica = ends("primary"), ends("replica")
    primary.link.connect(replica.id, "127.0.0.1", replica.port)
    primary.link.send(replica.id, primary.batch(1))
    wait_for(lambda: len(replica.frames) == 1)
    primary.link.disconnect(replica.id)
    primary.link.connect(replica.id, "127.0.0.1", replica.port)
    primary.link.send(replica.id, primary.batch(2))
    wait_for(lambda: len(replica.frames) == 2)
    replica.link.reply(primary.id.encode(), wire.encode(Frame(wire.ACK, replica.id, 1, 7, 2, None)))
    wait_for(lambda: primary.frames)
    assert primary.frames[0][0].offset == 2


def test_with_mesh_keys_frames_travel_over_curve(ends):
    secret = b"a cluster secret of the data channel test"
    primary_keys, replica_keys, insider_keys = (curve.from_secret(secret) for _ in range(3))
    context = zmq.Context()
    # (the replica's ZAP handler lets in the keys its mesh endorsed: here, the primary's and an insider's)
    endorsed = {keys.node_id: keys.public for keys in (primary_keys, insider_keys)}
    zap = ZapHandler(context, lambda domain, key: replica_keys.admits(domain, key, endorsed))
    zap.start()
    primary = ends("primary", keys=primary_keys, context=context)
    replica = ends("replica", keys=replica_keys, context=context)
    assert not isinstance(primary.link, TcpLink)
    primary.link.connect(replica.id, "127.0.0.1", replica.port)
    for offset in range(1, 11):
        primary.link.send(replica.id, primary.batch(offset))
    try:
        wait_for(lambda: len(replica.frames) == 10)
        assert offsets(replica) == list(range(1, 11))
        # An insider holding the secret, its own key endorsed, names its DEALER after the primary and
        # sends frames in the primary's name: the replica reads its key's id, not the name, and drops them.
        impostor = context.socket(zmq.DEALER)
        impostor.setsockopt(zmq.LINGER, 0)
        impostor.setsockopt(zmq.CURVE_SERVERKEY, replica_keys.cluster_public)
        impostor.setsockopt(zmq.CURVE_PUBLICKEY, insider_keys.public)
        impostor.setsockopt(zmq.CURVE_SECRETKEY, insider_keys.secret)
        impostor.setsockopt(zmq.IDENTITY, primary.id.encode())
        impostor.connect(f"tcp://127.0.0.1:{replica.port}")
        invalid = replica.link.counters["invalid"]
        impostor.send(primary.batch(11))
        wait_for(lambda: replica.link.counters["invalid"] > invalid)
        assert offsets(replica) == list(range(1, 11))
        impostor.close(linger=0)
    finally:
        zap.stop()
