"""Bitmaps under random operations, reply for reply against a real redis-server (seeded, so a failure replays)."""
from __future__ import annotations

import random

import pytest

from tests.nodes import encode_command, raw_connect, read_raw_reply


def random_op(rng: random.Random, key: bytes) -> list[bytes]:
    kind = rng.choice(("setbit", "getbit", "bitcount", "bitpos", "bitfield", "bitop", "bitfield_ro"))
    offset = str(rng.choice((rng.randrange(64), rng.randrange(2048)))).encode()
    signed = rng.choice((b"i", b"u"))
    width = rng.randrange(1, 65 if signed == b"i" else 64)
    field = signed + str(width).encode()
    number = str(rng.randrange(-2**65, 2**65) if rng.random() < 0.2 else rng.randrange(-300, 300)).encode()
    index = lambda: str(rng.randrange(-40, 300)).encode()  # noqa: E731
    if kind == "setbit":
        return [b"SETBIT", key, offset, rng.choice((b"0", b"1"))]
    if kind == "getbit":
        return [b"GETBIT", key, offset]
    if kind == "bitcount":
        return [b"BITCOUNT", key] + rng.choice(([], [index(), index()], [index(), index(), rng.choice((b"BIT", b"BYTE"))]))
    if kind == "bitpos":
        return [b"BITPOS", key, rng.choice((b"0", b"1"))] + rng.choice(
            ([], [index()], [index(), index()], [index(), index(), rng.choice((b"BIT", b"BYTE"))]))
    if kind == "bitop":
        op = rng.choice((b"AND", b"OR", b"XOR", b"NOT"))
        sources = [key] if op == b"NOT" else [key, key + b"2", key + b"3"][:rng.randrange(1, 4)]
        return [b"BITOP", op, key + rng.choice((b"2", b"3"))] + sources
    ops = []
    for _ in range(rng.randrange(1, 4)):
        if rng.random() < 0.3:
            ops += [b"OVERFLOW", rng.choice((b"WRAP", b"SAT", b"FAIL"))]
        sub = rng.choice((b"GET", b"SET", b"INCRBY")) if kind == "bitfield" else b"GET"
        at = (b"#" + str(rng.randrange(8)).encode()) if rng.random() < 0.3 else offset
        ops += [sub, field, at] + ([] if sub == b"GET" else [number])
    return [kind.upper().encode(), key] + ops


@pytest.mark.parametrize("seed", range(4))
def test_random_bitmap_operations_match_redis(node, redis_server, seed: int) -> None:
    rng = random.Random(seed)
    key = b"{bm%d}k" % seed
    ours, theirs = raw_connect(node.port), raw_connect(redis_server.port)
    try:
        for step in range(300):
            args = random_op(rng, key)
            replies = []
            for sock in (theirs, ours):
                sock.sendall(encode_command(*args))
                replies.append(read_raw_reply(sock))
            assert replies[1] == replies[0], f"seed {seed} step {step}: {args}"
        for sock in (theirs, ours):
            sock.sendall(encode_command(b"GET", key))
        assert read_raw_reply(ours) == read_raw_reply(theirs)
    finally:
        ours.close()
        theirs.close()
