"""Keyspace notifications byte for byte against a real redis-server.

A subscriber listens on `__key*__:*`; another connection sends commands; the
subscriber's whole byte stream (every keyspace and keyevent message, in
order) must be what Redis sends for the same commands. The commands are the
random pipelines' (every type, wrong types, MULTI/EXEC, options Redis
refuses) and a fixed list that reaches every event Redis 7.0 names.
"""
from __future__ import annotations

import random
import socket
import time

import hiredis
import pytest

from tests.blackbox.test_pipelines_vs_redis import comparable, draw, replies
from tests.nodes import by_port, call, encode_command, raw_connect, read_reply, wait_until

MARKER = b"*3\r\n$7\r\nmessage\r\n$6\r\nmarker\r\n$3\r\nend\r\n"

EVERY_EVENT = [
    # strings ("{t}" keeps every key in one slot: the node is a cluster)
    ["SET", "{t}s", "1"], ["SET", "{t}s", "2", "EX", "100"], ["SETNX", "{t}s", "x"], ["SETNX", "{t}n", "x"],
    ["GETSET", "{t}s", "3"], ["SETEX", "{t}s", "10", "v"], ["PSETEX", "{t}s", "10000", "v"],
    ["MSET", "{t}a", "1", "{t}b", "2"], ["MSETNX", "{t}c", "1", "{t}d", "2"], ["APPEND", "{t}a", "x"],
    ["SETRANGE", "{t}b", "3", "yy"], ["INCR", "{t}c"], ["DECRBY", "{t}c", "5"], ["INCRBYFLOAT", "{t}c", "1.5"],
    ["GETEX", "{t}a", "EX", "100"], ["GETEX", "{t}a", "PERSIST"], ["GETEX", "{t}a", "PERSIST"],
    ["GETDEL", "{t}a"], ["SETBIT", "{t}bits", "7", "1"], ["BITFIELD", "{t}bits", "SET", "u8", "8", "255"],
    ["BITFIELD", "{t}bits", "GET", "u8", "0"], ["BITOP", "OR", "{t}dest", "{t}bits", "{t}bits"],
    ["BITOP", "AND", "{t}dest", "{t}none"], ["PFADD", "{t}hll", "a", "b"], ["PFADD", "{t}hll", "a"],
    ["PFMERGE", "{t}hll2", "{t}hll"],
    # keys
    ["EXPIRE", "{t}b", "100"], ["PERSIST", "{t}b"], ["PEXPIRE", "{t}b", "-1"], ["EXPIREAT", "{t}zz", "1"],
    ["RENAME", "{t}c", "{t}c2"], ["RENAMENX", "{t}c2", "{t}d"], ["RENAME", "{t}d", "{t}d"],
    ["COPY", "{t}c2", "{t}copy"], ["DEL", "{t}copy", "{t}nothing", "{t}c2"], ["UNLINK", "{t}d", "{t}s"],
    ["SET", "{t}gone", "v", "PXAT", "1"], ["DEL", "{t}gone"],     # expired, not deleted, whatever the classes
    ["RPUSH", "{t}sortme", "3", "1", "2"], ["SORT", "{t}sortme", "STORE", "{t}sorted"],
    ["SORT", "{t}empty", "STORE", "{t}sorted"],
    # lists
    ["LPUSH", "{t}l", "a", "b"], ["RPUSH", "{t}l", "c"], ["LPUSHX", "{t}l", "z"], ["RPUSHX", "{t}nol", "z"],
    ["LINSERT", "{t}l", "BEFORE", "c", "q"], ["LINSERT", "{t}l", "BEFORE", "nope", "q"], ["LSET", "{t}l", "0", "y"],
    ["LREM", "{t}l", "0", "q"], ["LREM", "{t}l", "0", "nope"], ["LTRIM", "{t}l", "0", "-1"], ["LTRIM", "{t}l", "0", "1"],
    ["RPOPLPUSH", "{t}l", "{t}l2"], ["LMOVE", "{t}l", "{t}l2", "LEFT", "RIGHT"], ["LMOVE", "{t}l2", "{t}l2", "RIGHT", "LEFT"],
    ["LPOP", "{t}l2"], ["RPOP", "{t}l2", "5"], ["RPUSH", "{t}m", "1", "2", "3"], ["LMPOP", "1", "{t}m", "RIGHT"],
    ["BLPOP", "{t}m", "0.01"], ["BRPOP", "{t}m", "0.01"], ["BLMPOP", "0.01", "1", "{t}m", "LEFT"],
    ["RPUSH", "{t}m", "1"], ["BRPOPLPUSH", "{t}m", "{t}m2", "0.01"], ["BLMOVE", "{t}m2", "{t}m", "LEFT", "LEFT", "0.01"],
    ["LTRIM", "{t}m", "5", "10"],
    # hashes
    ["HSET", "{t}h", "f", "1", "g", "2"], ["HMSET", "{t}h", "f", "3"], ["HSETNX", "{t}h", "f", "1"],
    ["HSETNX", "{t}h", "new", "1"], ["HINCRBY", "{t}h", "f", "2"], ["HINCRBYFLOAT", "{t}h", "f", "0.5"],
    ["HDEL", "{t}h", "nope"], ["HDEL", "{t}h", "f", "g"], ["HDEL", "{t}h", "new"],
    # sets
    ["SADD", "{t}set", "a", "b", "c"], ["SADD", "{t}set", "a"], ["SREM", "{t}set", "a"], ["SMOVE", "{t}set", "{t}set2", "b"],
    ["SMOVE", "{t}set", "{t}set2", "c"], ["SADD", "{t}set", "x"], ["SMOVE", "{t}set", "{t}set", "x"],
    ["SPOP", "{t}set"], ["SADD", "{t}set", "1", "2"], ["SINTERSTORE", "{t}inter", "{t}set", "{t}set2"],
    ["SUNIONSTORE", "{t}union", "{t}set", "{t}set2"], ["SDIFFSTORE", "{t}union", "{t}set", "{t}set"],
    ["SREM", "{t}set", "1", "2"],
    # sorted sets
    ["ZADD", "{t}z", "1", "a", "2", "b", "3", "c", "4", "d"], ["ZADD", "{t}z", "1", "a"], ["ZADD", "{t}z", "INCR", "5", "a"],
    ["ZINCRBY", "{t}z", "1", "b"], ["ZREM", "{t}z", "nope"], ["ZREM", "{t}z", "b"],
    ["ZADD", "{t}z", "10", "e", "11", "f", "12", "g"], ["ZREMRANGEBYSCORE", "{t}z", "11", "11"],
    ["ZREMRANGEBYRANK", "{t}z", "0", "0"], ["ZADD", "{t}lex", "0", "a", "0", "b"],
    ["ZREMRANGEBYLEX", "{t}lex", "-", "(b"], ["ZREMRANGEBYLEX", "{t}lex", "-", "+"],
    ["ZPOPMIN", "{t}z"], ["ZPOPMAX", "{t}z"], ["BZPOPMIN", "{t}z", "0.01"], ["ZADD", "{t}z", "1", "a", "2", "b"],
    ["BZPOPMAX", "{t}z", "0.01"], ["ZMPOP", "1", "{t}z", "MIN"], ["ZADD", "{t}z", "1", "a", "2", "b"],
    ["BZMPOP", "0.01", "1", "{t}z", "MAX", "COUNT", "1"],
    ["ZUNIONSTORE", "{t}zu", "1", "{t}z"], ["ZINTERSTORE", "{t}zi", "2", "{t}z", "{t}none"],
    ["ZDIFFSTORE", "{t}zd", "1", "{t}z"], ["ZRANGESTORE", "{t}zr", "{t}z", "0", "-1"],
    ["ZRANGESTORE", "{t}zr", "{t}z", "5", "9"],
    # geo
    ["GEOADD", "{t}geo", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"],
    ["GEOSEARCHSTORE", "{t}gs", "{t}geo", "FROMMEMBER", "Palermo", "BYRADIUS", "500", "km", "ASC"],
    ["GEORADIUS", "{t}geo", "15", "37", "200", "km", "STORE", "{t}gr"],
    ["GEORADIUSBYMEMBER", "{t}geo", "Palermo", "1", "m", "STOREDIST", "{t}gr"],
    # reads: keymiss (m), and none for hits
    ["GET", "{t}missing"], ["HGET", "{t}missing", "f"], ["EXISTS", "{t}missing"], ["GET", "{t}sorted"],
    # a transaction and a script: their commands' events, in order
    ["MULTI"], ["SET", "{t}tx", "1"], ["INCR", "{t}tx"], ["DEL", "{t}tx"], ["EXEC"],
    ["EVAL", "redis.call('set', KEYS[1], 'v'); redis.call('expire', KEYS[1], 100); return 1", "1", "{t}lua"],
    # errors emit nothing
    ["INCR", "{t}geo"], ["LPUSH", "{t}z", "a"],
    ["FLUSHALL"],
]


def _stream(port: int, flags: bytes, commands: list[list], protocol: int = 2) -> tuple[bytes, list]:
    """What a `__key*__:*` subscriber receives while `commands` run, and the commands' replies."""
    subscriber, client = raw_connect(port), raw_connect(port)
    try:
        client.sendall(encode_command("CONFIG", "SET", "notify-keyspace-events", flags))
        assert replies(client, 1) == [b"OK"]
        if protocol == 3:
            subscriber.sendall(encode_command("HELLO", "3"))
            replies(subscriber, 1)
        subscriber.sendall(encode_command("PSUBSCRIBE", "__key*__:*") + encode_command("SUBSCRIBE", "marker"))
        replies(subscriber, 2)
        client.sendall(b"".join(encode_command(*c) for c in commands))
        answers = [comparable(reply) for reply in replies(client, len(commands))]
        client.sendall(encode_command("PUBLISH", "marker", "end"))
        replies(client, 1)
        marker = MARKER if protocol == 2 else b">" + MARKER[1:]
        received = b""
        subscriber.settimeout(10)
        while not received.endswith(marker):
            data = subscriber.recv(1 << 16)
            assert data, "subscriber disconnected"
            received += data
        return received, answers
    finally:
        client.sendall(encode_command("CONFIG", "SET", "notify-keyspace-events", ""))
        replies(client, 1)
        subscriber.close()
        client.close()


@pytest.mark.parametrize("flags", [b"KEA", b"KEAnm", b"Kl", b"Eg$", b"Ez", b"KEshxe", b"K"])
def test_every_event_like_redis(node, redis_server, flags):
    mine = _stream(node.port, flags, EVERY_EVENT)
    theirs = _stream(redis_server.port, flags, EVERY_EVENT)
    assert mine[0].split(b"\r\n") == theirs[0].split(b"\r\n")
    assert mine[1] == theirs[1]
    if flags in (b"KEA", b"KEAnm"):
        assert theirs[0].count(b"pmessage") > 200     # the list really reaches the events


@pytest.mark.parametrize("seed", range(6))
def test_random_commands_notify_like_redis(node, redis_server, seed):
    rng = random.Random(seed)
    # (not SET ... PXAT 1: a key set already expired is removed by whichever comes
    # first, an access or the active cycle, so its "expired" event comes when it will)
    commands = [c for c in (draw(rng, "{n}") for _ in range(400))
                if c[0] not in (b"SUBSCRIBE", b"UNSUBSCRIBE", b"WATCH") and not (c[0] == b"SET" and b"PXAT" in c)]
    commands.append([b"EXEC"])          # no transaction left open before the marker
    protocol = 2 + seed % 2
    flags = b"KEAnm" if seed % 3 else b"KEA"
    mine = _stream(node.port, flags, commands, protocol)
    theirs = _stream(redis_server.port, flags, commands, protocol)
    assert mine[0].split(b"\r\n") == theirs[0].split(b"\r\n")
    assert mine[1] == theirs[1]


def test_config_like_redis(node, redis_server):
    for value in (b"KEA", b"AKE", b"Kx$", b"gE$lshzxetdnmK", b"", b"KEAnm", b"Ag"):
        got = []
        for port in (node.port, redis_server.port):
            sock = raw_connect(port)
            sock.sendall(encode_command("CONFIG", "SET", "notify-keyspace-events", value)
                         + encode_command("CONFIG", "GET", "notify-keyspace-events")
                         + encode_command("CONFIG", "SET", "notify-keyspace-events", "KEq")
                         + encode_command("CONFIG", "SET", "notify-keyspace-events", ""))
            got.append([comparable(r) for r in replies(sock, 4)])
            sock.close()
        assert got[0] == got[1], value


def _expect(sock: socket.socket, wanted: bytes, timeout: float = 10.0) -> bytes:
    received = b""
    sock.settimeout(timeout)
    while wanted not in received:
        data = sock.recv(1 << 16)
        assert data, "subscriber disconnected"
        received += data
    return received


def test_expired_events_like_redis(node, redis_server):
    """A key whose deadline passes is removed by the active cycle: "expired", as Redis sends it."""
    streams = []
    for port in (node.port, redis_server.port):
        subscriber, client = raw_connect(port), raw_connect(port)
        client.sendall(encode_command("CONFIG", "SET", "notify-keyspace-events", "Ex"))
        replies(client, 1)
        subscriber.sendall(encode_command("SUBSCRIBE", "__keyevent@0__:expired"))
        replies(subscriber, 1)
        client.sendall(encode_command("SET", "{e}1", "v", "PX", "30") + encode_command("SET", "{e}2", "v", "PX", "60"))
        replies(client, 2)
        received = _expect(subscriber, b"{e}2")
        received += _expect(subscriber, b"{e}1") if b"{e}1" not in received else b""
        # (both deadlines may have passed when a cycle runs: Redis then takes them in its hashtable's order)
        streams.append(sorted(received.split(b"*3\r\n")))
        client.sendall(encode_command("CONFIG", "SET", "notify-keyspace-events", ""))
        replies(client, 1)
        subscriber.close()
        client.close()
    assert streams[0] == streams[1]
    assert sum(part.count(b"message") for part in streams[0]) == 2


def test_evicted_events(node):
    """Keys evicted under maxmemory are announced one "evicted" each (which ones depends on the policy)."""
    subscriber, client = raw_connect(node.port), raw_connect(node.port)
    try:
        client.sendall(encode_command("CONFIG", "SET", "notify-keyspace-events", "Ee")
                       + encode_command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"))
        replies(client, 2)
        subscriber.sendall(encode_command("SUBSCRIBE", "__keyevent@0__:evicted"))
        replies(subscriber, 1)
        client.sendall(b"".join(encode_command("SET", f"ev{i}", "x" * 1000) for i in range(200)))
        replies(client, 200)
        client.sendall(encode_command("CONFIG", "SET", "maxmemory", "100000"))
        replies(client, 1)
        client.sendall(encode_command("DBSIZE"))
        left = replies(client, 1)[0]
        assert 0 < left < 200
        received = _expect(subscriber, b"ev", 10)
        while received.count(b"*3\r\n") < 200 - left:
            received += subscriber.recv(1 << 16)
        assert received.count(b"$7\r\nmessage\r\n$22\r\n__keyevent@0__:evicted\r\n") == 200 - left
    finally:
        client.sendall(encode_command("CONFIG", "SET", "maxmemory", "0")
                       + encode_command("CONFIG", "SET", "maxmemory-policy", "noeviction")
                       + encode_command("CONFIG", "SET", "notify-keyspace-events", ""))
        replies(client, 3)
        subscriber.close()
        client.close()


# -- replicas ------------------------------------------------------------------------------

def _wanting_events(port: int) -> int:
    sock = raw_connect(port)
    try:
        sock.sendall(encode_command("INFO", "replication"))
        info = read_reply(sock).decode()
    finally:
        sock.close()
    return int(info.split("hypercache_replicas_wanting_events:")[1].split()[0])


def _replica_events(primary_port: int, replica_port: int, commands: list, hypercache: bool) -> list:
    """(channel, message) of every keyspace/keyevent message a subscriber on the replica gets
    while `commands` run on the primary, from the first one on (a hypercache primary starts
    naming events once the replica's wish reaches it: the replica tells it at CONFIG SET, in
    an ACK of its own, without waiting for a write's)."""
    subscriber, client, admin = raw_connect(replica_port), raw_connect(primary_port), raw_connect(replica_port)
    try:
        admin.sendall(encode_command("CONFIG", "SET", "notify-keyspace-events", "KEA"))
        replies(admin, 1)
        if hypercache:
            wait_until(lambda: _wanting_events(primary_port) >= 1, timeout=10,
                       message="the replica's wish for events never reached its primary")
        subscriber.sendall(encode_command("PSUBSCRIBE", "__key*__:*"))
        read_reply(subscriber)
        reader = hiredis.Reader()

        def message(timeout: float) -> list | None:
            deadline = time.monotonic() + timeout
            while True:
                got = reader.gets()
                if got is not False:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                subscriber.settimeout(left)
                try:
                    data = subscriber.recv(1 << 16)
                except socket.timeout:
                    return None
                assert data, "subscriber disconnected"
                reader.feed(data)

        client.sendall(b"".join(encode_command(*c) for c in commands) + encode_command("SET", "{t}last", "1"))
        replies(client, len(commands) + 1)
        events = []
        while True:
            got = message(10)
            assert got is not None, f"no end marker; so far {events[-5:]}"
            events.append((got[2], got[3]))
            if got[2:] == [b"__keyevent@0__:set", b"{t}last"]:
                return events
    finally:
        admin.sendall(encode_command("CONFIG", "SET", "notify-keyspace-events", ""))
        replies(admin, 1)
        for sock in (subscriber, client, admin):
            sock.close()


def test_a_replica_notifies_the_writes_it_applies_like_a_redis_replica(shared_three, redis_server_factory):
    """A subscriber on a replica hears what a redis-server replica's subscriber hears for the same
    commands on the primary (Redis's replica emits the commands its master propagates)."""
    slot = int(call(shared_three[0], "CLUSTER", "KEYSLOT", "{t}"))
    by = by_port(shared_three)
    primary = replica = None
    for first, last, owner, *replicas in call(shared_three[0], "CLUSTER", "SLOTS"):
        if first <= slot <= last:
            primary, replica = by[owner[1]], by[replicas[0][1]]
    assert primary is not None and replica is not None
    master = redis_server_factory()
    redis_replica = redis_server_factory("--replicaof", "127.0.0.1", str(master.port))
    wait_until(lambda: b"master_link_status:up" in call(redis_replica, "INFO", "replication"), timeout=15,
               message="redis-server replica never linked")
    # (not the commands whose effect is random or timed on the replica's side: SPOP's member
    # is the primary's choice, which a side-by-side run cannot reproduce)
    commands = [c for c in EVERY_EVENT if c[0] not in ("SPOP",)] + [["SADD", "{t}one", "x"], ["SPOP", "{t}one"]]
    theirs = _replica_events(master.port, redis_replica.port, commands, hypercache=False)
    mine = _replica_events(primary.port, replica.port, commands, hypercache=True)
    assert len(theirs) > 150
    assert mine == theirs
