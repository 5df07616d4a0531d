"""Server and CLUSTER commands on a real node, through redis-py (RESP2/RESP3), redis-cli and raw sockets.

Where Redis's behaviour is the reference, the same request goes to a real
redis-server 7.0 (the `redis_server` fixture) and the replies are compared.
"""
from __future__ import annotations

import shutil
import subprocess
import time

import hiredis
import pytest
import redis

from tests.nodes import NodeProcess, call, encode_command, read_reply, read_until_closed, wait_until

REDIS_CLI = shutil.which("redis-cli")


def raw_bytes(node: NodeProcess, *args, protocol: int = 2) -> bytes:
    """The exact bytes of one reply (read until hiredis sees it complete)."""
    reader = hiredis.Reader()
    with node.raw() as sock:
        if protocol == 3:
            sock.sendall(encode_command("HELLO", "3"))
            read_reply(sock)
        sock.sendall(encode_command(*args))
        data = b""
        while True:
            chunk = sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
            reader.feed(chunk)
            if reader.gets() is not False:
                return data


def info_fields(text: bytes) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.decode().split("\r\n") if line and not line.startswith("#"))


# -- INFO ----------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", [2, 3])
def test_info_through_redis_py(node, protocol):
    with node.client(protocol=protocol) as r:
        r.set("a", "1")
        r.set("b", "2", ex=100)
        info = r.info()
        assert info["redis_version"] == "7.0.15" and info["redis_mode"] == "cluster"
        assert info["cluster_enabled"] == 1 and info["tcp_port"] == node.port
        assert info["db0"] == {"keys": 2, "expires": 1, "avg_ttl": pytest.approx(100_000, abs=5_000)}
        assert info["used_memory"] > 0 and info["used_memory_rss"] > info["used_memory"]
        assert info["maxmemory_policy"] == "noeviction" and info["role"] == "master"
        assert "cmdstat_set" not in info                # commandstats is not a default section
        stats = r.info("commandstats")
        assert stats["cmdstat_set"]["calls"] >= 2
        assert set(r.info("cpu")) >= {"used_cpu_sys", "used_cpu_user"}


def test_info_bytes_are_sections_with_crlf_in_redis_order(node):
    text = call(node, "INFO", "keyspace", "server")
    assert text.startswith(b"# Server\r\nredis_version:7.0.15\r\n")
    assert b"\r\n\r\n# Keyspace\r\n" in text and text.endswith(b"\r\n")
    assert b"\n" not in text.replace(b"\r\n", b"")
    headers = [line for line in call(node, "INFO", "everything").split(b"\r\n") if line.startswith(b"#")]
    assert headers == [b"# Server", b"# Clients", b"# Memory", b"# Persistence", b"# Stats",
                       b"# Replication", b"# CPU", b"# Modules", b"# Commandstats", b"# Errorstats",
                       b"# Latencystats", b"# Cluster", b"# Keyspace"]
    assert call(node, "INFO", "nosuchsection") == b""
    verbatim = raw_bytes(node, "INFO", "server", protocol=3)
    assert verbatim.startswith(b"=") and b"\r\ntxt:# Server\r\n" in verbatim


def test_info_field_names_are_redis_field_names(node, redis_server):
    ours = info_fields(call(node, "INFO", "everything"))
    theirs = info_fields(call(redis_server, "INFO", "everything"))
    # hypercache's own fields carry its name (replication state, version)
    ours = {k for k in ours
            if not k.startswith(("cmdstat_", "errorstat_", "latency_percentiles_", "db", "hypercache_"))}
    assert ours <= set(theirs), f"fields Redis does not have: {sorted(ours - set(theirs))}"


# -- CONFIG --------------------------------------------------------------------------------

def test_config_get_save_and_appendonly_are_arrays_of_two(node):
    # what redis-benchmark reads at start
    assert call(node, "CONFIG", "GET", "save") == [b"save", b""]
    assert call(node, "CONFIG", "GET", "appendonly") == [b"appendonly", b"no"]
    assert call(node, "CONFIG", "GET", "nosuch") == []


@pytest.mark.parametrize("protocol", [2, 3])
def test_config_set_and_get_through_redis_py(node, protocol):
    with node.client(protocol=protocol, decode_responses=True) as r:
        try:
            assert r.config_set("maxmemory", "100mb") is True
            assert r.config_get("maxmemory") == {"maxmemory": "104857600"}
            r.config_set("maxmemory-policy", "allkeys-lru")
            got = r.config_get("maxmemory*")
            assert got["maxmemory-policy"] == "allkeys-lru" and got["maxmemory-samples"] == "5"
            assert r.info("memory")["maxmemory_policy"] == "allkeys-lru"
            assert r.config_get("cluster-enabled") == {"cluster-enabled": "yes"}
            assert r.config_get("port") == {"port": str(node.port)}
        finally:
            r.config_set("maxmemory", "0")
            r.config_set("maxmemory-policy", "noeviction")
    reply = call(node, "CONFIG", "GET", "timeout", "maxclients", protocol=3)
    assert reply == {b"timeout": b"0", b"maxclients": b"10000"} or reply == [b"timeout", b"0", b"maxclients", b"10000"]


def test_config_set_is_atomic(node):
    with pytest.raises(hiredis.ReplyError):
        call(node, "CONFIG", "SET", "timeout", "7", "maxmemory-policy", "bogus")
    assert call(node, "CONFIG", "GET", "timeout") == [b"timeout", b"0"]


@pytest.mark.parametrize("args", [
    ("CONFIG", "SET", "foo", "bar"),
    ("CONFIG", "SET", "maxmemory", "abc"),
    ("CONFIG", "SET", "maxmemory", "1.5gb"),
    ("CONFIG", "SET", "maxmemory-policy", "bogus"),
    ("CONFIG", "SET", "maxmemory", "1", "maxmemory", "2"),
    ("CONFIG", "SET", "timeout", "-1"),
    ("CONFIG", "SET", "maxclients", "0"),
    ("CONFIG", "SET", "maxmemory-samples", "0"),
    ("CONFIG", "SET", "protected-mode", "maybe"),
    ("CONFIG", "SET", "proto-max-bulk-len", "10"),
    ("CONFIG", "SET", "databases", "2"),
    ("CONFIG", "SET", "maxmemory"),
    ("CONFIG", "GET"),
    ("CONFIG", "NOSUCH"),
    ("COMMAND", "GETKEYS", "nosuch", "a"),
    ("COMMAND", "GETKEYS", "ping", "x"),
    ("COMMAND", "GETKEYS", "get"),
    ("COMMAND", "LIST", "FILTERBY", "foo", "x"),
    ("COMMAND", "COUNT", "x"),
    ("FLUSHALL", "foo"),
    ("MEMORY", "USAGE", "k", "SAMPLES"),
])
def test_error_texts_match_redis(node, redis_server, args):
    def error_of(target) -> str | None:
        try:
            call(target, *args)
        except hiredis.ReplyError as error:
            return str(error)
        return None
    expected = error_of(redis_server)
    assert expected is not None
    assert error_of(node) == expected


def test_cluster_error_texts(node):
    # The same texts as a cluster-enabled redis-server 7.0.15 sends.
    for args, text in [
        (("CLUSTER", "COUNTKEYSINSLOT", "16384"), "ERR Invalid slot"),
        (("CLUSTER", "COUNTKEYSINSLOT", "x"), "ERR value is not an integer or out of range"),
        (("CLUSTER", "GETKEYSINSLOT", "1", "-1"), "ERR Invalid slot or number of keys"),
        (("CLUSTER", "GETKEYSINSLOT", "16384", "1"), "ERR Invalid slot or number of keys"),
        (("CLUSTER", "KEYSLOT"), "ERR wrong number of arguments for 'cluster|keyslot' command"),
        (("CLUSTER", "foo"), "ERR unknown subcommand 'foo'. Try CLUSTER HELP."),
        (("SWAPDB", "0", "1"), "ERR SWAPDB is not allowed in cluster mode"),
    ]:
        with pytest.raises(hiredis.ReplyError) as error:
            call(node, *args)
        assert str(error.value) == text


# -- COMMAND -------------------------------------------------------------------------------

def _entries(reply) -> dict[bytes, list]:
    found = {}
    for entry in reply:
        found[entry[0]] = entry
        for sub in entry[9]:
            found[sub[0]] = sub
    return found


def test_command_table_matches_redis_for_every_shared_command(node, redis_server):
    ours = _entries(call(node, "COMMAND"))
    theirs = _entries(call(redis_server, "COMMAND"))
    compared = 0
    mismatches = {}
    for name, entry in ours.items():
        reference = theirs.get(name)
        if reference is None:
            continue      # e.g. CLIENT SETINFO (Redis 7.2), which redis-py sends
        compared += 1
        mine = [entry[1], sorted(entry[2]), entry[3], entry[4], entry[5], entry[6], sorted(entry[7])]
        real = [reference[1], sorted(reference[2]), reference[3], reference[4], reference[5],
                reference[6], sorted(reference[7])]
        if mine != real:
            mismatches[name] = (mine, real)
    assert compared >= 40
    assert not mismatches


def test_command_count_info_docs_list_getkeys(node):
    with node.client(protocol=2) as r:
        everything = call(node, "COMMAND")
        assert call(node, "COMMAND", "COUNT") == len(everything)
        get, missing, config_get = call(node, "COMMAND", "INFO", "get", "nosuch", "config|get")
        assert get[:6] == [b"get", 2, [b"readonly", b"fast"], 1, 1, 1] and missing is None
        assert config_get[0] == b"config|get"
        docs = call(node, "COMMAND", "DOCS", "get", "nosuch")
        assert docs[0] == b"get" and len(docs) == 2
        names = call(node, "COMMAND", "LIST")
        assert b"get" in names and b"config|get" in names and b"cluster|slots" in names
        assert sorted(call(node, "COMMAND", "LIST", "FILTERBY", "PATTERN", "cluster|s*")) == \
            [b"cluster|saveconfig", b"cluster|set-config-epoch", b"cluster|setslot", b"cluster|shards",
             b"cluster|slaves", b"cluster|slots"]
        assert b"hset" in call(node, "COMMAND", "LIST", "FILTERBY", "ACLCAT", "hash")
        assert call(node, "COMMAND", "GETKEYS", "mset", "a", "1", "b", "2") == [b"a", b"b"]
        assert call(node, "COMMAND", "GETKEYSANDFLAGS", "get", "k") == [[b"k", [b"RO", b"access"]]]
        # redis-py's own parser reads the table (RESP2)
        table = r.command()
        assert table["get"]["arity"] == 2 and table["mset"]["step_count"] == 2
    with node.client(protocol=3) as r3:
        assert r3.command()["mget"]["last_key_pos"] == -1


def test_command_entry_bytes_match_redis_in_resp3(node, redis_server):
    for name in ("get", "mget", "auth", "dbsize", "config|set", "cluster|myid"):
        ours = raw_bytes(node, "COMMAND", "INFO", name, protocol=3)
        theirs = raw_bytes(redis_server, "COMMAND", "INFO", name, protocol=3)
        assert ours == theirs, name


# -- keyspace-wide and server commands ---------------------------------------------------------

def test_dbsize_flush_time_memory(node):
    with node.client(protocol=2) as r:
        r.mset({"{t}a": "x" * 100, "{t}b": "y"})
        r.rpush("list", *[b"v%d" % i for i in range(100)])
        assert r.dbsize() == 3
        usage = r.memory_usage("{t}a")
        assert 100 < usage < 1000
        assert r.memory_usage("list") > 100 * 2
        assert r.memory_usage("nosuch") is None
        assert r.execute_command("MEMORY", "USAGE", "{t}a", "SAMPLES", "5") == usage
        assert r.flushall(asynchronous=True) is True and r.dbsize() == 0
        r.set("k", "v")
        assert r.flushdb() is True and r.dbsize() == 0
        seconds, micros = r.time()
        assert abs(seconds - time.time()) < 60 and 0 <= micros < 1_000_000
        assert r.lastsave().timestamp() <= time.time() + 1
        assert r.execute_command("ROLE") == [b"master", 0, []]
        stats = r.memory_stats()
        assert stats["keys.count"] == 0
        with pytest.raises(redis.ResponseError, match="no persistence"):
            r.save()
        with pytest.raises(redis.ResponseError, match="no persistence"):
            r.bgsave()


def test_flushall_invalidates_watch(node):
    with node.client(protocol=2) as r, node.client(protocol=2) as other:
        r.set("w", "1")
        with r.pipeline() as pipe:
            pipe.watch("w")
            other.flushall()
            pipe.multi()
            pipe.set("w", "2")
            with pytest.raises(redis.WatchError):
                pipe.execute()


def test_debug_sleep_and_object(node):
    with node.client(protocol=2) as r:
        started = time.monotonic()
        assert r.execute_command("DEBUG", "SLEEP", "0.2") == b"OK"
        assert time.monotonic() - started >= 0.19
        r.set("s", "hello")
        assert b"encoding:embstr" in r.execute_command("DEBUG", "OBJECT", "s")
        with pytest.raises(redis.ResponseError, match="no such key"):
            r.execute_command("DEBUG", "OBJECT", "nosuch")


def test_config_resetstat_clears_commandstats(node):
    with node.client(protocol=2) as r:
        r.get("x")
        assert "cmdstat_get" in r.info("commandstats")
        r.config_resetstat()
        assert "cmdstat_get" not in r.info("commandstats")


def test_shutdown_closes_the_connection_and_stops_the_node(node_factory):
    victim = node_factory.start(name="shutdown")
    with victim.raw() as sock:
        sock.sendall(encode_command("SHUTDOWN", "SAVE"))
        refused = read_reply(sock)
        assert isinstance(refused, hiredis.ReplyError) and "Errors trying to SHUTDOWN" in str(refused)
        sock.sendall(encode_command("SHUTDOWN", "NOSAVE"))
        assert read_until_closed(sock, timeout=10) == b""
    wait_until(lambda: not victim.alive, timeout=15, message="node exit after SHUTDOWN")
    assert victim.proc.returncode == 0


# -- CLUSTER on one node --------------------------------------------------------------------

def test_cluster_replies_for_a_one_node_cluster(node):
    myid = call(node, "CLUSTER", "MYID")
    assert len(myid) == 40
    assert call(node, "CLUSTER", "SLOTS") == [[0, 16383, [b"127.0.0.1", node.port, myid, []]]]
    assert call(node, "CLUSTER", "SHARDS") == [[
        b"slots", [0, 16383],
        b"nodes", [[b"id", myid, b"port", node.port, b"ip", b"127.0.0.1", b"endpoint", b"127.0.0.1",
                    b"role", b"master", b"replication-offset", 0, b"health", b"online"]]]]
    nodes = call(node, "CLUSTER", "NODES")
    assert nodes == b"%s 127.0.0.1:%d@%d myself,master - 0 0 0 connected 0-16383\n" % (
        myid, node.port, node.mesh_port)
    info = info_fields(call(node, "CLUSTER", "INFO"))
    assert info["cluster_state"] == "ok" and info["cluster_slots_assigned"] == "16384"
    assert info["cluster_known_nodes"] == "1" and info["cluster_size"] == "1"
    assert call(node, "CLUSTER", "KEYSLOT", "foo") == 12182
    with node.client(protocol=2) as r:
        r.set("{tag}1", "a")
        r.set("{tag}2", "b")
    slot = call(node, "CLUSTER", "KEYSLOT", "{tag}")
    assert call(node, "CLUSTER", "COUNTKEYSINSLOT", str(slot)) == 2
    assert sorted(call(node, "CLUSTER", "GETKEYSINSLOT", str(slot), "10")) == [b"{tag}1", b"{tag}2"]
    assert len(call(node, "CLUSTER", "GETKEYSINSLOT", str(slot), "1")) == 1
    assert raw_bytes(node, "CLUSTER", "NODES", protocol=3).startswith(b"=")
    assert raw_bytes(node, "CLUSTER", "SLOTS", protocol=3).endswith(b"\r\n%0\r\n")


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_cluster_client_against_one_node(node, protocol):
    client = redis.RedisCluster(host=node.host, port=node.port, protocol=protocol, socket_timeout=10)
    try:
        assert [n.port for n in client.get_nodes()] == [node.port]
        for i in range(200):
            client.set(f"key:{i}", i)
        assert client.get("key:7") == b"7"
        assert client.mset_nonatomic({"{user1000}.a": "1", "{user1000}.b": "2"}) is not None
        assert client.mget("{user1000}.a", "{user1000}.b") == [b"1", b"2"]
        with pytest.raises(redis.RedisClusterException):
            client.mget("a", "b")        # keys in different slots: refused client-side, as with Redis
        assert client.dbsize() == 202
        assert client.keyslot("foo") == 12182
        assert client.cluster_info()["cluster_state"] == "ok"
    finally:
        client.close()


@pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli is not installed")
def test_redis_cli_cluster_mode_one_shot(node):
    def cli(*args: str) -> str:
        done = subprocess.run([REDIS_CLI, "-c", "-p", str(node.port), *args],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()
    assert cli("SET", "{a}x", "1") == "OK"
    assert cli("GET", "{a}x") == "1"
    assert cli("CLUSTER", "KEYSLOT", "foo") == "12182"
    assert "myself,master" in cli("CLUSTER", "NODES")
    assert cli("CONFIG", "GET", "appendonly") == "appendonly\nno"
    assert cli("DBSIZE") == "1"


@pytest.mark.parametrize("server", ["node", "redis_server"])
def test_commandstats_count_every_pipelined_call_exactly(server, request):
    with request.getfixturevalue(server).client(protocol=2) as r:
        r.config_resetstat()
        pipe = r.pipeline(transaction=False)
        for i in range(40):
            pipe.set(f"k{i}", "v")
        for i in range(25):
            pipe.get(f"k{i}")
        pipe.lpush("k0", "x")                  # WRONGTYPE: a failed call
        for i in range(7):
            pipe.get(f"k{i}")
        replies = pipe.execute(raise_on_error=False)
        assert len(replies) == 73 and isinstance(replies[65], redis.ResponseError)
        stats = r.info("commandstats")
        assert stats["cmdstat_set"]["calls"] == 40
        assert stats["cmdstat_get"]["calls"] == 32
        assert stats["cmdstat_lpush"]["calls"] == 1
        assert stats["cmdstat_lpush"]["failed_calls"] == 1
        # CONFIG RESETSTAT counts itself, then the 73 above and INFO commandstats
        assert r.info("stats")["total_commands_processed"] == 75
