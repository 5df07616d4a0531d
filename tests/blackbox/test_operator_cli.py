"""The command line as an operator meets it: one clear line and exit code 2 for every mistake,
the version everywhere it is asked for, and a --join target that cannot be reached named as such."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.nodes import REPO, call, free_port, node_ports, wait_until

sys.path.insert(0, str(REPO))
from hypercache import __version__, compiled  # noqa: E402


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERCACHE_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "hypercache", *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def _refused(done: subprocess.CompletedProcess, *words: str) -> None:
    text = f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    assert done.returncode == 2, text
    assert "Traceback" not in done.stderr, text
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hypercache: error: "), text
    for word in words:
        assert word in lines[0], text


@pytest.mark.parametrize("args,env,words", [
    (["--port", "abc"], {}, ["--port", "'abc'"]),
    (["--port", "70000"], {}, ["--port", "65535"]),
    (["--bogus"], {}, ["--bogus"]),
    (["--join", "127.0.0.1"], {}, ["--join", "HOST:MESHPORT"]),
    (["--join", "127.0.0.1:notaport"], {}, ["--join"]),
    (["--log-level", "loud"], {}, ["--log-level", "DEBUG, INFO"]),
    (["--protected-mode", "maybe"], {}, ["--protected-mode"]),
    (["--replication-factor", "0"], {}, ["--replication-factor"]),
    (["--port", "50000"], {}, ["data port"]),
    ([], {"HYPERCACHE_PORT": "abc"}, ["HYPERCACHE_PORT='abc'"]),
    ([], {"HYPERCACHE_MAXMEMORY": "1gb"}, ["HYPERCACHE_MAXMEMORY"]),
    ([], {"HYPERCACHE_JOIN": "seed"}, ["HYPERCACHE_JOIN", "HOST:MESHPORT"]),
    ([], {"HYPERCACHE_MAXMEMORY_POLICY": "lru"}, ["HYPERCACHE_MAXMEMORY_POLICY", "allkeys-lru"]),
    ([], {"HYPERCACHE_PROTECTED_MODE": "perhaps"}, ["HYPERCACHE_PROTECTED_MODE"]),
    (["--requirepass-file", "/nonexistent/pw"], {}, ["--requirepass-file"]),
])
def test_a_mistake_is_one_line_and_exit_code_2(args, env, words) -> None:
    _refused(_run(*args, env=env), *words)


@pytest.mark.parametrize("which", ["RESP port", "mesh port", "data port", "HTTP port"])
def test_a_busy_port_is_one_line_naming_it(which: str) -> None:
    port, mesh_port = node_ports()
    http_port = free_port()
    busy = {"RESP port": port, "mesh port": mesh_port, "data port": mesh_port + 10000,
            "HTTP port": http_port}[which]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", busy))
        holder.listen()
        done = _run("--port", str(port), "--http-port", str(http_port))
    _refused(done, which, str(busy), "in use")


@pytest.mark.parametrize("args,words", [
    (["--data-dir", "/proc/no/such/dir"], ["cannot start", "/proc/no"]),
    (["--mesh-secret-key-file", "/no/such.key_secret", "--mesh-public-keys-dir", "/no/such/dir"],
     ["cannot start", "/no/such.key_secret"]),
])
def test_a_file_the_node_cannot_read_at_start_is_one_line(args, words) -> None:
    port, _ = node_ports()
    _refused(_run("--port", str(port), "--http-port", "0", *args), *words)


def test_version_and_help() -> None:
    done = _run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"hypercache {__version__}, {compiled.FORM}", done
    help_text = _run("--help").stdout
    assert "{DEBUG,INFO,WARNING,ERROR}" in help_text and "--protected-mode {yes,no}" in help_text
    assert "examples:" in help_text and "--join 127.0.0.1:18080" in help_text
    # every flag says its default
    flags = [line.split()[0] for line in help_text.splitlines() if line.startswith("  --")]
    assert len(flags) > 20
    blocks = help_text.split("\n  --")[1:]
    for block in blocks:
        name = block.split()[0]
        if name in ("version", "help"):
            continue
        assert "(default" in " ".join(block.split()), f"--{name} shows no default:\n{block}"


def test_the_version_in_info_status_and_metrics(node_factory) -> None:
    node = node_factory.start(http=True)
    info = call(node, "INFO", "server").decode()
    assert f"hypercache_version:{__version__}\r\n" in info
    assert info.index("redis_version:") < info.index("hypercache_version:")
    base = f"http://127.0.0.1:{node.http_port}"
    status = json.load(urllib.request.urlopen(f"{base}/cluster/status", timeout=10))
    assert status["version"] == __version__
    metrics = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    assert 'hypercache_build_info{' in metrics and f'version="{__version__}"' in metrics
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
                 "python_gc_collections_total"):
        assert f"\n{name}" in metrics, name


def test_an_unreachable_join_target_is_named_in_the_log_and_on_health(node_factory, tmp_path: Path) -> None:
    closed_port = free_port()          # nobody listens there
    node = node_factory.start("--join", f"127.0.0.1:{closed_port}", "nosuchhost.invalid:18080", http=True)

    def health() -> dict:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/health", timeout=5)
        except urllib.error.HTTPError as error:
            return json.load(error)
        raise AssertionError("a joining node that hears nobody answered 200")

    # (until both are probed the reason says "not probed yet" for one of them)
    body = wait_until(lambda: "not probed" not in (health().get("reason") or "not probed") and health(),
                      timeout=20)
    assert body["status"] == "unavailable"
    assert f"127.0.0.1:{closed_port}: cannot connect" in body["reason"]
    assert "nosuchhost.invalid:18080: cannot resolve" in body["reason"]
    assert "majority" not in body["reason"]
    logs = wait_until(lambda: node.logs().count("join target unreachable") >= 2 and node.logs(), timeout=10)
    assert "Traceback" not in logs


def test_nodes_joining_each_other_with_no_cluster_say_so(node_factory) -> None:
    """Every node told to --join another that is joining too (a seed that died, or each
    other): nobody can admit anybody. /health says so, and what to do, not "no majority"."""
    (a_port, a_mesh), (b_port, b_mesh) = node_ports(), node_ports()
    a = node_factory.start("--node-timeout-ms", "1000", port=a_port, join=f"127.0.0.1:{b_mesh}", http=True)
    node_factory.start("--node-timeout-ms", "1000", port=b_port, join=f"127.0.0.1:{a_mesh}")

    def reason() -> str:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{a.http_port}/health", timeout=5)
        except urllib.error.HTTPError as error:
            return json.load(error)["reason"] or ""
        raise AssertionError("a node that was never admitted answered 200")

    text = wait_until(lambda: "no cluster to join" in reason() and reason(), timeout=30,
                      message=node_factory.logs)
    assert "Start one node without --join" in text and "majority" not in text
    assert "join stuck: " in a.logs() or wait_until(lambda: "join stuck: " in a.logs(), timeout=10)


def test_the_readme_synopsis_names_every_flag() -> None:
    """The README's command line block stays true as flags are added."""
    readme = (REPO / "README.md").read_text()
    start = readme.index("## Command line")
    synopsis = readme[start:readme.index("```", readme.index("```", start) + 3)]
    flags = {line.split()[0].split("=")[0] for line in _run("--help").stdout.splitlines()
             if line.startswith("  --")} - {"--help", "--version"}
    missing = sorted(flag for flag in flags if flag not in synopsis)
    assert not missing, f"README's command line does not name {missing}"
