"""Run the ring placements of a node's map decisions in a worker process of low priority.

Placing newcomers on the ring is pure and CPU-bound: 0.13 s of a quiet core for
10 newcomers on 70 members (mesh/ring.py, compiled), and every member places
each batch of joiners two or three times (the plan ahead for the joiners' copies,
the proposal, each voter's check of it: mesh/election.py). Run in a thread of the
node's own process, a placement shares the GIL with the hub, and on a machine with
more nodes than cores it shares the CPU with every other node's heartbeats at the
same priority. In a real 100-member run on two cores (README, "How the mesh
scales") the seed, placing a proposal's joiners in two threads at once, went
silent past node_timeout and was suspected 195 times by its peers.

Here the placement runs in one worker process per node (`python -m mesh.placer`),
at `nice` 10 above the node: the node's hub keeps the GIL to itself, and the
kernel runs every node's heartbeats before any node's placements. The work and
its answer cross a socket pair as pickles, from and to this node's own child. One
request at a time (the worker's lru caches serve the repeats: the voter's check
of a proposal is the plan ahead it made already). A worker that dies is started
again on the next request; one that cannot start leaves the node placing in a
thread, as before, with a warning.
"""
from __future__ import annotations

import logging
import os
import pickle
import socket
import struct
import subprocess
import sys
from typing import Any, Callable

log = logging.getLogger(__name__)

# how much less the worker's CPU counts than the node's (the kernel's nice, 0-19)
WORKER_NICE = 10
_LENGTH = struct.Struct("!I")
# the placements a worker runs, by name
_FUNCTIONS = ("plan", "follows", "rebalanced")
# workers that end before answering, one after the other, before the node places in a thread
WORKERS_LOST_AT_MOST = 3
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _functions() -> dict[str, Callable[..., Any]]:
    from mesh import election
    return {name: getattr(election, name) for name in _FUNCTIONS}


def run_here(name: str, args: tuple) -> Any:
    """Run a placement in the calling thread (the simulation's members: virtual time, no worker)."""
    return _functions()[name](*args)


def run_in_thread(name: str, args: tuple) -> Any:
    """Run a placement in gevent's thread pool; only the calling greenlet waits (the GIL is shared)."""
    import gevent
    return gevent.get_hub().threadpool.apply(_functions()[name], args)


class Placer:
    """One worker process of low priority, asked one placement at a time (cooperatively, under gevent)."""

    def __init__(self, node_id: str) -> None:
        self._node_id = node_id
        self._process: subprocess.Popen | None = None
        self._socket: socket.socket | None = None
        self._lock: Any = None
        self._in_thread = False     # the worker could not start: place in a thread instead
        self.started = 0            # workers started (a restart after a death counts)
        self._lost_in_a_row = 0     # workers lost before answering anything since the last answer

    def call(self, name: str, *args: Any) -> Any:
        """Return `mesh.election.<name>(*args)`, run in the worker; only the calling greenlet waits."""
        if name not in _FUNCTIONS:
            raise ValueError(f"not a placement: {name}")
        import gevent.lock
        if self._lock is None:
            self._lock = gevent.lock.Semaphore()
        with self._lock:
            if not self._in_thread and (self._process is None or self._process.poll() is not None):
                self._start()
            if self._in_thread:
                return run_in_thread(name, args)
            return self._ask(name, args)

    def _start(self) -> None:
        self.close()
        if self._lost_in_a_row >= WORKERS_LOST_AT_MOST:
            self._give_up(f"{self._lost_in_a_row} workers in a row ended before answering")
            return
        # (the worker finds mesh/ on its path wherever the node was started from)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (REPO, os.environ.get("PYTHONPATH")))))
        try:
            mine, theirs = socket.socketpair()
            with theirs:
                # its stdin is its end of the socket; stdout and stderr are the node's
                self._process = subprocess.Popen([sys.executable, "-m", "mesh.placer"], stdin=theirs.fileno(),
                                                 close_fds=True, env=env)
            self._socket = mine
            self.started += 1
        except OSError as error:
            self._give_up(str(error))

    def _give_up(self, why: str) -> None:
        self._in_thread = True
        log.warning("ring placements run in a thread of this node node=%s: no worker process (%s)",
                    self._node_id[:8], why)

    def _ask(self, name: str, args: tuple) -> Any:
        sock = self._socket
        assert sock is not None
        request = pickle.dumps((name, args), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            sock.sendall(_LENGTH.pack(len(request)) + request)
            (length,) = _LENGTH.unpack(_read(sock, _LENGTH.size))
            ok, value = pickle.loads(_read(sock, length))
        except (OSError, EOFError) as error:
            self.close()    # (started again by the next request)
            self._lost_in_a_row += 1
            raise RuntimeError(f"ring placement worker lost: {error}") from error
        self._lost_in_a_row = 0
        if not ok:
            raise RuntimeError(f"ring placement failed in the worker: {value}")
        return value

    def close(self) -> None:
        """Stop the worker (it also exits by itself when this process's end of the socket closes)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._process = None


def _read(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError("the worker closed its socket")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def serve(sock: socket.socket) -> None:
    """The worker: answer placements until the node closes its end."""
    functions = _functions()
    while True:
        try:
            (length,) = _LENGTH.unpack(_read(sock, _LENGTH.size))
            name, args = pickle.loads(_read(sock, length))
        except EOFError:
            return
        try:
            reply = (True, functions[name](*args))
        except Exception as error:  # the node logs it and retries the decision later
            reply = (False, f"{type(error).__name__}: {error}")
        answer = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        sock.sendall(_LENGTH.pack(len(answer)) + answer)


if __name__ == "__main__":
    os.nice(WORKER_NICE)
    serve(socket.socket(fileno=os.dup(0)))
