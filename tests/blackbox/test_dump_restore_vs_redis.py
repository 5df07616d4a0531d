"""DUMP and RESTORE between redis-server and hypercache, both ways, for every type, and the refusals compared."""
from __future__ import annotations

import pytest
import redis

from hypercache.scripting.library import crc64


def payload_of(body: bytes) -> bytes:
    """A payload with a valid footer around `body` (RDB 10, CRC64)."""
    body += (10).to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")

VALUES = {
    "s-short": ("set", ["hello"]), "s-int": ("set", ["12345"]), "s-neg": ("set", ["-7"]),
    "s-big": ("set", ["x" * 5000]), "s-compressible": ("set", ["abc" * 300]),
    "l-small": ("rpush", ["a", "1", "-200", "70000", "b" * 100]),
    "l-big": ("rpush", [f"e{i}" for i in range(600)] + ["y" * 10000]),
    "set-ints": ("sadd", ["1", "2", "300", "-5"]), "set-strings": ("sadd", ["a", "b", "c"]),
    "set-big": ("sadd", [f"m{i}" for i in range(700)]),
    "h-small": ("hset", ["f1", "v1", "f2", "22"]), "h-big": ("hset", sum(([f"f{i}", "v" * 70] for i in range(200)), [])),
    "z-small": ("zadd", ["1.5", "a", "-2", "b", "3", "c"]), "z-big": ("zadd", sum(([str(i / 7), f"m{i}"] for i in range(300)), [])),
}


def fill(client, key: str, command: str, args: list[str]) -> None:
    client.execute_command(command.upper(), key, *args)


def snapshot(client, key: str):
    kind = client.type(key)
    if kind == b"string":
        return kind, client.get(key)
    if kind == b"list":
        return kind, client.lrange(key, 0, -1)
    if kind == b"set":
        return kind, sorted(client.smembers(key))
    if kind == b"hash":
        return kind, sorted(client.hgetall(key).items())
    return kind, client.zrange(key, 0, -1, withscores=True)


@pytest.mark.parametrize("name", sorted(VALUES))
def test_values_move_both_ways(r, redis_server, name: str) -> None:
    theirs = redis_server.client()
    command, args = VALUES[name]
    key = "{d}" + name
    fill(theirs, key, command, args)
    fill(r, key + "-ours", command, args)
    assert r.restore(key, 0, theirs.dump(key)) == b"OK"
    assert snapshot(r, key) == snapshot(theirs, key)
    assert theirs.restore(key + "-back", 0, r.dump(key + "-ours")) == b"OK"
    assert snapshot(theirs, key + "-back") == snapshot(r, key + "-ours")


def test_restore_options_and_refusals_match_redis(r, redis_server) -> None:
    theirs = redis_server.client()
    for client in (r, theirs):
        client.set("{d}k", "v")
    payload = theirs.dump("{d}k")
    cases = [
        ("{d}k", 0, payload), ("{d}k", -1, payload, True), ("{d}new", 0, payload[:-1] + b"x"),
        ("{d}new", 0, b"short"), ("{d}new", 0, payload, False, False, None, 300),
        ("{d}new2", 0, b"\x0e\x00" + payload[-10:-8] + b"\x00" * 8),
        ("{d}new3", 0, payload_of(b"\x63\x01x")),                     # no such type
        ("{d}new4", 0, payload_of(b"\x00\x81" + b"\xff" * 8)),        # a string longer than the payload
        ("{d}new5", 0, payload_of(b"\x02\x03\x01a")),                 # a set that ends early
        ("{d}new6", 0, payload, False, False, -1), ("{d}new7", 0, payload, False, False, None, 256),
    ]
    for case in cases:
        outcomes = []
        for client in (r, theirs):
            try:
                outcomes.append(client.restore(*case))
            except redis.ResponseError as error:
                outcomes.append(str(error))
        assert outcomes[0] == outcomes[1], case
    for client in (r, theirs):
        assert client.restore("{d}ttl", 5000, payload) == b"OK"
        assert client.restore("{d}gone", 1, payload, absttl=True) == b"OK"
    assert 4000 < r.pttl("{d}ttl") <= 5000 and r.exists("{d}gone") == theirs.exists("{d}gone") == 0
    assert r.dump("{d}missing") is None
