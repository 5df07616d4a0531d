"""Nodes configured only by HYPERCACHE_* variables, joining by host name: how containers start them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.nodes import agreed, call, node_ports, ping_once, raw_connect, wait_until

REPO = Path(__file__).resolve().parents[2]


def _start(tmp_path: Path, name: str, env: dict[str, str]) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.log", "wb")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERCACHE_")}
    full_env.update(env)
    return subprocess.Popen([sys.executable, "-m", "hypercache"], cwd=REPO, env=full_env,
                            stdout=log, stderr=subprocess.STDOUT)


class _Address:
    """What tests.nodes.call needs of a node: a raw connection to its RESP port."""

    def __init__(self, port: int) -> None:
        self.port = port

    def raw(self):
        return raw_connect(self.port)


def test_two_nodes_from_environment_variables_form_a_cluster(tmp_path: Path) -> None:
    (seed_port, seed_mesh), (worker_port, worker_mesh) = node_ports(), node_ports()
    common = {"HYPERCACHE_HOST": "127.0.0.1", "HYPERCACHE_HTTP_PORT": "0",
              "HYPERCACHE_NODE_TIMEOUT_MS": "1500", "HYPERCACHE_REPLICATION_FACTOR": "1"}
    procs = [
        _start(tmp_path, "seed", {**common, "HYPERCACHE_PORT": str(seed_port),
                                  "HYPERCACHE_MESH_PORT": str(seed_mesh),
                                  "HYPERCACHE_DATA_DIR": str(tmp_path / "seed")}),
        # joins by host name, as a compose service does (`seed:16379`)
        _start(tmp_path, "worker", {**common, "HYPERCACHE_PORT": str(worker_port),
                                    "HYPERCACHE_MESH_PORT": str(worker_mesh),
                                    "HYPERCACHE_JOIN": f"localhost:{seed_mesh}"}),
    ]
    try:
        for port in (seed_port, worker_port):
            wait_until(lambda p=port: ping_once(p), timeout=20, message=f"node on {port} never answered")

        nodes = [_Address(seed_port), _Address(worker_port)]
        wait_until(lambda: agreed(nodes, 2), timeout=20, message="the two nodes never agreed on a map")
        assert call(nodes[0], "CONFIG", "GET", "port") == [b"port", str(seed_port).encode()]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
