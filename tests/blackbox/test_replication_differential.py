"""A random differential test of replication: the same random workload against real primaries,
then every replica's content, TTLs included, must equal its primary's.

The workload mixes every type, relative TTLs (some expire during the run), the
non-deterministic commands (SPOP, SRANDMEMBER-free pops, INCRBYFLOAT), MULTI/EXEC
on one hash tag, renames, deletions, and eviction: each node runs under a small
`maxmemory` with `allkeys-lru`, so primaries evict while the workload writes
(the replicas must receive those evictions as deletions and never evict on
their own). The seed is printed; HYPERCACHE_DIFF_SEED replays one.
"""
from __future__ import annotations

import os
import random

import redis

from mesh.keyslot import keyslot
from tests.blackbox.test_replication import info_replication, owners_of, start_replicated
from tests.nodes import call, wait_until

OPS = 3000
KEYSPACE = 200


def random_op(rng: random.Random, pipe, key: str, tagged: str) -> None:
    """One random write (or read-modify-write) of `key`, through a cluster pipeline."""
    value = rng.randbytes(rng.choice((8, 64, 2000))).hex()
    choice = rng.randrange(20)
    if choice == 0:
        pipe.set(key, value, px=rng.randint(50, 400))           # expires during the run
    elif choice == 1:
        pipe.set(key, value, ex=rng.randint(100, 1000))
    elif choice == 2:
        pipe.incrbyfloat(f"{key}:f", rng.uniform(-5, 5))
    elif choice == 3:
        pipe.incr(f"{key}:n")
    elif choice == 4:
        pipe.append(f"{key}:a", value[:20])
    elif choice == 5:
        pipe.hset(f"{key}:h", mapping={f"f{rng.randrange(8)}": value[:30] for _ in range(3)})
    elif choice == 6:
        pipe.hdel(f"{key}:h", f"f{rng.randrange(8)}")
    elif choice == 7:
        pipe.rpush(f"{key}:l", *[f"e{rng.randrange(100)}" for _ in range(rng.randint(1, 4))])
    elif choice == 8:
        pipe.lpop(f"{key}:l")
    elif choice == 9:
        pipe.sadd(f"{key}:s", *[f"m{rng.randrange(30)}" for _ in range(4)])
    elif choice == 10:
        pipe.spop(f"{key}:s")                                     # random: the replica must get the same
    elif choice == 11:
        pipe.zadd(f"{key}:z", {f"m{rng.randrange(20)}": rng.uniform(0, 100) for _ in range(3)})
    elif choice == 12:
        pipe.zpopmin(f"{key}:z")
    elif choice == 13:
        pipe.zincrby(f"{key}:z", rng.uniform(-1, 1), f"m{rng.randrange(20)}")
    elif choice == 14:
        pipe.expire(key, rng.randint(1, 50))
    elif choice == 15:
        pipe.persist(key)
    elif choice == 16:
        pipe.delete(key)
    elif choice == 17:
        pipe.pexpire(f"{key}:h", rng.randint(100, 300))
    elif choice == 18:
        pipe.set(tagged, value)
    else:
        pipe.getdel(f"{key}:a")


READ_BY_TYPE = {b"string": ("GET",), b"hash": ("HGETALL",), b"list": ("LRANGE", 0, -1),
                b"set": ("SMEMBERS",), b"zset": ("ZRANGE", 0, -1, "WITHSCORES")}


def snapshot(node, keys: list[bytes]) -> dict[bytes, tuple]:
    """(type, value, absolute deadline) of each key as a READONLY reader of `node` sees it,
    read in two pipelined rounds (READONLY first in each: it is per connection)."""
    client = node.client()
    try:
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("READONLY")
        for key in keys:
            pipe.type(key)
            pipe.execute_command("PEXPIRETIME", key)
        heads = pipe.execute(raise_on_error=False)[1:]
        errors = [h for h in heads if isinstance(h, Exception)]
        assert not errors, f"{node.name}: {errors[:3]}"
        kinds, deadlines = heads[0::2], heads[1::2]
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("READONLY")
        for key, kind in zip(keys, kinds):
            name, *rest = READ_BY_TYPE.get(kind, ("EXISTS",))
            pipe.execute_command(name, key, *rest)
        values = pipe.execute(raise_on_error=False)[1:]
        errors = [(key, kind, v) for key, kind, v in zip(keys, kinds, values) if isinstance(v, Exception)]
        assert not errors, f"{node.name}: {errors[:3]}"
    finally:
        client.close()
    return {key: (kind, sorted(value) if kind == b"set" else value, deadline)
            for key, kind, value, deadline in zip(keys, kinds, values, deadlines)}


def differing(cluster, keys: list[bytes]) -> list:
    owners = owners_of(cluster)
    held: dict = {}
    for node in cluster:
        mine = [key for key in keys if node in owners[keyslot(key)]]
        held[node.port] = snapshot(node, mine)
    out = []
    for key in keys:
        copies = [held[node.port][key] for node in owners[keyslot(key)]]
        if any(copy != copies[0] for copy in copies[1:]):
            out.append((key, copies))
    return out


def every_key(count: int) -> list[bytes]:
    keys = []
    for i in range(count):
        base = f"d:{i}"
        keys += [f"{base}{suffix}".encode() for suffix in ("", ":f", ":n", ":a", ":h", ":l", ":s", ":z")]
    keys += [f"{{tag}}:{i}".encode() for i in range(count)] + [b"{tag}:renamed", b"{tag}:counter"]
    return keys


def test_random_workload_with_expiry_and_eviction_leaves_replicas_equal(node_factory):
    seed = int(os.environ.get("HYPERCACHE_DIFF_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    print(f"\nseed {seed} (HYPERCACHE_DIFF_SEED replays it)")
    cluster = start_replicated(node_factory, 3)
    for node in cluster:
        call(node, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
        call(node, "CONFIG", "SET", "maxmemory", str(256 * 1024))
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    try:
        done = 0
        while done < OPS:
            pipe = rc.pipeline(transaction=False)
            for _ in range(rng.randint(1, 16)):
                i = rng.randrange(KEYSPACE)
                random_op(rng, pipe, f"d:{i}", f"{{tag}}:{rng.randrange(KEYSPACE)}")
                done += 1
            pipe.execute(raise_on_error=False)      # (wrong types and OOM are part of a random run)
            if rng.random() < 0.1:                  # a transaction on one hash tag: one atomic batch
                with rc.pipeline(transaction=True) as tx:
                    tx.incr("{tag}:counter")
                    tx.set("{tag}:renamed", rng.randbytes(16).hex())
                    tx.execute_command("RENAME", "{tag}:renamed", f"{{tag}}:{rng.randrange(KEYSPACE)}")
                    tx.execute(raise_on_error=False)
        evicted = sum(int(node.client().info("stats")["evicted_keys"]) for node in cluster)
        expired = sum(int(node.client().info("stats")["expired_keys"]) for node in cluster)
        print(f"{OPS} random writes: {evicted} keys evicted and {expired} expired by the primaries")
        assert evicted > 0, "the workload must push the primaries into eviction"
        # Owners are read one after the other: a key whose deadline falls between two
        # reads looks different for a moment (both hide it past its deadline), so the
        # comparison is retried; a real divergence stays.
        keys = every_key(KEYSPACE)
        found: list = []

        def agree() -> bool:
            found[:] = differing(cluster, keys)
            return not found
        wait_until(agree, timeout=15, interval=0.5, message=lambda: f"{len(found)} keys differ: {found[:3]}")
        # a replica never evicts nor expires on its own: what it dropped came from its primary
        for node in cluster:
            assert info_replication(node)["hypercache_frames_refused"] == "0"
    finally:
        rc.close()
