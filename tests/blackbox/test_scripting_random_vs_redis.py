"""Random Lua values and redis.call replies crossing the Lua boundary, against a real redis-server (seeded).

Each script builds a value from random pieces (numbers, strings, booleans, nil, nested tables,
{ok=}, {err=}, {double=}, {map=}, {set=}, redis.call replies of several types, under RESP2 or
RESP3) and returns it; the caller speaks RESP2 or RESP3. Every raw reply must be redis-server's.
"""
from __future__ import annotations

import random

import pytest

import hiredis

from tests.nodes import encode_command, raw_connect, read_raw_reply


def read_reply_bytes(sock) -> bytes:
    """read_raw_reply, except that a bare RESP3 false (which hiredis hands back as False) ends it too."""
    reader = hiredis.Reader()
    raw = b""
    while True:
        data = sock.recv(1 << 20)
        assert data, "connection closed"
        raw += data
        reader.feed(data)
        if reader.gets() is not False or raw == b"#f\r\n":
            return raw

CALLS = [
    "redis.call('get', KEYS[1])", "redis.call('get', KEYS[2])", "redis.call('incr', KEYS[3])",
    "redis.call('lrange', KEYS[4], 0, -1)", "redis.call('hgetall', KEYS[5])",
    "redis.call('zrange', KEYS[6], 0, -1, 'WITHSCORES')", "redis.call('zscore', KEYS[6], 'a')",
    "redis.call('smembers', KEYS[7])", "redis.call('ping')", "redis.pcall('incr', KEYS[4])",
    "redis.call('exists', KEYS[1], KEYS[2])", "redis.call('type', KEYS[5])",
    "redis.call('hget', KEYS[5], 'nope')", "redis.call('zadd', KEYS[6], 'INCR', 1, 'b')",
]


def piece(rng: random.Random, depth: int) -> str:
    choice = rng.randrange(14 if depth < 3 else 8)
    if choice == 0:
        return str(rng.choice((0, 1, -1, 42, 2**31, 2**53)))
    if choice == 1:
        return repr(rng.choice((0.5, -3.7, 1e10, 1 / 3)))
    if choice == 2:
        return repr(rng.choice(("", "x", "hello world", "12")))
    if choice == 3:
        return rng.choice(("true", "false", "nil"))
    if choice in (4, 5, 6, 7):
        return rng.choice(CALLS)
    if choice == 8:
        return "{" + ", ".join(piece(rng, depth + 1) for _ in range(rng.randrange(4))) + "}"
    if choice == 9:
        return "{ok=" + repr(rng.choice(("OK", "fine"))) + "}"
    if choice == 10:
        return "{err=" + repr(rng.choice(("ERR boom", "MYERR custom"))) + "}"
    if choice == 11:
        return "{double=" + repr(rng.choice((1.5, -0.25, 3.0))) + "}"
    if choice == 12:
        return "{map={a=" + piece(rng, depth + 1) + ", b=" + piece(rng, depth + 1) + "}}"
    return "{set={x=true, y=true}}"


@pytest.mark.parametrize("seed", range(3))
def test_random_script_values_match_redis(node, redis_server, seed: int) -> None:
    rng = random.Random(seed)
    tag = "{rs%d}" % seed
    keys = [tag + name for name in ("s", "missing", "n", "l", "h", "z", "set")]
    setup = [["SET", keys[0], "value"], ["DEL", keys[1]], ["SET", keys[2], "10"],
             ["RPUSH", keys[3], "a", "b", "3"], ["HSET", keys[4], "f", "v"],
             ["ZADD", keys[5], "1.5", "a", "2", "b"], ["SADD", keys[6], "only"]]
    socks = {}
    try:
        for protocol in (2, 3):
            socks[protocol] = (raw_connect(redis_server.port), raw_connect(node.port))
            for sock in socks[protocol]:
                sock.sendall(encode_command("HELLO", str(protocol)))
                read_raw_reply(sock)
        for args in setup:
            for sock in socks[2]:
                sock.sendall(encode_command(*args))
                read_raw_reply(sock)
        for step in range(120):
            resp = rng.choice(("", "redis.setresp(3) "))
            body = resp + "return " + piece(rng, 0)
            protocol = rng.choice((2, 3))
            args = ["EVAL", body, "7", *keys]
            replies = []
            for sock in socks[protocol]:
                sock.sendall(encode_command(*args))
                replies.append(read_reply_bytes(sock))
            assert replies[1] == replies[0], f"seed {seed} step {step} RESP{protocol}: {body}"
    finally:
        for pair in socks.values():
            for sock in pair:
                sock.close()


def json_piece(rng: random.Random, depth: int) -> str:
    choice = rng.randrange(9 if depth < 3 else 5)
    if choice == 0:
        return repr(rng.choice((0, 1, -7, 123456789012, 0.1, -2.5, 1e20, 3.14159265358979)))
    if choice == 1:
        return repr(rng.choice(("", "plain", "quo\"te", "back\\slash", "tab\tnew\nline", "sl/ash", "\x01\x7f", "üñí")))
    if choice == 2:
        return rng.choice(("true", "false", "cjson.null"))
    if choice in (3, 4):
        return repr(rng.choice(("k", "key", "a b")))
    if choice in (5, 6):
        return "{" + ", ".join(json_piece(rng, depth + 1) for _ in range(rng.randrange(5))) + "}"
    items = []
    for _ in range(rng.randrange(5)):
        key = rng.choice(("a", "b", "name", "x1", "z", "[1]", "[2]", "[7]"))
        items.append(f"{key} = {json_piece(rng, depth + 1)}" if not key.startswith("[")
                     else f"{key} = {json_piece(rng, depth + 1)}")
    return "{" + ", ".join(items) + "}"


@pytest.mark.parametrize("seed", range(3))
def test_random_cjson_and_cmsgpack_match_redis(node, redis_server, seed: int) -> None:
    rng = random.Random(100 + seed)
    ours, theirs = raw_connect(node.port), raw_connect(redis_server.port)
    try:
        for step in range(150):
            value = json_piece(rng, 0)
            body = rng.choice((
                "return cjson.encode({v})", "return cmsgpack.pack({v})",
                "return cjson.encode(cjson.decode(cjson.encode({v})))",
                "return cmsgpack.pack(cmsgpack.unpack(cmsgpack.pack({v})))",
            )).format(v=value)
            replies = []
            for sock in (theirs, ours):
                sock.sendall(encode_command("EVAL", body, "0"))
                replies.append(read_reply_bytes(sock))
            assert replies[1] == replies[0], f"seed {seed} step {step}: {body}"
    finally:
        ours.close()
        theirs.close()
