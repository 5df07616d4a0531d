"""Keyspace notifications: the classes `notify-keyspace-events` selects, and the events each write emits.

Redis calls notifyKeyspaceEvent() inside every command. Here the commands
stay as they are: while notifications are on, the store reports which keys a
command changed (`touched`, in order) and `events_of()` names the events
Redis 7.0 emits for that command, from its name, its arguments, its reply and
which of the touched keys are gone afterwards. Events that do not belong to a
command ("expired", "evicted", "new", "keymiss") are emitted by the store's
hooks where they happen (hypercache/keyevents.py).

Pure: no I/O. The event names and their order were read in Redis 7.0's
sources (t_*.c, db.c, expire.c) and are checked side by side with a real
redis-server in tests/blackbox/test_notifications_vs_redis.py.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

# Redis's NOTIFY_* bits (server.h), so flag values compare with Redis's own
KEYSPACE, KEYEVENT, GENERIC, STRING, LIST, SET, HASH, ZSET = (1 << n for n in range(8))
EXPIRED, EVICTED, STREAM, KEY_MISS, MODULE, NEW = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 13, 1 << 14
ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE   # "A": not m, not n
CLASSES = {ord("g"): GENERIC, ord("$"): STRING, ord("l"): LIST, ord("s"): SET, ord("h"): HASH,
           ord("z"): ZSET, ord("x"): EXPIRED, ord("e"): EVICTED, ord("K"): KEYSPACE, ord("E"): KEYEVENT,
           ord("t"): STREAM, ord("m"): KEY_MISS, ord("d"): MODULE, ord("n"): NEW, ord("A"): ALL}
# the order keyspaceEventsFlagsToString() writes them in (after "A" or the type letters)
_TYPE_LETTERS = ((GENERIC, "g"), (STRING, "$"), (LIST, "l"), (SET, "s"), (HASH, "h"), (ZSET, "z"),
                 (EXPIRED, "x"), (EVICTED, "e"), (STREAM, "t"), (MODULE, "d"), (NEW, "n"))
INVALID_CLASS = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."


# The command a Redis master propagates in place of the one that ran, so its replicas'
# events name that one: (class, event) on the replica for an event on the primary
AS_PROPAGATED = {b"expired": (GENERIC, b"del"), b"evicted": (GENERIC, b"del"),
                 b"incrbyfloat": (STRING, b"set"), b"hincrbyfloat": (HASH, b"hset"),
                 b"spop": (SET, b"srem")}


def parse_flags(text: bytes) -> int:
    """The flags a `notify-keyspace-events` value selects; ValueError on a letter Redis does not know."""
    flags = 0
    for char in text:
        bit = CLASSES.get(char)
        if bit is None:
            raise ValueError(INVALID_CLASS)
        flags |= bit
    return flags


def format_flags(flags: int) -> bytes:
    """The value CONFIG GET shows, as Redis normalizes it ("KEA", "Kx$" -> "$xK")."""
    if flags & ALL == ALL:
        text = "A"
    else:
        text = "".join(letter for bit, letter in _TYPE_LETTERS if flags & bit)
    if flags & KEYSPACE:
        text += "K"
    if flags & KEYEVENT:
        text += "E"
    if flags & KEY_MISS:
        text += "m"
    return text.encode()


def active(flags: int) -> bool:
    """Whether any event can be published: a channel kind (K or E) and at least one class."""
    return bool(flags & (KEYSPACE | KEYEVENT)) and bool(flags & ~(KEYSPACE | KEYEVENT))


# -- the events of each write ------------------------------------------------------------

Event = tuple[int, bytes, bytes]        # (class, event name, key)
# (args, touched keys in order, keys gone afterwards, reply) -> events
Rule = Callable[[list, list, set, Any], list]
# Commands with an event even when they changed nothing: LTRIM of a range that
# keeps the whole list (its rule needs to know whether the key exists).
UNCHANGED_EVENTS = frozenset((b"ltrim",))


def events_of(name: bytes, args: list[bytes], touched: list[bytes], gone: set, reply: Any) -> list[Event]:
    """The events Redis emits for a command that changed `touched`; [] for one it does not know.

    `gone` holds the touched keys that no longer exist; for a command of
    UNCHANGED_EVENTS that touched nothing, the keys it names that do not exist.
    """
    rule = RULES.get(name)
    if rule is None or not (touched or name in UNCHANGED_EVENTS):
        return []
    return rule(args, touched, gone, reply)


def place_new(name: bytes, created: list[bytes], events: list[Event]) -> list[Event]:
    """The "new" events of the keys a command created, where Redis emits them among its events."""
    news = {key: (NEW, b"new", key) for key in created}
    if name in (b"rename", b"renamenx"):
        return list(news.values()) + events     # the target is added before "rename_from"
    out = []
    for event in events:
        new = news.pop(event[2], None)
        if new is not None:
            out.append(new)
        out.append(event)
    return out + list(news.values())


def _each(cls: int, event: bytes, emptied_deletes: bool = False) -> Rule:
    """`event` for every touched key, then "del" for each it emptied (a pop of the last element)."""
    def rule(args, touched, gone, reply):
        out = []
        for key in touched:
            out.append((cls, event, key))
            if emptied_deletes and key in gone:
                out.append((GENERIC, b"del", key))
        return out
    return rule


def _deleted(args, touched, gone, reply):
    return [(GENERIC, b"del", key) for key in touched if key in gone]


def _stored(cls: int, event: bytes, at: int = 1) -> Rule:
    """A *STORE command: `event` on its destination (args[at]), "del" when the result was empty."""
    def rule(args, touched, gone, reply):
        target = args[at]
        if target not in touched:
            return []
        return [(GENERIC, b"del", target) if target in gone else (cls, event, target)]
    return rule


def _has_option(args: Iterable[bytes], options: tuple[bytes, ...]) -> bool:
    return any(arg.upper() in options for arg in args)


_TTL_OPTIONS = (b"EX", b"PX", b"EXAT", b"PXAT")


def _set(args, touched, gone, reply):
    key = args[1]
    out = [(STRING, b"set", key)]
    if _has_option(args[3:], _TTL_OPTIONS):
        out.append((GENERIC, b"expire", key))
    return out


def _mset(args, touched, gone, reply):
    """One "set" a pair, as Redis: a key given twice is set, and announced, twice."""
    return [(STRING, b"set", key) for key in args[1::2]]


def _set_with_ttl(args, touched, gone, reply):
    return [(STRING, b"set", args[1]), (GENERIC, b"expire", args[1])]


def _expire(args, touched, gone, reply):
    key = args[1]
    return [(GENERIC, b"del" if key in gone else b"expire", key)]


def _getex(args, touched, gone, reply):
    key = args[1]
    if key in gone:
        return [(GENERIC, b"del", key)]
    if _has_option(args[2:], (b"PERSIST",)):
        return [(GENERIC, b"persist", key)]
    return [(GENERIC, b"expire", key)]


def _rename(args, touched, gone, reply):
    source, target = args[1], args[2]
    if source == target:
        return []
    return [(GENERIC, b"rename_from", source), (GENERIC, b"rename_to", target)]


def _pop_event(cls: int, left: bytes, right: bytes, words: dict[bytes, bool]) -> Rule:
    """A pop whose end is named by an argument (LMPOP's LEFT/RIGHT, ZMPOP's MIN/MAX)."""
    def rule(args, touched, gone, reply):
        is_left = next((words[a.upper()] for a in args if a.upper() in words), True)
        return _each(cls, left if is_left else right, True)(args, touched, gone, reply)
    return rule


def _move(pop_left: bool | None, push_left: bool | None) -> Rule:
    """RPOPLPUSH / LMOVE: the push on the destination, then the pop on the source, then its "del".

    None: the end is read from LMOVE's arguments (wherefrom at 3, whereto at 4).
    """
    def rule(args, touched, gone, reply):
        source, target = args[1], args[2]
        from_left = pop_left if pop_left is not None else args[3].upper() == b"LEFT"
        to_left = push_left if push_left is not None else args[4].upper() == b"LEFT"
        out = [(LIST, b"lpush" if to_left else b"rpush", target),
               (LIST, b"lpop" if from_left else b"rpop", source)]
        if source in gone:
            out.append((GENERIC, b"del", source))
        return out
    return rule


def _ltrim(args, touched, gone, reply):
    key = args[1]
    if key not in touched and key in gone:
        return []       # no such list
    return [(LIST, b"ltrim", key)] + ([(GENERIC, b"del", key)] if key in gone else [])


def _smove(args, touched, gone, reply):
    source, target = args[1], args[2]
    if source == target:
        return []
    out = [(SET, b"srem", source)]
    if source in gone:
        out.append((GENERIC, b"del", source))
    if target in touched:
        out.append((SET, b"sadd", target))
    return out


def _zadd(args, touched, gone, reply):
    return [(ZSET, b"zincr" if _has_option(args[2:], (b"INCR",)) else b"zadd", args[1])]


def _georadius_store(args, touched, gone, reply):
    """GEORADIUS* STORE / STOREDIST: the destination follows its option."""
    upper = [a.upper() for a in args]
    for i, word in enumerate(upper[:-1]):
        if word in (b"STORE", b"STOREDIST"):
            return _stored(ZSET, b"georadiusstore", i + 1)(args, touched, gone, reply)
    return []


def _bitop(args, touched, gone, reply):
    target = args[2]
    return [(GENERIC, b"del", target) if target in gone else (STRING, b"set", target)]


def _sort(args, touched, gone, reply):
    upper = [a.upper() for a in args]
    for i, word in enumerate(upper[:-1]):
        if word == b"STORE":
            return _stored(LIST, b"sortstore", i + 1)(args, touched, gone, reply)
    return []


_LEFT_RIGHT = {b"LEFT": True, b"RIGHT": False}
_MIN_MAX = {b"MIN": True, b"MAX": False}

RULES: dict[bytes, Rule] = {
    # strings
    b"set": _set, b"setnx": _each(STRING, b"set"), b"getset": _each(STRING, b"set"),
    b"setex": _set_with_ttl, b"psetex": _set_with_ttl, b"mset": _mset,
    b"msetnx": _mset, b"getdel": _each(GENERIC, b"del"), b"getex": _getex,
    b"append": _each(STRING, b"append"), b"setrange": _each(STRING, b"setrange"),
    b"incr": _each(STRING, b"incrby"), b"decr": _each(STRING, b"incrby"),
    b"incrby": _each(STRING, b"incrby"), b"decrby": _each(STRING, b"incrby"),
    b"incrbyfloat": _each(STRING, b"incrbyfloat"),
    b"setbit": _each(STRING, b"setbit"), b"bitfield": _each(STRING, b"setbit"), b"bitop": _bitop,
    b"pfadd": _each(STRING, b"pfadd"), b"pfmerge": _stored(STRING, b"pfadd"),
    # keys
    b"del": _deleted, b"unlink": _deleted,
    b"expire": _expire, b"pexpire": _expire, b"expireat": _expire, b"pexpireat": _expire,
    b"persist": _each(GENERIC, b"persist"),
    b"rename": _rename, b"renamenx": _rename, b"copy": _stored(GENERIC, b"copy_to", 2),
    b"restore": _each(GENERIC, b"restore"), b"sort": _sort,
    # lists
    b"lpush": _each(LIST, b"lpush"), b"lpushx": _each(LIST, b"lpush"),
    b"rpush": _each(LIST, b"rpush"), b"rpushx": _each(LIST, b"rpush"),
    b"linsert": _each(LIST, b"linsert"), b"lset": _each(LIST, b"lset"), b"ltrim": _ltrim,
    b"lrem": _each(LIST, b"lrem", True),
    b"lpop": _each(LIST, b"lpop", True), b"rpop": _each(LIST, b"rpop", True),
    b"blpop": _each(LIST, b"lpop", True), b"brpop": _each(LIST, b"rpop", True),
    b"lmpop": _pop_event(LIST, b"lpop", b"rpop", _LEFT_RIGHT),
    b"blmpop": _pop_event(LIST, b"lpop", b"rpop", _LEFT_RIGHT),
    b"rpoplpush": _move(False, True), b"brpoplpush": _move(False, True),
    b"lmove": _move(None, None), b"blmove": _move(None, None),
    # hashes
    b"hset": _each(HASH, b"hset"), b"hmset": _each(HASH, b"hset"), b"hsetnx": _each(HASH, b"hset"),
    b"hincrby": _each(HASH, b"hincrby"), b"hincrbyfloat": _each(HASH, b"hincrbyfloat"),
    b"hdel": _each(HASH, b"hdel", True),
    # sets
    b"sadd": _each(SET, b"sadd"), b"srem": _each(SET, b"srem", True), b"spop": _each(SET, b"spop", True),
    b"smove": _smove, b"sinterstore": _stored(SET, b"sinterstore"),
    b"sunionstore": _stored(SET, b"sunionstore"), b"sdiffstore": _stored(SET, b"sdiffstore"),
    # sorted sets (GEOADD is ZADD underneath, as in Redis)
    b"zadd": _zadd, b"geoadd": _each(ZSET, b"zadd"), b"zincrby": _each(ZSET, b"zincr"),
    b"zrem": _each(ZSET, b"zrem", True),
    b"zremrangebyscore": _each(ZSET, b"zremrangebyscore", True),
    b"zremrangebyrank": _each(ZSET, b"zremrangebyrank", True),
    b"zremrangebylex": _each(ZSET, b"zremrangebylex", True),
    b"zpopmin": _each(ZSET, b"zpopmin", True), b"zpopmax": _each(ZSET, b"zpopmax", True),
    b"bzpopmin": _each(ZSET, b"zpopmin", True), b"bzpopmax": _each(ZSET, b"zpopmax", True),
    b"zmpop": _pop_event(ZSET, b"zpopmin", b"zpopmax", _MIN_MAX),
    b"bzmpop": _pop_event(ZSET, b"zpopmin", b"zpopmax", _MIN_MAX),
    b"zunionstore": _stored(ZSET, b"zunionstore"), b"zinterstore": _stored(ZSET, b"zinterstore"),
    b"zdiffstore": _stored(ZSET, b"zdiffstore"), b"zrangestore": _stored(ZSET, b"zrangestore"),
    b"georadius": _georadius_store, b"georadiusbymember": _georadius_store,
    b"geosearchstore": _stored(ZSET, b"geosearchstore"),
}
