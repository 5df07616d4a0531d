"""The data channel over ZeroMQ with CURVE: what mesh/datalink.py uses when the mesh has keys.

Every node binds a ROUTER on its data port; a primary connects one DEALER,
named with its node id, to each replica's ROUTER. Frames go DEALER -> ROUTER,
acknowledgements ROUTER -> DEALER on the same connection. The ROUTER is a
CURVE server behind the mesh's ZAP handler and every DEALER presents its
node's own key and pins its peer's (with a cluster secret, the ROUTER presents
the cluster key, and lets in only own keys the mesh endorsed): only members
feed a replica, streams are encrypted, and a frame is taken only from the
member whose key its connection proved (ZeroMQ's User-Id is that key's node
id), never from another member that names itself after the sender. Each message crosses ZeroMQ's I/O thread, which costs several times
what plain TCP does (mesh/datalink.py says how much).
"""
from __future__ import annotations

import logging
from typing import Callable

import gevent
import zmq.green as zmq

from mesh import greenlets
from mesh.curve import DATA_DOMAIN, MeshKeys
from mesh.datalink import MAX_FRAME_BYTES, SEND_HWM, Deliveries, OnFrame
from mesh.links import curve_client, curve_server
from mesh.replication import decode

log = logging.getLogger(__name__)

DRAIN_FRAMES = 256          # frames read in one go before acknowledging them


class CurveLink(Deliveries):
    """One ROUTER for the streams this node follows, one DEALER per peer it sends to."""

    def __init__(self, node_id: str, bind_host: str, port: int, context: zmq.Context,
                 keys: MeshKeys, on_frame: OnFrame, on_drained: Callable[[], None] = lambda: None) -> None:
        super().__init__(node_id, on_frame, on_drained)
        self._bind = f"tcp://{'[' + bind_host + ']' if ':' in bind_host else bind_host}:{port}"
        self._context = context
        self._keys = keys
        self._router: zmq.Socket | None = None
        self._dealers: dict[str, zmq.Socket] = {}
        self._readers: dict[str, gevent.Greenlet] = {}
        self._greenlets: list[gevent.Greenlet] = []

    def open(self) -> None:
        router = self._context.socket(zmq.ROUTER)
        if self._keys.shared:
            curve_server(router, self._keys.cluster_public, self._keys.cluster_secret, DATA_DOMAIN)
        else:
            curve_server(router, self._keys.public, self._keys.secret, DATA_DOMAIN)
        # a primary that reconnects (restarted, or its link was reset) takes its name back
        router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        router.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        router.setsockopt(zmq.SNDHWM, SEND_HWM)
        router.setsockopt(zmq.RCVHWM, SEND_HWM)
        router.setsockopt(zmq.LINGER, 0)
        router.bind(self._bind)
        self._router = router
        self._greenlets.append(greenlets.spawn(self._read_router))

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
        server_key = self._keys.server_key(node_id)
        if server_key is None:
            log.warning("no mesh key for replica node=%s: not connecting its data channel", node_id[:8])
            return
        dealer = self._context.socket(zmq.DEALER)
        curve_client(dealer, self._keys, server_key)
        dealer.setsockopt(zmq.IDENTITY, self.node_id.encode())
        dealer.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        dealer.setsockopt(zmq.SNDHWM, SEND_HWM)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(f"tcp://{'[' + host + ']' if ':' in host else host}:{port}")
        self._dealers[node_id] = dealer
        self._readers[node_id] = greenlets.spawn(self._read_dealer, node_id, dealer)

    def peers(self) -> set[str]:
        """The peers we opened a connection to."""
        return set(self._dealers)

    def disconnect(self, node_id: str) -> None:
        reader = self._readers.pop(node_id, None)
        if reader is not None:
            reader.kill(block=False)
        dealer = self._dealers.pop(node_id, None)
        if dealer is not None:
            dealer.close(linger=0)

    def send(self, node_id: str, data: bytes | list[bytes | memoryview]) -> bool:
        """Queue a frame for a replica; False when there is no link or its queue is full."""
        dealer = self._dealers.get(node_id)
        if dealer is None:
            return False
        if isinstance(data, list):      # (one ZeroMQ message: its parts joined)
            data = b"".join(data)
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
        assert router is not None       # (open starts this reader once the socket exists)
        while True:
            flags = 0       # wait for the first frame, then take what is queued behind it
            for _ in range(DRAIN_FRAMES):
                try:
                    parts = router.recv_multipart(flags, copy=False)
                except zmq.Again:
                    break
                except zmq.ZMQError:
                    return
                flags = zmq.NOBLOCK
                if len(parts) != 2:
                    self.counters["invalid"] += 1
                    continue
                identity, data = parts[0].bytes, parts[1].bytes
                frame = decode(data)
                # the sender must be who its connection proved to be (the User-Id the ZAP handler
                # gave its key), not only who it named its DEALER: any member can pick a name
                if frame is None or frame.sender.encode() != identity or parts[1].get("User-Id") != frame.sender:
                    self.counters["invalid"] += 1
                    continue
                self._deliver(frame, identity)
            self._drained()
