"""INFO's keyspace_hits and keyspace_misses, command by command, against a real redis-server.

They are a cache's hit ratio, so they must count what Redis counts: a read's
lookup counts a hit or a miss (GET, HGET, TYPE, EXISTS, TTL...); a write's
lookup does not (SET NX, INCR, HSET, LPOP, SADD, ZADD...), nor do DEL,
RANDOMKEY or MEMORY USAGE. Each command runs alone on the same small keyspace
on both servers, and the two counters must move alike.
"""
from __future__ import annotations

from tests.nodes import encode_command, raw_connect, read_reply

SETUP = [("SET", "s", "10"), ("HSET", "h", "f", "1"), ("RPUSH", "l", "a", "b"), ("SADD", "t", "a", "b"),
         ("ZADD", "z", "1", "a"), ("SADD", "t2", "b")]
COMMANDS = [
    "GET s", "GET nx", "SET s 1", "SET nx 1", "SET s 2 GET", "SET nx 1 GET", "SET s 3 NX", "SET s 4 XX",
    "SETNX s 1", "GETSET s 5", "GETDEL s", "GETEX s EX 100", "GETEX s PERSIST", "SETEX s 100 v",
    "APPEND s x", "STRLEN s", "INCR nx", "INCRBY s 1", "INCRBYFLOAT s 1", "DECR s", "GETRANGE s 0 1",
    "SETRANGE s 1 x", "MGET s nx", "MSET s 1 nx 2", "MSETNX nx 1 nx2 2", "LCS s s", "LCS h s",
    "DEL s", "UNLINK s", "EXISTS s nx", "TYPE s", "TYPE nx", "EXPIRE s 100", "EXPIREAT s 99999999999",
    "TTL s", "PTTL s", "EXPIRETIME s", "PERSIST s", "TOUCH s nx", "RENAME s nx", "COPY s nx",
    "OBJECT ENCODING s", "OBJECT FREQ s", "OBJECT REFCOUNT s", "MEMORY USAGE s", "RANDOMKEY", "WATCH s",
    "HSET h f 2", "HSETNX h g 1", "HGET h f", "HMGET h f g", "HDEL h g", "HLEN h", "HEXISTS h f", "HKEYS h",
    "HGETALL nx", "HINCRBY h f 1", "HINCRBYFLOAT h f 1", "HSTRLEN h f", "HRANDFIELD h", "HSCAN h 0",
    "LPUSH l x", "RPUSH l y", "LPUSHX l z", "LPOP l", "RPOP l", "RPOP l 2", "LLEN l", "LRANGE l 0 -1",
    "LINDEX nx 0", "LSET l 0 q", "LINSERT l BEFORE a r", "LREM l 1 a", "LTRIM l 0 10", "LPOS l a",
    "LMOVE l l2 LEFT RIGHT", "RPOPLPUSH l l2", "LMPOP 1 l LEFT", "LMPOP 1 nx LEFT", "BLPOP l 1",
    "BLMOVE l l2 LEFT LEFT 1",
    "SADD t c", "SREM t a", "SCARD t", "SISMEMBER t a", "SMISMEMBER t a b", "SPOP t", "SRANDMEMBER t 2",
    "SMOVE t t2 b", "SINTER t t2", "SINTERSTORE d t t2", "SUNIONSTORE t t t2", "SDIFF t t2", "SINTERCARD 2 t t2",
    "ZADD z 2 b", "ZINCRBY z 1 a", "ZREM z a", "ZSCORE z a", "ZRANGE z 0 -1", "ZRANGESTORE d z 0 -1",
    "ZCARD z", "ZCOUNT z 0 10", "ZRANK z a", "ZPOPMIN z", "ZMPOP 1 z MIN", "BZPOPMIN z 1",
    "ZUNIONSTORE d 1 z", "ZINTER 1 z", "ZREMRANGEBYSCORE z 5 6",
]


def _tagged(words) -> list[str]:
    """Every key in its own name under one hash tag: multi-key commands stay in one slot."""
    keys = {"s", "nx", "nx2", "h", "l", "l2", "t", "t2", "d", "z"}
    return ["{ks}" + word if word in keys else word for word in words]


def _moves(server) -> dict[str, tuple[int, int]]:
    moves = {}
    with server.client(protocol=2) as r:
        sock = raw_connect(server.port)
        for command in COMMANDS:
            r.flushall()
            for setup in SETUP:
                r.execute_command(*_tagged(setup))
            r.config_resetstat()
            sock.sendall(encode_command(*_tagged(command.split())))
            read_reply(sock)
            stats = r.info("stats")
            moves[command] = (stats["keyspace_hits"], stats["keyspace_misses"])
        sock.close()
    return moves


def test_keyspace_hits_and_misses_move_as_in_redis(node, redis_server):
    ours, theirs = _moves(node), _moves(redis_server)
    differ = {command: (ours[command], theirs[command]) for command in COMMANDS if ours[command] != theirs[command]}
    assert not differ, "(hits, misses) hypercache vs redis-server: %r" % differ
    assert theirs["SET s 3 NX"] == (0, 0) and theirs["GET nx"] == (0, 1) and theirs["EXISTS s nx"] == (1, 1)
