"""The keyspace as a pure core: expiry (lazy and active), SCAN, memory accounting, eviction.

Time is passed in; nothing here sleeps or reads a clock.
"""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hypercache.store import EXPIRE_OVERHEAD, LFU_INIT, SLOT_COUNT, Store
from hypercache.types import List
from mesh.keyslot import keyslot

NOW = 1_700_000_000_000


def put(store: Store, key: bytes, value=b"v", ttl_ms: int | None = None, now: int = NOW) -> None:
    store.set(keyslot(key), key, value)
    if ttl_ms is not None:
        store.set_deadline(key, now + ttl_ms)


def get(store: Store, key: bytes, now: int = NOW):
    return store.get(keyslot(key), key, now)


# -- expiry ----------------------------------------------------------------------------------


def test_lazy_expiry_removes_on_access():
    store = Store()
    put(store, b"k", ttl_ms=100)
    assert get(store, b"k", NOW + 99) == b"v"
    assert store.ttl_ms(b"k", NOW + 99) == 1
    assert get(store, b"k", NOW + 100) is None
    assert store.key_count == 0 and b"k" not in store.expires
    assert store.stats.expired_keys == 1


def test_active_expiry_removes_due_keys_in_deadline_order_within_budget():
    store = Store()
    for i in range(10):
        put(store, b"k%d" % i, ttl_ms=10 * (i + 1))
    put(store, b"forever")
    assert store.expire_due(NOW + 5, keyslot) == 0
    assert store.expire_due(NOW + 50, keyslot, budget=3) == 3
    assert [get(store, b"k%d" % i, NOW) is None for i in range(5)] == [True] * 3 + [False] * 2
    assert store.expire_due(NOW + 1000, keyslot) == 7
    assert store.key_count == 1 and store.expires == {}
    assert store.stats.expired_keys == 10


def test_active_expiry_skips_changed_and_removed_deadlines():
    store = Store()
    put(store, b"moved", ttl_ms=10)
    store.set_deadline(b"moved", NOW + 10_000)       # the old heap entry goes stale
    put(store, b"persisted", ttl_ms=10)
    assert store.persist(b"persisted")
    put(store, b"overwritten", ttl_ms=10)
    put(store, b"overwritten", b"new")              # SET without KEEPTTL drops the TTL
    put(store, b"deleted", ttl_ms=10)
    store.delete(keyslot(b"deleted"), b"deleted")
    assert store.expire_due(NOW + 100, keyslot) == 0
    assert store.key_count == 3
    assert store.expire_due(NOW + 10_000, keyslot) == 1


def test_keep_ttl_keeps_the_deadline():
    store = Store()
    put(store, b"k", ttl_ms=100)
    store.set(keyslot(b"k"), b"k", b"w", keep_ttl=True)
    assert store.ttl_ms(b"k", NOW) == 100


def test_deadline_heap_is_rebuilt_when_stale_entries_dominate():
    store = Store()
    put(store, b"k")
    for i in range(5000):
        store.set_deadline(b"k", NOW + i + 1)
    assert len(store._deadlines) < 2 * len(store.expires) + 1025
    assert store.expire_due(NOW + 4999, keyslot) == 0
    assert store.expire_due(NOW + 5000, keyslot) == 1


def test_expiry_notifies_watchers():
    store = Store()
    seen: list[bytes] = []
    store.on_modified = seen.append
    put(store, b"a", ttl_ms=10)
    put(store, b"b", ttl_ms=10)
    seen.clear()
    get(store, b"a", NOW + 10)
    store.expire_due(NOW + 10, keyslot)
    assert seen == [b"a", b"b"]


# -- iteration -------------------------------------------------------------------------------


def scan_all(store: Store, count: int, now: int = NOW, between=None) -> list[bytes]:
    cursor, seen = 0, []
    while True:
        cursor, keys = store.scan(cursor, count, now)
        seen.extend(keys)
        if between is not None:
            between()
        if cursor == 0:
            return seen


def test_scan_returns_every_live_key_once():
    store = Store()
    keys = {b"key:%d" % i for i in range(2000)}
    for key in keys:
        put(store, key)
    put(store, b"expired", ttl_ms=1)
    seen = scan_all(store, 10, now=NOW + 1)
    assert len(seen) == len(keys) and set(seen) == keys


@settings(max_examples=30, deadline=None)
@given(stable=st.sets(st.binary(min_size=1, max_size=8), min_size=1, max_size=60),
       churn=st.lists(st.tuples(st.booleans(), st.binary(min_size=1, max_size=8)), max_size=200),
       count=st.integers(1, 20))
def test_scan_never_misses_a_key_present_for_the_whole_scan(stable, churn, count):
    store = Store()
    for key in stable:
        put(store, key)
    pending = list(churn)

    def mutate() -> None:
        # between calls, other clients add and remove keys that are not in `stable`
        for _ in range(3):
            if pending:
                add, key = pending.pop()
                if key in stable:
                    continue
                if add:
                    put(store, key)
                else:
                    store.delete(keyslot(key), key)

    seen = scan_all(store, count, between=mutate)
    assert stable <= set(seen)
    assert all(seen.count(key) == 1 for key in stable)


def test_scan_cursor_is_the_next_slot():
    store = Store()
    put(store, b"foo")                  # slot 12182
    assert keyslot(b"foo") == 12182
    assert store.scan(0, 1, NOW) == (12183, [b"foo"])
    assert store.scan(12183, 1, NOW) == (0, [])
    assert store.scan(SLOT_COUNT + 5, 10, NOW) == (0, [])


def test_keys_in_slot_and_random_key_skip_expired():
    store = Store()
    put(store, b"{s}live")
    put(store, b"{s}dead", ttl_ms=1)
    slot = keyslot(b"{s}live")
    assert list(store.keys_in_slot(slot, NOW + 1)) == [b"{s}live"]
    store.delete(slot, b"{s}live")
    assert store.random_key(NOW + 1, keyslot) is None
    assert store.random_key(NOW, keyslot) is None     # the dead key was removed on the way


# -- memory accounting -------------------------------------------------------------------------


def test_used_memory_goes_up_and_back_down_to_zero():
    store = Store()
    sizes = []
    for i in range(100):
        put(store, b"k%d" % i, b"x" * i, ttl_ms=1000 if i % 2 else None)
        sizes.append(store.used_memory)
    assert sizes == sorted(sizes) and sizes[0] > 0
    grown = store.used_memory
    put(store, b"k99", b"x" * 1000)            # overwrite: grows by the size difference
    assert store.used_memory == grown + (1000 - 99) - EXPIRE_OVERHEAD   # and the TTL is gone
    for i in range(100):
        store.delete(keyslot(b"k%d" % i), b"k%d" % i)
    assert store.used_memory == 0 and store.key_count == 0


def test_container_resizes_are_accounted_and_flush_resets():
    store = Store()
    value = List([b"a"])
    put(store, b"l", value)
    before = store.used_memory
    old = value.nbytes
    value.push_right([b"b" * 100])
    store.resized(b"l", value.nbytes - old)
    assert store.used_memory == before + (value.nbytes - old)
    put(store, b"s", ttl_ms=10)
    assert store.flush() == 2
    assert (store.used_memory, store.key_count, store.expires) == (0, 0, {})


def test_memory_per_key_is_close_to_what_python_holds():
    import sys
    store = Store()
    put(store, b"key:000001", b"x" * 100)
    held = sys.getsizeof(b"key:000001") + sys.getsizeof(b"x" * 100)
    assert held <= store.used_memory <= held + 200


# -- eviction ------------------------------------------------------------------------------------


def fill(store: Store, count: int, ttl_every: int = 0) -> None:
    for i in range(count):
        put(store, b"k%d" % i, b"x" * 50, ttl_ms=(10_000 + i) if ttl_every and i % ttl_every == 0 else None)


def test_noeviction_never_evicts():
    store = Store()
    store.configure_eviction(1000, "noeviction")
    fill(store, 50)
    assert store.over_maxmemory()
    assert store.evict(keyslot) is False
    assert store.key_count == 50


def test_allkeys_policies_bring_memory_under_the_limit():
    for policy in ("allkeys-lru", "allkeys-lfu", "allkeys-random"):
        store = Store()
        store.configure_eviction(20_000, policy)
        fill(store, 500)
        assert store.evict(keyslot) is True
        assert store.used_memory <= 20_000
        assert store.stats.evicted_keys == 500 - store.key_count > 0


def test_volatile_policies_only_evict_keys_with_a_ttl():
    for policy in ("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"):
        store = Store()
        fill(store, 400, ttl_every=2)
        store.configure_eviction(store.used_memory - 2000, policy)
        assert store.evict(keyslot) is True
        persistent = [b"k%d" % i for i in range(400) if i % 2]
        assert all(get(store, key) is not None for key in persistent), policy


def test_volatile_policy_fails_when_no_key_has_a_ttl():
    store = Store()
    fill(store, 100)
    store.configure_eviction(1000, "volatile-lru")
    assert store.evict(keyslot) is False


def test_volatile_ttl_prefers_the_soonest_deadlines():
    store = Store()
    for i in range(200):
        put(store, b"k%d" % i, b"x" * 50, ttl_ms=1000 * (i + 1))
    store.configure_eviction(store.used_memory - 6000, "volatile-ttl")   # ~20 keys
    assert store.evict(keyslot)
    evicted = [i for i in range(200) if get(store, b"k%d" % i) is None]
    # sampled (5 candidates each time), so near the soonest rather than exactly:
    # the best of 5 uniform picks among 200 averages ~33
    assert len(evicted) >= 20 and sum(evicted) / len(evicted) < 70


def test_lru_keeps_recently_used_keys():
    store = Store()
    store.configure_eviction(0, "allkeys-lru")
    fill(store, 300)
    hot = [b"k%d" % i for i in range(0, 300, 10)]
    for key in hot:
        get(store, key, NOW + 60_000)
    store.maxmemory = store.used_memory * 2 // 3
    assert store.evict(keyslot)
    assert sum(get(store, key, NOW + 60_000) is not None for key in hot) >= len(hot) * 0.9


def test_a_freshly_written_key_is_not_the_lru_victim():
    store = Store()
    store.configure_eviction(0, "allkeys-lru")
    store.expire_due(NOW, keyslot)                      # the store learns the time
    fill(store, 300)
    store.expire_due(NOW + 60_000, keyslot)
    for i in range(20):                                  # writes after a minute
        put(store, b"new%d" % i, b"x" * 50)
    store.maxmemory = store.used_memory - 5_000
    assert store.evict(keyslot)
    assert all(get(store, b"new%d" % i) is not None for i in range(20))


def test_lfu_keeps_frequently_used_keys_and_starts_new_keys_at_lfu_init():
    store = Store()
    store.configure_eviction(0, "allkeys-lfu")
    fill(store, 300)
    assert store.access[b"k0"] == LFU_INIT
    hot = [b"k%d" % i for i in range(0, 300, 10)]
    for _ in range(200):
        for key in hot:
            get(store, key)
    assert all(store.access[key] > LFU_INIT for key in hot)
    store.maxmemory = store.used_memory // 2
    assert store.evict(keyslot)
    assert sum(get(store, key) is not None for key in hot) >= len(hot) * 0.9


def test_switching_policy_drops_or_starts_access_tracking():
    store = Store()
    assert store.access is None
    store.configure_eviction(100, "allkeys-lru")
    assert store.access == {}
    store.configure_eviction(100, "allkeys-random")
    assert store.access is None


# -- bulk writes (MSET, DEL): the same store as one call per key -------------------------------

_KEYS = st.sampled_from([b"{t}k%d" % i for i in range(12)])


def _state(store: Store) -> tuple:
    values = {k: v if type(v) is bytes else (v.type_name, v.nbytes) for k, v in store.slots[keyslot(b"t")].items()}
    return (values, store.expires, store.used_memory, store.key_count,
            sorted(store.written or []), store.stats.expired_keys)


def _two_stores(before: list[tuple[bytes, bytes | None]], written: bool) -> tuple[Store, Store]:
    """Two stores holding the same keys (a value, a TTL past or future, or a container)."""
    stores = (Store(), Store())
    for store in stores:
        store.written = [] if written else None
        for key, ttl in before:
            put(store, key, List([b"x"]) if ttl == b"list" else b"old-" + key,
                ttl_ms=None if ttl in (None, b"list") else int(ttl))
        if store.written is not None:
            store.written.clear()
    return stores


_BEFORE = st.lists(st.tuples(_KEYS, st.sampled_from([None, b"list", b"-5", b"1000"])), max_size=8)


@settings(max_examples=40, deadline=None)     # (two stores of 16,384 dicts per example)
@given(_BEFORE, st.lists(st.tuples(_KEYS, st.binary(max_size=5)), min_size=1, max_size=12), st.booleans())
def test_set_many_leaves_the_store_as_set_of_each_pair_does(before, pairs, written):
    bulk, one_by_one = _two_stores(before, written)
    slot = keyslot(b"t")
    bulk.set_many(slot, [k for k, _ in pairs], [v for _, v in pairs])
    for key, value in pairs:
        one_by_one.set(slot, key, value)
    assert _state(bulk) == _state(one_by_one)


@settings(max_examples=40, deadline=None)     # (two stores of 16,384 dicts per example)
@given(_BEFORE, st.lists(_KEYS, min_size=1, max_size=12), st.booleans())
def test_delete_many_leaves_the_store_as_a_delete_of_each_live_key_does(before, keys, written):
    bulk, one_by_one = _two_stores(before, written)
    slot = keyslot(b"t")
    count = bulk.delete_many(slot, keys, NOW)
    expected = sum(1 for key in keys
                   if one_by_one.peek(slot, key, NOW) is not None and one_by_one.delete(slot, key))
    assert count == expected
    assert _state(bulk) == _state(one_by_one)
