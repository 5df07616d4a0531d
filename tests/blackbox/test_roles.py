"""Redis clients' idea of node roles on a real 3-node cluster at replication factor 2.

Each member is two Redis nodes (hypercache/roles.py): a master on its RESP port,
a replica on its replica endpoint. redis-py must count 3 primaries and 3
replicas, reach every key through the "primaries" target (before, it counted 1
primary and left two thirds of the keys behind a flush of the primaries), and
read from replicas; redis-cli --cluster check must agree.
"""
from __future__ import annotations

import json
import os
import subprocess

import hiredis
import pytest
import redis
from redis.cluster import RedisCluster

from hypercache.roles import REPLICA_PORT_OFFSET
from mesh.keyslot import keyslot
from tests import nodes
from tests.nodes import call, raw_connect, read_reply, encode_command, wait_until

KEYS = 300


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    factory = nodes.NodeFactory(tmp_path_factory.mktemp("roles"))
    try:
        members = factory.start_cluster(3, *nodes.CLUSTER_TIMEOUT, "--replication-factor", "2")
        wait_until(lambda: nodes.agreed(members, 3), timeout=60, message=factory.logs)
        yield members
    finally:
        factory.stop_all()


def client(cluster, **options) -> RedisCluster:
    return RedisCluster(host=nodes.HOST, port=cluster[0].port, **options)


def test_redis_py_sees_every_member_as_one_primary_and_one_replica(cluster):
    rc = client(cluster)
    try:
        primaries = sorted(node.port for node in rc.get_primaries())
        replicas = sorted(node.port for node in rc.get_replicas())
        assert primaries == sorted(n.port for n in cluster)
        assert replicas == sorted(n.port + REPLICA_PORT_OFFSET for n in cluster)
    finally:
        rc.close()


def test_the_primaries_target_reaches_every_key(cluster):
    rc = client(cluster)
    try:
        for i in range(KEYS):
            rc.set(f"role:{i}", i)
        assert rc.dbsize(target_nodes=RedisCluster.PRIMARIES) >= KEYS
        found = {key for key in rc.keys("role:*", target_nodes=RedisCluster.PRIMARIES)}
        assert found == {f"role:{i}".encode() for i in range(KEYS)}
        assert {k for k in rc.scan_iter("role:*")} == found
        rc.flushdb(target_nodes=RedisCluster.PRIMARIES)
        left = [i for i in range(KEYS) if rc.get(f"role:{i}") is not None]
        print(f"\nflushdb of the primaries: {len(left)} of {KEYS} keys left")
        assert not left
        # and on no owner, replicas included (the flush is replicated as deletes)
        for node in cluster:
            conn = node.client()
            conn.execute_command("READONLY")
            wait_until(lambda: conn.dbsize() == 0, timeout=10, message=lambda: f"{node.name} still holds keys")
            conn.close()
    finally:
        rc.close()


def test_read_from_replicas_reads_the_copies(cluster):
    writer = client(cluster)
    reader = client(cluster, read_from_replicas=True)
    try:
        for i in range(KEYS):
            writer.set(f"copy:{i}", f"v{i}")
        wrong = [i for i in range(KEYS) if reader.get(f"copy:{i}") != f"v{i}".encode()]
        assert not wrong
        used = [node.port for node in reader.get_replicas()
                if node.redis_connection is not None
                and node.redis_connection.connection_pool._created_connections]
        print(f"read_from_replicas: replica endpoints used: {sorted(used)}")
        assert used, "no read went to a replica endpoint"
    finally:
        writer.close()
        reader.close()


def _on_replica_endpoint(node, *commands):
    with raw_connect(node.port + REPLICA_PORT_OFFSET) as conn:
        replies = []
        for command in commands:
            conn.sendall(encode_command(*command))
            replies.append(read_reply(conn))
        return replies


def test_the_replica_endpoint_answers_as_a_redis_replica(cluster):
    node = cluster[0]
    slots = call(node, "CLUSTER", "SLOTS")
    led = next(first for first, last, primary, *_ in slots if primary[1] == node.port)
    copied = next(first for first, last, primary, *replicas in slots
                  if any(r[1] == node.port + REPLICA_PORT_OFFSET for r in replicas))
    key_led = next(f"k{i}" for i in range(100000) if keyslot(f"k{i}".encode()) == led)
    key_copied = next(f"k{i}" for i in range(100000) if keyslot(f"k{i}".encode()) == copied)
    rc = client(cluster)
    rc.set(key_copied, "copy")
    rc.close()
    primary_of_copied = next(p for first, last, p, *_ in slots if first == copied)
    role, myid, get_unready, ok, get_copy, get_led, write, flush, info = _on_replica_endpoint(
        node, ("ROLE",), ("CLUSTER", "MYID"), ("GET", key_copied), ("READONLY",), ("GET", key_copied),
        ("GET", key_led), ("SET", key_copied, "x"), ("FLUSHALL",), ("INFO", "replication"))
    assert role[0] == b"slave" and role[3] in (b"connected", b"sync")
    assert myid != call(node, "CLUSTER", "MYID") and len(myid) == 40
    moved_copy = f"MOVED {copied} 127.0.0.1:{primary_of_copied[1]}"
    assert isinstance(get_unready, hiredis.ReplyError) and str(get_unready) == moved_copy
    assert ok == b"OK" and get_copy == b"copy"
    # a slot this member leads is its primary endpoint's, even after READONLY
    assert str(get_led) == f"MOVED {led} 127.0.0.1:{node.port}"
    assert str(write) == moved_copy
    assert str(flush) == "READONLY You can't write against a read only replica."
    assert b"role:slave" in info and b"master_link_status:" in info
    lines = {line.split(" ")[0]: line.split(" ") for line in call(node, "CLUSTER", "NODES").decode().splitlines()}
    mine = lines[myid.decode()]
    assert mine[2] == "slave" and mine[1].startswith(f"127.0.0.1:{node.port + REPLICA_PORT_OFFSET}@")
    assert lines[mine[3]][2].endswith("master")


def test_redis_cli_cluster_check_counts_a_replica_per_member(cluster):
    result = subprocess.run(["redis-cli", "--cluster", "check", f"{nodes.HOST}:{cluster[0].port}"],
                            capture_output=True, text=True, timeout=60)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[OK] All nodes agree about slots configuration." in result.stdout
    assert "[OK] All 16384 slots covered." in result.stdout
    assert "[ERR]" not in result.stdout and "[WARNING]" not in result.stdout
    assert result.stdout.count("S: ") == 3 and result.stdout.count("M: ") == 3


def test_a_plain_client_on_a_replica_endpoint_cannot_write(cluster):
    node = cluster[1]
    plain = redis.Redis(port=node.port + REPLICA_PORT_OFFSET)
    try:
        with pytest.raises(redis.exceptions.ReadOnlyError):
            plain.flushall()
    finally:
        plain.close()


IOREDIS = nodes.REPO / ".venv" / "js" / "node_modules"


def test_ioredis_scale_reads_slave_reads_from_replica_endpoints(cluster):
    # before: ioredis never sent READONLY to an address it had taken for a master and
    # looped on MOVED until "Too many Cluster redirections"
    if not IOREDIS.joinpath("ioredis").is_dir() and not os.environ.get("CI"):
        pytest.skip("ioredis is not installed (make system-deps installs it)")
    script = nodes.REPO / "tests" / "blackbox" / "js" / "ioredis_scale_reads.js"
    result = subprocess.run(["node", str(script), str(cluster[0].port), "200"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "NODE_PATH": str(IOREDIS)})
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"\nioredis scaleReads slave: {figures}")
    assert figures["errors"] == [] and figures["wrong"] == 0
    assert figures["written"] == figures["read_ok"] == 200
    assert figures["slaves"] == 3


def test_a_tracking_client_on_a_replica_endpoint_hears_of_replicated_writes(cluster):
    """CLIENT TRACKING on a copy: a write made on the primary, applied here by replication, invalidates it."""
    node = cluster[0]
    slots = call(node, "CLUSTER", "SLOTS")
    copied = next(first for first, last, primary, *replicas in slots
                  if any(r[1] == node.port + REPLICA_PORT_OFFSET for r in replicas))
    key = next(f"t{i}" for i in range(100000) if keyslot(f"t{i}".encode()) == copied)
    rc = client(cluster)
    rc.set(key, "v1")
    tracker = raw_connect(node.port + REPLICA_PORT_OFFSET)
    try:
        tracker.sendall(encode_command("HELLO", "3"))
        read_reply(tracker)
        tracker.sendall(encode_command("READONLY") + encode_command("CLIENT", "TRACKING", "on"))
        assert [read_reply(tracker), read_reply(tracker)] == [b"OK", b"OK"]
        # the copy may still be on its way: read until it is there (each read is remembered)
        wait_until(lambda: tracker.sendall(encode_command("GET", key)) or read_reply(tracker) == b"v1")
        rc.set(key, "v2")
        assert read_reply(tracker) == [b"invalidate", [key.encode()]]
    finally:
        tracker.close()
        rc.close()
