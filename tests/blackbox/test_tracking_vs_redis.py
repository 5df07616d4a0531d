"""Client-side caching (CLIENT TRACKING) byte for byte against a real redis-server, and redis-py's cache.

A scenario runs step by step over four connections (two RESP3 trackers, a
RESP2 tracker redirecting to a RESP2 subscriber of `__redis__:invalidate`,
and a plain writer); after every step each connection is read up to a PING
marker, so the invalidations each one receives, and where they fall among
its replies, are compared with what redis-server sends. Client ids differ
between the two servers: they are written as names in the scenario and
replaced by names in what is read back.
"""
from __future__ import annotations

import re
import time

import pytest

from tests.nodes import encode_command, raw_connect, wait_until

A, B, C, SUB, W = "a", "b", "c", "sub", "w"     # connections: trackers a, b (RESP3), c (RESP2), subscriber, writer
SCENARIO = [
    # errors, as Redis words them
    (A, ["CLIENT", "TRACKING", "on", "PREFIX", "x"]), (A, ["CLIENT", "TRACKING", "on", "BCAST", "OPTIN"]),
    (A, ["CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"]), (A, ["CLIENT", "TRACKING", "maybe"]),
    (A, ["CLIENT", "TRACKING", "on", "REDIRECT", "999999"]), (A, ["CLIENT", "TRACKING", "on", "BOGUS"]),
    (A, ["CLIENT", "CACHING", "yes"]), (A, ["CLIENT", "GETREDIR"]), (A, ["CLIENT", "TRACKINGINFO"]),
    (A, ["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ab", "PREFIX", "a"]),
    # default mode: a read is remembered, the first write invalidates it once
    (A, ["CLIENT", "TRACKING", "on"]), (A, ["GET", "k1"]), (A, ["MGET", "{k}2", "{k}3"]), (A, ["CLIENT", "TRACKINGINFO"]),
    (W, ["SET", "k1", "v"]), (W, ["SET", "k1", "v2"]), (W, ["DEL", "{k}2"]), (W, ["MSET", "{k}2", "1", "{k}3", "2"]),
    (A, ["HGETALL", "h"]), (W, ["HSET", "h", "f", "v"]), (A, ["GET", "k1"]), (A, ["SET", "k1", "mine"]),
    (A, ["GET", "k1"]), (A, ["INCR", "k1"]), (A, ["GET", "k9"]),
    # a script's reads are tracked for its caller; a read-only script's declared keys are not
    (A, ["EVAL", "return redis.call('get', KEYS[1])", "1", "s1"]), (A, ["EVAL_RO", "return 1", "1", "s2"]),
    (W, ["SET", "s1", "1"]), (W, ["SET", "s2", "1"]), (W, ["FLUSHALL"]),
    (A, ["GET", "e"]), (W, ["SET", "e", "1", "PX", "1"]), (A, ["CLIENT", "TRACKING", "on", "BCAST"]),
    (A, ["CLIENT", "TRACKING", "on", "OPTIN"]), (A, ["CLIENT", "TRACKING", "off"]), (W, ["SET", "k9", "1"]),
    # OPTIN: only the read after CLIENT CACHING YES
    (A, ["CLIENT", "TRACKING", "on", "OPTIN"]), (A, ["GET", "o1"]), (A, ["CLIENT", "CACHING", "yes"]),
    (A, ["CLIENT", "TRACKINGINFO"]), (A, ["GET", "o2"]), (A, ["CLIENT", "CACHING", "no"]),
    (W, ["SET", "o1", "1"]), (W, ["SET", "o2", "1"]), (A, ["CLIENT", "TRACKING", "on", "OPTOUT"]),
    (A, ["CLIENT", "TRACKING", "off"]),
    # OPTOUT: every read but the one after CLIENT CACHING NO
    (A, ["CLIENT", "TRACKING", "on", "OPTOUT"]), (A, ["CLIENT", "CACHING", "no"]), (A, ["GET", "p1"]),
    (A, ["GET", "p2"]), (W, ["SET", "p1", "1"]), (W, ["SET", "p2", "1"]), (A, ["CLIENT", "TRACKING", "off"]),
    # NOLOOP: one's own writes are not announced to oneself
    (A, ["CLIENT", "TRACKING", "on", "NOLOOP"]), (A, ["GET", "n1"]), (A, ["SET", "n1", "x"]), (A, ["GET", "n1"]),
    (W, ["SET", "n1", "y"]), (A, ["CLIENT", "TRACKING", "off"]),
    # BCAST with prefixes: every write under them, nothing remembered
    (B, ["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:", "PREFIX", "job:"]),
    (B, ["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:1"]),
    (B, ["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "cart:"]), (B, ["CLIENT", "TRACKINGINFO"]),
    (W, ["SET", "user:1", "a"]), (W, ["SET", "other", "a"]), (W, ["LPUSH", "job:q", "a"]), (W, ["SET", "cart:9", "x"]),
    (B, ["SET", "user:2", "own"]), (W, ["EXPIRE", "user:1", "100"]), (W, ["FLUSHALL"]),
    (B, ["CLIENT", "TRACKING", "off"]), (B, ["CLIENT", "TRACKING", "on", "BCAST", "NOLOOP"]),
    (B, ["SET", "any", "1"]), (W, ["SET", "any", "2"]), (B, ["CLIENT", "TRACKING", "off"]),
    # BCAST: a loop turn's writes in one invalidation per prefix, sorted, each key once
    (B, ["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "{t}b", "PREFIX", "{t}"]),
    (W, ["MSET", "{t}b", "1", "{t}a", "2", "{t}b", "3", "{t}c", "4"]), (B, ["MSET", "{t}z", "1", "{t}a", "1"]),
    (B, ["CLIENT", "TRACKING", "off"]), (B, ["CLIENT", "TRACKING", "on", "BCAST", "NOLOOP"]),
    (B, ["MSET", "{t}z", "1", "{t}a", "1"]), (W, ["MSET", "{t}a", "2", "{t}y", "2"]), (B, ["CLIENT", "TRACKING", "off"]),
    # RESP2 with REDIRECT to a subscriber of __redis__:invalidate
    (SUB, ["SUBSCRIBE", "__redis__:invalidate"]), (C, ["CLIENT", "TRACKING", "on", "REDIRECT", "$sub"]),
    (C, ["CLIENT", "GETREDIR"]), (C, ["CLIENT", "TRACKINGINFO"]), (C, ["GET", "r1"]), (W, ["SET", "r1", "1"]),
    (C, ["GET", "r1"]), (W, ["FLUSHALL"]), (C, ["CLIENT", "TRACKING", "on", "REDIRECT", "$sub", "REDIRECT", "$sub"]),
    (C, ["CLIENT", "TRACKING", "off"]), (C, ["CLIENT", "GETREDIR"]),
    # a redirect to a client that left: RESP3 is told the redirect is broken
    (A, ["CLIENT", "TRACKING", "on", "REDIRECT", "$w2"]), (A, ["GET", "z1"]), ("w2", ["QUIT"]),
    (W, ["SET", "z1", "1"]), (A, ["CLIENT", "TRACKINGINFO"]), (A, ["CLIENT", "TRACKING", "off"]),
    # RESET ends tracking (and RESP3)
    (A, ["CLIENT", "TRACKING", "on", "BCAST"]), (A, ["RESET"]), (A, ["CLIENT", "TRACKINGINFO"]), (W, ["SET", "z2", "1"]),
]


def _run(port: int) -> dict[str, bytes]:
    conns = {name: raw_connect(port) for name in (A, B, C, SUB, W, "w2")}
    ids: dict[str, int] = {}
    for name, sock in conns.items():
        if name in (A, B):
            sock.sendall(encode_command("HELLO", "3") + encode_command("PING", "hello"))
            _read_until(sock, b"hello\r\n")
        sock.sendall(encode_command("CLIENT", "ID"))
        data = _read_until(sock, b"\r\n")
        ids[name] = int(data.strip()[1:])
    seen = {name: b"" for name in conns}
    for step, (name, command) in enumerate(SCENARIO):
        args = [str(ids[a[1:]]) if a.startswith("$") else a for a in command]
        marker = b"m%d" % step
        if command == ["QUIT"]:
            conns[name].sendall(encode_command(*args))
            _read_until(conns[name], b"+OK\r\n")
            _unread.pop(conns[name].fileno(), None)
            conns.pop(name).close()
            wait_until(lambda: b"id=%d " % ids[name] not in _client_list(conns[W]))
            continue
        # The step's command and its marker in one write (one read, one event loop turn:
        # a BCAST invalidation of one's own write follows both replies), then the others.
        conns[name].sendall(encode_command(*args) + encode_command("PING", marker))
        seen[name] += b"<%d>" % step + _read_until(conns[name], marker + b"\r\n")
        for other, sock in conns.items():
            if other != name:
                sock.sendall(encode_command("PING", marker))
                seen[other] += b"<%d>" % step + _read_until(sock, marker + b"\r\n")
    for sock in conns.values():
        _unread.pop(sock.fileno(), None)
        sock.close()
    names = {b"%d" % number: name.encode() for name, number in ids.items()}

    def named(match: re.Match) -> bytes:        # ids differ between servers: name them
        return match.group(1) + names.get(match.group(2), match.group(2)) + match.group(3)

    return {stream: re.sub(rb"((?:^|\r\n|>):)(\d+)(\r\n)", named, data) for stream, data in seen.items()}


def _client_list(sock) -> bytes:
    sock.sendall(encode_command("CLIENT", "LIST"))
    return _read_until(sock, b"\n\r\n")


_unread: dict[int, bytes] = {}     # socket fileno -> bytes read past the last marker


def _read_until(sock, end: bytes) -> bytes:
    """Bytes up to and including `end`; what follows it is kept for the next call."""
    data = _unread.pop(sock.fileno(), b"")
    sock.settimeout(10)
    while end not in data:
        chunk = sock.recv(1 << 16)
        assert chunk, "connection closed"
        data += chunk
    cut = data.index(end) + len(end)
    if cut < len(data):
        _unread[sock.fileno()] = data[cut:]
    return data[:cut]


def test_tracking_scenario_like_redis(node, redis_server):
    mine, theirs = _run(node.port), _run(redis_server.port)
    for name in theirs:
        assert mine[name].split(b"<") == theirs[name].split(b"<"), name
    assert theirs[A].count(b"invalidate") >= 8      # the scenario really invalidates
    assert theirs[SUB].count(b"__redis__:invalidate") >= 3


def test_tracking_table_is_bounded(node):
    """Past tracking-table-max-keys, the oldest remembered keys are invalidated (and forgotten)."""
    tracker, admin = raw_connect(node.port), raw_connect(node.port)
    try:
        tracker.sendall(encode_command("HELLO", "3") + encode_command("CLIENT", "TRACKING", "on"))
        _read_until(tracker, b"+OK\r\n")
        admin.sendall(encode_command("CONFIG", "SET", "tracking-table-max-keys", "10"))
        _read_until(admin, b"+OK\r\n")
        tracker.sendall(b"".join(encode_command("GET", f"key{i}") for i in range(50)) + encode_command("PING", "end"))
        received = _read_until(tracker, b"$3\r\nend\r\n")
        assert received.count(b"invalidate") == 40
        assert b"key0\r\n" in received and b"key49\r\n" not in received
        admin.sendall(encode_command("INFO", "stats"))
        info = _read_until(admin, b"\r\n\r\n")
        assert b"tracking_total_keys:10\r\n" in info and b"tracking_total_items:10\r\n" in info
    finally:
        admin.sendall(encode_command("CONFIG", "SET", "tracking-table-max-keys", "1000000"))
        _read_until(admin, b"+OK\r\n")
        tracker.close()
        admin.close()


def test_redis_py_client_side_cache(node, monkeypatch):
    """redis-py's own cache (RESP3, cache_config) serves repeated reads locally and drops what is invalidated.

    redis-py (5.1 to 8.x) enables its cache only for servers that say they are
    Redis 7.4 or later; the node says 7.0.15, the Redis whose surface it
    implements, so the test lowers that gate to run redis-py's real cache.
    """
    redis = pytest.importorskip("redis")
    from redis.cache import CacheConfig
    from redis.connection import CacheProxyConnection

    monkeypatch.setattr(CacheProxyConnection, "MIN_ALLOWED_VERSION", "7.0.0")

    cached = redis.Redis(host="127.0.0.1", port=node.port, protocol=3, cache_config=CacheConfig())
    writer = node.client()
    try:
        writer.set("profile", "v1")
        assert cached.get("profile") == b"v1"
        calls = _get_calls(writer)
        for _ in range(20):
            assert cached.get("profile") == b"v1"
        assert _get_calls(writer) == calls          # served from the client's cache: no GET reached the node
        writer.set("profile", "v2")
        # the invalidation is read on the cached connection's next use
        assert wait_until(lambda: cached.get("profile") == b"v2", timeout=5)
        assert _get_calls(writer) > calls
        writer.expire("profile", 1)
        deadline = time.monotonic() + 10
        while cached.get("profile") is not None:     # expiry invalidates too
            assert time.monotonic() < deadline, "the expired key stayed in the client's cache"
            time.sleep(0.05)
    finally:
        cached.close()
        writer.close()


def _get_calls(client) -> int:
    return int(client.info("commandstats").get("cmdstat_get", {}).get("calls", 0))
