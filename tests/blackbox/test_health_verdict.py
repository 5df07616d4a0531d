"""A real cluster never says "ok" while a member of its map is gone: CLUSTER INFO's hypercache_cluster_state,
/cluster/status and /health agree with the members they list, sample by sample, through a crash."""
from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request

import pytest

from tests.nodes import agreed, call, wait_until

# runs alone (Makefile): verdicts sampled against a 2 s node timeout, and a node made to run late
pytestmark = pytest.mark.alone


def _overview(node) -> dict:
    """Status and members from one snapshot, so that they agree."""
    with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/cluster/overview", timeout=5) as response:
        return json.load(response)


def _status(node) -> dict:
    return _overview(node)["status"]


def _health(node) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/health", timeout=5) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        return json.load(error)


def _cluster_info(node) -> dict[str, str]:
    text = call(node, "CLUSTER", "INFO").decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def test_ok_is_said_only_while_every_member_of_the_map_is_alive(node_factory) -> None:
    nodes = node_factory.start_cluster(3, "--node-timeout-ms", "2000", http=True)
    wait_until(lambda: agreed(nodes, 3), timeout=60, message="3 nodes agreeing")
    watcher = nodes[0]
    wait_until(lambda: _cluster_info(watcher).get("hypercache_cluster_state") == "ok", timeout=30)
    assert _health(watcher)["status"] == "ok" and _status(watcher)["state"] == "ok"
    # mesh traffic per peer in /metrics: both other members heard, in messages and bytes
    with urllib.request.urlopen(f"http://127.0.0.1:{watcher.http_port}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    for name in ("hypercache_mesh_received_messages_total", "hypercache_mesh_received_bytes_total"):
        values = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(name + "{")]
        assert len(values) == 2 and all(v > 0 for v in values), (name, values)
    sent = [line for line in metrics.splitlines() if line.startswith("hypercache_mesh_sent_bytes_total ")]
    assert sent and float(sent[0].split()[1]) > 0

    victim = call(nodes[2], "CLUSTER", "MYID").decode()
    nodes[2].kill()
    samples = {"ok": 0, "degraded": 0, "fail": 0}
    deadline = time.monotonic() + 60
    while True:
        overview = _overview(watcher)
        status, listed = overview["status"], overview["nodes"]["members"]
        gone = [m for m in listed if m["id"] == victim and (m["primary_ranges"] or m["replica_ranges"])
                and m["state"] != "alive"]
        samples[status["state"]] += 1
        if gone:
            # the dead member still holds slots in this snapshot's map: never "ok"
            assert status["state"] != "ok", (status, gone)
            assert status["reason"] and victim[:8] in status["reason"]
        mapped = [m["id"] for m in listed if m["primary_ranges"] or m["replica_ranges"]]
        if victim not in mapped and status["state"] == "ok":
            break
        assert time.monotonic() < deadline, f"the map never dropped the dead member: {status}"
        # The window between the death and the map without it can be a few ms (one HTTP sample
        # in five runs here, none once under CI's load): between two snapshots, CLUSTER INFO's
        # verdict (~1 ms a call) watches for it too.
        until = time.monotonic() + 0.02
        while time.monotonic() < until:
            samples[_cluster_info(watcher)["hypercache_cluster_state"]] += 1
    assert samples["degraded"] + samples["fail"] > 0, samples    # the window was seen, and not called "ok"
    info = _cluster_info(watcher)
    assert info["hypercache_cluster_state"] == "ok" and "hypercache_cluster_state_reason" not in info
    assert _health(watcher)["status"] == "ok"


def _stranded(node) -> int:
    """Keys the node holds in slots its /cluster/nodes gives it neither as primary nor as replica."""
    import redis
    mine = next(m for m in _overview(node)["nodes"]["members"] if m["myself"])
    owned = {slot for first, last in mine["primary_ranges"] + mine["replica_ranges"]
             for slot in range(first, last + 1)}
    with redis.Redis(port=node.port) as r:
        pipe = r.pipeline(transaction=False)
        for slot in range(16384):
            if slot not in owned:
                pipe.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)
        return sum(pipe.execute())


def test_keys_left_in_slots_a_node_no_longer_owns_are_not_called_ok(node_factory) -> None:
    import redis
    nodes = node_factory.start_cluster(3, "--node-timeout-ms", "2000", http=True)
    wait_until(lambda: agreed(nodes, 3), timeout=60, message="3 nodes agreeing")
    with redis.RedisCluster(host="127.0.0.1", port=nodes[0].port) as rc:
        for i in range(2000):
            rc.set(f"key:{i}", i)
    nodes.append(node_factory.start("--node-timeout-ms", "2000", join=nodes[0], http=True))
    wait_until(lambda: agreed(nodes, 4), timeout=60, message="4 nodes agreeing")
    for node in nodes:
        # the verdict agrees with the keys counted through the public protocol, either way
        def consistent(node=node) -> bool:
            stranded, info = _stranded(node), _cluster_info(node)
            if stranded:
                return info["hypercache_cluster_state"] == "degraded" and \
                    f"{stranded} keys held here for slots this node no longer owns" in \
                    info.get("hypercache_cluster_state_reason", "")
            return "stranded" not in info.get("hypercache_cluster_state_reason", "")
        wait_until(consistent, timeout=20, message=lambda node=node: (
            f"node on {node.port}: verdict and stranded keys agreeing: {_stranded(node)} stranded, "
            f"{_cluster_info(node)}"))


def test_a_node_without_room_to_hear_a_peer_is_not_called_ok(node_factory) -> None:
    # ulimit -n 48: room for 1 mesh peer besides the --join address (hypercache/open_files.py); in a
    # cluster of 4 it cannot subscribe to one member and does not hear it: degraded, and it says why
    nodes = node_factory.start_cluster(3, "--node-timeout-ms", "2000", http=True)
    wait_until(lambda: agreed(nodes, 3), timeout=60, message="3 nodes agreeing")
    crowded = node_factory.start("--node-timeout-ms", "2000", join=nodes[0], http=True, nofile=(48, 48))
    assert "the mesh to 1 peers" in crowded.logs()
    wait_until(lambda: "mesh peer not subscribed" in crowded.logs(), timeout=60, message="a peer refused")
    wait_until(lambda: "mesh peers are not subscribed to" in _cluster_info(crowded).get(
        "hypercache_cluster_state_reason", ""), timeout=30, message="CLUSTER INFO naming the unheard peer")
    assert _cluster_info(crowded)["hypercache_cluster_state"] == "degraded"
    health = _health(crowded)
    assert health["status"] != "ok" and "ulimit -n" in health["reason"]
    with urllib.request.urlopen(f"http://127.0.0.1:{crowded.http_port}/metrics", timeout=5) as response:
        refused = [line for line in response.read().decode().splitlines()
                   if line.startswith("hypercache_mesh_peers_refused_total ")]
    assert refused and float(refused[0].split()[1]) >= 1
    assert call(crowded, "PING") == b"PONG"        # refused, never crashed


def _metric(node, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/metrics", timeout=5) as response:
        lines = [line for line in response.read().decode().splitlines() if line.startswith(name + " ")]
    return float(lines[0].split()[1])


def test_a_node_that_ran_late_waits_longer_before_it_suspects_then_recovers(node_factory) -> None:
    # Stopped three times for 0.8 s (SIGSTOP: the kernel does not run it), a node's timer fires late
    # after each: evidence of its own lateness (mesh/awareness.py). It says so, counts it, shows the
    # stretched wait in /cluster/status, and runs on time again a few seconds later; its peers,
    # silent for less than node_timeout, are never suspected by anyone. (Only what follows the
    # stops is read: forming on a loaded machine may have made a tick late already.)
    cluster = node_factory.start_cluster(3, "--node-timeout-ms", "3000", http=True)
    wait_until(lambda: agreed(cluster, 3), timeout=60, message="3 nodes agreeing")
    late = cluster[1]
    wait_until(lambda: _metric(late, "hypercache_mesh_local_health") == 0, timeout=30, message="on time first")
    evidence = _metric(late, "hypercache_mesh_late_evidence_total")
    logged = {node.port: len(node.logs(tail=None)) for node in cluster}

    def since(node) -> str:
        return node.logs(tail=None)[logged[node.port]:]
    for _ in range(3):
        late.proc.send_signal(signal.SIGSTOP)
        time.sleep(0.8)     # (the stall itself, not a wait for a condition)
        late.proc.send_signal(signal.SIGCONT)
        time.sleep(0.3)
    wait_until(lambda: "this node runs late" in since(late), timeout=10, message="the node saying it runs late")
    assert _metric(late, "hypercache_mesh_late_evidence_total") >= evidence + 2
    wait_until(lambda: "this node runs on time again" in since(late), timeout=30, message="on time again")
    wait_until(lambda: _status(late)["mesh"]["suspect_after_s"] == 3.0, timeout=10, message="node_timeout again")
    assert all("member suspect node=" not in since(node) for node in cluster)
