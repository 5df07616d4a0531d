"""Introspection that clients and tools call, against a real redis-server (cluster-enabled, as a node is).

COMMAND DOCS (redis-cli's hints read it), COMMAND GETKEYSANDFLAGS (Redis's key specs), MODULE,
MEMORY, FUNCTION HELP, SCRIPT DEBUG and the CLUSTER introspection subcommands: replies compared
byte for byte, except where the server itself differs (said at each step).
"""
from __future__ import annotations

import pytest

from tests.blackbox.test_acl_vs_redis import Client
from tests.nodes import wait_until

GETKEYS = [
    ("get", "k"), ("set", "k", "v"), ("set", "k", "v", "get"), ("set", "k", "v", "nx", "ex", "10"),
    ("smove", "a", "b", "m"), ("zunionstore", "d", "2", "a", "b"), ("zinter", "2", "a", "b"),
    ("georadius", "k", "1", "2", "3", "m", "store", "x"), ("georadius", "k", "1", "2", "3", "m", "storedist", "y"),
    ("sort", "k", "by", "w*", "get", "#", "store", "d"), ("sort_ro", "k", "limit", "0", "1"),
    ("bitfield", "k", "get", "u8", "0"), ("bitfield", "k", "set", "u8", "0", "1"), ("bitfield_ro", "k", "get", "u8", "0"),
    ("lmove", "a", "b", "left", "right"), ("blmpop", "0", "2", "a", "b", "left"), ("lmpop", "1", "a", "right"),
    ("eval", "return 1", "2", "a", "b", "x"), ("fcall", "f", "1", "a"), ("rename", "a", "b"), ("copy", "a", "b"),
    ("object", "encoding", "k"), ("memory", "usage", "k"), ("del", "a", "b"), ("mset", "a", "1", "b", "2"),
    ("msetnx", "a", "1", "b", "2"), ("getex", "k", "ex", "1"), ("getdel", "k"), ("lpush", "k", "v"),
    ("sinterstore", "d", "a", "b"), ("zrangestore", "d", "s", "0", "-1"), ("pfmerge", "d", "a", "b"),
    ("bitop", "and", "d", "a", "b"), ("restore", "k", "0", "x"), ("sintercard", "2", "a", "b"), ("expire", "k", "1"),
    ("touch", "a", "b"), ("pfcount", "a", "b"), ("incr", "k"), ("append", "k", "v"), ("hset", "h", "f", "v"),
    ("zadd", "z", "1", "m"), ("geosearchstore", "d", "s", "frommember", "m", "byradius", "1", "m"),
    ("watch", "a", "b"), ("exists", "a"), ("dump", "k"), ("unlink", "a"), ("spublish", "ch", "m"),
    ("get",), ("nosuchcommand", "k"), ("ping",), ("zunionstore", "d", "x", "a"), ("eval", "return 1", "-1"),
]

STEPS = [
    ("raw", "MODULE", "LIST"), ("raw", "MODULE", "HELP"), ("raw", "MODULE", "LOAD", "/nonexistent.so"),
    ("raw", "MODULE", "LOADEX", "/x.so"), ("raw", "MODULE", "UNLOAD", "x"), ("raw", "MODULE"),
    ("raw", "MEMORY", "HELP"), ("raw", "MEMORY", "PURGE"), ("fields", "MEMORY", "STATS"),
    ("raw", "FUNCTION", "HELP"), ("raw", "SCRIPT", "DEBUG", "no"), ("raw", "SCRIPT", "DEBUG", "maybe"),
    ("raw", "CLUSTER", "COUNT-FAILURE-REPORTS", "nosuchnode"), ("raw", "CLUSTER", "SAVECONFIG"),
    ("raw", "CLUSTER", "LINKS"),     # a lone member has no peers: no links on either
    ("raw", "SET", "k", "v"), ("fields", "MEMORY", "STATS"),
    ("raw", "LATENCY", "HELP"), ("raw", "ACL", "HELP"),
    *[("raw", "COMMAND", "GETKEYSANDFLAGS", *call) for call in GETKEYS],
    *[("raw", "COMMAND", "GETKEYS", *call) for call in GETKEYS[:12]],
]


def _run(port: int) -> list:
    client = Client(port)
    out = []
    try:
        myid = client("CLUSTER", "MYID")[1]
        assert client("CLUSTER", "COUNT-FAILURE-REPORTS", myid)[0] == b":0\r\n"
        for kind, *command in STEPS:
            raw, value = client(*command)
            if kind == "fields":        # the figures are each server's own; the fields and their order match
                fields = value[::2]
                db0 = value[value.index(b"db.0") + 1][::2] if b"db.0" in value else None
                out.append((fields, db0))
            else:
                out.append(raw)
    finally:
        client("FLUSHALL")
        client.close()
    return out


@pytest.fixture
def cluster_redis(redis_server_factory):
    server = redis_server_factory("--cluster-enabled", "yes")
    client = Client(server.port)
    assert client("CLUSTER", "ADDSLOTSRANGE", "0", "16383")[0] == b"+OK\r\n"     # a one-node cluster, as a node is
    wait_until(lambda: b"cluster_state:ok" in client("CLUSTER", "INFO")[1], message="the cluster state ok")
    client.close()
    return server


def test_introspection_like_redis(node, cluster_redis):
    mine, theirs = _run(node.port), _run(cluster_redis.port)
    differences = [(step, got, wanted) for step, got, wanted in zip(STEPS, mine, theirs) if got != wanted]
    assert not differences


def _docs(port: int, protocol: int) -> dict:
    client = Client(port)
    try:
        if protocol == 3:
            client("HELLO", "3")
        listed = client("COMMAND", "LIST")[1]
        docs = {}
        for name in listed:
            if b"|" not in name:
                docs[name] = client("COMMAND", "DOCS", name)
        return docs
    finally:
        client.close()


def _sorted_subcommands(doc):
    """A container's docs with its subcommands sorted: Redis lists them in its dict's seeded order."""
    if isinstance(doc, dict):
        return {k: (sorted(v.items()) if k == b"subcommands" else v) for k, v in doc.items()}
    fields = dict(zip(doc[::2], doc[1::2]))
    if b"subcommands" in fields:
        subs = fields[b"subcommands"]
        fields[b"subcommands"] = sorted(zip(subs[::2], subs[1::2]))
    return fields


# subcommands Redis 7.0 lacks (7.2's): left out of the comparison of their container
NEWER = {b"client": (b"client|no-touch", b"client|setinfo")}


@pytest.mark.parametrize("protocol", [2, 3])
def test_command_docs_like_redis(node, redis_server, protocol):
    mine, theirs = _docs(node.port, protocol), _docs(redis_server.port, protocol)
    common = sorted(set(mine) & set(theirs))
    assert len(common) >= 200
    for name in common:
        (raw, value), (their_raw, their_value) = mine[name], theirs[name]
        if raw == their_raw:
            continue
        entry = value[name] if isinstance(value, dict) else value[1]
        their_entry = their_value[name] if isinstance(their_value, dict) else their_value[1]
        got, wanted = _sorted_subcommands(entry), _sorted_subcommands(their_entry)
        newer = NEWER.get(name, ())
        got[b"subcommands"] = [(k, v) for k, v in got[b"subcommands"] if k not in newer]
        assert got == wanted, name


def _infos(port: int) -> dict:
    client = Client(port)
    try:
        return {name: client("COMMAND", "INFO", name) for name in client("COMMAND", "LIST")[1] if b"|" not in name}
    finally:
        client.close()


def test_command_info_like_redis(node, cluster_redis):
    """Flags, arity, ACL categories, tips and key specs of every command both have (cluster-enabled:
    Redis's tips are the same either way)."""
    mine, theirs = _infos(node.port), _infos(cluster_redis.port)
    common = sorted(set(mine) & set(theirs))
    assert len(common) >= 200
    for name in common:
        (raw, value), (their_raw, their_value) = mine[name], theirs[name]
        if raw == their_raw:
            continue
        entry, their_entry = value[0], their_value[0]
        newer = NEWER.get(name, ())
        subs = sorted(sub for sub in entry[9] if sub[0] not in newer)
        assert entry[:9] == their_entry[:9] and subs == sorted(their_entry[9]), name
