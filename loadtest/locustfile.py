"""Locust load against a hypercache cluster through redis-py's RedisCluster, as an application would use it.

Two kinds of users (locust runs both, 4 cache users to 1 verifier by default):

* CacheUser: a realistic cache mix, GET-heavy: reads of a skewed key space (a few keys
  are hot), SETs with a TTL, counters, session hashes (HSET + EXPIRE, HGETALL) and a
  leaderboard (ZINCRBY, ZREVRANGE), plus MSET/MGET on one {hash tag}.
* VerifyingUser: writes keys only it writes, remembers every acknowledged value, and
  checks each read against it: a read that returns an older value, or nothing, is a
  failure named "... verify (check)". A load test thus sees lost data, not only errors.

Every call is timed and reported to Locust (request type "redis", named by command), so
failures and latencies show in the UI, the CSV and the exit code. Against `make run`:

    locust -f loadtest/locustfile.py --host redis://127.0.0.1:8080              # web UI on http://127.0.0.1:8089
    locust -f loadtest/locustfile.py --headless -u 50 -r 10 -t 1m --host redis://127.0.0.1:8080

The shape of the load, from the environment:
    HC_LOAD_KEYS=10000        cache keys (user:{n}); sessions and players scale from it
    HC_LOAD_VALUE_BYTES=100   value size, or a range: 32-1024
    HC_LOAD_TTL_S=300         TTL of the cache SETs and sessions

Any member works as --host: the client reads the slot map (CLUSTER SLOTS) from it
and goes to each key's owner itself; a MOVED reply is followed, never a failure.
"""
from __future__ import annotations

import itertools
import os
import random
import time
from urllib.parse import urlparse

import redis
from locust import User, between, events, task


def _value_sizes(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


KEYS = int(os.environ.get("HC_LOAD_KEYS", "10000"))
VALUE_BYTES = _value_sizes(os.environ.get("HC_LOAD_VALUE_BYTES", "100"))
TTL_S = int(os.environ.get("HC_LOAD_TTL_S", "300"))
COUNTERS = max(KEYS // 100, 1)
SESSIONS = max(KEYS // 10, 1)
PLAYERS = max(KEYS // 10, 1)
PROFILES = max(KEYS // 10, 1)
HOT_FRACTION = 0.2      # 80% of reads go to the hottest 20% of keys
_verifiers = itertools.count()


def _address(host: str | None) -> tuple[str, int]:
    url = urlparse(host or "redis://127.0.0.1:8080")
    if url.scheme not in ("redis", ""):
        raise ValueError(f"--host must look like redis://HOST:PORT, got {host!r}")
    return url.hostname or "127.0.0.1", url.port or 8080


def _value(tag: str) -> str:
    size = random.randint(*VALUE_BYTES)
    return (tag + ":" + "x" * size)[:max(size, len(tag) + 1)]


def _hot_key() -> int:
    if random.random() < 0.8:
        return random.randrange(max(int(KEYS * HOT_FRACTION), 1))
    return random.randrange(KEYS)


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument("--redis-protocol", type=int, choices=(2, 3), default=2,
                        help="RESP version the RedisCluster clients speak")


class _RedisUser(User):
    abstract = True
    wait_time = between(0.001, 0.01)

    def on_start(self) -> None:
        host, port = _address(self.host)
        protocol = getattr(self.environment.parsed_options, "redis_protocol", 2)
        self.client = redis.RedisCluster(host=host, port=port, decode_responses=True, protocol=protocol,
                                         socket_timeout=10, socket_connect_timeout=10)

    def on_stop(self) -> None:
        self.client.close()

    def _call(self, name: str, fn, *args, **kwargs):
        """Run one command and report it to Locust; a wrong reply counts as a failure too."""
        started = time.perf_counter()
        exception = None
        result = None
        try:
            result = fn(*args, **kwargs)
        except Exception as error:      # noqa: BLE001 - every failure is reported, none is fatal
            exception = error
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.last_error = exception
        self.environment.events.request.fire(
            request_type="redis", name=name, response_time=elapsed_ms,
            response_length=len(str(result)) if result is not None else 0,
            exception=exception, context={})
        return result

    def _fail(self, name: str, message: str) -> None:
        self.environment.events.request.fire(request_type="redis", name=name + " (check)", response_time=0,
                                             response_length=0, exception=AssertionError(message), context={})


class CacheUser(_RedisUser):
    """A web application's cache: mostly reads, TTL'd writes, counters, sessions, a leaderboard."""

    weight = 4

    @task(50)
    def get(self) -> None:
        self._call("GET", self.client.get, f"user:{_hot_key()}")

    @task(12)
    def set_with_ttl(self) -> None:
        n = _hot_key()
        self._call("SET", self.client.set, f"user:{n}", _value(f"user:{n}"), ex=TTL_S)

    @task(8)
    def incr(self) -> None:
        key = f"counter:{random.randrange(COUNTERS)}"
        value = self._call("INCR", self.client.incr, key)
        if value is not None and value < 1:
            self._fail("INCR", f"{key} went to {value}")

    @task(6)
    def session_read(self) -> None:
        self._call("HGETALL", self.client.hgetall, f"session:{random.randrange(SESSIONS)}")

    @task(4)
    def session_write(self) -> None:
        key = f"session:{random.randrange(SESSIONS)}"
        fields = {"user": str(random.randrange(KEYS)), "seen": str(int(time.time())), "cart": _value("cart")}
        if self._call("HSET", self.client.hset, key, mapping=fields) is not None:
            self._call("EXPIRE", self.client.expire, key, TTL_S)

    @task(4)
    def leaderboard_score(self) -> None:
        self._call("ZINCRBY", self.client.zincrby, "{leaderboard}:global", random.randint(1, 50),
                   f"player:{random.randrange(PLAYERS)}")

    @task(4)
    def leaderboard_top(self) -> None:
        top = self._call("ZREVRANGE", self.client.zrevrange, "{leaderboard}:global", 0, 9, withscores=True)
        if top is not None and [score for _, score in top] != sorted((s for _, s in top), reverse=True):
            self._fail("ZREVRANGE", f"top 10 out of order: {top}")

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


class VerifyingUser(_RedisUser):
    """Writes keys nobody else writes and checks every read against what was acknowledged.

    Its keys have no TTL, so a read may return only the last value a SET acknowledged
    (or, for a SET whose reply was lost, the value it tried); anything else is lost or
    stale data. Its counter must equal the INCRs acknowledged (+1 for one in doubt).
    """

    weight = 1
    KEYS_EACH = 200

    def on_start(self) -> None:
        super().on_start()
        self.prefix = f"verify:{os.getpid()}:{next(_verifiers)}:{random.getrandbits(32):08x}"
        self.acknowledged: dict[str, str] = {}      # key -> last value a SET acknowledged
        self.in_doubt: dict[str, str] = {}          # key -> value of a SET that failed (may have landed)
        self.counter = f"{self.prefix}:counter"
        self.increments = 0
        self.increments_in_doubt = 0

    @task(5)
    def write(self) -> None:
        key = f"{self.prefix}:{random.randrange(self.KEYS_EACH)}"
        value = f"{key}:{time.time_ns()}"
        if self._call("SET verify", self.client.set, key, value) is True:
            self.acknowledged[key] = value
            self.in_doubt.pop(key, None)
        else:
            self.in_doubt[key] = value

    @task(10)
    def read_back(self) -> None:
        if not self.acknowledged:
            return
        key = random.choice(list(self.acknowledged))
        got = self._call("GET verify", self.client.get, key)
        if got is None and self.last_error is None:       # an error is reported already
            self._fail("GET verify", f"{key}: acknowledged {self.acknowledged[key]!r}, read nothing (lost)")
        elif got is not None and got not in (self.acknowledged[key], self.in_doubt.get(key)):
            self._fail("GET verify", f"{key}: acknowledged {self.acknowledged[key]!r}, read {got!r} (stale)")

    @task(3)
    def count(self) -> None:
        value = self._call("INCR verify", self.client.incr, self.counter)
        if value is None:
            self.increments_in_doubt += 1
            return
        self.increments += 1
        if not self.increments <= value <= self.increments + self.increments_in_doubt:
            self._fail("INCR verify", f"{self.counter}: {self.increments} acknowledged "
                               f"(+{self.increments_in_doubt} in doubt), read {value}")
        self.increments, self.increments_in_doubt = value, 0
