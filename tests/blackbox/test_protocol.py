"""The wire protocol of a real node, over raw sockets and real clients, compared with redis-server.

Hostile input gets Redis's error and costs only its own connection; limits,
authentication, maxclients, idle timeouts; redis-cli and redis-benchmark.
Every wait polls with a deadline.
"""
from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import hiredis
import pytest
import redis

from hypercache import open_files
from mesh.messages import MAX_MEMBERS
from tests.nodes import (NodeProcess, call, encode_command, raw_connect, read_reply, read_until_closed,
                         wait_until)

REDIS_CLI = shutil.which("redis-cli")
REDIS_BENCHMARK = shutil.which("redis-benchmark")


def need(tool: str | None, name: str) -> None:
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI")
        pytest.skip(f"{name} is not installed")


def exchange(port: int, payload: bytes, replies: int, timeout: float = 10.0) -> bytes:
    """Send payload on a fresh connection; the raw bytes of the next `replies` replies."""
    with raw_connect(port, timeout) as sock:
        sock.sendall(payload)
        reader = hiredis.Reader()
        raw = b""
        got = 0
        deadline = time.monotonic() + timeout
        while got < replies:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
            reader.feed(chunk)
            while reader.gets() is not False:
                got += 1
        return raw


def script(*commands) -> tuple[bytes, int]:
    return b"".join(encode_command(*c) for c in commands), len(commands)


def assert_like_redis(node: NodeProcess, redis_server, *commands) -> bytes:
    """Run the same commands on both servers (fresh connections, empty keyspaces): identical bytes."""
    payload, count = script(*commands)
    ours = exchange(node.port, payload, count)
    theirs = exchange(redis_server.port, payload, count)
    assert ours == theirs
    return ours


def until_closed_like_redis(node: NodeProcess, redis_server, payload: bytes) -> bytes:
    """Send payload; everything received until the server closes; identical on both servers."""
    replies = []
    for port in (node.port, redis_server.port):
        with raw_connect(port) as sock:
            try:
                sock.sendall(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass
            replies.append(read_until_closed(sock, timeout=10))
    assert replies[0] == replies[1]
    return replies[0]


@pytest.fixture
def bystander(node: NodeProcess):
    """A client connected before the hostile one, which must keep working after it."""
    sock = raw_connect(node.port)
    sock.sendall(b"*1\r\n$4\r\nPING\r\n")
    assert read_reply(sock) == b"PONG"
    yield sock
    sock.sendall(encode_command("SET", "bystander", "ok") + encode_command("GET", "bystander"))
    assert read_reply(sock) == b"OK"
    assert read_reply(sock) == b"ok"
    sock.close()
    assert node.alive


# -- malformed frames: Redis's error, then only that connection closes ---------------------

MALFORMED = {
    "mbulk-letters": b"*abc\r\n",
    "mbulk-plus-sign": b"*+5\r\n",
    "mbulk-space": b"* 5\r\n",
    "mbulk-underscore": b"*1_0\r\n",
    "mbulk-leading-zero": b"*05\r\n",
    "mbulk-minus-zero": b"*-0\r\n",
    "mbulk-over-int-max": b"*2147483648\r\n",
    "mbulk-over-long-long": b"*99999999999999999999\r\n",
    "bulk-letters": b"*1\r\n$abc\r\n",
    "bulk-plus-sign": b"*1\r\n$+4\r\nPING\r\n",
    "bulk-space": b"*1\r\n$ 4\r\nPING\r\n",
    "bulk-underscore": b"*1\r\n$0_4\r\nPING\r\n",
    "bulk-leading-zero": b"*1\r\n$04\r\nPING\r\n",
    "bulk-negative": b"*1\r\n$-1\r\n",
    "bulk-minus-zero": b"*2\r\n$4\r\nECHO\r\n$-0\r\n\r\n",
    "bulk-over-512mb": b"*1\r\n$536870913\r\n",
    "expected-dollar": b"*1\r\nPING\r\n",
    "expected-dollar-integer": b"*2\r\n$4\r\nECHO\r\n:1\r\n",
    "expected-dollar-nested-array": b"*3\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n:1\r\n$1\r\nc\r\n",
    "expected-dollar-nil-behind-nested": b"*3\r\n*1\r\n$1\r\na\r\n$-1\r\n$1\r\nb\r\n",
    "expected-dollar-map": b"*2\r\n$4\r\nECHO\r\n%1\r\n$1\r\na\r\n$1\r\nb\r\n",
    "inline-unbalanced-double": b"ECHO \"abc\r\n",
    "inline-unbalanced-single": b"ECHO 'abc\r\n",
    "inline-closing-quote-then-letter": b"ECHO \"a\"b\r\n",
    "inline-too-big": b"A" * (64 * 1024 + 100),
    "mbulk-count-too-big": b"*" + b"1" * (64 * 1024 + 100),
    "bulk-count-too-big": b"*1\r\n$" + b"1" * (64 * 1024 + 100),
}


@pytest.mark.parametrize("frame", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frame(node, redis_server, bystander, frame):
    """Requests before the fault are answered, then -ERR Protocol error and close; byte for byte as Redis."""
    # a "too big" frame must not be followed by a newline, or it is just a long line
    payload = encode_command("PING") + frame + (encode_command("PING") if len(frame) < 60000 else b"")
    received = until_closed_like_redis(node, redis_server, payload)
    assert received.startswith(b"+PONG\r\n-ERR Protocol error: ")
    assert received.count(b"\r\n") == 2


def test_malformed_frame_split_across_reads(node, bystander):
    with node.raw() as sock:
        for piece in (b"*2\r\n", b"$4\r\nECHO\r\n", b"$", b"1x", b"\r\n"):
            sock.sendall(piece)
            time.sleep(0.01)        # separate reads, not a wait for a condition
        assert read_until_closed(sock) == b"-ERR Protocol error: invalid bulk length\r\n"


def test_half_a_frame_then_silence_affects_no_one(node, bystander):
    half = node.raw()
    half.sendall(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$10\r\nhel")
    others = [node.client() for _ in range(3)]
    for i, r in enumerate(others):
        assert r.set(f"k{i}", i) and r.get(f"k{i}") == str(i).encode()
    # the silent client is still connected, and can finish its request later
    half.sendall(b"lo worl\r\n")
    assert read_reply(half) == b"OK"
    assert others[0].get("half") == b"hello worl"
    half.close()
    for r in others:
        r.close()


def test_malformed_frame_behind_a_blocked_command(node, redis_server):
    # As Redis: the blocked command is answered first, then the requests read
    # meanwhile, then the protocol error; the client is not dropped mid-wait.
    replies = []
    for server in (node, redis_server):
        with server.raw() as sock, server.client() as r:
            sock.sendall(encode_command("BLPOP", "{q}k", "0"))
            wait_until(lambda: int(r.info("clients")["blocked_clients"]) == 1, message="BLPOP to block")
            sock.sendall(encode_command("PING") + b"*abc\r\n")
            time.sleep(0.2)     # let the node read it while blocked; the outcome is the same if not
            r.rpush("{q}k", "v")
            replies.append(read_until_closed(sock))
    assert replies[0] == replies[1] == (b"*2\r\n$4\r\n{q}k\r\n$1\r\nv\r\n+PONG\r\n"
                                        b"-ERR Protocol error: invalid multibulk length\r\n")


def test_client_kill_arguments_like_redis(node, redis_server):
    assert_like_redis(node, redis_server,
                      ("CLIENT", "KILL", "ID", "0"), ("CLIENT", "KILL", "ID", "-1"),
                      ("CLIENT", "KILL", "ID", "abc"), ("CLIENT", "KILL", "USER", "nobody"),
                      ("CLIENT", "KILL", "USER", "default", "ID", "99999"),
                      ("CLIENT", "KILL", "SKIPME", "maybe"), ("CLIENT", "KILL", "1.2.3.4:5"))


def test_exec_with_arguments_aborts_the_transaction_like_redis(node, redis_server):
    assert_like_redis(node, redis_server, ("WATCH", "{t}w"), ("MULTI",), ("SET", "{t}k", "v"),
                      ("EXEC", "x"), ("EXEC",), ("GET", "{t}k"))


# -- errors in well-formed requests ----------------------------------------------------------

def test_unknown_command(node, redis_server):
    assert_like_redis(node, redis_server, ("foo", "a"), ("FooBar",), ("foo", "a", "b c", ""),
                      ("x" * 200, "y" * 200), ("foo", *["abcdefghij"] * 20))
    with node.client() as r:
        with pytest.raises(redis.ResponseError) as error:
            r.execute_command("foo", "a")
        assert str(error.value) == "unknown command 'foo', with args beginning with: 'a' "


def test_unknown_command_raw_bytes(node):
    assert exchange(node.port, encode_command("foo", "a"), 1) == \
        b"-ERR unknown command 'foo', with args beginning with: 'a' \r\n"


def test_wrong_arity(node, redis_server):
    assert_like_redis(node, redis_server, ("GET",), ("get", "a", "b"), ("SET", "a"), ("MSET", "a"),
                      ("MSET", "{t}a", "1", "{t}b"), ("INCR",), ("PING", "a", "b"), ("ECHO",),
                      ("EXISTS",), ("DEL",), ("CLIENT",), ("CLIENT", "SETNAME"), ("CONFIG", "GET"))


def test_wrong_type(node, redis_server):
    assert_like_redis(node, redis_server, ("RPUSH", "l", "a"), ("GET", "l"), ("INCR", "l"),
                      ("APPEND", "l", "x"), ("SET", "s", "v"), ("LPUSH", "s", "x"), ("HGET", "s", "f"),
                      ("LLEN", "s"), ("TYPE", "l"), ("TYPE", "s"))


def test_numbers(node, redis_server):
    assert_like_redis(
        node, redis_server,
        ("SET", "n", "abc"), ("INCR", "n"), ("INCRBY", "n", "1"), ("SET", "n", "10"),
        ("INCRBY", "n", "1.5"), ("INCRBY", "n", " 1"), ("INCRBY", "n", "+1"), ("INCRBY", "n", "01"),
        ("INCRBY", "n", "99999999999999999999"), ("SET", "m", "9223372036854775807"), ("INCR", "m"),
        ("DECRBY", "n", "-9223372036854775808"), ("INCRBYFLOAT", "n", "abc"), ("INCRBYFLOAT", "n", "1e400"),
        ("INCRBYFLOAT", "n", "0.1"), ("SET", "k", "v", "EX", "0"), ("SET", "k", "v", "EX", "abc"),
        ("SET", "k", "v", "PX", "-1"), ("SET", "k", "v", "EX", "99999999999999999"),
        ("EXPIRE", "k", "abc"), ("GETRANGE", "k", "a", "1"), ("SETRANGE", "k", "-1", "x"),
        ("SET", "k", "v", "NX", "XX"), ("SET", "k", "v", "BOGUS"), ("GET", "n"))


def test_ten_thousand_pipelined_commands_are_answered_in_order(node):
    count = 10_000
    payload = b"".join(encode_command("INCR", "counter") for _ in range(count // 2))
    payload += b"".join(encode_command("ECHO", f"e{i}") for i in range(count // 2))
    with node.raw(timeout=30) as sock:
        # send from a thread so neither side can stall on a full socket buffer
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        replies = [read_reply(sock, timeout=30) for _ in range(count)]
        sender.join(30)
    assert replies[:count // 2] == list(range(1, count // 2 + 1))
    assert replies[count // 2:] == [f"e{i}".encode() for i in range(count // 2)]


def test_redis_py_pipeline_of_ten_thousand(r):
    pipe = r.pipeline(transaction=False)
    for i in range(10_000):
        pipe.set(f"key:{i}", i)
        pipe.get(f"key:{i}")
    replies = pipe.execute()
    assert replies[0::2] == [True] * 10_000
    assert replies[1::2] == [str(i).encode() for i in range(10_000)]


def _rss_peak_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def test_a_client_that_never_reads(node, bystander):
    """It stops being read (or is closed); others keep their latency; the node's memory stays bounded."""
    with node.client() as r:
        r.set("big", b"v" * 10_000)
    peak_before = _rss_peak_kb(node.proc.pid)
    hog = node.raw()
    hog.setblocking(False)
    request = encode_command("GET", "big") * 1000
    sent = 0
    deadline = time.monotonic() + 20
    latencies = []
    with node.client() as other:
        while time.monotonic() < deadline:
            try:
                sent += hog.send(request)
            except BlockingIOError:
                break                      # the node stopped reading it: back-pressure works
            except (BrokenPipeError, ConnectionResetError):
                break                      # or it closed it
            started = time.monotonic()
            assert other.ping()
            latencies.append(time.monotonic() - started)
        assert time.monotonic() < deadline, "the node kept reading a client that never reads"
        started = time.monotonic()
        assert other.set("still", "here") and other.get("still") == b"here"
        latencies.append(time.monotonic() - started)
    hog.close()
    assert sent > 0
    assert max(latencies) < 2.0
    grown_mb = (_rss_peak_kb(node.proc.pid) - peak_before) / 1024
    assert grown_mb < 300, f"node memory peaked {grown_mb:.0f} MB higher"


# -- inline commands, like telnet / nc -------------------------------------------------------

def test_inline_commands(node, redis_server):
    payload = b"PING\r\nPING\nECHO \"hello world\"\r\nSET k 'it\\'s'\r\nGET k\r\n\r\nECHO \"\\x41\\n\"\r\n"
    ours = exchange(node.port, payload, 6)
    assert ours == exchange(redis_server.port, payload, 6)
    assert ours.startswith(b"+PONG\r\n+PONG\r\n$11\r\nhello world\r\n+OK\r\n$4\r\nit's\r\n")


def test_inline_ping_typed_slowly(node):
    with node.raw() as sock:
        for ch in b"PING\r\n":
            sock.sendall(bytes([ch]))
        assert read_reply(sock) == b"PONG"


# -- RESP3 -------------------------------------------------------------------------------------

def test_hello_3_and_resp3_replies(node, redis_server):
    def hello(port):
        with raw_connect(port) as sock:
            sock.sendall(encode_command("HELLO", "3"))
            return read_reply(sock)
    ours, theirs = hello(node.port), hello(redis_server.port)
    assert isinstance(ours, dict)
    assert list(ours) == list(theirs)
    assert ours[b"proto"] == 3 and ours[b"server"] == b"redis" and ours[b"version"].startswith(b"7.0")
    assert ours[b"mode"] == b"cluster"
    commands = [("HELLO", "3"), ("SET", "s", "v"), ("GET", "s"), ("GET", "missing"), ("EXISTS", "s"),
                ("HSET", "h", "f", "v"), ("HGETALL", "h"), ("SADD", "set", "a"), ("SMEMBERS", "set"),
                ("INCRBYFLOAT", "f", "1.5"), ("ZADD", "z", "1.5", "m"), ("ZSCORE", "z", "m"), ("MGET", "{t}s", "{t}missing"), ("CONFIG", "GET", "maxmemory"),
                ("HELLO", "4"), ("HELLO", "2"), ("HGETALL", "h"), ("GET", "missing")]
    payload, count = script(*commands)
    ours_raw = exchange(node.port, payload, count)
    theirs_raw = exchange(redis_server.port, payload, count)
    # the HELLO maps differ in id/version/mode/role: compare what follows each
    def after_hellos(raw):
        reader = hiredis.Reader()
        reader.feed(raw)
        return [reader.gets() for _ in range(count)]
    ours_list, theirs_list = after_hellos(ours_raw), after_hellos(theirs_raw)
    for i, (a, b) in enumerate(zip(ours_list, theirs_list)):
        if commands[i][0] == "HELLO" and isinstance(a, dict):
            assert list(a) == list(b)
        elif commands[i][0] == "HELLO" and isinstance(a, list):
            assert a[0::2] == b[0::2]
        elif isinstance(a, Exception):
            assert str(a) == str(b), commands[i]
        else:
            assert a == b, commands[i]
    assert b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n" in ours_raw        # HGETALL as a map in RESP3
    assert b"~1\r\n$1\r\na\r\n" in ours_raw                   # SMEMBERS as a set
    assert b",1.5\r\n" in ours_raw                            # a double (ZSCORE)
    assert b"_\r\n" in ours_raw                               # null
    assert b"-NOPROTO unsupported protocol version\r\n" in ours_raw
    assert ours_raw.endswith(b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n$-1\r\n")   # back to RESP2


def test_redis_py_resp3_client(node):
    with node.client(protocol=3, decode_responses=True) as r:
        r.flushall()
        r.hset("h", mapping={"a": "1", "b": "2"})
        assert r.hgetall("h") == {"a": "1", "b": "2"}
        assert r.get("nothing") is None
        assert r.incrbyfloat("f", 2.5) == 2.5


# -- authentication, protected mode, maxclients, timeout ---------------------------------------

def test_requirepass_like_redis(node_factory, redis_server_factory):
    node = node_factory.start(password="s3cret")
    server = redis_server_factory("--requirepass", "s3cret")
    commands = [("GET", "k"), ("PING",), ("EXEC",), ("MULTI",), ("EXEC",),    # a refused EXEC: EXECABORT
                ("AUTH", "wrong"), ("AUTH", "default", "wrong"), ("AUTH", "a", "b", "c"),
                ("HELLO", "3", "AUTH", "default", "wrong"), ("GET", "k"), ("AUTH", "s3cret"), ("SET", "k", "v"),
                ("GET", "k"), ("AUTH", "default", "s3cret")]
    payload, count = script(*commands)
    assert exchange(node.port, payload, count) == exchange(server.port, payload, count)
    # pre-authentication limits: few arguments, small bulks; the error closes the connection
    for frame in (encode_command(*["x"] * 11), encode_command("AUTH", "p" * 16385),
                  encode_command(*["x"] * 10) + encode_command("ECHO", "y" * 20000)):
        got = []
        for port in (node.port, server.port):
            with raw_connect(port) as sock:
                try:
                    sock.sendall(frame)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                got.append(read_until_closed(sock))
        assert got[0] == got[1]
        assert b"-ERR Protocol error: unauthenticated" in got[0]
    # after AUTH, the big request is fine
    with node.raw() as sock:
        sock.sendall(encode_command("AUTH", "s3cret"))
        assert read_reply(sock) == b"OK"
        sock.sendall(encode_command("ECHO", "y" * 20000) + encode_command(*["ECHO"] + ["z"] * 1))
        assert read_reply(sock) == b"y" * 20000
        assert read_reply(sock) == b"z"
    # HELLO with AUTH, as clients do
    with raw_connect(node.port) as sock:
        sock.sendall(encode_command("HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "me")
                     + encode_command("CLIENT", "GETNAME"))
        assert read_reply(sock)[b"proto"] == 3
        assert read_reply(sock) == b"me"
    with node.client() as r:                    # redis-py with password=
        assert r.set("x", 1) and r.get("x") == b"1"


def test_a_refused_exec_answers_execabort_in_multi_or_not_like_redis(node, redis_server):
    # Redis's rejectCommand: EXEC refused before it runs (arity, pub/sub context) says EXECABORT
    payload, count = script(("EXEC", "x"), ("MULTI",), ("SET", "{e}k", "v"), ("EXEC", "x"), ("EXEC",),
                            ("GET", "{e}k"), ("SUBSCRIBE", "ch"), ("EXEC",), ("MULTI",), ("PING", "done"))
    assert exchange(node.port, payload, count) == exchange(redis_server.port, payload, count)


def test_big_request_pipelined_behind_auth(node_factory, redis_server_factory):
    node = node_factory.start(password="s3cret")
    server = redis_server_factory("--requirepass", "s3cret")
    payload, count = script(("AUTH", "s3cret"), ("ECHO", "y" * 20000), ("ECHO", "z"))
    theirs = exchange(server.port, payload, count)
    assert theirs == b"+OK\r\n$20000\r\n" + b"y" * 20000 + b"\r\n$1\r\nz\r\n"
    assert exchange(node.port, payload, count) == theirs


def _non_loopback_ip() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.254", 9))      # no packet is sent; picks the outgoing address
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def test_protected_mode(node_factory):
    # (--mesh-insecure: the mesh's own protected mode would refuse 0.0.0.0 without a cluster secret)
    ip = _non_loopback_ip()
    if ip is None:
        pytest.skip("no non-loopback address on this machine")
    open_node = node_factory.start("--host", "0.0.0.0", "--mesh-insecure")
    with raw_connect(open_node.port) as local:            # loopback: served
        local.sendall(b"PING\r\n")
        assert read_reply(local) == b"PONG"
    with socket.create_connection((ip, open_node.port), timeout=5) as remote:
        refused = read_until_closed(remote)
    assert refused.startswith(b"-DENIED ") and refused.endswith(b"\r\n") and b"protected mode" in refused
    with open_node.client() as r:                          # and the node carries on
        assert r.ping()
    with_password = node_factory.start("--host", "0.0.0.0", "--mesh-insecure", password="pw")
    with socket.create_connection((ip, with_password.port), timeout=5) as remote:
        remote.sendall(b"PING\r\n")
        reply = read_reply(remote)
        assert isinstance(reply, hiredis.ReplyError) and str(reply) == "NOAUTH Authentication required."
    unprotected = node_factory.start("--host", "0.0.0.0", "--mesh-insecure", "--protected-mode", "no")
    with socket.create_connection((ip, unprotected.port), timeout=5) as remote:
        remote.sendall(b"PING\r\n")
        assert read_reply(remote) == b"PONG"


def test_a_low_open_file_limit_lowers_maxclients_as_redis_does(node_factory):
    # ulimit -n 256 (hard too): far from the 16,170 files 10,000 clients and a full map's peers need,
    # so the mesh keeps room for (256 - 32) / 2 / 6 = 18 peers and clients get the other 116
    chosen = open_files.plan(256, 256, 10_000, MAX_MEMBERS - 1)
    assert (chosen.maxclients, chosen.mesh_peers) == (116, 18)
    node = node_factory.start(nofile=(256, 256))
    assert "maxclients has been reduced to 116 and the mesh to 18 peers" in node.logs()
    assert call(node, "CONFIG", "GET", "maxclients") == [b"maxclients", b"116"]
    with node.client() as r, pytest.raises(redis.ResponseError) as refused:
        r.config_set("maxclients", 10_000)
    assert str(refused.value) == ("CONFIG SET failed (possibly related to argument 'maxclients') - The operating "
                                  "system is not able to handle the specified number of clients, try with 116")
    # every client the limit holds is served; the next one is told so, not left to an EMFILE
    clients = _fill_to_maxclients(node, 116)
    for sock in clients:
        sock.close()


@pytest.mark.skipif(resource.getrlimit(resource.RLIMIT_NOFILE)[1] <= 1024, reason="a hard ulimit -n of 1024 or less")
def test_the_open_file_limit_is_raised_for_clients_and_a_full_map(node_factory):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    chosen = open_files.plan(1024, hard, 10_000, MAX_MEMBERS - 1)
    node = node_factory.start(nofile=(1024, hard))
    limits = (Path("/proc") / str(node.proc.pid) / "limits").read_text()
    soft = next(line.split()[3] for line in limits.splitlines() if line.startswith("Max open files"))
    assert int(soft) == chosen.limit > 1024
    assert call(node, "CONFIG", "GET", "maxclients") == [b"maxclients", b"%d" % chosen.maxclients]


def _fill_to_maxclients(node: NodeProcess, maxclients: int) -> list[socket.socket]:
    """Open clients until `maxclients` are connected, each served, and check that one more is refused."""
    first = node.raw()

    def alone() -> bool:     # the readiness probe's connection may not be reaped yet
        first.sendall(encode_command("CLIENT", "LIST"))
        return read_reply(first).count(b"\n") == 1
    wait_until(alone, timeout=10, message="the only connected client")
    clients = [first] + [node.raw() for _ in range(maxclients - 1)]
    for sock in clients:
        sock.sendall(b"PING\r\n")
        assert read_reply(sock) == b"PONG"
    with node.raw() as extra:
        assert read_until_closed(extra) == b"-ERR max number of clients reached\r\n"
    return clients


def test_maxclients(node_factory):
    node = node_factory.start("--maxclients", "3")
    clients = _fill_to_maxclients(node, 3)
    clients.pop().close()

    def a_new_client_is_served() -> bool:
        with node.raw() as sock:
            sock.sendall(b"PING\r\n")
            return read_reply(sock) == b"PONG"
    wait_until(a_new_client_is_served, timeout=10, message="a slot freed by a closed client")
    for sock in clients:
        sock.sendall(b"PING\r\n")
        assert read_reply(sock) == b"PONG"
        sock.close()


def test_idle_timeout(node_factory):
    node = node_factory.start("--timeout", "1")
    idle = node.raw(timeout=15)
    idle.sendall(b"PING\r\n")
    assert read_reply(idle) == b"PONG"
    busy = node.raw()
    started = time.monotonic()
    closed = {}

    def idle_closed() -> bool:
        busy.sendall(b"PING\r\n")                   # the busy client keeps talking
        assert read_reply(busy) == b"PONG"
        idle.settimeout(0.05)
        try:
            data = idle.recv(100)
        except socket.timeout:
            return False
        except ConnectionResetError:
            data = b""
        closed["data"] = data
        return data == b""
    wait_until(idle_closed, timeout=15, interval=0.1, message="the idle client to be closed")
    assert time.monotonic() - started >= 0.9
    busy.sendall(b"PING\r\n")
    assert read_reply(busy) == b"PONG"          # active clients are never timed out
    idle.close()
    busy.close()


# -- real clients: redis-cli, redis-benchmark ---------------------------------------------------

def cli(port: int, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([REDIS_CLI, "-p", str(port), *args], input=stdin, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_redis_cli_one_shot(node, redis_server):
    need(REDIS_CLI, "redis-cli")
    for port in (node.port, redis_server.port):
        cli(port, "FLUSHALL")
    for args in [("SET", "foo", "bar"), ("GET", "foo"), ("INCR", "n"), ("INCRBY", "n", "41"),
                 ("GET", "nothing"), ("MSET", "{t}a", "1", "{t}b", "2"), ("MGET", "{t}a", "{t}b", "{t}c"),
                 ("EXISTS", "{t}a", "{t}b"), ("DEL", "{t}a"), ("TYPE", "{t}b"), ("PING",), ("ECHO", "hi there"),
                 ("foo", "bar"), ("GET",), ("RPUSH", "l", "x", "y"), ("GET", "l"), ("LRANGE", "l", "0", "-1")]:
        assert cli(node.port, *args) == cli(redis_server.port, *args), args
    assert cli(node.port, "GET", "foo") == "bar\n"


def test_redis_cli_cluster_mode(node):
    need(REDIS_CLI, "redis-cli")
    assert cli(node.port, "-c", "SET", "{user1}name", "ann") == "OK\n"
    assert cli(node.port, "-c", "GET", "{user1}name") == "ann\n"
    assert cli(node.port, "-c", "MSET", "{user1}a", "1", "{user1}b", "2") == "OK\n"
    out = cli(node.port, "-c", stdin="SET a 1\nGET a\nINCR a\nPING\n")
    assert out.split() == ["OK", "1", "2", "PONG"]


def test_redis_benchmark_runs_without_errors(node):
    need(REDIS_BENCHMARK, "redis-benchmark")
    for extra in ([], ["-P", "16"]):
        done = subprocess.run([REDIS_BENCHMARK, "-p", str(node.port), "-q", "-n", "2000", "-c", "10",
                               "-t", "set,get,incr,mset", *extra],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        text = (done.stdout + done.stderr).lower()
        assert "error" not in text and "err " not in text, text
        for test in ("SET", "GET", "INCR", "MSET"):
            assert any(line.startswith(test) and "requests per second" in line
                       for line in done.stdout.replace("\r", "\n").splitlines()), done.stdout
    with node.client() as r:
        assert r.ping()


def test_a_pipeline_of_big_replies_waits_for_a_client_that_does_not_read(node, bystander):
    """100 GETs of a 1 MB value in one read: the node sends as the client reads, never
    building 100 MB of replies, and every reply still arrives, in order."""
    value = os.urandom(1024 * 1024)
    with node.client() as r:
        r.set("huge", value)
    peak_before = _rss_peak_kb(node.proc.pid)
    hog = node.raw()
    hog.sendall(encode_command("GET", "huge") * 100 + encode_command("PING"))
    # while the hog reads nothing, others are served and the node holds back
    with node.client() as other:
        for _ in range(20):
            assert other.ping()
    grown_mb = (_rss_peak_kb(node.proc.pid) - peak_before) / 1024
    assert grown_mb < 40, f"node memory peaked {grown_mb:.0f} MB higher for a client not reading"
    reader = hiredis.Reader()
    replies = []
    hog.settimeout(30)
    while len(replies) < 101:
        chunk = hog.recv(1 << 20)
        assert chunk, "the node closed the connection"
        reader.feed(chunk)
        while (reply := reader.gets()) is not False:
            replies.append(reply)
    hog.close()
    assert replies[:100] == [value] * 100 and replies[100] == b"PONG"


def test_a_pipeline_of_big_array_replies_waits_for_a_client_that_does_not_read(node, bystander):
    """64 LRANGEs of a 100k-element list (~1.5 MB each) in one read: the same back-pressure as for
    big strings, for replies built as arrays; all of them arrive once the client reads."""
    with node.client() as r:
        for start in range(0, 100_000, 10_000):
            r.rpush("long", *(b"item%06d" % i for i in range(start, start + 10_000)))
    peak_before = _rss_peak_kb(node.proc.pid)
    hog = node.raw()
    hog.sendall(encode_command("LRANGE", "long", "0", "-1") * 64 + encode_command("PING"))
    with node.client() as other:
        for _ in range(20):
            assert other.ping()
    grown_mb = (_rss_peak_kb(node.proc.pid) - peak_before) / 1024
    assert grown_mb < 60, f"node memory peaked {grown_mb:.0f} MB higher for a client not reading"
    reader = hiredis.Reader()
    replies = 0
    hog.settimeout(60)
    while replies < 65:
        chunk = hog.recv(1 << 20)
        assert chunk, "the node closed the connection"
        reader.feed(chunk)
        while (reply := reader.gets()) is not False:
            if replies < 64:
                assert len(reply) == 100_000 and reply[-1] == b"item099999"
            else:
                assert reply == b"PONG"
            replies += 1
    hog.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_pipelined_gets_of_every_kind_answer_like_redis(node, redis_server, protocol):
    """A run of pipelined GETs is served in one pass: each reply still as Redis gives it."""
    tag = "{gr%d}" % protocol
    setup = [("SET", f"{tag}s", "v"), ("SET", f"{tag}big", "b" * 5000), ("SET", f"{tag}empty", ""),
             ("HSET", f"{tag}h", "f", "1"), ("SET", f"{tag}ttl", "t", "PX", "1"),
             ("SET", f"{tag}later", "x", "EX", "100")]
    gets = [("GET", f"{tag}{name}") for name in
            ("s", "missing", "big", "h", "empty", "s", "ttl", "later", "h", "s")]
    hello = [("HELLO", "3")] if protocol == 3 else []
    for server in (node, redis_server):
        payload, count = script(*setup)
        exchange(server.port, payload, count)
        with server.client(protocol=2) as r:
            wait_until(lambda: r.pttl(f"{tag}ttl") == -2, timeout=5, message="the 1 ms TTL to pass")
    replies = []
    for server in (node, redis_server):
        with server.client(protocol=2) as r:
            r.config_resetstat()
        payload, count = script(*hello, *gets, ("GET", f"{tag}s"))
        replies.append(exchange(server.port, payload, count))
        with server.client(protocol=2) as r:
            stats = r.info("stats")
            replies.append((stats["keyspace_hits"], stats["keyspace_misses"]))
            replies.append(r.info("commandstats")["cmdstat_get"]["failed_calls"])
    if protocol == 3:       # HELLO's own reply differs (mode, id); it ends with its empty modules
        replies[0], replies[3] = (raw.split(b"$7\r\nmodules\r\n*0\r\n", 1)[1] for raw in (replies[0], replies[3]))
    assert replies[:3] == replies[3:]


def test_a_lone_get_of_the_wrong_type_counts_one_hit_like_redis(node, redis_server):
    counts = []
    for server in (node, redis_server):
        with server.client(protocol=2) as r:
            r.hset("{wt}h", "f", "1")
            r.config_resetstat()
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                r.get("{wt}h")
            stats = r.info("stats")
            counts.append((stats["keyspace_hits"], stats["keyspace_misses"]))
    assert counts[0] == counts[1] == (1, 0)


@pytest.mark.parametrize("protocol", [2, 3])
def test_a_pipeline_across_flushall_and_oom_answers_like_redis(node, redis_server, protocol):
    """Pipelined GET/SET around commands that change the keyspace under them.

    FLUSHALL replaces the whole keyspace and CONFIG SET maxmemory turns SETs
    into OOM errors in the middle of one read: the replies, the keyspace hits
    and misses and the rejected calls must be what Redis gives.
    """
    hello = [("HELLO", "3")] if protocol == 3 else []
    commands = [*hello, ("SET", "{fl}a", "1"), ("GET", "{fl}a"), ("FLUSHALL",), ("GET", "{fl}a"),
                ("SET", "{fl}b", "2"), ("GET", "{fl}b"),
                ("CONFIG", "SET", "maxmemory", "1"), ("SET", "{fl}c", "3"), ("SET", "{fl}c", "4"),
                ("GET", "{fl}c"), ("GET", "{fl}b"), ("CONFIG", "SET", "maxmemory", "0"),
                ("SET", "{fl}c", "5"), ("GET", "{fl}c")]
    replies = []
    for server in (node, redis_server):
        with server.client(protocol=2) as r:
            r.config_set("maxmemory-policy", "noeviction")
            r.config_resetstat()
        payload, count = script(*commands)
        replies.append(exchange(server.port, payload, count))
        with server.client(protocol=2) as r:
            stats = r.info("stats")
            replies.append((stats["keyspace_hits"], stats["keyspace_misses"]))
            cmdstat = r.info("commandstats")
            replies.append({name: (cmdstat[f"cmdstat_{name}"]["calls"], cmdstat[f"cmdstat_{name}"]["rejected_calls"])
                            for name in ("get", "set")})
            r.flushall()
    if protocol == 3:       # HELLO's own reply differs (mode, id); it ends with its empty modules
        replies[0], replies[3] = (raw.split(b"$7\r\nmodules\r\n*0\r\n", 1)[1] for raw in (replies[0], replies[3]))
    assert replies[:3] == replies[3:]
    assert replies[2] == {"get": (6, 0), "set": (3, 2)}
