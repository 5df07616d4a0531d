"""Whole nodes closed with one cluster secret: they form a cluster and replicate, a node with another secret and a
raw zmq attacker get nowhere, and a node refuses to open its mesh beyond loopback without a secret."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from mesh import curve, ring
from mesh.datalink import data_port
from mesh.messages import Commit, Heartbeat, Hello, encode
from mesh.slotmap import Member, SlotMap
from tests import nodes
from tests.blackbox.test_replication import replicas_in_sync
from tests.nodes import REPO, NodeFactory, agreed, call, cluster_info, free_port, nodes_lines, wait_until

SECRET = "a cluster secret of some length 0123456789"
NODE_TIMEOUT_S = int(nodes.CLUSTER_TIMEOUT[1]) / 1000


def _secret_file(directory: Path, secret: str) -> str:
    path = directory / f"secret-{abs(hash(secret))}"
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return str(path)


@pytest.mark.alone     # runs alone (Makefile): 4.5 s of attack on 1.5 s node timeouts, no epoch allowed
def test_a_cluster_closed_with_a_secret_works_and_keeps_strangers_out(node_factory: NodeFactory, tmp_path: Path):
    flags = ("--cluster-secret-file", _secret_file(tmp_path, SECRET), *nodes.CLUSTER_TIMEOUT)
    cluster = node_factory.start_cluster(3, *flags)
    epoch = wait_until(lambda: agreed(cluster, 3), timeout=20, message=node_factory.logs)
    # The data channel is closed with the same secret: every replica stream completes its copy.
    wait_until(lambda: replicas_in_sync(cluster, 2), timeout=20, message=node_factory.logs)

    # The data channel is closed with the secret too: a peer with another key pair, even one that knows
    # the cluster's public key, is turned away by the node's ZAP handler before any frame is read.
    cluster_key = curve.from_secret(SECRET.encode()).cluster_public
    guess = curve.from_secret(b"a guess at the cluster secret!!")
    context = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    try:
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.CURVE_SERVERKEY, cluster_key)
        dealer.setsockopt(zmq.CURVE_PUBLICKEY, guess.public)
        dealer.setsockopt(zmq.CURVE_SECRETKEY, guess.secret)
        dealer.connect(f"tcp://127.0.0.1:{data_port(cluster[2].mesh_port)}")
        dealer.send(b"not a frame", zmq.NOBLOCK)
        wait_until(lambda: "mesh zap denied" in cluster[2].logs(), timeout=20, message=node_factory.logs)
    finally:
        dealer.close(linger=0)
        context.term()

    # A node given another secret (through the environment): its CURVE handshakes fail, it stays out.
    outsider = node_factory.start(*nodes.CLUSTER_TIMEOUT, join=cluster[0],
                                  env={"HYPERCACHE_CLUSTER_SECRET": "not the secret, but long enough"})

    # A raw zmq peer without the secret: a Hello, heartbeats and the takeover Commit.
    me = Member("f" * 40, "127.0.0.1", 1, free_port(), 1)
    takeover = SlotMap(int(epoch) + 1000, 2, (me,), ring.single(me.node_id))
    context = zmq.Context()
    pub, sub = context.socket(zmq.PUB), context.socket(zmq.SUB)
    try:
        pub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.LINGER, 0)
        pub.bind(f"tcp://127.0.0.1:{me.mesh_port}")
        sub.setsockopt(zmq.SUBSCRIBE, b"\xff" + encode(Hello(me.node_id, 0, me)))
        sub.connect(f"tcp://127.0.0.1:{cluster[1].mesh_port}")
        seq = time.time_ns() // 1000 + 10 ** 12
        deadline = time.monotonic() + 3 * NODE_TIMEOUT_S
        while time.monotonic() < deadline:       # the scenario: keep attacking for some node timeouts
            seq += 2
            pub.send(encode(Heartbeat(me.node_id, seq, 0, takeover.epoch, b"\0" * 20, me, (), 0, 0, 0.0)))
            pub.send(encode(Commit(me.node_id, seq + 1, takeover)))
            time.sleep(0.05)
    finally:
        pub.close(linger=0)
        sub.close(linger=0)
        context.term()

    assert agreed(cluster, 3) == epoch
    lines = nodes_lines(cluster[0])
    ids = {line[0] for line in lines if "master" in line[2]}
    assert len(ids) == 3 and all(me.node_id not in line for line in lines)
    assert cluster_info(outsider)["cluster_state"] == "fail"        # never given a map
    assert len(nodes_lines(outsider)) == 1                          # knows itself only
    r = cluster[0].client()
    assert call(cluster[0], "CLUSTER", "MYID").decode() in ids and r.ping()


def _start(*flags: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os
    port = nodes.node_ports()[0]
    return subprocess.run([sys.executable, "-m", "hypercache", "--port", str(port), "--http-port", "0", *flags],
                          cwd=REPO, capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


def test_a_node_will_not_open_its_mesh_beyond_loopback_without_a_secret():
    refused = _start("--host", "0.0.0.0")
    assert refused.returncode == 2 and "--mesh-insecure" in refused.stderr and "unauthenticated" in refused.stderr
    short = _start("--host", "0.0.0.0", env={"HYPERCACHE_CLUSTER_SECRET": "short"})
    assert short.returncode == 2 and "at least 16 bytes" in short.stderr


def test_a_node_opens_beyond_loopback_with_a_secret_or_when_told_insecure(node_factory: NodeFactory, tmp_path):
    closed = node_factory.start("--host", "0.0.0.0", "--cluster-secret-file", _secret_file(tmp_path, SECRET))
    assert closed.client().ping()
    insecure = node_factory.start("--host", "0.0.0.0", "--mesh-insecure")
    assert insecure.client().ping()


def test_the_first_node_restarted_without_join_is_taken_back(node_factory: NodeFactory, tmp_path: Path):
    """docker-compose's seed: no --join, its data dir kept. It must neither found a second cluster on its
    own one-member map nor stay out: the members that list it find it again and it takes their map."""
    flags = ("--cluster-secret-file", _secret_file(tmp_path, SECRET), *nodes.CLUSTER_TIMEOUT)
    cluster = node_factory.start_cluster(3, *flags)
    wait_until(lambda: agreed(cluster, 3), timeout=20, message=node_factory.logs)
    cluster[0] = node_factory.restart(cluster[0])
    epoch = wait_until(lambda: agreed(cluster, 3), timeout=30, message=node_factory.logs)
    assert "founding one" not in cluster[0].logs()
    rc = cluster[1].client()
    assert int(epoch) > 1 and rc.ping()


def test_a_whole_cluster_restart_founds_anew(node_factory: NodeFactory, tmp_path: Path):
    flags = ("--cluster-secret-file", _secret_file(tmp_path, SECRET), *nodes.CLUSTER_TIMEOUT)
    cluster = node_factory.start_cluster(3, *flags)
    wait_until(lambda: agreed(cluster, 3), timeout=20, message=node_factory.logs)
    for node in cluster:
        node.kill()
    cluster = [node_factory.restart(node) for node in cluster]
    wait_until(lambda: agreed(cluster, 3), timeout=30, message=node_factory.logs)
    assert "founding one" in cluster[0].logs()
