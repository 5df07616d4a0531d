"""Connection commands: PING, ECHO, QUIT, HELLO, AUTH, SELECT, RESET, CLIENT *; HTTP requests are closed."""
from __future__ import annotations

import hmac
import logging
import time

from ..arguments import parse_int
from ..reply import OK, PONG, CommandError, Raw, Status, Verbatim
from . import command, container
from .acl import authenticate, default_open, sync_session

log = logging.getLogger(__name__)

WRONGPASS = CommandError("WRONGPASS invalid username-password pair or user is disabled.")


@command("ping", -1, "fast sentinel", group="connection", summary="Returns the server's liveliness response.")
def ping(ctx, session, args):
    """Format: PING [message]"""
    if len(args) > 2:
        raise CommandError("ERR wrong number of arguments for 'ping' command")
    if session.protocol == 2 and session.in_pubsub:
        # a subscribed RESP2 client gets PING answered as a pub/sub message
        return [b"pong", args[1] if len(args) == 2 else b""]
    return PONG if len(args) == 1 else args[1]


@command("echo", 2, "loading stale fast", group="connection", summary="Returns the given string.")
def echo(ctx, session, args):
    """Format: ECHO message"""
    return args[1]


@command("quit", -1, "allow-busy noscript loading stale fast no-auth", group="connection",
         summary="Closes the connection.")
def quit_(ctx, session, args):
    """Format: QUIT"""
    session.close_after_reply = True
    return OK


# Cross protocol scripting: a web page can make a browser POST to a cache's
# port, and an inline parser takes every line of the request for a command:
# headers fail as unknown commands, and a body of `CONFIG SET ...` would run.
# As Redis, the request line (POST) or a Host: header closes the connection
# with no reply, so nothing after it runs (the parser stops at it: resp.py).
# They are not commands in Redis 7 (COMMAND does not list them: see
# commands/server.py); they are declared here because this table is where
# requests find their handler. "connection" keeps them out of the
# dispatcher's fast lane, which does not stop for a connection to close.
SECURITY_WARNING_INTERVAL_S = 60.0        # as Redis: one log line a minute at most, not a log flood
_security_warned_at = -SECURITY_WARNING_INTERVAL_S


@command("post", -1, "loading stale", group="connection",
         summary="Closes a connection that sent an HTTP request.")
@command("host:", -1, "loading stale", group="connection",
         summary="Closes a connection that sent an HTTP request.")
def cross_protocol(ctx, session, args):
    """Format: POST ... | Host: ...  (an HTTP request: closes the connection, no reply)"""
    global _security_warned_at
    now = time.monotonic()
    if now - _security_warned_at >= SECURITY_WARNING_INTERVAL_S:
        _security_warned_at = now
        log.warning("Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: "
                    "commands to hypercache. This is likely due to an attacker attempting to use Cross "
                    "Protocol Scripting to compromise your instance. Connection aborted. addr=%s",
                    session.addr)
    session.close_after_reply = True
    return Raw(b"")


def _check_password(ctx, session, username: bytes, password: bytes, command: bytes) -> bool:
    """Log the session in as `username` (ACL users, hypercache/commands/acl.py)."""
    if ctx.acl is None:     # unit-test stand-ins: the default user and requirepass only
        required = ctx.settings.requirepass
        return username == b"default" and (not required or hmac.compare_digest(password, required.encode()))
    return authenticate(ctx, session, username, password, command)


@command("auth", -2, "noscript loading stale fast no-auth sentinel allow-busy", group="connection",
         summary="Authenticates the connection.")
def auth(ctx, session, args):
    """Format: AUTH [username] password"""
    if len(args) > 3:
        raise CommandError("ERR syntax error")
    if len(args) == 2:
        if ctx.acl.default.nopass if ctx.acl is not None else not ctx.settings.requirepass:
            raise CommandError("ERR AUTH <password> called without any password configured for "
                               "the default user. Are you sure your configuration is correct?")
        username, password = b"default", args[1]
    else:
        username, password = args[1], args[2]
    if not _check_password(ctx, session, username, password, args[0]):
        raise WRONGPASS
    session.authenticated = True
    return OK


@command("hello", -1, "noscript loading stale fast no-auth sentinel allow-busy", group="connection",
         summary="Handshakes with the server.", since="6.0.0")
def hello(ctx, session, args):
    """Format: HELLO [protover [AUTH username password] [SETNAME clientname]]"""
    protocol = session.protocol
    i = 1
    if len(args) > 1:
        try:
            protocol = parse_int(args[1])
        except CommandError:
            raise CommandError("ERR Protocol version is not an integer or out of range") from None
        i = 2
        if protocol not in (2, 3):
            raise CommandError("NOPROTO unsupported protocol version")
    name = None
    authenticated = session.authenticated
    while i < len(args):
        option = args[i].lower()
        if option == b"auth" and i + 2 < len(args):
            if not _check_password(ctx, session, args[i + 1], args[i + 2], args[0]):
                raise WRONGPASS
            authenticated = True
            i += 3
        elif option == b"setname" and i + 1 < len(args):
            name = _valid_name(args[i + 1])
            i += 2
        else:
            raise CommandError(f"ERR Syntax error in HELLO option '{args[i].decode('utf-8', 'replace')}'")
    if not authenticated:
        raise CommandError("NOAUTH HELLO must be called with the client already authenticated, "
                           "otherwise the HELLO <proto> AUTH <user> <pass> option can be used to "
                           "authenticate the client and select the RESP protocol version at the same time")
    session.authenticated = True
    session.protocol = protocol
    if name is not None:
        session.name = name
    from .server import REDIS_VERSION
    return {
        b"server": b"redis", b"version": REDIS_VERSION.encode(), b"proto": protocol,
        b"id": session.id, b"mode": b"cluster", b"role": b"master", b"modules": [],
    }


@command("select", 2, "loading stale fast", group="connection", summary="Changes the selected database.")
def select(ctx, session, args):
    """Format: SELECT index"""
    index = parse_int(args[1], "ERR value is not an integer or out of range")
    if index != 0:
        raise CommandError("ERR SELECT is not allowed in cluster mode")
    return OK


@command("reset", 1, "noscript loading stale fast no-auth allow-busy", group="connection",
         summary="Resets the connection.", since="6.2.0")
def reset(ctx, session, args):
    """Format: RESET"""
    session.multi = None
    session.multi_error = False
    if session.watched:
        ctx.key_events.unwatch_all(session)
    if ctx.pubsub is not None and session.in_pubsub:
        ctx.pubsub.forget(session)
    if session.monitor:
        ctx.monitors.remove(session)
    session.protocol = 2
    session.name = b""
    session.readonly = False
    session.asking = False
    session.no_evict = False
    # and, as Redis's resetCommand: tracking off, replies on, touching again
    if session.tracking is not None:
        ctx.key_events.tracking.disable(session)
        ctx.key_events.refresh()
    session.reply_off = False
    session.skip_replies = 0
    session.no_touch = False
    session.refresh_lane()
    # as Redis's clientSetDefaultAuth: back to the default user, logged in if it needs no password
    session.user = None
    if ctx.acl is not None:
        session.authenticated = default_open(ctx)
        sync_session(ctx, session)
    else:
        session.authenticated = not ctx.settings.requirepass
    return Status(b"RESET")


@command("readonly", 1, "loading stale fast", group="cluster",
         summary="Enables read-only queries for a connection to a Redis Cluster replica node.", since="3.0.0")
def readonly(ctx, session, args):
    """Format: READONLY"""
    session.readonly = True
    return OK


@command("readwrite", 1, "loading stale fast", group="cluster",
         summary="Enables read-write queries for a connection to a Reids Cluster replica node.", since="3.0.0")
def readwrite(ctx, session, args):
    """Format: READWRITE"""
    session.readonly = False
    return OK


@command("asking", 1, "fast", group="cluster",
         summary="Signals that a cluster client is following an -ASK redirect.", since="3.0.0")
def asking(ctx, session, args):
    """Format: ASKING"""
    session.asking = True
    return OK


# -- CLIENT ------------------------------------------------------------------------

container("client", -2, "sentinel", "connection", "A container for client connection commands.", "2.4.0")


def _valid_name(name: bytes) -> bytes:
    if any(c < 33 or c > 126 for c in name):
        raise CommandError("ERR Client names cannot contain spaces, newlines or special characters.")
    return name


@command("client|id", 2, "noscript loading stale", group="connection", summary="Returns the unique client ID of the connection.")
def client_id(ctx, session, args):
    return session.id


@command("client|setname", 3, "noscript loading stale", group="connection", summary="Sets the connection name.")
def client_setname(ctx, session, args):
    session.name = _valid_name(args[2])
    return OK


@command("client|getname", 2, "noscript loading stale", group="connection", summary="Returns the name of the connection.")
def client_getname(ctx, session, args):
    return session.name or None


@command("client|setinfo", 4, "noscript loading stale", group="connection", summary="Sets information specific to the client or connection.", since="7.2.0")
def client_setinfo(ctx, session, args):
    attr = args[2].lower()
    value = args[3]
    if any(c < 33 or c > 126 for c in value):
        raise CommandError(f"ERR {args[2].decode('utf-8', 'replace')} cannot contain spaces, newlines or special characters.")
    if attr == b"lib-name":
        session.lib_name = value
    elif attr == b"lib-ver":
        session.lib_ver = value
    else:
        raise CommandError(f"ERR Unrecognized option '{args[2].decode('utf-8', 'replace')}'")
    return OK


@command("client|no-evict", 3, "admin noscript loading stale", group="connection", summary="Sets the client eviction mode of the connection.", since="7.0.0")
def client_no_evict(ctx, session, args):
    value = args[2].lower()
    if value not in (b"on", b"off"):
        raise CommandError("ERR syntax error")
    session.no_evict = value == b"on"
    return OK


def _blocked_ids(ctx) -> set[int]:
    """Ids of the sessions blocked on keys, found once per CLIENT LIST (not once per client)."""
    return {w.session.id for waiters in ctx.blocking.by_key.values() for w in waiters.values()}


# Redis reads into a 16 KB query buffer that jemalloc rounds up to 20 KB: a client's
# buffer holding its running command has that much free beside it (CLIENT LIST qbuf-free)
QUERY_BUFFER_ROOM = 20474


def request_size(args: list[bytes]) -> int:
    """The bytes of a request as a client sent it (RESP multibulk): what Redis's query buffer holds."""
    return len(b"*%d\r\n" % len(args)) + sum(len(b"$%d\r\n" % len(a)) + len(a) + 2 for a in args)


def client_line(s, now_ms: int, blocked_ids: set[int], running: list[bytes] | None = None) -> bytes:
    """One CLIENT LIST line with Redis 7's fields; `running`: the caller's own command (its qbuf)."""
    flags = ""      # in Redis's order
    if s.monitor:
        flags += "O"
    if s.in_pubsub:
        flags += "P"
    if s.multi is not None:
        flags += "x"
    if s.id in blocked_ids:
        flags += "b"
    if s.tracking is not None:
        flags += "t"
        if s.tracking.broken_redirect:
            flags += "R"
        if s.tracking.bcast:
            flags += "B"
    if s.readonly:
        flags += "r"
    if s.no_evict:
        flags += "e"
    qbuf = s.query_buffer + (request_size(running) if running is not None else 0)
    fields = [
        ("id", s.id), ("addr", s.addr), ("laddr", s.laddr), ("fd", s.fd),
        ("name", s.name.decode("utf-8", "replace")),
        ("age", (now_ms - s.created_ms) // 1000), ("idle", (now_ms - s.last_interaction_ms) // 1000),
        ("flags", flags or "N"), ("db", 0), ("sub", len(s.channels)), ("psub", len(s.patterns)),
        ("ssub", len(s.shard_channels)),
        ("multi", len(s.multi) if s.multi is not None else -1), ("qbuf", qbuf),
        ("qbuf-free", QUERY_BUFFER_ROOM - qbuf if qbuf else 0), ("argv-mem", 0), ("multi-mem", 0), ("rbs", 16384), ("rbp", 0),
        ("obl", 0), ("oll", 0), ("omem", s.output_buffer), ("tot-mem", s.output_buffer + s.query_buffer),
        ("events", "r"), ("cmd", "NULL" if s.last_cmd is None else s.last_cmd.name), ("user", "default" if s.user is None else s.user.name.decode("utf-8", "replace")),
        ("redir", -1 if s.tracking is None else s.tracking.redirect), ("resp", s.protocol),
        ("lib-name", s.lib_name.decode("utf-8", "replace")),
        ("lib-ver", s.lib_ver.decode("utf-8", "replace")),
    ]
    return " ".join(f"{k}={v}" for k, v in fields).encode()


@command("client|list", -2, "admin noscript loading stale", group="connection", summary="Lists open connections.")
def client_list(ctx, session, args):
    """Format: CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]]"""
    now_ms = time.time_ns() // 1_000_000
    sessions = list(ctx.clients.values())
    i = 2
    while i < len(args):
        option = args[i].lower()
        if option == b"type" and i + 1 < len(args):
            kind = args[i + 1].lower()
            if kind == b"pubsub":
                sessions = [s for s in sessions if s.in_pubsub]
            elif kind == b"normal":
                sessions = [s for s in sessions if not s.in_pubsub]
            elif kind in (b"master", b"replica", b"slave"):
                sessions = []
            else:
                raise CommandError(f"ERR Unknown client type '{args[i + 1].decode('utf-8', 'replace')}'")
            i += 2
        elif option == b"id" and i + 1 < len(args):
            ids = {parse_int(a, "ERR Invalid client ID") for a in args[i + 1:]}
            sessions = [s for s in sessions if s.id in ids]
            i = len(args)
        else:
            raise CommandError("ERR syntax error")
    blocked_ids = _blocked_ids(ctx)
    return Verbatim(b"".join(client_line(s, now_ms, blocked_ids, args if s is session else None) + b"\n"
                             for s in sessions))


@command("client|info", 2, "noscript loading stale", group="connection", summary="Returns information about the connection.", since="6.2.0")
def client_info(ctx, session, args):
    return Verbatim(client_line(session, time.time_ns() // 1_000_000, _blocked_ids(ctx), args) + b"\n")


@command("client|kill", -3, "admin noscript loading stale", group="connection", summary="Terminates open connections.")
def client_kill(ctx, session, args):
    """Format: CLIENT KILL ip:port | CLIENT KILL [ID id] [ADDR ip:port] [LADDR ip:port] [SKIPME yes/no] ..."""
    sessions = list(ctx.clients.values())
    if len(args) == 3:
        addr = args[2].decode("utf-8", "replace")
        victims = [s for s in sessions if s.addr == addr]
        if not victims:
            raise CommandError("ERR No such client")
        for s in victims:
            ctx.kill_client(s.id)
        return OK
    skipme = True
    filters = []
    i = 2
    while i < len(args):
        if i + 1 >= len(args):
            raise CommandError("ERR syntax error")
        option, value = args[i].lower(), args[i + 1]
        if option == b"id":
            wanted = parse_int(value, "ERR client-id should be greater than 0")
            if wanted <= 0:
                raise CommandError("ERR client-id should be greater than 0")
            filters.append(lambda s, w=wanted: s.id == w)
        elif option == b"addr":
            filters.append(lambda s, w=value.decode(): s.addr == w)
        elif option == b"laddr":
            filters.append(lambda s, w=value.decode(): s.laddr == w)
        elif option == b"user":
            known = ctx.acl.users if ctx.acl is not None else {b"default": None}
            if value not in known:
                raise CommandError(f"ERR No such user '{value.decode('utf-8', 'replace')}'")
            filters.append(lambda s, w=value: (s.user.name if s.user is not None else b"default") == w)
        elif option == b"type":
            kind = value.lower()
            if kind not in (b"normal", b"pubsub", b"master", b"replica", b"slave"):
                raise CommandError(f"ERR Unknown client type '{value.decode('utf-8', 'replace')}'")
            filters.append(lambda s, k=kind: (k == b"pubsub") == s.in_pubsub and k in (b"normal", b"pubsub"))
        elif option == b"skipme":
            if value.lower() not in (b"yes", b"no"):
                raise CommandError("ERR syntax error")
            skipme = value.lower() == b"yes"
        else:
            raise CommandError("ERR syntax error")
        i += 2
    killed = 0
    for s in sessions:
        if skipme and s is session:
            continue
        if all(f(s) for f in filters) and ctx.kill_client(s.id):
            killed += 1
    return killed


@command("client|help", 2, "loading stale", group="connection", summary="Returns helpful text about the different subcommands.", since="5.0.0")
def client_help(ctx, session, args):
    return [Status(line) for line in (
        b"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"ID", b"    Return the ID of the current connection.",
        b"INFO", b"    Return information about the current client connection.",
        b"KILL <ip:port> | KILL <option> <value> [<option> <value> [...]]",
        b"    Kill connections by ID, ADDR, LADDR, USER, TYPE or SKIPME.",
        b"LIST [TYPE <type>] [ID <id> [<id> ...]]", b"    Return information about client connections.",
        b"GETNAME", b"    Return the name of the current connection.",
        b"SETNAME <name>", b"    Assign the name <name> to the current connection.",
        b"SETINFO <LIB-NAME|LIB-VER> <value>", b"    Set client library name or version.",
        b"NO-EVICT (ON|OFF)", b"    Protect the current client connection from eviction.",
        b"HELP", b"    Print this help.",
    )]

