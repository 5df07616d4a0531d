#!/usr/bin/env python3
"""Every hostile input of issue 14 against a real node: the worst PING wait of a bystander client, and the RSS after.

Each case starts a fresh node (so that the RSS after belongs to that case alone),
connects a bystander that PINGs in a loop on its own connection, runs the
attack until the node has finished with it, and reports:

- worst_ping_ms: the longest a bystander PING waited while the attack ran;
- rss_mb_before / rss_mb_after: the node's resident memory (/proc/<pid>/status
  VmRSS) before the attack and once it is over and its connections are closed;
- used_memory_mb: the node's own accounting (INFO memory) after;
- reply: what the attacker was answered (first reply, shortened).

    .venv/bin/python loadtest/hostile.py                 # every case, a markdown table
    .venv/bin/python loadtest/hostile.py --only setrange http-storm
    .venv/bin/python loadtest/hostile.py --list
    .venv/bin/python loadtest/hostile.py --redis --only sadd-1m mset-500k   # each also on redis-server

The cases are plain functions of (node, http_port) so that the black-box tests
(tests/blackbox/test_hostile_load.py) run the same attacks.
"""
from __future__ import annotations

import argparse
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.nodes import (HOST, NodeFactory, NodeProcess, encode_command, raw_connect,  # noqa: E402
                         read_reply, start_redis_server, wait_until)


# -- measuring -----------------------------------------------------------------------------------

# The bystander's loop, in a process of its own: in a thread next to the attacker it
# waited for this process's interpreter lock too (the attacker's reads and writes in
# Python), which put up to ~150 ms on some waits that the node never caused.
_BYSTANDER = r"""
import socket, sys, time
sock = socket.create_connection(("%s", %d), timeout=60)
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
pings, worst, told = 0, 0.0, 0.0
while True:
    started = time.monotonic()
    sock.sendall(b"PING\r\n")
    reply = b""
    while not reply.endswith(b"\r\n"):
        data = sock.recv(64)
        if not data:
            raise SystemExit("connection closed")
        reply += data
    if reply != b"+PONG\r\n":
        raise SystemExit("unexpected reply %%r" %% reply)
    now = time.monotonic()
    pings, worst = pings + 1, max(worst, now - started)
    if now - told > 0.01:
        print(pings, worst, flush=True)
        told = now
"""


class Bystander:
    """A client that PINGs in a loop on its own connection, in its own process, and keeps the worst wait."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.worst = 0.0
        self.pings = 0
        self.error: BaseException | None = None
        self._proc: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def _follow(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            pings, worst = line.split()
            self.pings, self.worst = int(pings), float(worst)
        if self._proc.wait() not in (0, -signal.SIGTERM):
            self.error = RuntimeError(f"bystander exited {self._proc.returncode}: {self._proc.stderr.read()}")

    def more_pings(self, count: int = 20, timeout: float = 60) -> None:
        """Wait until `count` more PINGs were answered (the node has moved on)."""
        seen = self.pings
        wait_until(lambda: self.pings >= seen + count or self.error is not None, timeout=timeout)

    def __enter__(self) -> "Bystander":
        self._proc = subprocess.Popen([sys.executable, "-c", _BYSTANDER % (HOST, self.port)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._proc is not None
        self._proc.terminate()
        self._thread.join(timeout=60)
        self._proc.wait(10)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def used_memory(node: NodeProcess) -> int:
    with raw_connect(node.port) as sock:
        sock.sendall(encode_command("INFO", "memory"))
        info = read_reply(sock, timeout=30)
    for line in info.decode().splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise RuntimeError("no used_memory in INFO")


def shorten(reply: object, limit: int = 60) -> str:
    text = repr(reply)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# -- the attacks -----------------------------------------------------------------------------------

def send_and_read(port: int, payload: bytes, replies: int = 1, timeout: float = 120) -> list:
    """Send raw bytes on a fresh connection and read `replies` replies (or until the node closes)."""
    out: list = []
    with raw_connect(port, timeout=timeout) as sock:
        sock.sendall(payload)
        try:
            for _ in range(replies):
                out.append(read_reply(sock, timeout=timeout))
        except ConnectionError:
            out.append("closed")
        except TimeoutError:
            out.append("no reply: waits for the rest")    # as redis-server does for a partial request
    return out


def huge_count(node: NodeProcess, http_port: int) -> object:
    return send_and_read(node.port, b"*1000000000\r\n", timeout=2)[0]


def huge_count_after_command(node: NodeProcess, http_port: int) -> object:
    return send_and_read(node.port, b"*1\r\n$4\r\nPING\r\n*2147483647\r\n", replies=2, timeout=2)[-1]


def huge_resp3_set(node: NodeProcess, http_port: int) -> object:
    return send_and_read(node.port, b"*1\r\n$4\r\nPING\r\n~2000000000\r\n", replies=2, timeout=2)[-1]


def huge_bulk_length(node: NodeProcess, http_port: int) -> object:
    return send_and_read(node.port, b"*2\r\n$3\r\nGET\r\n$536870913\r\n")[0]


def long_inline(node: NodeProcess, http_port: int) -> object:
    return send_and_read(node.port, b"A" * (70 * 1024), timeout=5)[0]


def glob_stars(node: NodeProcess, http_port: int) -> object:
    payload = (encode_command("SET", b"a" * 40, "1") + encode_command("KEYS", b"*a" * 20 + b"*b")
               + encode_command("SCAN", "0", "MATCH", b"*a" * 20 + b"*b", "COUNT", "100")
               + encode_command("CONFIG", "GET", b"*a" * 20 + b"*b"))
    return send_and_read(node.port, payload, replies=4)[1]


def setrange_pipeline(node: NodeProcess, http_port: int) -> object:
    payload = encode_command("SETRANGE", "k", "536870911", "x") * 3
    return send_and_read(node.port, payload, replies=3)[-1]


def bitfield_wide(node: NodeProcess, http_port: int, increments: int = 50) -> object:
    """One BITFIELD that writes the first and the last byte of a 512 MB string, then increments the first."""
    args = ["BITFIELD", "bf", "SET", "u8", "0", "1", "SET", "u8", str(2**32 - 8), "1"]
    args += ["INCRBY", "u8", "0", "1"] * increments
    return send_and_read(node.port, encode_command(*args), replies=1)[-1]


def big_set(node: NodeProcess, http_port: int, size: int = 400 * 1024 * 1024) -> object:
    """A legal SET of a 400 MB value, sent as fast as the socket takes it."""
    chunk = b"v" * (4 * 1024 * 1024)
    with raw_connect(node.port, timeout=120) as sock:
        sock.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % size)
        left = size
        while left:
            piece = chunk if left >= len(chunk) else chunk[:left]
            sock.sendall(piece)
            left -= len(piece)
        sock.sendall(b"\r\n" + encode_command("STRLEN", "big") + encode_command("DEL", "big"))
        replies = [read_reply(sock, timeout=120) for _ in range(3)]
    return replies[1]


def many_args_refused(node: NodeProcess, http_port: int, requests: int = 31, count: int = 1_000_000,
                      size: int = 0) -> object:
    """Requests of `count` arguments of `size` bytes, each refused by its command (WRONGTYPE)."""
    send_and_read(node.port, encode_command("SET", "str", "1"))
    arg = b"$%d\r\n%s\r\n" % (size, b"m" * size)
    payload = b"*%d\r\n$4\r\nSADD\r\n$3\r\nstr\r\n" % (count + 2) + arg * count
    reply = None
    for _ in range(requests):
        reply = send_and_read(node.port, payload)[0]
    return reply


def _bulks(items: list[bytes]) -> bytes:
    return b"".join(b"$%d\r\n%s\r\n" % (len(item), item) for item in items)


def legal_big(command: bytes, key: bytes, count: int, shape: str) -> Callable[[NodeProcess, int], object]:
    """A legal write of `count` elements in one command (a set's members, a hash's fields and values...).

    shape: "members" (m0, m1, ...), "pairs" (f0 v0 ...), "scored" (0 m0 1 m1 ...),
    "keys" (MSET {t}k0 v0 ...: the key argument is unused), "del" (DEL of the keys
    MSET made first, in pipelined MSETs of 10,000 that run before the clock starts).
    """
    def attack(node: NodeProcess, http_port: int) -> object:
        numbers = [b"%d" % i for i in range(count)]
        if shape == "members":
            args = [command, key] + [b"m" + n for n in numbers]
        elif shape == "pairs":
            args = [command, key] + [x for n in numbers for x in (b"f" + n, b"v" + n)]
        elif shape == "scored":     # (a key followed by options: b"z CH")
            args = [command, *key.split()] + [x for n in numbers for x in (n, b"m" + n)]
        elif shape == "keys":
            args = [command] + [x for n in numbers for x in (b"{t}k" + n, b"v")]
        else:
            keys = [b"{t}k" + n for n in numbers]
            return send_and_read(node.port, b"*%d\r\n" % (count + 1) + _bulks([command] + keys))[0]
        return send_and_read(node.port, b"*%d\r\n" % len(args) + _bulks(args))[0]
    return attack


def _prepare_keys(node: NodeProcess, count: int) -> None:
    """MSET {t}k0..k{count} in pieces (the DEL case's keys), before the bystander's clock."""
    for start in range(0, count, 10_000):
        args = [b"MSET"] + [x for i in range(start, min(count, start + 10_000)) for x in (b"{t}k%d" % i, b"v")]
        send_and_read(node.port, b"*%d\r\n" % len(args) + _bulks(args))


def _fill(command: bytes, key: bytes, count: int, shape: str, offset: int = 0) -> Callable[[NodeProcess], None]:
    """A prepare step: `count` elements written in commands of 10,000 (a big key for a big read to read)."""
    def prepare(node: NodeProcess) -> None:
        for start in range(offset, offset + count, 10_000):
            numbers = [b"%d" % i for i in range(start, min(offset + count, start + 10_000))]
            if shape == "numbers":      # (scrambled, so that SORT has work to do)
                args = [command, key] + [b"%d" % ((int(n) * 7919) % 1_000_003) for n in numbers]
            elif shape == "members":
                args = [command, key] + [b"m" + n for n in numbers]
            elif shape == "pairs":
                args = [command, key] + [x for n in numbers for x in (b"f" + n, b"v" + n)]
            else:
                args = [command, key] + [x for n in numbers for x in (n, b"m" + n)]
            send_and_read(node.port, b"*%d\r\n" % len(args) + _bulks(args))
    return prepare


def _both(*steps: Callable[[NodeProcess], None]) -> Callable[[NodeProcess], None]:
    def prepare(node: NodeProcess) -> None:
        for step in steps:
            step(node)
    return prepare


def big_read(*command: bytes) -> Callable[[NodeProcess, int], object]:
    """One command that reads (or stores) a lot of what the prepare step wrote: its reply, shortened."""
    def attack(node: NodeProcess, http_port: int) -> object:
        reply = send_and_read(node.port, b"*%d\r\n" % len(command) + _bulks(list(command)))[0]
        return f"{len(reply):,} elements" if isinstance(reply, list) else reply
    return attack


def http_storm(node: NodeProcess, http_port: int, clients: int = 2000) -> object:
    """`clients` HTTP requests to the status port that all complete at the same moment.

    Every connection sends its request but the final CRLF as soon as it is
    connected; once all are (or after 3 s: past the server's cap and backlog
    the kernel stops completing them), the last two bytes go out on every
    connected one at once, and the answers are read.
    """
    head = b"GET /cluster/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    socks = []
    for _ in range(clients):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex((HOST, http_port))
        socks.append(sock)
    waiting = set(socks)
    poller = select.poll()
    by_fd = {sock.fileno(): sock for sock in socks}
    for fd in by_fd:
        poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + 3
    while waiting and time.monotonic() < deadline:
        for fd, _ in poller.poll(100):
            sock = by_fd[fd]
            poller.unregister(fd)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                sock.sendall(head)
                waiting.discard(sock)
    for sock in waiting:        # never connected: the server's cap and backlog were full
        sock.close()
    socks = [sock for sock in socks if sock not in waiting]
    for sock in socks:
        sock.sendall(b"\r\n")
    for sock in socks:
        sock.setblocking(True)
        sock.settimeout(120)
    statuses: dict[str, int] = {}
    for sock in socks:
        try:
            answer = sock.recv(64)
        except OSError:
            answer = b""
        status = answer[9:12].decode() if answer.startswith(b"HTTP/") else "closed"
        statuses[status] = statuses.get(status, 0) + 1
        sock.close()
    statuses["not_connected"] = len(waiting)
    return dict(sorted(statuses.items()))


def http_half_open(node: NodeProcess, http_port: int, clients: int = 3000) -> object:
    """`clients` connections to the status port that send half a request and wait.

    Connected without waiting (past the server's cap they sit in the kernel's
    backlog or are refused), held for a second while the bystander goes on.
    """
    socks = []
    for _ in range(clients):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex((HOST, http_port))
        socks.append(sock)
    deadline = time.monotonic() + 1.0
    # Each sends its half once connected: sent at once after the connects, those whose
    # handshake the kernel had not finished yet failed, and a loaded machine's count fell
    # under the server's cap (229 of 3,000 in one run) with nothing wrong at the server.
    sent = 0
    waiting = select.epoll()
    by_fd = {sock.fileno(): sock for sock in socks}
    for fd in by_fd:
        waiting.register(fd, select.EPOLLOUT)
    while by_fd and (left := deadline - time.monotonic()) > 0:
        for fd, events in waiting.poll(left):
            waiting.unregister(fd)
            sock = by_fd.pop(fd)
            if events & (select.EPOLLERR | select.EPOLLHUP):
                continue
            try:
                sock.send(b"GET /cluster/status HTTP/1.1\r\nHost: x\r\n")
                sent += 1
            except OSError:
                pass
    waiting.close()
    time.sleep(max(0.0, deadline - time.monotonic()))
    for sock in socks:
        sock.close()
    return {"half_requests_sent": sent}


def debug_sleep(node: NodeProcess, http_port: int) -> object:
    return send_and_read(node.port, encode_command("DEBUG", "SLEEP", "4"))[0]


def http_post(node: NodeProcess, http_port: int) -> object:
    payload = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 26\r\n\r\n"
               b"CONFIG SET maxmemory 12345\r\n")
    return send_and_read(node.port, payload)[0]


def nothing(node: NodeProcess, http_port: int, seconds: float = 5.0) -> object:
    """No attack: the bystander alone for a while, the machine's own noise to read the others against."""
    time.sleep(seconds)
    return None


@dataclass(frozen=True)
class Case:
    name: str
    text: str                   # what the attacker sends, for the table
    attack: Callable[[NodeProcess, int], object]
    flags: tuple[str, ...] = ()
    debug: str | None = None    # --enable-debug-command for this case (None: Redis's default, no)
    prepare: Callable[[NodeProcess], None] | None = None    # runs before the bystander starts


CASES = [
    Case("baseline", "nothing (the bystander alone for 5 s: the machine's own noise)", nothing),
    Case("huge-count", "`*1000000000\\r\\n` (15 bytes, before AUTH)", huge_count),
    Case("huge-count-after", "`PING` then `*2147483647\\r\\n` in one read", huge_count_after_command),
    Case("huge-resp3-set", "`PING` then `~2000000000\\r\\n`", huge_resp3_set),
    Case("huge-bulk", "`$536870913` bulk length", huge_bulk_length),
    Case("long-inline", "70 KB inline request without a newline", long_inline),
    Case("glob", "KEYS, SCAN MATCH, CONFIG GET with `*a` x 20 + `*b` against a 40-byte key", glob_stars),
    Case("setrange", "3 pipelined `SETRANGE k 536870911 x`", setrange_pipeline),
    Case("bitfield-wide", "one `BITFIELD` writing bytes 0 and 512 MB, then 50 `INCRBY u8 0 1`", bitfield_wide),
    Case("big-set", "a legal `SET` of a 400 MB value", big_set),
    Case("million-args", "31 requests of 1M arguments, each refused (`SADD` on a string: WRONGTYPE)",
         many_args_refused),
    Case("http-storm", "2,000 HTTP requests to the status port at once", http_storm),
    Case("http-half-open", "3,000 half-open HTTP connections to the status port", http_half_open),
    Case("debug-sleep", "`DEBUG SLEEP 4` (debug command not enabled)", debug_sleep),
    Case("http-post", "HTTP `POST` whose body is `CONFIG SET maxmemory 12345`", http_post),
    Case("sadd-1m", "a legal `SADD` of 1M members (a new set)", legal_big(b"SADD", b"s", 1_000_000, "members")),
    Case("rpush-1m", "a legal `RPUSH` of 1M elements", legal_big(b"RPUSH", b"l", 1_000_000, "members")),
    Case("hset-500k", "a legal `HSET` of 500k fields", legal_big(b"HSET", b"h", 500_000, "pairs")),
    Case("zadd-500k", "a legal `ZADD` of 500k members", legal_big(b"ZADD", b"z", 500_000, "scored")),
    Case("mset-500k", "a legal `MSET` of 500k keys (one hash tag)", legal_big(b"MSET", b"", 500_000, "keys")),
    Case("del-500k", "a legal `DEL` of 500k keys (one hash tag)", legal_big(b"DEL", b"", 500_000, "del"),
         prepare=lambda node: _prepare_keys(node, 500_000)),
    Case("sort-500k", "`SORT` of a list of 500k numbers (the reply: 500k elements)", big_read(b"SORT", b"{t}l"),
         prepare=_fill(b"RPUSH", b"{t}l", 500_000, "numbers")),
    Case("sunionstore-1m", "`SUNIONSTORE` of two sets of 500k into one of 1M", big_read(b"SUNIONSTORE", b"{t}d",
         b"{t}a", b"{t}b"), prepare=_both(_fill(b"SADD", b"{t}a", 500_000, "members"),
                                        _fill(b"SADD", b"{t}b", 500_000, "members", offset=500_000))),
    Case("keys-500k", "`KEYS *` over 500k keys", big_read(b"KEYS", b"*"),
         prepare=lambda node: _prepare_keys(node, 500_000)),
    Case("lrange-1m", "`LRANGE 0 -1` of a list of 1M", big_read(b"LRANGE", b"{t}l", b"0", b"-1"),
         prepare=_fill(b"RPUSH", b"{t}l", 1_000_000, "members")),
    Case("hgetall-500k", "`HGETALL` of a hash of 500k fields", big_read(b"HGETALL", b"{t}h"),
         prepare=_fill(b"HSET", b"{t}h", 500_000, "pairs")),
    Case("zrange-500k", "`ZRANGE 0 -1 WITHSCORES` of a sorted set of 500k", big_read(b"ZRANGE", b"{t}z", b"0", b"-1",
         b"WITHSCORES"), prepare=_fill(b"ZADD", b"{t}z", 500_000, "scored")),
]


# cases that redis-server cannot be given: it has no status port
NOT_FOR_REDIS = frozenset(("http-storm", "http-half-open"))


@dataclass
class Result:
    case: Case
    worst_ping_ms: float
    pings: int
    rss_before: int
    rss_after: int
    used_memory: int
    reply: object
    seconds: float


def run_case(factory: NodeFactory, case: Case, redis_server: bool = False) -> Result:
    # (redis-server, for the side-by-side column: the same attack, bystander and figures)
    node = (start_redis_server(factory.base_dir / "redis-server") if redis_server
            else factory.start(*case.flags, http=True, debug_command=case.debug))
    try:
        if case.prepare is not None:
            case.prepare(node)
        rss_before = rss_bytes(node.proc.pid)
        with Bystander(node.port) as bystander:
            bystander.more_pings(20)
            started = time.monotonic()
            reply = case.attack(node, getattr(node, "http_port", 0))
            seconds = time.monotonic() - started
            bystander.more_pings(20)
        if bystander.error is not None:
            raise RuntimeError(f"bystander failed: {bystander.error!r}")
        # the attacker's connections are closed: give the node a moment to notice
        with raw_connect(node.port) as sock:
            sock.sendall(b"PING\r\n")
            read_reply(sock, timeout=30)
        return Result(case, bystander.worst * 1000, bystander.pings, rss_before, rss_bytes(node.proc.pid),
                      used_memory(node), reply, seconds)
    finally:
        node.stop()


def table(results: list[Result], redis: dict[str, Result] | None = None) -> str:
    """The markdown table of docs/security.md; with `redis`, redis-server's wait for the same case beside ours."""
    theirs = " | redis-server's worst wait" if redis is not None else ""
    lines = [f"| attack | worst bystander PING wait{theirs} | RSS before → after | used_memory after | answer |",
             "|---|---:|" + ("---:|" if redis is not None else "") + "---:|---:|---|"]
    for r in results:
        reply = shorten(r.reply).replace("|", "\\|")
        if redis is not None:
            other = redis.get(r.case.name)
            theirs = f" | {other.worst_ping_ms:.0f} ms" if other is not None else " | n/a"
        lines.append(f"| {r.case.text} | {r.worst_ping_ms:.0f} ms{theirs} | {r.rss_before / 2**20:.0f} → "
                     f"{r.rss_after / 2**20:.0f} MB | {r.used_memory / 2**20:.1f} MB | `{reply}` |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="case names")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--dir", default="/tmp/hypercache-hostile")
    parser.add_argument("--redis", action="store_true",
                        help="run each case on a fresh redis-server too, just before the node (a column of its own)")
    args = parser.parse_args()
    if args.list:
        for case in CASES:
            print(f"{case.name:18} {case.text}")
        return
    cases = [c for c in CASES if not args.only or c.name in args.only]
    factory = NodeFactory(Path(args.dir))
    results: list[Result] = []
    redis: dict[str, Result] | None = {} if args.redis else None
    try:
        for case in cases:
            # (redis-server first, then the node, case by case: the machine's load moves between
            # runs minutes apart, so the two figures of one row are taken under the same load)
            runs = ((True, False) if redis is not None and case.name not in NOT_FOR_REDIS else (False,))
            for on_redis in runs:
                result = run_case(factory, case, on_redis)
                print(f"{case.name}{' (redis-server)' if on_redis else ''}: worst PING {result.worst_ping_ms:.0f} ms, "
                      f"RSS {result.rss_before / 2**20:.0f} -> {result.rss_after / 2**20:.0f} MB, "
                      f"attack {result.seconds:.1f} s, reply {shorten(result.reply)}", flush=True)
                if on_redis:
                    assert redis is not None
                    redis[case.name] = result
                else:
                    results.append(result)
    finally:
        factory.stop_all()
    print()
    print(table(results, redis))


if __name__ == "__main__":
    main()
