"""The data channel: point-to-point connections that carry replication streams between members.

The control plane (mesh/links.py: PUB/SUB) drops on a full queue, has no
acknowledgements and caps messages at 1 MiB, so data travels here instead.
Every node listens on its data port (its mesh port + DATA_PORT_OFFSET); a
primary opens one connection, named by the node id in its frames, to each
replica it feeds. Frames (mesh/replication.py) go primary -> replica,
acknowledgements replica -> primary on the same connection.

Two transports behind one interface (`open_link` picks):
- an open mesh (no keys, loopback or --mesh-insecure): plain TCP driven by the
  hub's io watchers, as the RESP server drives its clients. Measured on this
  machine, a frame and its acknowledgement cost ~53 us of CPU over a gevent TCP
  pair against ~230-270 us over a zmq.green DEALER/ROUTER pair (ZeroMQ hands
  every message to its I/O thread and back through a mailbox), and a sync
  write pays one such round trip per loop iteration;
- a closed mesh (CURVE keys): ZeroMQ with the mesh's keys (mesh/curvelink.py),
  so only members can feed a replica and streams are encrypted.

On TCP a frame is a 4-byte big-endian length and the frame's bytes. A
connection's first frame names its sender; every later frame must name the
same one (with an open mesh, as with ZeroMQ without keys, anyone who can reach
the port can claim a name: fencing in the replicator, not the transport, is
what keeps a stale primary out). A broken connection drops what was queued on
it: the stream offsets make the loss a gap, which the replica refuses and the
primary answers with a full copy.

Only I/O: frames are decoded here and handed to `on_frame`; deciding is the
replicator's (hypercache/replication.py).
"""
from __future__ import annotations

import _socket
import collections
import errno
import logging
import socket
import struct
from typing import Any, Callable

import gevent
from gevent import socket as green_socket

from mesh import greenlets
from mesh.curve import MeshKeys
from mesh.replication import Frame, decode

log = logging.getLogger(__name__)

DATA_PORT_OFFSET = 10000          # data port = mesh port + this (RESP port + 20000 by default)
# The biggest frame a peer may send: what a connection can make us buffer before a
# frame is read whole and checked. Frames are small by construction: effects go out
# in frames of about 4 MB, and a bigger value in 1 MB pieces (hypercache/replication.py's
# BATCH_BYTES and PART_BYTES). A key travels whole, so a key longer than this cannot be
# replicated (Redis allows 512 MB keys; nobody uses a 16 MB one).
MAX_FRAME_BYTES = 16 * 1024 * 1024
# Frames queued per peer before send() reports back-pressure; the stream's own
# in-flight accounting (OutStream) bounds memory long before this.
SEND_HWM = 100_000
READ_BYTES = 256 * 1024           # read per readiness callback: one hub turn never reads more
MERGE_BELOW = 64 * 1024           # smaller frames are sent with their header in one buffer
RECONNECT_MIN_S = 0.05
RECONNECT_MAX_S = 1.0
DIAL_TIMEOUT_S = 2.0
MAX_INBOUND = 1024                # connections accepted at once (a member opens one per primary)
HEADER = struct.Struct(">I")

OnFrame = Callable[[Frame, "bytes | None"], None]


def data_port(mesh_port: int) -> int:
    return mesh_port + DATA_PORT_OFFSET


def open_link(node_id: str, bind_host: str, port: int, context, keys: MeshKeys | None,
              on_frame: OnFrame, on_drained: Callable[[], None] = lambda: None):
    """The data channel for this node: CURVE over ZeroMQ with mesh keys, plain TCP without."""
    if keys is not None:
        from mesh.curvelink import CurveLink
        return CurveLink(node_id, bind_host, port, context, keys, on_frame, on_drained)
    return TcpLink(node_id, bind_host, port, on_frame, on_drained)


class Deliveries:
    """What both transports share: the counters and handing a frame to the replicator."""

    def __init__(self, node_id: str, on_frame: OnFrame, on_drained: Callable[[], None]) -> None:
        self.node_id = node_id
        self._on_frame = on_frame
        # called once the frames that had arrived have been read: the replicator
        # acknowledges them with one frame per stream instead of one per frame
        self._on_drained = on_drained
        self.counters: collections.Counter[str] = collections.Counter()
        # Called with a peer's node id when the connection we send it frames on broke (its
        # process may have restarted, empty): the replicator checks that stream at once instead
        # of at its next keep-alive. Only a transport that sees its connections break reports it.
        self.on_reset: Callable[[str], None] | None = None
        self.reports_resets = False

    def _deliver(self, frame: Frame, identity: bytes | None) -> None:
        self.counters["in"] += 1
        try:
            self._on_frame(frame, identity)
        except Exception:   # one bad frame must not end the reader every stream depends on
            log.exception("data frame failed node=%s sender=%s kind=%d", self.node_id[:8],
                          frame.sender[:8], frame.kind)

    def _drained(self) -> None:
        try:
            self._on_drained()
        except Exception:
            log.exception("data frames drained: acknowledging failed node=%s", self.node_id[:8])


class _Connection:
    """One TCP connection of the data channel, driven by the hub's io watchers.

    `peer` is the node at the other end: known from the start on a connection we
    opened (to a replica, or to an owner we pull from), learned from the first
    frame on one we accepted. Frames read are handed to `link._frames_read`."""

    def __init__(self, link: "TcpLink", peer: str | None, inbound: bool) -> None:
        self.link = link
        self.peer = peer
        self.inbound = inbound
        # (Any: None until attached and after close, and the hot path reads them unchecked;
        # compiled with mypyc, an attribute first set to None would be typed None)
        self.sock: Any = None
        self.reader: Any = None         # the hub's io watchers on the socket
        self.writer: Any = None
        self.inbuf = bytearray()
        self.unsent: collections.deque[memoryview] = collections.deque()
        self.unsent_frames = 0
        self.closed = False
        self.dialer: gevent.Greenlet | None = None

    def attach(self, sock: _socket.socket) -> None:
        sock.setblocking(False)
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop = gevent.get_hub().loop
        self.sock = sock
        self.reader = loop.io(sock.fileno(), 1)
        self.writer = loop.io(sock.fileno(), 2)
        self.reader.start(self.on_readable)
        if self.unsent:     # queued while we were connecting
            self.writer.start(self.on_writable)

    # -- writing -------------------------------------------------------------------

    def write(self, data: bytes | list[bytes | memoryview]) -> bool:
        """Queue one frame: its bytes, or the buffers that make it (sent as they are, not joined)."""
        if self.unsent_frames >= SEND_HWM:
            return False
        # (bytes, or memoryviews of what a partial send left: compiled, a list of bytes
        # would refuse those)
        buffers: list[bytes | memoryview]
        if isinstance(data, list):
            buffers = [HEADER.pack(sum(len(b) for b in data)), *data]
        elif len(data) < MERGE_BELOW:
            buffers = [HEADER.pack(len(data)) + data]
        else:       # (a big frame is not copied to put 4 bytes in front of it)
            buffers = [HEADER.pack(len(data)), data]
        if self.sock is not None and not self.unsent:
            buffers = self._send_now(buffers)
            if self.closed:
                return False
        if buffers:
            if not self.unsent and self.sock is not None:
                self.writer.start(self.on_writable)
            self.unsent.extend(memoryview(b) for b in buffers)
            self.unsent_frames += 1
        return True

    def _send_now(self, buffers: list[bytes | memoryview]) -> list[bytes | memoryview]:
        """Send what the socket takes at once; the rest is returned for on_writable."""
        try:
            sent = self.sock.send(buffers[0]) if len(buffers) == 1 else self.sock.sendmsg(buffers)
        except (BlockingIOError, InterruptedError):
            return buffers
        except OSError as error:
            self.link._broken(self, f"send: {error.strerror}")
            return []
        rest: list[bytes | memoryview] = []
        for buffer in buffers:
            size = len(buffer)
            if sent >= size:
                sent -= size
            else:
                rest.append(memoryview(buffer)[sent:])
                sent = 0
        return rest

    def on_writable(self) -> None:
        unsent = self.unsent
        while unsent:
            batch = [unsent[i] for i in range(min(len(unsent), 64))]
            try:
                sent = self.sock.sendmsg(batch)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                self.link._broken(self, f"send: {error.strerror}")
                return
            while sent and unsent:
                head = unsent[0]
                if sent >= len(head):
                    sent -= len(head)
                    unsent.popleft()
                else:
                    unsent[0] = head[sent:]
                    sent = 0
            if len(batch) == 64 and unsent:
                continue
            if unsent:
                return      # the socket is full: wait for the next writable
        self.unsent_frames = 0
        self.writer.stop()

    # -- reading -------------------------------------------------------------------

    def on_readable(self) -> None:
        try:
            data = self.sock.recv(READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self.link._broken(self, f"recv: {error.strerror}")
            return
        if not data:
            self.link._broken(self, "closed by peer")
            return
        inbuf = self.inbuf
        inbuf += data
        frames = []
        start, end = 0, len(inbuf)
        with memoryview(inbuf) as view:     # (released before the bytearray is trimmed)
            while end - start >= 4:
                (size,) = HEADER.unpack_from(view, start)
                if size > MAX_FRAME_BYTES:      # checked before a byte of it is kept
                    self.link.counters["invalid"] += 1
                    self.link._broken(self, f"a frame of {size} bytes (at most {MAX_FRAME_BYTES})")
                    return
                if end - start - 4 < size:
                    break
                frames.append(bytes(view[start + 4:start + 4 + size]))
                start += 4 + size
        if start:
            del inbuf[:start]
        if frames:
            self.link._frames_read(self, frames)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.dialer is not None:
            self.dialer.kill(block=False)
        if self.sock is not None:
            self.reader.stop()
            self.writer.stop()
            self.sock.close()
            self.sock = None
        self.unsent.clear()
        self.inbuf = bytearray()


class TcpLink(Deliveries):
    """A listener for the streams this node follows, one connection per peer it sends to."""

    def __init__(self, node_id: str, bind_host: str, port: int, on_frame: OnFrame,
                 on_drained: Callable[[], None] = lambda: None) -> None:
        super().__init__(node_id, on_frame, on_drained)
        self.reports_resets = True
        self._bind = (bind_host, port)
        self._listener: Any = None          # the listening socket, once open
        self._acceptor: Any = None
        self._outbound: dict[str, _Connection] = {}     # peer -> the connection we opened to it
        self._addresses: dict[str, tuple[str, int]] = {}
        self._inbound: set[_Connection] = set()         # connections peers opened to us
        self._named: dict[bytes, _Connection] = {}      # identity -> its newest inbound connection

    def open(self) -> None:
        host, port = self._bind
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = _socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
        listener.setblocking(False)
        self._listener = listener
        self._acceptor = gevent.get_hub().loop.io(listener.fileno(), 1)
        self._acceptor.start(self._on_acceptable)

    def close(self) -> None:
        for peer in list(self._outbound):
            self.disconnect(peer)
        for conn in list(self._inbound):
            conn.close()
        self._inbound.clear()
        self._named.clear()
        if self._listener is not None:
            self._acceptor.stop()
            self._listener.close()
            self._listener = None

    # -- the side that sends streams (and pulls) -----------------------------------

    def connect(self, node_id: str, host: str, port: int) -> None:
        if node_id in self._outbound:
            return
        conn = self._outbound[node_id] = _Connection(self, node_id, inbound=False)
        self._addresses[node_id] = (host, port)
        conn.dialer = greenlets.spawn(self._dial, conn, 0.0)

    def peers(self) -> set[str]:
        """The peers we opened a connection to."""
        return set(self._outbound)

    def disconnect(self, node_id: str) -> None:
        conn = self._outbound.pop(node_id, None)
        self._addresses.pop(node_id, None)
        if conn is not None:
            conn.close()

    def send(self, node_id: str, data: bytes | list[bytes | memoryview]) -> bool:
        """Queue a frame (its bytes, or buffers that make it) for a peer; False when there
        is no link or its queue is full."""
        conn = self._outbound.get(node_id)
        if conn is None:
            return False
        if not conn.write(data):
            self.counters["send_full"] += 1
            return False
        self.counters["out"] += 1
        return True

    def _dial(self, conn: _Connection, delay: float) -> None:
        """Connect `conn` to its peer, retrying with backoff until it works or is closed."""
        peer = conn.peer
        assert peer is not None     # (a connection we open knows its peer)
        host, port = self._addresses[peer]
        while not conn.closed:
            if delay:
                gevent.sleep(delay)
            try:
                # (gevent's resolver and connect: a host name in the map must not block the hub)
                green = green_socket.create_connection((host, port), timeout=DIAL_TIMEOUT_S)
            except OSError as error:
                self.counters["dial_failed"] += 1
                log.debug("data link to node=%s at %s:%d: %s", peer[:8], host, port, error)
                delay = min(max(delay * 2, RECONNECT_MIN_S), RECONNECT_MAX_S)
                continue
            sock = _socket.socket(green.family, green.type, green.proto, green.detach())
            conn.dialer = None
            if conn.closed:         # disconnected while we dialled
                sock.close()
                return
            conn.attach(sock)
            return

    def _broken(self, conn: _Connection, why: str) -> None:
        """A connection failed: drop it (and what was queued on it); redial an outbound one."""
        if conn.closed:
            return
        self.counters["resets"] += 1
        peer = conn.peer or "?"
        log.info("data link closed node=%s peer=%s inbound=%s: %s", self.node_id[:8], peer[:8],
                 conn.inbound, why)
        conn.close()
        if conn.inbound:
            self._inbound.discard(conn)
            if conn.peer is not None and self._named.get(conn.peer.encode()) is conn:
                del self._named[conn.peer.encode()]
        elif conn.peer is not None and self._outbound.get(conn.peer) is conn:
            fresh = self._outbound[conn.peer] = _Connection(self, conn.peer, inbound=False)
            fresh.dialer = greenlets.spawn(self._dial, fresh, RECONNECT_MIN_S)
            if self.on_reset is not None:
                self.on_reset(conn.peer)

    # -- the side that follows streams ---------------------------------------------

    def reply(self, identity: bytes, data: bytes) -> None:
        conn = self._named.get(identity)
        if conn is None or not conn.write(data):
            self.counters["reply_dropped"] += 1

    def _on_acceptable(self) -> None:
        for _ in range(16):
            try:
                fd, _addr = self._listener._accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE):
                    log.error("data link cannot accept: out of file descriptors")
                return
            sock = _socket.socket(self._listener.family, socket.SOCK_STREAM, 0, fd)
            if len(self._inbound) >= MAX_INBOUND:
                self.counters["refused"] += 1      # (a member needs one per primary it follows)
                sock.close()
                continue
            conn = _Connection(self, None, inbound=True)
            conn.attach(sock)
            self._inbound.add(conn)

    def _frames_read(self, conn: _Connection, frames: list[bytes]) -> None:
        for data in frames:
            if conn.closed:
                return
            frame = decode(data)
            if frame is None or (conn.peer is not None and frame.sender != conn.peer):
                # (not a frame, or a connection speaking for two members: it is dropped)
                self.counters["invalid"] += 1
                self._broken(conn, "an invalid frame")
                return
            if not conn.inbound:
                self._deliver(frame, None)
                continue
            if conn.peer is None:
                conn.peer = frame.sender
                previous = self._named.get(frame.sender.encode())
                # a primary that reconnects (restarted, or its link was reset) takes its name back
                self._named[frame.sender.encode()] = conn
                if previous is not None and previous is not conn:
                    self._inbound.discard(previous)
                    previous.close()
            self._deliver(frame, frame.sender.encode())
        if conn.inbound:
            self._drained()
