"""Locust load against a hypercache cluster through redis-py's RedisCluster, as an application would use it.

Every call is timed and reported to Locust's statistics (request type "redis",
named by command), so failures and latencies show in the UI, the CSV and the
exit code. Against the local 3-node cluster (`make run`):

    locust -f loadtest/locustfile.py --host redis://127.0.0.1:8080                 # web UI on :8089
    locust -f loadtest/locustfile.py --headless -u 50 -r 10 -t 1m --host redis://127.0.0.1:8080

Any member works as --host: the client reads the slot map (CLUSTER SLOTS) from it
and goes to each key's owner itself; a MOVED reply is followed, never a failure.
"""
from __future__ import annotations

import random
import time
from urllib.parse import urlparse

import redis
from locust import User, between, events, task

KEYS = 10_000          # user:{n}
COUNTERS = 100         # counter:{n}
PROFILES = 1_000       # {profile:n}:field keys, one slot per profile


def _address(host: str | None) -> tuple[str, int]:
    url = urlparse(host or "redis://127.0.0.1:8080")
    if url.scheme not in ("redis", ""):
        raise ValueError(f"--host must look like redis://HOST:PORT, got {host!r}")
    return url.hostname or "127.0.0.1", url.port or 8080


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument("--redis-protocol", type=int, choices=(2, 3), default=2,
                        help="RESP version the RedisCluster clients speak")


class RedisClusterUser(User):
    """A cache client: reads mostly, writes some, counts, and reads a profile's fields at once."""

    wait_time = between(0.001, 0.01)

    def on_start(self) -> None:
        host, port = _address(self.host)
        protocol = getattr(self.environment.parsed_options, "redis_protocol", 2)
        self.client = redis.RedisCluster(host=host, port=port, decode_responses=True, protocol=protocol,
                                         socket_timeout=10, socket_connect_timeout=10)

    def on_stop(self) -> None:
        self.client.close()

    def _call(self, name: str, fn, *args):
        """Run one command and report it to Locust; a wrong reply counts as a failure too."""
        started = time.perf_counter()
        exception = None
        result = None
        try:
            result = fn(*args)
        except Exception as error:      # noqa: BLE001 - every failure is reported, none is fatal
            exception = error
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.environment.events.request.fire(
            request_type="redis", name=name, response_time=elapsed_ms,
            response_length=len(str(result)) if result is not None else 0,
            exception=exception, context={})
        return result

    def _fail(self, name: str, message: str) -> None:
        self.environment.events.request.fire(request_type="redis", name=name + " (check)", response_time=0,
                                             response_length=0, exception=AssertionError(message), context={})

    @task(10)
    def get(self) -> None:
        self._call("GET", self.client.get, f"user:{random.randrange(KEYS)}")

    @task(4)
    def set(self) -> None:
        n = random.randrange(KEYS)
        value = f"value-{n}-{random.random()}"
        if self._call("SET", self.client.set, f"user:{n}", value) is not True:
            return
        got = self._call("GET", self.client.get, f"user:{n}")
        if got is None:
            self._fail("SET", f"user:{n} missing right after SET")

    @task(3)
    def incr(self) -> None:
        key = f"counter:{random.randrange(COUNTERS)}"
        before = self._call("INCR", self.client.incr, key)
        if before is not None and before < 1:
            self._fail("INCR", f"{key} went to {before}")

    @task(2)
    def mget_profile(self) -> None:
        """Multi-key commands on one {hash tag}: one slot, one node, no CROSSSLOT."""
        tag = "{profile:%d}" % random.randrange(PROFILES)
        fields = {f"{tag}:name": "n", f"{tag}:email": "e", f"{tag}:visits": "0"}
        if self._call("MSET", self.client.mset, fields) is not True:
            return
        values = self._call("MGET", self.client.mget, list(fields))
        if values is not None and None in values:
            self._fail("MGET", f"{tag} lost a field: {values}")
