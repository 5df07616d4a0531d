"""Replication on real node processes: every owner of a slot holds what its primary acknowledged.

In sync mode (the default) a write's reply means every live replica of its
slot applied it, so the replicas are compared right after the replies, with
no waiting. Reads use READONLY on each owner, as a client of a replica would.
"""
from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest
import redis

from hypercache.roles import replica_id
from loadtest import hostile
from mesh import balance, ring
from mesh.datalink import MAX_FRAME_BYTES
from mesh.keyslot import SLOT_COUNT, keyslot
from tests import nodes
from tests.nodes import NodeFactory, NodeProcess, call, wait_until


def info_replication(node: NodeProcess) -> dict[str, str]:
    text = node.client().info("replication")
    return {k: str(v) for k, v in text.items()}


def replicas_in_sync(cluster: list[NodeProcess], streams_each: int | None = None) -> bool:
    """Every node feeds `streams_each` replicas (None: at least one) and every stream finished its full copy.

    (On 3 nodes every node's slots have copies on both others; on more, a node's
    slots may sit on only some of them, as the ring places them.)"""
    for node in cluster:
        info = info_replication(node)
        feeds = int(info["connected_slaves"])
        if (feeds != streams_each if streams_each is not None else feeds < 1):
            return False
        if info["hypercache_replicas_in_sync"] != str(feeds) or info["hypercache_slots_loading"] != "0":
            return False
    return True


def start_replicated(node_factory: NodeFactory, count: int, *extra: str, rf: int = 2) -> list[NodeProcess]:
    cluster = node_factory.start_cluster(count, *nodes.CLUSTER_TIMEOUT, "--replication-factor", str(rf), *extra)
    # (a long node timeout slows a retried proposal: give formation a few of them)
    wait_until(lambda: nodes.agreed(cluster, count), timeout=60, message=node_factory.logs)
    # with vnodes spread around the ring, each node's slots have copies on every other node
    wait_until(lambda: replicas_in_sync(cluster, count - 1), timeout=20, message=node_factory.logs)
    return cluster


def owners_of(cluster: list[NodeProcess]) -> dict[int, list[NodeProcess]]:
    """slot -> [primary, replicas...] as CLUSTER SLOTS tells them."""
    node_at = nodes.by_port(cluster)
    owners: dict[int, list[NodeProcess]] = {}
    for first, last, *members in call(cluster[0], "CLUSTER", "SLOTS"):
        for slot in range(first, last + 1):
            owners[slot] = [node_at[member[1]] for member in members]
    return owners


def content(node: NodeProcess, key: bytes) -> tuple:
    """What a reader sees of `key` on `node` after READONLY: type, value, and expiry time."""
    client = node.client()
    client.execute_command("READONLY")
    kind = client.type(key)
    value: object
    if kind == b"string":
        value = client.get(key)
    elif kind == b"hash":
        value = client.hgetall(key)
    elif kind == b"list":
        value = client.lrange(key, 0, -1)
    elif kind == b"set":
        value = sorted(client.smembers(key))
    elif kind == b"zset":
        value = client.zrange(key, 0, -1, withscores=True)
    else:
        value = None
    # the absolute deadline: the same on every owner (a relative TTL ticks between reads)
    return kind, value, client.execute_command("PEXPIRETIME", key)


def workload(rc: redis.RedisCluster, prefix: str, count: int) -> list[bytes]:
    """Writes of every type and the non-deterministic commands, through the cluster client."""
    keys = []
    for i in range(count):
        base = f"{prefix}:{i}"
        rc.set(f"{base}:s", f"v{i}", ex=300)
        rc.hset(f"{base}:h", mapping={"a": i, "b": "x" * (i % 70)})
        rc.rpush(f"{base}:l", *[f"e{j}" for j in range(i % 5 + 1)])
        rc.sadd(f"{base}:set", *[f"m{j}" for j in range(6)])
        rc.spop(f"{base}:set")                              # random: the replica must get the same member
        rc.zadd(f"{base}:z", {f"m{j}": j * 1.5 for j in range(3)})
        rc.incrbyfloat(f"{base}:f", 0.1)                    # float: the replica must get the same result
        rc.set(f"{base}:gone", "x")
        rc.delete(f"{base}:gone")
        keys += [f"{base}:{suffix}".encode() for suffix in ("s", "h", "l", "set", "z", "f", "gone")]
    with rc.pipeline(transaction=False) as pipe:           # pipelined writes: one round trip each batch
        for i in range(count):
            pipe.set(f"{prefix}:p{i}", i)
        pipe.execute()
    keys += [f"{prefix}:p{i}".encode() for i in range(count)]
    return keys


def _read(pipe, kind: bytes, key: bytes) -> bool:
    """Queue content()'s read of a key of this type; False for a type it does not read."""
    reads = {b"string": lambda: pipe.get(key), b"hash": lambda: pipe.hgetall(key),
             b"list": lambda: pipe.lrange(key, 0, -1), b"set": lambda: pipe.smembers(key),
             b"zset": lambda: pipe.zrange(key, 0, -1, withscores=True)}
    if kind not in reads:
        return False
    reads[kind]()
    return True


def contents(node: NodeProcess, keys: list[bytes]) -> dict[bytes, tuple]:
    """content() of many keys on one connection, pipelined (thousands of keys in a few round trips)."""
    client = node.client()
    client.execute_command("READONLY")
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.type(key)
        kinds = pipe.execute()
    with client.pipeline(transaction=False) as pipe:
        read = []
        for key, kind in zip(keys, kinds):
            read.append(_read(pipe, kind, key))
            pipe.execute_command("PEXPIRETIME", key)
        replies = iter(pipe.execute())
    client.close()
    seen = {}
    for key, kind, has_value in zip(keys, kinds, read):
        value = next(replies) if has_value else None
        seen[key] = (kind, sorted(value) if kind == b"set" else value, next(replies))
    return seen


def assert_owners_agree(cluster: list[NodeProcess], keys: list[bytes], timeout: float = 30) -> None:
    """Every owner of each key holds the same content, once the cluster has converged.

    Polled: a map that moves slots for balance (after a join or a loss) may commit while
    the owners are read, and a new owner's copy may still be arriving; what must hold is
    that they agree once the maps stop changing.
    """
    differing: list = []

    def agree() -> bool:
        nonlocal differing
        try:
            differing = _differing(cluster, keys)
        except redis.exceptions.MovedError as moved:      # the map moved under the read
            differing = [("moved", str(moved))]
        return not differing
    try:
        wait_until(agree, timeout=timeout)
    except nodes.WaitTimeout:
        pass
    assert not differing, f"{len(differing)} of {len(keys)} keys differ between owners: {differing[:3]}"


def _differing(cluster: list[NodeProcess], keys: list[bytes]) -> list[tuple[bytes, list]]:
    owners = owners_of(cluster)
    held: dict[int, list[bytes]] = {}
    for key in keys:
        for node in owners[keyslot(key)]:
            held.setdefault(node.port, []).append(key)
    seen = {node.port: contents(node, held[node.port]) for node in cluster if node.port in held}
    differing = []
    for key in keys:
        slot = keyslot(key)
        copies = [seen[node.port][key] for node in owners[slot]]
        if any(copy != copies[0] for copy in copies[1:]):
            differing.append((key, copies))
    return differing


def big_value(size: int) -> bytes:
    """`size` bytes in which a misplaced piece shows."""
    return b"".join(i.to_bytes(4, "big") for i in range(size // 4))


# The goal for a bystander's PING while a big value arrives is 100 ms (measured: 35-129 ms
# for 20 MiB with the suite's other work on 2 cores, ~0.4 s for 400 MiB: loadtest/big_value.py,
# README); as in test_hostile_load.py the bound asserted is looser, so a loaded machine does not flake.
WORST_PING_ALLOWED_S = 0.5


def assert_a_value_over_the_frame_limit_replicates_in_pieces(cluster: list[NodeProcess]) -> None:
    """A value bigger than a data channel frame may be travels in pieces, and the replica
    putting it back together keeps answering its other clients."""
    key, value = b"big:{over-the-frame-limit}", big_value(MAX_FRAME_BYTES + 4 * 1024 * 1024)
    primary, replica = owners_of(cluster)[keyslot(key)][:2]
    with hostile.Bystander(replica.port) as bystander:
        bystander.more_pings(10)
        assert primary.client().set(key, value)
        bystander.more_pings(10)
    assert bystander.error is None, bystander.error
    reader = replica.client()
    reader.execute_command("READONLY")
    assert reader.get(key) == value     # sync mode: the reply meant the replica applied it
    print(f"\na {len(value) >> 20} MiB value (frames: at most {MAX_FRAME_BYTES >> 20} MiB) replicated; "
          f"a bystander's worst PING on the replica meanwhile {1000 * bystander.worst:.1f} ms")
    assert bystander.worst < WORST_PING_ALLOWED_S


@pytest.mark.alone     # runs alone (Makefile): it bounds a bystander's worst wait
@pytest.mark.parametrize("rf", [2, 3])
def test_every_acknowledged_write_is_on_every_owner(node_factory, rf):
    cluster = start_replicated(node_factory, 3, rf=rf)
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    keys = workload(rc, f"rf{rf}", 40)
    assert_owners_agree(cluster, keys)      # no waiting: acknowledged means applied everywhere
    owners = owners_of(cluster)
    assert all(len(members) == rf for members in owners.values())
    print(f"\nrf {rf}: {len(keys)} keys identical on all {rf} owners right after the replies")
    if rf == 2:
        assert_concurrent_writers_are_acknowledged_only_once_applied(cluster)
        assert_a_value_over_the_frame_limit_replicates_in_pieces(cluster)


def assert_concurrent_writers_are_acknowledged_only_once_applied(cluster: list[NodeProcess]) -> None:
    """Writers of one slot at once, so that frames of several clients' writes are in flight
    together: each reply still means the replica applied that write. Every writer reads
    its write back from the replica right after the reply."""
    key_of = [f"concurrent:{{w}}:{i}".encode() for i in range(8)]     # (one slot: one stream)
    primary, replica = owners_of(cluster)[keyslot(key_of[0])][:2]
    failures: list[str] = []

    def write(key: bytes) -> None:
        writer, reader = primary.client(), replica.client()
        reader.execute_command("READONLY")
        for i in range(40):
            writer.set(key, i)
            seen = reader.get(key)
            if seen != str(i).encode():
                failures.append(f"{key!r}: wrote {i}, the replica had {seen!r} after the reply")
                return
    before = int(info_replication(replica)["hypercache_frames_applied"])
    threads = [threading.Thread(target=write, args=(key,)) for key in key_of]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures[:3]
    frames = int(info_replication(replica)["hypercache_frames_applied"]) - before
    print(f"\n{len(key_of)} concurrent writers, {40 * len(key_of)} writes: the replica applied {frames} frames")


def test_async_mode_replicates_right_after(node_factory):
    cluster = start_replicated(node_factory, 3, "--replication-mode", "async")
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    keys = workload(rc, "async", 20)

    def agree() -> bool:
        try:
            assert_owners_agree(cluster, keys)
        except AssertionError:
            return False
        return True
    wait_until(agree, timeout=10, message=node_factory.logs)
    assert info_replication(cluster[0])["hypercache_replication_mode"] == "async"


def test_a_lone_node_and_rf_1_replicate_nothing_and_hold_nothing(node_factory):
    lone = node_factory.start()
    assert lone.client().set("k", "v")
    info = info_replication(lone)
    assert info["connected_slaves"] == "0" and info["hypercache_writes_held"] == "0"


def test_killing_a_primary_loses_no_acknowledged_write(node_factory):
    cluster = start_replicated(node_factory, 3)
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    written = {}
    for i in range(600):
        rc.set(f"acked:{i}", f"value-{i}")
        written[f"acked:{i}".encode()] = f"value-{i}".encode()
    victim = cluster[2]
    victim.kill()
    survivors = cluster[:2]
    wait_until(lambda: nodes.agreed(survivors, 2), timeout=20, message=node_factory.logs)
    rc = redis.RedisCluster(host="127.0.0.1", port=survivors[0].port)
    lost = [key for key, value in written.items() if rc.get(key) != value]
    print(f"\nSIGKILL of one of 3 nodes at rf 2: {len(lost)} of {len(written)} acknowledged writes lost")
    assert not lost


def test_a_restarted_node_catches_up_under_write_load_and_loses_nothing(node_factory):
    """SIGKILL and restart (same id): its replica copies are sent again, and the slots it
    leads are pulled back from their replicas before it serves them (TRYAGAIN meanwhile)."""
    # a node timeout longer than the restart, so the map keeps the node: this is a
    # node coming back to its own slots, not a failover
    cluster = start_replicated(node_factory, 3, "--node-timeout-ms", "8000")
    owners = owners_of(cluster)
    replica = cluster[1]
    keys = [f"load:{i}".encode() for i in range(3000)]
    assert any(owners[keyslot(k)][0] is replica for k in keys)
    assert any(owners[keyslot(k)][0] is not replica and replica in owners[keyslot(k)] for k in keys)
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    # values the full copy to the restarted node sends in pieces: a string over the frame
    # limit and a hash of ~2 MB, each in a slot the node holds a copy of
    copied = [k for k in (f"big:{i}".encode() for i in range(100))
              if owners[keyslot(k)][0] is not replica and replica in owners[keyslot(k)]][:2]
    rc.set(copied[0], big_value(MAX_FRAME_BYTES + 1024 * 1024))
    rc.hset(copied[1], mapping={f"field:{i}": f"value:{i}" * 3 for i in range(40_000)})
    stop = threading.Event()
    acked: dict[bytes, int] = {}
    errors: list[Exception] = []

    def write() -> None:
        n = 0
        while not stop.is_set():
            key = keys[n % len(keys)]
            try:
                rc.set(key, n)
                acked[key] = n
            except redis.RedisError as error:
                errors.append(error)
            n += 1

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        wait_until(lambda: len(acked) > 100, timeout=10)
        replica.kill()
        restarted = node_factory.restart(replica)
        cluster = [cluster[0], restarted, cluster[2]]
        wait_until(lambda: nodes.agreed(cluster, 3), timeout=20, message=node_factory.logs)
        # the primaries noticed the gap and copied everything again, under load
        wait_until(lambda: replicas_in_sync(cluster, 2), timeout=30, message=node_factory.logs)
        wait_until(lambda: len(acked) > 2 * len(keys) // 3, timeout=20)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert owners_of(cluster) == {slot: [{n.port: n for n in cluster}[m.port] for m in members]
                                  for slot, members in owners.items()}, "the map changed"
    assert_owners_agree(cluster, keys + copied)
    stale = [k for k, n in acked.items() if int(rc.get(k)) < n]
    assert not stale, f"{len(stale)} keys older than their acknowledged write"
    info = info_replication(cluster[0])
    print(f"\nnode restarted under load: {len(keys)} keys identical on both owners, "
          f"{len(acked)} written, writer errors {len(errors)}, full syncs {info['hypercache_full_syncs']}")


def test_a_command_on_a_slot_still_arriving_waits_for_it_instead_of_tryagain(node_factory):
    """A restarted node leads its slots again before their data is back: a command on one
    waits until the pull lands (redis-cli -c would print a TRYAGAIN, not retry it)."""
    # a node timeout longer than the restart and the pause, so the map keeps every node
    cluster = start_replicated(node_factory, 3, "--node-timeout-ms", "8000")
    restarting, source = cluster[1], cluster[2]
    owners = owners_of(cluster)
    key = next(k for k in (f"arriving:{i}".encode() for i in range(10_000))
               if owners[keyslot(k)] == [restarting, source])
    assert call(restarting, "SET", key, b"kept") == b"OK"
    restarting.kill()
    source.pause()      # the only other copy: the restarted node's pull waits for it
    try:
        restarted = node_factory.restart(restarting)
        # (it hears a majority, node 0 and itself, before it serves anything)
        wait_until(lambda: b"cluster_state:ok" in call(restarted, "CLUSTER", "INFO"), timeout=20,
                   message=node_factory.logs)
        # a transaction on the slot is queued, and its EXEC waits, but not forever: after
        # 2 s it answers TRYAGAIN and the transaction is gone
        with nodes.raw_connect(restarted.port, timeout=15) as given_up:
            given_up.sendall(b"".join(nodes.encode_command(*args) for args in (
                ("MULTI",), ("SET", key, b"never"), ("EXEC",), ("EXEC",))))
            assert [nodes.read_reply(given_up) for _ in range(2)] == [b"OK", b"QUEUED"]
            assert str(nodes.read_reply(given_up, timeout=10)).startswith("TRYAGAIN")
            assert str(nodes.read_reply(given_up)) == "ERR EXEC without MULTI"
        replies: dict[str, object] = {}

        def ask(name: str, *args: object) -> threading.Thread:
            thread = threading.Thread(target=lambda: replies.setdefault(name, nodes.request(restarted, *args)),
                                      daemon=True)
            thread.start()
            return thread

        def blocked(count: int) -> None:
            wait_until(lambda: info_field(restarted, "clients", "blocked_clients") == str(count), timeout=10,
                       message=lambda: f"{count} clients never waited: {replies}")

        # a write postponed by CLIENT PAUSE, its slot still arriving once the pause ends: it waits for the data
        assert call(restarted, "CLIENT", "PAUSE", "60000", "WRITE") == b"OK"
        readers = [ask("postponed", "INCR", b"{" + key + b"}:count")]
        blocked(1)
        assert call(restarted, "CLIENT", "UNPAUSE") == b"OK"
        readers.append(ask("get", "GET", key))
        # a BLPOP of an empty list there: once the data is in, it waits for the list (its own timeout)
        readers.append(ask("blpop", "BLPOP", b"{" + key + b"}:list", "0"))
        # a transaction on the slot, whose EXEC runs whole once the data is in
        transaction = nodes.raw_connect(restarted.port, timeout=15)
        transaction.sendall(b"".join(nodes.encode_command(*args) for args in (
            ("MULTI",), ("INCR", b"{" + key + b"}:count"), ("GET", key), ("EXEC",))))
        assert [nodes.read_reply(transaction) for _ in range(3)] == [b"OK", b"QUEUED", b"QUEUED"]
        blocked(4)
        assert not replies
    finally:
        source.resume()
    for reader in readers[:2]:
        reader.join(timeout=10)
    assert (replies.get("get"), replies.get("postponed")) == (b"kept", 1)
    with transaction:
        assert nodes.read_reply(transaction, timeout=10) == [2, b"kept"]
    blocked(1)
    assert call(restarted, "RPUSH", b"{" + key + b"}:list", "x") == 1
    readers[2].join(timeout=10)
    assert replies.get("blpop") == [b"{" + key + b"}:list", b"x"]


def info_field(node: NodeProcess, section: str, name: str) -> str:
    text = call(node, "INFO", section).decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)[name]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_wait_counts_the_replicas_that_acknowledged_the_clients_writes(node_factory, mode):
    cluster = start_replicated(node_factory, 3, "--replication-mode", mode)
    slot = keyslot(b"waited")
    primary = owners_of(cluster)[slot][0]
    client = primary.client()
    for i in range(50):
        client.set("waited", i)
    # each node feeds 2 replica streams: both count (one holds "waited", the other
    # was never written to by this client, as Redis counts replicas at its offset)
    assert client.execute_command("WAIT", 2, 5000) == 2
    started = time.monotonic()
    assert client.execute_command("WAIT", 3, 200) == 2        # only 2 exist: the timeout answers
    assert time.monotonic() - started >= 0.19
    assert client.execute_command("WAIT", 0, 0) == 2


def test_wait_errors_are_redis_errors(node_factory, redis_server):
    node = node_factory.start()
    for args in (("x", "0"), ("1", "-1"), ("1", "x"), ("1",)):
        ours = theirs = None
        try:
            node.client().execute_command("WAIT", *args)
        except redis.ResponseError as error:
            ours = str(error)
        try:
            redis_server.client().execute_command("WAIT", *args)
        except redis.ResponseError as error:
            theirs = str(error)
        assert ours == theirs and ours is not None, args
    assert node.client().execute_command("WAIT", 1, 10) == 0     # a lone node has no replica


def _write_acknowledged(rc: redis.RedisCluster, prefix: str, count: int) -> dict[bytes, bytes]:
    written = {}
    for i in range(count):
        key, value = f"{prefix}:{i}".encode(), f"value-{i}".encode()
        rc.set(key, value)
        written[key] = value
    return written


def _lost(rc: redis.RedisCluster, written: dict[bytes, bytes]) -> list[bytes]:
    return [key for key, value in written.items() if rc.get(key) != value]


def test_a_joining_node_receives_its_slots_data_before_serving_them(node_factory):
    cluster = start_replicated(node_factory, 3)
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    written = _write_acknowledged(rc, "join", 1000)
    fourth = node_factory.start(*nodes.CLUSTER_TIMEOUT, join=cluster[0])
    cluster.append(fourth)
    wait_until(lambda: nodes.agreed(cluster, 4), timeout=30, message=node_factory.logs)
    wait_until(lambda: replicas_in_sync(cluster), timeout=30, message=node_factory.logs)
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    lost = _lost(rc, written)
    led = sum(1 for owners in owners_of(cluster).values() if owners[0] is fourth)
    # Replicate, catch up, switch: its slots were copied to it before the map that admits it,
    # so after the switch their former primaries only confirm them (no second copy, no wait)
    fourth_id = call(fourth, "CLUSTER", "MYID").decode()[:8]
    confirmed = sum(int(m.group(1)) for node in cluster[:3]
                    for m in re.finditer(rf"copied ahead of the switch node=\S+ to={fourth_id} slots=(\d+)",
                                         node.logs(tail=None)))
    print(f"\n4th node joined, leads {led} slots ({confirmed} copied ahead of the switch): "
          f"{len(lost)} of {len(written)} acknowledged writes lost")
    assert led > 0 and not lost
    assert confirmed >= led * 0.9
    assert_owners_agree(cluster, list(written))


def _ring_and_loads(node: NodeProcess, rf: int) -> tuple[ring.Tokens, dict[str, tuple[float, float]]]:
    """The ring as CLUSTER SLOTS shows it (a token ends each run of one primary) and each
    member's (primary, replica) load over its ideal."""
    positions: dict[int, str] = {}
    primary: dict[str, int] = {}
    replica: dict[str, int] = {}
    for first, last, *owners in call(node, "CLUSTER", "SLOTS"):
        ids = [owner[2].decode() for owner in owners]
        positions[last] = ids[0]
        primary[ids[0]] = primary.get(ids[0], 0) + last - first + 1
        for node_id in ids[1:]:
            replica[node_id] = replica.get(node_id, 0) + last - first + 1
    ideal = SLOT_COUNT / len(primary)
    # (a replica is listed under its member's replica endpoint id)
    loads = {node_id: (primary[node_id] / ideal, replica.get(replica_id(node_id), 0) / (ideal * (rf - 1)))
             for node_id in primary}
    return ring.normalize(positions), loads


def _worst(loads: dict[str, tuple[float, float]]) -> str:
    return (f"primary {max(p for p, _ in loads.values()):.2f}x, "
            f"replica {max(r for _, r in loads.values()):.2f}x of ideal")


def test_after_a_member_is_lost_slots_move_back_towards_balance_without_losing_a_write(node_factory):
    """A dead member's arcs go to their replicas (no copy needed, but uneven); once the
    copies are complete again, maps that move slots only to members holding them bring
    every load back within tolerance (mesh/balance.py), and nothing is lost meanwhile."""
    cluster = start_replicated(node_factory, 3)
    cluster.append(node_factory.start(*nodes.CLUSTER_TIMEOUT, join=cluster[0]))
    wait_until(lambda: nodes.agreed(cluster, 4), timeout=30, message=node_factory.logs)
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    written = _write_acknowledged(rc, "rebalance", 1000)
    # the victim whose arcs, passed to their replicas, leave the ring most uneven
    tokens, _ = _ring_and_loads(cluster[0], 2)
    by_id = {call(node, "CLUSTER", "MYID").decode(): node for node in cluster}

    def unevenness(node_id: str) -> int:
        return max(ring.primary_counts(ring.leave(tokens, node_id)).values())

    victim = by_id[max(sorted(by_id), key=unevenness)]
    victim.kill()
    survivors = [node for node in cluster if node is not victim]
    wait_until(lambda: nodes.agreed(survivors, 3), timeout=30, message=node_factory.logs)
    after_death = nodes.agreed(survivors, 3)
    _, loads = _ring_and_loads(survivors[0], 2)
    print(f"\nafter the death (epoch {after_death}): {_worst(loads)}")
    primary_limit = 1 + balance.PRIMARY_TOLERANCE_PCT / 100 + 0.01
    replica_limit = 1 + balance.REPLICA_TOLERANCE_PCT / 100 + 0.01
    assert max(p for p, _ in loads.values()) > primary_limit     # (the premise: there is something to even out)

    def balanced() -> bool:
        epoch = nodes.agreed(survivors, 3)
        if epoch is None or not replicas_in_sync(survivors):
            return False
        _, loads = _ring_and_loads(survivors[0], 2)
        return all(p <= primary_limit and r <= replica_limit for p, r in loads.values())

    wait_until(balanced, timeout=60, message=node_factory.logs)
    _, loads = _ring_and_loads(survivors[0], 2)
    rc = redis.RedisCluster(host="127.0.0.1", port=survivors[0].port)
    lost = _lost(rc, written)
    print(f"rebalanced by epoch {nodes.agreed(survivors, 3)}: {_worst(loads)}; "
          f"{len(lost)} of {len(written)} acknowledged writes lost")
    assert not lost
    assert_owners_agree(survivors, list(written))

    # The demoted owners kept their copies as fallbacks while the moved slots' new replicas
    # copied them; once every owner says it holds its slots they go, and the verdict is ok.
    def state(node: NodeProcess) -> str:
        text = call(node, "CLUSTER", "INFO").decode()
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)["hypercache_cluster_state"]

    wait_until(lambda: all(state(node) == "ok" for node in survivors), timeout=30,
               message=lambda: f"{[state(node) for node in survivors]} {node_factory.logs()}")


def _tags_by_slot(slots: set[int]) -> dict[int, str]:
    """A hash tag for each of `slots` (keys `{tag}:...` land in that slot)."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < len(slots):
        tag = f"t{i}"
        slot = keyslot(tag.encode())
        if slot in slots and slot not in found:
            found[slot] = tag
        i += 1
    return found


# ~30-50 s of 4 nodes: run when asked (HYPERCACHE_FALLBACK_TEST=1); the suite's short version
# is test_after_a_member_is_lost_slots_move_back_towards_balance_without_losing_a_write.
@pytest.mark.skipif(not os.environ.get("HYPERCACHE_FALLBACK_TEST"),
                    reason="~30-50 s: HYPERCACHE_FALLBACK_TEST=1 runs it")
def test_the_new_primary_dying_while_a_moved_slot_is_copied_loses_no_acknowledged_write(node_factory):
    """A slot moved for balance: (X, Y) -> (Y, Z), Z copying it from Y, X keeping its copy as a
    fallback. Writes to the slot wait until Z's copy is whole (Replicator.quiet): Y is killed
    while one waits. Whatever Z then serves holds every acknowledged write and no deleted key.
    (Found by review: when Y acknowledged writes during the copy, Z, pulling X's fallback as
    the newest stale copy after Y's death, lost them and brought a deleted key back.)"""
    cluster = start_replicated(node_factory, 3)
    cluster.append(node_factory.start(*nodes.CLUSTER_TIMEOUT, join=cluster[0]))
    wait_until(lambda: nodes.agreed(cluster, 4), timeout=30, message=node_factory.logs)
    tokens, _ = _ring_and_loads(cluster[0], 2)
    by_id = {call(node, "CLUSTER", "MYID").decode(): node for node in cluster}

    def unevenness(node_id: str) -> int:
        return max(ring.primary_counts(ring.leave(tokens, node_id)).values())

    victim_id = max(sorted(by_id), key=unevenness)
    after_death = ring.leave(tokens, victim_id)
    # what the first map moving slots for balance will make of it (mesh/election.py rebalanced)
    before, after = ring.owners(after_death, 2), ring.owners(balance.rebalance(after_death, 2), 2)
    moves: dict[tuple[str, str], list[int]] = {}
    for slot in range(SLOT_COUNT):
        if before[slot] != after[slot]:
            assert after[slot][0] == before[slot][1]        # (moved to its replica)
            if after[slot][1] not in before[slot]:          # (and a new replica gets a copy)
                moves.setdefault((after[slot][0], after[slot][1]), []).append(slot)
    (new_primary, new_replica), moved = max(moves.items(), key=lambda item: len(item[1]))
    target = max(moved)                 # copied last on that stream
    demoted = before[target][0]
    tags = _tags_by_slot(set(moved))
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    # bulk in the slots copied before the target: the copy takes a while
    per_slot = max(50, 60_000 // len(moved))
    for slot in moved:
        if slot != target:
            for start in range(0, per_slot, 1000):
                rc.mset({f"{{{tags[slot]}}}:{i}": "v" * 64 for i in range(start, min(per_slot, start + 1000))})
    tag = tags[target]
    rc.set(f"{{{tag}}}:doomed", "old")
    rc.set(f"{{{tag}}}:kept", "old")
    by_id[victim_id].kill()
    survivors = [node for node in cluster if node is not by_id[victim_id]]
    wait_until(lambda: nodes.agreed(survivors, 3), timeout=30, message=node_factory.logs)
    assert ring.owners(_ring_and_loads(survivors[0], 2)[0], 2)[target] == before[target]   # (the prediction holds)

    y, z = by_id[new_primary], by_id[new_replica]
    writer = y.client(socket_timeout=10)
    key = f"{{{tag}}}:after-switch".encode()
    acknowledged: list[bool] = []

    def write() -> None:
        while True:
            try:
                if writer.set(key, "acknowledged"):
                    acknowledged.append(True)
                    return
            except redis.ResponseError:
                continue        # MOVED until y applies the map; TRYAGAIN after a 2 s wait
            except (redis.ConnectionError, redis.TimeoutError):
                return          # y died while the SET waited: not acknowledged

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    wait_until(lambda: "writes wait for new replicas' copies" in y.logs(tail=None) or acknowledged,
               timeout=30, interval=0.002, message=node_factory.logs)
    y.kill()
    thread.join(timeout=15)
    replicating = info_replication(z)
    print(f"\nslot {target} moved {demoted[:8]} -> {new_primary[:8]}, new replica {new_replica[:8]} "
          f"({len(moved)} slots, {per_slot} keys each on that stream); {new_primary[:8]} killed "
          f"{'after' if acknowledged else 'before'} the SET was acknowledged, slots still being copied "
          f"to the new replica: {replicating.get('hypercache_slots_receiving_copy')}")
    alive = [node for node in survivors if node is not y]
    wait_until(lambda: nodes.agreed(alive, 2), timeout=30, message=node_factory.logs)
    reader = redis.RedisCluster(host="127.0.0.1", port=alive[0].port)
    seen = (reader.get(key), reader.get(f"{{{tag}}}:doomed"), reader.get(f"{{{tag}}}:kept"))
    stale_pulls = sum(len(re.findall("pulling the newest stale copy", node.logs(tail=None))) for node in alive)
    print(f"after: after-switch={seen[0]!r} doomed={seen[1]!r} kept={seen[2]!r} "
          f"stale pulls by the survivors: {stale_pulls}")
    assert seen[1:] == (b"old", b"old")
    if acknowledged:
        assert seen[0] == b"acknowledged"


def test_a_graceful_leave_loses_nothing(node_factory):
    cluster = start_replicated(node_factory, 3)
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    written = _write_acknowledged(rc, "leave", 600)
    cluster[1].stop()
    survivors = [cluster[0], cluster[2]]
    wait_until(lambda: nodes.agreed(survivors, 2), timeout=20, message=node_factory.logs)
    rc = redis.RedisCluster(host="127.0.0.1", port=survivors[0].port)
    lost = _lost(rc, written)
    print(f"\ngraceful leave of 1 of 3 nodes: {len(lost)} of {len(written)} acknowledged writes lost")
    assert not lost


def test_a_graceful_leave_at_replication_factor_1_hands_its_keys_over(node_factory):
    """Nobody else holds the leaver's slots: after the map without it commits, their new
    primaries pull them from it (it waits for that before it exits)."""
    cluster = node_factory.start_cluster(3, *nodes.CLUSTER_TIMEOUT, "--replication-factor", "1")
    wait_until(lambda: nodes.agreed(cluster, 3), timeout=60, message=node_factory.logs)
    # The third member joined with its slots copied ahead of the switch: once they are
    # confirmed, nothing is replicated at rf 1. (The streams of that copy lived on until
    # the next map: every write recorded and every reply held for the commit meanwhile.)
    wait_until(lambda: all(info_replication(node)["connected_slaves"] == "0"
                           and info_replication(node)["hypercache_primaries_followed"] == "0"
                           for node in cluster),
               timeout=30, message=lambda: f"{[info_replication(n) for n in cluster]}\n{node_factory.logs()}")
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    written = _write_acknowledged(rc, "rf1-leave", 600)
    leaver = cluster[1]
    held_by_leaver = int(call(leaver, "DBSIZE"))
    assert held_by_leaver > 100         # (the ring gives it about a third)
    assert leaver.stop() == 0
    survivors = [cluster[0], cluster[2]]
    wait_until(lambda: nodes.agreed(survivors, 2), timeout=30, message=node_factory.logs)
    rc = redis.RedisCluster(host="127.0.0.1", port=survivors[0].port)
    lost = _lost(rc, written)
    print(f"\ngraceful leave at rf 1: {len(lost)} of {len(written)} lost ({held_by_leaver} were on the leaver)")
    assert not lost


def test_a_join_at_replication_factor_1_keeps_every_key_and_leaves_none_behind(node_factory):
    """The joiner's slots are copied ahead of the switch and confirmed after it (SYNC_DONE on
    the stream that copied them); the former owners keep them until the joiner acknowledges
    that, then drop them: every key readable, each held once."""
    cluster = node_factory.start_cluster(3, *nodes.CLUSTER_TIMEOUT, "--replication-factor", "1")
    wait_until(lambda: nodes.agreed(cluster, 3), timeout=60, message=node_factory.logs)
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    written = _write_acknowledged(rc, "rf1-join", 600)
    cluster.append(node_factory.start(*nodes.CLUSTER_TIMEOUT, "--replication-factor", "1", join=cluster[0]))
    wait_until(lambda: nodes.agreed(cluster, 4), timeout=60, message=node_factory.logs)
    assert int(call(cluster[3], "DBSIZE")) > 50        # (the ring gives it about a quarter)
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    lost = _lost(rc, written)
    print(f"\njoin at rf 1: {len(lost)} of {len(written)} lost")
    assert not lost
    # the former owners dropped what they handed over, once acknowledged, and the streams ended
    wait_until(lambda: sum(int(call(node, "DBSIZE")) for node in cluster) == len(written)
               and all(info_replication(node)["connected_slaves"] == "0" for node in cluster),
               timeout=30, message=lambda: f"{[int(call(n, 'DBSIZE')) for n in cluster]}\n{node_factory.logs()}")


def test_a_node_joining_just_after_the_first_map_is_admitted_with_its_copy(node_factory):
    """Nodes started one after another (as bench_cluster.py does): the third asks to join just after
    the first map commits, and the former owners confirm every slot it leads after the switch.
    With the three pinned to one core, a member's copy ahead of the admission ended while the
    joiner still held its own one-member map and did not count: the join waited for the stall
    patience (5 node timeouts) and the joiner pulled half its slots again, ~17 s to form at the
    default timeout instead of ~2. Unpinned, as here, that timing is rare; the rule is checked
    in tests/unit/test_holdings.py (Holdings.copied_ahead)."""
    first = node_factory.start(*nodes.CLUSTER_TIMEOUT, "--replication-factor", "1")
    second = node_factory.start(*nodes.CLUSTER_TIMEOUT, "--replication-factor", "1", join=first)
    # (the third after the first map: heard before it, on a loaded machine, it was a founder,
    # with nothing to copy ahead, and this test checked nothing)
    wait_until(lambda: nodes.agreed([first, second], 2), timeout=60, message=node_factory.logs)
    third = node_factory.start(*nodes.CLUSTER_TIMEOUT, "--replication-factor", "1", join=first)
    cluster = [first, second, third]
    wait_until(lambda: nodes.agreed(cluster, 3), timeout=60, message=node_factory.logs)
    led = sum(1 for owners in owners_of(cluster).values() if owners[0] is third)
    third_id = call(third, "CLUSTER", "MYID").decode()[:8]
    confirmed = sum(int(m.group(1)) for node in cluster[:2]
                    for m in re.finditer(rf"copied ahead of the switch node=\S+ to={third_id} slots=(\d+)",
                                         node.logs(tail=None)))
    print(f"\nthird node leads {led} slots, {confirmed} confirmed as copied ahead of the switch")
    assert led > 0 and confirmed >= led * 0.9, node_factory.logs()


def test_scaling_4_to_2_and_back_to_4_keeps_every_key_and_writes(node_factory):
    """Two members stop at once (a compose scale-down): each stays a voter until its
    removal commits, so the two survivors get a map (a majority of 4 voted) and take writes."""
    cluster = start_replicated(node_factory, 3)
    cluster.append(node_factory.start(*nodes.CLUSTER_TIMEOUT, join=cluster[0]))
    wait_until(lambda: nodes.agreed(cluster, 4), timeout=30, message=node_factory.logs)
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    written = _write_acknowledged(rc, "scale", 800)
    leaving = cluster[2:]
    for node in leaving:
        node.proc.send_signal(signal.SIGTERM)
    for node in leaving:
        assert node.proc.wait(30) == 0
    survivors = cluster[:2]
    wait_until(lambda: nodes.agreed(survivors, 2), timeout=30, message=node_factory.logs)
    rc = redis.RedisCluster(host="127.0.0.1", port=survivors[0].port)
    lost = _lost(rc, written)
    written.update(_write_acknowledged(rc, "scale-after", 200))       # writable
    print(f"\n4 -> 2 members (2 SIGTERMs at once): {len(lost)} of 800 acknowledged writes lost")
    assert not lost
    back = survivors + [node_factory.start(*nodes.CLUSTER_TIMEOUT, join=survivors[0]) for _ in range(2)]
    wait_until(lambda: nodes.agreed(back, 4), timeout=30, message=node_factory.logs)
    rc = redis.RedisCluster(host="127.0.0.1", port=back[0].port)
    lost = _lost(rc, written)
    print(f"2 -> 4 members: {len(lost)} of {len(written)} acknowledged writes lost")
    assert not lost


def _flags(node: NodeProcess) -> dict[str, str]:
    """node id -> the flags CLUSTER NODES on `node` shows for that member."""
    lines = call(node, "CLUSTER", "NODES").decode().splitlines()
    return {line.split()[0]: line.split()[2] for line in lines}


def test_a_cluster_that_lost_its_majority_for_good_comes_back_with_takeover(node_factory):
    """2 of 4 members destroyed: no map can be voted again, so the survivors refuse
    writes for good, until the operator runs CLUSTER FAILOVER TAKEOVER on each of
    them. Then they drop the dead, agree on one map and take writes; a key is lost
    only where both its owners died (the risk the README names)."""
    cluster = start_replicated(node_factory, 3)
    cluster.append(node_factory.start(*nodes.CLUSTER_TIMEOUT, join=cluster[0]))
    wait_until(lambda: nodes.agreed(cluster, 4), timeout=30, message=node_factory.logs)
    wait_until(lambda: replicas_in_sync(cluster), timeout=30, message=node_factory.logs)
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    written = _write_acknowledged(rc, "takeover", 600)
    survivors, destroyed = cluster[:2], cluster[2:]
    owners = owners_of(cluster)
    only_on_destroyed = {key for key in written if set(owners[keyslot(key)]) <= set(destroyed)}
    dead_ids = [call(node, "CLUSTER", "MYID").decode() for node in destroyed]
    assert str(nodes.request(survivors[0], "CLUSTER", "FAILOVER", "TAKEOVER")).startswith(
        "ERR this node hears a majority")
    for node in destroyed:
        node.kill()
    wait_until(lambda: all("fail" in _flags(s)[d] for s in survivors for d in dead_ids), timeout=30,
               message=node_factory.logs)
    refused = nodes.request(survivors[0], "SET", next(iter(written)), "x")
    assert str(refused).startswith("CLUSTERDOWN"), refused
    assert nodes.request(survivors[0], "CLUSTER", "FAILOVER", "TAKEOVER") == b"OK"
    # the other survivor was not told: it keeps refusing rather than follow a map nobody voted
    assert not nodes.agreed(survivors, 2)
    assert nodes.request(survivors[1], "CLUSTER", "FAILOVER", "TAKEOVER") == b"OK"
    wait_until(lambda: nodes.agreed(survivors, 2), timeout=30, message=node_factory.logs)
    rc = redis.RedisCluster(host="127.0.0.1", port=survivors[0].port)
    lost = set(_lost(rc, written))
    after = _write_acknowledged(rc, "takeover-after", 200)
    print(f"\ntakeover after 2 of 4 destroyed: {len(lost)} of {len(written)} keys lost, "
          f"{len(only_on_destroyed)} had both owners destroyed; {len(after)} writes taken after")
    assert lost <= only_on_destroyed
    assert not _lost(rc, after)


def test_a_paused_primary_never_acknowledges_a_write_after_its_slots_moved(node_factory):
    """SIGSTOP a primary past the node timeout, queue a write to it, SIGCONT: no +OK.

    Its lease has run out (CLUSTERDOWN), or, if stale heartbeats renewed it, its
    replicas refuse the frame from a node their newer map no longer names as
    primary (fencing) and the client is closed unacknowledged."""
    cluster = start_replicated(node_factory, 3)
    victim = cluster[0]
    owners = owners_of(cluster)
    key = next(k for k in (f"paused:{i}".encode() for i in range(1000)) if owners[keyslot(k)][0] is victim)
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[1].port)
    rc.set(key, b"before")
    sock = victim.raw(timeout=30)
    victim.pause()
    try:
        survivors = cluster[1:]
        wait_until(lambda: nodes.agreed(survivors, 2), timeout=30, message=node_factory.logs)
        sock.sendall(nodes.encode_command("SET", key, "after"))
    finally:
        victim.resume()
    try:
        reply = nodes.read_reply(sock, timeout=30)
    except (ConnectionError, OSError, EOFError) as error:
        reply = error
    print(f"\nwrite queued to a paused former primary answered: {reply!r}")
    assert reply != b"OK"
    assert not (isinstance(reply, bytes) and reply.startswith(b"OK"))
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[1].port)
    assert rc.get(key) == b"before"


def test_a_whole_cluster_restart_comes_back_writable(node_factory):
    """Every node restarts (same ids): nobody holds any data (a cache keeps none on disk),
    each owner answers the others' pulls with NOT_HELD, and the slots are served empty."""
    cluster = start_replicated(node_factory, 3)
    redis.RedisCluster(host="127.0.0.1", port=cluster[0].port).set("before", "x")
    for node in cluster:
        node.kill()
    cluster = [node_factory.restart(node) for node in cluster]
    wait_until(lambda: nodes.agreed(cluster, 3), timeout=30, message=node_factory.logs)
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    assert rc.set("after", "y") and rc.get("after") == b"y"
    assert rc.get("before") is None


def test_a_node_cut_off_from_the_majority_refuses_reads_unless_told_otherwise(node_factory):
    """cluster-allow-reads-when-down no (Redis's default): a minority node's reads would be stale."""
    cluster = start_replicated(node_factory, 3)
    lone = cluster[0]
    owners = owners_of(cluster)
    key = next(k for k in (f"minority:{i}".encode() for i in range(1000)) if owners[keyslot(k)][0] is lone)
    lone.client().set(key, b"v")
    for node in cluster[1:]:
        node.pause()        # the other two stop answering: `lone` no longer hears a majority
    try:
        def refused() -> bool:
            try:
                lone.client().get(key)
            except redis.exceptions.ClusterDownError:
                return True
            except redis.ResponseError as error:
                return str(error).startswith("CLUSTERDOWN")
            return False
        wait_until(refused, timeout=20, message=node_factory.logs)
        client = lone.client()
        client.config_set("cluster-allow-reads-when-down", "yes")
        assert client.get(key) == b"v"
        with pytest.raises(redis.exceptions.ClusterDownError):
            client.set(key, b"w")
    finally:
        for node in cluster[1:]:
            node.resume()


def test_min_replicas_to_write_refuses_writes_without_enough_good_replicas(node_factory, redis_server):
    # a long node timeout: the paused replica stays in the map, only its acknowledgements stop
    cluster = start_replicated(node_factory, 3, "--node-timeout-ms", "8000")
    owners = owners_of(cluster)
    key = next(k for k in (f"minrep:{i}".encode() for i in range(1000)) if owners[keyslot(k)][0] is cluster[0])
    replica = owners[keyslot(key)][1]
    # (a write to a slot whose replica is paused waits for it: time out and poll again)
    client = cluster[0].client(socket_timeout=1)
    client.config_set("min-replicas-to-write", 1)
    client.config_set("min-replicas-max-lag", 2)
    assert client.set(key, b"1")
    client.config_set("min-replicas-to-write", 2)            # rf 2: a slot has one replica
    with pytest.raises(redis.ResponseError) as refused:
        client.set(key, b"2")
    redis_server.client().config_set("min-replicas-to-write", 1)     # a master without replicas
    with pytest.raises(redis.ResponseError) as theirs:
        redis_server.client().set(key, b"2")
    assert str(refused.value) == str(theirs.value)
    assert "Not enough good replicas to write." in str(refused.value)
    assert client.config_get("min-replicas-max-lag") == {"min-replicas-max-lag": "2"}
    client.config_set("min-replicas-to-write", 1)
    replica.pause()
    try:
        def refused_now() -> bool:
            try:
                client.set(key, b"3", ex=60)
            except redis.ResponseError as error:
                return "good replicas" in str(error)
            except (redis.TimeoutError, redis.ConnectionError):
                return False
            return False
        wait_until(refused_now, timeout=20, message=node_factory.logs)
    finally:
        replica.resume()
    wait_until(lambda: client.set(key, b"4"), timeout=20)


def test_two_nodes_joining_in_the_same_map_receive_the_data_they_lead(node_factory):
    """Slots whose new owners are both newcomers: the former primary (no longer an
    owner) hands them over; pulling from each other, they hold nothing to give."""
    seed = node_factory.start(*nodes.CLUSTER_TIMEOUT)
    rc = redis.Redis(port=seed.port)
    written = {}
    for i in range(1500):
        rc.set(f"pair:{i}", f"v{i}")
        written[f"pair:{i}".encode()] = f"v{i}".encode()
    joiners = [node_factory.start(*nodes.CLUSTER_TIMEOUT, join=seed, wait=False) for _ in range(2)]
    cluster = [seed] + joiners
    for node in joiners:
        node.wait_ready()
    wait_until(lambda: nodes.agreed(cluster, 3), timeout=40, message=node_factory.logs)
    client = redis.RedisCluster(host="127.0.0.1", port=seed.port)
    lost = _lost(client, written)
    print(f"\n2 nodes joining a lone node at once: {len(lost)} of {len(written)} keys lost")
    assert not lost


# Busy for ARGV[1] ms (past the busy threshold, so the script lets the hub run between its
# slices), SET KEYS[1] ARGV[2] in a later slice, then busy ARGV[3] ms more without writing.
BUSY_SCRIPT_WRITING_BETWEEN_SLICES = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local function spin(ms)
  local start = now_ms()
  while now_ms() - start < ms do end
end
spin(tonumber(ARGV[1]))
redis.call('SET', KEYS[1], ARGV[2])
spin(tonumber(ARGV[3]))
return 1
"""


@pytest.mark.parametrize("after_ms", [300, 0])
def test_a_busy_scripts_reply_waits_for_its_writes_between_slices_to_be_replicated(node_factory, after_ms):
    """A script past its busy threshold writes in a slice of its own (committed between
    loop iterations, with no client's run around it): in sync mode its reply still waits
    for the replica's acknowledgement, whether or not its last slice wrote.

    The replica is paused (SIGSTOP, well inside the node timeout, so nothing fails over):
    the reply must not come before it resumes. The script itself ends ~0.5 s after it
    starts, so a reply that did not wait would come within the 1.5 s looked at."""
    cluster = start_replicated(node_factory, 2, "--node-timeout-ms", "8000")
    owners = owners_of(cluster)
    key = b"busy-script:{slices}"
    primary, replica = owners[keyslot(key)]
    assert call(primary, "CONFIG", "SET", "busy-reply-threshold", "50") == b"OK"
    sock = primary.raw(timeout=30)
    replica.pause()
    try:
        sock.sendall(nodes.encode_command("EVAL", BUSY_SCRIPT_WRITING_BETWEEN_SLICES, 1, key,
                                          200, "written-in-a-later-slice", after_ms))
        with pytest.raises(TimeoutError):
            reply = nodes.read_reply(sock, timeout=1.5)
            pytest.fail(f"the script's reply came while its only replica was paused: {reply!r}")
        # (the node stayed responsive meanwhile: the script is over, nothing else holds it)
        assert call(primary, "PING") == b"PONG"
    finally:
        replica.resume()
    assert nodes.read_reply(sock, timeout=20) == 1
    reader = replica.client()
    reader.execute_command("READONLY")
    assert reader.get(key) == b"written-in-a-later-slice"
