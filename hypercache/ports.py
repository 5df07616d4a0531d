"""Before a node starts: is each port it will listen on free? A busy port is one clear line, not a traceback."""
from __future__ import annotations

import errno
import socket

from .roles import replica_port

# errors that mean "this address cannot be listened on", whoever raises them (socket, gevent, zmq)
BIND_ERRNOS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


def node_ports(port: int, mesh_port: int, data_port: int, http_port: int) -> list[tuple[str, int]]:
    """What a node listens on, named as the flags name them (HTTP 0: no status server)."""
    ports = [("RESP port (--port)", port), ("mesh port (--mesh-port)", mesh_port),
             ("data port (mesh port + 10000)", data_port)]
    if replica_port(port) is not None:
        ports.append(("replica endpoint port (--port + 5000)", replica_port(port)))
    if http_port:
        ports.append(("HTTP port (--http-port)", http_port))
    return ports


def first_unusable(host: str, ports: list[tuple[str, int]]) -> str | None:
    """A sentence naming the first port that cannot be listened on at `host`, or None when all can.

    Binds and closes each with SO_REUSEADDR, as the servers themselves bind: a port
    in TIME_WAIT passes, one another process listens on does not.
    """
    for what, port in ports:
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        except socket.gaierror as error:
            return f"cannot listen on --host {host!r}: {error.strerror}"
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                return describe_bind_error(what, host, port, error.errno)
    return None


def describe_bind_error(what: str, host: str, port: int, code: int | None) -> str:
    if code == errno.EADDRINUSE:
        return f"{what} {port} is already in use on {host} (another node or program listens there)"
    if code == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}:{port} ({what}): {host} is not an address of this machine"
    if code == errno.EACCES:
        return f"{what} {port}: permission denied (ports below 1024 need privileges)"
    return f"cannot listen on {host}:{port} ({what}): error {code}"
