"""Full garbage collections stay short as the keyspace grows (hypercache/gc_policy.py).

A hash value is a container CPython's cycle collector walks in every full
collection; left to CPython, a node of 2 million hashes paused 0.2-0.4 s at a
time. The node freezes long-lived containers once a full collection's survivors
reach FREEZE_AT, so collections walk only what came since. Checked on a real
node through INFO memory's hypercache_gc_* fields (how long a collection takes
is the benchmark's business: loadtest/gc_pause.py); the data stays whole, and
MEMORY PURGE collects everything and freezes again.
"""
from __future__ import annotations

from tests.nodes import encode_command, raw_connect, read_reply, wait_until

KEYS = 150_000


def _gc(client) -> dict:
    return {k: v for k, v in client.info("memory").items() if k.startswith("hypercache_gc_")}


def _load_hashes(client, count: int) -> None:
    pipe = client.pipeline(transaction=False)
    for index in range(count):
        pipe.hset(f"h:{index}", "f", index)
        if index % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def test_long_lived_values_are_frozen_and_stay_whole(r):
    at_start = _gc(r)
    assert at_start["hypercache_gc_frozen_objects"] > 0            # start-up's objects, frozen once started
    _load_hashes(r, KEYS)
    # (the freeze comes with the housekeeping tick after a full collection)
    def frozen_once() -> dict | None:
        figures = _gc(r)
        return figures if figures["hypercache_gc_freezes"] >= 1 else None
    after = wait_until(frozen_once, timeout=30)
    assert after["hypercache_gc_full_collections"] > at_start["hypercache_gc_full_collections"]
    assert after["hypercache_gc_frozen_objects"] >= at_start["hypercache_gc_frozen_objects"] + 100_000
    assert r.hget("h:0", "f") == b"0" and r.hget(f"h:{KEYS - 1}", "f") == str(KEYS - 1).encode()
    assert r.dbsize() == KEYS


def test_memory_purge_collects_the_frozen_too_and_freezes_again(r):
    _load_hashes(r, 20_000)
    pipe = r.pipeline(transaction=False)
    for index in range(0, 20_000, 2):       # frozen or not, freed by reference counting
        pipe.delete(f"h:{index}")
    pipe.execute()
    assert r.execute_command("MEMORY PURGE") is True
    after = _gc(r)
    assert after["hypercache_gc_frozen_objects"] > 0
    assert r.dbsize() == 10_000 and r.hget("h:1", "f") == b"1" and not r.exists("h:0")


def test_clients_blocked_across_a_freeze_leave_no_cyclic_garbage(r, node):
    # A blocked client's retry and its Suspend refer to each other; alive at a freeze, such a
    # cycle was never collected after the wait ended (review: 12 objects a client a freeze).
    # Waits ended by a write (BLPOP) and by a timeout (WAIT) are unlinked when they end.
    r.execute_command("MEMORY PURGE")
    before = _gc(r)
    waiting = [raw_connect(node.port, timeout=30) for _ in range(100)]
    for index, sock in enumerate(waiting):
        command = ("BLPOP", f"queue{index}", "0") if index % 2 == 0 else ("WAIT", "1", "3000")
        sock.sendall(encode_command(*command))
    wait_until(lambda: r.info("clients")["blocked_clients"] == 100, timeout=10)
    _load_hashes(r, KEYS)

    def frozen_again() -> dict | None:
        figures = _gc(r)
        return figures if figures["hypercache_gc_freezes"] > before["hypercache_gc_freezes"] else None
    wait_until(frozen_again, timeout=30)
    pipe = r.pipeline(transaction=False)
    for index in range(0, 100, 2):
        pipe.lpush(f"queue{index}", "job")
    pipe.execute()
    for index, sock in enumerate(waiting):     # (the WAITs answer 0 after their 3 s)
        assert read_reply(sock, timeout=30) == ([f"queue{index}".encode(), b"job"] if index % 2 == 0 else 0)
        sock.close()
    r.execute_command("MEMORY PURGE")
    assert _gc(r)["hypercache_gc_last_purge_found"] < 100     # (12 a client before: 1,200)
