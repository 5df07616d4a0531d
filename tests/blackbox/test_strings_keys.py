"""String, key and transaction commands over the wire: redis-py against a real node process.

The main test is differential: the same script runs against hypercache and a
real redis-server 7.0, and every reply (errors included, byte for byte) must
be equal. All keys of the script share one hash tag, so the cluster rules of
hypercache (CROSSSLOT) never come into play and both servers see the same
commands.
"""
from __future__ import annotations

import shlex

import hiredis
import pytest
import redis

from tests.nodes import encode_command, raw_connect, read_reply, wait_until

TAG = "{t}"

# One command per line; `{t}` is the shared hash tag. Timing-sensitive replies
# (PTTL) are avoided; TTL in whole seconds is stable over a test's duration.
SCRIPT = """
SET {t}s hello
GET {t}s
SET {t}s world XX GET
SET {t}s x NX
SET {t}s v EX 100 NX
SET {t}s v KEEPTTL EX 10
SET {t}s v EX 0
SET {t}s v PX 9223372036854775807
SET {t}s v EX abc
SET {t}s v FOO
SET {t}gone v EXAT 1
EXISTS {t}gone
SETNX {t}s other
SETEX {t}e 100 v
TTL {t}e
SETEX {t}e 0 v
PSETEX {t}e -1 v
MSET {t}a 1 {t}b 2
MSET {t}a 1 {t}b
MSETNX {t}a 1 {t}c 3
MSETNX {t}c 3 {t}d 4
MGET {t}a {t}b {t}nokey {t}c
GETSET {t}a 10
GETDEL {t}a
GETDEL {t}a
GETEX {t}b EX 100
TTL {t}b
GETEX {t}b PERSIST
TTL {t}b
GETEX {t}b EX 10 PX 10
GETEX {t}nokey EXAT abc
APPEND {t}ap hello
APPEND {t}ap " world"
STRLEN {t}ap
STRLEN {t}nokey
INCR {t}n
INCRBY {t}n 41
DECRBY {t}n 2
DECR {t}n
INCRBY {t}n abc
DECRBY {t}n -9223372036854775808
SET {t}big 9223372036854775807
INCR {t}big
SET {t}neg -0
INCR {t}neg
INCR {t}ap
SET {t}f 10.5
INCRBYFLOAT {t}f 0.1
INCRBYFLOAT {t}f -5
INCRBYFLOAT {t}f 1e-5
INCRBYFLOAT {t}f abc
INCRBYFLOAT {t}f inf
INCRBYFLOAT {t}g 0.1
INCRBYFLOAT {t}g 0.2
INCRBYFLOAT {t}g 1.5e3
INCRBYFLOAT {t}h 123456789012345678901234567890
GETRANGE {t}ap 0 4
GETRANGE {t}ap -5 -1
GETRANGE {t}ap 0 -100
GETRANGE {t}ap 5 1
SUBSTR {t}ap 6 100
SETRANGE {t}sr 5 x
GET {t}sr
SETRANGE {t}sr -1 x
SETRANGE {t}sr 536870912 x
SETRANGE {t}nokey 0 ""
MSET {t}k1 ohmytext {t}k2 mynewtext
LCS {t}k1 {t}k2
LCS {t}k1 {t}k2 LEN
LCS {t}k1 {t}k2 IDX MINMATCHLEN 4 WITHMATCHLEN
LCS {t}k1 {t}k2 LEN IDX
DEL {t}k1 {t}k2 {t}nokey {t}k1
EXISTS {t}ap {t}ap {t}nokey
TYPE {t}ap
TYPE {t}nokey
TOUCH {t}ap {t}nokey
EXPIRE {t}ap 100 NX XX
EXPIRE {t}ap 100 GT LT
EXPIRE {t}ap 100 foo
EXPIRE {t}ap 9223372036854775807
EXPIREAT {t}ap 9223372036854775807
EXPIRE {t}ap 100 XX
EXPIRE {t}ap 100 GT
EXPIRE {t}ap 100 LT
EXPIRE {t}ap 200 LT
EXPIRE {t}ap 200 GT
TTL {t}ap
PERSIST {t}ap
PERSIST {t}ap
TTL {t}ap
TTL {t}nokey
EXPIRETIME {t}nokey
EXPIREAT {t}ap 4000000000
EXPIRETIME {t}ap
PEXPIRETIME {t}ap
PEXPIRE {t}ap -1
EXISTS {t}ap
RENAME {t}nokey {t}x
SET {t}r1 a
RENAME {t}r1 {t}r1
RENAMENX {t}r1 {t}r1
SET {t}r2 b
RENAMENX {t}r1 {t}r2
RENAME {t}r1 {t}r2
GET {t}r2
COPY {t}r2 {t}r3
COPY {t}r2 {t}r3
COPY {t}r2 {t}r3 REPLACE
COPY {t}r2 {t}r2
COPY {t}r2 {t}r3 DB 99
COPY {t}r2 {t}r3 FOO
OBJECT ENCODING {t}r2
SET {t}i 12345
OBJECT ENCODING {t}i
OBJECT ENCODING {t}ap
SET {t}long aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
OBJECT ENCODING {t}long
OBJECT REFCOUNT {t}i
OBJECT ENCODING {t}nokey
OBJECT FREQ {t}i
OBJECT HELP
OBJECT FOO {t}i
MULTI
SET {t}m 1
INCR {t}m
LCS {t}m
GET {t}m
EXEC
MULTI
SET {t}m x
INCR {t}m
GET {t}m
EXEC
OBJECT ENCODING
MULTI
MULTI
SET {t}m 2
NOSUCHCOMMAND
EXEC
GET {t}m
EXEC
DISCARD
MULTI
DISCARD
UNWATCH
SCAN 0 COUNT 0
SCAN abc
SCAN 18446744073709551616
"""


def _run(sock, line: str):
    """Send one command and return its reply as hiredis parses it; errors keep their full text."""
    sock.sendall(encode_command(*shlex.split(line)))
    return _comparable(read_reply(sock))


def _comparable(reply):
    if isinstance(reply, hiredis.ReplyError):      # exceptions compare by identity
        return ("error", str(reply))
    if isinstance(reply, list):
        return [_comparable(item) for item in reply]
    return reply


def test_replies_match_redis_server(node, redis_server):
    mismatches = []
    with node.raw() as ours, raw_connect(redis_server.port) as theirs:
        for line in SCRIPT.strip().splitlines():
            expected, got = _run(theirs, line), _run(ours, line)
            if expected != got:
                mismatches.append(f"{line}\n    redis-server: {expected!r}\n    hypercache:   {got!r}")
    assert not mismatches, "\n".join(mismatches)


def test_resp3_shapes(node):
    r3 = node.client(protocol=3)
    r3.mset({"{t}k1": "ohmytext", "{t}k2": "mynewtext"})
    assert r3.execute_command("LCS", "{t}k1", "{t}k2", "IDX") == \
        {b"matches": [[[4, 7], [5, 8]], [[2, 3], [0, 1]]], b"len": 6}
    assert r3.incrbyfloat("{t}f", 10.5) == 10.5
    assert r3.type("{t}k1") == b"string"


def test_scan_iter_sees_every_key(r):
    keys = {f"key:{i}".encode() for i in range(1000)}
    r.mset({k: b"v" for k in list(keys)[:1]})
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, b"v")
    pipe.execute()
    assert set(r.scan_iter(count=50)) == keys
    assert set(r.scan_iter(match="key:99*", count=200)) == {b"key:99"} | {b"key:99%d" % i for i in range(10)}
    assert sorted(r.keys("key:99?")) == sorted(b"key:99%d" % i for i in range(10))
    assert r.randomkey() in keys
    assert list(r.scan_iter(_type="list")) == []


def test_watch_aborts_on_another_clients_write(node, r):
    other = node.client()
    r.set("{w}k", "1")
    with r.pipeline() as pipe:
        pipe.watch("{w}k")
        other.set("{w}k", "2")
        pipe.multi()
        pipe.set("{w}k", "mine")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get("{w}k") == b"2"


def test_watch_aborts_when_the_key_expires(node, r):
    other = node.client()
    r.set("{w}k", "v", px=50)
    with r.pipeline() as pipe:
        pipe.watch("{w}k")
        wait_until(lambda: other.exists("{w}k") == 0, timeout=10, message="the watched key to expire")
        pipe.multi()
        pipe.set("{w}other", "x")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.exists("{w}other") == 0


def test_transaction_runs_atomically_and_reports_queue_errors(r):
    with r.pipeline() as pipe:
        pipe.set("{x}a", 1).incr("{x}a").get("{x}a")
        assert pipe.execute() == [True, 2, b"2"]
    conn = r.connection_pool.get_connection()
    try:
        for args in (("MULTI",), ("SET", "{x}a", "3"), ("NOSUCHCOMMAND",)):
            conn.send_command(*args)
            try:
                conn.read_response()
            except redis.ResponseError:
                pass
        conn.send_command("EXEC")
        with pytest.raises(redis.exceptions.ExecAbortError):
            conn.read_response()
    finally:
        r.connection_pool.release(conn)
    assert r.get("{x}a") == b"2"


def test_exec_across_slots_is_crossslot(r):
    with r.pipeline() as pipe:
        pipe.set("a", 1).set("b", 2)
        with pytest.raises(redis.exceptions.ClusterCrossSlotError):
            pipe.execute()
    assert r.exists("a") == 0


def test_active_expiry_removes_keys_nobody_reads(node, r):
    for i in range(100):
        r.set(f"tmp:{i}", "v", px=30)
    r.set("kept", "v")
    wait_until(lambda: r.dbsize() == 1, timeout=10, message="active expiry to remove 100 keys")
    assert r.get("kept") == b"v"


def test_copy_in_cluster_mode_refuses_other_databases(r):
    r.set("{c}a", "1")
    with pytest.raises(redis.ResponseError, match="Copying to another database is not allowed in cluster mode"):
        r.copy("{c}a", "{c}b", destination_db=1)
    assert r.copy("{c}a", "{c}b", destination_db=0) is True


def test_cluster_client_uses_the_declared_keys(node):
    rc = redis.RedisCluster(host=node.host, port=node.port, socket_timeout=10)
    try:
        rc.mset({"{u}a": "1", "{u}b": "2"})
        assert rc.mget("{u}a", "{u}b") == [b"1", b"2"]
        assert rc.copy("{u}a", "{u}c") is True
        assert rc.rename("{u}c", "{u}d") is True
        assert rc.expire("{u}d", 100) is True and rc.ttl("{u}d") == 100
        assert rc.incrbyfloat("{u}f", "10.5") == 10.5
        assert rc.lcs("{u}a", "{u}b") == b""
    finally:
        rc.close()


def test_object_idletime_under_noeviction_ticks_and_resets_like_redis(node, redis_server):
    """Under the default policy (noeviction) a key's idle time grows and a read resets it, on
    both servers (hypercache keeps access times from the first OBJECT IDLETIME on)."""
    # (idle times are whole seconds of a ticking clock on both servers: a read just before a
    # tick and the check just after it see 1, so "fresh" is at most 1, and the key idles to 2
    # first so that a reset is seen)
    clients = [redis.Redis(port=node.port), redis.Redis(port=redis_server.port)]
    for client in clients:
        client.set("idle", "v")
        assert client.object("idletime", "idle") <= 1
    wait_until(lambda: all(c.object("idletime", "idle") >= 2 for c in clients), timeout=10,
               message="an idle key's IDLETIME never reached 2 s")
    for client in clients:
        client.get("idle")
        assert client.object("idletime", "idle") <= 1
        assert client.object("idletime", "missing") is None
        client.close()
