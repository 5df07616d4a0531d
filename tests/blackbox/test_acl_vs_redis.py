"""ACL users against a real redis-server: the same command sequences, replies compared byte for byte.

Each step is sent alone and its reply read whole, as raw bytes. Where Redis's reply cannot
be reproduced byte for byte, the step names a normaliser, and says why:
- `rules`: ACL LIST / GETUSER recompute command rules from the allowed set, and list the
  single commands after the categories in Redis's command-dict order, which is seeded at
  random per process: the single commands are compared as a set, the rest in order;
- `log`: ACL LOG's age-seconds and client-info (ids, ports, timings) differ;
- `hello`: HELLO's id and mode (cluster here) differ;
- `sorted`: ACL CAT of a category lists commands in dict order too, CONFIG GET its pairs (`pairs`).
Categories that hold stream commands (not served here, see the README) are left out:
a category's best fit counts its commands.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import hiredis
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.nodes import CLUSTER_TIMEOUT, agreed, encode_command, node_ports, raw_connect, wait_until

PASSWORD_HASH = "c0d3" * 16
NO_RETRY = Retry(NoBackoff(), 0)     # a closed connection is what is tested: no reconnecting


def _reply(sock, reader) -> tuple[bytes, object]:
    """One reply: its raw bytes (one request in flight, so all bytes read are its) and its value."""
    raw = b""
    while True:
        value = reader.gets()
        if value is not False:
            return raw, value
        data = sock.recv(1 << 20)
        assert data, "connection closed"
        raw += data
        reader.feed(data)


class Client:
    def __init__(self, port: int) -> None:
        self.sock = raw_connect(port)
        self.reader = hiredis.Reader()

    def __call__(self, *args):
        self.sock.sendall(encode_command(*args))
        return _reply(self.sock, self.reader)

    def close(self) -> None:
        self.sock.close()


def _rules_text(text: bytes) -> tuple:
    """Rules with the single-command tail as a set: (words up to the last category, set of the rest)."""
    words = text.split(b" ")
    cut = max((i + 1 for i, w in enumerate(words) if w[:2] in (b"+@", b"-@")), default=0)
    return tuple(words[:cut]), frozenset(words[cut:])


def _flat(value):
    """A RESP3 map as RESP2's flat array (the normalisers below read both)."""
    if isinstance(value, dict):
        return [item for pair in value.items() for item in (pair[0], _flat(pair[1]))]
    if isinstance(value, list):
        return [_flat(item) for item in value]
    return value


def _normalised(kind: str, raw: bytes, value):
    if kind in ("rules", "log"):
        value = _flat(value)
    if kind == "rules":
        if isinstance(value, list) and value and isinstance(value[0], bytes) and value[0].startswith(b"user "):
            return [_rules_text(line) for line in value]                        # ACL LIST
        if isinstance(value, list):                                             # ACL GETUSER
            pairs = dict(zip(value[::2], value[1::2]))
            pairs[b"commands"] = _rules_text(pairs[b"commands"])
            pairs[b"selectors"] = [
                {k: (_rules_text(v) if k == b"commands" else v) for k, v in zip(s[::2], s[1::2])}
                for s in pairs[b"selectors"]]
            return pairs
    if kind == "log":
        entries = [dict(zip(e[::2], e[1::2])) for e in value]
        for entry in entries:
            assert float(entry.pop(b"age-seconds")) >= 0
            info = entry.pop(b"client-info")
            entry[b"user-in-info"] = next(f for f in info.split() if f.startswith(b"user="))
            entry[b"cmd-in-info"] = next(f for f in info.split() if f.startswith(b"cmd="))
        return entries
    if kind == "hello":     # a cluster node's mode, and its own client ids
        return {k: v for k, v in value.items() if k not in (b"id", b"mode")}
    if kind == "hexlen" and raw.startswith(b"-"):
        return raw
    if kind == "sorted":
        return sorted(value)
    if kind == "pairs":
        return sorted(zip(value[::2], value[1::2]))
    if kind == "hexlen":
        return len(value), all(c in b"0123456789abcdef" for c in value)
    return raw


def _run(port: int, script: list) -> list:
    """Run `script`: ("as", name) switches connection, other steps are (kind, *command)."""
    clients = {"admin": Client(port)}
    current = "admin"
    out = []
    try:
        admin = clients["admin"]
        for name in admin("ACL", "USERS")[1]:
            if name != b"default":
                admin("ACL", "DELUSER", name)
        admin("ACL", "SETUSER", "default", "reset", "on", "nopass", "~*", "&*", "+@all")
        admin("ACL", "LOG", "RESET")
        for step in script:
            if step[0] == "as":
                current = step[1]
                if current not in clients:
                    clients[current] = Client(port)
                continue
            if step[0] == "closed":
                sock = clients[current].sock
                sock.settimeout(10)
                out.append((step, sock.recv(100)))
                continue
            kind, *command = step
            raw, value = clients[current](*command)
            out.append((step, _normalised(kind, raw, value)))
    finally:
        for client in clients.values():
            client.close()
    return out


RULES = [
    ("raw", "ACL", "SETUSER", "alice", "on", ">pw", "~app:*", "+@read", "-keys", "+set"),
    ("raw", "ACL", "SETUSER", "bob", "%R~r*", "%W~w*", "&ch*", "+get|x"),
    ("raw", "ACL", "SETUSER", "carl", "+config|get", "+select|0", "+get", "-get", "+@all", "-flushall",
     "resetkeys", "allkeys"),
    ("raw", "ACL", "SETUSER", "d1", "+get", "+set", "-get", "+@string", "-@string", "+get|x", "+get"),
    ("raw", "ACL", "SETUSER", "d3", "on", ">p1", ">p2", "<p1", "~a", "~b", "%R~c", "%RW~d", "%W~e", "&x",
     "&y", "allchannels"),
    ("raw", "ACL", "SETUSER", "d4", "-@all", "+config|get", "+select|0", "+select|1", "+client",
     "-client|list", "+@hash", "#" + PASSWORD_HASH, "nopass", "skip-sanitize-payload"),
    ("raw", "ACL", "SETUSER", "d5", "on", "~a", "(~x +get)", "(%R~y", "&c", "+@read", "-keys)"),
    ("raw", "ACL", "SETUSER", "d6", "reset", "+@geo", "+pfcount", "+@bitmap", "-@write"),
    ("rules", "ACL", "LIST"),
    ("rules", "ACL", "GETUSER", "alice"),
    ("rules", "ACL", "GETUSER", "bob"),
    ("rules", "ACL", "GETUSER", "d4"),
    ("rules", "ACL", "GETUSER", "d5"),
    ("raw", "ACL", "GETUSER", "nobody"),
    ("raw", "ACL", "USERS"),
    ("raw", "ACL", "SETUSER", "d3", "resetpass", "nopass"),
    ("raw", "ACL", "SETUSER", "d3", "reset"),
    ("rules", "ACL", "GETUSER", "d3"),
    ("raw", "ACL", "DELUSER", "default"),
    ("raw", "ACL", "DELUSER", "nobody", "d1", "d6"),
    ("raw", "ACL", "SETUSER", "a b"),
    ("raw", "ACL", "SETUSER", "x", "(~x"),
    *[("raw", "ACL", "SETUSER", "x", rule) for rule in (
        "+foo", "+@foo", "+config|foo", "bogus", "+get|foo|bar", "%X~a", "#abc", "!abc", "<nope",
        "%~x", "%RWX~x", "+config|get|x", "-select|0", "+debug|")],
    *[("raw", "ACL", "SETUSER", "x", "~*", "&*", rule) for rule in ("~foo", "%R~foo", "&foo", "~*", "&*")],
    ("raw", "ACL", "SETUSER", "x", "on", "~k", "+get", "bogus"),     # all or nothing: x is unchanged
    ("rules", "ACL", "GETUSER", "x"),
    ("raw", "CONFIG", "SET", "acl-pubsub-default", "allchannels"),
    ("raw", "ACL", "SETUSER", "y", "(~a +get)"), ("raw", "ACL", "SETUSER", "z", "&x", "reset"),
    ("rules", "ACL", "GETUSER", "y"), ("rules", "ACL", "GETUSER", "z"),
    ("raw", "CONFIG", "SET", "acl-pubsub-default", "resetchannels"), ("raw", "CONFIG", "SET", "acl-pubsub-default", "x"),
    ("pairs", "CONFIG", "GET", "acl*"), ("raw", "CONFIG", "SET", "acllog-max-len", "-1"),
    ("raw", "ACL", "CAT"),
    *[("sorted", "ACL", "CAT", cat) for cat in ("geo", "bitmap", "hash", "transaction")],
    ("raw", "ACL", "CAT", "nope"),
    ("raw", "ACL", "GENPASS", "0"), ("raw", "ACL", "GENPASS", "4097"), ("raw", "ACL", "GENPASS", "x"),
    ("hexlen", "ACL", "GENPASS"), ("hexlen", "ACL", "GENPASS", "5"), ("hexlen", "ACL", "GENPASS", "9"),
    ("raw", "ACL", "WHOAMI"), ("raw", "ACL", "WHOAMI", "x"), ("raw", "ACL", "LIST", "x"),
    ("raw", "ACL", "FOO"), ("raw", "ACL", "SAVE"), ("raw", "ACL", "LOAD"),
    *[("raw", "ACL", *call) for call in (("CAT", "a", "b"), ("GENPASS", "1", "2"), ("LOG", "1", "2"), ("GETUSER",),
                                         ("SETUSER",), ("DELUSER",), ("DRYRUN", "x"), ("USERS", "x"))],
    ("raw", "ACL", "HELP"),
    ("as", "resp3"), ("hello", "HELLO", "3"),       # the same replies in RESP3 (maps, sets, doubles)
    ("rules", "ACL", "GETUSER", "alice"), ("rules", "ACL", "GETUSER", "d5"), ("raw", "ACL", "GETUSER", "nobody"),
    ("raw", "ACL", "USERS"), ("raw", "ACL", "CAT"), ("raw", "ACL", "WHOAMI"), ("hexlen", "ACL", "GENPASS"),
    ("raw", "ACL", "DRYRUN", "alice", "get", "other"), ("raw", "ACL", "DRYRUN", "alice", "get", "app:1"),
    ("as", "admin"),
    *[("raw", "ACL", "DRYRUN", *call) for call in (
        ("alice", "get", "app:1"), ("alice", "get", "other"), ("alice", "keys", "x"), ("alice", "set", "app:1", "v"),
        ("alice", "publish", "ch", "m"), ("bob", "get", "r1"), ("bob", "get", "x"), ("nobody", "get", "x"),
        ("alice", "nocmd", "x"), ("alice", "get"), ("d5", "get", "x"), ("d5", "get", "y"), ("d5", "set", "y", "1"),
        ("d5", "get", "a"), ("carl", "flushall"), ("carl", "config", "get", "x"), ("alice", "mget", "app:1", "zz", "yy"),
        ("carl", "config", "nosuch"), ("carl", "config"), ("carl", "post", "x"), ("carl", "get", "a", "b"))],
]

SESSIONS = [
    ("raw", "ACL", "SETUSER", "app1", "on", ">secret1", "~app1:*", "~{app1:}*", "&app1.*", "+@all", "-@dangerous"),
    ("raw", "ACL", "SETUSER", "app2", "on", ">secret2", "%R~app2:*", "%W~app2:w*", "+@read", "+@write",
     "+@connection", "+@transaction", "+@scripting", "+@pubsub", "-@dangerous", "&news"),
    ("raw", "ACL", "SETUSER", "gone", "on", "nopass", "+@all", "~*"),
    ("raw", "ACL", "SETUSER", "reader", "on", ">r", "~*", "-@all", "+get", "+incr", "+@connection"),
    ("raw", "ACL", "SETUSER", "off", "off", ">pw", "+@all", "~*"),
    ("as", "one"),
    ("raw", "AUTH", "app1", "wrong"), ("raw", "AUTH", "nobody", "x"), ("raw", "AUTH", "off", "pw"),
    ("raw", "AUTH", "x"), ("raw", "AUTH", "a", "b", "c"),
    ("raw", "AUTH", "app1", "secret1"), ("raw", "ACL", "WHOAMI"),
    ("raw", "SET", "app1:k", "v"), ("raw", "GET", "app1:k"), ("raw", "SET", "app2:k", "v"), ("raw", "GET", "app2:k"),
    ("raw", "MSET", "{app1:}a", "1", "{app1:}b", "2"), ("raw", "KEYS", "*"), ("raw", "FLUSHALL"),
    ("raw", "CONFIG", "GET", "maxmemory"), ("raw", "PUBLISH", "app1.x", "m"), ("raw", "PUBLISH", "app2.x", "m"),
    ("raw", "MULTI"), ("raw", "SET", "app1:m", "1"), ("raw", "GET", "other"), ("raw", "EXEC"),
    ("raw", "EVAL", "return redis.call('get', KEYS[1])", "1", "app1:k"),
    ("raw", "EVAL", "return redis.call('get', 'app2:k')", "0"),
    ("raw", "EVAL", "return redis.pcall('flushall')", "0"),
    ("raw", "EVAL", "return redis.call('publish', 'zz', 'm')", "0"),
    ("raw", "EVAL", "return 1", "1", "app2:k"),
    ("as", "two"),
    ("raw", "HELLO", "2", "AUTH", "app2", "nope"),
    ("hello", "HELLO", "3", "AUTH", "app2", "secret2", "SETNAME", "two"),
    ("raw", "GET", "app2:k"), ("raw", "SET", "app2:k", "v2"), ("raw", "SET", "app2:wk", "v2"),
    ("raw", "GET", "app2:wk"), ("raw", "APPEND", "app2:wk", "x"), ("raw", "INCR", "app2:wn"),
    ("raw", "LPUSH", "app2:wl", "x"), ("raw", "RPOPLPUSH", "app2:wl", "app2:wl"),
    ("raw", "PUBLISH", "news", "m"), ("raw", "PUBLISH", "news2", "m"), ("raw", "SUBSCRIBE", "news"),
    ("raw", "SUBSCRIBE", "other"), ("raw", "PSUBSCRIBE", "new*"), ("raw", "UNSUBSCRIBE", "news"),
    ("raw", "ACL", "WHOAMI"), ("raw", "RESET"), ("raw", "ACL", "WHOAMI"),
    ("as", "three"),      # every key, some commands: the node serves it from a lane of its own
    ("raw", "AUTH", "reader", "r"), ("raw", "GET", "app1:k"), ("raw", "SET", "app1:k", "x"), ("raw", "INCR", "n"),
    ("raw", "DEL", "n"), ("raw", "HSET", "h", "f", "v"), ("raw", "GET", "n"),
    ("as", "admin"),
    ("raw", "ACL", "SETUSER", "reader", "-incr", "+set"),
    ("as", "three"),
    ("raw", "INCR", "n"), ("raw", "SET", "app1:k", "v"), ("raw", "GET", "app1:k"),
    ("as", "admin"),
    ("raw", "ACL", "SETUSER", "app1", "-get"),
    ("as", "one"),
    ("raw", "GET", "app1:k"), ("raw", "MULTI"), ("raw", "SET", "{app1:}m", "1"), ("raw", "INCR", "{app1:}n"),
    ("as", "admin"),
    ("raw", "ACL", "SETUSER", "app1", "-incr"),
    ("as", "one"),
    ("raw", "EXEC"),
    ("as", "admin"),
    ("raw", "CLIENT", "KILL", "USER", "nobody"), ("raw", "CLIENT", "KILL", "USER", "gone"),
    ("log", "ACL", "LOG"), ("log", "ACL", "LOG", "2"), ("raw", "ACL", "LOG", "-1"), ("raw", "ACL", "LOG", "x"),
    ("as", "resp3"), ("hello", "HELLO", "3"), ("log", "ACL", "LOG", "3"), ("as", "admin"),
    ("raw", "ACL", "LOG", "RESET"), ("raw", "ACL", "LOG"),
    ("raw", "ACL", "SETUSER", "default", "resetpass", ">adminpw"),
    ("as", "fresh"),
    ("raw", "GET", "x"), ("raw", "AUTH", "adminpw"), ("raw", "GET", "x"),
    ("raw", "ACL", "SETUSER", "default", "nopass"),
    ("raw", "AUTH", "x"),
    ("as", "doomed"),       # deleting one's own user: the reply, then the connection is closed
    ("raw", "AUTH", "gone", "x"), ("raw", "ACL", "DELUSER", "gone"), ("closed",),
]


@pytest.mark.parametrize("script", [RULES, SESSIONS], ids=["rules", "sessions"])
def test_acl_like_redis(node, redis_server, script):
    mine, theirs = _run(node.port, script), _run(redis_server.port, script)
    differences = [(step, got, wanted) for (step, got), (_, wanted) in zip(mine, theirs) if got != wanted]
    assert not differences
    assert len(mine) == len(theirs)


def test_an_application_user_cannot_touch_another_applications_keys(node):
    admin = node.client()
    for name, prefix in ((b"shop", "shop"), (b"blog", "blog")):
        admin.acl_setuser(name.decode(), enabled=True, passwords=[f"+{prefix}-pw"], keys=[f"{prefix}:*"],
                          channels=[f"{prefix}.*"], commands=["+@all", "-@dangerous"], reset=True)
    try:
        shop = redis.Redis(port=node.port, username="shop", password="shop-pw")
        blog = redis.Redis(port=node.port, username="blog", password="blog-pw", protocol=3, retry=NO_RETRY)
        shop.set("shop:cart:1", "3 items")
        blog.hset("blog:post:1", mapping={"title": "hello"})
        with pytest.raises(redis.exceptions.NoPermissionError):
            blog.get("shop:cart:1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            shop.delete("blog:post:1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            shop.flushall()
        with pytest.raises(redis.exceptions.NoPermissionError):
            shop.keys("*")
        with pytest.raises(redis.exceptions.NoPermissionError):
            blog.publish("shop.orders", "x")
        pipe = blog.pipeline(transaction=True)
        pipe.set("blog:a", 1).get("shop:cart:1")
        with pytest.raises(redis.exceptions.NoPermissionError):      # refused when queued: nothing ran
            pipe.execute()
        assert blog.get("blog:a") is None
        assert shop.get("shop:cart:1") == b"3 items" and blog.hgetall("blog:post:1") == {b"title": b"hello"}
        assert shop.acl_whoami() == "shop" and blog.acl_whoami() in ("blog", b"blog")      # (RESP3: bytes)
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=node.port, username="shop", password="blog-pw", retry=NO_RETRY).ping()
        # the cluster client routes itself with the same user (CLUSTER SLOTS, COMMAND are allowed)
        cluster = redis.RedisCluster(host="127.0.0.1", port=node.port, username="shop", password="shop-pw")
        assert cluster.get("shop:cart:1") == b"3 items"
        with pytest.raises(redis.exceptions.NoPermissionError):
            cluster.get("blog:post:1")
        cluster.close()
        log = admin.acl_log()
        assert {(e["username"], e["reason"]) for e in log} >= {("blog", "key"), ("shop", "key"), ("shop", "command")}
        # a deleted user's connections are closed
        admin.acl_deluser("blog")
        with pytest.raises(redis.exceptions.ConnectionError):
            blog.ping()
    finally:
        admin.acl_deluser("shop", "blog")
        admin.acl_log_reset()


def test_aclfile_loaded_at_start_by_every_node_saved_and_reloaded(node_factory, tmp_path):
    path = tmp_path / "users.acl"
    path.write_text("# application users\n"
                    "user default on nopass ~* &* +@all\n"
                    # a cluster client also asks CLUSTER SLOTS and COMMAND (+@connection)
                    "user shop on >shop-pw ~shop:* resetchannels -@all +@read +@write +@connection +cluster|slots\n\n")
    node = node_factory.start("--aclfile", str(path), *CLUSTER_TIMEOUT)
    other = node_factory.start("--aclfile", str(path), *CLUSTER_TIMEOUT, join=node)    # the same file on every node
    wait_until(lambda: agreed([node, other], 2), timeout=15, message=node_factory.logs)
    cluster = redis.RedisCluster(host="127.0.0.1", port=other.port, username="shop", password="shop-pw")
    for i in range(20):         # keys on both nodes: each one knows the user
        assert cluster.set(f"shop:{i}", i)
    assert [cluster.get(f"shop:{i}") for i in range(20)] == [b"%d" % i for i in range(20)]
    with pytest.raises(redis.exceptions.NoPermissionError):
        cluster.set("blog:1", 1)
    cluster.close()
    admin = node.client()
    assert admin.acl_users() == ["default", "shop"]
    shop = redis.Redis(port=node.port, username="shop", password="shop-pw", retry=NO_RETRY)
    assert shop.set("shop:a", 1) and shop.get("shop:a") == b"1"
    admin.acl_setuser("blog", enabled=True, nopass=True, keys=["blog:*"], commands=["+get"])
    assert admin.acl_save()
    saved = path.read_text()
    assert "user blog on nopass ~blog:* resetchannels -@all +get\n" in saved
    path.write_text("user default on nopass ~* &* +@all\nuser blog on nopass ~blog:* -@all +get +set\n")
    assert admin.acl_load()
    assert admin.acl_users() == ["blog", "default"]
    with pytest.raises(redis.exceptions.ConnectionError):     # shop is gone: its connection with it
        shop.get("shop:a")
    path.write_text("user default on nopass ~* &* +@all\nuser blog on +nosuchcommand\nnonsense\n")
    with pytest.raises(redis.exceptions.ResponseError, match="nosuchcommand"):
        admin.acl_load()
    assert admin.acl_users() == ["blog", "default"]         # a bad file changes nothing


def test_revoking_a_channel_closes_its_subscribers(node):
    admin = Client(node.port)
    assert admin("ACL", "SETUSER", "feed", "reset", "on", ">pw", "&news.*", "+@all")[0] == b"+OK\r\n"
    try:
        reader, other = Client(node.port), Client(node.port)
        for client in (reader, other):
            assert client("AUTH", "feed", "pw")[0] == b"+OK\r\n"
        assert reader("PSUBSCRIBE", "news.*")[1] == [b"psubscribe", b"news.*", 1]
        assert admin("ACL", "SETUSER", "feed", "resetchannels", "&weather")[0] == b"+OK\r\n"    # news.* no longer
        reader.sock.settimeout(10)
        assert reader.sock.recv(100) == b""             # closed by the node
        assert other("PING")[0] == b"+PONG\r\n"        # not subscribed: kept
        reader.close()
        other.close()
    finally:
        admin("ACL", "DELUSER", "feed")
        admin.close()


def _pipelined(port: int) -> bytes:
    """A restricted user's pipeline in one write: allowed and denied commands interleaved."""
    admin = Client(port)
    admin("ACL", "SETUSER", "piper", "reset", "on", ">p", "~*", "&*", "+@all", "-@dangerous", "-incr")
    admin("ACL", "SETUSER", "keyed", "reset", "on", ">k", "~{p}*", "+@all")
    admin("ACL", "SETUSER", "halves", "reset", "on", ">h", "%R~{p}r*", "%W~{p}w*", "+@all")
    common = [("SET", "{p}a", "1"), ("GET", "{p}a"), ("FLUSHALL",), ("INCR", "{p}n"), ("GET", "{p}a"),
              ("SET", "x", "1"), ("MGET", "{p}a", "{p}b"), ("HSET", "{p}h", "f", "v"), ("GET", "{p}h"), ("PING",)]
    halves = [("GET", "{p}r1"), ("SET", "{p}r1", "v"), ("SET", "{p}w1", "v"), ("GET", "{p}w1"), ("INCR", "{p}w2"),
              ("APPEND", "{p}w1", "x"), ("SET", "{p}w1", "v", "GET"), ("STRLEN", "{p}r1"), ("LPUSH", "{p}wl", "x"),
              ("LPOP", "{p}wl"), ("DEL", "{p}w1"), ("EXISTS", "{p}w1"), ("SET", "{p}w1", "v", "EX", "10")]
    try:
        out = b""
        for user, password, calls in (("piper", "p", common), ("keyed", "k", common), ("halves", "h", halves)):
            client = Client(port)
            assert client("AUTH", user, password)[0] == b"+OK\r\n"
            client.sock.sendall(b"".join(encode_command(*call) for call in calls))      # one read on the server
            raw, wanted = b"", len(calls)
            while wanted:
                value = client.reader.gets()
                if value is False:
                    data = client.sock.recv(1 << 16)
                    assert data
                    raw += data
                    client.reader.feed(data)
                else:
                    wanted -= 1
            out += raw
            client.close()
        return out
    finally:
        admin("ACL", "DELUSER", "piper", "keyed", "halves")
        admin("FLUSHALL")
        admin.close()


def test_restricted_pipelines_like_redis(node, redis_server):
    assert _pipelined(node.port) == _pipelined(redis_server.port)


def test_a_bad_aclfile_stops_the_node_at_start(tmp_path):
    path = tmp_path / "users.acl"
    path.write_text("user default on nopass ~* &* +@all\nuser x on +nosuchcommand\n")
    done = subprocess.run([sys.executable, "-m", "hypercache", "--port", str(node_ports()[0]), "--http-port", "0",
                           "--aclfile", str(path)],
                          cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"cannot start: {path}:2: Error in user declaration '+nosuchcommand'" in done.stderr
