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
only the asking greenlet waits. A worker that dies, or that makes no progress
(not one tick of CPU) for `deadline_s` while it owes an answer, or that is
still on one placement after RUNNING_AT_MOST_S, is killed and started again on
the next request: a slow worker on a starved machine is left to finish, a
stopped one is not. After WORKERS_LOST_AT_MOST losses in a row,
placements run in a thread for a while, as before, with a warning.
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

from hypercache import compiled
from mesh.placement_worker import LENGTH, PLACEMENTS, READY, placements, read_exactly

log = logging.getLogger(__name__)

# A worker that owes an answer and gets not one tick of CPU for this long is taken for hung
# (stopped, swapping, stuck in the kernel): without a limit the proposer, waiting for it, would
# never propose again. (A placement at 100 members takes ~1 s of a quiet core and several at
# nice 10 on a busy machine, but it gets CPU meanwhile.)
DEADLINE_S = 60.0
# how often the CPU of a worker that owes an answer is looked at
PROGRESS_EVERY_S = 1.0
# ...and how long it may run on one placement at all: a placement that never ends (a fault, or an
# insider's proposal of thousands of members) must not hold every later one back for good
RUNNING_AT_MOST_S = 600.0
# how long a new worker may take to import its modules and say it is ready
READY_WITHIN_S = 60.0
# workers lost one after the other (dead, hung or not ready) before placements go to a thread
# for a while, and how long that while is
WORKERS_LOST_AT_MOST = 3
IN_THREAD_FOR_S = 60.0


def run_in_thread(name: str, args: tuple) -> Any:
    """Run a placement in gevent's thread pool; only the calling greenlet waits (the GIL is shared)."""
    return gevent.get_hub().threadpool.apply(placements()[name], args)


def _worker_environment() -> dict[str, str]:
    """The node's environment, with this source tree on the worker's path unless it is installed,
    and the node's choice of compiled or Python code (hypercache/compiled.py), so that both place alike.

    The worker runs with -P (no current directory on its path: a `mesh/` there must not be
    imported instead of the node's own), so a node run from a checkout names the checkout."""
    env = dict(os.environ)
    root = os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    installed = {os.path.realpath(path) for path in [*site.getsitepackages(), site.getusersitepackages()]}
    inherited = [path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path not in ("", ".")]
    env["PYTHONPATH"] = os.pathsep.join(inherited if root in installed else [root, *inherited])
    if not compiled.COMPILED:
        env["HYPERCACHE_PURE"] = "1"
    return env


def cpu_ticks(pid: int) -> int | None:
    """A process's CPU so far (user + system, in clock ticks), None where /proc cannot say."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


class PlacerClosed(RuntimeError):
    """The node is stopping: no placement runs any more."""


class _Lost(Exception):
    """The worker is gone or hung: a new one for the next request."""


class _Progress:
    """Whether a worker that owes this node something still runs: its CPU, looked at now and then."""

    def __init__(self, pid: int, deadline_s: float) -> None:
        self.pid, self.deadline_s = pid, deadline_s
        self.ticks, self.since = cpu_ticks(pid), time.monotonic()
        self.began = self.since

    def check(self) -> None:
        """Raise _Lost once the worker used no CPU for the deadline (the wall clock, where /proc cannot
        say), or ran on one placement for RUNNING_AT_MOST_S."""
        now, seen = time.monotonic(), cpu_ticks(self.pid)
        if now - self.began >= RUNNING_AT_MOST_S:
            raise _Lost(f"still placing after {RUNNING_AT_MOST_S:g}s")
        if seen is not None and seen != self.ticks:
            self.ticks, self.since = seen, now
        elif now - self.since >= self.deadline_s:
            raise _Lost(f"no progress in {self.deadline_s:g}s")


class Placer:
    """One worker process of low priority, asked one placement at a time (cooperatively, under gevent)."""

    def __init__(self, node_id: str, deadline_s: float = DEADLINE_S,
                 counters: dict[str, int] | None = None, progress_every_s: float = PROGRESS_EVERY_S) -> None:
        self._node_id = node_id
        self._deadline_s = deadline_s
        self._progress_every_s = progress_every_s
        self._process: subprocess.Popen | None = None
        self._socket: Any = None
        self._lock = gevent.lock.Semaphore()
        self._ready = False                 # the worker said READY on its socket
        self._closed = False
        self._lost_in_a_row = 0             # workers lost since the last answer
        self._in_thread_until = float("-inf")   # placements run in a thread until then (monotonic)
        # workers started (a restart counts), placements run in a thread instead
        self.counters = counters if counters is not None else {}

    def start(self) -> None:
        """Start the worker now, ahead of the first placement (the node's heap is small yet). It is not
        waited for: the node's start goes on while the worker imports (the first placement waits)."""
        with self._lock:
            if self._process is None and not self._closed:
                self._spawn()

    def call(self, name: str, *args: Any) -> Any:
        """Return `mesh.election.<name>(*args)`, run in the worker; only the calling greenlet waits."""
        if name not in PLACEMENTS:
            raise ValueError(f"not a placement: {name}")
        with self._lock:
            if self._closed:
                raise PlacerClosed("the mesh is stopping")
            if time.monotonic() >= self._in_thread_until:
                if self._socket is None or self._process is None or self._process.poll() is not None:
                    self._spawn()
                if self._socket is not None and not self._ready:
                    self._await_ready()
                if self._closed:
                    raise PlacerClosed("the mesh is stopping")
                if self._socket is not None:
                    return self._ask(name, args)
            self.counters["placements_in_thread"] = self.counters.get("placements_in_thread", 0) + 1
            return run_in_thread(name, args)

    def _spawn(self) -> None:
        self._stop_worker()
        mine = theirs = None
        try:
            mine, theirs = socket.socketpair()
            # its stdin is its end of the socket; its stdout and stderr are the node's
            self._process = subprocess.Popen([sys.executable, "-P", "-m", "mesh.placement_worker"],
                                             stdin=theirs.fileno(), close_fds=True, env=_worker_environment())
            self._socket, self._ready, mine = mine, False, None
            self.counters["placer_workers_started"] = self.counters.get("placer_workers_started", 0) + 1
        except OSError as error:
            self._stop_worker()
            self._lost(f"no worker process: {error}")
        finally:
            for end in (mine, theirs):
                if end is not None:
                    end.close()

    def _await_ready(self) -> None:
        """Wait for the new worker's READY (its imports done), so that the deadline is for placements only."""
        sock = self._socket
        try:
            with gevent.Timeout(READY_WITHIN_S, _Lost(f"not ready within {READY_WITHIN_S:.0f}s")):
                if read_exactly(sock, len(READY)) != READY:
                    raise _Lost("a worker that does not speak this protocol")
        except BaseException as error:
            self._stop_worker()     # (half a READY read: no later request may read the rest)
            if not isinstance(error, (_Lost, OSError, EOFError)):
                raise
            if not self._closed:
                self._lost(f"no worker process: {error}")
            return
        sock.settimeout(self._progress_every_s)
        self._ready = True

    def _ask(self, name: str, args: tuple) -> Any:
        sock, process = self._socket, self._process
        assert sock is not None and process is not None
        request = pickle.dumps((name, args), protocol=pickle.HIGHEST_PROTOCOL)
        # (the whole exchange waits on the worker's progress: a request of two 100-member maps is
        # more than the socket holds, so a hung worker would leave even the sending stuck)
        progress = _Progress(process.pid, self._deadline_s)
        try:
            _send_all(sock, LENGTH.pack(len(request)) + request, progress)
            (length,) = LENGTH.unpack(_receive(sock, LENGTH.size, progress))
            ok, value = pickle.loads(_receive(sock, length, progress))
        except BaseException as error:
            # Whatever broke the exchange (the worker's death or hang, this greenlet killed, the
            # node stopping), its answer may still come: a later request would read it as its
            # own. A new worker for the next one.
            self._stop_worker()
            if not isinstance(error, Exception):
                raise       # (this greenlet killed: it goes, whatever else is happening)
            if self._closed:
                raise PlacerClosed("the mesh is stopping") from None
            if isinstance(error, (_Lost, OSError, EOFError)):
                self._lost(str(error))
                raise RuntimeError(f"ring placement worker lost: {error}") from None
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
        # Both handles are let go first, so that a second caller meanwhile finds nothing to stop.
        # (The worker also exits by itself once this end of the socket closes, even if the node
        # is killed.)
        sock, self._socket = self._socket, None
        process, self._process = self._process, None
        if sock is not None:
            sock.close()
        if process is not None:
            if process.poll() is None:
                process.kill()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                # (stuck in the kernel: gevent reaps it whenever it ends; the node goes on)
                log.warning("ring placement worker pid=%d did not end within 5s of its kill node=%s",
                            process.pid, self._node_id[:8])


def _send_all(sock: Any, data: bytes, progress: _Progress) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view):]
        except socket.timeout:
            progress.check()


def _receive(sock: Any, size: int, progress: _Progress) -> bytes:
    chunks = []
    while size:
        try:
            chunk = sock.recv(min(size, 1 << 20))
        except socket.timeout:
            progress.check()
            continue
        if not chunk:
            raise EOFError("the worker closed its socket")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
