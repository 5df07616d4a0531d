"""Run the ring placements of a node's map decisions in a worker process of low priority.

Placing newcomers on the ring is pure and CPU-bound: 0.13 s of a quiet core for
10 newcomers on 70 members (mesh/ring.py, compiled), and every member places
each batch of joiners two or three times (the plan ahead for the joiners' copies,
the proposal, each voter's check of it: mesh/election.py). Run in a thread of the
node's own process, a placement holds the GIL for as long as compiled code runs
without a break: a 10 ms timer in the hub came 12.6 ms late (median) while one
ran, 0.2 ms with the worker (loadtest/placement_stall.py, README). On a machine
with more nodes than cores it also shares the CPU with every node's heartbeats
at the same priority: in a real 100-member run on two cores the seed, placing
a proposal's joiners in two threads at once, was suspected 195 times.

Here the placement runs in one worker process per node (mesh/placement_worker.py),
at `nice` 10 above the node: the node's hub keeps the GIL to itself, and the
kernel runs every node's heartbeats before any node's placements. The worker
starts with the mesh, while the node's heap is small (starting it is a fork).
The work and its answer cross a socket pair as pickles, between this node and
its own child, one request at a time (the worker's lru caches serve the
repeats: a voter's check of a proposal is the plan ahead it made already), and
only the asking greenlet waits. A worker that dies, or takes longer than
`deadline_s`, is killed and started again on the next request; while it cannot
be started, placements run in a thread, as before, with a warning.
"""
from __future__ import annotations

import logging
import os
import pickle
import site
import sys
import time
from typing import Any

import gevent
import gevent.lock
from gevent import socket, subprocess

from mesh.placement_worker import LENGTH, PLACEMENTS, placements, read_exactly

log = logging.getLogger(__name__)

# A placement at 100 members takes ~1 s of a quiet core; at nice 10 on a busy machine, several.
# One that takes longer than this is taken for a hung worker (stopped, swapping): without a
# deadline the proposer, waiting for it, would never propose again.
DEADLINE_S = 60.0
# workers lost one after the other (dead or past the deadline) before placements go to a
# thread for a while, and how long that while is
WORKERS_LOST_AT_MOST = 3
IN_THREAD_FOR_S = 60.0


def run_in_thread(name: str, args: tuple) -> Any:
    """Run a placement in gevent's thread pool; only the calling greenlet waits (the GIL is shared)."""
    return gevent.get_hub().threadpool.apply(placements()[name], args)


def _worker_environment() -> dict[str, str]:
    """The node's environment, with this source tree on the worker's path unless it is installed.

    The worker runs with -P (no current directory on its path: a `mesh/` there must not be
    imported instead of the node's own), so a node run from a checkout names the checkout."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    installed = set(site.getsitepackages()) | {site.getusersitepackages()}
    if root in installed:
        return dict(os.environ)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH")))))


class PlacerClosed(RuntimeError):
    """The node is stopping: no placement runs any more."""


class Placer:
    """One worker process of low priority, asked one placement at a time (cooperatively, under gevent)."""

    def __init__(self, node_id: str, deadline_s: float = DEADLINE_S,
                 counters: dict[str, int] | None = None) -> None:
        self._node_id = node_id
        self._deadline_s = deadline_s
        self._process: subprocess.Popen | None = None
        self._socket: socket.socket | None = None
        self._lock = gevent.lock.Semaphore()
        self._closed = False
        self._lost_in_a_row = 0             # workers lost since the last answer
        self._in_thread_until = float("-inf")   # placements run in a thread until then (monotonic)
        # workers started (a restart counts), placements run in a thread instead
        self.counters = counters if counters is not None else {}

    def start(self) -> None:
        """Start the worker now, ahead of the first placement (the node's heap is small yet)."""
        with self._lock:
            if self._process is None and not self._closed:
                self._start()

    def call(self, name: str, *args: Any) -> Any:
        """Return `mesh.election.<name>(*args)`, run in the worker; only the calling greenlet waits."""
        if name not in PLACEMENTS:
            raise ValueError(f"not a placement: {name}")
        with self._lock:
            if self._closed:
                raise PlacerClosed("the mesh is stopping")
            if time.monotonic() < self._in_thread_until:
                self.counters["placements_in_thread"] = self.counters.get("placements_in_thread", 0) + 1
                return run_in_thread(name, args)
            if self._process is None or self._process.poll() is not None:
                self._start()
                if self._process is None:
                    self.counters["placements_in_thread"] = self.counters.get("placements_in_thread", 0) + 1
                    return run_in_thread(name, args)
            return self._ask(name, args)

    def _start(self) -> None:
        self._stop_worker()
        mine = theirs = None
        try:
            mine, theirs = socket.socketpair()
            # its stdin is its end of the socket; its stdout and stderr are the node's
            self._process = subprocess.Popen([sys.executable, "-P", "-m", "mesh.placement_worker"], stdin=theirs.fileno(),
                                             close_fds=True, env=_worker_environment())
            self._socket, mine = mine, None
            self.counters["placer_workers_started"] = self.counters.get("placer_workers_started", 0) + 1
        except OSError as error:
            self._lost(f"no worker process: {error}")
        finally:
            for end in (mine, theirs):
                if end is not None:
                    end.close()

    def _ask(self, name: str, args: tuple) -> Any:
        sock = self._socket
        assert sock is not None
        request = pickle.dumps((name, args), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            with gevent.Timeout(self._deadline_s):
                sock.sendall(LENGTH.pack(len(request)) + request)
                (length,) = LENGTH.unpack(read_exactly(sock, LENGTH.size))
                ok, value = pickle.loads(read_exactly(sock, length))
        except BaseException as error:
            # Whatever broke the exchange (the worker's death, the deadline, this greenlet killed),
            # its answer may still come: a later request would read it as its own. A new worker.
            self._stop_worker()
            if isinstance(error, gevent.Timeout):
                self._lost(f"no answer within {self._deadline_s:.0f}s")
                raise RuntimeError(f"ring placement took longer than {self._deadline_s:.0f}s") from None
            if isinstance(error, (OSError, EOFError)):
                self._lost(str(error))
                raise RuntimeError(f"ring placement worker lost: {error}") from error
            raise
        self._lost_in_a_row = 0
        if not ok:
            raise RuntimeError(f"ring placement failed in the worker: {value}")
        return value

    def _lost(self, why: str) -> None:
        self._lost_in_a_row += 1
        if self._lost_in_a_row >= WORKERS_LOST_AT_MOST:
            self._lost_in_a_row = 0
            self._in_thread_until = time.monotonic() + IN_THREAD_FOR_S
            log.warning("ring placements run in a thread of this node for %.0fs node=%s: %d workers lost "
                        "in a row, the last: %s", IN_THREAD_FOR_S, self._node_id[:8], WORKERS_LOST_AT_MOST, why)
        else:
            log.warning("ring placement worker lost node=%s: %s", self._node_id[:8], why)

    def close(self) -> None:
        """Stop the worker for good: later calls raise PlacerClosed (the node is stopping)."""
        self._closed = True
        self._stop_worker()

    def _stop_worker(self) -> None:
        # (the worker also exits by itself once this end of the socket closes, even if the node is killed)
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._process = None

