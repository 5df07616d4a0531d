"""Run the mesh's ZAP handler: a zmq.green REP socket that lets in only allow-listed CURVE keys.

libzmq asks the handler bound at inproc://zeromq.zap.01 *in the same context*
about every peer that a CURVE server socket handshakes with (whichever side
connected: with a cluster secret, the mesh's SUBs are CURVE servers). Without a handler,
CURVE accepts any key, so the bus refuses to bind its mesh unless `running`
is true, and its sockets set ZAP_ENFORCE_DOMAIN so that a handler that dies
later means refused connections, not open ones. The verdict is mesh/curve.py's.
"""
from __future__ import annotations

import collections
import logging
from typing import Callable

import gevent
import zmq.green as zmq

from mesh.curve import zap_verdict

log = logging.getLogger(__name__)

ZAP_ENDPOINT = "inproc://zeromq.zap.01"


class ZapHandler:
    def __init__(self, context: zmq.Context, admits: Callable[[bytes, bytes], bool], node: str = "") -> None:
        """`admits(domain, z85 key)` decides (mesh/curve.py's MeshKeys.admits, with what the links endorsed)."""
        self._context = context
        self._admits = admits
        self._node = node[:8]
        self._socket: zmq.Socket | None = None
        self._greenlet: gevent.Greenlet | None = None
        self.counters: collections.Counter[str] = collections.Counter()

    @property
    def running(self) -> bool:
        return self._socket is not None and self._greenlet is not None and not self._greenlet.dead

    def start(self) -> None:
        socket = self._context.socket(zmq.REP)
        socket.setsockopt(zmq.LINGER, 0)
        socket.bind(ZAP_ENDPOINT)      # raises if another handler already serves this context
        self._socket = socket
        self._greenlet = gevent.spawn(self._serve)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill()
        if self._socket is not None:
            self._socket.close(linger=0)
        self._socket = None

    def _serve(self) -> None:
        assert self._socket is not None
        while True:
            request = self._socket.recv_multipart()
            reply, key = zap_verdict(request, self._admits)
            if key is None:
                self.counters["denied"] += 1
                log.warning("mesh zap denied node=%s peer_address=%s reason=%s", self._node,
                            request[3].decode(errors="replace") if len(request) > 3 else "?",
                            reply[3].decode())
            else:
                self.counters["allowed"] += 1
            self._socket.send_multipart(reply)
