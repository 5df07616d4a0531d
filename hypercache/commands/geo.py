"""GEO commands on sorted sets (Redis 7.0): GEOADD, GEODIST, GEOHASH, GEOPOS, GEORADIUS[_RO],
GEORADIUSBYMEMBER[_RO], GEOSEARCH, GEOSEARCHSTORE.

A position is stored as a sorted set score (the 52-bit geohash), so every
ZSET command works on GEO keys as in Redis. The geometry is
hypercache/geo.py; here are the arguments, Redis's errors, the walk over the
cells a search covers (in Redis's order, so unsorted replies come out as
Redis's do) and the replies.
"""
from __future__ import annotations

import math
import operator

from .. import geo
from ..arguments import WRONGTYPE, parse_float, parse_int
from ..pulse import RUN, ordered
from ..reply import CommandError, Raw
from ..types.zset import ZSet
from . import command
from .zsets import add_one, zadd

SYNTAX = CommandError("ERR syntax error")
UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}
BAD_UNIT = CommandError("ERR unsupported unit provided. please use M, KM, FT, MI")
NOT_DECODED = CommandError("ERR could not decode requested zset member")
OPTION_INITIALS = (b"n", b"N", b"x", b"X", b"c", b"C")     # NX, XX, CH: not a longitude
BY_DISTANCE = operator.itemgetter(0)        # a search's (distance, ...) tuples: sorted in C


def _zset(ctx, key: bytes) -> ZSet | None:
    value = ctx.store.get(ctx.slot, key, ctx.now_ms)
    if value is not None and type(value) is not ZSet:
        raise CommandError(WRONGTYPE)
    return value


def _lonlat(raw_lon: bytes, raw_lat: bytes) -> tuple[float, float]:
    lon, lat = parse_float(raw_lon), parse_float(raw_lat)
    if lon < geo.LONG_MIN or lon > geo.LONG_MAX or lat < geo.LAT_MIN or lat > geo.LAT_MAX:
        raise CommandError(f"ERR invalid longitude,latitude pair {lon:f},{lat:f}")
    return lon, lat


def _unit(raw: bytes) -> float:
    factor = UNITS.get(raw.lower())
    if factor is None:
        raise BAD_UNIT
    return factor


def distance_text(value: float) -> bytes:
    """fixedpoint_d2string(d, 4): llrint(d * 10^4) printed with four decimals."""
    if value == 0:
        return b"0.0000"
    scaled = round(value * 10000.0)
    sign = b"-" if scaled < 0 else b""
    digits = b"%05d" % abs(scaled)
    return sign + digits[:-4] + b"." + digits[-4:]


def human(value: float, protocol: int) -> bytes:
    """addReplyHumanLongDouble: %.17Lf with trailing zeros (and a bare dot) removed."""
    text = (b"%.17f" % value).rstrip(b"0").rstrip(b".")
    if text in (b"", b"-"):
        text = b"0"
    if protocol == 3:
        return Raw(b",%s\r\n" % text)
    return text


@command("geoadd", -5, "write denyoom", 1, 1, 1, group="geo", since="3.2.0",
         summary="Adds one or more members to a geospatial index. The key is created if it doesn't exist.")
def geoadd(ctx, session, args):
    """Format: GEOADD key [NX | XX] [CH] longitude latitude member [longitude latitude member ...]"""
    if len(args) == 5 and args[2][:1] not in OPTION_INITIALS:
        # the common shape, one position and no option: straight to the sorted set, without
        # writing the score as text for ZADD to parse back (a third of GEOADD's cost)
        lon, lat = _lonlat(args[2], args[3])
        return add_one(ctx, args[1], args[4], float(geo.score_of(lon, lat) or 0))
    first = 2
    nx = xx = False
    while first < len(args):
        option = args[first].lower()
        if option == b"nx":
            nx = True
        elif option == b"xx":
            xx = True
        elif option != b"ch":
            break
        first += 1
    if (len(args) - first) % 3 or (nx and xx):
        raise SYNTAX
    zadd_args = [b"zadd"] + args[1:first]
    for i in range(first, len(args), 3):
        lon, lat = _lonlat(args[i], args[i + 1])
        score = geo.score_of(lon, lat)
        assert score is not None            # (_lonlat refused what cannot be encoded)
        zadd_args += [b"%d" % score, args[i + 2]]
    return zadd(ctx, session, zadd_args)


@command("geodist", -4, "readonly", 1, 1, 1, group="geo", since="3.2.0",
         summary="Returns the distance between two members of a geospatial index.")
def geodist(ctx, session, args):
    """Format: GEODIST key member1 member2 [M | KM | FT | MI]"""
    factor = 1.0
    if len(args) == 5:
        factor = _unit(args[4])
    elif len(args) > 5:
        raise SYNTAX
    z = _zset(ctx, args[1])
    if z is None:
        return None
    first, second = z.scores.get(args[2]), z.scores.get(args[3])
    if first is None or second is None:
        return None
    x1, y1 = geo.position(first)
    x2, y2 = geo.position(second)
    return distance_text(geo.distance(x1, y1, x2, y2) / factor)


@command("geohash", -2, "readonly", 1, 1, 1, group="geo", since="3.2.0",
         summary="Returns members from a geospatial index as geohash strings.")
def geohash(ctx, session, args):
    """Format: GEOHASH key [member [member ...]]"""
    z = _zset(ctx, args[1])
    out = []
    for member in args[2:]:
        score = z.scores.get(member) if z is not None else None
        out.append(None if score is None else geo.geohash_string(score))
    return out


@command("geopos", -2, "readonly", 1, 1, 1, group="geo", since="3.2.0",
         summary="Returns the longitude and latitude of members from a geospatial index.")
def geopos(ctx, session, args):
    """Format: GEOPOS key [member [member ...]]"""
    from ..reply import NULL_ARRAY
    z = _zset(ctx, args[1])
    out: list = []
    for member in args[2:]:
        score = z.scores.get(member) if z is not None else None
        if score is None:
            out.append(NULL_ARRAY)
            continue
        x, y = geo.position(score)
        out.append([human(x, session.protocol), human(y, session.protocol)])
    return out


# -- searches ---------------------------------------------------------------------------------

RADIUS_COORDS, RADIUS_MEMBER, NOSTORE, SEARCH, SEARCHSTORE = 1, 2, 4, 8, 16


def _store_keys(args: list[bytes]) -> list[bytes]:
    """GEORADIUS[BYMEMBER]'s keys: the source and any STORE/STOREDIST destination."""
    keys = [args[1]]
    for i in range(2, len(args) - 1):
        if args[i].lower() in (b"store", b"storedist"):
            keys.append(args[i + 1])
    return keys


def _search(ctx, session, args, source: int, flags: int):
    z = _zset(ctx, args[source])
    store_key = None
    store_dist = False
    center = None
    conversion, radius, width, height, box = 0.0, 0.0, 0.0, 0.0, False
    if flags & RADIUS_COORDS:
        base = 6
        center = _lonlat(args[2], args[3])
        radius, conversion = _distance(args[4], args[5])
    elif flags & RADIUS_MEMBER:
        base = 5
        if z is not None:
            score = z.scores.get(args[2])
            if score is None:
                raise NOT_DECODED
            center = geo.position(score)
            radius, conversion = _distance(args[3], args[4])
    else:
        base = 2
        if flags & SEARCHSTORE:
            base = 3
            store_key = args[1]
    with_dist = with_hash = with_coord = any_ = False
    from_member = from_loc = by_radius = by_box = False
    order = None
    count = 0
    i = base
    n = len(args)
    while i < n:
        arg = args[i].lower()
        left = n - i - 1
        if arg == b"withdist":
            with_dist = True
        elif arg == b"withhash":
            with_hash = True
        elif arg == b"withcoord":
            with_coord = True
        elif arg == b"any":
            any_ = True
        elif arg == b"asc":
            order = "asc"
        elif arg == b"desc":
            order = "desc"
        elif arg == b"count" and left >= 1:
            count = parse_int(args[i + 1])
            if count <= 0:
                raise CommandError("ERR COUNT must be > 0")
            i += 1
        elif arg in (b"store", b"storedist") and left >= 1 and not flags & (NOSTORE | SEARCH):
            store_key, store_dist = args[i + 1], arg == b"storedist"
            i += 1
        elif arg == b"storedist" and flags & SEARCH and flags & SEARCHSTORE:
            store_dist = True
        elif arg == b"frommember" and left >= 1 and flags & SEARCH and not from_loc:
            if z is not None:
                score = z.scores.get(args[i + 1])
                if score is None:
                    raise NOT_DECODED
                center = geo.position(score)
            from_member = True
            i += 1
        elif arg == b"fromlonlat" and left >= 2 and flags & SEARCH and not from_member:
            center = _lonlat(args[i + 1], args[i + 2])
            from_loc = True
            i += 2
        elif arg == b"byradius" and left >= 2 and flags & SEARCH and not by_box:
            radius, conversion = _distance(args[i + 1], args[i + 2])
            by_radius = True
            i += 2
        elif arg == b"bybox" and left >= 3 and flags & SEARCH and not by_radius:
            width = parse_float(args[i + 1], "ERR need numeric width")
            height = parse_float(args[i + 2], "ERR need numeric height")
            if width < 0 or height < 0:
                raise CommandError("ERR height or width cannot be negative")
            conversion = _unit(args[i + 3])
            box = by_box = True
            i += 3
        else:
            raise SYNTAX
        i += 1
    name = args[0].decode("utf-8", "replace")
    if store_key is not None and (with_dist or with_hash or with_coord):
        what = "GEOSEARCHSTORE" if flags & SEARCHSTORE else "STORE option in GEORADIUS"
        raise CommandError(f"ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
    if flags & SEARCH and not (from_member or from_loc):
        raise CommandError(f"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")
    if flags & SEARCH and not (by_radius or by_box):
        raise CommandError(f"ERR exactly one of BYRADIUS and BYBOX can be specified for {name}")
    if any_ and not count:
        raise CommandError("ERR the ANY argument requires COUNT argument")
    if z is None:
        if store_key is not None:
            ctx.store.delete(ctx.slot, store_key)
            return 0
        return []
    if count and order is None and not any_:
        order = "asc"
    assert center is not None               # (a search without a centre was refused above)
    shape = geo.Shape(center[0], center[1], conversion, radius, width, height, box)
    irange = z.ordered.irange
    found = geo.search(shape, lambda low, high: irange((low,), (high,), inclusive=(True, False)),
                       count if any_ else 0)
    if not found and store_key is None:
        return []
    if order is not None:
        # (all of them, then the first COUNT, as Redis; heapq.nsmallest of 10 in 204 was slower)
        if len(found) > RUN:
            # (a million of them: sorted in pieces with heartbeats between, hypercache/pulse.py;
            # the index keeps equal distances in visiting order, as the key sort does)
            by_distance = ordered([(entry[0], i) for i, entry in enumerate(found)], reverse=order == "desc")
            found = [found[i] for _, i in by_distance]
        else:
            found.sort(key=BY_DISTANCE, reverse=order == "desc")
    if count:
        found = found[:count]
    if store_key is None:
        extras = with_dist + with_hash + with_coord
        out: list = []
        for dist, score, member, x, y in found:
            if not extras:
                out.append(member)
                continue
            entry: list = [member]
            if with_dist:
                entry.append(distance_text(dist / conversion))
            if with_hash:
                entry.append(int(score))
            if with_coord:
                entry.append([human(x, session.protocol), human(y, session.protocol)])
            out.append(entry)
        return out
    if found:
        result = ZSet()
        for dist, score, member, _, _ in found:
            result.add(member, dist / conversion if store_dist else score)
        ctx.store.set(ctx.slot, store_key, result)
    else:
        ctx.store.delete(ctx.slot, store_key)
    return len(found)


def _distance(raw: bytes, unit: bytes) -> tuple[float, float]:
    value = parse_float(raw, "ERR need numeric radius")
    if value < 0:
        raise CommandError("ERR radius cannot be negative")
    return value, _unit(unit)


@command("georadius", -6, "write denyoom movablekeys", 1, 1, 1, group="geo", since="3.2.0",
         find_keys=_store_keys,
         summary="Queries a geospatial index for members within a distance from a coordinate, "
                 "optionally stores the result.")
def georadius(ctx, session, args):
    """Format: GEORADIUS key longitude latitude radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH]
    [COUNT count [ANY]] [ASC|DESC] [STORE key | STOREDIST key]"""
    return _search(ctx, session, args, 1, RADIUS_COORDS)


@command("georadius_ro", -6, "readonly", 1, 1, 1, group="geo", since="3.2.10",
         summary="Returns members from a geospatial index that are within a distance from a coordinate.")
def georadius_ro(ctx, session, args):
    """Format: GEORADIUS_RO key longitude latitude radius unit [options]"""
    return _search(ctx, session, args, 1, RADIUS_COORDS | NOSTORE)


@command("georadiusbymember", -5, "write denyoom movablekeys", 1, 1, 1, group="geo", since="3.2.0",
         find_keys=_store_keys,
         summary="Queries a geospatial index for members within a distance from a member, "
                 "optionally stores the result.")
def georadiusbymember(ctx, session, args):
    """Format: GEORADIUSBYMEMBER key member radius unit [options] [STORE key | STOREDIST key]"""
    return _search(ctx, session, args, 1, RADIUS_MEMBER)


@command("georadiusbymember_ro", -5, "readonly", 1, 1, 1, group="geo", since="3.2.10",
         summary="Returns members from a geospatial index that are within a distance from a member.")
def georadiusbymember_ro(ctx, session, args):
    """Format: GEORADIUSBYMEMBER_RO key member radius unit [options]"""
    return _search(ctx, session, args, 1, RADIUS_MEMBER | NOSTORE)


@command("geosearch", -7, "readonly", 1, 1, 1, group="geo", since="6.2.0",
         summary="Queries a geospatial index for members inside an area of a box or a circle.")
def geosearch(ctx, session, args):
    """Format: GEOSEARCH key FROMMEMBER member | FROMLONLAT lon lat BYRADIUS r unit | BYBOX w h unit
    [ASC|DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]"""
    return _search(ctx, session, args, 1, SEARCH)


@command("geosearchstore", -8, "write denyoom", 1, 2, 1, group="geo", since="6.2.0",
         summary="Queries a geospatial index for members inside an area of a box or a circle, "
                 "optionally stores the result.")
def geosearchstore(ctx, session, args):
    """Format: GEOSEARCHSTORE destination source FROMMEMBER|FROMLONLAT ... BYRADIUS|BYBOX ... [STOREDIST]"""
    return _search(ctx, session, args, 2, SEARCH | SEARCHSTORE)


__all__ = ["math"]
