"""Geohash arithmetic (hypercache/geo.py) fed values."""
from __future__ import annotations

import math
import random

from hypercache import geo


def test_interleave_and_deinterleave_are_inverse() -> None:
    rng = random.Random(1)
    for _ in range(500):
        x, y = rng.getrandbits(32), rng.getrandbits(32)
        assert geo.deinterleave(geo.interleave(x, y)) == (x, y)
    assert geo.interleave(1, 0) == 1 and geo.interleave(0, 1) == 2


def test_a_position_comes_back_within_its_cell() -> None:
    rng = random.Random(2)
    for _ in range(500):
        lon, lat = rng.uniform(-180, 180), rng.uniform(geo.LAT_MIN, geo.LAT_MAX)
        score = geo.score_of(lon, lat)
        assert 0 <= score < 1 << 52
        x, y = geo.position(score)
        assert abs(x - lon) < 1e-5 and abs(y - lat) < 1e-5
    assert geo.score_of(181, 0) is None and geo.score_of(0, 86) is None


def test_known_values() -> None:
    # Palermo as Redis stores it (ZSCORE after GEOADD 13.361389 38.115556)
    assert geo.score_of(13.361389, 38.115556) == 3479099956230698
    assert geo.geohash_string(3479099956230698) == b"sqc8b49rny0"
    x, y = geo.position(3479447370796909)            # Catania
    assert round(geo.distance(*geo.position(3479099956230698), x, y), 4) == 166274.1516


def test_neighbours_surround_the_cell() -> None:
    centre = geo.encode(10.0, 10.0, 10)
    area = geo.decode(centre)
    around = geo.neighbours(centre)
    assert geo.decode(around["north"]).lat_min == area.lat_max
    assert geo.decode(around["east"]).long_min == area.long_max
    assert geo.decode(around["south_west"]).lat_max == area.lat_min


def test_search_cells_cover_the_shape() -> None:
    shape = geo.Shape(15.0, 37.0, 1000.0, radius=200.0)
    cells = geo.search_cells(shape)
    assert len(cells) == 9 and not cells[0].zero
    min_lon, min_lat, max_lon, max_lat = geo.bounding_box(shape)
    live = [geo.decode(c) for c in cells if not c.zero]
    assert min(a.lat_min for a in live) <= min_lat and max(a.lat_max for a in live) >= max_lat
    assert geo.estimate_steps(0, 0) == 26 and geo.estimate_steps(10**9, 0) == 1


def test_a_circle_search_decides_each_point_exactly_as_the_distance_does() -> None:
    """search() tests circles with _in_circle (the centre's cosine once, a latitude pre-check):
    the same distance, to the last bit, and the same verdict as _inside(), on the line too."""
    rng = random.Random(7)
    checked = outside_by_latitude = 0
    for _ in range(2000):
        lon, lat = rng.uniform(-180, 180), rng.uniform(-85, 85)
        radius_m = rng.choice([1.0, 500.0, 30_000.0, 2_000_000.0])
        shape = geo.Shape(lon, lat, 1.0, radius=radius_m)
        cos_lat = math.cos(lat * geo.D_R)
        for _ in range(10):
            x = max(-180.0, min(180.0, lon + rng.uniform(-1, 1) * radius_m / 50_000))
            y = max(-85.0, min(85.0, lat + rng.uniform(-1, 1) * radius_m / 50_000))
            exact = geo._inside(shape, x, y)
            assert geo._in_circle(lon, lat, cos_lat, radius_m, x, y) == exact
            # a point exactly on the circle: its own distance as the radius
            on_line = geo.distance(lon, lat, x, y)
            edge = geo.Shape(lon, lat, 1.0, radius=on_line)
            assert geo._in_circle(lon, lat, cos_lat, on_line, x, y) == geo._inside(edge, x, y) == on_line
            checked += 1
            outside_by_latitude += geo.lat_distance(y, lat) > radius_m * geo.OUTSIDE_MARGIN
    assert checked == 20_000 and outside_by_latitude > 1000     # the pre-check was exercised
