"""Hashes, lists, sets and sorted sets on a real node, byte for byte against a real redis-server.

Each script in types_scripts/ is a sequence of commands, one per line, run on a
fresh connection to both servers, in RESP2 and in RESP3; every raw reply must
be identical. `{P}` becomes a hash tag unique to the run and protocol, so all
keys of a script share a slot. A line starting with `~` is compared as an
unordered collection (a hashtable's iteration order is Redis's own).
"""
from __future__ import annotations

import shlex
from pathlib import Path

import hiredis
import pytest

from tests.nodes import encode_command, raw_connect, read_raw_reply

SCRIPTS = Path(__file__).parent / "types_scripts"


def call(sock, args: list[bytes]) -> bytes:
    """Send one command; the raw bytes of its reply."""
    sock.sendall(encode_command(*args))
    return read_raw_reply(sock)


def _flat(value) -> list:
    if isinstance(value, list):
        out = []
        for item in value:
            out.extend(_flat(item))
        return out
    return [value]


def unordered(raw: bytes) -> list:
    reader = hiredis.Reader()
    reader.feed(raw)
    return sorted(map(repr, _flat(reader.gets())))


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("script", sorted(p.stem for p in SCRIPTS.glob("*.txt")))
def test_script_matches_redis(node, redis_server, script: str, protocol: int) -> None:
    lines = [line for line in (SCRIPTS / f"{script}.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    tag = "{t%d}" % protocol
    ours, theirs = raw_connect(node.port), raw_connect(redis_server.port)
    try:
        if protocol == 3:
            call(ours, [b"HELLO", b"3"])
            call(theirs, [b"HELLO", b"3"])
        mismatches = []
        for line in lines:
            loose = line.startswith("~")
            args = [a.replace("{P}", tag).encode() for a in shlex.split(line.lstrip("~"))]
            expected, got = call(theirs, args), call(ours, args)
            if (unordered(expected) != unordered(got)) if loose else (expected != got):
                mismatches.append(f"{line}\n    redis-server: {expected!r}\n    hypercache:   {got!r}")
        assert not mismatches, "\n".join(mismatches)
    finally:
        ours.close()
        theirs.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_big_replies_and_sorts_past_a_piece_match_redis(node, redis_server, protocol: int) -> None:
    """Past pulse.EVERY (4,096) elements, SORT and the reply encoder work a piece at a time, by C
    loops where a piece allows (plain integers, plain bytes, RESP2 doubles): the bytes must not change.
    The list mixes pieces of plain integers with elements only strtod reads (floats, spaces, 16+ digits)."""
    import random
    rng = random.Random(7)
    elements = [b"%d" % rng.randrange(50) for _ in range(9000)] + [
        b"007", b"-3", b"1.5", b"1e3", b"000", b" 5", b"123456789012345", b"1234567890123456"] + [
        b"0", b"-0", b"0.0", b"+0", b"5.0", b"+5", b"inf", b"-inf", b"0x10", b"16", b"1e1"] * 20   # equal scores
    rng.shuffle(elements)
    commands = [[b"SORT", b"{b}l"], [b"SORT", b"{b}l", b"DESC", b"LIMIT", b"10", b"5000"],
                [b"SORT", b"{b}l", b"ALPHA"], [b"SORT", b"{b}l", b"STORE", b"{b}d"], [b"LRANGE", b"{b}d", b"0", b"-1"],
                [b"ZRANGE", b"{b}z", b"0", b"-1", b"WITHSCORES"], [b"ZUNIONSTORE", b"{b}u", b"2", b"{b}z", b"{b}z"],
                [b"ZRANGE", b"{b}u", b"0", b"-1", b"WITHSCORES"], [b"SINTERSTORE", b"{b}i", b"{b}s", b"{b}s"],
                [b"SCARD", b"{b}i"], [b"HLEN", b"{b}h"]]
    ours, theirs = raw_connect(node.port, timeout=30), raw_connect(redis_server.port, timeout=30)
    try:
        for sock in (ours, theirs):
            if protocol == 3:
                call(sock, [b"HELLO", b"3"])
            call(sock, [b"DEL", b"{b}l", b"{b}z", b"{b}s", b"{b}h"])
            call(sock, [b"RPUSH", b"{b}l", *elements])
            call(sock, [b"ZADD", b"{b}z", *(x for i in range(6000) for x in (b"%d.%d" % (i % 97, i % 7), b"m%d" % i))])
            call(sock, [b"SADD", b"{b}s", *(b"m%d" % i for i in range(6000))])
            call(sock, [b"HSET", b"{b}h", *(x for i in range(6000) for x in (b"f%d" % i, b"v%d" % i))])
        for args in commands:
            assert call(ours, args) == call(theirs, args), args
        for args in ([b"HGETALL", b"{b}h"], [b"SMEMBERS", b"{b}s"], [b"KEYS", b"{b}*"]):   # (orders are each server's own)
            mine, redis_s = call(ours, args), call(theirs, args)
            assert mine[:1] == redis_s[:1] and _decoded(mine) == _decoded(redis_s), args
    finally:
        ours.close()
        theirs.close()


def _decoded(raw: bytes):
    reader = hiredis.Reader()
    reader.feed(raw)
    value = reader.gets()
    if isinstance(value, dict):
        return value
    pairs = sorted(zip(value[::2], value[1::2])) if len(value) > 1 and value[0].startswith(b"f") else None
    return pairs if pairs is not None else sorted(value)

