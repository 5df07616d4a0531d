"""The command table is consistent, and COMMAND's replies generated from it have Redis 7.0's shapes."""
import pytest

from hypercache import commands
from hypercache.commands.command_info import (ACL_ORDER, FLAG_ORDER, acl_categories, all_commands,
                                              docs_entry, find, info_entry, key_specs, printed_flags)
from hypercache.reply import OrderedSet, Status, encode

TABLE = commands.load_all()
ALL = list(all_commands(TABLE))
# Flags a declaration may carry: what COMMAND prints (hyphenated as in Redis's JSON) plus sentinel ones.
KNOWN_FLAGS = {f.replace("_", "-") for f in FLAG_ORDER} | set(FLAG_ORDER) | {"sentinel", "only-sentinel"}


def wire(value, protocol: int) -> bytes:
    out: list = []
    encode(value, protocol, out)
    return b"".join(out)


@pytest.mark.parametrize("cmd", ALL, ids=[c.name for c in ALL])
def test_declaration_is_consistent(cmd):
    assert cmd.name == cmd.name.lower() and " " not in cmd.name
    assert cmd.arity != 0
    assert set(cmd.flags) <= KNOWN_FLAGS, f"unknown flags {set(cmd.flags) - KNOWN_FLAGS}"
    assert not {"readonly", "write"} <= set(cmd.flags)
    assert cmd.write == ("write" in cmd.flags) and cmd.denyoom == ("denyoom" in cmd.flags)
    if "|" in cmd.name:
        parent, sub = cmd.name.split("|")
        assert TABLE[parent.encode()].subcommands[sub.encode()] is cmd
        assert cmd.arity >= 2 or cmd.arity <= -2     # "parent sub" at least
    if cmd.first_key == 0:
        assert cmd.last_key == 0 and cmd.step == 0
        if "movablekeys" in cmd.flags:
            assert cmd.find_keys is not None
    else:
        assert cmd.step >= 1
        assert cmd.last_key < 0 or cmd.last_key >= cmd.first_key
        # the minimal call allowed by the arity holds the first key (SUNSUBSCRIBE's are optional)
        minimal = abs(cmd.arity) + (1 if cmd.arity == -1 else 0)
        assert cmd.first_key < minimal
        if cmd.last_key >= 0:
            assert cmd.last_key < minimal
        # keys are read or written; shard channels and WATCH are routed by slot as keys are
        assert ("readonly" in cmd.flags or "write" in cmd.flags or "pubsub" in cmd.flags
                or cmd.name == "watch"), "a keyed command reads or writes"
    if cmd.subcommands:
        assert cmd.arity in (-1, -2)    # COMMAND runs bare; containers need a subcommand


def test_every_keyed_command_extracts_its_keys_from_a_minimal_call():
    for cmd in ALL:
        if not cmd.first_key or cmd.find_keys is not None:
            continue
        args = [cmd.name.split("|")[0].encode()]
        if "|" in cmd.name:
            args.append(cmd.name.split("|")[1].encode())
        args += [b"a%d" % i for i in range(len(args), max(abs(cmd.arity), cmd.first_key + 1))]
        keys = cmd.keys(args)
        assert keys and keys[0] == args[cmd.first_key], cmd.name


def test_keys_by_position():
    get, mset, mget = TABLE[b"get"], TABLE[b"mset"], TABLE[b"mget"]
    assert get.keys([b"get", b"k"]) == [b"k"]
    assert mset.keys([b"mset", b"a", b"1", b"b", b"2"]) == [b"a", b"b"]
    assert mget.keys([b"mget", b"a", b"b", b"c"]) == [b"a", b"b", b"c"]
    usage = TABLE[b"memory"].subcommands[b"usage"]
    assert usage.keys([b"memory", b"usage", b"k", b"samples", b"5"]) == [b"k"]
    assert TABLE[b"ping"].keys([b"ping"]) == []


def test_every_command_is_fast_or_slow_and_categories_are_ordered():
    for cmd in ALL:
        cats = acl_categories(cmd)
        assert ("fast" in cats) != ("slow" in cats), cmd.name
        assert cats == [c for c in ACL_ORDER if c in cats]
        if cmd.write:
            assert "write" in cats
        if "admin" in cmd.flags:
            assert {"admin", "dangerous"} <= set(cats)


# Real redis-server 7.0.15 (COMMAND INFO), for commands whose categories the rule must get right.
REDIS_ACL = {
    "get": ["read", "string", "fast"], "set": ["write", "string", "slow"],
    "mset": ["write", "string", "slow"], "ping": ["fast", "connection"],
    "auth": ["fast", "connection"], "client": ["slow"], "client|list": ["admin", "slow", "dangerous", "connection"],
    "config|get": ["admin", "slow", "dangerous"], "config|help": ["slow"], "command": ["slow", "connection"],
    "command|info": ["slow", "connection"], "info": ["slow", "dangerous"], "dbsize": ["keyspace", "read", "fast"],
    "flushall": ["keyspace", "write", "slow", "dangerous"], "lastsave": ["admin", "fast", "dangerous"],
    "role": ["admin", "fast", "dangerous"], "cluster|slots": ["slow"], "readonly": ["fast", "connection"],
    "asking": ["fast", "connection"], "memory|usage": ["read", "slow"], "shutdown": ["admin", "slow", "dangerous"],
    "hset": ["write", "hash", "fast"], "lpush": ["write", "list", "fast"],
    "blpop": ["write", "list", "slow", "blocking"], "swapdb": ["keyspace", "write", "fast", "dangerous"],
}


@pytest.mark.parametrize("name", sorted(REDIS_ACL))
def test_acl_categories_match_redis(name):
    cmd = find(TABLE, name.encode())
    if cmd is None:
        pytest.skip(f"{name} is not in the table yet")
    assert acl_categories(cmd) == REDIS_ACL[name]


def test_printed_flags_use_redis_names_and_order():
    auth = TABLE[b"auth"]
    assert printed_flags(auth) == ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"]
    assert printed_flags(TABLE[b"ping"]) == ["fast"]          # "sentinel" is never printed


def test_get_entry_is_byte_identical_to_redis_in_resp3_and_resp2():
    entry = info_entry(TABLE[b"get"])
    # captured from redis-server 7.0.15: COMMAND INFO get
    resp3 = (b"*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
             b"~3\r\n+@read\r\n+@string\r\n+@fast\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n~2\r\n+RO\r\n+access\r\n"
             b"$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:1\r\n"
             b"$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:0\r\n"
             b"$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n")
    assert wire(entry, 3) == resp3
    resp2 = resp3.replace(b"~", b"*").replace(b"%3\r\n", b"*6\r\n").replace(b"%2\r\n", b"*4\r\n") \
                 .replace(b"%1\r\n", b"*2\r\n")
    assert wire(entry, 2) == resp2


def test_entry_shape_for_every_command():
    for cmd in ALL:
        entry = info_entry(cmd)
        name, arity, flags, first, last, step, cats, tips, specs, subs = entry
        assert name == cmd.name.encode() and arity == cmd.arity
        assert (first, last, step) == (cmd.first_key, cmd.last_key, cmd.step)
        assert type(flags) is OrderedSet and all(type(f) is Status for f in flags)
        assert type(cats) is OrderedSet and all(c.startswith(b"@") for c in cats)
        assert type(tips) is OrderedSet and type(specs) is OrderedSet
        if cmd.subcommands:
            assert type(subs) is list and len(subs) == len(cmd.subcommands)
            assert all(sub[0].startswith(name + b"|") for sub in subs)
        else:
            assert subs == OrderedSet()


def test_key_specs_are_redis_own():
    mset = key_specs(TABLE[b"mset"])[0]
    assert mset[b"begin_search"] == {b"type": b"index", b"spec": {b"index": 1}}
    assert mset[b"find_keys"][b"spec"] == {b"lastkey": -1, b"keystep": 2, b"limit": 0}
    assert mset[b"flags"] == [b"OW", b"update"]         # (Redis's own: MSET overwrites)
    smove = key_specs(TABLE[b"smove"])
    assert [spec[b"flags"] for spec in smove] == [[b"RW", b"access", b"delete"], [b"RW", b"insert"]]
    usage = key_specs(TABLE[b"memory"].subcommands[b"usage"])[0]
    assert usage[b"begin_search"][b"spec"] == {b"index": 2}
    assert usage[b"find_keys"][b"spec"][b"lastkey"] == 0
    assert key_specs(TABLE[b"ping"]) == []


def test_docs_entry_has_group_and_subcommands():
    config = docs_entry(TABLE[b"config"])
    assert config[b"group"] == b"server" and b"get" not in config
    assert b"config|get" in config[b"subcommands"]
    assert docs_entry(TABLE[b"get"])[b"group"] == b"string"


def test_find_accepts_subcommand_names_in_any_case():
    assert find(TABLE, b"CONFIG|GET") is TABLE[b"config"].subcommands[b"get"]
    assert find(TABLE, b"Get") is TABLE[b"get"]
    assert find(TABLE, b"nosuch") is None and find(TABLE, b"config|nosuch") is None


def test_multi_key_commands_called_with_one_key_are_single_key_calls_for_the_lane():
    """one_key_argc: up to that many arguments, a first..last-from-the-end command names one key,
    at args[1] (dispatch.py's lane then serves it as a single-key command)."""
    commands.load_all()
    table = commands.TABLE
    for name, argc in ((b"pfcount", 2), (b"mget", 2), (b"del", 2), (b"exists", 2), (b"mset", 3), (b"msetnx", 3),
                       (b"sunionstore", 2), (b"get", 0), (b"eval", 0), (b"zunionstore", 0), (b"rename", 0),
                       (b"sunsubscribe", 0)):
        assert table[name].one_key_argc == argc, name
        cmd = table[name]
        if argc:
            for args in ([name, b"k", b"v", b"k2", b"v2"][:n] for n in range(2, 6)):
                if cmd.arity_ok(len(args)):
                    assert (len(cmd.keys(args)) == 1) == (len(args) <= argc), (name, args)
