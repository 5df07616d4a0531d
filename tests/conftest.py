"""Shared fixtures: real hypercache nodes, a real redis-server, and node logs on failure.

Fixtures
  node          one node per test module (fast); its keyspace is emptied (FLUSHALL)
                before every test. CONFIG SET changes persist within the module: undo them.
  r             redis.Redis (bytes replies) to `node`, after the FLUSHALL.
  node_factory  a NodeFactory for this test: start(*flags, join=..., http=..., password=...),
                start_cluster(n), restart(node); every node is stopped after the test.
  redis_server  a real redis-server (--save '' --appendonly no) per module, FLUSHALLed per
                test; skipped if redis-server is missing, unless CI is set (then it fails).
  redis_server_factory  start_redis_server(*flags) for this test (e.g. "--requirepass", "x").
  three         a 3-node cluster (replication factor 2) of this test's own.
  shared_three  the session's 3-node cluster, as `three`, for tests that leave it as they found
                it (no kill, stop, pause, join, CONFIG SET): flushed before every test.

When a test fails, the tail of the log of every node it used is attached to the report.

Bytecode: the suite starts hundreds of node processes. Under PYTHONDONTWRITEBYTECODE each of
them compiled every module from source, ~0.25 s of CPU of a start's ~0.65 s; instead, their
bytecode is cached outside the source tree (PYTHONPYCACHEPREFIX), which leaves the tree as
clean as PYTHONDONTWRITEBYTECODE asks.
"""
from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:          # `pytest tests` from a checkout without setup.cfg's pythonpath
    sys.path.insert(0, str(REPO))

if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) and "PYTHONPYCACHEPREFIX" not in os.environ:
    os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / f"hypercache-pycache-{os.getuid()}")

from tests import nodes  # noqa: E402
from tests.nodes import NodeFactory, NodeProcess, RedisServerProcess, start_redis_server  # noqa: E402


# -- node logs in failure reports ---------------------------------------------------------

def pytest_runtest_setup(item: pytest.Item) -> None:
    nodes.STOPPED_DURING_TEST.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)
    if report.failed:
        used = list(dict.fromkeys(nodes.RUNNING + nodes.STOPPED_DURING_TEST))
        for n in used:
            state = "running" if n.alive else f"exited {n.proc.returncode}"
            report.sections.append((f"hypercache {n.name} port={n.port} ({state}) {n.log_path}",
                                    n.logs() or "(empty log)"))


# -- hypercache nodes ------------------------------------------------------------------------

@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator[NodeFactory]:
    factory = NodeFactory(tmp_path / "nodes")
    try:
        yield factory
    finally:
        factory.kill_all()


@pytest.fixture(scope="module")
def _module_node_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeFactory]:
    factory = NodeFactory(tmp_path_factory.mktemp("module-nodes"))
    try:
        yield factory
    finally:
        factory.kill_all()


@pytest.fixture(scope="module")
def _module_node(_module_node_factory: NodeFactory) -> list[NodeProcess]:
    return [_module_node_factory.start()]


@pytest.fixture
def node(_module_node: list[NodeProcess], _module_node_factory: NodeFactory) -> NodeProcess:
    """The module's node with an empty keyspace; restarted if an earlier test killed it."""
    if not _module_node[0].alive:
        _module_node[0] = _module_node_factory.start()
    _module_node[0].flushall()
    return _module_node[0]


@pytest.fixture
def r(node: NodeProcess):
    client = node.client()
    try:
        yield client
    finally:
        client.close()


# -- a real redis-server ----------------------------------------------------------------------

def _require_redis_server() -> None:
    if nodes.REDIS_SERVER is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")


@pytest.fixture(scope="module")
def _module_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServerProcess]:
    _require_redis_server()
    server = start_redis_server(tmp_path_factory.mktemp("redis-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(_module_redis_server: RedisServerProcess) -> RedisServerProcess:
    _module_redis_server.flushall()
    return _module_redis_server


@pytest.fixture
def redis_server_factory(tmp_path: Path):
    _require_redis_server()
    started: list[RedisServerProcess] = []

    def start(*extra: str) -> RedisServerProcess:
        server = start_redis_server(tmp_path / f"redis-{len(started)}", *extra)
        started.append(server)
        return server
    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def three(node_factory: NodeFactory) -> list[NodeProcess]:
    """A 3-node cluster (replication factor 2) that agrees on its map."""
    cluster = node_factory.start_cluster(3, *nodes.CLUSTER_TIMEOUT)
    nodes.wait_until(lambda: nodes.agreed(cluster, 3), timeout=15, message=node_factory.logs)
    return cluster


@pytest.fixture(scope="session")
def _shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeFactory, list[NodeProcess]]]:
    factory = NodeFactory(tmp_path_factory.mktemp("shared-cluster"))
    try:
        yield factory, []
    finally:
        factory.kill_all()


def _healthy(cluster: list[NodeProcess]) -> bool:
    if len(cluster) != 3 or not all(n.alive for n in cluster):
        return False
    try:
        nodes.wait_until(lambda: nodes.agreed(cluster, 3), timeout=15)
    except nodes.WaitTimeout:
        return False
    return True


@pytest.fixture
def shared_three(_shared_cluster: tuple[NodeFactory, list[NodeProcess]]) -> list[NodeProcess]:
    """The session's 3-node cluster (as `three`), its keys and functions flushed.

    For tests that leave the cluster as they found it: starting a cluster is most of the
    time of a test that only reads and writes it. One that was left short of three
    agreeing members anyway is replaced by a new one."""
    factory, cluster = _shared_cluster
    if not _healthy(cluster):
        factory.kill_all()
        cluster[:] = factory.start_cluster(3, *nodes.CLUSTER_TIMEOUT)
        nodes.wait_until(lambda: nodes.agreed(cluster, 3), timeout=15, message=factory.logs)
    for node in cluster:
        nodes.call(node, "FLUSHALL")
        nodes.call(node, "FUNCTION", "FLUSH")
        nodes.call(node, "SCRIPT", "FLUSH")
    return list(cluster)
