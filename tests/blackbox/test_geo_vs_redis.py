"""GEO under random points and searches, reply for reply against a real redis-server (seeded)."""
from __future__ import annotations

import random

import pytest

from tests.nodes import encode_command, raw_connect, read_raw_reply


def random_search(rng: random.Random, key: bytes) -> list[bytes]:
    lon = b"%.6f" % rng.uniform(-180, 180)
    lat = b"%.6f" % rng.uniform(-85, 85)
    unit = rng.choice((b"m", b"km", b"mi", b"ft"))
    size = b"%d" % rng.choice((1, 50, 500, 2000, 8000, 20000))
    options = rng.sample((b"WITHDIST", b"WITHCOORD", b"WITHHASH"), rng.randrange(4))
    options += rng.choice(([], [b"ASC"], [b"DESC"], [b"COUNT", b"%d" % rng.randrange(1, 6)],
                           [b"COUNT", b"%d" % rng.randrange(1, 6), b"ANY"]))
    if rng.random() < 0.5:
        area = [b"BYRADIUS", size, unit] if rng.random() < 0.5 else [b"BYBOX", size, size, unit]
        origin = [b"FROMLONLAT", lon, lat] if rng.random() < 0.7 else [b"FROMMEMBER", b"p%d" % rng.randrange(60)]
        return [b"GEOSEARCH", key] + origin + area + options
    if rng.random() < 0.5:
        return [b"GEORADIUS", key, lon, lat, size, unit] + options
    return [b"GEORADIUSBYMEMBER", key, b"p%d" % rng.randrange(60), size, unit] + options


@pytest.mark.parametrize("seed", range(3))
def test_random_geo_searches_match_redis(node, redis_server, seed: int) -> None:
    rng = random.Random(seed)
    key = b"{geo%d}k" % seed
    ours, theirs = raw_connect(node.port), raw_connect(redis_server.port)
    try:
        # clusters of points (near each other) and scattered ones
        points = []
        for i in range(60):
            if i % 3 and points:
                lon, lat = points[-1]
                lon, lat = min(180, max(-180, lon + rng.uniform(-2, 2))), min(85, max(-85, lat + rng.uniform(-2, 2)))
            else:
                lon, lat = rng.uniform(-180, 180), rng.uniform(-85, 85)
            points.append((lon, lat))
        add = [b"GEOADD", key]
        for i, (lon, lat) in enumerate(points):
            add += [b"%.6f" % lon, b"%.6f" % lat, b"p%d" % i]
        commands = [add, [b"GEOPOS", key] + [b"p%d" % i for i in range(0, 60, 7)],
                    [b"GEOHASH", key] + [b"p%d" % i for i in range(0, 60, 5)]]
        commands += [[b"GEODIST", key, b"p%d" % rng.randrange(60), b"p%d" % rng.randrange(60),
                      rng.choice((b"m", b"km"))] for _ in range(20)]
        commands += [random_search(rng, key) for _ in range(150)]
        for args in commands:
            replies = []
            for sock in (theirs, ours):
                sock.sendall(encode_command(*args))
                replies.append(read_raw_reply(sock))
            assert replies[1] == replies[0], args
    finally:
        ours.close()
        theirs.close()
