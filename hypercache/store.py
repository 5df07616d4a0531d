"""The keyspace: values per slot, expiry (lazy and active), memory accounting and eviction.

A pure core: no sockets, no gevent, no clock. Every call that depends on time
takes `now_ms`, a millisecond timestamp the caller reads once per batch.

Layout, chosen for the hot path and for what a cluster needs:

* `slots[slot]` is the dict of the keys hashing to that slot. The per-slot
  index Redis keeps beside its keyspace *is* our keyspace, so COUNTKEYSINSLOT,
  GETKEYSINSLOT and moving a slot to another node cost nothing extra per key.
  The router has already computed the slot, so a lookup is one list index and
  one dict probe.
* `expires` holds a deadline only for keys that have one, as Redis does, and
  `_deadlines` is a heap of (deadline, key) so the active cycle removes keys in
  deadline order without sampling. Heap entries whose deadline no longer
  matches `expires` are stale and skipped; the heap is rebuilt when stale
  entries dominate.
* Memory is accounted per key from an estimate of what CPython really holds
  for it (object headers, dict entry), so `used_memory` tracks the data, not
  the allocator's high-water mark, and eviction can bring it back down.
"""
from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from itertools import islice, repeat
from typing import Any, Callable, Final, Iterator

from mesh.keyslot import keyslot

from .pulse import EVERY, beat

SLOT_COUNT: Final = 16384

# What CPython holds per key beyond the payload bytes: the key's bytes-object
# header (33, rounded up by pymalloc) and its share of the slot dict (entry plus
# index at the dict's load factor). Calibrated against RSS growth: 1M keys of
# 100-byte values grow the process by ~216 B/key, and len(key) + KEY_OVERHEAD +
# len(value) + STRING_OVERHEAD comes to ~219 B/key for them.
KEY_OVERHEAD: Final = 72
STRING_OVERHEAD: Final = 33        # the value's bytes-object header
EXPIRE_OVERHEAD: Final = 100      # the expires dict entry and its heap tuple

EVICTION_POLICIES: Final = (
    "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
    "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
)
EVICTION_SAMPLES = 5       # Redis's maxmemory-samples default
LFU_INIT: Final = 5               # Redis's LFU_INIT_VAL
EVICTION_TRIES: Final = 16        # samples drawn before concluding that only replicas' keys are left


def value_size(value: Any) -> int:
    """Estimated bytes held by a value: exact payload plus object overhead."""
    if type(value) is bytes:
        return len(value) + STRING_OVERHEAD
    return value.nbytes     # containers keep their own running estimate


def type_name(value: Any) -> bytes:
    """The TYPE reply for a value."""
    if type(value) is bytes:
        return b"string"
    return value.type_name


@dataclass(slots=True)
class StoreStats:
    expired_keys: int = 0
    evicted_keys: int = 0
    keyspace_hits: int = 0
    keyspace_misses: int = 0


@dataclass(slots=True)
class Store:
    """All keys of this node, grouped by slot."""

    slots: list[dict[bytes, Any]] = field(default_factory=lambda: [{} for _ in range(SLOT_COUNT)])
    expires: dict[bytes, int] = field(default_factory=dict)
    used_memory: int = 0
    # The clients' query and output buffers held across hub turns (hypercache/connection.py keeps
    # it): maxmemory counts them, as Redis's used_memory does, so a 300 MB bulk still arriving is
    # seen by the OOM check and by eviction, not only by the kernel.
    client_memory: int = 0
    key_count: int = 0
    stats: StoreStats = field(default_factory=StoreStats)
    # eviction: policy and, only when the policy needs it, access metadata
    maxmemory: int = 0
    policy: str = "noeviction"
    access: dict[bytes, int] | None = None
    clock_ms: int = 0          # the latest now_ms seen: the LRU stamp of writes (Redis's lruclock)
    # Redis keeps every object's access time whatever the policy; here they cost each read a
    # dict write and each key ~50 bytes, so a policy without LRU or LFU keeps none until the
    # first OBJECT IDLETIME (keep_access_times), and keys not accessed since read as idle
    # since then. None: never asked.
    idle_asked_at_ms: int | None = None
    # called with a key whenever it is written, expired or evicted (WATCH, blocked pops,
    # keyspace notifications, client tracking: hypercache/keyevents.py installs them)
    on_modified: Callable[[bytes], None] | None = None
    on_removed: Callable[[bytes, bytes], None] | None = None   # (key, b"expired" | b"evicted")
    on_created: Callable[[bytes], None] | None = None          # a key that did not exist was set
    on_miss: Callable[[bytes], None] | None = None             # a read found no key
    # The replication seam: every key written, expired or evicted is appended here with
    # its slot, and hypercache/replication.py ships their states once per loop iteration.
    # None while no slot of this node has a replica (no cost then). (The slot travels with
    # the key because set() and delete() know it: the commit need not hash the key again.)
    written: list[tuple[int, bytes]] | None = None
    # Slots this node holds as a replica (1 per slot): their keys are the primary's to
    # evict, so eviction never picks them here. None: no slot is held as a replica.
    replica_slots: bytearray | None = None
    # False while a CLIENT NO-TOUCH client's command runs: its lookups are no access
    touching: bool = True
    _deadlines: list[tuple[int, bytes]] = field(default_factory=list)

    # -- reading -------------------------------------------------------------------

    # Three lookups, as Redis has: a read counts a keyspace hit or miss (INFO's
    # hit ratio) and records an access for LRU/LFU; a write's lookup records
    # the access only; a peek does neither. Each removes an expired key.

    def get(self, slot: int, key: bytes, now_ms: int, touch: bool = True) -> Any:
        """A read (Redis's lookupKeyRead): the live value of `key` or None, counted.

        touch=False is Redis's LOOKUP_NOTOUCH (TYPE, EXISTS, TTL, OBJECT):
        counted, but not an access for eviction.
        """
        value = self.slots[slot].get(key)
        if value is None:
            self.stats.keyspace_misses += 1
            if self.on_miss is not None:
                self.on_miss(key)
            return None
        if self.expires and key in self.expires and self.expires[key] <= now_ms:
            self._expire(slot, key)
            self.stats.keyspace_misses += 1
            if self.on_miss is not None:
                self.on_miss(key)
            return None
        self.stats.keyspace_hits += 1
        access = self.access
        if touch and access is not None and self.touching:
            self._record_access(access, key, now_ms)
        return value

    def get_for_write(self, slot: int, key: bytes, now_ms: int) -> Any:
        """A write's lookup (Redis's lookupKeyWrite): the live value or None, not counted."""
        value = self.slots[slot].get(key)      # (peek(), inlined: every write command runs this)
        if value is None:
            return None
        if self.expires and key in self.expires and self.expires[key] <= now_ms:
            self._expire(slot, key)
            return None
        access = self.access
        if access is not None and self.touching:
            self._record_access(access, key, now_ms)
        return value

    def peek(self, slot: int, key: bytes, now_ms: int) -> Any:
        """The live value of `key` or None, neither counted nor an access (DEL, MEMORY USAGE)."""
        value = self.slots[slot].get(key)
        if value is not None and self.expires and key in self.expires and self.expires[key] <= now_ms:
            self._expire(slot, key)
            return None
        return value

    def ttl_ms(self, key: bytes, now_ms: int) -> int | None:
        """Milliseconds left, or None when the key has no deadline."""
        deadline = self.expires.get(key)
        return None if deadline is None else max(0, deadline - now_ms)

    # -- writing -------------------------------------------------------------------

    def set(self, slot: int, key: bytes, value: Any, keep_ttl: bool = False) -> None:
        """Store `value` under `key`, replacing any value (and, unless keep_ttl, its TTL)."""
        keys = self.slots[slot]
        old = keys.get(key)
        # value_size() inlined for strings: this is the SET hot path
        size = len(value) + STRING_OVERHEAD if type(value) is bytes else value.nbytes
        if old is None:
            self.key_count += 1
            self.used_memory += len(key) + KEY_OVERHEAD + size
            if self.on_created is not None:
                self.on_created(key)
        else:
            self.used_memory += size - (len(old) + STRING_OVERHEAD if type(old) is bytes else old.nbytes)
            if not keep_ttl and self.expires and key in self.expires:
                self._drop_deadline(key)
        keys[key] = value
        if self.access is not None:
            # A write is an access: a fresh key must not rank as the coldest one
            # (Redis stamps new objects with the LRU clock, or LFU_INIT).
            if self.policy.endswith("-lfu"):
                self.access.setdefault(key, LFU_INIT)
            else:
                self.access[key] = self.clock_ms
        if self.written is not None:
            self.written.append((slot, key))
        if self.on_modified is not None:
            self.on_modified(key)

    def set_many(self, slot: int, keys: list[bytes], values: list[bytes]) -> None:
        """set() of each of `keys` to its value in turn (MSET), the per-key work done in bulk.

        Without hooks or access times to keep, and with no key twice, the pairs go in
        by one dict update and their sizes are summed in C; only the keys that existed
        are visited one by one (their old sizes, their deadlines). One set() call per
        key was most of a 500k-key MSET's hub time as Python.
        """
        if (self.on_created is not None or self.on_modified is not None or self.access is not None
                or len(set(keys)) != len(keys)):
            for key, value in zip(keys, values):
                self.set(slot, key, value)
            return
        slot_keys = self.slots[slot]
        olds = list(map(slot_keys.get, keys))
        count = len(keys)
        used = sum(map(len, keys)) + sum(map(len, values)) + (KEY_OVERHEAD + STRING_OVERHEAD) * count
        created = olds.count(None)
        if created != count:
            expires = self.expires
            for key, old in zip(keys, olds):
                if old is not None:
                    used -= len(key) + KEY_OVERHEAD + value_size(old)
                    if expires and key in expires:
                        self._drop_deadline(key)
        slot_keys.update(zip(keys, values))
        self.key_count += created
        self.used_memory += used
        if self.written is not None:
            self.written.extend(zip(repeat(slot), keys))

    def resized(self, key: bytes, delta: int) -> None:
        """A container under `key` changed in place by `delta` bytes (and was modified)."""
        self.used_memory += delta
        if self.written is not None:
            self.written.append((keyslot(key), key))
        if self.on_modified is not None:
            self.on_modified(key)

    def delete(self, slot: int, key: bytes) -> bool:
        keys = self.slots[slot]
        value = keys.pop(key, None)
        if value is None:
            return False
        self.key_count -= 1
        self.used_memory -= len(key) + KEY_OVERHEAD + value_size(value)
        if key in self.expires:
            self._drop_deadline(key)
        if self.access is not None:
            self.access.pop(key, None)
        if self.written is not None:
            self.written.append((slot, key))
        if self.on_modified is not None:
            self.on_modified(key)
        return True

    def delete_many(self, slot: int, keys: list[bytes], now_ms: int) -> int:
        """DEL of `keys`: how many were live (an expired one expires instead, and is not counted).

        Without deadlines, hooks or access times, the keys are popped in C and only the
        ones that existed are visited (their sizes, the replication seam).
        """
        slot_keys = self.slots[slot]
        if self.expires or self.access is not None or self.on_modified is not None:
            count = 0
            for key in keys:
                if self.peek(slot, key, now_ms) is not None and self.delete(slot, key):
                    count += 1
            return count
        olds = list(map(slot_keys.pop, keys, repeat(None)))
        gone = [(key, old) for key, old in zip(keys, olds) if old is not None]
        if gone:
            self.key_count -= len(gone)
            self.used_memory -= sum([len(key) + KEY_OVERHEAD + value_size(old) for key, old in gone])
            if self.written is not None:
                self.written.extend([(slot, key) for key, _ in gone])
        return len(gone)

    def set_deadline(self, key: bytes, deadline_ms: int) -> None:
        """Give an existing key an absolute expiry time (ms)."""
        if key not in self.expires:
            self.used_memory += EXPIRE_OVERHEAD
        self.expires[key] = deadline_ms
        heapq.heappush(self._deadlines, (deadline_ms, key))
        if len(self._deadlines) > 2 * len(self.expires) + 1024:
            self._deadlines = [(at, k) for k, at in self.expires.items()]
            heapq.heapify(self._deadlines)
        if self.written is not None:
            self.written.append((keyslot(key), key))
        if self.on_modified is not None:
            self.on_modified(key)

    def persist(self, key: bytes) -> bool:
        if key not in self.expires:
            return False
        self._drop_deadline(key)
        if self.written is not None:
            self.written.append((keyslot(key), key))
        if self.on_modified is not None:
            self.on_modified(key)
        return True

    def _drop_deadline(self, key: bytes) -> None:
        del self.expires[key]
        self.used_memory -= EXPIRE_OVERHEAD
        # the heap entry turns stale and is skipped when it surfaces

    def flush(self) -> int:
        """Remove every key (but those of slots held as a replica: the primary's); how many there were."""
        if self.replica_slots is not None:
            replica_slots = self.replica_slots
            return sum(self.flush_slot(slot) for slot in range(SLOT_COUNT)
                       if self.slots[slot] and not replica_slots[slot])
        removed = self.key_count
        touched = ([(slot, k) for slot, keys in enumerate(self.slots) for k in keys]
                   if self.on_modified is not None or self.written is not None else [])
        self.slots = [{} for _ in range(SLOT_COUNT)]
        self.expires.clear()
        self._deadlines = []
        self.used_memory = 0
        self.key_count = 0
        if self.access is not None:
            self.access = {}
        if self.written is not None:
            self.written.extend(touched)
        if self.on_modified is not None:
            for _, key in touched:
                self.on_modified(key)
        return removed

    def flush_slot(self, slot: int) -> int:
        keys = list(self.slots[slot])
        for key in keys:
            self.delete(slot, key)
        return len(keys)

    # -- expiry ----------------------------------------------------------------------

    def _expire(self, slot: int, key: bytes) -> None:
        self.delete(slot, key)
        self.stats.expired_keys += 1
        if self.on_removed is not None:
            self.on_removed(key, b"expired")

    def expire_due(self, now_ms: int, keyslot: Callable[[bytes], int], budget: int = 200) -> int:
        """Active expiry: remove up to `budget` keys whose deadline has passed.

        Bounded work per call, so the caller can run it often without stalling
        clients (Redis bounds its active cycle by time for the same reason).
        """
        self.clock_ms = now_ms
        removed = 0
        heap = self._deadlines
        while heap and removed < budget and heap[0][0] <= now_ms:
            deadline, key = heapq.heappop(heap)
            if self.expires.get(key) != deadline:
                continue    # stale: the TTL was changed or removed
            self._expire(keyslot(key), key)
            removed += 1
        return removed

    # -- iteration -------------------------------------------------------------------

    def keys_in_slot(self, slot: int, now_ms: int) -> Iterator[bytes]:
        expires = self.expires
        for key in list(self.slots[slot]):
            if key in expires and expires[key] <= now_ms:
                continue
            yield key

    def own_key_count(self) -> int:
        """Keys of the slots this node does not merely replicate (DBSIZE: each key counted once per cluster)."""
        replica_slots = self.replica_slots
        if replica_slots is None:
            return self.key_count
        slots = self.slots
        return self.key_count - sum(len(slots[slot]) for slot in range(SLOT_COUNT) if replica_slots[slot])

    def scan(self, cursor: int, count: int, now_ms: int,
             replicas: bool = False) -> tuple[int, list[bytes]]:
        """Return (next cursor, keys) walking whole slots until `count` keys are found.

        The cursor is a slot number. Every slot is returned whole in one call,
        so a key present for the whole scan is never missed and never repeated,
        whatever is written meanwhile.
        """
        out: list[bytes] = []
        slot = cursor
        skip = None if replicas else self.replica_slots
        beat_at = EVERY         # (a COUNT of millions: the heartbeat goes on, hypercache/pulse.py)
        while slot < SLOT_COUNT and len(out) < count:
            if self.slots[slot] and not (skip is not None and skip[slot]):
                out.extend(self.keys_in_slot(slot, now_ms))
                if len(out) >= beat_at:
                    beat()
                    beat_at = len(out) + EVERY
            slot += 1
        return (0 if slot >= SLOT_COUNT else slot), out

    def random_key(self, now_ms: int, keyslot: Callable[[bytes], int]) -> bytes | None:
        for _ in range(100):
            key = self._sample_any()
            if key is None:
                return None
            if self.peek(keyslot(key), key, now_ms) is not None:
                return key
        return None

    def _sample_any(self) -> bytes | None:
        """A roughly uniform random key: a random non-empty slot, a random key in it."""
        if self.key_count == 0:
            return None
        slots = self.slots
        for _ in range(64):
            keys = slots[random.randrange(SLOT_COUNT)]
            if keys:
                return next(islice(iter(keys), random.randrange(min(len(keys), 64)), None))
        # Sparse keyspace: walk to the next non-empty slot from a random point.
        # (Always taking the first key in slot order biased every eviction
        # sample toward one key, so LRU/LFU degraded to "evict in slot order".)
        start = random.randrange(SLOT_COUNT)
        for offset in range(SLOT_COUNT):
            keys = slots[(start + offset) % SLOT_COUNT]
            if keys:
                return next(islice(iter(keys), random.randrange(min(len(keys), 64)), None))
        return None

    def _sample_volatile(self) -> bytes | None:
        heap = self._deadlines
        for _ in range(16):
            if not heap:
                return None
            deadline, key = heap[random.randrange(len(heap))]
            if self.expires.get(key) == deadline:
                return key
        return None

    # -- eviction --------------------------------------------------------------------

    def configure_eviction(self, maxmemory: int, policy: str) -> None:
        if policy not in EVICTION_POLICIES:
            raise ValueError(policy)
        self.maxmemory = maxmemory
        self.policy = policy
        tracks = policy.endswith("-lru") or policy.endswith("-lfu") or self.idle_asked_at_ms is not None
        if tracks and self.access is None:
            self.access = {}
        elif not tracks:
            self.access = None

    def keep_access_times(self, now_ms: int) -> None:
        """OBJECT IDLETIME was asked: keep access times from now on, whatever the policy."""
        if self.idle_asked_at_ms is None:
            self.idle_asked_at_ms = self.clock_ms = now_ms
        if self.access is None:
            self.access = {}

    def _record_access(self, access: dict[bytes, int], key: bytes, now_ms: int) -> None:
        if self.policy.endswith("-lfu"):
            access[key] = lfu_increment(access.get(key, LFU_INIT))
        else:
            access[key] = self.clock_ms = now_ms

    def over_maxmemory(self) -> bool:
        return self.maxmemory > 0 and self.used_memory + self.client_memory > self.maxmemory

    def evict(self, keyslot: Callable[[bytes], int]) -> bool:
        """Evict keys by the policy until under maxmemory; False if that is impossible."""
        if self.policy == "noeviction":
            return not self.over_maxmemory()
        replica_slots = self.replica_slots
        while self.over_maxmemory():
            for _ in range(EVICTION_TRIES):
                victim = self._pick_victim()
                if victim is None:
                    return False
                slot = keyslot(victim)
                if replica_slots is None or not replica_slots[slot]:
                    break
            else:
                return False    # only replicas' keys found: nothing here is ours to evict
            self.delete(slot, victim)
            self.stats.evicted_keys += 1
            if self.on_removed is not None:
                self.on_removed(victim, b"evicted")
        return True

    def _pick_victim(self) -> bytes | None:
        """Sample EVICTION_SAMPLES candidates and pick the worst, as Redis approximates."""
        policy = self.policy
        sample = self._sample_volatile if policy.startswith("volatile") else self._sample_any
        candidates = [k for k in (sample() for _ in range(EVICTION_SAMPLES)) if k is not None]
        if not candidates:
            return None
        if policy.endswith("random"):
            return candidates[0]
        if policy == "volatile-ttl":
            return min(candidates, key=lambda k: self.expires.get(k, 0))
        access = self.access or {}
        # lru: oldest access first; lfu: smallest counter first (never-read keys rank lowest)
        return min(candidates, key=lambda k: access.get(k, 0))


def lfu_increment(counter: int) -> int:
    """Redis's logarithmic LFU counter (lfu-log-factor 10): harder to grow the higher it is."""
    if counter >= 255:
        return 255
    base = max(0, counter - LFU_INIT)
    if random.random() < 1.0 / (base * 10 + 1):
        return counter + 1
    return counter
