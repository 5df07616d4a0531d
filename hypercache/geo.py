"""Geohashing as Redis does it: 52-bit interleaved scores, cell neighbours, search areas, distances.

Pure functions on floats and ints, a port of the arithmetic of Redis's
geohash.c and geohash_helper.c (the same double operations in the same order),
so scores, decoded positions, distances and the cells a search visits are
Redis's own.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Final, Iterable

from .pulse import EVERY, beat

# Final: compiled, a Final constant is inlined; any other module global is a dict lookup
# (decoding a score read five of them: ~0.5 us a candidate of a search)
LONG_MIN: Final = -180.0
LONG_MAX: Final = 180.0
LAT_MIN: Final = -85.05112878
LAT_MAX: Final = 85.05112878
STEP_MAX: Final = 26
D_R: Final = math.pi / 180.0
EARTH_RADIUS_IN_METERS: Final = 6372797.560856
MERCATOR_MAX: Final = 20037726.37
MASK64: Final = (1 << 64) - 1
ALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"


# Compiled, an int stays native only below 2**62: a mask with bit 62 or 63 set makes every
# operation on it a Python one (~10x slower). Geohashes use 52 bits, so the hot calls take
# masks without those bits (EVEN62) and only wider values take the full ones.
EVEN62: Final = 0x1555555555555555
# ... and a test against 1 << 62 is one against a boxed int (a slow compare, ~1 us a search
# candidate): `<= SHORT_MAX` compares two native ints
SHORT_MAX: Final = 0x3FFFFFFFFFFFFFFF


def _spread(v: int) -> int:
    v &= 0xFFFFFFFF
    wide = v >= 1 << 31
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    return ((v | (v << 1)) & 0x5555555555555555) if wide else ((v | (v << 1)) & EVEN62)


def interleave(x: int, y: int) -> int:
    return _spread(x) | (_spread(y) << 1)


def _squash(v: int) -> int:
    v = (v & EVEN62) if 0 <= v <= SHORT_MAX else (v & 0x5555555555555555)
    v = (v | (v >> 1)) & 0x3333333333333333
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FF
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFF
    v = (v | (v >> 16)) & 0x00000000FFFFFFFF
    return v


def deinterleave(bits: int) -> tuple[int, int]:
    """(x, y): the even bits and the odd bits."""
    return _squash(bits), _squash(bits >> 1)


class Hash:
    """A geohash cell: `bits` interleaved, `step` bits per coordinate. Never changed once made.

    (A plain class: compiled, a dataclass keeps the `__init__` that `dataclasses` generates, a
    Python function, and a search made ~30 of these: 15 of its ~20 us of cell planning.)"""

    __slots__ = ("bits", "step")

    def __init__(self, bits: int, step: int) -> None:
        self.bits = bits
        self.step = step

    @property
    def zero(self) -> bool:
        return self.bits == 0 and self.step == 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Hash) and self.bits == other.bits and self.step == other.step

    def __repr__(self) -> str:
        return f"Hash(bits={self.bits}, step={self.step})"


ZERO = Hash(0, 0)


def encode(longitude: float, latitude: float, step: int,
           long_range: tuple[float, float] = (LONG_MIN, LONG_MAX),
           lat_range: tuple[float, float] = (LAT_MIN, LAT_MAX)) -> Hash | None:
    bits = _encode_bits(longitude, latitude, step, long_range[0], long_range[1], lat_range[0], lat_range[1])
    return None if bits < 0 else Hash(bits, step)


def _encode_bits(longitude: float, latitude: float, step: int, long_min: float, long_max: float,
                 lat_min: float, lat_max: float) -> int:
    """encode()'s bits, -1 when out of range (GEOADD's score needs no Hash: its Python-made
    __init__ was a fifth of a compiled GEOADD)."""
    if longitude > LONG_MAX or longitude < LONG_MIN or latitude > LAT_MAX or latitude < LAT_MIN:
        return -1
    if not (lat_min <= latitude <= lat_max and long_min <= longitude <= long_max):
        return -1
    lat_offset = (latitude - lat_min) / (lat_max - lat_min)
    long_offset = (longitude - long_min) / (long_max - long_min)
    lat_offset *= (1 << step)
    long_offset *= (1 << step)
    return interleave(int(lat_offset), int(long_offset))


class Area:
    """A cell's bounds in degrees (a plain class, as Hash)."""

    __slots__ = ("long_min", "long_max", "lat_min", "lat_max")

    def __init__(self, long_min: float, long_max: float, lat_min: float, lat_max: float) -> None:
        self.long_min = long_min
        self.long_max = long_max
        self.lat_min = lat_min
        self.lat_max = lat_max


def decode(h: Hash, long_range: tuple[float, float] = (LONG_MIN, LONG_MAX),
           lat_range: tuple[float, float] = (LAT_MIN, LAT_MAX)) -> Area:
    ilato, ilono = deinterleave(h.bits)
    lat_scale = lat_range[1] - lat_range[0]
    long_scale = long_range[1] - long_range[0]
    cells = float(1 << h.step)
    return Area(long_range[0] + (ilono * 1.0 / cells) * long_scale,
                long_range[0] + ((ilono + 1) * 1.0 / cells) * long_scale,
                lat_range[0] + (ilato * 1.0 / cells) * lat_scale,
                lat_range[0] + ((ilato + 1) * 1.0 / cells) * lat_scale)


def decode_score(score: float) -> tuple[float, float]:
    """(longitude, latitude) of a 52-bit score: the centre of its cell, clamped (decodeGeohash)."""
    bits = int(score)
    return _longitude_of(bits), _latitude_of(bits)


# decode()'s arithmetic inlined, one coordinate each (a search decodes every candidate:
# compiled, two floats returned as such cost nothing, a tuple of them two allocations)
def _longitude_of(bits: int) -> float:
    if not 0 <= bits <= SHORT_MAX:
        bits &= MASK64          # (a score GEOADD never wrote: Redis casts it to uint64)
    ilono = _squash(bits >> 1)
    cells = float(1 << STEP_MAX)
    long_scale = LONG_MAX - LONG_MIN
    long_min = LONG_MIN + (ilono * 1.0 / cells) * long_scale
    long_max = LONG_MIN + ((ilono + 1) * 1.0 / cells) * long_scale
    x = (long_min + long_max) / 2
    return LONG_MAX if x > LONG_MAX else LONG_MIN if x < LONG_MIN else x


def _latitude_of(bits: int) -> float:
    if not 0 <= bits <= SHORT_MAX:
        bits &= MASK64
    ilato = _squash(bits)
    cells = float(1 << STEP_MAX)
    lat_scale = LAT_MAX - LAT_MIN
    lat_min = LAT_MIN + (ilato * 1.0 / cells) * lat_scale
    lat_max = LAT_MIN + ((ilato + 1) * 1.0 / cells) * lat_scale
    y = (lat_min + lat_max) / 2
    return LAT_MAX if y > LAT_MAX else LAT_MIN if y < LAT_MIN else y


# a stored position's score never changes: the Python form remembers them (compiled, decoding is
# cheaper than the cache's lookup: search() calls decode_score itself when NATIVE)
position = functools.lru_cache(maxsize=1 << 16)(decode_score)
NATIVE: Final = type(decode_score).__name__ != "function"      # this module runs compiled (mypyc)


def align52(h: Hash) -> int:
    return (h.bits << (52 - h.step * 2)) & MASK64


def score_of(longitude: float, latitude: float) -> int | None:
    # (align52 of a hash of STEP_MAX steps: its 52 bits as they are)
    bits = _encode_bits(longitude, latitude, STEP_MAX, LONG_MIN, LONG_MAX, LAT_MIN, LAT_MAX)
    return None if bits < 0 else bits


def geohash_string(score: float) -> bytes:
    """The 11-character standard geohash (latitude range -90..90) of a stored position."""
    x, y = position(score)
    h = encode(x, y, STEP_MAX, (-180.0, 180.0), (-90.0, 90.0))
    bits = h.bits if h is not None else 0
    out = bytearray()
    for i in range(11):
        idx = 0 if i == 10 else (bits >> (52 - (i + 1) * 5)) & 0x1F
        out.append(ALPHABET[idx])
    return bytes(out)


# -- neighbours and search areas ----------------------------------------------------------

def _move_x(h: Hash, d: int) -> Hash:
    if d == 0:
        return h
    x = h.bits & 0xAAAAAAAAAAAAAAAA
    y = h.bits & 0x5555555555555555
    zz = 0x5555555555555555 >> (64 - h.step * 2)
    if d > 0:
        x = x + (zz + 1)
    else:
        x = x | zz
        x = x - (zz + 1)
    x &= (0xAAAAAAAAAAAAAAAA >> (64 - h.step * 2))
    return Hash((x | y) & MASK64, h.step)


def _move_y(h: Hash, d: int) -> Hash:
    if d == 0:
        return h
    x = h.bits & 0xAAAAAAAAAAAAAAAA
    y = h.bits & 0x5555555555555555
    zz = 0xAAAAAAAAAAAAAAAA >> (64 - h.step * 2)
    if d > 0:
        y = y + (zz + 1)
    else:
        y = y | zz
        y = y - (zz + 1)
    y &= (0x5555555555555555 >> (64 - h.step * 2))
    return Hash((x | y) & MASK64, h.step)


def neighbours(h: Hash) -> dict[str, Hash]:
    def moved(dx: int, dy: int) -> Hash:
        return _move_y(_move_x(h, dx), dy)
    return {"north": moved(0, 1), "south": moved(0, -1), "east": moved(1, 0), "west": moved(-1, 0),
            "north_east": moved(1, 1), "north_west": moved(-1, 1),
            "south_east": moved(1, -1), "south_west": moved(-1, -1)}


def estimate_steps(range_meters: float, lat: float) -> int:
    if range_meters == 0:
        return 26
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), 26)


def deg_rad(angle: float) -> float:
    return angle * D_R


def rad_deg(angle: float) -> float:
    return angle / D_R


@dataclass(frozen=True, slots=True)
class Shape:
    longitude: float
    latitude: float
    conversion: float            # metres per unit
    radius: float = 0.0          # circle (in units)
    width: float = 0.0           # box (in units)
    height: float = 0.0
    box: bool = False


def bounding_box(shape: Shape) -> tuple[float, float, float, float]:
    """(min longitude, min latitude, max longitude, max latitude) of the area searched."""
    lon, lat = shape.longitude, shape.latitude
    height = shape.conversion * (shape.height / 2 if shape.box else shape.radius)
    width = shape.conversion * (shape.width / 2 if shape.box else shape.radius)
    lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS)
    long_delta_top = rad_deg(width / EARTH_RADIUS_IN_METERS / math.cos(deg_rad(lat + lat_delta)))
    long_delta_bottom = rad_deg(width / EARTH_RADIUS_IN_METERS / math.cos(deg_rad(lat - lat_delta)))
    southern = lat < 0
    min_lon = lon - long_delta_bottom if southern else lon - long_delta_top
    max_lon = lon + long_delta_bottom if southern else lon + long_delta_top
    return min_lon, lat - lat_delta, max_lon, lat + lat_delta


SEARCH_ORDER = ("north", "south", "east", "west", "north_east", "north_west", "south_east", "south_west")


def search_cells(shape: Shape) -> list[Hash]:
    """The cells a search visits, in Redis's order (centre, N, S, E, W, NE, NW, SE, SW; ZERO = skipped)."""
    min_lon, min_lat, max_lon, max_lat = bounding_box(shape)
    if shape.box:
        half_w, half_h = shape.width / 2, shape.height / 2
        radius_meters = math.sqrt(half_w * half_w + half_h * half_h)
    else:
        radius_meters = shape.radius
    radius_meters *= shape.conversion
    steps = estimate_steps(radius_meters, shape.latitude)
    centre = encode(shape.longitude, shape.latitude, steps) or Hash(0, steps)
    around = neighbours(centre)
    area = decode(centre)
    decrease = (decode(around["north"]).lat_max < max_lat or decode(around["south"]).lat_min > min_lat
                or decode(around["east"]).long_max < max_lon or decode(around["west"]).long_min > min_lon)
    if steps > 1 and decrease:
        steps -= 1
        centre = encode(shape.longitude, shape.latitude, steps) or Hash(0, steps)
        around = neighbours(centre)
        area = decode(centre)
    if steps >= 2:
        if area.lat_min < min_lat:
            for name in ("south", "south_west", "south_east"):
                around[name] = ZERO
        if area.lat_max > max_lat:
            for name in ("north", "north_east", "north_west"):
                around[name] = ZERO
        if area.long_min < min_lon:
            for name in ("west", "south_west", "north_west"):
                around[name] = ZERO
        if area.long_max > max_lon:
            for name in ("east", "south_east", "north_east"):
                around[name] = ZERO
    return [centre] + [around[name] for name in SEARCH_ORDER]


def cell_scores(h: Hash) -> tuple[int, int]:
    """[min, max) of the 52-bit scores inside a cell."""
    return align52(h), align52(Hash(h.bits + 1, h.step))


def lat_distance(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS_IN_METERS * abs(lat2 * D_R - lat1 * D_R)


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Haversine, as geohashGetDistance."""
    return _distance_from(lon1, lat1, math.cos(lat1 * D_R), lon2, lat2)


def _distance_from(lon1: float, lat1: float, cos_lat1: float, lon2: float, lat2: float) -> float:
    """distance() with the first point's latitude cosine given (a circle search computes it once).

    (degrees to radians inlined: a search calls it per candidate; math.sin, not an alias of it:
    compiled, `math.sin(x)` is C's sin, an alias a Python call)"""
    v = math.sin((lon2 * D_R - lon1 * D_R) / 2)
    if v == 0.0:
        return EARTH_RADIUS_IN_METERS * abs(lat2 * D_R - lat1 * D_R)
    lat1r, lat2r = lat1 * D_R, lat2 * D_R
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + cos_lat1 * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS_IN_METERS * math.asin(math.sqrt(a))


def within(shape: Shape, x: float, y: float) -> float | None:
    """The distance (metres) from the shape's centre when (x, y) is inside it, else None."""
    d = _inside(shape, x, y)
    return None if d < 0 else d


def _inside(shape: Shape, x: float, y: float) -> float:
    """within(), with -1.0 for outside (compiled, a float stays unboxed; None would box it)."""
    if shape.box:
        if lat_distance(y, shape.latitude) > shape.height * shape.conversion / 2:
            return -1.0
        if distance(x, y, shape.longitude, y) > shape.width * shape.conversion / 2:
            return -1.0
        return distance(shape.longitude, shape.latitude, x, y)
    d = distance(shape.longitude, shape.latitude, x, y)
    return d if d <= shape.radius * shape.conversion else -1.0


# A point farther from a circle's centre in latitude alone than its radius is outside (the
# great-circle distance is never shorter), found without the trigonometry; the margin keeps
# every point that rounding could put on the line to the full computation, so the verdicts
# are exactly distance()'s.
OUTSIDE_MARGIN: Final = 1.0 + 1e-9


def _in_circle(lon: float, lat: float, cos_lat: float, limit: float, x: float, y: float) -> float:
    """_inside() for a circle of `limit` metres around (lon, lat), whose latitude's cosine the
    search computed once: the same distance, and the same verdict."""
    if EARTH_RADIUS_IN_METERS * abs(y * D_R - lat * D_R) > limit * OUTSIDE_MARGIN:
        return -1.0
    d = _distance_from(lon, lat, cos_lat, x, y)
    return d if d <= limit else -1.0


Found = tuple[float, float, bytes, float, float]       # (distance m, score, member, longitude, latitude)


def search(shape: Shape, between: Callable[[float, float], Iterable[tuple[float, bytes]]],
           limit: int) -> list[Found]:
    """The members inside the shape, in Redis's visiting order (cell by cell, each in score order).

    `between(low, high)` yields the (score, member) pairs with low <= score < high (the sorted
    set's range); `limit` > 0 stops after that many (COUNT ... ANY)."""
    found: list[Found] = []
    last = ZERO
    seen = False
    circle = not shape.box
    lon, lat, radius_m = shape.longitude, shape.latitude, shape.radius * shape.conversion
    cos_lat = math.cos(lat * D_R)
    for cell in search_cells(shape):
        if cell.zero:
            continue
        if seen and cell == last:
            continue          # huge radii: neighbouring cells can be the same one
        if limit and len(found) >= limit:
            break
        low, high = cell_scores(cell)
        countdown = EVERY
        for score, member in between(float(low), float(high)):
            countdown -= 1
            if not countdown:       # (a radius over millions of members: the heartbeat goes on, pulse.py)
                countdown = EVERY
                beat()
            if NATIVE:
                bits = int(score)
                x, y = _longitude_of(bits), _latitude_of(bits)
            else:
                x, y = position(score)
            dist = _in_circle(lon, lat, cos_lat, radius_m, x, y) if circle else _inside(shape, x, y)
            if dist >= 0.0:
                found.append((dist, score, member, x, y))
                if limit and len(found) >= limit:
                    break
        last, seen = cell, True
    return found
