"""Blocking pops on a real node: waiting without holding the node, timeouts, arrival order, wakeups.

Every blocked client runs in its own thread with its own connection; the test
waits for the node to report it blocked (INFO blocked_clients) before acting,
and waits for results with a deadline.
"""
from __future__ import annotations

import queue
import threading
import time

import pytest
import redis

from tests.nodes import encode_command, read_reply, wait_until


def blocked_clients(r) -> int:
    return int(r.info("clients")["blocked_clients"])


class Background:
    """Run one command on its own connection in a thread; its reply (or error) lands in .result."""

    def __init__(self, node, *args, protocol: int = 2) -> None:
        self.client = node.client(protocol=protocol, socket_timeout=30)
        self.results: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, args=(args,), daemon=True)
        self.thread.start()

    def _run(self, args) -> None:
        try:
            self.results.put(self.client.execute_command(*args))
        except Exception as error:   # noqa: BLE001 - handed to the test
            self.results.put(error)

    def result(self, timeout: float = 10.0):
        value = self.results.get(timeout=timeout)
        self.client.close()
        return list(value) if isinstance(value, tuple) else value   # redis-py makes BLPOP's a tuple


def start_blocked(node, r, *args, protocol: int = 2, count: int = 1) -> Background:
    job = Background(node, *args, protocol=protocol)
    wait_until(lambda: blocked_clients(r) >= count, message=f"{args[0]} to block")
    return job


@pytest.mark.parametrize("protocol", [2, 3])
def test_blpop_is_woken_by_a_push_from_another_client(node, r, protocol) -> None:
    job = start_blocked(node, r, "BLPOP", "{q}a", "{q}b", "0", protocol=protocol)
    assert r.ping()                     # the node keeps serving others meanwhile
    r.rpush("{q}b", "x", "y")
    assert job.result() == [b"{q}b", b"x"]
    assert r.lrange("{q}b", 0, -1) == [b"y"]
    assert blocked_clients(r) == 0


def test_blocking_pop_serves_at_once_when_data_is_there(r) -> None:
    r.rpush("{q}a", "1", "2")
    assert r.blpop(["{q}none", "{q}a"], timeout=1) == (b"{q}a", b"1")
    assert r.brpop(["{q}a"], timeout=1) == (b"{q}a", b"2")
    assert r.exists("{q}a") == 0


@pytest.mark.parametrize("command,args,expected", [
    ("BLPOP", ("{q}a", "0.2"), None),
    ("BRPOP", ("{q}a", "{q}b", "0.2"), None),
    ("BLMOVE", ("{q}a", "{q}b", "LEFT", "RIGHT", "0.2"), None),
    ("BLMPOP", ("0.2", "1", "{q}a", "LEFT"), None),
    ("BZPOPMIN", ("{q}a", "0.2"), None),
    ("BZPOPMAX", ("{q}a", "0.2"), None),
])
def test_timeouts_are_honoured(node, r, command, args, expected) -> None:
    started = time.monotonic()
    assert r.execute_command(command, *args) == expected
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 5.0
    assert blocked_clients(r) == 0


def test_timeout_null_reply_shapes_match_redis(node, redis_server) -> None:
    for server in (node, redis_server):
        with server.raw() as sock:
            sock.sendall(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$4\r\n0.05\r\n")
            data = b""
            while not data.endswith(b"\r\n"):
                data += sock.recv(100)
            assert data == b"*-1\r\n"


@pytest.mark.parametrize("raw,error", [
    ("-1", "timeout is negative"),
    ("abc", "timeout is not a float or out of range"),
    ("1e100", "timeout is negative"),
])
def test_bad_timeouts_are_refused(r, raw, error) -> None:
    with pytest.raises(redis.ResponseError, match=error):
        r.execute_command("BLPOP", "{q}a", raw)


def test_blocked_clients_are_served_in_arrival_order(node, r) -> None:
    first = start_blocked(node, r, "BLPOP", "{q}a", "0", count=1)
    second = start_blocked(node, r, "BLPOP", "{q}a", "0", count=2)
    third = start_blocked(node, r, "BRPOP", "{q}a", "{q}b", "0", count=3)
    r.rpush("{q}a", "1", "2")
    assert first.result() == [b"{q}a", b"1"]
    assert second.result() == [b"{q}a", b"2"]
    assert blocked_clients(r) == 1
    r.rpush("{q}b", "3")
    assert third.result() == [b"{q}b", b"3"]


def test_a_push_inside_multi_exec_wakes_the_blocked_client(node, r) -> None:
    job = start_blocked(node, r, "BLPOP", "{q}a", "0")
    pipe = r.pipeline(transaction=True)
    pipe.rpush("{q}a", "1")
    pipe.rpush("{q}a", "2")
    assert pipe.execute() == [1, 2]
    assert job.result() == [b"{q}a", b"1"]
    assert r.lrange("{q}a", 0, -1) == [b"2"]


def test_blocking_command_inside_multi_does_not_block(r) -> None:
    pipe = r.pipeline(transaction=True)
    pipe.blpop(["{q}a"], timeout=0)
    pipe.rpush("{q}a", "x")
    pipe.blpop(["{q}a"], timeout=0)
    assert pipe.execute() == [None, 1, (b"{q}a", b"x")]


def test_blmove_chain_wakes_the_next_waiter(node, r) -> None:
    mover = start_blocked(node, r, "BLMOVE", "{q}src", "{q}dst", "RIGHT", "LEFT", "0", count=1)
    reader = start_blocked(node, r, "BLPOP", "{q}dst", "0", count=2)
    r.lpush("{q}src", "job")
    assert mover.result() == b"job"
    assert reader.result() == [b"{q}dst", b"job"]
    assert r.exists("{q}src", "{q}dst") == 0


def test_blmpop_with_count(node, r) -> None:
    job = start_blocked(node, r, "BLMPOP", "0", "2", "{q}a", "{q}b", "RIGHT", "COUNT", "5")
    r.rpush("{q}b", "1", "2", "3")
    assert job.result() == [b"{q}b", [b"3", b"2", b"1"]]


@pytest.mark.parametrize("protocol", [2, 3])
def test_bzpopmin_and_bzpopmax(node, r, protocol) -> None:
    job = start_blocked(node, r, "BZPOPMIN", "{z}a", "{z}b", "0", protocol=protocol)
    r.zadd("{z}b", {"m": 1.5, "n": 2})
    assert job.result() == [b"{z}b", b"m", 1.5]     # redis-py parses the RESP2 bulk too
    assert r.bzpopmax(["{z}b"], timeout=1) == (b"{z}b", b"n", 2.0)


@pytest.mark.parametrize("protocol", [2, 3])
def test_bzmpop_waits_for_a_member_and_pops_by_score(node, r, protocol) -> None:
    job = start_blocked(node, r, "BZMPOP", "0", "2", "{z}a", "{z}b", "MAX", "COUNT", "2", protocol=protocol)
    r.zadd("{z}b", {"low": 1, "mid": 2.5, "high": 3})
    expected_scores = [b"3", b"2.5"] if protocol == 2 else [3.0, 2.5]
    assert job.result() == [b"{z}b", [[b"high", expected_scores[0]], [b"mid", expected_scores[1]]]]
    assert r.zrange("{z}b", 0, -1, withscores=True) == [(b"low", 1.0)]


def test_bzmpop_times_out_with_a_null_array(node, r) -> None:
    started = time.monotonic()
    assert r.execute_command("BZMPOP", "0.2", "1", "{z}none", "MIN") is None
    assert time.monotonic() - started >= 0.19


def test_wrong_type_is_an_error_at_once_and_ignored_while_waiting(node, r) -> None:
    r.set("{q}s", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.blpop(["{q}s"], timeout=0)
    r.delete("{q}s")
    job = start_blocked(node, r, "BLPOP", "{q}s", "0")
    r.set("{q}s", "string now")           # a write of the wrong type: keep waiting (Redis 7.0)
    r.delete("{q}s")
    r.rpush("{q}s", "v")
    assert job.result() == [b"{q}s", b"v"]


def test_a_blocked_client_that_disconnects_is_forgotten(node, r) -> None:
    sock = node.raw()
    sock.sendall(encode_command("BLPOP", "{q}a", "0"))
    wait_until(lambda: blocked_clients(r) == 1, message="BLPOP to block")
    sock.close()
    wait_until(lambda: blocked_clients(r) == 0, message="the disconnected client to be forgotten")
    r.rpush("{q}a", "kept")
    assert r.lrange("{q}a", 0, -1) == [b"kept"]


def test_a_waiter_that_blocks_again_does_not_stall_the_pushers_big_pipeline(node, r) -> None:
    # The push serves a client whose next pipelined BLPOP blocks again; the
    # pusher's pipeline then pauses to send big replies. The pusher must not
    # be parked on the other client's blocking command (it used to be: it got
    # 12 of its 22 replies and hung).
    waiter = node.raw()
    waiter.sendall(encode_command("BLPOP", "{q}k", "0") + encode_command("BLPOP", "{q}k", "0"))
    wait_until(lambda: blocked_clients(r) == 1, message="BLPOP to block")
    r.set("{q}big", "x" * 100_000)
    pusher = node.raw()
    pusher.sendall(encode_command("LPUSH", "{q}k", "v")
                   + b"".join(encode_command("GET", "{q}big") for _ in range(20))
                   + encode_command("PING"))
    replies = [read_reply(pusher) for _ in range(22)]
    assert replies[0] == 1 and replies[1:21] == [b"x" * 100_000] * 20 and replies[21] == b"PONG"
    assert read_reply(waiter) == [b"{q}k", b"v"]
    assert blocked_clients(r) == 1          # the waiter's second BLPOP, still waiting
    waiter.close()
    pusher.close()


def test_requests_behind_a_timed_out_block_run_at_the_current_time(node, r) -> None:
    # The SET behind the BLPOP runs when the BLPOP times out, a second later:
    # its relative TTL counts from then, not from when the pipeline was read.
    with node.raw() as sock:
        sock.sendall(encode_command("BLPOP", "{q}none", "1")
                     + encode_command("SET", "{q}x", "v", "PX", "1500"))
        assert read_reply(sock) is None
        assert read_reply(sock) == b"OK"
        sock.sendall(encode_command("PTTL", "{q}x"))
        assert read_reply(sock) > 1000


def test_a_blocked_client_cannot_queue_more_than_the_query_buffer_limit(node, r) -> None:
    # As Redis: requests read while blocked count towards client-query-buffer-limit.
    r.config_set("client-query-buffer-limit", "1mb")
    try:
        sock = node.raw()
        sock.sendall(encode_command("BLPOP", "{q}k", "0"))
        wait_until(lambda: blocked_clients(r) == 1, message="BLPOP to block")
        chunk = b"".join(encode_command("SET", "{q}x", "y" * 10_000) for _ in range(10))
        try:
            for _ in range(300):            # 30 MB, far past the limit
                sock.sendall(chunk)
        except OSError:
            pass                            # closed by the node, as wanted
        wait_until(lambda: blocked_clients(r) == 0, message="the client to be closed")
        sock.close()
    finally:
        r.config_set("client-query-buffer-limit", "1gb")


def test_a_long_chain_of_clients_waking_one_another(node, r) -> None:
    # Each client blocks, and pipelines behind its BLPOP the push that wakes
    # the next one. However long the chain, every client is served (it used
    # to nest one call per client until Python's recursion limit broke it).
    count = 400
    chain = []
    for i in range(count):
        sock = node.raw()
        sock.sendall(encode_command("BLPOP", f"{{q}}{i}", "0")
                     + encode_command("RPUSH", f"{{q}}{i + 1}", "x"))
        chain.append(sock)
    wait_until(lambda: blocked_clients(r) == count, message="the chain to block")
    r.rpush("{q}0", "x")
    for i, sock in enumerate(chain):
        assert read_reply(sock) == [f"{{q}}{i}".encode(), b"x"]
        assert read_reply(sock) == 1
        sock.close()
    assert r.lrange(f"{{q}}{count}", 0, -1) == [b"x"]
    assert blocked_clients(r) == 0


def test_client_list_flags_the_blocked_clients(node, r) -> None:
    job = start_blocked(node, r, "BLPOP", "{q}flag", "0")
    lines = r.execute_command("CLIENT", "LIST").decode().splitlines()
    fields = [(line.split(" flags=")[1].split()[0], line.split(" cmd=")[1].split()[0]) for line in lines]
    assert [cmd for flags, cmd in fields if "b" in flags] == ["blpop"]    # the one blocked now
    assert ("N", "client|list") in fields
    r.rpush("{q}flag", "v")
    assert job.result() == [b"{q}flag", b"v"]


def test_client_list_shows_each_clients_last_command_like_redis(node, redis_server) -> None:
    for server in (node, redis_server):
        with server.client(protocol=2) as other, server.client(protocol=2) as r:
            ids = {other.client_id(), r.client_id()}
            other.set("{c}k", "v")
            other.get("{c}k")
            pipe = other.pipeline(transaction=True)
            pipe.incr("{c}n")
            pipe.execute()
            lines = r.execute_command("CLIENT", "LIST", "ID", *ids).decode().splitlines()
            commands = sorted(line.split(" cmd=")[1].split()[0] for line in lines)
            assert commands == ["client|list", "exec"], server
