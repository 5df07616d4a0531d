"""String, generic-key and transaction commands, run through the real Dispatcher with no sockets.

A Context, Store and Session are built exactly as hypercache.node composes
them (minus the I/O), time is set by hand through `ctx.now_ms`, and each
request goes through `Dispatcher.execute`, so arity, routing and MULTI
queueing are the production ones. Expected replies and error texts were
taken from redis-server 7.0.15.
"""
from __future__ import annotations

import pytest

from hypercache import commands
from hypercache.blocking import Blocking
from hypercache.config import Config, Settings
from hypercache.context import Context
from hypercache.dispatch import Dispatcher
from hypercache.keyevents import KeyEvents
from hypercache.reply import NULL_ARRAY, OK, QUEUED, CommandError, Status
from hypercache.session import Session
from hypercache.stats import ServerStats
from hypercache.store import Store
from hypercache.types import List
from mesh.keyslot import keyslot
from mesh.slotmap import Member, SlotMap

NOW = 1_700_000_000_000
NODE_ID = "a" * 40


class LoneCluster:
    """The cluster view of a one-member cluster: a real SlotMap owning every slot."""

    def __init__(self) -> None:
        self.slotmap = SlotMap.single(Member(NODE_ID, "127.0.0.1", 7000, 17000, 0))
        self.writes_until = float("inf")      # monotonic deadline of accepting_writes()

    def accepting_writes(self) -> bool:
        return True


class Node:
    """The sans-IO node: call it like redis-cli, get reply values back."""

    def __init__(self, maxmemory: int = 0, policy: str = "noeviction") -> None:
        commands.load_all()
        self.store = Store()
        self.store.configure_eviction(maxmemory, policy)
        self.ctx = Context(config=Config(), settings=Settings(), store=self.store, stats=ServerStats(),
                           cluster=LoneCluster(), node_id=NODE_ID, blocking=Blocking(), now_ms=NOW)
        self.ctx.key_events = KeyEvents(self.store, self.ctx.blocking)
        self.ctx.dispatcher = Dispatcher(self.ctx)
        self.session = Session(id=1)
        self.next_id = 1

    def new_session(self) -> Session:
        self.next_id += 1
        return Session(id=self.next_id)

    def __call__(self, *args, session: Session | None = None):
        raw = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        return self.ctx.dispatcher.execute(session or self.session, raw)

    def error(self, *args, session: Session | None = None) -> str:
        reply = self(*args, session=session)
        assert isinstance(reply, CommandError), f"expected an error, got {reply!r}"
        return str(reply)

    def advance(self, ms: int) -> None:
        self.ctx.now_ms += ms

    def put(self, key: bytes, value) -> None:
        """Store a container directly (the container commands are another module's)."""
        self.store.set(keyslot(key), key, value)


@pytest.fixture
def node() -> Node:
    return Node()


WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "ERR value is not an integer or out of range"


def a_list(*items: bytes) -> List:
    return List(items)


# -- SET and its options ----------------------------------------------------------------------


def test_set_get_roundtrip_is_binary_safe(node):
    assert node("SET", b"k\x00\r\n", b"\xff\x00v") is OK
    assert node("GET", b"k\x00\r\n") == b"\xff\x00v"
    assert node("GET", "missing") is None


def test_set_nx_xx_get(node):
    assert node("SET", "k", "1", "XX") is None
    assert node("SET", "k", "1", "NX") is OK
    assert node("SET", "k", "2", "NX") is None
    assert node("SET", "k", "2", "NX", "GET") == b"1"
    assert node("SET", "k", "3", "XX", "GET") == b"1"
    assert node("SET", "k", "4", "GET", "GET") == b"3"
    assert node("SET", "new", "v", "GET") is None
    assert node("GET", "new") == b"v"


@pytest.mark.parametrize("args", [
    ("NX", "XX"), ("XX", "NX"), ("KEEPTTL", "EX", "10"), ("PX", "100", "EX", "10"),
    ("EX",), ("EX", "abc", "foo"), ("PERSIST",), ("FOO",),
])
def test_set_option_conflicts_are_syntax_errors(node, args):
    assert node.error("SET", "k", "v", *args) == "ERR syntax error"


def test_set_repeated_expiry_option_last_wins(node):
    node("SET", "k", "v", "EX", "10", "EX", "20")
    assert node("TTL", "k") == 20


@pytest.mark.parametrize("args", [
    ("EX", "0"), ("EX", "-1"), ("PX", "0"), ("PXAT", "0"),
    ("EX", "9223372036854775807"), ("PX", "9223372036854775807"), ("EXAT", "9223372036854775807"),
])
def test_set_invalid_expire_times(node, args):
    assert node.error("SET", "k", "v", *args) == "ERR invalid expire time in 'set' command"


def test_set_expire_not_a_number(node):
    assert node.error("SET", "k", "v", "EX", "abc") == NOT_INTEGER


def test_set_ttl_options(node):
    node("SET", "k", "v", "EX", "100")
    assert node("PTTL", "k") == 100_000
    node("SET", "k", "v", "PX", "1500")
    assert node("PTTL", "k") == 1500
    node("SET", "k", "v", "EXAT", str(NOW // 1000 + 50))
    assert node("TTL", "k") == 50
    node("SET", "k", "v", "PXAT", str(NOW + 777))
    assert node("PTTL", "k") == 777
    node("SET", "k", "w", "KEEPTTL")
    assert node("PTTL", "k") == 777
    node("SET", "k", "x")
    assert node("PTTL", "k") == -1


def test_set_deadline_in_the_past_leaves_no_key(node):
    assert node("SET", "k", "v", "EXAT", "1") is OK
    assert node("EXISTS", "k") == 0


def test_set_get_on_wrong_type(node):
    node.put(b"l", a_list(b"x"))
    for extra in ((), ("NX",), ("XX",)):
        assert node.error("SET", "l", "v", "GET", *extra) == WRONGTYPE
    assert node("SET", "l", "v") is OK        # plain SET replaces any type
    assert node("GET", "l") == b"v"


def test_setnx_setex_psetex(node):
    assert node("SETNX", "k", "1") == 1
    assert node("SETNX", "k", "2") == 0
    assert node("SETEX", "k", "10", "v") is OK
    assert node("TTL", "k") == 10
    assert node("PSETEX", "k", "2500", "v") is OK
    assert node("PTTL", "k") == 2500
    assert node.error("SETEX", "k", "0", "v") == "ERR invalid expire time in 'setex' command"
    assert node.error("SETEX", "k", "9223372036854775807", "v") == "ERR invalid expire time in 'setex' command"
    assert node.error("PSETEX", "k", "-5", "v") == "ERR invalid expire time in 'psetex' command"
    assert node.error("SETEX", "k", "x", "v") == NOT_INTEGER


def test_mget_mset_msetnx(node):
    assert node("MSET", "{m}a", "1", "{m}b", "2") is OK
    assert node.error("MSET", "{m}a", "1", "{m}b") == "ERR wrong number of arguments for 'mset' command"
    assert node.error("MSETNX", "{m}a", "1", "{m}b") == "ERR wrong number of arguments for 'msetnx' command"
    node.put(b"{m}l", a_list(b"x"))
    assert node("MGET", "{m}a", "{m}b", "{m}nokey", "{m}l") == [b"1", b"2", None, None]
    assert node("MSETNX", "{m}a", "9", "{m}c", "3") == 0
    assert node("GET", "{m}c") is None
    assert node("MSETNX", "{m}c", "3", "{m}d", "4") == 1
    assert node("MGET", "{m}c", "{m}d") == [b"3", b"4"]


def test_multi_key_commands_across_slots_are_crossslot(node):
    assert node.error("MSET", "a", "1", "b", "2") == "CROSSSLOT Keys in request don't hash to the same slot"
    assert node.error("MGET", "foo", "bar") == "CROSSSLOT Keys in request don't hash to the same slot"


def test_getset_getdel(node):
    assert node("GETSET", "k", "1") is None
    node("EXPIRE", "k", "100")
    assert node("GETSET", "k", "2") == b"1"
    assert node("TTL", "k") == -1                # GETSET drops the TTL like SET
    assert node("GETDEL", "k") == b"2"
    assert node("GETDEL", "k") is None
    node.put(b"l", a_list(b"x"))
    assert node.error("GETSET", "l", "x") == WRONGTYPE
    assert node.error("GETDEL", "l") == WRONGTYPE


def test_getex(node):
    node("SET", "k", "v")
    assert node("GETEX", "k") == b"v"
    assert node("GETEX", "k", "EX", "100") == b"v"
    assert node("TTL", "k") == 100
    assert node("GETEX", "k", "PERSIST") == b"v"
    assert node("TTL", "k") == -1
    assert node("GETEX", "k", "PXAT", str(NOW + 5)) == b"v"
    assert node("PTTL", "k") == 5
    assert node.error("GETEX", "k", "EX", "0") == "ERR invalid expire time in 'getex' command"
    for bad in (("EX", "10", "PX", "10"), ("PERSIST", "EX", "10"), ("NX",), ("KEEPTTL",), ("GET",)):
        assert node.error("GETEX", "k", *bad) == "ERR syntax error"
    # the key is looked up before the expiry is validated, as in Redis
    assert node("GETEX", "nokey", "EXAT", "abc") is None
    assert node("GETEX", "k", "EXAT", "1") == b"v"
    assert node("EXISTS", "k") == 0
    node.put(b"l", a_list(b"x"))
    assert node.error("GETEX", "l", "PERSIST") == WRONGTYPE


def test_append_strlen(node):
    assert node("APPEND", "k", "hello") == 5
    node("EXPIRE", "k", "100")
    assert node("APPEND", "k", " world") == 11
    assert node("GET", "k") == b"hello world"
    assert node("TTL", "k") == 100               # APPEND keeps the TTL
    assert node("STRLEN", "k") == 11
    assert node("STRLEN", "nokey") == 0
    assert node("APPEND", "empty", "") == 0
    assert node("EXISTS", "empty") == 1          # APPEND "" still creates the key
    node.put(b"l", a_list(b"x"))
    assert node.error("APPEND", "l", "x") == WRONGTYPE
    assert node.error("STRLEN", "l") == WRONGTYPE


def test_append_past_proto_max_bulk_len(node):
    node.ctx.settings.proto_max_bulk_len = 10
    node("SET", "k", "123456")
    assert node.error("APPEND", "k", "12345") == "ERR string exceeds maximum allowed size (proto-max-bulk-len)"


# -- counters -------------------------------------------------------------------------------


def test_incr_family(node):
    assert node("INCR", "n") == 1
    assert node("INCRBY", "n", "-5") == -4
    assert node("DECR", "n") == -5
    assert node("DECRBY", "n", "10") == -15
    assert node("GET", "n") == b"-15"
    node("EXPIRE", "n", "100")
    node("INCR", "n")
    assert node("TTL", "n") == 100               # counters keep the TTL


@pytest.mark.parametrize("value", [b"hello", b" 1", b"01", b"1e3", b"+1", b"1.0", b"", b"9223372036854775808"])
def test_incr_refuses_non_integers(node, value):
    node("SET", "k", value)
    assert node.error("INCR", "k") == NOT_INTEGER


def test_incr_overflow(node):
    node("SET", "big", "9223372036854775807")
    assert node.error("INCR", "big") == "ERR increment or decrement would overflow"
    node("SET", "small", "-9223372036854775808")
    assert node.error("DECR", "small") == "ERR increment or decrement would overflow"
    assert node.error("DECRBY", "small", "1") == "ERR increment or decrement would overflow"
    assert node.error("DECRBY", "x", "-9223372036854775808") == "ERR decrement would overflow"
    assert node.error("INCRBY", "x", "abc") == NOT_INTEGER
    assert node.error("INCRBY", "x", "9223372036854775808") == NOT_INTEGER
    node.put(b"l", a_list(b"x"))
    assert node.error("INCR", "l") == WRONGTYPE


@pytest.mark.parametrize("start, increment, expected", [
    # each expected value was produced by redis-server 7.0.15 (x86-64 long double)
    (b"10.5", b"0.1", b"10.6"),
    (b"1.2", b"0.1", b"1.3"),
    (b"0.1", b"0.2", b"0.3"),
    (b"3", b"1.5e3", b"1503"),
    (b"5.0e3", b"2.0e2", b"5200"),
    (None, b"-0", b"0"),
    (None, b"1e20", b"100000000000000000000"),
    (None, b"1e-5", b"0.00001"),
    (None, b"0.3333333333333333", b"0.3333333333333333"),
    (None, b"123456789012345678901234567890", b"123456789012345678899921813504"),
    (None, b"1.", b"1"),
    (None, b".5", b"0.5"),
    (None, b"0x10", b"16"),
    (b"1e3", b"0", b"1000"),
])
def test_incrbyfloat_matches_redis_long_double(node, start, increment, expected):
    if start is not None:
        node("SET", "f", start)
    assert node("INCRBYFLOAT", "f", increment) == expected
    assert node("GET", "f") == expected


def test_incrbyfloat_huge_values_print_in_full(node):
    reply = node("INCRBYFLOAT", "f", "1e308")
    assert reply.startswith(b"99999999999999999996685879655845645660560099847415567207797047994921734868838")
    assert len(reply) == 308 and b"." not in reply and b"e" not in reply


def test_incrbyfloat_errors(node):
    node("SET", "s", "hello")
    assert node.error("INCRBYFLOAT", "s", "1") == "ERR value is not a valid float"
    node("SET", "sp", " 1.5")
    assert node.error("INCRBYFLOAT", "sp", "1") == "ERR value is not a valid float"
    for bad in ("abc", "  1", "nan", "1e99999", "", "1_0"):
        assert node.error("INCRBYFLOAT", "f", bad) == "ERR value is not a valid float"
    assert node.error("INCRBYFLOAT", "f", "inf") == "ERR increment would produce NaN or Infinity"
    node("SET", "i", "inf")
    assert node.error("INCRBYFLOAT", "i", "-inf") == "ERR increment would produce NaN or Infinity"
    node.put(b"l", a_list(b"x"))
    assert node.error("INCRBYFLOAT", "l", "1") == WRONGTYPE


# -- ranges ---------------------------------------------------------------------------------


@pytest.mark.parametrize("start, end, expected", [
    (0, 4, b"hello"), (-5, -1, b"world"), (5, 1, b""), (-100, 100, b"hello world"),
    (100, 200, b""), (0, -100, b"h"), (-1, -5, b""), (6, -1, b"world"),
])
def test_getrange_clamps_like_redis_7_0(node, start, end, expected):
    node("SET", "k", "hello world")
    assert node("GETRANGE", "k", start, end) == expected
    assert node("SUBSTR", "k", start, end) == expected


def test_getrange_missing_and_errors(node):
    assert node("GETRANGE", "nokey", 0, 1) == b""
    assert node.error("GETRANGE", "k", "x", 1) == NOT_INTEGER
    node.put(b"l", a_list(b"x"))
    assert node.error("GETRANGE", "l", 0, 1) == WRONGTYPE


def test_setrange(node):
    assert node("SETRANGE", "k", 5, "x") == 6
    assert node("GET", "k") == b"\x00\x00\x00\x00\x00x"
    assert node("SETRANGE", "k", 2, "abcdefghijk") == 13
    assert node("GET", "k") == b"\x00\x00abcdefghijk"
    node("SET", "h", "Hello World")
    assert node("SETRANGE", "h", 6, "Redis") == 11
    assert node("GET", "h") == b"Hello Redis"
    assert node("SETRANGE", "h", 100, "") == 11          # empty patch: no change
    assert node("SETRANGE", "nokey", 0, "") == 0
    assert node("EXISTS", "nokey") == 0                  # ... and no key created
    assert node.error("SETRANGE", "k", -1, "x") == "ERR offset is out of range"
    assert node.error("SETRANGE", "k", 536870912, "x") == \
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    node.put(b"l", a_list(b"x"))
    assert node.error("SETRANGE", "l", 0, "x") == WRONGTYPE


def test_lcs(node):
    node("MSET", "{k}1", "ohmytext", "{k}2", "mynewtext")
    assert node("LCS", "{k}1", "{k}2") == b"mytext"
    assert node("LCS", "{k}1", "{k}2", "LEN") == 6
    assert node("LCS", "{k}1", "{k}2", "IDX") == \
        [b"matches", [[[4, 7], [5, 8]], [[2, 3], [0, 1]]], b"len", 6]
    assert node("LCS", "{k}1", "{k}2", "IDX", "MINMATCHLEN", 4, "WITHMATCHLEN") == \
        [b"matches", [[[4, 7], [5, 8], 4]], b"len", 6]
    assert node("LCS", "{k}1", "{k}2", "IDX", "WITHMATCHLEN") == \
        [b"matches", [[[4, 7], [5, 8], 4], [[2, 3], [0, 1], 2]], b"len", 6]
    assert node("LCS", "{k}1", "{k}nokey") == b""
    assert node("LCS", "{k}x", "{k}y", "IDX") == [b"matches", [], b"len", 0]
    assert node.error("LCS", "{k}1", "{k}2", "LEN", "IDX") == \
        "ERR If you want both the length and indexes, please just use IDX."
    assert node.error("LCS", "{k}1", "{k}2", "MINMATCHLEN") == "ERR syntax error"
    node.put(b"{k}l", a_list(b"x"))
    assert node.error("LCS", "{k}1", "{k}l", "foo") == "ERR The specified keys must contain string values"
    node.session.protocol = 3
    assert node("LCS", "{k}1", "{k}2", "IDX") == {b"matches": [[[4, 7], [5, 8]], [[2, 3], [0, 1]]], b"len": 6}


# -- generic keys ---------------------------------------------------------------------------


def test_del_exists_unlink_touch_type(node):
    node("SET", "{t}a", "1")
    node.put(b"{t}l", a_list(b"x"))
    assert node("EXISTS", "{t}a", "{t}a", "{t}nokey", "{t}l") == 3
    assert node("TYPE", "{t}a") == Status(b"string")
    assert type(node("TYPE", "{t}a")) is Status
    assert node("TYPE", "{t}l") == Status(b"list")
    assert node("TYPE", "{t}nokey") == Status(b"none")
    assert node("TOUCH", "{t}a", "{t}l", "{t}nokey") == 2
    assert node("DEL", "{t}a", "{t}a", "{t}nokey", "{t}l") == 2
    assert node("UNLINK", "{t}a") == 0
    assert node.store.key_count == 0


def test_del_of_an_expired_key_counts_nothing(node):
    node("SET", "k", "v", "PX", "10")
    node.advance(10)
    assert node("DEL", "k") == 0
    assert node.store.stats.expired_keys == 1


def test_expire_options_and_errors(node):
    node("SET", "a", "1")
    assert node.error("EXPIRE", "a", 100, "NX", "XX") == \
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    assert node.error("EXPIRE", "a", 100, "NX", "GT") == \
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    assert node.error("EXPIRE", "a", 100, "GT", "LT") == "ERR GT and LT options at the same time are not compatible"
    assert node.error("EXPIRE", "a", 100, "foo") == "ERR Unsupported option foo"
    assert node.error("EXPIRE", "a", "abc") == NOT_INTEGER
    assert node("EXPIRE", "a", 100, "XX") == 0
    assert node("EXPIRE", "a", 100, "GT") == 0       # no TTL counts as infinite
    assert node("EXPIRE", "a", 100, "LT") == 1
    assert node("EXPIRE", "a", 200, "LT") == 0
    assert node("EXPIRE", "a", 50, "GT") == 0
    assert node("EXPIRE", "a", 50, "NX") == 0
    assert node("EXPIRE", "a", 200, "GT") == 1
    assert node("EXPIRE", "a", 150, "XX", "LT") == 1
    assert node("TTL", "a") == 150
    assert node("EXPIRE", "nokey", 10) == 0


@pytest.mark.parametrize("args", [
    ("EXPIRE", "9223372036854775807"), ("EXPIRE", "9223372036854775"),
    ("EXPIRE", "-9223372036854775808"), ("PEXPIRE", "9223372036854775807"),
    ("EXPIREAT", "9223372036854775807"),
])
def test_expire_overflow(node, args):
    node("SET", "a", "1")
    name = args[0].lower()
    assert node.error(args[0], "a", args[1]) == f"ERR invalid expire time in '{name}' command"


def test_expire_far_future_is_accepted(node):
    node("SET", "a", "1")
    assert node("PEXPIREAT", "a", "9223372036854775807") == 1
    assert node("EXPIRE", "a", "9223372036854") == 1


@pytest.mark.parametrize("args", [("EXPIRE", "-1"), ("PEXPIRE", "0"), ("EXPIREAT", "1"), ("PEXPIREAT", "1")])
def test_past_deadline_deletes_the_key(node, args):
    node("SET", "a", "1")
    assert node(args[0], "a", args[1]) == 1
    assert node("EXISTS", "a") == 0
    assert node.store.stats.expired_keys == 0      # a DEL, not an expiry, as in Redis


def test_ttl_family(node):
    assert node("TTL", "nokey") == -2
    assert node("PTTL", "nokey") == -2
    assert node("EXPIRETIME", "nokey") == -2
    node("SET", "k", "v")
    assert (node("TTL", "k"), node("PTTL", "k"), node("EXPIRETIME", "k"), node("PEXPIRETIME", "k")) == (-1,) * 4
    node("PEXPIRE", "k", 1499)
    assert node("TTL", "k") == 1                   # rounded to the nearest second
    node("PEXPIRE", "k", 1500)
    assert node("TTL", "k") == 2
    node("EXPIREAT", "k", 4_000_000_000)
    assert node("EXPIRETIME", "k") == 4_000_000_000
    assert node("PEXPIRETIME", "k") == 4_000_000_000_000
    node("PEXPIREAT", "k", NOW + 1500)
    assert node("EXPIRETIME", "k") == (NOW + 1500 + 500) // 1000


def test_persist(node):
    node("SET", "k", "v", "EX", "10")
    assert node("PERSIST", "k") == 1
    assert node("PERSIST", "k") == 0
    assert node("PERSIST", "nokey") == 0
    assert node("TTL", "k") == -1


def test_lazy_expiry_through_commands(node):
    node("SET", "k", "v", "PX", "100")
    node.advance(99)
    assert node("GET", "k") == b"v"
    assert node("PTTL", "k") == 1
    node.advance(1)
    assert node("GET", "k") is None
    assert node("TTL", "k") == -2
    assert node.store.key_count == 0


def test_keys_glob(node):
    for key in ("hello", "hallo", "hxllo", "hllo", "heeeello", "a*b"):
        node("SET", key, "1")
    assert sorted(node("KEYS", "h?llo")) == [b"hallo", b"hello", b"hxllo"]
    assert sorted(node("KEYS", "h*llo")) == [b"hallo", b"heeeello", b"hello", b"hllo", b"hxllo"]
    assert sorted(node("KEYS", "h[ae]llo")) == [b"hallo", b"hello"]
    assert sorted(node("KEYS", "h[^e]llo")) == [b"hallo", b"hxllo"]
    assert node("KEYS", r"a\*b") == [b"a*b"]
    assert len(node("KEYS", "*")) == 6
    node("SET", "gone", "1", "PX", "1")
    node.advance(1)
    assert b"gone" not in node("KEYS", "*")


def test_scan_walks_everything_once(node):
    keys = {b"key:%d" % i for i in range(500)}
    for key in keys:
        node("SET", key, "v")
    node.put(b"alist", a_list(b"x"))
    seen, cursor, calls = [], b"0", 0
    while True:
        cursor, batch = node("SCAN", cursor, "COUNT", 7)
        seen.extend(batch)
        calls += 1
        if cursor == b"0":
            break
    assert sorted(seen) == sorted(keys | {b"alist"})
    assert calls > 10
    cursor, batch = node("SCAN", 0, "COUNT", 10000, "TYPE", "list")
    assert (cursor, batch) == (b"0", [b"alist"])
    _, batch = node("SCAN", 0, "COUNT", 10000, "TYPE", "STRING")
    assert len(batch) == 500
    _, batch = node("SCAN", 0, "COUNT", 10000, "MATCH", "key:1?")
    assert sorted(batch) == sorted(b"key:1%d" % i for i in range(10))
    assert node("SCAN", 0, "COUNT", 10000, "TYPE", "foo") == [b"0", []]


def test_scan_never_misses_a_key_present_throughout(node):
    stable = {b"stable:%d" % i for i in range(300)}
    for key in stable:
        node("SET", key, "v")
    seen, cursor, round_ = set(), b"0", 0
    while True:
        cursor, batch = node("SCAN", cursor, "COUNT", 5)
        seen.update(batch)
        # churn between calls: add and delete other keys, as concurrent clients would
        for i in range(20):
            node("SET", b"churn:%d:%d" % (round_, i), "v")
            node("DEL", b"churn:%d:%d" % (round_ - 1, i))
        round_ += 1
        if cursor == b"0":
            break
    assert stable <= seen


@pytest.mark.parametrize("args, error", [
    (("abc",), "ERR invalid cursor"), (("18446744073709551616",), "ERR invalid cursor"), ((" 1",), "ERR invalid cursor"),
    (("0", "COUNT", "0"), "ERR syntax error"), (("0", "COUNT", "-1"), "ERR syntax error"),
    (("0", "COUNT", "abc"), NOT_INTEGER), (("0", "MATCH"), "ERR syntax error"), (("0", "foo", "bar"), "ERR syntax error"),
])
def test_scan_errors(node, args, error):
    assert node.error("SCAN", *args) == error


def test_scan_cursor_past_the_end(node):
    node("SET", "k", "v")
    assert node("SCAN", "-1") == [b"0", []]
    assert node("SCAN", "18446744073709551615") == [b"0", []]
    assert node("SCAN", "16384") == [b"0", []]


def test_randomkey(node):
    assert node("RANDOMKEY") is None
    node("SET", "only", "v")
    assert node("RANDOMKEY") == b"only"


def test_rename(node):
    assert node.error("RENAME", "{r}nokey", "{r}x") == "ERR no such key"
    assert node.error("RENAMENX", "{r}nokey", "{r}x") == "ERR no such key"
    node("SET", "{r}a", "1", "EX", "100")
    assert node("RENAME", "{r}a", "{r}a") is OK
    assert node("RENAMENX", "{r}a", "{r}a") == 0
    node("SET", "{r}b", "2", "EX", "5")
    assert node("RENAMENX", "{r}a", "{r}b") == 0
    assert node("RENAME", "{r}a", "{r}b") is OK
    assert node("GET", "{r}b") == b"1"
    assert node("TTL", "{r}b") == 100            # the source's TTL moves with it
    assert node("EXISTS", "{r}a") == 0
    node("SET", "{r}c", "3")
    assert node("RENAMENX", "{r}c", "{r}d") == 1
    assert node("TTL", "{r}d") == -1
    assert node.error("RENAME", "a", "b") == "CROSSSLOT Keys in request don't hash to the same slot"


def test_copy(node):
    node("SET", "{c}a", "1", "EX", "100")
    assert node("COPY", "{c}a", "{c}b") == 1
    assert node("GET", "{c}b") == b"1" and node("TTL", "{c}b") == 100
    node("SET", "{c}a", "2")
    assert node("COPY", "{c}a", "{c}b") == 0
    assert node("COPY", "{c}a", "{c}b", "REPLACE", "REPLACE") == 1
    assert node("GET", "{c}b") == b"2" and node("TTL", "{c}b") == -1
    assert node("COPY", "{c}nokey", "{c}x") == 0
    assert node("COPY", "{c}a", "{c}b", "DB", "0", "REPLACE") == 1
    assert node.error("COPY", "{c}a", "{c}a") == "ERR source and destination objects are the same"
    assert node.error("COPY", "{c}a", "{c}b", "DB", "1") == \
        "ERR Copying to another database is not allowed in cluster mode"
    assert node.error("COPY", "{c}a", "{c}b", "DB", "99") == "ERR DB index is out of range"
    assert node.error("COPY", "{c}a", "{c}b", "DB", "-1") == "ERR DB index is out of range"
    assert node.error("COPY", "{c}a", "{c}b", "DB", "99999999999") == \
        "ERR value is out of range, value must between -2147483648 and 2147483647"
    assert node.error("COPY", "{c}a", "{c}b", "DB", "x") == NOT_INTEGER
    assert node.error("COPY", "{c}a", "{c}b", "DB") == "ERR syntax error"
    assert node.error("COPY", "{c}a", "{c}b", "foo") == "ERR syntax error"


def test_copy_deep_copies_containers(node):
    original = a_list(b"x", b"y")
    node.put(b"{c}l", original)
    assert node("COPY", "{c}l", "{c}m") == 1
    copied = node.store.get(keyslot(b"{c}m"), b"{c}m", NOW)
    assert copied is not original and copied.type_name == b"list"
    assert list(copied.values()) == list(original.values()) == [b"x", b"y"]
    copied.push_right([b"z"])
    assert len(original) == 2


@pytest.mark.parametrize("value, encoding", [
    (b"123", b"int"), (b"-5", b"int"), (b"9223372036854775807", b"int"), (b"-0", b"embstr"),
    (b"01", b"embstr"), (b"9223372036854775808", b"embstr"), (b"a" * 44, b"embstr"), (b"a" * 45, b"raw"),
    (b"1" * 50, b"raw"), (b"", b"embstr"),
])
def test_object_encoding_of_strings(node, value, encoding):
    node("SET", "k", value)
    assert node("OBJECT", "ENCODING", "k") == encoding


def test_object_on_containers_and_missing_keys(node):
    node.put(b"l", a_list(b"x"))
    assert node("OBJECT", "ENCODING", "l") == b"quicklist"
    for sub in ("ENCODING", "REFCOUNT", "IDLETIME"):
        assert node("OBJECT", sub, "nokey") is None
    assert node.error("OBJECT", "ENCODING").startswith("ERR wrong number of arguments for 'object")
    assert node.error("OBJECT", "foo", "k") == "ERR unknown subcommand 'foo'. Try OBJECT HELP."


def test_object_refcount_freq_idletime(node):
    node("SET", "small", "123")
    node("SET", "big", "123456")
    assert node("OBJECT", "REFCOUNT", "small") == 2147483647
    assert node("OBJECT", "REFCOUNT", "big") == 1
    assert node.error("OBJECT", "FREQ", "small").startswith("ERR An LFU maxmemory policy is not selected")
    assert node("OBJECT", "IDLETIME", "small") == 0


def test_object_idletime_under_lru():
    node = Node(maxmemory=10**9, policy="allkeys-lru")
    node("SET", "k", "v")
    node("GET", "k")
    node.advance(5_000)
    assert node("OBJECT", "IDLETIME", "k") == 5
    assert node("OBJECT", "IDLETIME", "k") == 5      # OBJECT itself is not an access
    node("GET", "k")
    assert node("OBJECT", "IDLETIME", "k") == 0
    node("SET", "n", "1")
    assert node("OBJECT", "REFCOUNT", "n") == 1       # no shared integers under LRU


def test_object_idletime_under_noeviction_counts_from_its_first_call():
    node = Node()
    node("SET", "k", "v")
    node("SET", "old", "v")
    assert node.store.access is None                  # no access times kept until asked
    assert node("OBJECT", "IDLETIME", "k") == 0
    node.advance(3_000)
    assert node("OBJECT", "IDLETIME", "k") == 3
    node("GET", "k")
    assert node("OBJECT", "IDLETIME", "k") == 0
    assert node("OBJECT", "IDLETIME", "old") == 3     # not accessed since the first call
    node("CONFIG", "SET", "maxmemory-policy", "volatile-ttl")
    assert node("OBJECT", "IDLETIME", "old") == 3     # (kept across policy changes)


def test_object_freq_under_lfu():
    node = Node(maxmemory=10**9, policy="allkeys-lfu")
    node("SET", "k", "v")
    assert node("OBJECT", "FREQ", "k") == 5            # LFU_INIT_VAL
    assert node.error("OBJECT", "IDLETIME", "k") == (
        "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when "
        "switching between policies at runtime LRU and LFU data will take some time to adjust.")


def test_object_help(node):
    lines = node("OBJECT", "HELP")
    assert lines[0] == b"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    assert all(type(line) is Status for line in lines) and lines[-1] == b"    Prints this help."


# -- transactions ---------------------------------------------------------------------------


def test_multi_exec_runs_queued_commands(node):
    assert node("MULTI") is OK
    assert node("SET", "{x}a", "1") is QUEUED
    node.put(b"{x}l", a_list(b"x"))
    assert node("INCR", "{x}l") is QUEUED
    assert node("GET", "{x}a") is QUEUED
    replies = node("EXEC")
    assert replies[0] is OK and str(replies[1]) == WRONGTYPE and replies[2] == b"1"
    assert node.session.multi is None
    assert node("MULTI") is OK
    assert node("EXEC") == []


def test_transaction_errors(node):
    assert node.error("EXEC") == "ERR EXEC without MULTI"
    assert node.error("DISCARD") == "ERR DISCARD without MULTI"
    node("MULTI")
    assert node.error("MULTI") == "ERR MULTI calls can not be nested"
    assert node.error("WATCH", "a") == "ERR WATCH inside MULTI is not allowed"
    assert node("SET", "a", "1") is QUEUED
    assert node("EXEC") == [OK]      # the two errors above did not abort the transaction


def test_queue_time_errors_abort_exec(node):
    node("MULTI")
    assert node.error("NOSUCHCOMMAND").startswith("ERR unknown command 'NOSUCHCOMMAND'")
    assert node("SET", "a", "1") is QUEUED
    assert node.error("EXEC") == "EXECABORT Transaction discarded because of previous errors."
    assert node("GET", "a") is None
    node("MULTI")
    assert node.error("SET", "a") == "ERR wrong number of arguments for 'set' command"
    assert node.error("EXEC").startswith("EXECABORT")
    assert node.session.multi is None and not node.session.multi_error


def test_discard(node):
    node("MULTI")
    node("SET", "a", "1")
    assert node("DISCARD") is OK
    assert node("GET", "a") is None
    assert node.session.multi is None


def test_exec_across_slots_is_refused_whole(node):
    node("MULTI")
    node("SET", "a", "1")
    node("SET", "b", "2")
    assert node.error("EXEC") == "CROSSSLOT Keys in request don't hash to the same slot"
    assert node("MGET", "a") == [None]
    assert node.session.multi is None


def test_watch_write_by_another_client_aborts(node):
    other = node.new_session()
    node("SET", "k", "v")
    assert node("WATCH", "k") is OK
    node("SET", "k", "w", session=other)
    node("MULTI")
    node("SET", "k", "mine")
    assert node("EXEC") is NULL_ARRAY
    assert node("GET", "k") == b"w"
    assert not node.session.watched and not node.session.watch_dirty


@pytest.mark.parametrize("write", [
    ("DEL", "k"), ("EXPIRE", "k", "100"), ("APPEND", "k", "x"), ("INCR", "n"), ("RENAME", "{k}src", "k"),
    ("SET", "k", "v"), ("PERSIST", "t"), ("FLUSHALL",),
])
def test_watch_is_invalidated_by_any_write(node, write):
    other = node.new_session()
    node("SET", "k", "v")
    node("SET", "n", "1")
    node("SET", "t", "1", "EX", "100")
    node("SET", "{k}src", "s")
    watched = write[1] if len(write) > 1 and write[0] != "RENAME" else (write[2] if write[0] == "RENAME" else "k")
    node("WATCH", watched)
    node(*write, session=other)
    node("MULTI")
    node("PING")
    assert node("EXEC") is NULL_ARRAY


@pytest.mark.parametrize("noop", [("DEL", "nokey"), ("PERSIST", "k"), ("EXPIRE", "k", "10", "XX"), ("GET", "k"),
                                  ("SET", "k", "x", "NX")])
def test_watch_survives_commands_that_change_nothing(node, noop):
    other = node.new_session()
    node("SET", "k", "v")
    node("WATCH", "k")
    node("WATCH", "nokey")
    node(*noop, session=other)
    node("MULTI")
    node("GET", "k")
    assert node("EXEC") == [b"v"]


def test_watched_key_expiring_aborts_exec_even_before_removal(node):
    node("SET", "k", "v", "PX", "100")
    node("WATCH", "k")
    node.advance(200)               # past the deadline; neither lazy nor active expiry ran yet
    node("MULTI")
    node("PING")
    assert node("EXEC") is NULL_ARRAY


def test_watched_key_removed_by_active_expiry_aborts_exec(node):
    node("SET", "k", "v", "PX", "100")
    node("WATCH", "k")
    node.advance(200)
    assert node.store.expire_due(node.ctx.now_ms, keyslot) == 1
    node("MULTI")
    node("PING")
    assert node("EXEC") is NULL_ARRAY


def test_key_already_expired_when_watched_does_not_abort(node):
    node("SET", "k", "v", "PX", "50")
    node.advance(100)
    node("WATCH", "k")
    node("MULTI")
    node("GET", "k")
    assert node("EXEC") == [None]


def test_own_writes_inside_exec_do_not_matter_and_unwatch_clears(node):
    node("SET", "k", "v")
    node("WATCH", "k")
    node("MULTI")
    node("SET", "k", "x")
    assert node("EXEC") == [OK]
    other = node.new_session()
    node("WATCH", "k")
    node("SET", "k", "y", session=other)
    assert node("UNWATCH") is OK
    node("MULTI")
    node("GET", "k")
    assert node("EXEC") == [b"y"]
    assert not node.ctx.key_events.watchers


def test_watch_missing_key_then_created_aborts(node):
    other = node.new_session()
    node("WATCH", "k")
    node("SET", "k", "1", session=other)
    node("DEL", "k", session=other)
    node("MULTI")
    node("PING")
    assert node("EXEC") is NULL_ARRAY


def test_resp3_aborted_exec_is_null(node):
    from hypercache.reply import encode
    out: list[bytes] = []
    encode(NULL_ARRAY, 3, out)
    assert out == [b"_\r\n"]
    out = []
    encode(NULL_ARRAY, 2, out)
    assert out == [b"*-1\r\n"]


# -- the command table ----------------------------------------------------------------------


REDIS_7_0_TABLE = {
    # name: (arity, flags, first, last, step) from redis-server 7.0.15 COMMAND INFO
    "get": (2, "readonly fast", 1, 1, 1), "set": (-3, "write denyoom", 1, 1, 1),
    "setnx": (3, "write denyoom fast", 1, 1, 1), "setex": (4, "write denyoom", 1, 1, 1),
    "psetex": (4, "write denyoom", 1, 1, 1), "mget": (-2, "readonly fast", 1, -1, 1),
    "mset": (-3, "write denyoom", 1, -1, 2), "msetnx": (-3, "write denyoom", 1, -1, 2),
    "getset": (3, "write denyoom fast", 1, 1, 1), "getdel": (2, "write fast", 1, 1, 1),
    "getex": (-2, "write fast", 1, 1, 1), "append": (3, "write denyoom fast", 1, 1, 1),
    "strlen": (2, "readonly fast", 1, 1, 1), "incr": (2, "write denyoom fast", 1, 1, 1),
    "decr": (2, "write denyoom fast", 1, 1, 1), "incrby": (3, "write denyoom fast", 1, 1, 1),
    "decrby": (3, "write denyoom fast", 1, 1, 1), "incrbyfloat": (3, "write denyoom fast", 1, 1, 1),
    "getrange": (4, "readonly", 1, 1, 1), "setrange": (4, "write denyoom", 1, 1, 1),
    "substr": (4, "readonly", 1, 1, 1), "lcs": (-3, "readonly", 1, 2, 1),
    "del": (-2, "write", 1, -1, 1), "unlink": (-2, "write fast", 1, -1, 1),
    "exists": (-2, "readonly fast", 1, -1, 1), "type": (2, "readonly fast", 1, 1, 1),
    "expire": (-3, "write fast", 1, 1, 1), "pexpire": (-3, "write fast", 1, 1, 1),
    "expireat": (-3, "write fast", 1, 1, 1), "pexpireat": (-3, "write fast", 1, 1, 1),
    "ttl": (2, "readonly fast", 1, 1, 1), "pttl": (2, "readonly fast", 1, 1, 1),
    "expiretime": (2, "readonly fast", 1, 1, 1), "pexpiretime": (2, "readonly fast", 1, 1, 1),
    "persist": (2, "write fast", 1, 1, 1), "keys": (2, "readonly", 0, 0, 0),
    "scan": (-2, "readonly", 0, 0, 0), "randomkey": (1, "readonly", 0, 0, 0),
    "rename": (3, "write", 1, 2, 1), "renamenx": (3, "write fast", 1, 2, 1),
    "touch": (-2, "readonly fast", 1, -1, 1), "copy": (-3, "write denyoom", 1, 2, 1),
    "multi": (1, "noscript loading stale fast allow-busy", 0, 0, 0),
    "exec": (1, "noscript loading stale skip-slowlog", 0, 0, 0),
    "discard": (1, "noscript loading stale fast allow-busy", 0, 0, 0),
    "watch": (-2, "noscript loading stale fast allow-busy", 1, -1, 1),
    "unwatch": (1, "noscript loading stale fast allow-busy", 0, 0, 0),
    "object|encoding": (3, "readonly", 2, 2, 1), "object|freq": (3, "readonly", 2, 2, 1),
    "object|idletime": (3, "readonly", 2, 2, 1), "object|refcount": (3, "readonly", 2, 2, 1),
    "object|help": (2, "loading stale", 0, 0, 0),
}


@pytest.mark.parametrize("name", sorted(REDIS_7_0_TABLE))
def test_declarations_match_redis(name):
    table = commands.load_all()
    parent, _, sub = name.partition("|")
    cmd = table[parent.encode()]
    if sub:
        cmd = cmd.subcommands[sub.encode()]
    arity, flags, first, last, step = REDIS_7_0_TABLE[name]
    assert (cmd.arity, cmd.flags, cmd.first_key, cmd.last_key, cmd.step) == \
        (arity, tuple(flags.split()), first, last, step)
    assert "Format: " in handler_doc(cmd.handler)


def handler_doc(handler) -> str:
    """A handler's docstring; read from its source when it is compiled (mypyc keeps no __doc__)."""
    if handler.__doc__:
        return handler.__doc__
    import ast
    from hypercache.compiled import source_of
    tree = ast.parse(source_of(handler.__module__).read_text())
    found = next(node for node in ast.walk(tree)
                 if isinstance(node, ast.FunctionDef) and node.name == handler.__name__)
    return ast.get_docstring(found) or ""
