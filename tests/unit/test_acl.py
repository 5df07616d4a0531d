"""The pure cores behind ACL users, LATENCY and key specs, without a node (the wire is tested
against redis-server in tests/blackbox/test_acl_vs_redis.py and test_latency_vs_redis.py)."""
from __future__ import annotations

import pytest

from hypercache import acl, keyspecs, latency
from hypercache.acl import DENIED_CHANNEL, DENIED_CMD, DENIED_KEY, RuleError
from hypercache.acl_text import describe_user
from hypercache.commands import load_all
from hypercache.commands.acl import catalog
from hypercache.users import AclLog, Users

load_all()
CATALOG = catalog()


def users() -> Users:
    return Users(CATALOG)


def check(user, *args: bytes):
    name = args[0].decode().lower()
    return acl.check(user, name, list(args), lambda a: [], CATALOG)


def test_a_new_user_may_do_nothing_and_rules_apply_all_or_nothing():
    registry = users()
    user = registry.setuser(b"app", [b"on", b">pw", b"~app:*", b"+@read"])
    assert user.password_ok(b"pw") and not user.password_ok(b"other")
    assert check(user, b"GET", b"app:1") is None
    assert check(user, b"GET", b"x") == acl.Denial(DENIED_KEY, 1)
    assert check(user, b"SET", b"app:1", b"v") == acl.Denial(DENIED_CMD, 0)
    with pytest.raises(RuleError, match="modifier 'nonsense': Syntax error"):
        registry.setuser(b"app", [b"+set", b"nonsense"])
    assert check(user, b"SET", b"app:1", b"v") == acl.Denial(DENIED_CMD, 0)     # +set was not kept
    registry.setuser(b"app", [b"off"])
    assert not user.password_ok(b"pw")


def test_read_and_write_key_permissions_follow_redis_key_specs():
    user = users().setuser(b"u", [b"on", b"+@all", b"%R~r:*", b"%W~w:*"])
    assert check(user, b"GET", b"r:1") is None
    assert check(user, b"INCR", b"r:1") == acl.Denial(DENIED_KEY, 1)       # INCR reads and writes
    assert check(user, b"SET", b"w:1", b"v") is None                       # a plain SET only writes
    assert check(user, b"SET", b"w:1", b"v", b"GET") == acl.Denial(DENIED_KEY, 1)
    assert check(user, b"LMOVE", b"r:1", b"w:1", b"LEFT", b"RIGHT") == acl.Denial(DENIED_KEY, 1)


def test_selectors_and_the_reported_denial():
    user = users().setuser(b"u", [b"on", b"~a", b"+get", b"(~b +set)", b"&news"])
    assert check(user, b"GET", b"a") is None and check(user, b"SET", b"b", b"1") is None
    assert check(user, b"SET", b"a", b"1") == acl.Denial(DENIED_KEY, 1)     # the key is what no selector allows
    assert check(user, b"PUBLISH", b"sport", b"m") == acl.Denial(DENIED_CMD, 0)
    user = users().setuser(b"p", [b"on", b"+@all", b"~*", b"&news.*"])
    assert check(user, b"PSUBSCRIBE", b"news.*") is None and check(user, b"SUBSCRIBE", b"news.1") is None
    assert check(user, b"PSUBSCRIBE", b"news.1*") == acl.Denial(DENIED_CHANNEL, 1)     # patterns: as written


def test_rules_are_described_as_redis_recomputes_them():
    registry = users()
    user = registry.setuser(b"u", [b"+get", b"+set", b"-get", b"+@string", b"-@string", b"+get|x", b"+get"])
    assert describe_user(user, CATALOG) == "off resetchannels -@all +get"
    user = registry.setuser(b"v", [b"on", b"nopass", b"~a", b"%R~b", b"&c", b"+@all", b"-flushall"])
    assert describe_user(user, CATALOG) == "on nopass ~a %R~b resetchannels &c +@all -flushall"
    assert describe_user(registry.default, CATALOG) == "on nopass ~* &* +@all"


def test_the_log_groups_repeats_within_a_minute():
    log = AclLog(max_len=2)
    log.add("key", "toplevel", b"k", b"u", 1000, b"info1")
    log.add("key", "toplevel", b"k", b"u", 2000, b"info2")
    assert len(log.entries) == 1 and log.entries[0].count == 2 and log.entries[0].client_info == b"info2"
    log.add("key", "toplevel", b"k", b"u", 70_000, b"info3")     # past the minute: a new entry
    log.add("command", "multi", b"get", b"u", 70_001, b"info4")
    assert [e.count for e in log.entries] == [1, 1] and log.entries[0].reason == "command"


def test_an_acl_file_with_errors_changes_nothing_and_names_its_lines():
    registry = users()
    with pytest.raises(RuleError) as error:
        registry.parse_file("user a on +nosuch\nfoo\nuser a\nuser a\n", "users.acl")
    assert "users.acl:1:" in str(error.value) and "users.acl:2: line should start with user keyword" in str(error.value)
    assert "users.acl:4: Duplicate user 'a' found" in str(error.value)
    parsed = registry.parse_file("# comment\n\nuser a on nopass ~x +get\n", "users.acl")
    assert set(parsed) == {b"a", b"default"}


def test_genpass_gives_the_bits_asked_for():
    assert len(acl.genpass()) == 64 and len(acl.genpass(5)) == 2 and len(acl.genpass(9)) == 3


def test_key_specs_walk_as_redis():
    assert keyspecs.keys_and_flags("zunionstore", [b"zunionstore", b"d", b"2", b"a", b"b"]) == [
        (1, ("OW", "update")), (3, ("RO", "access")), (4, ("RO", "access"))]
    assert keyspecs.keys_and_flags("zunionstore", [b"zunionstore", b"d", b"9", b"a"]) == []
    assert keyspecs.keys_and_flags("sort", [b"sort", b"k", b"by", b"store", b"store", b"d"]) == [
        (1, ("RO", "access")), (5, ("OW", "update"))]
    assert keyspecs.keys_and_flags("nosuch", [b"nosuch"]) is None
    assert not keyspecs.has_keys("spublish") and keyspecs.has_keys("get")


def test_latency_keeps_one_sample_per_second_and_draws_redis_graph():
    monitor = latency.LatencyMonitor()
    monitor.configure(10)
    monitor.add("command", 20, 100)
    monitor.add("command", 50, 100)         # the same second: the larger is kept
    monitor.add("command", 30, 101)
    assert monitor.history("command") == [[100, 50], [101, 30]] and monitor.latest() == [[b"command", 101, 30, 50]]
    graph = monitor.graph("command", 101)
    assert graph.splitlines()[2:] == ["# ", "| ", "| ", "|_", "  ", "10", "ss"]
    assert "2 latency spikes (average 40ms, mean deviation 10ms, period 0.50 sec)" in monitor.doctor(101, 10000, 128)
    assert monitor.reset(["command", "nope"]) == 1 and monitor.latest() == []
