"""Random pipelines, byte for byte against a real redis-server.

Each pipeline goes out in one write, so the node runs it from one read: the
fast lane, what it turns down (wrong types, wrong arity, unknown commands),
and the general path interleave as real clients make them. The keys share
one hash tag (one slot) and collide across types; only commands whose
replies are deterministic are drawn. The seed is fixed: a failure names the
pipeline and the command, and reruns the same.

Not drawn: OBJECT ENCODING of strings (Redis reports "raw" for a short string
that APPEND or SETRANGE changed; hypercache keeps no such history and says
"embstr"), TTL and PTTL (they move with the clock), the commands whose
replies Redis orders by its hashtables (SMEMBERS, HGETALL...), and lexical
ranges other than "-" to "+" (over members of different scores Redis's answer
depends on its skiplist's random levels: "unspecified", its manual says).
"""
from __future__ import annotations

import random

import hiredis
import pytest

from tests.nodes import encode_command, raw_connect

VALUES = [b"1", b"10", b"-5", b"abc", b"", b"3.5", b"2\x00", b"x" * 100, bytes(range(250, 256)) + b"\r\n$3"]
# A command's arguments: "k" draws a key, "v" a value, "n" a small integer; anything else is literal.
COMMANDS = [
    ("SET", "k", "v"), ("SET", "k", "v", "EX", "1000"), ("SET", "k", "v", "NX"), ("SET", "k", "v", "XX"),
    ("SET", "k", "v", "GET"), ("SET", "k", "v", "KEEPTTL"), ("GET", "k"), ("GET", "k"), ("GET", "k"),
    ("GETDEL", "k"), ("GETSET", "k", "v"), ("SETNX", "k", "v"), ("APPEND", "k", "v"), ("STRLEN", "k"),
    ("INCR", "k"), ("INCRBY", "k", "n"), ("DECR", "k"), ("GETRANGE", "k", "0", "-1"),
    ("SETRANGE", "k", "2", "v"), ("MGET", "k", "k"), ("MSET", "k", "v", "k", "v"), ("DEL", "k"),
    ("EXISTS", "k", "k"), ("TYPE", "k"), ("EXPIRE", "k", "1000"), ("PERSIST", "k"),
    ("HSET", "k", "f", "v"), ("HGET", "k", "f"), ("HDEL", "k", "f"), ("HLEN", "k"), ("HINCRBY", "k", "f", "n"),
    ("LPUSH", "k", "v"), ("RPUSH", "k", "v", "v"), ("LPOP", "k"), ("RPOP", "k", "2"), ("LLEN", "k"),
    ("LRANGE", "k", "0", "-1"), ("LINDEX", "k", "0"),
    ("SADD", "k", "v"), ("SREM", "k", "v"), ("SCARD", "k"), ("SISMEMBER", "k", "v"),
    ("ZADD", "k", "n", "v"), ("ZSCORE", "k", "v"), ("ZRANGE", "k", "0", "-1", "WITHSCORES"),
    ("ZINCRBY", "k", "n", "v"), ("ZCARD", "k"), ("ZREM", "k", "v"),
    ("PING",), ("ECHO", "v"), ("NOSUCHCOMMAND", "k"), ("GET",), ("SET", "k"), ("INCRBY", "k", "abc"),
    ("INCRBYFLOAT", "k", "v"), ("HINCRBYFLOAT", "k", "f", "v"), ("EXPIRE", "k", "1000", "NX"),
    # (GT against an absolute time: two relative ones can tie within a millisecond, or not)
    ("EXPIREAT", "k", "99999999998", "GT"), ("EXPIRE", "k", "500", "LT"), ("EXPIRE", "k", "1000", "XX"),
    ("ZADD", "k", "NX", "n", "v"), ("ZADD", "k", "XX", "CH", "n", "v"), ("ZADD", "k", "GT", "n", "v"),
    ("ZADD", "k", "INCR", "n", "v"), ("ZRANGE", "k", "-inf", "+inf", "BYSCORE", "LIMIT", "0", "2"),
    ("ZRANGE", "k", "+", "-", "BYLEX", "REV"), ("ZRANGEBYSCORE", "k", "(0", "3", "WITHSCORES"),
    ("ZRANK", "k", "v"), ("ZREVRANK", "k", "v"), ("ZCOUNT", "k", "-inf", "+inf"),
    ("LPOS", "k", "v", "RANK", "-1"), ("LINSERT", "k", "BEFORE", "v", "v"), ("LSET", "k", "5", "v"),
    ("LRANGE", "k", "-2", "100"), ("SETRANGE", "k", "n", "v"), ("GETRANGE", "k", "-3", "-1"),
    ("HMGET", "k", "f", "g"), ("HSETNX", "k", "g", "v"), ("HSTRLEN", "k", "f"),
    ("SMISMEMBER", "k", "v", "v"), ("SINTERCARD", "2", "k", "k"), ("SMOVE", "k", "k", "v"),
    ("LMOVE", "k", "k", "LEFT", "RIGHT"), ("RPOPLPUSH", "k", "k"), ("LMPOP", "2", "k", "k", "RIGHT", "COUNT", "2"),
    ("ZMPOP", "1", "k", "MAX"), ("ZPOPMIN", "k", "2"), ("ZSCORE", "k", "v"), ("ZMSCORE", "k", "v", "v"),
    ("COPY", "k", "k"), ("RENAME", "k", "k"), ("RENAMENX", "k", "k"), ("GETEX", "k", "PERSIST"),
    ("SET", "k", "v", "PX", "0"), ("SET", "k", "v", "EX", "abc"), ("MSETNX", "k", "v", "k", "v"),
    ("STRLEN", "k"), ("TOUCH", "k", "k"), ("UNLINK", "k", "k"),
    # transactions interleave with everything above: queued commands, EXECABORT, WATCH
    ("MULTI",), ("MULTI",), ("EXEC",), ("EXEC",), ("DISCARD",), ("WATCH", "k"), ("UNWATCH",),
    ("GETEX", "k", "EX", "1000"), ("SETEX", "k", "1000", "v"), ("PSETEX", "k", "0", "v"),
    ("SET", "k", "v", "NX", "GET"), ("LCS", "k", "k"), ("LCS", "k", "k", "LEN"),
    ("LTRIM", "k", "1", "-1"), ("LREM", "k", "0", "v"), ("LINDEX", "k", "-1"), ("RPUSHX", "k", "v"),
    ("LPOS", "k", "v", "COUNT", "0", "MAXLEN", "10"),
    ("ZREVRANGEBYSCORE", "k", "+inf", "-inf", "LIMIT", "1", "2"), ("ZPOPMAX", "k"),
    ("ZREMRANGEBYRANK", "k", "0", "0"), ("ZLEXCOUNT", "k", "-", "+"), ("ZINTERCARD", "2", "k", "k"),
    ("ZUNIONSTORE", "k", "2", "k", "k", "WEIGHTS", "2", "3", "AGGREGATE", "MAX"),
    ("ZINTERSTORE", "k", "2", "k", "k"), ("ZDIFF", "2", "k", "k", "WITHSCORES"), ("ZRANGESTORE", "k", "k", "0", "1"),
    ("SINTERSTORE", "k", "k", "k"), ("SDIFFSTORE", "k", "k", "k"), ("SCARD", "k"),
    # blocking pops that wait 10 ms for nothing (or, in MULTI, answer at once)
    ("BLPOP", "k", "0.01"), ("BZPOPMIN", "k", "0.01"), ("BLMOVE", "k", "k", "LEFT", "RIGHT", "0.01"),
    # subscribed mode changes what the next commands may do (RESP2) and how they answer
    # (one channel: UNSUBSCRIBE lists several in each server's own hashtable order; no
    # PUBLISH: a message to oneself is one more reply than there were commands)
    ("SUBSCRIBE", "ch"), ("UNSUBSCRIBE",), ("PING", "v"),
    # options and numbers Redis refuses, each with its own error text
    ("SET", "k", "v", "EX", "-1"), ("SET", "k", "v", "XX", "NX"), ("SET", "k", "v", "EX", "1", "PX", "1"),
    ("SET", "k", "v", "KEEPTTL", "EX", "1"), ("SET", "k", "v", "PXAT", "1"), ("GETEX", "k", "EX", "0"),
    ("ZADD", "k", "NX", "XX", "1", "v"), ("ZADD", "k", "GT", "LT", "1", "v"), ("ZADD", "k", "nan", "v"),
    ("ZADD", "k", "inf", "v"), ("ZADD", "k", "1"), ("ZINCRBY", "k", "nan", "v"),
    ("ZRANGE", "k", "0", "-1", "LIMIT", "0", "1"), ("ZRANGEBYSCORE", "k", "(a", "1"), ("ZRANGE", "k", "[a", "b", "BYLEX"),
    ("LPOS", "k", "v", "RANK", "0"), ("LPOS", "k", "v", "MAXLEN", "-1"), ("EXPIRE", "k", "10", "NX", "XX"),
    ("EXPIRE", "k", "abc"), ("INCRBY", "k", "9223372036854775807"), ("DECRBY", "k", "-9223372036854775808"),
    ("SETRANGE", "k", "-1", "v"), ("LRANGE", "k", "a", "b"), ("HINCRBY", "k", "f", "9223372036854775807"),
    ("SPOP", "k", "-1"), ("LINSERT", "k", "MIDDLE", "v", "v"), ("INCRBYFLOAT", "k", "inf"),
    ("LMPOP", "0", "k", "LEFT"), ("LMPOP", "1", "k", "UP"), ("ZMPOP", "1", "k", "MIN", "COUNT", "0"),
    ("SINTERCARD", "0", "k"), ("SINTERCARD", "1", "k", "LIMIT", "-1"), ("GETRANGE", "k", "a", "1"),
    ("RPOP", "k", "-1"), ("LSET", "k", "abc", "v"), ("HSET", "k", "f"), ("MSET", "k"), ("ZREMRANGEBYRANK", "k", "a", "1"),
    # deadlines in the past delete at once; TTLs travel with RENAME and COPY (PERSIST shows it)
    ("EXPIRE", "k", "-1"), ("PEXPIREAT", "k", "1"), ("EXPIRE", "k", "0"), ("GETEX", "k", "PXAT", "1"),
    ("SETEX", "k", "-5", "v"), ("COPY", "k", "k", "REPLACE"), ("PERSIST", "k"), ("EXPIREAT", "k", "99999999999", "LT"),
    ("HINCRBYFLOAT", "k", "f", "1e400"), ("INCRBYFLOAT", "k", "-1.5e-3"), ("ZSCORE", "k", "v"),
    ("SETRANGE", "k", "0", ""), ("APPEND", "k", ""), ("GETDEL", "k"), ("TYPE", "k"), ("EXISTS", "k"),
    # scores that are not small integers, printed as Redis prints doubles
    ("ZADD", "k", "1.1", "v"), ("ZINCRBY", "k", "0.1", "v"), ("ZADD", "k", "1e-7", "v"), ("ZADD", "k", "-inf", "v"),
    ("ZINCRBY", "k", "+inf", "v"), ("ZADD", "k", "3.000000000000001", "v"), ("HINCRBYFLOAT", "k", "f", "0.1"),
    ("INCRBYFLOAT", "k", "1e-17"), ("ZRANGE", "k", "0", "-1", "WITHSCORES"),
    # replies Redis orders by its hashtable: compared as collections (UNORDERED)
    ("SMEMBERS", "k"), ("SINTER", "k", "k"), ("SUNION", "k", "k"), ("SDIFF", "k", "k"), ("HKEYS", "k"),
    ("HVALS", "k"), ("SUNIONSTORE", "k", "k", "k"), ("SADD", "k", "n", "n", "n"),
]
UNORDERED = {b"SMEMBERS", b"SINTER", b"SUNION", b"SDIFF", b"HKEYS", b"HVALS"}


def draw(rng: random.Random, tag: str) -> list[bytes]:
    name, *parts = rng.choice(COMMANDS)
    args = [name.encode()]
    for part in parts:
        if part == "k":
            args.append(f"{tag}{rng.randrange(5)}".encode())
        elif part == "v":
            args.append(rng.choice(VALUES))
        elif part == "n":
            args.append(str(rng.randint(-3, 3)).encode())
        else:
            args.append(part.encode())
    return args


def replies(sock, count: int, reader=None) -> list:
    """The next `count` replies, decoded (errors as hiredis.ReplyError).

    Pass the socket's own reader when more replies may follow in the same
    read (a pipeline's): a new one would drop what it had already parsed.
    """
    reader = reader or hiredis.Reader()
    got: list = []
    while True:
        while len(got) < count and (reply := reader.gets()) is not False:
            got.append(reply)
        if len(got) == count:
            return got
        data = sock.recv(1 << 20)
        assert data, "connection closed"
        reader.feed(data)


def as_compared(command: list[bytes], reply):
    """The reply as compared: sorted when Redis orders it by its own hashtable."""
    if command[0] in UNORDERED and isinstance(reply, list):
        return sorted(reply, key=repr)
    return reply


def comparable(reply):
    if isinstance(reply, hiredis.ReplyError):
        return ("error", str(reply))
    if isinstance(reply, list):
        return [comparable(item) for item in reply]
    return reply


@pytest.mark.parametrize("protocol", [2, 3])
def test_random_pipelines_answer_like_redis(node, redis_server, protocol):
    rng = random.Random(20261126 + protocol)
    tag = "{pipe%d}" % protocol
    for server in (node, redis_server):
        with server.client(protocol=2) as r:
            r.config_resetstat()
    servers = [raw_connect(node.port), raw_connect(redis_server.port)]
    readers = [hiredis.Reader(), hiredis.Reader()]
    if protocol == 3:
        for sock, reader in zip(servers, readers):
            sock.sendall(encode_command("HELLO", "3"))
            replies(sock, 1, reader)
    for round_number in range(100):
        pipeline = [draw(rng, tag) for _ in range(rng.randint(1, 80))]
        payload = b"".join(encode_command(*command) for command in pipeline)
        for sock in servers:
            sock.sendall(payload)
        ours, theirs = (list(map(comparable, replies(sock, len(pipeline), reader)))
                        for sock, reader in zip(servers, readers))
        for command, got, expected in zip(pipeline, ours, theirs):
            got, expected = as_compared(command, got), as_compared(command, expected)
            assert got == expected, (f"pipeline {round_number}, {command!r}:\n"
                                     f"    redis-server: {expected!r}\n    hypercache:   {got!r}")
    # The counters, read on the same connections (a new redis-py connection would
    # add its own handshake: CLIENT SETINFO is an unknown subcommand to Redis 7.0).
    counted = [_counters(sock, reader) for sock, reader in zip(servers, readers)]
    for sock in servers:
        sock.close()
    assert counted[0] == counted[1]


def _counters(sock, reader) -> tuple:
    """Per command (calls, failed, rejected), keyspace hits and misses, and the errors by code."""
    # RESET first: the last pipeline may have left a MULTI open or the connection subscribed
    sock.sendall(encode_command("RESET") + encode_command("INFO", "everything"))
    _, info = replies(sock, 2, reader)
    fields = dict(line.split(":", 1) for line in info.decode().splitlines() if ":" in line)
    commands = {}
    for name, value in fields.items():
        if name.startswith("cmdstat_") and name[8:].upper() in {c[0] for c in COMMANDS}:
            entry = dict(part.split("=") for part in value.split(","))
            commands[name] = (entry["calls"], entry["failed_calls"], entry["rejected_calls"])
    errors = {name: value for name, value in fields.items() if name.startswith("errorstat_")}
    return commands, fields["keyspace_hits"], fields["keyspace_misses"], errors
