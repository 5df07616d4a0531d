"""Which arguments of a call are keys, and how the call uses each: Redis 7.0's key specifications.

Pure. The data is what redis-server 7.0.15's COMMAND reports (`key_specifications`), one
entry per command or `container|sub`: (flags, begin_search, find_keys) per spec, where
begin_search is ("index", i), ("keyword", word, startfrom) or ("unknown",) and find_keys
is ("range", lastkey, keystep, limit), ("keynum", keynumidx, firstkey, keystep) or
("unknown",). keys_and_flags() walks them as Redis's getKeysUsingKeySpecs() does and,
where the specs cannot say (variable flags, unknown or incomplete specs), answers as
Redis's getkeys procedures do (SET, BITFIELD, SORT). ACL key patterns (%R~ / %W~) and
COMMAND GETKEYSANDFLAGS read these flags; routing keeps using the command table's keys.

Regenerate the table against a running redis-server with:
    python -m hypercache.keyspecs PORT > /tmp/specs.txt   (then paste it below)
"""
from __future__ import annotations

import sys

Spec = tuple  # (flags: str, begin_search: tuple, find_keys: tuple[, notes: str])

SPECS: dict[str, tuple[Spec, ...]] = {
    'append': (('RW insert', ('index', 1), ('range', 0, 1, 0)),),
    'bitcount': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'bitfield': (('RW access update variable_flags', ('index', 1), ('range', 0, 1, 0), 'This command allows both access and modification of the key'),),
    'bitfield_ro': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'bitop': (('OW update', ('index', 2), ('range', 0, 1, 0)), ('RO access', ('index', 3), ('range', -1, 1, 0))),
    'bitpos': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'blmove': (('RW access delete', ('index', 1), ('range', 0, 1, 0)), ('RW insert', ('index', 2), ('range', 0, 1, 0))),
    'blmpop': (('RW access delete', ('index', 2), ('keynum', 0, 1, 1)),),
    'blpop': (('RW access delete', ('index', 1), ('range', -2, 1, 0)),),
    'brpop': (('RW access delete', ('index', 1), ('range', -2, 1, 0)),),
    'brpoplpush': (('RW access delete', ('index', 1), ('range', 0, 1, 0)), ('RW insert', ('index', 2), ('range', 0, 1, 0))),
    'bzmpop': (('RW access delete', ('index', 2), ('keynum', 0, 1, 1)),),
    'bzpopmax': (('RW access delete', ('index', 1), ('range', -2, 1, 0)),),
    'bzpopmin': (('RW access delete', ('index', 1), ('range', -2, 1, 0)),),
    'copy': (('RO access', ('index', 1), ('range', 0, 1, 0)), ('OW update', ('index', 2), ('range', 0, 1, 0))),
    'decr': (('RW access update', ('index', 1), ('range', 0, 1, 0)),),
    'decrby': (('RW access update', ('index', 1), ('range', 0, 1, 0)),),
    'del': (('RM delete', ('index', 1), ('range', -1, 1, 0)),),
    'dump': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'eval': (('RW access update', ('index', 2), ('keynum', 0, 1, 1), 'We cannot tell how the keys will be used so we assume the worst, RW and UPDATE'),),
    'eval_ro': (('RO access', ('index', 2), ('keynum', 0, 1, 1), 'We cannot tell how the keys will be used so we assume the worst, RO and ACCESS'),),
    'evalsha': (('RW access update', ('index', 2), ('keynum', 0, 1, 1)),),
    'evalsha_ro': (('RO access', ('index', 2), ('keynum', 0, 1, 1)),),
    'exists': (('RO', ('index', 1), ('range', -1, 1, 0)),),
    'expire': (('RW update', ('index', 1), ('range', 0, 1, 0)),),
    'expireat': (('RW update', ('index', 1), ('range', 0, 1, 0)),),
    'expiretime': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'fcall': (('RW access update', ('index', 2), ('keynum', 0, 1, 1), 'We cannot tell how the keys will be used so we assume the worst, RW and UPDATE'),),
    'fcall_ro': (('RO access', ('index', 2), ('keynum', 0, 1, 1), 'We cannot tell how the keys will be used so we assume the worst, RO and ACCESS'),),
    'geoadd': (('RW update', ('index', 1), ('range', 0, 1, 0)),),
    'geodist': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'geohash': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'geopos': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'georadius': (('RO access', ('index', 1), ('range', 0, 1, 0)), ('OW update', ('keyword', 'STORE', 6), ('range', 0, 1, 0)), ('OW update', ('keyword', 'STOREDIST', 6), ('range', 0, 1, 0))),
    'georadius_ro': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'georadiusbymember': (('RO access', ('index', 1), ('range', 0, 1, 0)), ('OW update', ('keyword', 'STORE', 5), ('range', 0, 1, 0)), ('OW update', ('keyword', 'STOREDIST', 5), ('range', 0, 1, 0))),
    'georadiusbymember_ro': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'geosearch': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'geosearchstore': (('OW update', ('index', 1), ('range', 0, 1, 0)), ('RO access', ('index', 2), ('range', 0, 1, 0))),
    'get': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'getbit': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'getdel': (('RW access delete', ('index', 1), ('range', 0, 1, 0)),),
    'getex': (('RW access update', ('index', 1), ('range', 0, 1, 0), 'RW and UPDATE because it changes the TTL'),),
    'getrange': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'getset': (('RW access update', ('index', 1), ('range', 0, 1, 0)),),
    'hdel': (('RW delete', ('index', 1), ('range', 0, 1, 0)),),
    'hexists': (('RO', ('index', 1), ('range', 0, 1, 0)),),
    'hget': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'hgetall': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'hincrby': (('RW access update', ('index', 1), ('range', 0, 1, 0)),),
    'hincrbyfloat': (('RW access update', ('index', 1), ('range', 0, 1, 0)),),
    'hkeys': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'hlen': (('RO', ('index', 1), ('range', 0, 1, 0)),),
    'hmget': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'hmset': (('RW update', ('index', 1), ('range', 0, 1, 0)),),
    'hrandfield': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'hscan': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'hset': (('RW update', ('index', 1), ('range', 0, 1, 0)),),
    'hsetnx': (('RW insert', ('index', 1), ('range', 0, 1, 0)),),
    'hstrlen': (('RO', ('index', 1), ('range', 0, 1, 0)),),
    'hvals': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'incr': (('RW access update', ('index', 1), ('range', 0, 1, 0)),),
    'incrby': (('RW access update', ('index', 1), ('range', 0, 1, 0)),),
    'incrbyfloat': (('RW access update', ('index', 1), ('range', 0, 1, 0)),),
    'lcs': (('RO access', ('index', 1), ('range', 1, 1, 0)),),
    'lindex': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'linsert': (('RW insert', ('index', 1), ('range', 0, 1, 0)),),
    'llen': (('RO', ('index', 1), ('range', 0, 1, 0)),),
    'lmove': (('RW access delete', ('index', 1), ('range', 0, 1, 0)), ('RW insert', ('index', 2), ('range', 0, 1, 0))),
    'lmpop': (('RW access delete', ('index', 1), ('keynum', 0, 1, 1)),),
    'lpop': (('RW access delete', ('index', 1), ('range', 0, 1, 0)),),
    'lpos': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'lpush': (('RW insert', ('index', 1), ('range', 0, 1, 0)),),
    'lpushx': (('RW insert', ('index', 1), ('range', 0, 1, 0)),),
    'lrange': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'lrem': (('RW delete', ('index', 1), ('range', 0, 1, 0)),),
    'lset': (('RW update', ('index', 1), ('range', 0, 1, 0)),),
    'ltrim': (('RW delete', ('index', 1), ('range', 0, 1, 0)),),
    'memory|usage': (('RO', ('index', 2), ('range', 0, 1, 0)),),
    'mget': (('RO access', ('index', 1), ('range', -1, 1, 0)),),
    'migrate': (('RW access delete', ('index', 3), ('range', 0, 1, 0)), ('RW access delete incomplete', ('keyword', 'KEYS', -2), ('range', -1, 1, 0))),
    'move': (('RW access update', ('index', 1), ('range', 0, 1, 0)),),
    'mset': (('OW update', ('index', 1), ('range', -1, 2, 0)),),
    'msetnx': (('OW insert', ('index', 1), ('range', -1, 2, 0)),),
    'object|encoding': (('RO', ('index', 2), ('range', 0, 1, 0)),),
    'object|freq': (('RO', ('index', 2), ('range', 0, 1, 0)),),
    'object|idletime': (('RO', ('index', 2), ('range', 0, 1, 0)),),
    'object|refcount': (('RO', ('index', 2), ('range', 0, 1, 0)),),
    'persist': (('RW update', ('index', 1), ('range', 0, 1, 0)),),
    'pexpire': (('RW update', ('index', 1), ('range', 0, 1, 0)),),
    'pexpireat': (('RW update', ('index', 1), ('range', 0, 1, 0)),),
    'pexpiretime': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'pfadd': (('RW insert', ('index', 1), ('range', 0, 1, 0)),),
    'pfcount': (('RW access', ('index', 1), ('range', -1, 1, 0), 'RW because it may change the internal representation of the key, and propagate to replicas'),),
    'pfdebug': (('RW access', ('index', 2), ('range', 0, 1, 0)),),
    'pfmerge': (('RW access insert', ('index', 1), ('range', 0, 1, 0)), ('RO access', ('index', 2), ('range', -1, 1, 0))),
    'psetex': (('OW update', ('index', 1), ('range', 0, 1, 0)),),
    'pttl': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'rename': (('RW access delete', ('index', 1), ('range', 0, 1, 0)), ('OW update', ('index', 2), ('range', 0, 1, 0))),
    'renamenx': (('RW access delete', ('index', 1), ('range', 0, 1, 0)), ('OW insert', ('index', 2), ('range', 0, 1, 0))),
    'restore': (('OW update', ('index', 1), ('range', 0, 1, 0)),),
    'restore-asking': (('OW update', ('index', 1), ('range', 0, 1, 0)),),
    'rpop': (('RW access delete', ('index', 1), ('range', 0, 1, 0)),),
    'rpoplpush': (('RW access delete', ('index', 1), ('range', 0, 1, 0)), ('RW insert', ('index', 2), ('range', 0, 1, 0))),
    'rpush': (('RW insert', ('index', 1), ('range', 0, 1, 0)),),
    'rpushx': (('RW insert', ('index', 1), ('range', 0, 1, 0)),),
    'sadd': (('RW insert', ('index', 1), ('range', 0, 1, 0)),),
    'scard': (('RO', ('index', 1), ('range', 0, 1, 0)),),
    'sdiff': (('RO access', ('index', 1), ('range', -1, 1, 0)),),
    'sdiffstore': (('OW update', ('index', 1), ('range', 0, 1, 0)), ('RO access', ('index', 2), ('range', -1, 1, 0))),
    'set': (('RW access update variable_flags', ('index', 1), ('range', 0, 1, 0), 'RW and ACCESS due to the optional `GET` argument'),),
    'setbit': (('RW access update', ('index', 1), ('range', 0, 1, 0)),),
    'setex': (('OW update', ('index', 1), ('range', 0, 1, 0)),),
    'setnx': (('OW insert', ('index', 1), ('range', 0, 1, 0)),),
    'setrange': (('RW update', ('index', 1), ('range', 0, 1, 0)),),
    'sinter': (('RO access', ('index', 1), ('range', -1, 1, 0)),),
    'sintercard': (('RO access', ('index', 1), ('keynum', 0, 1, 1)),),
    'sinterstore': (('RW update', ('index', 1), ('range', 0, 1, 0)), ('RO access', ('index', 2), ('range', -1, 1, 0))),
    'sismember': (('RO', ('index', 1), ('range', 0, 1, 0)),),
    'smembers': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'smismember': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'smove': (('RW access delete', ('index', 1), ('range', 0, 1, 0)), ('RW insert', ('index', 2), ('range', 0, 1, 0))),
    'sort': (('RO access', ('index', 1), ('range', 0, 1, 0)), ('RO access', ('unknown',), ('unknown',), "For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort"), ('OW update', ('unknown',), ('unknown',), "For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array")),
    'sort_ro': (('RO access', ('index', 1), ('range', 0, 1, 0)), ('RO access', ('unknown',), ('unknown',), "For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort")),
    'spop': (('RW access delete', ('index', 1), ('range', 0, 1, 0)),),
    'spublish': (('not_key', ('index', 1), ('range', 0, 1, 0)),),
    'srandmember': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'srem': (('RW delete', ('index', 1), ('range', 0, 1, 0)),),
    'sscan': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'ssubscribe': (('not_key', ('index', 1), ('range', -1, 1, 0)),),
    'strlen': (('RO', ('index', 1), ('range', 0, 1, 0)),),
    'substr': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'sunion': (('RO access', ('index', 1), ('range', -1, 1, 0)),),
    'sunionstore': (('OW update', ('index', 1), ('range', 0, 1, 0)), ('RO access', ('index', 2), ('range', -1, 1, 0))),
    'sunsubscribe': (('not_key', ('index', 1), ('range', -1, 1, 0)),),
    'touch': (('RO', ('index', 1), ('range', -1, 1, 0)),),
    'ttl': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'type': (('RO', ('index', 1), ('range', 0, 1, 0)),),
    'unlink': (('RM delete', ('index', 1), ('range', -1, 1, 0)),),
    'watch': (('RO', ('index', 1), ('range', -1, 1, 0)),),
    'xack': (('RW update', ('index', 1), ('range', 0, 1, 0)),),
    'xadd': (('RW update', ('index', 1), ('range', 0, 1, 0), 'UPDATE instead of INSERT because of the optional trimming feature'),),
    'xautoclaim': (('RW delete', ('index', 1), ('range', 0, 1, 0)),),
    'xclaim': (('RW update', ('index', 1), ('range', 0, 1, 0)),),
    'xdel': (('RW delete', ('index', 1), ('range', 0, 1, 0)),),
    'xgroup|create': (('RW insert', ('index', 2), ('range', 0, 1, 0)),),
    'xgroup|createconsumer': (('RW insert', ('index', 2), ('range', 0, 1, 0)),),
    'xgroup|delconsumer': (('RW delete', ('index', 2), ('range', 0, 1, 0)),),
    'xgroup|destroy': (('RW delete', ('index', 2), ('range', 0, 1, 0)),),
    'xgroup|setid': (('RW update', ('index', 2), ('range', 0, 1, 0)),),
    'xinfo|consumers': (('RO access', ('index', 2), ('range', 0, 1, 0)),),
    'xinfo|groups': (('RO access', ('index', 2), ('range', 0, 1, 0)),),
    'xinfo|stream': (('RO access', ('index', 2), ('range', 0, 1, 0)),),
    'xlen': (('RO', ('index', 1), ('range', 0, 1, 0)),),
    'xpending': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'xrange': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'xread': (('RO access', ('keyword', 'STREAMS', 1), ('range', -1, 1, 2)),),
    'xreadgroup': (('RO access', ('keyword', 'STREAMS', 4), ('range', -1, 1, 2)),),
    'xrevrange': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'xsetid': (('RW update', ('index', 1), ('range', 0, 1, 0)),),
    'xtrim': (('RW delete', ('index', 1), ('range', 0, 1, 0)),),
    'zadd': (('RW update', ('index', 1), ('range', 0, 1, 0)),),
    'zcard': (('RO', ('index', 1), ('range', 0, 1, 0)),),
    'zcount': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'zdiff': (('RO access', ('index', 1), ('keynum', 0, 1, 1)),),
    'zdiffstore': (('OW update', ('index', 1), ('range', 0, 1, 0)), ('RO access', ('index', 2), ('keynum', 0, 1, 1))),
    'zincrby': (('RW access update', ('index', 1), ('range', 0, 1, 0)),),
    'zinter': (('RO access', ('index', 1), ('keynum', 0, 1, 1)),),
    'zintercard': (('RO access', ('index', 1), ('keynum', 0, 1, 1)),),
    'zinterstore': (('OW update', ('index', 1), ('range', 0, 1, 0)), ('RO access', ('index', 2), ('keynum', 0, 1, 1))),
    'zlexcount': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'zmpop': (('RW access delete', ('index', 1), ('keynum', 0, 1, 1)),),
    'zmscore': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'zpopmax': (('RW access delete', ('index', 1), ('range', 0, 1, 0)),),
    'zpopmin': (('RW access delete', ('index', 1), ('range', 0, 1, 0)),),
    'zrandmember': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'zrange': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'zrangebylex': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'zrangebyscore': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'zrangestore': (('OW update', ('index', 1), ('range', 0, 1, 0)), ('RO access', ('index', 2), ('range', 0, 1, 0))),
    'zrank': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'zrem': (('RW delete', ('index', 1), ('range', 0, 1, 0)),),
    'zremrangebylex': (('RW delete', ('index', 1), ('range', 0, 1, 0)),),
    'zremrangebyrank': (('RW delete', ('index', 1), ('range', 0, 1, 0)),),
    'zremrangebyscore': (('RW delete', ('index', 1), ('range', 0, 1, 0)),),
    'zrevrange': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'zrevrangebylex': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'zrevrangebyscore': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'zrevrank': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'zscan': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'zscore': (('RO access', ('index', 1), ('range', 0, 1, 0)),),
    'zunion': (('RO access', ('index', 1), ('keynum', 0, 1, 1)),),
    'zunionstore': (('OW update', ('index', 1), ('range', 0, 1, 0)), ('RO access', ('index', 2), ('keynum', 0, 1, 1))),
}

READ_FLAGS = frozenset(("access",))
WRITE_FLAGS = frozenset(("insert", "delete", "update"))
# What the specs cannot describe, answered by Redis's getkeys procedures instead
_BY_PROCEDURE = frozenset(("set", "bitfield", "sort", "sort_ro", "migrate"))
VARIABLE = frozenset(("set", "bitfield"))      # one key, its flags depending on the other arguments


def keys_and_flags(name: str, args: list[bytes]) -> list[tuple[int, tuple[str, ...]]] | None:
    """(argument index, flags) of every key of `args` (args[0] is the command), or None when
    the command has no key specs here (the caller falls back to the command table)."""
    if name in _BY_PROCEDURE:
        return _procedure(name, args)
    specs = _PARSED.get(name)
    if specs is None:
        return None
    argc = len(args)
    if len(specs) == 1:         # most commands: one spec, often one key at args[1]
        flag_tuple, begin, find = specs[0]
        if begin == _AT_1 and find == _ONE_KEY:
            return [(1, flag_tuple)] if argc > 1 else []
    found: list[tuple[int, tuple[str, ...]]] = []
    for flag_tuple, begin, find in specs:
        positions = _walk(begin, find, args, argc)
        if positions is None:
            return []       # as Redis: an invalid spec means no keys (the command will report the error)
        found.extend((position, flag_tuple) for position in positions)
    return found


_AT_1, _ONE_KEY = ("index", 1), ("range", 0, 1, 0)
# the specs with their flags split once, key specs only (a not_key spec names a channel)
_PARSED: dict[str, list[tuple[tuple[str, ...], tuple, tuple]]] = {
    name: [(tuple(spec[0].split()), spec[1], spec[2]) for spec in specs if spec[0] != "not_key"]
    for name, specs in SPECS.items()}


def _walk(begin: tuple, find: tuple, args: list[bytes], argc: int) -> list[int] | None:
    """The positions one spec finds (getKeysUsingKeySpecs), [] if its keyword is absent, None if invalid."""
    if begin[0] == "index":
        first = begin[1]
    elif begin[0] == "keyword":
        keyword, startfrom = begin[1].encode(), begin[2]
        start = startfrom if startfrom > 0 else argc + startfrom
        end = argc - 1 if startfrom > 0 else 1
        first = 0
        i = start
        while i != end:
            if i >= argc or i < 1:
                break
            if args[i].lower() == keyword.lower():
                first = i + 1
                break
            i = i + 1 if start <= end else i - 1
        if not first:
            return []
    else:
        return None
    if find[0] == "range":
        lastkey, step, limit = find[1], find[2], find[3]
        if lastkey >= 0:
            last = first + lastkey
        elif not limit:
            last = argc + lastkey
        else:
            last = first + ((argc - first) // limit + lastkey)
    elif find[0] == "keynum":
        keynumidx, firstkey, step = find[1], find[2], find[3]
        if first + keynumidx >= argc:
            return None
        try:
            numkeys = int(args[first + keynumidx])
        except ValueError:
            return None
        if numkeys < 0:
            return None
        first += firstkey
        last = first + numkeys - 1
    else:
        return None
    if last >= argc or last < first or first >= argc:
        return None
    return list(range(first, last + 1, step))


def _procedure(name: str, args: list[bytes]) -> list[tuple[int, tuple[str, ...]]]:
    """Redis's setGetKeys, bitfieldGetKeys and sortGetKeys (MIGRATE is not served here: no keys)."""
    argc = len(args)
    if name == "set":
        if any(arg.lower() == b"get" for arg in args[3:]):
            return [(1, ("RW", "access", "update"))]
        return [(1, ("OW", "update"))]
    if name == "bitfield":
        i = 2
        while i < argc:
            remaining = argc - i - 1
            arg = args[i].lower()
            if arg == b"get" and remaining >= 2:
                i += 3
            elif arg == b"overflow" and remaining >= 1:
                i += 2
            else:       # SET, INCRBY, or a syntax error: assumed to write, as Redis
                return [(1, ("RW", "access", "update"))]
        return [(1, ("RO", "access"))]
    if name in ("sort", "sort_ro"):
        found = [(1, ("RO", "access"))]
        store = 0
        i = 2
        while i < argc:
            arg = args[i].lower()
            if arg == b"limit":
                i += 2
            elif arg in (b"get", b"by"):
                i += 1
            elif arg == b"store" and i + 1 < argc:
                store = i + 1
            i += 1
        if store and name == "sort":
            found.append((store, ("OW", "update")))
        return found
    return []


def has_keys(name: str) -> bool:
    """False for a command whose only specs are not keys (SPUBLISH's shard channel)."""
    specs = SPECS.get(name)
    return specs is None or any(spec[0] != "not_key" for spec in specs)


def needs(flags: tuple[str, ...]) -> tuple[bool, bool]:
    """(read, write): the permissions a key used with `flags` needs (ACLSelectorCheckKey)."""
    return "access" in flags, any(flag in WRITE_FLAGS for flag in flags)


def _regenerate(port: int) -> None:     # pragma: no cover - a maintainer's tool
    import redis
    connection = redis.Connection(port=port, decode_responses=True)
    connection.connect()
    connection.send_command("COMMAND")
    entries = connection.read_response()

    def pairs(x):
        return {x[i]: x[i + 1] for i in range(0, len(x), 2)} if isinstance(x, list) else x

    found: dict[str, tuple] = {}

    def walk(entries):
        for entry in entries:
            specs = []
            for raw in entry[8]:
                spec = pairs(raw)
                begin, find = pairs(spec["begin_search"]), pairs(spec["find_keys"])
                bs, fk = pairs(begin.get("spec")) or {}, pairs(find.get("spec")) or {}
                b = (("index", bs["index"]) if begin["type"] == "index" else
                     ("keyword", bs["keyword"], bs["startfrom"]) if begin["type"] == "keyword" else ("unknown",))
                f = (("range", fk["lastkey"], fk["keystep"], fk["limit"]) if find["type"] == "range" else
                     ("keynum", fk["keynumidx"], fk["firstkey"], fk["keystep"]) if find["type"] == "keynum"
                     else ("unknown",))
                notes = (spec["notes"],) if "notes" in spec else ()     # (shown by COMMAND, as Redis)
                specs.append((" ".join(spec["flags"]), b, f, *notes))
            if specs:
                found[entry[0]] = tuple(specs)
            walk(entry[9] or [])

    walk(entries)
    for name in sorted(found):
        print(f"    {name!r}: {found[name]!r},")


if __name__ == "__main__":      # pragma: no cover
    _regenerate(int(sys.argv[1]))
