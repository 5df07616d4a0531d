"""CLIENT REPLY / UNBLOCK / PAUSE / UNPAUSE against a real redis-server, and CLIENT NO-TOUCH on the node.

Each scenario sends the same bytes to both servers from the same connections
and compares every connection's byte stream (client ids, which differ, are
sent as names). NO-TOUCH is Redis 7.2's, which the redis-server of the suite
(7.0) does not have: it is checked on the node against OBJECT FREQ.
"""
from __future__ import annotations

from tests.blackbox.test_pipelines_vs_redis import comparable, replies
from tests.nodes import encode_command, raw_connect, wait_until


def _read_until(sock, end: bytes) -> bytes:
    data = b""
    sock.settimeout(10)
    while not data.endswith(end):
        chunk = sock.recv(1 << 16)
        assert chunk, "connection closed"
        data += chunk
    return data


def _client_list(sock) -> bytes:
    sock.sendall(encode_command("CLIENT", "LIST"))
    return replies(sock, 1)[0]


def _client_id(sock) -> int:
    sock.sendall(encode_command("CLIENT", "ID"))
    return replies(sock, 1)[0]


def _reply_modes(port: int) -> bytes:
    sock = raw_connect(port)
    try:
        sock.sendall(b"".join(encode_command(*c) for c in (
            ["CLIENT", "REPLY", "OFF"], ["SET", "{r}a", "1"], ["GET", "{r}a"], ["CLIENT", "REPLY", "SKIP"],
            ["CLIENT", "REPLY", "ON"], ["GET", "{r}a"], ["CLIENT", "REPLY", "SKIP"], ["INCR", "{r}a"], ["GET", "{r}a"],
            ["CLIENT", "REPLY", "SKIP"], ["CLIENT", "REPLY", "SKIP"], ["GET", "{r}a"], ["CLIENT", "REPLY", "MAYBE"],
            ["PING", "end"])))
        return _read_until(sock, b"end\r\n")
    finally:
        sock.close()


def test_client_reply_like_redis(node, redis_server):
    assert _reply_modes(node.port) == _reply_modes(redis_server.port)


def _unblock(port: int) -> list:
    blocked, admin = raw_connect(port), raw_connect(port)
    try:
        blocked_id = _client_id(blocked)
        seen = []
        for reason in ([], ["TIMEOUT"], ["ERROR"]):
            blocked.sendall(encode_command("BLPOP", "{u}list", "0"))
            wait_until(lambda: b"blocked_clients:1" in _info(admin))
            admin.sendall(encode_command("CLIENT", "UNBLOCK", str(blocked_id), *reason))
            seen.append((comparable(replies(admin, 1)[0]), comparable(replies(blocked, 1)[0])))
        admin.sendall(encode_command("CLIENT", "UNBLOCK", str(blocked_id))
                      + encode_command("CLIENT", "UNBLOCK", "99999999")
                      + encode_command("CLIENT", "UNBLOCK", str(blocked_id), "LATER")
                      + encode_command("CLIENT", "UNBLOCK", "x")
                      + encode_command("CLIENT", "UNBLOCK", "1", "ERROR", "x"))
        seen.append([comparable(r) for r in replies(admin, 5)])
        return seen
    finally:
        blocked.close()
        admin.close()


def _info(sock) -> bytes:
    sock.sendall(encode_command("INFO", "clients"))
    return replies(sock, 1)[0]


def test_client_unblock_like_redis(node, redis_server):
    assert _unblock(node.port) == _unblock(redis_server.port)


def _pause(port: int) -> tuple:
    admin, writer = raw_connect(port), raw_connect(port)
    try:
        admin.sendall(b"".join(encode_command("CLIENT", "PAUSE", *a) for a in (
            ["-1"], ["abc"], ["100", "SOME"], ["100", "WRITE", "x"])))
        errors = [comparable(r) for r in replies(admin, 4)]
        admin.sendall(encode_command("CLIENT", "PAUSE", "100000", "WRITE"))
        assert replies(admin, 1) == [b"OK"]
        # reads go on; the first write waits, and so does everything the writer sent after it
        writer.sendall(encode_command("GET", "{p}k") + encode_command("SET", "{p}k", "v") + encode_command("GET", "{p}k"))
        before = _read_until(writer, b"$-1\r\n")
        admin.sendall(encode_command("GET", "{p}k") + encode_command("EVAL_RO", "return 1", "0")
                      + encode_command("CLIENT", "UNPAUSE"))
        during = [comparable(r) for r in replies(admin, 3)]
        after = _read_until(writer, b"$1\r\nv\r\n")
        # ALL: every command waits for the end of the pause, then runs
        admin.sendall(encode_command("CLIENT", "PAUSE", "300", "ALL"))
        replies(admin, 1)
        writer.sendall(encode_command("GET", "{p}k"))
        last = _read_until(writer, b"$1\r\nv\r\n")
        # a BLPOP the pause postponed, with nothing to pop once it ends: it blocks then
        admin.sendall(encode_command("DEL", "{p}list") + encode_command("CLIENT", "PAUSE", "100000", "WRITE"))
        replies(admin, 2)
        writer.sendall(encode_command("BLPOP", "{p}list", "0") + encode_command("GET", "{p}k"))
        wait_until(lambda: b"cmd=blpop" in _client_list(admin), timeout=10)     # (postponed)
        admin.sendall(encode_command("CLIENT", "UNPAUSE") + encode_command("RPUSH", "{p}list", "x"))
        replies(admin, 2)
        popped = _read_until(writer, b"$1\r\nv\r\n")
        return errors, before, during, after, last, popped
    finally:
        admin.sendall(encode_command("CLIENT", "UNPAUSE"))
        admin.close()
        writer.close()


def test_client_pause_like_redis(node, redis_server):
    assert _pause(node.port) == _pause(redis_server.port)


def test_client_no_touch_leaves_lfu_alone(node):
    sock, other = raw_connect(node.port), raw_connect(node.port)
    try:
        sock.sendall(encode_command("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
                     + encode_command("SET", "nt", "v") + encode_command("OBJECT", "FREQ", "nt")
                     + encode_command("CLIENT", "NO-TOUCH", "ON") + encode_command("GET", "nt")
                     + encode_command("GET", "nt") + encode_command("OBJECT", "FREQ", "nt")
                     + encode_command("TOUCH", "nt") + encode_command("OBJECT", "FREQ", "nt")
                     + encode_command("CLIENT", "NO-TOUCH", "MAYBE") + encode_command("CLIENT", "NO-TOUCH", "OFF")
                     + encode_command("GET", "nt") * 200 + encode_command("OBJECT", "FREQ", "nt"))
        got = [comparable(r) for r in replies(sock, 212)]
        fresh, untouched, touched, final = got[2], got[6], got[8], got[-1]
        assert untouched == fresh                  # two GETs from a no-touch client: no access
        assert touched == fresh + 1                # TOUCH still touches (Redis's one exception)
        # touching again: past 6 the counter grows with probability 1/11 an access (lfu-log-factor 10)
        assert final > touched
        assert got[9] == ("error", "ERR syntax error")
    finally:
        sock.sendall(encode_command("CONFIG", "SET", "maxmemory-policy", "noeviction"))
        replies(sock, 1)
        sock.close()
        other.close()


def _fields(line: bytes) -> dict[bytes, bytes]:
    return dict(field.split(b"=", 1) for field in line.split())


def test_client_info_shows_the_running_command_in_the_query_buffer_like_redis(node, redis_server):
    got = []
    for port in (node.port, redis_server.port):
        sock = raw_connect(port)
        # (alone: with more commands behind it in the same read, Redis counts those too)
        sock.sendall(encode_command("CLIENT", "INFO"))
        info = replies(sock, 1)[0]
        got.append({k: v for k, v in _fields(info).items() if k in (b"qbuf", b"qbuf-free")})
        sock.close()
    assert got[0] == got[1] == {b"qbuf": b"26", b"qbuf-free": b"20448"}


def test_an_empty_node_reports_its_own_memory(node):
    sock = raw_connect(node.port)
    sock.sendall(encode_command("INFO", "memory"))
    info = dict(line.split(":", 1) for line in replies(sock, 1)[0].decode().splitlines() if ":" in line)
    sock.close()
    assert int(info["used_memory_dataset"]) == 0
    assert int(info["used_memory"]) == int(info["used_memory_overhead"]) >= int(info["used_memory_startup"]) > 0
