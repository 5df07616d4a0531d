"""The worker process of mesh/placer.py: ring placements asked by its node over a socket, answered in turn.

`python -P -m mesh.placement_worker`, its stdin its end of a socket pair. It
says READY once its modules are imported (the node's deadline is for placements,
not for starting). Then each request and each answer is a 4-byte length and a
pickle, from and to its own parent only: a request names one of PLACEMENTS and
gives its arguments; the answer is (True, result) or (False, the error's text).
It exits when the node closes its end (the node stopped, or was killed), and
leaves Ctrl-C to its node.
Nothing here imports gevent: the worker is plain blocking Python.
"""
from __future__ import annotations

import os
import pickle
import signal
import socket
import struct
from typing import Any, Callable

# how much less the worker's CPU counts than the node's (the kernel's nice, 0-19)
WORKER_NICE = 10
# the placements a worker runs, by name (mesh/election.py)
PLACEMENTS = ("plan", "follows", "rebalanced")
LENGTH = struct.Struct("!I")
READY = b"placement worker ready\n"


def placements() -> dict[str, Callable[..., Any]]:
    from mesh import election
    return {name: getattr(election, name) for name in PLACEMENTS}


def read_exactly(sock: Any, size: int) -> bytes:
    """`size` bytes from a socket (a gevent one on the node's side); EOFError if it closes first."""
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError("the other end closed its socket")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def serve(sock: socket.socket) -> None:
    """Answer placements until the node closes its end."""
    functions = placements()
    sock.sendall(READY)
    while True:
        try:
            (length,) = LENGTH.unpack(read_exactly(sock, LENGTH.size))
            name, args = pickle.loads(read_exactly(sock, length))
        except EOFError:
            return
        try:
            reply = (True, functions[name](*args))
        except Exception as error:  # the node logs it and decides again later
            reply = (False, f"{type(error).__name__}: {error}")
        answer = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        sock.sendall(LENGTH.pack(len(answer)) + answer)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(WORKER_NICE)
    try:
        serve(socket.socket(fileno=os.dup(0)))
    except OSError:
        pass    # (the node went while an answer was on its way: nothing to say to anyone)
