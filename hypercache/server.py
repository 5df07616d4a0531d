"""Accept RESP clients on the node's port and keep the table of their connections.

Admission is decided here (maxclients, protected mode); serving a connection
is hypercache/connection.py's job. The server also answers for the node about
its clients: CLIENT KILL, pub/sub delivery to a session, idle timeouts.
"""
from __future__ import annotations

import _socket
import errno
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import gevent

from .connection import Connection, send_deferred
from .commands.acl import default_open
from .context import Context
from .dispatch import Dispatcher
from .session import Session

log = logging.getLogger(__name__)

PROTECTED_MODE = (
    "-DENIED Running in protected mode because protected mode is enabled and no password "
    "is set for the default user. In this mode connections are only accepted from the "
    "loopback interface. If you want to connect from external computers, either set a "
    "password with --requirepass or disable protected mode with --protected-mode no.\r\n"
).encode()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


class RespServer:
    """Accepts clients on the RESP port and owns their connections."""

    def __init__(self, ctx: Context, key_events, host: str, port: int, on_disconnect=None,
                 replica_port: int | None = None) -> None:
        self.ctx = ctx
        self.stats = ctx.stats
        self.key_events = key_events
        self.dispatcher = Dispatcher(ctx)
        ctx.dispatcher = self.dispatcher
        self.loop = gevent.get_hub().loop
        self.connections: dict[int, Connection] = {}
        # Connections with replies to send before the hub polls again: as
        # Redis's beforeSleep, a prepare watcher sends them all at the end of
        # each loop iteration, after every client the hub found ready has run.
        # A client woken by our reply costs the kernel an inter-processor
        # wakeup, paid on our CPU inside send(): sent together, the first reply
        # wakes the client and the rest find it running. Connections append
        # themselves to this very list (it is never rebound).
        self.sending: list[Connection] = []
        # The replicator (hypercache/replication.py), set by the node before it starts:
        # its commit ships the iteration's writes before their replies may go out.
        self.replicator: Any = None
        self.sender = self.loop.prepare(ref=False)
        self.sender.start(self._send_all)
        self.next_id = 0
        self.on_disconnect = on_disconnect
        self.on_connect: Callable[[], None] | None = None    # called after a client is admitted
        # The RESP port, and the replica endpoint's (hypercache/roles.py): the same
        # clients' code, the same store; sessions accepted there are a Redis replica's.
        self.listener = self._listen(host, port)
        self.acceptor = self.loop.io(self.listener.fileno(), 1)
        self.replica_listener = self._listen(host, replica_port) if replica_port else None
        self.replica_acceptor = (self.loop.io(self.replica_listener.fileno(), 1)
                                 if self.replica_listener is not None else None)
        ctx.kill_client = self.kill
        ctx.deliver = ctx.monitors.deliver = self.deliver

    def _send_all(self) -> None:
        replicator = self.replicator
        if replicator is not None and (replicator.writers or self.ctx.store.written):
            replicator.commit()
        tracking = self.key_events.tracking
        if tracking.broadcast:      # the turn's BCAST invalidations, one per client and prefix
            tracking.flush_broadcast()
        sending = self.sending
        if sending:
            # (one queued while these are sent is still in the list: sent too)
            send_deferred(sending, self.stats)
            sending.clear()

    @staticmethod
    def _listen(host: str, port: int):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # The C socket type, not gevent's cooperative wrapper: connections are
        # driven by our own watchers and never wait inside a socket call.
        listener = _socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(1024)
        listener.setblocking(False)
        return listener

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    def start(self) -> None:
        self.acceptor.start(self.on_acceptable, self.listener, False)
        if self.replica_acceptor is not None:
            self.replica_acceptor.start(self.on_acceptable, self.replica_listener, True)

    def stop(self) -> None:
        self.acceptor.stop()
        self.sender.stop()
        self.listener.close()
        replica_listener, replica_acceptor = self.replica_listener, self.replica_acceptor
        if replica_listener is not None and replica_acceptor is not None:
            replica_acceptor.stop()
            replica_listener.close()
        for conn in list(self.connections.values()):
            conn.close()

    def on_acceptable(self, listener, replica_endpoint: bool) -> None:
        for _ in range(64):     # accept a burst, then let other watchers run
            try:
                fd, addr = listener._accept()
                sock = _socket.socket(listener.family, socket.SOCK_STREAM, 0, fd)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE):
                    log.error("cannot accept: out of file descriptors")
                return
            self.admit(sock, addr, replica_endpoint)

    def admit(self, sock: _socket.socket, addr, replica_endpoint: bool = False) -> None:
        ctx = self.ctx
        settings = ctx.settings
        sock.setblocking(False)
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        host, port = addr[0], addr[1]
        if len(self.connections) >= settings.maxclients:
            ctx.stats.rejected_connections += 1
            _refuse(sock, b"-ERR max number of clients reached\r\n")
            return
        logged_in = default_open(ctx) if ctx.acl is not None else not settings.requirepass
        # as Redis: protected while the default user has no password (on or off)
        passwordless = ctx.acl.default.nopass if ctx.acl is not None else not settings.requirepass
        if settings.protected_mode and passwordless and not _is_loopback(host):
            ctx.stats.rejected_connections += 1
            _refuse(sock, PROTECTED_MODE)
            return
        self.next_id += 1
        now_ms = time.time_ns() // 1_000_000
        local = sock.getsockname()
        session = Session(id=self.next_id, addr=_format_addr(host, port),
                          laddr=_format_addr(local[0], local[1]), fd=sock.fileno(),
                          authenticated=logged_in, created_ms=now_ms,
                          last_interaction_ms=now_ms, replica_endpoint=replica_endpoint)
        ctx.stats.total_connections += 1
        conn = Connection(self, sock, session)
        self.connections[session.id] = conn
        ctx.clients[session.id] = session
        if self.on_connect is not None:
            self.on_connect()

    def forget(self, conn: Connection) -> None:
        self.connections.pop(conn.session.id, None)
        self.ctx.clients.pop(conn.session.id, None)
        if self.on_disconnect is not None:
            self.on_disconnect(conn.session)

    def kill(self, session_id: int) -> bool:
        conn = self.connections.get(session_id)
        if conn is None:
            return False
        conn.session.kill = True
        if conn.batch is None:
            conn.close()
        return True

    def deliver(self, session: Session, value: Any) -> None:
        if session.exec_pushes is not None:
            session.exec_pushes.append(value)
            return
        conn = self.connections.get(session.id)
        if conn is not None:
            conn.push(value)

    def close_idle(self, now_ms: int) -> int:
        """Close clients idle longer than `timeout` (not blocked or subscribed ones, as Redis)."""
        timeout = self.ctx.settings.timeout
        if timeout <= 0:
            return 0
        idle = [c for c in self.connections.values()
                if now_ms - c.session.last_interaction_ms > timeout * 1000
                and c.waiter is None and not c.session.in_pubsub]
        for conn in idle:
            conn.close()
        return len(idle)

    def query_buffer(self, session_id: int) -> int:
        conn = self.connections.get(session_id)
        return conn.parser.buffered if conn is not None else 0


def _format_addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _refuse(sock: _socket.socket, message: bytes) -> None:
    try:
        sock.send(message)
    except OSError:
        pass
    sock.close()
