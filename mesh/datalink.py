"""The data channel: point-to-point ZeroMQ sockets that carry replication streams between members.

The control plane (mesh/links.py: PUB/SUB) drops on a full queue, has no
acknowledgements and caps messages at 1 MiB, so data travels here instead.
Every node binds a ROUTER on its data port (its mesh port + DATA_PORT_OFFSET);
a primary connects one DEALER, named with its node id, to each replica's
ROUTER. Frames (mesh/replication.py) go DEALER -> ROUTER, acknowledgements
ROUTER -> DEALER on the same connection. With mesh keys the ROUTER is a CURVE
server behind the mesh's ZAP allow-list and every DEALER pins its peer's key
(with a cluster secret, the one key pair every member derives from it),
exactly as the mesh's sockets do.

Only I/O: frames are decoded here and handed to `on_frame`; deciding is the
replicator's (hypercache/replication.py).
"""
from __future__ import annotations

import collections
import logging
from typing import Callable

import gevent
import zmq.green as zmq

from mesh.curve import MeshKeys
from mesh.links import curve_client, curve_server
from mesh.replication import Frame, decode

log = logging.getLogger(__name__)

DATA_PORT_OFFSET = 10000          # data port = mesh port + this (RESP port + 20000 by default)
# A frame carries whole values (up to Redis's 512 MB bulk) plus their framing.
MAX_FRAME_BYTES = 600 * 1024 * 1024
# Frames queued per peer before send() reports back-pressure; the stream's own
# in-flight accounting (OutStream) bounds memory long before this.
SEND_HWM = 100_000
DRAIN_FRAMES = 256          # frames read in one go before acknowledging them


def data_port(mesh_port: int) -> int:
    return mesh_port + DATA_PORT_OFFSET


class DataLink:
    """One ROUTER for the streams this node replicates, one DEALER per replica it feeds."""

    def __init__(self, node_id: str, bind_host: str, port: int, context: zmq.Context,
                 keys: MeshKeys | None, on_frame: Callable[[Frame, bytes | None], None],
                 on_drained: Callable[[], None] = lambda: None) -> None:
        self.node_id = node_id
        self._bind = f"tcp://{'[' + bind_host + ']' if ':' in bind_host else bind_host}:{port}"
        self._context = context
        self._keys = keys
        self._on_frame = on_frame
        # called once the frames queued on the ROUTER have been read: the replicator
        # acknowledges them with one frame per stream instead of one per frame
        self._on_drained = on_drained
        self._router: zmq.Socket | None = None
        self._dealers: dict[str, zmq.Socket] = {}
        self._readers: dict[str, gevent.Greenlet] = {}
        self._greenlets: list[gevent.Greenlet] = []
        self.counters: collections.Counter[str] = collections.Counter()

    def open(self) -> None:
        router = self._context.socket(zmq.ROUTER)
        if self._keys is not None:
            curve_server(router, self._keys)
        # a primary that reconnects (restarted, or its link was reset) takes its name back
        router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        router.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        router.setsockopt(zmq.SNDHWM, SEND_HWM)
        router.setsockopt(zmq.RCVHWM, SEND_HWM)
        router.setsockopt(zmq.LINGER, 0)
        router.bind(self._bind)
        self._router = router
        self._greenlets.append(gevent.spawn(self._read_router))

    def close(self) -> None:
        gevent.killall(self._greenlets + list(self._readers.values()), block=False)
        for node_id in list(self._dealers):
            self.disconnect(node_id)
        if self._router is not None:
            self._router.close(linger=0)
            self._router = None

    # -- the primary's side: one DEALER per replica ---------------------------------

    def connect(self, node_id: str, host: str, port: int) -> None:
        if node_id in self._dealers:
            return
        dealer = self._context.socket(zmq.DEALER)
        if self._keys is not None:
            server_key = self._keys.server_key(node_id)
            if server_key is None:
                log.warning("no mesh key for replica node=%s: not connecting its data channel", node_id[:8])
                dealer.close(linger=0)
                return
            curve_client(dealer, self._keys, server_key)
        dealer.setsockopt(zmq.IDENTITY, self.node_id.encode())
        dealer.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        dealer.setsockopt(zmq.SNDHWM, SEND_HWM)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(f"tcp://{'[' + host + ']' if ':' in host else host}:{port}")
        self._dealers[node_id] = dealer
        self._readers[node_id] = gevent.spawn(self._read_dealer, node_id, dealer)

    def disconnect(self, node_id: str) -> None:
        reader = self._readers.pop(node_id, None)
        if reader is not None:
            reader.kill(block=False)
        dealer = self._dealers.pop(node_id, None)
        if dealer is not None:
            dealer.close(linger=0)

    def send(self, node_id: str, data: bytes) -> bool:
        """Queue a frame for a replica; False when there is no link or its queue is full."""
        dealer = self._dealers.get(node_id)
        if dealer is None:
            return False
        try:
            dealer.send(data, zmq.NOBLOCK)
        except zmq.Again:
            self.counters["send_full"] += 1
            return False
        self.counters["out"] += 1
        return True

    def _read_dealer(self, node_id: str, dealer: zmq.Socket) -> None:
        while True:
            try:
                data = dealer.recv()
            except zmq.ZMQError:
                return      # closed under us
            frame = decode(data)
            if frame is None or frame.sender != node_id:
                self.counters["invalid"] += 1
                continue
            self._deliver(frame, None)

    # -- the replica's side: the ROUTER ---------------------------------------------

    def reply(self, identity: bytes, data: bytes) -> None:
        if self._router is None:
            return
        try:
            self._router.send_multipart((identity, data), zmq.NOBLOCK)
        except zmq.ZMQError:
            self.counters["reply_dropped"] += 1

    def _read_router(self) -> None:
        router = self._router
        while True:
            flags = 0       # wait for the first frame, then take what is queued behind it
            for _ in range(DRAIN_FRAMES):
                try:
                    parts = router.recv_multipart(flags, copy=True)
                except zmq.Again:
                    break
                except zmq.ZMQError:
                    return
                flags = zmq.NOBLOCK
                if len(parts) != 2:
                    self.counters["invalid"] += 1
                    continue
                identity, data = parts
                frame = decode(data)
                # the sender must be who its connection says it is (its DEALER's name; with
                # CURVE, a name only the holder of that member's key could connect under)
                if frame is None or frame.sender.encode() != identity:
                    self.counters["invalid"] += 1
                    continue
                self._deliver(frame, identity)
            try:
                self._on_drained()
            except Exception:
                log.exception("data frames drained: acknowledging failed node=%s", self.node_id[:8])

    def _deliver(self, frame: Frame, identity: bytes | None) -> None:
        self.counters["in"] += 1
        try:
            self._on_frame(frame, identity)
        except Exception:   # one bad frame must not end the reader every stream depends on
            log.exception("data frame failed node=%s sender=%s kind=%d", self.node_id[:8],
                          frame.sender[:8], frame.kind)
