"""Introspection that clients and tools call, against a real redis-server (cluster-enabled, as a node is).

COMMAND INFO and DOCS (redis-cli's hints read them), COMMAND GETKEYSANDFLAGS (Redis's key specs),
LATENCY, MODULE, MEMORY, FUNCTION HELP, SCRIPT DEBUG and the CLUSTER introspection subcommands:
replies compared byte for byte, except where the server itself differs (said at each step).
"""
from __future__ import annotations

import re
import time

import pytest

from tests.blackbox.test_acl_vs_redis import Client
from tests.nodes import REDIS_SERVER, start_redis_server, wait_until

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


@pytest.fixture(scope="module")
def cluster_redis(tmp_path_factory):
    """One cluster-enabled redis-server for the module (DEBUG allowed, for LATENCY's samples)."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = start_redis_server(tmp_path_factory.mktemp("cluster-redis"), "--cluster-enabled", "yes",
                                "--enable-debug-command", "yes")
    client = Client(server.port)
    assert client("CLUSTER", "ADDSLOTSRANGE", "0", "16383")[0] == b"+OK\r\n"     # a one-node cluster, as a node is
    wait_until(lambda: b"cluster_state:ok" in client("CLUSTER", "INFO")[1], message="the cluster state ok")
    client.close()
    yield server
    server.stop()


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
NEWER = {b"client": (b"client|no-touch", b"client|setinfo"), b"cluster": (b"cluster|myshardid",)}


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


# -- LATENCY ------------------------------------------------------------------------------------

def _numbers_out(raw: bytes) -> bytes:
    # (RESP lengths move with the numbers: $N, and a graph line's width does not depend on them)
    return re.sub(rb"\d+", b"N", raw)


LATENCY_STEPS = [
    ("raw", "LATENCY", "LATEST"), ("raw", "LATENCY", "DOCTOR"), ("raw", "LATENCY", "HISTORY", "command"),
    ("raw", "LATENCY", "GRAPH", "command"), ("raw", "LATENCY", "RESET"), ("raw", "LATENCY", "HELP"),
    ("raw", "LATENCY"), ("raw", "LATENCY", "HISTORY"), ("raw", "LATENCY", "NOPE"),
    ("raw", "CONFIG", "SET", "latency-monitor-threshold", "-1"),
    ("raw", "CONFIG", "SET", "latency-monitor-threshold", "10"),
    ("raw", "CONFIG", "GET", "latency-monitor-threshold"),
    ("raw", "LATENCY", "DOCTOR"),
    ("raw", "DEBUG", "SLEEP", "0.05"), ("raw", "DEBUG", "SLEEP", "0"),
    ("numbers", "LATENCY", "LATEST"), ("numbers", "LATENCY", "HISTORY", "command"),
    ("numbers", "LATENCY", "GRAPH", "command"), ("numbers", "LATENCY", "DOCTOR"),
    ("raw", "LATENCY", "HISTORY", "fast-command"), ("raw", "LATENCY", "GRAPH", "nope"),
    ("raw", "SET", "k", "v"),
    ("shape", "LATENCY", "HISTOGRAM", "set", "nosuchcommand", "SET"), ("raw", "LATENCY", "HISTOGRAM", "nosuchcommand"),
    ("raw", "LATENCY", "RESET", "command", "nope"), ("raw", "LATENCY", "LATEST"),
    ("raw", "CONFIG", "SET", "slowlog-log-slower-than", "-1"), ("raw", "DEBUG", "SLEEP", "0.02"),
    ("numbers", "LATENCY", "DOCTOR"),
    ("raw", "CONFIG", "SET", "slowlog-log-slower-than", "100000"), ("numbers", "LATENCY", "DOCTOR"),
    ("raw", "CONFIG", "SET", "slowlog-log-slower-than", "10000"),
    ("raw", "CONFIG", "SET", "latency-monitor-threshold", "0"), ("raw", "LATENCY", "RESET"),
]


def _latency_run(port: int) -> list:
    client = Client(port)
    out = []
    try:
        client("CONFIG", "RESETSTAT")       # (the module's servers ran other tests' commands)
        for kind, *command in LATENCY_STEPS:
            raw, value = client(*command)
            if kind == "numbers":
                out.append(_numbers_out(raw))
                if command[1] == "LATEST":
                    (event, at, latest, worst), = value
                    assert event == b"command" and abs(at - time.time()) < 30 and 50 <= latest <= worst < 5000
            elif kind == "shape":
                histograms = dict(zip(value[::2], value[1::2]))
                assert list(histograms) == [b"set"]
                fields = dict(zip(histograms[b"set"][::2], histograms[b"set"][1::2]))
                assert fields[b"calls"] == 1 and len(fields[b"histogram_usec"]) == 2
                out.append(sorted(fields))
            else:
                out.append(raw)
    finally:
        client.close()
    return out


@pytest.mark.alone     # runs alone (Makefile): a 10 ms latency threshold, one event each side
def test_latency_like_redis(node, cluster_redis):
    """A DEBUG SLEEP past `latency-monitor-threshold` is a "command" sample on both. Timestamps and
    milliseconds are the measurement itself (Redis measured 54 ms for a 50 ms sleep here): the
    steps that show them are compared with every number replaced by N, and checked plausible."""
    mine, theirs = _latency_run(node.port), _latency_run(cluster_redis.port)
    differences = [(step, got, wanted) for step, got, wanted in zip(LATENCY_STEPS, mine, theirs) if got != wanted]
    assert not differences


def test_cluster_myshardid_names_the_members_shard(node):
    client = Client(node.port)
    try:
        assert client("CLUSTER", "MYSHARDID")[1] == client("CLUSTER", "MYID")[1]
    finally:
        client.close()
