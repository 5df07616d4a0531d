"""LATENCY against a real redis-server: the same steps, replies compared as bytes where time cannot differ.

A DEBUG SLEEP past `latency-monitor-threshold` is a "command" sample on both. Timestamps
and milliseconds are the measurement itself (Redis measured 54 ms for a 50 ms sleep here):
the steps that show them are compared with every number replaced by N, and the numbers
are checked to be plausible.
"""
from __future__ import annotations

import re
import time

from tests.blackbox.test_acl_vs_redis import Client


def _numbers_out(raw: bytes) -> bytes:
    # (RESP lengths move with the numbers: $N, and a graph line's width does not depend on them)
    return re.sub(rb"\d+", b"N", raw)


STEPS = [
    ("raw", "LATENCY", "LATEST"), ("raw", "LATENCY", "DOCTOR"), ("raw", "LATENCY", "HISTORY", "command"),
    ("raw", "LATENCY", "GRAPH", "command"), ("raw", "LATENCY", "RESET"), ("raw", "LATENCY", "HELP"),
    ("raw", "LATENCY"), ("raw", "LATENCY", "HISTORY"), ("raw", "LATENCY", "NOPE"),
    ("raw", "CONFIG", "SET", "latency-monitor-threshold", "-1"),
    ("raw", "CONFIG", "SET", "latency-monitor-threshold", "10"),
    ("raw", "CONFIG", "GET", "latency-monitor-threshold"),
    ("raw", "LATENCY", "DOCTOR"),
    ("raw", "DEBUG", "SLEEP", "0.05"), ("raw", "DEBUG", "SLEEP", "0"),
    ("numbers", "LATENCY", "LATEST"), ("numbers", "LATENCY", "HISTORY", "command"),
    ("numbers", "LATENCY", "GRAPH", "command"), ("numbers", "LATENCY", "DOCTOR"),
    ("raw", "LATENCY", "HISTORY", "fast-command"), ("raw", "LATENCY", "GRAPH", "nope"),
    ("raw", "SET", "k", "v"),
    ("shape", "LATENCY", "HISTOGRAM", "set", "nosuchcommand", "SET"), ("raw", "LATENCY", "HISTOGRAM", "nosuchcommand"),
    ("raw", "LATENCY", "RESET", "command", "nope"), ("raw", "LATENCY", "LATEST"),
    ("raw", "CONFIG", "SET", "slowlog-log-slower-than", "-1"), ("raw", "DEBUG", "SLEEP", "0.02"),
    ("numbers", "LATENCY", "DOCTOR"),
    ("raw", "CONFIG", "SET", "slowlog-log-slower-than", "100000"), ("numbers", "LATENCY", "DOCTOR"),
    ("raw", "CONFIG", "SET", "slowlog-log-slower-than", "10000"),
    ("raw", "CONFIG", "SET", "latency-monitor-threshold", "0"), ("raw", "LATENCY", "RESET"),
]


def _run(port: int) -> list:
    client = Client(port)
    out = []
    try:
        for kind, *command in STEPS:
            raw, value = client(*command)
            if kind == "numbers":
                out.append(_numbers_out(raw))
                if command[1] == "LATEST":
                    (event, at, latest, worst), = value
                    assert event == b"command" and abs(at - time.time()) < 30 and 50 <= latest <= worst < 5000
            elif kind == "shape":
                histograms = dict(zip(value[::2], value[1::2]))
                assert list(histograms) == [b"set"]
                fields = dict(zip(histograms[b"set"][::2], histograms[b"set"][1::2]))
                assert fields[b"calls"] == 1 and len(fields[b"histogram_usec"]) == 2
                out.append(sorted(fields))
            else:
                out.append(raw)
    finally:
        client.close()
    return out


def test_latency_like_redis(node, redis_server_factory):
    redis = redis_server_factory("--enable-debug-command", "yes")
    mine, theirs = _run(node.port), _run(redis.port)
    differences = [(step, got, wanted) for step, got, wanted in zip(STEPS, mine, theirs) if got != wanted]
    assert not differences
