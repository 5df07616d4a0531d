"""The mesh closed with CURVE, on real zmq sockets: allowed peers join, unknown keys are refused by ZAP."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest
import zmq
from zmq.utils import z85

from mesh import curve
from mesh.bus import Mesh
from mesh.curve import MeshKeys, zap_verdict
from mesh.messages import digest
from mesh.slotmap import Member
from tests.integration.polling import wait_for

# runs alone (Makefile): meshes on 50 ms ticks and 600 ms timeouts in one process
pytestmark = pytest.mark.alone

TIMEOUT_MS = 600
BEAT_S = 0.05


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]




@pytest.fixture
def keys_dir(tmp_path: Path):
    """make(name, allow=[names]) -> MeshKeys: key pairs on disk, and per-node allow-list directories."""
    for name in ("a", "b", "c", "intruder"):
        curve.keygen(tmp_path / "pairs", name)

    def make(name: str, allow: list[str]) -> MeshKeys:
        allow_dir = tmp_path / f"allow-{name}"
        allow_dir.mkdir(exist_ok=True)
        for peer in allow:
            (allow_dir / f"{peer}.key").write_bytes((tmp_path / "pairs" / f"{peer}.key").read_bytes())
        return curve.load(tmp_path / "pairs" / f"{name}.key_secret", allow_dir)
    return make


class Meshes:
    def __init__(self) -> None:
        self.nodes: list[Mesh] = []

    def add(self, keys: MeshKeys, join: list[Mesh] = ()) -> Mesh:
        me = Member(keys.node_id, "127.0.0.1", _free_port(), _free_port(), 0)
        mesh = Mesh(me, [("127.0.0.1", j.me.mesh_port) for j in join], 1, TIMEOUT_MS, lambda: {},
                    lambda channel, message: None, heartbeat_interval_s=BEAT_S, keys=keys)
        mesh.start()
        self.nodes.append(mesh)
        return mesh

    def close(self) -> None:
        for mesh in self.nodes:
            mesh.stop()


@pytest.fixture
def meshes():
    m = Meshes()
    yield m
    m.close()


def _agreed(nodes: list[Mesh], members: int) -> bool:
    return (all(len(n.slotmap.members) == members for n in nodes)
            and len({digest(n.slotmap) for n in nodes}) == 1)


def test_allowed_peers_join_and_an_unknown_key_is_refused(keys_dir, meshes):
    everyone = ["a", "b", "c"]
    a = meshes.add(keys_dir("a", everyone))
    b = meshes.add(keys_dir("b", everyone), join=[a])
    c = meshes.add(keys_dir("c", everyone), join=[b])      # joins through b, learns a from gossip
    wait_for(lambda: _agreed([a, b, c], 3))
    # The SUBs that guessed other keys behind the join address were closed.
    assert all(len(mesh.links._subs) == 2 for mesh in (a, b, c))

    # An intruder that trusts a, but whose key nobody in the cluster allows.
    intruder = meshes.add(keys_dir("intruder", ["a", "intruder"]), join=[a])
    wait_for(lambda: a.links._zap.counters["denied"] >= 1)
    assert intruder.me.node_id not in {m.node_id for m in a.slotmap.members}
    assert intruder.me.node_id not in a.membership.peers
    assert not intruder.accepting_writes() and intruder.slotmap.members == (intruder.me,)
    assert a.links._zap.counters["allowed"] >= 2


def test_mesh_refuses_to_start_without_its_zap_handler(keys_dir):
    keys = keys_dir("a", ["a", "b"])
    me = Member(keys.node_id, "127.0.0.1", _free_port(), _free_port(), 0)
    mesh = Mesh(me, [], 1, TIMEOUT_MS, lambda: {}, lambda channel, message: None, keys=keys)
    # Someone else already serves ZAP in this mesh's context: our allow-list would not be asked.
    squatter = mesh.links._context.socket(zmq.REP)
    squatter.bind("inproc://zeromq.zap.01")
    try:
        with pytest.raises(zmq.ZMQError):
            mesh.start()
        assert not mesh.links.bound
    finally:
        squatter.close(linger=0)


def test_node_id_must_be_the_keys(keys_dir):
    keys = keys_dir("a", ["a"])
    me = Member("0" * 40, "127.0.0.1", _free_port(), _free_port(), 0)
    with pytest.raises(ValueError):
        Mesh(me, [], 1, TIMEOUT_MS, lambda: {}, lambda channel, message: None, keys=keys)


# -- the ZAP verdict (pure) ----------------------------------------------------------------

def _request(key: bytes, mechanism: bytes = b"CURVE", domain: bytes = curve.ZAP_DOMAIN) -> list[bytes]:
    return [b"1.0", b"7", domain, b"127.0.0.1", b"", mechanism, z85.decode(key)]


def test_zap_verdict_lets_in_allowed_curve_keys_only():
    allowed, _ = zmq.curve_keypair()
    other, _ = zmq.curve_keypair()
    keys = MeshKeys(allowed, b"", {curve.node_id_for(allowed): allowed})
    admits = lambda domain, key: keys.admits(domain, key, {})    # noqa: E731
    reply, key = zap_verdict(_request(allowed), admits)
    assert reply[:4] == [b"1.0", b"7", b"200", b"OK"] and key == allowed
    assert reply[4] == curve.node_id_for(allowed).encode()
    assert zap_verdict(_request(allowed, domain=curve.DATA_DOMAIN), admits)[0][2] == b"200"
    assert zap_verdict(_request(other), admits)[0][2] == b"400"
    assert zap_verdict(_request(allowed, mechanism=b"PLAIN"), admits)[0][2] == b"400"
    assert zap_verdict(_request(allowed, domain=b"other"), admits)[0][2] == b"400"
    assert zap_verdict([b"1.0", b"7"], admits)[0][2] == b"500"
    assert zap_verdict([b"2.0", b"7", b"", b"", b"", b"CURVE", b"x" * 32], admits)[0][2] == b"500"


def test_with_a_cluster_secret_the_data_channel_admits_only_keys_the_mesh_endorsed():
    one = curve.from_secret(b"s" * 32)
    member, stranger = curve.from_secret(b"s" * 32), curve.from_secret(b"t" * 32)
    endorsed = {member.node_id: member.public}
    admits = lambda domain, key: one.admits(domain, key, endorsed)    # noqa: E731
    assert zap_verdict(_request(member.public, domain=curve.DATA_DOMAIN), admits)[0][2] == b"200"
    assert zap_verdict(_request(stranger.public, domain=curve.DATA_DOMAIN), admits)[0][2] == b"400"
    # the mesh's SUBs take any publisher's key: its endorsement comes as its first message
    assert zap_verdict(_request(stranger.public), admits)[0][2] == b"200"
    assert one.endorses(member.public, member.endorsement(member.public))
    assert not one.endorses(stranger.public, stranger.endorsement(stranger.public))


# -- real node processes, keys made with `hypercache keygen` ---------------------------------

def _keygen(directory: Path, name: str) -> str:
    import subprocess
    import sys
    from tests.nodes import REPO
    out = subprocess.run([sys.executable, "-m", "hypercache", "keygen", str(directory), name],
                         cwd=REPO, capture_output=True, text=True, timeout=60, check=True).stdout
    return out.strip().splitlines()[-1].removeprefix("node id: ")


def test_node_processes_with_mesh_keys(node_factory, tmp_path: Path):
    from tests.nodes import agreed, cluster_info as info, nodes_lines
    from tests.nodes import wait_until
    pairs, allow, intruder_allow = tmp_path / "pairs", tmp_path / "allow", tmp_path / "intruder-allow"
    ids = {name: _keygen(pairs, name) for name in ("n0", "n1", "n2", "intruder")}
    for directory, names in ((allow, ("n0", "n1", "n2")), (intruder_allow, ("n0", "intruder"))):
        directory.mkdir()
        for name in names:
            (directory / f"{name}.key").write_bytes((pairs / f"{name}.key").read_bytes())

    def flags(name: str, allow_dir: Path) -> tuple[str, ...]:
        return ("--node-timeout-ms", "1500", "--mesh-secret-key-file", str(pairs / f"{name}.key_secret"),
                "--mesh-public-keys-dir", str(allow_dir))
    first = node_factory.start(*flags("n0", allow))
    nodes = [first] + [node_factory.start(*flags(n, allow), join=first) for n in ("n1", "n2")]
    wait_until(lambda: agreed(nodes, 3), timeout=20, message=node_factory.logs)
    # (the `master` lines: each member also has a `slave` line per replica endpoint)
    assert {line[0] for line in nodes_lines(first) if "master" in line[2]} == {ids["n0"], ids["n1"], ids["n2"]}

    intruder = node_factory.start(*flags("intruder", intruder_allow), join=first)
    wait_until(lambda: "mesh zap denied" in first.logs(), timeout=20, message=node_factory.logs)
    assert not any(ids["intruder"] in line for line in nodes_lines(first))
    assert info(intruder)["cluster_state"] == "fail"            # still joining: no map adopted
