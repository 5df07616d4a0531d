"""Serve the status app from its own OS thread and hub, so that HTTP load never stalls the RESP hub.

On the node's hub, every HTTP request cost ~6 ms of hub time (Flask, JSON, the
snapshot): 2,000 requests finishing at once kept a bystander's PING waiting
7-9 s, and 3,000 half-open connections 8-10 s. Here the WSGI server runs in a
native thread with a gevent hub of its own; the RESP hub only builds the
snapshots, one for all the requests waiting at a time (SnapshotRelay), and
the two threads share no mutable state (a snapshot is a fresh dict of plain
values, see hypercache/status.py). The interpreter lock still serialises
Python code, but it is handed over every few milliseconds
(sys.getswitchinterval()), so the RESP hub waits at most that long for it.

The web thread also caps its connections (MAX_CONNECTIONS: past it new ones
wait in the kernel's backlog) and closes a connection idle for IDLE_TIMEOUT_S
(a half-open request holds no more than that).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent import monkey

log = logging.getLogger(__name__)

SNAPSHOT_WAIT_S = 5.0        # a hub stalled this long gets a 503 instead of a hung page
MAX_CONNECTIONS = 256
IDLE_TIMEOUT_S = 10.0

_start_thread = monkey.get_original("_thread", "start_new_thread")
_allocate_lock = monkey.get_original("_thread", "allocate_lock")


class SnapshotRelay:
    """Called from the web thread: a snapshot taken on the node's hub, reused while it is fresh."""

    def __init__(self, take: Callable[[], dict], node_hub: Any) -> None:
        self._take = take
        self._node_loop = node_hub.loop
        self._lock = _allocate_lock()        # one request at a time asks the node's hub
        self._value: dict | None = None
        self._started_at = float("-inf")   # when the held snapshot was asked for

    def __call__(self) -> dict:
        arrived_at = time.monotonic()
        with self._lock:
            # Requests that queued behind a snapshot started after they arrived share it:
            # the reply is never older than the request (a SET is seen by the next scrape),
            # and a storm costs the hub one snapshot per round, not one per request.
            if self._value is None or self._started_at < arrived_at:
                started_at = time.monotonic()
                self._value = self._ask()
                self._started_at = started_at
            return self._value

    def _ask(self) -> dict:
        """Run the snapshot on the node's hub and wait for it (blocking this thread only)."""
        done = _allocate_lock()
        done.acquire()
        box: list = []

        def take() -> None:
            try:
                box.append(self._take())
            except BaseException as error:   # noqa: BLE001 - raised again in the web thread
                box.append(error)
            finally:
                done.release()

        self._node_loop.run_callback_threadsafe(take)
        if not done.acquire(timeout=SNAPSHOT_WAIT_S):
            raise TimeoutError("the node's hub did not answer for a snapshot")
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]


class StatusServer:
    """The status app's WSGI server, running in its own thread; start() returns once it listens."""

    def __init__(self, snapshot: Callable[[], dict], host: str, port: int) -> None:
        self._relay = SnapshotRelay(snapshot, gevent.get_hub())
        self._host, self._port = host, port
        self._server = None
        self._loop = None
        self._ready = _allocate_lock()
        self._ready.acquire()
        self._finished = _allocate_lock()
        self._finished.acquire()
        self._error: BaseException | None = None
        self.server_port = 0

    def start(self, timeout_s: float = 30.0) -> None:
        _start_thread(self._run, ())
        if not self._ready.acquire(timeout=timeout_s):
            raise TimeoutError("the status server did not start")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        from gevent.pool import Pool

        import web
        try:
            hub = gevent.get_hub()       # this thread's own hub
            self._loop = hub.loop
            self._server = web.serve(self._relay, self._host, self._port, spawn=Pool(MAX_CONNECTIONS),
                                     idle_timeout_s=IDLE_TIMEOUT_S)
            self.server_port = self._server.server_port
        except BaseException as error:   # noqa: BLE001 - start() raises it in the node's thread
            self._error = error
            self._ready.release()
            self._finished.release()
            return
        self._ready.release()
        try:
            self._server.serve_forever()
        except BaseException:  # noqa: BLE001 - a web failure must not take the node down
            log.exception("status server stopped")
        finally:
            self._finished.release()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop serving and wait (up to `timeout` s) for the thread to end."""
        if self._server is None or self._loop is None:
            return
        self._loop.run_callback_threadsafe(lambda: gevent.spawn(self._server.stop, timeout))
        self._finished.acquire(timeout=timeout + 1)
