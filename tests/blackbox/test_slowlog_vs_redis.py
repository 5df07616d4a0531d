"""SLOWLOG against a real redis-server: what is logged, in which order, and how arguments are cut.

With `slowlog-log-slower-than 0` every command is logged, so both servers'
logs hold the same entries (durations, timestamps and ids aside). The
commands go out as one pipeline, through the node's fast lane and its
general path alike.
"""
from __future__ import annotations

from tests.blackbox.test_pipelines_vs_redis import comparable, replies
from tests.nodes import encode_command, raw_connect

COMMANDS = [
    ["SET", "a", "1"], ["GET", "a"], ["GET", "a"], ["SET", "b", "x" * 300], ["INCR", "a"],
    ["RPUSH", "{l}", *[str(i) for i in range(40)]], ["LRANGE", "{l}", "0", "2"], ["HSET", "h", "f", "v"],
    ["MULTI"], ["SET", "c", "1"], ["INCR", "c"], ["EXEC"], ["GET", "nosuchkey"], ["DEL", "a"],
    ["EVAL", "return redis.call('get', KEYS[1])", "1", "c"], ["PING"], ["NOSUCHCOMMAND"],
    ["SLOWLOG", "LEN"], ["CLIENT", "SETNAME", "logged"], ["ECHO", "after the name"],
    # secrets are shown "(redacted)"
    ["AUTH", "nobody", "secret"], ["HELLO", "2", "AUTH", "nobody", "secret", "SETNAME", "x"],
    ["ACL", "SETUSER", "slowlogged", ">secret"], ["ACL", "DELUSER", "slowlogged"],
    ["CONFIG", "SET", "requirepass", "", "maxmemory", "0"],
]


def _log(port: int) -> tuple[list, list, bytes]:
    sock = raw_connect(port)
    try:
        sock.sendall(encode_command("CONFIG", "SET", "slowlog-log-slower-than", "0")
                     + encode_command("SLOWLOG", "RESET") + encode_command("CLIENT", "INFO"))
        *_, info = replies(sock, 3)
        addr = next(field for field in info.split() if field.startswith(b"addr="))[5:]
        sock.sendall(b"".join(encode_command(*c) for c in COMMANDS))
        answers = [comparable(r) for r in replies(sock, len(COMMANDS))]
        sock.sendall(encode_command("SLOWLOG", "GET", "-1") + encode_command("SLOWLOG", "GET", "2")
                     + encode_command("SLOWLOG", "GET", "-2") + encode_command("SLOWLOG", "GET", "x")
                     + encode_command("SLOWLOG", "HELP") + encode_command("CONFIG", "SET", "slowlog-max-len", "3")
                     + encode_command("SLOWLOG", "LEN") + encode_command("CONFIG", "GET", "slowlog-*"))
        everything, two, *rest, config = replies(sock, 8)
        config = sorted(zip(config[::2], config[1::2]))       # (in Redis's hashtable order)
        return answers, [comparable(x) for x in rest] + [config], (everything, two, addr)
    finally:
        sock.sendall(encode_command("CONFIG", "SET", "slowlog-log-slower-than", "10000")
                     + encode_command("CONFIG", "SET", "slowlog-max-len", "128") + encode_command("SLOWLOG", "RESET"))
        replies(sock, 3)
        sock.close()


def test_slowlog_like_redis(node, redis_server):
    mine, theirs = _log(node.port), _log(redis_server.port)
    assert mine[0] == theirs[0]
    assert mine[1] == theirs[1]
    for everything, two, addr in (mine[2], theirs[2]):
        ids = [entry[0] for entry in everything]
        assert ids == list(range(ids[0], ids[0] - len(ids), -1))       # newest first, one id each
        assert all(entry[4] == (b"?:0" if entry[3] == [b"get", b"c"] else addr) and entry[2] >= 0
                   for entry in everything)
        assert two[0][3] == [b"SLOWLOG", b"GET", b"-1"] and two[1] == everything[0]     # (it logged itself)
    shown = [[(entry[3], entry[5]) for entry in log[0]] for log in (mine[2], theirs[2])]
    assert shown[0] == shown[1]
    assert len(shown[1]) > 15 and [b"SET", b"b", b"x" * 128 + b"... (172 more bytes)"] in [args for args, _ in shown[1]]
