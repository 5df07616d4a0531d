"""HyperLogLog counts and dense values against a real redis-server (same input, same numbers, same bytes)."""
from __future__ import annotations

import random

import pytest
import redis


def test_counts_and_dense_values_match_redis(r, redis_server) -> None:
    theirs = redis_server.client()
    rng = random.Random(13)
    added = 0
    for batch in range(40):
        elements = [b"user:%d" % rng.randrange(10**9) for _ in range(500)]
        assert r.pfadd("{h}a", *elements) == theirs.pfadd("{h}a", *elements)
        added += len(elements)
        if batch % 8 == 7:
            assert r.pfcount("{h}a") == theirs.pfcount("{h}a")
    # redis-server turned dense long ago: the values are the same bytes, cached count included
    assert r.get("{h}a") == theirs.get("{h}a")
    assert abs(r.pfcount("{h}a") - added) < added * 0.02
    for client in (r, theirs):
        client.pfadd("{h}b", *[b"other:%d" % i for i in range(5000)])
    assert r.pfcount("{h}a", "{h}b") == theirs.pfcount("{h}a", "{h}b")
    for client in (r, theirs):
        client.pfmerge("{h}m", "{h}a", "{h}b")
        client.pfcount("{h}m")
    assert r.get("{h}m") == theirs.get("{h}m")


def test_a_sparse_hll_from_redis_server_is_read_and_grown(r, redis_server) -> None:
    theirs = redis_server.client()
    theirs.pfadd("{h}s", *[b"e%d" % i for i in range(200)])
    sparse = theirs.get("{h}s")
    assert sparse[4] == 1                       # Redis's sparse encoding
    r.set("{h}s", sparse)
    assert r.pfcount("{h}s") == theirs.pfcount("{h}s")
    more = [b"f%d" % i for i in range(3000)]
    assert r.pfadd("{h}s", *more) == theirs.pfadd("{h}s", *more) == 1
    assert r.pfcount("{h}s") == theirs.pfcount("{h}s")
    # a corrupted sparse value is refused, not crashed on
    r.set("{h}bad", sparse[:-3] + b"\x7f\xff\xff")
    with pytest.raises(redis.ResponseError, match="Corrupted HLL object detected"):
        r.pfcount("{h}bad")
