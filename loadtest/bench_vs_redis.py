#!/usr/bin/env python3
"""hypercache next to redis-server on the same machine, in one run: throughput and memory per key.

hypercache runs in both its forms (hypercache/compiled.py): "python", the sources as
they are (HYPERCACHE_PURE=1), and "mypyc", its hot modules compiled (`make compiled`
builds them; --forms python runs without). All servers are pinned to the same CPU
(cpu 0), redis-benchmark to another (cpu 1), and runs alternate between the servers
(the order flips every repeat) so that drift of the machine hits all alike.
Reported: the median requests/s of each test over the repeats, and each form's
ratio to redis-server.

    python3 loadtest/bench_vs_redis.py              # set,get at -P 1 and -P 16, memory of 1M keys
    python3 loadtest/bench_vs_redis.py --quick      # a short run (smaller N, one repeat, 100k keys)
    python3 loadtest/bench_vs_redis.py --types      # also lpush,lpop,sadd,hset,zadd,spop,lrange_100
    python3 loadtest/bench_vs_redis.py --no-memory  # throughput only
    python3 loadtest/bench_vs_redis.py --scripting  # also EVALSHA of a GET + INCR script (SCRIPT LOADed)
    python3 loadtest/bench_vs_redis.py --families   # also SETBIT/BITCOUNT, PFADD/PFCOUNT, GEOADD/GEOSEARCH

Memory: exactly `--keys` keys `key:{n}` with 100-byte values are written to
each server (streamed with `redis-cli --pipe`, then checked with DBSIZE), and
the growth of used_memory (INFO) and of the process RSS is divided by the key count.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
BASIC_TESTS = "set,get"
TYPE_TESTS = "lpush,lpop,sadd,hset,zadd,spop,lrange_100"
# issue 13's scripting figure: a small script that reads and writes one key
SCRIPT = "local v = redis.call('get', KEYS[1]) return redis.call('incr', KEYS[1])"
SERVER_CPU = "0"
CLIENT_CPU = "1"


def free_port() -> int:
    """A free port P whose P+10000 (hypercache's mesh port) is free too."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port + 20000 > 65535:     # the data port (mesh port + 10000) must exist too
            continue
        with socket.socket() as s:
            try:
                s.bind((HOST, port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


def pinned(cpu: str, args: list[str]) -> list[str]:
    if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > int(cpu):
        return ["taskset", "-c", cpu, *args]
    return args


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen
    log: Path

    def command(self, *args: str) -> bytes:
        with socket.create_connection((HOST, self.port), timeout=30) as s:
            parts = [b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args]
            s.sendall(b"".join(parts))
            data = b""
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
                if _complete(data):
                    return data
        return data

    def cpu_s(self) -> float:
        """CPU time (user + system) the server process used so far (/proc/PID/stat)."""
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def info(self, section: str) -> dict[str, str]:
        raw = self.command("INFO", section)
        body = raw.split(b"\r\n", 1)[1]
        fields = {}
        for line in body.decode(errors="replace").splitlines():
            if ":" in line and not line.startswith("#"):
                key, _, value = line.partition(":")
                fields[key] = value
        return fields

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _complete(data: bytes) -> bool:
    """Whether data holds one whole reply (bulk, status, error or integer)."""
    if data[:1] in (b"+", b"-", b":"):
        return data.endswith(b"\r\n")
    if data[:1] == b"$":
        header, _, rest = data.partition(b"\r\n")
        length = int(header[1:])
        return length < 0 or len(rest) >= length + 2
    return data.endswith(b"\r\n")


def wait_ready(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {server.log.read_text()[-2000:]}")
        try:
            if server.command("PING").startswith(b"+PONG"):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{server.name} not ready after {timeout}s")


def start_redis(workdir: Path) -> Server:
    port = free_port()
    log = workdir / "redis.log"
    proc = subprocess.Popen(pinned(SERVER_CPU, [
        "redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
        "--dir", str(workdir), "--logfile", str(log)]), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    server = Server("redis", port, proc, log)
    wait_ready(server)
    return server


def start_hypercache(workdir: Path, extra: list[str], form: str, env_extra: dict[str, str] | None = None) -> Server:
    """A node of the given form ("python" or "mypyc"); refuses to report a form it does not run."""
    port = free_port()
    log = workdir / f"hypercache-{form}.log"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               HYPERCACHE_PURE="1" if form == "python" else "0", **(env_extra or {}))
    with open(log, "wb") as out:
        proc = subprocess.Popen(pinned(SERVER_CPU, [
            sys.executable, "-m", "hypercache", "--host", HOST, "--port", str(port), "--http-port", "0",
            "--mesh-port", str(port + 10000), "--data-dir", str(workdir / f"hypercache-{form}"),
            "--log-level", "WARNING", *extra]), cwd=REPO, env=env, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(form, port, proc, log)
    wait_ready(server)
    running = "mypyc" if server.info("server").get("hypercache_compiled") == "1" else "python"
    if running != form:
        server.stop()
        raise RuntimeError(f"asked for a {form} node, it runs {running}: `make compiled` builds the compiled form")
    return server


# -- throughput ----------------------------------------------------------------------------

@dataclass
class Results:
    # (test, pipeline) -> server name -> [requests/s per repeat]
    rps: dict[tuple[str, int], dict[str, list[float]]] = field(default_factory=dict)
    # (test, pipeline) -> server name -> [server CPU microseconds per request, per repeat]
    cpu_us: dict[tuple[str, int], dict[str, list[float]]] = field(default_factory=dict)

    def add(self, test: str, pipeline: int, server: str, value: float) -> None:
        self.rps.setdefault((test, pipeline), {}).setdefault(server, []).append(value)

    def add_cpu(self, test: str, pipeline: int, server: str, us: float) -> None:
        self.cpu_us.setdefault((test, pipeline), {}).setdefault(server, []).append(us)


def benchmark(server: Server, tests: str, pipeline: int, requests: int, clients: int) -> dict[str, float]:
    server.command("FLUSHALL")
    args = pinned(CLIENT_CPU, ["redis-benchmark", "-h", HOST, "-p", str(server.port), "-t", tests,
                               "-c", str(clients), "-n", str(requests), "-P", str(pipeline), "--csv"])
    done = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0 or "error" in done.stderr.lower():
        raise RuntimeError(f"redis-benchmark failed against {server.name}: {done.stdout}{done.stderr}")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    if not rows:
        raise RuntimeError(f"no results from redis-benchmark against {server.name}: {done.stdout}{done.stderr}")
    out = {}
    for row in rows:
        test = row["test"]
        if test.startswith("LPUSH (needed"):
            continue
        out[test.split(" ")[0]] = float(row["rps"])
    return out


def benchmark_command(server: Server, name: str, command: list[str], pipeline: int, requests: int,
                      clients: int) -> dict[str, float]:
    """redis-benchmark of one arbitrary command (its CSV row is named after the command line)."""
    server.command("FLUSHALL")
    args = pinned(CLIENT_CPU, ["redis-benchmark", "-h", HOST, "-p", str(server.port), "-c", str(clients),
                               "-n", str(requests), "-P", str(pipeline), "--csv", *command])
    done = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    if done.returncode != 0 or not rows:
        raise RuntimeError(f"redis-benchmark failed against {server.name}: {done.stdout}{done.stderr}")
    return {name: float(rows[-1]["rps"])}


def run_scripting(servers: list[Server], requests: dict[int, int], repeats: int, clients: int,
                  results: Results) -> None:
    shas = {server.name: server.command("SCRIPT", "LOAD", SCRIPT).split(b"\r\n")[1].decode()
            for server in servers}
    for repeat in range(repeats):
        order = servers if repeat % 2 == 0 else servers[::-1]
        for pipeline in (1, 16):
            for server in order:
                cpu_before = server.cpu_s()
                got = benchmark_command(server, "evalsha", ["EVALSHA", shas[server.name], "1", "key:__rand_int__"],
                                        pipeline, requests[pipeline], clients)
                results.add_cpu("evalsha", pipeline, server.name,
                                (server.cpu_s() - cpu_before) / requests[pipeline] * 1e6)
                print(f"  repeat {repeat + 1}/{repeats} P{pipeline:<2} {server.name:<10} evalsha={got['evalsha']:,.0f}",
                      flush=True)
                results.add("evalsha", pipeline, server.name, got["evalsha"])


# issue 13's other families: (name, setup commands, benchmarked command)
FAMILY_TESTS = [
    ("setbit", [], ["SETBIT", "bits", "123456", "1"]),     # (__rand_int__ is zero-padded: not an offset)
    ("bitcount", [["SETBIT", "bits", "1000000", "1"]], ["BITCOUNT", "bits"]),
    ("pfadd", [], ["PFADD", "hll", "element:__rand_int__"]),
    ("pfcount", [["PFADD", "hll"] + [f"e{i}" for i in range(1000)]], ["PFCOUNT", "hll"]),
    ("geoadd", [], ["GEOADD", "geo", "13.361389", "38.115556", "member:__rand_int__"]),
    ("geosearch", [["GEOADD", "geo"] + sum(([f"{13 + i / 500:.6f}", f"{37 + i / 700:.6f}", f"p{i}"]
                                             for i in range(1000)), [])],
     ["GEOSEARCH", "geo", "FROMLONLAT", "14", "37.5", "BYRADIUS", "30", "km", "COUNT", "10", "ASC"]),
]


def run_families(servers: list[Server], requests: dict[int, int], repeats: int, clients: int,
                 results: Results, only: set[str] | None = None) -> None:
    for repeat in range(repeats):
        order = servers if repeat % 2 == 0 else servers[::-1]
        for name, setup, command in FAMILY_TESTS:
            if only and name not in only:
                continue
            for pipeline in (1, 16):
                for server in order:
                    server.command("FLUSHALL")
                    for step in setup:
                        server.command(*step)
                    args = pinned(CLIENT_CPU, ["redis-benchmark", "-h", HOST, "-p", str(server.port),
                                               "-c", str(clients), "-n", str(requests[pipeline]),
                                               "-P", str(pipeline), "--csv", *command])
                    cpu_before = server.cpu_s()
                    done = subprocess.run(args, capture_output=True, text=True, timeout=3600)
                    results.add_cpu(name, pipeline, server.name,
                                    (server.cpu_s() - cpu_before) / requests[pipeline] * 1e6)
                    rows = list(csv.DictReader(io.StringIO(done.stdout)))
                    if done.returncode != 0 or not rows:
                        raise RuntimeError(f"redis-benchmark failed against {server.name}: {done.stdout}{done.stderr}")
                    rps = float(rows[-1]["rps"])
                    print(f"  repeat {repeat + 1}/{repeats} P{pipeline:<2} {server.name:<10} {name}={rps:,.0f}",
                          flush=True)
                    results.add(name, pipeline, server.name, rps)


def run_throughput(servers: list[Server], tests: str, pipelines: list[int], requests: dict[int, int],
                   repeats: int, clients: int, results: Results) -> None:
    for repeat in range(repeats):
        order = servers if repeat % 2 == 0 else servers[::-1]
        for pipeline in pipelines:
            for server in order:
                started = time.monotonic()
                got = benchmark(server, tests, pipeline, requests[pipeline], clients)
                took = time.monotonic() - started
                print(f"  repeat {repeat + 1}/{repeats} P{pipeline:<2} {server.name:<10} {took:5.1f}s  "
                      + "  ".join(f"{t}={v:,.0f}" for t, v in got.items()), flush=True)
                for test, value in got.items():
                    results.add(test, pipeline, server.name, value)


def print_table(results: Results, title: str, forms: list[str]) -> None:
    print()
    print(f"{title}: median requests/s (redis-benchmark -c 50), each hypercache form / redis-server")
    print(f"| {'test':<12} | {'-P':>3} | {'redis-server':>13} | "
          + " | ".join(f"{form:>13} | {'ratio':>6}" for form in forms) + " |")
    print(f"|{'-' * 14}|{'-' * 5}|{'-' * 15}|" + "|".join(f"{'-' * 15}|{'-' * 8}" for _ in forms) + "|")
    for (test, pipeline), by_server in sorted(results.rps.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        redis_rps = statistics.median(by_server.get("redis", [0]))
        cells = []
        for form in forms:
            ours = statistics.median(by_server.get(form, [0]))
            ratio = ours / redis_rps if redis_rps else float("nan")
            cells.append(f"{ours:>13,.0f} | {ratio:>5.2f}x")
        print(f"| {test:<12} | {pipeline:>3} | {redis_rps:>13,.0f} | " + " | ".join(cells) + " |")
    if results.cpu_us:
        print(f"\n{title}: server CPU per request, median (us; the load average at the end: "
              f"{os.getloadavg()[0]:.1f})")
        print(f"| {'test':<12} | {'-P':>3} | {'redis-server':>12} | " + " | ".join(f"{form:>8}" for form in forms) + " |")
        print(f"|{'-' * 14}|{'-' * 5}|{'-' * 14}|" + "|".join("-" * 10 for _ in forms) + "|")
        for (test, pipeline), by_server in sorted(results.cpu_us.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            cells = [f"{statistics.median(by_server.get(form, [0])):>8.1f}" for form in forms]
            print(f"| {test:<12} | {pipeline:>3} | {statistics.median(by_server.get('redis', [0])):>12.1f} | "
                  + " | ".join(cells) + " |")


# -- memory per key -----------------------------------------------------------------------

def write_keys(server: Server, keys: int, value_size: int) -> None:
    """Exactly `keys` SETs of key:{n} streamed with redis-cli --pipe; checked with DBSIZE."""
    value = b"v" * value_size
    head = b"*3\r\n$3\r\nSET\r\n"
    tail = b"$%d\r\n%s\r\n" % (value_size, value)
    proc = subprocess.Popen(pinned(CLIENT_CPU, ["redis-cli", "-h", HOST, "-p", str(server.port), "--pipe"]),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdin is not None
    batch = []
    for n in range(keys):
        key = b"key:%d" % n
        batch.append(b"%s$%d\r\n%s\r\n%s" % (head, len(key), key, tail))
        if len(batch) == 10000:
            proc.stdin.write(b"".join(batch))
            batch.clear()
    proc.stdin.write(b"".join(batch))
    proc.stdin.close()
    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    proc.wait(600)
    if proc.returncode != 0 or "errors: 0" not in output:
        raise RuntimeError(f"loading {server.name} failed: {output}")
    dbsize = int(server.command("DBSIZE")[1:].strip())
    if dbsize != keys:
        raise RuntimeError(f"{server.name} holds {dbsize} keys, expected {keys}")


def measure_memory(server: Server, keys: int, value_size: int) -> dict[str, float]:
    server.command("FLUSHALL")
    used_before = int(server.info("memory")["used_memory"])
    rss_before = server.rss_bytes()
    started = time.monotonic()
    write_keys(server, keys, value_size)
    took = time.monotonic() - started
    time.sleep(1.0)     # let the server settle (no condition to poll: we sample the memory)
    used_after = int(server.info("memory")["used_memory"])
    rss_after = server.rss_bytes()
    return {"used_per_key": (used_after - used_before) / keys, "rss_per_key": (rss_after - rss_before) / keys,
            "used_memory": used_after, "rss": rss_after, "load_s": took}


def print_memory(mem: dict[str, dict[str, float]], keys: int, value_size: int, forms: list[str]) -> None:
    print()
    print(f"Memory for {keys:,} keys of {value_size}-byte values (growth over the empty server, per key)")
    print(f"| {'':<22} | {'redis-server':>13} | " + " | ".join(f"{form:>13} | {'ratio':>6}" for form in forms) + " |")
    print(f"|{'-' * 24}|{'-' * 15}|" + "|".join(f"{'-' * 15}|{'-' * 8}" for _ in forms) + "|")
    for label, key, scale, unit in (("used_memory per key", "used_per_key", 1, "B"),
                                    ("RSS per key", "rss_per_key", 1, "B"),
                                    ("used_memory total", "used_memory", 1 << 20, "MB"),
                                    ("RSS total", "rss", 1 << 20, "MB")):
        a = mem["redis"][key] / scale
        cells = [f"{mem[form][key] / scale:>10,.1f} {unit:<2} | {mem[form][key] / scale / a:>5.2f}x" for form in forms]
        print(f"| {label:<22} | {a:>10,.1f} {unit:<2} | " + " | ".join(cells) + " |")
    print("(load time with redis-cli --pipe: " + ", ".join(f"{name} {m['load_s']:.1f}s" for name, m in mem.items()) + ")")


# -- main ----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short run: N/10, 1 repeat, 100k keys")
    p.add_argument("--repeat", type=int, default=3, help="repeats of every run (default 3)")
    p.add_argument("-n", "--requests", type=int, default=300_000, help="requests per -P 1 run (x10 at -P 16)")
    p.add_argument("-c", "--clients", type=int, default=50)
    p.add_argument("--types", action="store_true", help=f"also run -t {TYPE_TESTS}")
    p.add_argument("--only-types", action="store_true", help=f"run only -t {TYPE_TESTS}")
    p.add_argument("--scripting", action="store_true", help="also EVALSHA of a GET + INCR script")
    p.add_argument("--families", action="store_true", help="also bitmaps, HyperLogLog and GEO commands")
    p.add_argument("--family-tests", default="",
                   help="with --families: only these (comma-separated: " + ",".join(t[0] for t in FAMILY_TESTS) + ")")
    p.add_argument("--no-basic", action="store_true", help="skip the set,get run")
    p.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    p.add_argument("--keys", type=int, default=1_000_000, help="keys for the memory measurement")
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--hypercache-args", default="", help="extra flags for the hypercache nodes")
    p.add_argument("--forms", default="python,mypyc", help="hypercache forms to run (default: python,mypyc)")
    a = p.parse_args(argv)
    if a.quick:
        a.requests = max(1000, a.requests // 10)
        a.repeat = 1
        a.keys = min(a.keys, 100_000)
    for tool in ("redis-server", "redis-benchmark", "redis-cli"):
        if shutil.which(tool) is None:
            print(f"{tool} is required (apt-get install redis-server redis-tools)", file=sys.stderr)
            return 2
    requests = {1: a.requests, 16: a.requests * 10}
    forms = [form for form in a.forms.split(",") if form]
    if not forms or set(forms) - {"python", "mypyc"}:
        print("--forms takes python, mypyc or both", file=sys.stderr)
        return 2
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    print(f"machine: {os.cpu_count()} CPUs ({cpu}); servers on cpu {SERVER_CPU}, redis-benchmark on cpu "
          f"{CLIENT_CPU}; python {platform.python_version()} ({sys.executable}); "
          f"{subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()[2]}")
    # a SIGTERM unwinds through the finally below, which stops the servers this run started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="bench-vs-redis-") as tmp:
        workdir = Path(tmp)
        servers: list[Server] = []
        try:
            servers.append(start_redis(workdir))
            for form in forms:
                servers.append(start_hypercache(workdir, a.hypercache_args.split(), form))
            if not a.only_types and not a.no_basic:
                basic = Results()
                print(f"set,get: -n {requests[1]:,} at -P 1, {requests[16]:,} at -P 16, {a.repeat} repeats")
                run_throughput(servers, BASIC_TESTS, [1, 16], requests, a.repeat, a.clients, basic)
                print_table(basic, "set,get", forms)
            if a.types or a.only_types:
                typed = Results()
                type_requests = {1: max(1000, a.requests // 3), 16: max(1000, a.requests * 3)}
                print(f"\n{TYPE_TESTS}: -n {type_requests[1]:,} at -P 1, {type_requests[16]:,} at -P 16")
                run_throughput(servers, TYPE_TESTS, [1, 16], type_requests, a.repeat, a.clients, typed)
                print_table(typed, "data types", forms)
            if a.scripting:
                scripted = Results()
                script_requests = {1: max(1000, a.requests // 3), 16: max(1000, a.requests)}
                print(f"\nEVALSHA ({SCRIPT}): -n {script_requests[1]:,} at -P 1, {script_requests[16]:,} at -P 16")
                run_scripting(servers, script_requests, a.repeat, a.clients, scripted)
                print_table(scripted, "scripting", forms)
            if a.families:
                families = Results()
                family_requests = {1: max(1000, a.requests // 3), 16: max(1000, a.requests)}
                print(f"\nbitmaps, HyperLogLog, GEO: -n {family_requests[1]:,} at -P 1, {family_requests[16]:,} at -P 16")
                run_families(servers, family_requests, a.repeat, a.clients, families,
                             set(a.family_tests.split(",")) - {""} or None)
                print_table(families, "bitmaps, HyperLogLog, GEO", forms)
            if not a.no_memory:
                mem = {s.name: measure_memory(s, a.keys, a.value_size) for s in servers}
                print_memory(mem, a.keys, a.value_size, forms)
        finally:
            for server in servers:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
