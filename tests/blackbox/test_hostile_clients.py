"""What a node exposes to whoever can reach its port: DEBUG, HTTP requests, the password, CLUSTER MEET.

Each behaviour is Redis 7.0's, checked side by side with a real redis-server
where Redis has it: DEBUG is refused unless --enable-debug-command allows it,
an HTTP request closes the connection before its body can run, and CLUSTER
MEET takes a literal address only. --requirepass-file keeps the password off
the command line that `ps` shows.
"""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import hiredis
import pytest

from tests.nodes import HOST, REPO, call, encode_command, read_reply, read_until_closed, request, wait_until

DEBUG_NOT_ALLOWED = (
    'ERR DEBUG command not allowed. If the enable-debug-command option is set to "local", you can run '
    "it from a local connection, otherwise you need to set this option in the configuration file, "
    "and then restart the server.")


def error_text(reply) -> str:
    assert isinstance(reply, hiredis.ReplyError), reply
    return str(reply)


def plain(reply):
    """A reply that compares by value: hiredis's error replies are exceptions, equal only to themselves."""
    return ("error", str(reply)) if isinstance(reply, hiredis.ReplyError) else reply


def connect_from(source: str, port: int) -> socket.socket:
    """A connection to 127.0.0.1:port from `source`, another address of the loopback network."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect((HOST, port))
    return sock


def ask(sock: socket.socket, *args):
    sock.sendall(encode_command(*args))
    return read_reply(sock)


# -- DEBUG ----------------------------------------------------------------------------------

def test_debug_is_refused_by_default_with_redis_error(node_factory, redis_server):
    node = node_factory.start(debug_command=None)           # no --enable-debug-command at all
    for args in (("DEBUG", "SLEEP", "5"), ("DEBUG", "HELP"), ("DEBUG", "OBJECT", "k"), ("DEBUG", "nosuch")):
        ours, theirs = request(node, *args), request(redis_server, *args)
        assert error_text(ours) == error_text(theirs) == DEBUG_NOT_ALLOWED, args
    # fixed at start, shown by CONFIG GET, refused by CONFIG SET, as in Redis
    for args in (("CONFIG", "GET", "enable-debug-command"), ("CONFIG", "SET", "enable-debug-command", "yes")):
        assert plain(request(node, *args)) == plain(request(redis_server, *args)), args
    assert call(node, "CONFIG", "GET", "enable-debug-command") == [b"enable-debug-command", b"no"]


def test_debug_local_admits_127_0_0_1_only_as_redis(node_factory, redis_server_factory):
    # the mode given by its environment variable, as every flag can be
    node = node_factory.start(debug_command=None, env={"HYPERCACHE_ENABLE_DEBUG_COMMAND": "local"})
    # Redis's protected mode would turn 127.0.0.2 away before DEBUG is asked
    redis = redis_server_factory("--enable-debug-command", "local", "--protected-mode", "no")
    for server in (node, redis):
        with connect_from("127.0.0.1", server.port) as local:
            assert ask(local, "DEBUG", "SLEEP", "0") == b"OK"
        # 127.0.0.2 is a loopback address, but not the one Redis's islocalClient() accepts
        with connect_from("127.0.0.2", server.port) as other:
            assert error_text(ask(other, "DEBUG", "SLEEP", "0")) == DEBUG_NOT_ALLOWED
            assert ask(other, "CONFIG", "GET", "enable-debug-command") == [b"enable-debug-command", b"local"]


def test_debug_yes_admits_every_client(node):
    # (NodeFactory starts nodes with --enable-debug-command yes unless told otherwise)
    with connect_from("127.0.0.2", node.port) as other:
        assert ask(other, "DEBUG", "SLEEP", "0") == b"OK"


# -- HTTP requests (cross protocol scripting) -------------------------------------------------

def http_post(body: bytes, *headers: bytes) -> bytes:
    lines = [b"POST /x HTTP/1.1", b"Host: 127.0.0.1", *headers,
             b"Content-Type: text/plain", b"Content-Length: %d" % len(body)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def sent_and_closed(server, data: bytes) -> bytes:
    """What `server` answers to `data` before it closes the connection (raises if it stays open)."""
    with server.raw() as sock:
        sock.sendall(data)
        return read_until_closed(sock)


def test_an_http_post_closes_the_connection_before_its_body_runs(node, redis_server):
    # Chrome's sec-ch-ua header is unbalanced quotes to an inline parser: no protocol error either
    attack = http_post(b"CONFIG SET maxmemory 12345\r\nSET owned yes\r\n",
                       b'sec-ch-ua: "Chromium";v="120", "Not?A_Brand";v="8"')
    for server in (node, redis_server):
        assert sent_and_closed(server, attack) == b""
        assert call(server, "CONFIG", "GET", "maxmemory") == [b"maxmemory", b"0"]
        assert call(server, "EXISTS", "owned") == 0


@pytest.mark.parametrize("data", [
    b"post\r\nSET owned yes\r\n",                                        # any case, as Redis
    b"HOST: example.com\r\nSET owned yes\r\n",
    encode_command("POST", "/") + encode_command("SET", "owned", "yes"),     # not only inline
    encode_command("Host:", "x") + encode_command("SET", "owned", "yes"),
], ids=["inline post", "inline host", "multibulk post", "multibulk host"])
def test_post_or_host_closes_without_reply_and_nothing_after_runs(node, redis_server, data):
    for server in (node, redis_server):
        assert sent_and_closed(server, data) == b""
        assert call(server, "EXISTS", "owned") == 0


def test_host_header_after_a_get_request_line_closes_the_connection(node):
    # A browser's GET: its request line is a wrong GET call, its Host: header closes.
    # (Redis also drops the error reply to the request line; we send it before closing.)
    replies = sent_and_closed(node, b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nSET owned yes\r\n")
    assert b"owned" not in replies and b"+OK" not in replies
    assert call(node, "EXISTS", "owned") == 0


def test_post_and_host_are_not_commands_for_command(node, redis_server):
    for args in (("COMMAND", "INFO", "post", "host:"), ("COMMAND", "DOCS", "post", "host:"),
                 ("COMMAND", "LIST", "FILTERBY", "PATTERN", "post*")):
        assert plain(request(node, *args)) == plain(request(redis_server, *args)), args
    assert call(node, "COMMAND", "COUNT") == len(call(node, "COMMAND"))


# -- --requirepass-file -----------------------------------------------------------------------

def test_requirepass_file_sets_the_password_and_keeps_it_out_of_ps(node_factory, tmp_path):
    password = "s3cret-from-a-file"
    secret = tmp_path / "password"
    secret.write_text(password + "\n")      # as `echo pw > file` writes it
    node = node_factory.start("--requirepass-file", str(secret))
    assert error_text(request(node, "GET", "k")) == "NOAUTH Authentication required."
    with node.raw() as sock:
        assert error_text(ask(sock, "AUTH", password + "\n")).startswith("WRONGPASS")
        assert ask(sock, "AUTH", password) == b"OK"
        assert ask(sock, "SET", "k", "v") == b"OK"
    cmdline = Path(f"/proc/{node.proc.pid}/cmdline").read_bytes()
    assert str(secret).encode() in cmdline and password.encode() not in cmdline


def test_requirepass_file_from_the_environment(node_factory, tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-env\r\n")
    node = node_factory.start(env={"HYPERCACHE_REQUIREPASS_FILE": str(secret)})
    with node.raw() as sock:
        assert ask(sock, "AUTH", "from-env") == b"OK"


@pytest.mark.parametrize("case, why", [("empty", "is empty"), ("missing", "cannot read"),
                                       ("with --requirepass", "exclude each other")])
def test_a_node_does_not_start_on_a_doubtful_password_file(tmp_path, case, why):
    secret = tmp_path / "password"
    if case != "missing":
        secret.write_text("\n" if case == "empty" else "pw\n")
    args = [sys.executable, "-m", "hypercache", "--port", "1", "--http-port", "0",
            "--requirepass-file", str(secret)]
    if case == "with --requirepass":
        args += ["--requirepass", "other"]
    # argparse refuses before the node binds anything: exit status 2 at once
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "--requirepass-file" in done.stderr and why in done.stderr, done.stderr


# -- CLUSTER MEET -----------------------------------------------------------------------------

BAD_MEETS = [
    ("not a host", "1"), ("localhost", "7000"), ("127.1", "7000"), ("01.2.3.4", "7000"),
    ("fe80::1%lo", "7000"), ("127.0.0.1", "abc"), ("127.0.0.1", "012"), ("127.0.0.1", "+12"),
    ("127.0.0.1", "0"), ("127.0.0.1", "-1"), ("127.0.0.1", "65536"), ("127.0.0.1", "60000"),
    ("127.0.0.1", "99999999999999999999"), ("127.0.0.1", "7000", "abc"), ("127.0.0.1", "7000", "0"),
    ("127.0.0.1", "7000", "70000"), ("127.0.0.1", "7000", "17000", "x"),
]


def test_cluster_meet_refuses_bad_addresses_as_redis(node, redis_server_factory):
    redis = redis_server_factory("--cluster-enabled", "yes")
    for meet in BAD_MEETS:
        ours, theirs = request(node, "CLUSTER", "MEET", *meet), request(redis, "CLUSTER", "MEET", *meet)
        assert isinstance(theirs, hiredis.ReplyError), meet
        assert error_text(ours) == error_text(theirs), meet
    # none was acted on: the node is still a lone node that takes writes
    assert call(node, "SET", "k", "v") == b"OK"


# -- memory a client holds is memory maxmemory sees -----------------------------------------

def _used_memory(server) -> int:
    info = call(server, "INFO", "memory").decode()
    return int(next(line.split(":")[1] for line in info.splitlines() if line.startswith("used_memory:")))


def test_a_bulk_still_arriving_counts_towards_maxmemory_as_in_redis(node, redis_server):
    """A client in the middle of a 64 MB SET holds 48 MB: with maxmemory 32 MB, another client's
    write is refused with OOM, in both; once the uploader is gone, it is accepted again.

    Before, the node's maxmemory saw the dataset only: a bulk still arriving (or replies a client
    does not read, or a pipeline parked behind a blocked command) was memory no limit counted.
    """
    size, sent = 64 * 2**20, 48 * 2**20
    replies = {}
    for name, server in (("hypercache", node), ("redis", redis_server)):
        baseline = _used_memory(server)
        assert call(server, "CONFIG", "SET", "maxmemory", str(32 * 2**20)) == b"OK"
        try:
            with socket.create_connection((HOST, server.port), timeout=60) as uploader:
                uploader.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % size)
                chunk = b"v" * 2**20
                for _ in range(sent // len(chunk)):
                    uploader.sendall(chunk)
                wait_until(lambda: _used_memory(server) > baseline + sent - 2**20, timeout=30)
                during = plain(request(server, "SET", "x", "y"))
                held = _used_memory(server) - baseline
            wait_until(lambda: _used_memory(server) < baseline + 2**20, timeout=30)
            replies[name] = (during, plain(request(server, "SET", "x", "y")))
            print(f"\n{name}: used_memory +{held / 2**20:.0f} MB while 48 MB of a bulk had arrived")
        finally:
            call(server, "CONFIG", "SET", "maxmemory", "0")
    assert replies["hypercache"] == replies["redis"] == (
        ("error", "OOM command not allowed when used memory > 'maxmemory'."), b"OK")
