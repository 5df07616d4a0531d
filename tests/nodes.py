"""Real node processes for tests: free ports, start, wait until ready, logs, stop.

Import as `from tests.nodes import ...` (the repo root is on sys.path: setup.cfg
`pythonpath = .`, and tests/conftest.py). Everything waits by polling with a
deadline (`wait_until`), never by sleeping a fixed time.

    factory = NodeFactory(tmp_path)
    a = factory.start()                          # one node, a one-node cluster
    b = factory.start(join=a)                    # --join 127.0.0.1:<a's mesh port>
    nodes = factory.start_cluster(3)             # first node, the others join it
    r = a.client()                               # redis.Redis(port=a.port)
    factory.stop_all()

Ports: RESP port P and mesh port P+10000 are both checked free; P is drawn below
the kernel's ephemeral range (32768+) so no outgoing connection can take them.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hypercache.roles import REPLICA_PORT_OFFSET     # the node's own rule for its ports

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
MESH_OFFSET = 10000
READY_TIMEOUT_S = float(os.environ.get("HYPERCACHE_TEST_READY_TIMEOUT", "30"))
STOP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 200

T = TypeVar("T")

# Ports handed out in this test process: never handed out twice, even after the
# node using them stopped (its mesh socket may linger).
_issued: set[int] = set()
# Every node started in this process and not yet reported: conftest's report hook
# attaches their logs to a failing test.
RUNNING: list["NodeProcess"] = []
STOPPED_DURING_TEST: list["NodeProcess"] = []


# -- polling ---------------------------------------------------------------------------

class WaitTimeout(AssertionError):
    pass


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05,
               message: str | Callable[[], str] = "") -> T:
    """Call predicate until it returns something truthy (returned) or timeout seconds pass.

    Exceptions raised by predicate count as "not yet"; the last one is reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - "not yet" until the deadline
            last_error = error
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            text = text or getattr(predicate, "__name__", "condition")
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {text}{detail}")
        time.sleep(interval)


# -- ports -----------------------------------------------------------------------------

def _xdist_worker() -> tuple[int, int]:
    """(this worker's index, how many workers) under pytest-xdist; (0, 1) alone."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not name.startswith("gw") or workers < 2:
        return 0, 1
    # (a worker started in place of a crashed one is gw2, gw3...: it shares a crashed one's ports)
    return int(name[2:]) % workers, workers


_WORKER = _xdist_worker()


def _this_workers(port: int) -> bool:
    """Whether the port is this pytest-xdist worker's to give: each worker gives ports from its
    own hundreds of each 5,000 (every offset the suite adds, multiples of 5,000, keeps a port in
    its worker's, whatever the number of workers up to 50), so that two workers never take one
    port between its check and its bind."""
    worker, workers = _WORKER
    return port % 5000 // 100 % workers == worker


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(span: int = 0, low: int = 10000, high: int = 32767 - MESH_OFFSET, spans: int = 1,
              also: tuple[int, ...] = ()) -> int:
    """A port P such that P is free and, if span is given, P+span (... P+spans*span) too,
    and P+offset for each offset in `also`.

    With the default span=0 this is just a free port (for HTTP ports, redis-server...).
    """
    rng = random.SystemRandom()
    for _ in range(2000):
        port = rng.randint(low, high)
        wanted = [port + i * span for i in range(spans + 1)] if span else [port]
        wanted += [port + offset for offset in also]
        if any(p in _issued or not _this_workers(p) for p in wanted):
            continue
        if all(_port_free(p) for p in wanted):
            _issued.update(wanted)
            return port
    raise RuntimeError("no free port found")


def node_ports() -> tuple[int, int]:
    """(RESP port P, mesh port P+10000), both free, and the data port P+20000 and the
    replica endpoint's P+5000 too (hypercache/roles.py).

    All stay below the kernel's ephemeral range (32768 and up), where an
    outgoing connection could take one between the check and the bind."""
    port = free_port(span=MESH_OFFSET, high=32767 - 2 * MESH_OFFSET, spans=2, also=(REPLICA_PORT_OFFSET,))
    return port, port + MESH_OFFSET


# -- raw RESP ----------------------------------------------------------------------------

def encode_command(*args: Any) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def raw_connect(port: int, timeout: float = 5.0) -> socket.socket:
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


_readers: "weakref.WeakKeyDictionary[socket.socket, Any]" = weakref.WeakKeyDictionary()


def read_reply(sock: socket.socket, timeout: float = 5.0) -> Any:
    """Read exactly one RESP reply (RESP2 or RESP3) with hiredis; errors come back as ReplyError."""
    import hiredis
    reader = _readers.get(sock)
    if reader is None:
        reader = _readers[sock] = hiredis.Reader()
    deadline = time.monotonic() + timeout
    while True:
        reply = reader.gets()
        if reply is not False:
            return reply
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no complete reply")
        sock.settimeout(remaining)
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed by the node")
        reader.feed(data)


def read_raw_reply(sock: socket.socket) -> bytes:
    """The raw bytes of the next reply (which must end the data read: no pipelining behind it)."""
    import hiredis
    reader = hiredis.Reader()
    raw = b""
    while True:
        data = sock.recv(1 << 20)
        assert data, "connection closed"
        raw += data
        reader.feed(data)
        if reader.gets() is not False:
            return raw


def request(owner: Any, *args: Any, protocol: int = 2) -> Any:
    """One command on a fresh connection to `owner` (a node or redis-server; after HELLO 3 if asked).

    The reply as hiredis reads it; an error reply comes back as a hiredis.ReplyError value.
    """
    with owner.raw() as sock:
        if protocol == 3:
            sock.sendall(encode_command("HELLO", "3"))
            read_reply(sock)
        sock.sendall(encode_command(*args))
        return read_reply(sock)


def call(owner: Any, *args: Any, protocol: int = 2) -> Any:
    """request(), with an error reply raised as hiredis.ReplyError."""
    import hiredis
    reply = request(owner, *args, protocol=protocol)
    if isinstance(reply, hiredis.ReplyError):
        raise reply
    return reply


def ping_once(port: int, timeout: float = 1.0) -> bool:
    """True if something answers PING on port with a RESP reply (+PONG, or -NOAUTH with a password)."""
    try:
        with raw_connect(port, timeout=timeout) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(1024)
                if not chunk:
                    return False
                data += chunk
            return data[:1] in (b"+", b"-")
    except OSError:
        return False


def read_until_closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the peer sends until it closes the connection (raises on timeout)."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"connection still open; received {data[:200]!r}")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


# -- node processes ----------------------------------------------------------------------

@dataclass(eq=False)
class NodeProcess:
    port: int
    mesh_port: int
    http_port: int
    data_dir: Path
    log_path: Path
    args: list[str]
    proc: subprocess.Popen = field(repr=False)
    name: str = "node"
    password: str = ""
    extra: list[str] = field(default_factory=list)
    join: list[str] = field(default_factory=list)

    host: str = HOST

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def mesh_address(self) -> str:
        return f"{self.host}:{self.mesh_port}"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def client(self, **kwargs: Any):
        """A redis.Redis connected to this node (bytes replies unless decode_responses=True)."""
        import redis
        kwargs.setdefault("socket_timeout", 10)
        if self.password:
            kwargs.setdefault("password", self.password)
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def raw(self, timeout: float = 5.0) -> socket.socket:
        return raw_connect(self.port, timeout)

    def flushall(self) -> None:
        """Empty the keyspace (FLUSHALL)."""
        import redis
        with self.client(protocol=2) as r:
            try:
                r.execute_command("FLUSHALL")
            except redis.ResponseError as error:
                # Tolerated only while FLUSHALL is not implemented yet (foundation in progress).
                if "unknown command" not in str(error):
                    raise

    def logs(self, tail: int | None = LOG_TAIL_LINES) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        if tail is not None:
            lines = lines[-tail:]
        return "\n".join(lines)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Poll PING until the node answers (NodeDied if the process exits first)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive:
                raise NodeDied(self)
            if ping_once(self.port):
                return
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"{self.name} on port {self.port} not ready after {timeout:.0f}s\n"
                                  f"--- {self.name} log ---\n{self.logs()}")
            time.sleep(0.05)

    def signal(self, signum: int) -> None:
        if self.alive:
            self.proc.send_signal(signum)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then SIGKILL if the node is still running after timeout seconds. Returns the exit code."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        self._forget()
        return self.proc.returncode

    def kill(self) -> int:
        """SIGKILL (a crash); returns the exit code."""
        if self.alive:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)
        self._forget()
        return self.proc.returncode

    def pause(self) -> None:
        """SIGSTOP: the process stays but answers nothing (a hung node)."""
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def _forget(self) -> None:
        if self in RUNNING:
            RUNNING.remove(self)
            STOPPED_DURING_TEST.append(self)

    def __enter__(self) -> "NodeProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class NodeDied(RuntimeError):
    def __init__(self, node: NodeProcess) -> None:
        self.node = node
        super().__init__(f"{node.name} (port {node.port}) exited with code {node.proc.returncode} "
                         f"before it was ready\n--- {node.name} log ---\n{node.logs()}")


class NodeFactory:
    """Starts hypercache nodes in a temporary directory and stops them all at the end."""

    def __init__(self, base_dir: Path, python: str = sys.executable) -> None:
        self.base_dir = Path(base_dir)
        self.python = python
        self.nodes: list[NodeProcess] = []

    def start(self, *extra: str, join: "NodeProcess | str | Iterable[NodeProcess | str] | None" = None,
              http: bool = False, port: int | None = None, data_dir: Path | None = None,
              password: str = "", wait: bool = True, env: dict[str, str] | None = None,
              name: str | None = None, debug_command: str | None = "yes",
              nofile: tuple[int, int] | None = None) -> NodeProcess:
        """Start `python3 -m hypercache` on free ports; wait until it answers PING.

        extra: more command-line flags, e.g. "--maxclients", "3".
        join: a node (or "host:meshport", or several) to --join.
        http: give it a status port (default: --http-port 0, disabled).
        port: reuse a known RESP port (a restart); its mesh port is port+10000.
        data_dir: reuse a data directory (a restart keeps the node id).
        password: --requirepass, also used by .client().
        debug_command: --enable-debug-command, "yes" so that tests may DEBUG SLEEP;
            None starts the node with its default ("no", as Redis 7).
        nofile: the (soft, hard) open-file limit to start it under (`ulimit -n`; not kept by restart()).
        """
        if debug_command is not None:
            extra = ("--enable-debug-command", debug_command, *extra)   # kept by restart()
        attempts = 1 if port is not None else 3
        last: Exception | None = None
        for _ in range(attempts):
            try:
                return self._start_once(list(extra), join, http, port, data_dir, password, wait, env, name,
                                        nofile)
            except NodeDied as error:
                last = error
                if "in use" not in error.node.logs().lower():
                    raise
        assert last is not None
        raise last

    def _start_once(self, extra, join, http, port, data_dir, password, wait, env, name,
                    nofile: tuple[int, int] | None = None) -> NodeProcess:
        index = len(self.nodes)
        name = name or f"node{index}"
        if port is None:
            port, mesh_port = node_ports()
        else:
            mesh_port = port + MESH_OFFSET
        http_port = free_port() if http is True else int(http or 0)   # True: pick one; int: that port
        if data_dir is None:
            data_dir = self.base_dir / f"{name}-{port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.base_dir / f"{name}-{port}.log"
        args = [self.python, "-m", "hypercache", "--host", HOST, "--port", str(port),
                "--http-port", str(http_port), "--mesh-port", str(mesh_port),
                "--data-dir", str(data_dir)]
        if password:
            args += ["--requirepass", password]
        targets = _join_targets(join)
        for target in targets:
            args += ["--join", target]
        args += list(extra)
        proc_env = dict(os.environ)
        proc_env["PYTHONPATH"] = str(REPO) + os.pathsep + proc_env.get("PYTHONPATH", "")
        proc_env.setdefault("PYTHONUNBUFFERED", "1")
        if env:
            proc_env.update(env)
        log = open(log_path, "ab")
        try:
            # (prlimit execs the node: the same pid; preexec_fn is not safe in a process with threads)
            limited = [] if nofile is None else ["prlimit", f"--nofile={nofile[0]}:{nofile[1]}", "--"]
            proc = subprocess.Popen(limited + args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=proc_env, start_new_session=True)
        finally:
            log.close()
        node = NodeProcess(port=port, mesh_port=mesh_port, http_port=http_port, data_dir=data_dir,
                           log_path=log_path, args=args, proc=proc, name=name, password=password,
                           extra=list(extra), join=targets)
        self.nodes.append(node)
        RUNNING.append(node)
        if wait:
            try:
                node.wait_ready()
            except BaseException:
                node.kill()
                raise
        return node

    def restart(self, node: NodeProcess, wait: bool = True) -> NodeProcess:
        """Start a stopped node again: same ports, flags, --join and data directory (same node id)."""
        if node.alive:
            node.stop()
        return self._start_once(node.extra, node.join, node.http_port, node.port,
                                node.data_dir, node.password, wait, None, node.name)

    def start_cluster(self, count: int, *extra: str, **kwargs: Any) -> list[NodeProcess]:
        """count nodes; every node after the first joins the first one.

        The joiners start together once the first answers (a node's start-up is most of a
        small cluster's formation time); each is then waited for as start() does."""
        first = self.start(*extra, **kwargs)
        wait = kwargs.pop("wait", True)
        others = [self.start(*extra, join=first, wait=False, **kwargs) for _ in range(count - 1)]
        if wait:
            try:
                for node in others:
                    node.wait_ready()
            except BaseException:
                for node in others:
                    node.kill()
                raise
        return [first] + others

    def stop_all(self) -> None:
        for node in self.nodes:
            if node.alive:
                node.resume()                      # a paused (SIGSTOP) node cannot handle SIGTERM
                node.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for node in self.nodes:
            try:
                node.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(STOP_TIMEOUT_S)
            node._forget()

    def kill_all(self) -> None:
        """SIGKILL every node: a test's teardown. A graceful stop of every member at once waits
        out --leave-timeout-ms (nobody is left to take the slots over), up to STOP_TIMEOUT_S."""
        for node in self.nodes:
            if node.alive:
                node.proc.kill()
        for node in self.nodes:
            node.proc.wait(STOP_TIMEOUT_S)
            node._forget()

    def logs(self, tail: int | None = LOG_TAIL_LINES) -> str:
        return "\n".join(f"--- {n.name} port={n.port} ({'running' if n.alive else f'exit {n.proc.returncode}'}) "
                         f"{n.log_path} ---\n{n.logs(tail)}" for n in self.nodes)


def _join_targets(join: Any) -> list[str]:
    if join is None:
        return []
    if isinstance(join, (NodeProcess, str)):
        join = [join]
    return [j.mesh_address if isinstance(j, NodeProcess) else j for j in join]


# -- a real redis-server, for side-by-side comparisons -------------------------------------

@dataclass(eq=False)
class RedisServerProcess:
    port: int
    log_path: Path
    proc: subprocess.Popen = field(repr=False)
    host: str = HOST

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def client(self, **kwargs: Any):
        import redis
        kwargs.setdefault("socket_timeout", 10)
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def raw(self, timeout: float = 5.0) -> socket.socket:
        return raw_connect(self.port, timeout)

    def flushall(self) -> None:
        with self.client() as r:
            r.flushall()

    def logs(self, tail: int | None = LOG_TAIL_LINES) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-tail:] if tail else lines)

    def stop(self) -> None:
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)


REDIS_SERVER = shutil.which("redis-server")


def start_redis_server(base_dir: Path, *extra: str) -> RedisServerProcess:
    """redis-server --port <free> --save '' --appendonly no, in base_dir; waits for PING."""
    if REDIS_SERVER is None:
        raise FileNotFoundError("redis-server is not installed")
    port = free_port()
    base_dir = Path(base_dir)
    base_dir.mkdir(parents=True, exist_ok=True)
    log_path = base_dir / f"redis-{port}.log"
    args = [REDIS_SERVER, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
            "--dir", str(base_dir), "--logfile", str(log_path), *extra]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    server = RedisServerProcess(port=port, log_path=log_path, proc=proc)

    def ready() -> bool:
        if not server.alive:
            raise RuntimeError(f"redis-server exited: {server.logs()}")
        return ping_once(port)
    try:
        wait_until(ready, READY_TIMEOUT_S, message=f"redis-server on {port}")
    except BaseException:
        server.stop()
        raise
    return server


# -- cluster helpers (the `three` fixture in conftest.py uses them) ------------------------

CLUSTER_TIMEOUT = ("--node-timeout-ms", "1500")


def cluster_info(node: NodeProcess) -> dict[str, str]:
    text = call(node, "CLUSTER", "INFO").decode()
    return dict(line.split(":", 1) for line in text.strip().splitlines())


def by_port(nodes: Iterable[NodeProcess]) -> dict[int, NodeProcess]:
    """The node behind each port CLUSTER SLOTS/SHARDS/NODES may list: its RESP port, and its
    replica endpoint's, where replicas are listed (hypercache/roles.py)."""
    found = {}
    for node in nodes:
        found[node.port] = found[node.port + REPLICA_PORT_OFFSET] = node
    return found


def nodes_lines(node: NodeProcess) -> list[list[str]]:
    text = call(node, "CLUSTER", "NODES").decode()
    return [line.split(" ") for line in text.strip().splitlines()]


def one_map(nodes: Iterable[NodeProcess], members: int) -> str | None:
    """The epoch if every node holds a map of `members` members at one epoch and accepts writes."""
    infos = [cluster_info(n) for n in nodes]
    epochs = {i["cluster_current_epoch"] for i in infos}
    if len(epochs) == 1 and all(i["cluster_size"] == str(members) and i["cluster_state"] == "ok" for i in infos):
        return epochs.pop()
    return None


def start_joiners_first(factory: "NodeFactory", members: int, *flags: str) -> list[NodeProcess]:
    """`members` nodes, the seed first in the list: the others start first and --join the seed,
    which starts last, so that all reach it at once and it admits them in one map (a scale-out
    whose seed comes up late)."""
    seed_port, seed_mesh_port = node_ports()
    joiners = [factory.start(*flags, join=f"{HOST}:{seed_mesh_port}", wait=False) for _ in range(members - 1)]
    for node in joiners:
        node.wait_ready(timeout=120)
    return [factory.start(*flags, port=seed_port), *joiners]


def agreed(nodes: list[NodeProcess], members: int) -> str | None:
    """The common epoch if every node knows `members` map members at the same epoch."""
    infos = [cluster_info(n) for n in nodes]
    epochs = {i["cluster_current_epoch"] for i in infos}
    sizes = {i["cluster_size"] for i in infos}
    if len(epochs) == 1 and sizes == {str(members)} and all(i["cluster_state"] == "ok" for i in infos):
        # and every node holds the data of the slots it leads (a joiner first receives it)
        if all(replication_info(n).get("hypercache_slots_loading", "0") == "0" for n in nodes):
            return epochs.pop()
    return None


def replication_info(node: NodeProcess) -> dict[str, str]:
    text = call(node, "INFO", "replication").decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
