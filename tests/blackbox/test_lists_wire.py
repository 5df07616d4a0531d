"""List replies built from elements stored in wire form, byte for byte against a real redis-server.

The payloads are the ones a wire-form store could get wrong: empty, binary,
holding CR/LF or a RESP header of their own, and around the node's cached
header table (1024 bytes). Every raw reply, in RESP2 and RESP3, must equal
redis-server's, including what a blocked client receives when it is woken.
"""
from __future__ import annotations

import hiredis
import pytest

from tests.nodes import encode_command, raw_connect, read_raw_reply, wait_until

PAYLOADS = [b"", b"\r\n", b"a\r\nb", b"$3\r\nxyz\r\n", b"*1\r\n:1\r\n", bytes(range(256)),
            b"x" * 1023, b"y" * 1024, b"z" * 1025, b"\n" * 70_000]


def call(sock, *args) -> bytes:
    """Send one command; the raw bytes of its reply."""
    sock.sendall(encode_command(*args))
    return read_raw_reply(sock)


def blocked_clients(sock) -> int:
    reader = hiredis.Reader()
    reader.feed(call(sock, "INFO", "clients"))
    text = reader.gets().decode()
    return int(text.split("blocked_clients:")[1].split()[0])


SCRIPT = [
    ("RPUSH", "{w}a", *PAYLOADS),
    ("LPUSH", "{w}a", b"", b"\r\n"),
    ("LRANGE", "{w}a", 0, -1),
    ("LRANGE", "{w}a", -4, -2),
    ("LRANGE", "{w}a", 3, 1),
    ("LINDEX", "{w}a", 4),
    ("LINDEX", "{w}a", -1),
    ("LPOS", "{w}a", b"\r\n", "COUNT", 0),
    ("LPOS", "{w}a", b"", "RANK", -1),
    ("LPOS", "{w}a", b"\r"),
    ("LSET", "{w}a", 1, b"y" * 1024),
    ("LINSERT", "{w}a", "AFTER", b"y" * 1024, b"\r\n\r\n"),
    ("LINSERT", "{w}a", "BEFORE", b"y" * 1023, b"nope"),
    ("LREM", "{w}a", -1, b"y" * 1024),
    ("LREM", "{w}a", 0, b"\r\n"),
    ("LRANGE", "{w}a", 0, -1),
    ("LPOP", "{w}a"),
    ("RPOP", "{w}a"),
    ("LPOP", "{w}a", 2),
    ("RPOP", "{w}a", 0),
    ("LMOVE", "{w}a", "{w}b", "RIGHT", "LEFT"),
    ("RPOPLPUSH", "{w}a", "{w}b"),
    ("LMPOP", 2, "{w}none", "{w}a", "RIGHT", "COUNT", 2),
    ("BLPOP", "{w}none", "{w}b", 0),
    ("BRPOP", "{w}a", 0),
    ("BLMPOP", 0, 1, "{w}b", "LEFT", "COUNT", 9),
    ("BLMOVE", "{w}a", "{w}a", "LEFT", "RIGHT", 0),
    ("BRPOPLPUSH", "{w}a", "{w}c", 0),
    ("LTRIM", "{w}a", 1, -2),
    ("LRANGE", "{w}a", 0, -1),
    ("LRANGE", "{w}c", 0, -1),
    ("LPOP", "{w}none"),
    ("LPOP", "{w}none", 3),
    ("LMPOP", 1, "{w}none", "LEFT"),
]


@pytest.mark.parametrize("protocol", [2, 3])
def test_list_replies_with_awkward_payloads_match_redis(node, redis_server, protocol: int) -> None:
    ours, theirs = raw_connect(node.port), raw_connect(redis_server.port)
    try:
        if protocol == 3:
            call(ours, "HELLO", "3")
            call(theirs, "HELLO", "3")
        mismatches = []
        for args in SCRIPT:
            expected, got = call(theirs, *args), call(ours, *args)
            if expected != got:
                mismatches.append(f"{args[:3]}\n    redis-server: {expected[:200]!r}\n    hypercache:   {got[:200]!r}")
        assert not mismatches, "\n".join(mismatches)
    finally:
        ours.close()
        theirs.close()


def woken_reply(port: int, protocol: int, blocking: tuple, push: tuple) -> bytes:
    """What a client blocked on `blocking` receives once another client runs `push`."""
    waiter, pusher = raw_connect(port, timeout=10), raw_connect(port)
    try:
        if protocol == 3:
            call(waiter, "HELLO", "3")
        waiter.sendall(encode_command(*blocking))
        wait_until(lambda: blocked_clients(pusher) == 1, message=f"{blocking[0]} to block")
        call(pusher, *push)
        return read_raw_reply(waiter)
    finally:
        waiter.close()
        pusher.close()


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("blocking", [
    ("BLPOP", "{k}none", "{k}q", 0),
    ("BRPOP", "{k}q", 0),
    ("BLMPOP", 0, 2, "{k}none", "{k}q", "LEFT", "COUNT", 3),
    ("BLMOVE", "{k}q", "{k}d", "RIGHT", "LEFT", 0),
    ("BRPOPLPUSH", "{k}q", "{k}d", 0),
], ids=lambda args: args[0])
def test_a_woken_client_gets_the_element_as_redis_sends_it(node, redis_server, protocol: int, blocking) -> None:
    push = ("RPUSH", "{k}q", b"a\r\nb", b"", b"x" * 1024, b"$1\r\nz\r\n")
    assert woken_reply(node.port, protocol, blocking, push) == \
        woken_reply(redis_server.port, protocol, blocking, push)
