"""`make run`'s supervisor (hypercache/local_cluster.py) with real nodes: a killed node stays down while the
others run on, `--node N` brings it back or adds a fourth, `--stop N` makes one leave, Ctrl-C stops them all."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.nodes import REPO, agreed, free_port, ping_once, raw_connect, wait_until

TIMEOUT_S = 60


class _Node:
    """What tests.nodes' cluster helpers need of a node: its RESP port and a raw connection."""

    def __init__(self, port: int) -> None:
        self.port = port

    def raw(self, timeout: float = 5.0):
        return raw_connect(self.port, timeout)


def _consecutive_ports(count: int) -> int:
    """P such that P .. P+count-1, their mesh ports (+10000) and data ports (+20000) are all free,
    and all of them kept from later free_port() calls (the HTTP ports, picked next, once
    landed on a mesh port: a node failed to start with "Address already in use")."""
    return free_port(span=1, spans=count - 1, high=32767 - 20000 - count,
                     also=tuple(offset + i for offset in (10000, 20000) for i in range(count)))


def _local(base: list[str], *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hypercache.local_cluster", *base, *args], cwd=REPO, **popen)


def test_a_killed_node_stays_down_the_others_run_on_and_nodes_come_back_or_are_added(tmp_path: Path) -> None:
    port, http_port = _consecutive_ports(4), free_port(span=1, spans=3)
    base = ["--nodes", "3", "--port", str(port), "--http-port", str(http_port), "--dir", str(tmp_path / "data")]
    node_flags = ["--", "--node-timeout-ms", "1500", "--leave-timeout-ms", "5000"]
    log_path = tmp_path / "supervisor.log"
    nodes = [_Node(port + i) for i in range(4)]
    extra: list[subprocess.Popen] = []
    with log_path.open("wb") as log:
        supervisor = _local(base, *node_flags, stdout=log, stderr=subprocess.STDOUT)
    logs = log_path.read_text
    try:
        wait_until(lambda: agreed(nodes[:3], 3), timeout=TIMEOUT_S, message=lambda: "3 nodes agreeing\n" + logs())
        assert "node1 | " in logs() and "node started" in logs()

        # a crash: node 1 goes, the supervisor says so and keeps the others
        done = subprocess.run([sys.executable, "-m", "hypercache.local_cluster", *base, "--kill", "1"],
                              cwd=REPO, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done
        wait_until(lambda: "node1 | exited (signal SIGKILL); the other nodes keep running" in logs(),
                   timeout=TIMEOUT_S, message=lambda: "the supervisor reporting node1's exit\n" + logs())
        assert not ping_once(nodes[1].port)
        assert supervisor.poll() is None
        wait_until(lambda: agreed([nodes[0], nodes[2]], 2), timeout=TIMEOUT_S,
                   message=lambda: "the two survivors agreeing\n" + logs())
        # nobody was restarted behind the user's back
        assert not ping_once(nodes[1].port)
        assert "--kill 1" not in logs()

        # node 1 again (same id, from its data dir), then a fourth node, one after the other
        for index, members in ((1, 3), (3, 4)):
            with (tmp_path / f"node{index}.log").open("wb") as log:
                extra.append(_local(base, "--node", str(index), *node_flags, stdout=log, stderr=subprocess.STDOUT))
            running = [nodes[i] for i in (0, 1, 2, 3)[:members]]
            wait_until(lambda running=running: agreed(running, len(running)), timeout=TIMEOUT_S,
                       message=lambda index=index: f"node {index} joining\n" + logs() + "\n" +
                       (tmp_path / f"node{index}.log").read_text()[-3000:])

        # a graceful stop of the added node: it leaves, the three stay
        done = subprocess.run([sys.executable, "-m", "hypercache.local_cluster", *base, "--stop", "3"],
                              cwd=REPO, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done
        assert extra[1].wait(TIMEOUT_S) == 0
        wait_until(lambda: agreed(nodes[:3], 3), timeout=TIMEOUT_S, message=lambda: "back to 3\n" + logs())
        done = subprocess.run([sys.executable, "-m", "hypercache.local_cluster", *base, "--stop", "3"],
                              cwd=REPO, capture_output=True, text=True, timeout=30)
        assert done.returncode == 1 and "not running" in done.stderr, done

        # Ctrl-C: the supervisor stops its nodes and exits
        supervisor.send_signal(signal.SIGINT)
        assert supervisor.wait(TIMEOUT_S) == 0, logs()
        for node in (nodes[0], nodes[2]):
            assert not ping_once(node.port)
        extra[0].send_signal(signal.SIGTERM)
        assert extra[0].wait(TIMEOUT_S) == 0

        # `make run` again over the same data dirs: the three form one cluster again
        # (they once all waited to join each other)
        with log_path.open("ab") as log:
            supervisor = _local(base, *node_flags, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: agreed(nodes[:3], 3), timeout=TIMEOUT_S, message=lambda: "restarted 3\n" + logs())
        supervisor.send_signal(signal.SIGINT)
        assert supervisor.wait(TIMEOUT_S) == 0, logs()
    finally:
        for proc in [supervisor, *extra]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [supervisor, *extra]:
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                proc.kill()
