"""Attacks on the mesh by a real zmq peer: forged Commit, stranger heartbeats, seq poisoning, forged Leave and
Publish, replay. Each runs against three in-process meshes on real sockets.

Each attack that a closed mesh must refuse is also run against an open mesh
(no secret, no keys: what `--mesh-insecure` runs), where it must work: that is
what shows the attack is real and the closed test can fail. The forged Commit
and the replayed map are refused even on an open mesh (maps need proof), and by
an insider holding an allowed per-node CURVE key.
"""
from __future__ import annotations

import hashlib
import socket
import time
from dataclasses import replace
from pathlib import Path

import gevent
import pytest
import zmq.green as zmq
from zmq.utils.monitor import parse_monitor_message

from mesh import curve, ring
from mesh.bus import Mesh
from mesh.curve import MeshKeys
from mesh.links import CATCH_UP, OUTSIDE, QUIET
from mesh.messages import Commit, Endorse, Heartbeat, Hello, Leave, Message, Publish, State, decode, digest, encode
from mesh.slotmap import Member, SlotMap
from tests.integration.polling import wait_for

# runs alone (Makefile): meshes on 50 ms ticks and 600 ms timeouts in one process
pytestmark = pytest.mark.alone

TIMEOUT_MS = 600
BEAT_S = 0.05
SECRET = b"correct horse battery staple, 2026"
# Some node timeouts: how long "nothing happened" is watched for once the attack got through.
WATCH_S = 3 * TIMEOUT_MS / 1000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _node_id(label: str) -> str:
    return hashlib.sha1(f"attack-{label}-{time.time_ns()}".encode()).hexdigest()


class Cluster:
    """Three meshes in this process, all with the same kind of keys (None: an open mesh)."""

    def __init__(self, keys: list[MeshKeys | None]) -> None:
        self.nodes: list[Mesh] = []
        self.published: list[list[tuple[bytes, bytes]]] = []
        try:
            for index, node_keys in enumerate(keys):
                node_id = node_keys.node_id if node_keys is not None else _node_id(str(index))
                me = Member(node_id, "127.0.0.1", _free_port(), _free_port(), 0)
                inbox: list[tuple[bytes, bytes]] = []
                join = [("127.0.0.1", self.nodes[0].me.mesh_port)] if self.nodes else []
                mesh = Mesh(me, join, 2, TIMEOUT_MS, lambda: {},
                            lambda channel, message, inbox=inbox: inbox.append((channel, message)),
                            heartbeat_interval_s=BEAT_S, keys=node_keys)
                mesh.start()
                self.nodes.append(mesh)
                self.published.append(inbox)
            wait_for(lambda: self.agreed(len(keys)), timeout_s=20)
        except BaseException:
            self.close()
            raise

    def agreed(self, members: int) -> bool:
        maps = [mesh.slotmap for mesh in self.nodes]
        return all(len(m.members) == members for m in maps) and len({digest(m) for m in maps}) == 1

    def close(self) -> None:
        for mesh in self.nodes:
            mesh.stop()


class Attacker:
    """A real zmq peer: an XPUB it publishes on, and a SUB whose subscription is a Hello naming `claimed`.

    The Hello makes the victim subscribe back to the XPUB, bound to the claimed
    id: the way a new node joins, and the way the issue's attacker got in.
    `keys`: the attacker's own CURVE pair (an insider's allowed key); `server_key`
    the victim's key it pins. With keys from a cluster secret (a holder's, or a
    wrong secret's), it plays the secret mode's roles (mesh/curve.py): its PUB a
    client of the cluster key that greets with its endorsement, its SUB a server.
    """

    def __init__(self, victim: Mesh | None, claimed: str, keys: MeshKeys | None = None,
                 server_key: bytes | None = None) -> None:
        self.context = zmq.Context()
        self.port = _free_port()
        self.member = Member(claimed, "127.0.0.1", 1, self.port, 1)
        self.pub = self.context.socket(zmq.XPUB)
        self.sub = self.context.socket(zmq.SUB)
        for sock in (self.pub, self.sub):
            sock.setsockopt(zmq.LINGER, 0)
        self.handshake_failures = 0
        self._monitor = None
        if keys is not None and keys.shared:
            self.pub.setsockopt(zmq.CURVE_SERVERKEY, keys.cluster_public)
            self.pub.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
            self.pub.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
            self.pub_welcome = encode(Endorse(keys.node_id, 0, keys.public, keys.endorsement(keys.public)))
            self.pub.setsockopt(zmq.XPUB_WELCOME_MSG, self.pub_welcome)
            self.sub.setsockopt(zmq.CURVE_SERVER, 1)
            self.sub.setsockopt(zmq.CURVE_PUBLICKEY, keys.cluster_public)
            self.sub.setsockopt(zmq.CURVE_SECRETKEY, keys.cluster_secret)
            # the victim's XPUB (a client of the real cluster key) fails its handshake with a wrong one here
            self._monitor = self.sub.get_monitor_socket()
        elif keys is not None:
            self.pub.setsockopt(zmq.CURVE_SERVER, 1)
            self.pub.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
            self.pub.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
            self.sub.setsockopt(zmq.CURVE_SERVERKEY, server_key)
            self.sub.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
            self.sub.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
        self.pub.bind(f"tcp://127.0.0.1:{self.port}")
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.setsockopt(zmq.SUBSCRIBE, b"\xff" + encode(Hello(claimed, 0, self.member)))
        if victim is not None:
            self.sub.connect(f"tcp://127.0.0.1:{victim.me.mesh_port}")
        # Above every real member's (they start from the wall clock in microseconds).
        self.seq = time.time_ns() // 1000 + 10 ** 12

    def refused(self) -> bool:
        """A victim failed its CURVE handshake with this attacker's SUB (secret mode)."""
        if self._monitor is None:
            return False
        try:
            while True:
                event = parse_monitor_message(self._monitor.recv_multipart(zmq.NOBLOCK))["event"]
                if event in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_AUTH,
                             zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
                    self.handshake_failures += 1
        except zmq.Again:
            pass
        return self.handshake_failures > 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def heartbeat(self, epoch: int = 0, map_digest: bytes = b"\0" * 20, seq: int | None = None,
                  sender: str | None = None) -> Heartbeat:
        sender = sender or self.member.node_id
        return Heartbeat(sender, self.next_seq() if seq is None else seq, 0, epoch, map_digest,
                         replace(self.member, node_id=sender), (), 0, 0, 0.0)

    def keep_sending(self, messages: list[Message], until, timeout_s: float = 10.0) -> bool:
        """Publish `messages` (fresh sequence numbers each round) until `until()` or the deadline."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in messages:
                if message.seq != 2 ** 62:
                    message = replace(message, seq=self.next_seq())
                self.pub.send(encode(message))
            if until():
                return True
            gevent.sleep(0.02)
        return False

    def listen(self, timeout_s: float) -> list[bytes]:
        """Whatever the victim publishes to this SUB within timeout_s."""
        got: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                got.append(self.sub.recv(zmq.NOBLOCK))
            except zmq.Again:
                gevent.sleep(0.02)
        return got

    def close(self) -> None:
        if self._monitor is not None:
            self.sub.disable_monitor()
            self._monitor.close(linger=0)
        self.pub.close(linger=0)
        self.sub.close(linger=0)
        self.context.term()


def _reached(victim: Mesh, forged: SlotMap) -> bool:
    """The forged map arrived: it waits for proof (or, without proof, was adopted)."""
    return digest(forged) in getattr(victim, "_pending", {}) or victim.slotmap.epoch == forged.epoch


def _takeover_map(current: SlotMap, attacker: Member) -> SlotMap:
    """The issue's map: epoch + 1000, the attacker the only member, every slot its own."""
    return SlotMap(current.epoch + 1000, current.replication_factor, (attacker,), ring.single(attacker.node_id))


@pytest.fixture
def pairs(tmp_path: Path):
    """Per-node CURVE key pairs, everyone (the insider too) on everyone's allow-list."""
    names = ("a", "b", "c", "insider")
    for name in names:
        curve.keygen(tmp_path / "pairs", name)
    allow = tmp_path / "allow"
    allow.mkdir()
    for name in names:
        (allow / f"{name}.key").write_bytes((tmp_path / "pairs" / f"{name}.key").read_bytes())
    return {name: curve.load(tmp_path / "pairs" / f"{name}.key_secret", allow) for name in names}


@pytest.fixture
def open_cluster():
    cluster = Cluster([None, None, None])
    yield cluster
    cluster.close()


@pytest.fixture
def closed_cluster():
    cluster = Cluster([curve.from_secret(SECRET) for _ in range(3)])   # (each member its own pair)
    yield cluster
    cluster.close()


@pytest.fixture(params=["open", "closed"])
def cluster(request):
    """An open mesh (the attack must work: the test can fail) and one closed with a cluster secret."""
    made = Cluster([curve.from_secret(SECRET) if request.param == "closed" else None for _ in range(3)])
    yield made
    made.close()


@pytest.fixture
def attackers():
    made: list[Attacker] = []

    def make(*args, **kwargs) -> Attacker:
        made.append(Attacker(*args, **kwargs))
        return made[-1]
    yield make
    for attacker in made:
        attacker.close()


def _outsider(cluster: Cluster, attackers, claimed: str) -> Attacker:
    """An attacker at the first node: no keys on an open mesh; keys from a wrong secret on a closed one."""
    victim = cluster.nodes[0]
    if victim.links._keys is None:
        return attackers(victim, claimed)
    return attackers(victim, claimed, keys=curve.from_secret(b"a guess at the cluster secret!!"))


def _refused(cluster: Cluster, attacker: Attacker | None = None) -> bool:
    """The victim turned the attacker away: its ZAP handler (an attacker's key), or the CURVE
    handshake of its XPUB with the attacker's SUB (a wrong cluster secret)."""
    return cluster.nodes[0].links._zap.counters["denied"] >= 1 or (attacker is not None and attacker.refused())


# -- a forged Commit --------------------------------------------------------------------------

def test_a_forged_commit_is_not_adopted_even_on_an_open_mesh(open_cluster, attackers):
    victim = open_cluster.nodes[0]
    before = victim.slotmap
    attacker = attackers(victim, _node_id("outsider"))
    forged = _takeover_map(before, attacker.member)
    # It vouches for its own map too: one voice, and not a member of the map the victim holds.
    sent = attacker.keep_sending([Commit(attacker.member.node_id, 0, forged),
                                  attacker.heartbeat(forged.epoch, digest(forged))],
                                 until=lambda: _reached(victim, forged))
    assert sent, "the forged Commit never reached the victim"
    gevent.sleep(WATCH_S)       # the scenario: heartbeats of the real members go on, nothing vouches
    # (an open mesh may take the attacker in as a member by its heartbeats: a later test's business)
    assert all(mesh.slotmap.epoch < forged.epoch for mesh in open_cluster.nodes)
    assert all(len(mesh.slotmap.members) >= 3 for mesh in open_cluster.nodes)


def test_an_insider_with_an_allowed_key_cannot_install_a_map(pairs, attackers):
    cluster = Cluster([pairs["a"], pairs["b"], pairs["c"]])
    try:
        victim = cluster.nodes[0]
        before = victim.slotmap
        insider = attackers(victim, pairs["insider"].node_id, keys=pairs["insider"],
                            server_key=victim.links._keys.public)
        forged = _takeover_map(before, insider.member)
        sent = insider.keep_sending([Commit(insider.member.node_id, 0, forged),
                                     insider.heartbeat(forged.epoch, digest(forged))],
                                    until=lambda: _reached(victim, forged))
        assert sent, "the insider's Commit never reached the victim"
        gevent.sleep(WATCH_S)
        # (its allowed key may make it a member by its heartbeats, as any allowed node joins: no takeover)
        assert all(mesh.slotmap.epoch < forged.epoch for mesh in cluster.nodes)
        assert all(len(mesh.slotmap.members) >= 3 for mesh in cluster.nodes)
        assert victim.links._zap.counters["denied"] == 0     # it was let in: the proof refused it
    finally:
        cluster.close()


# -- strangers, poisoned sequence numbers, forged Leave and Publish -------------------------------

def test_a_stranger_sending_heartbeats_becomes_no_member(cluster, attackers):
    closed = cluster.nodes[0].links._keys is not None
    victim = cluster.nodes[0]
    stranger = _node_id("stranger")
    attacker = _outsider(cluster, attackers, stranger)
    joined = attacker.keep_sending([attacker.heartbeat()],
                                   until=lambda: victim.membership.peers.get(stranger) is not None
                                   and victim.membership.peers[stranger].seq > 0
                                   or (closed and _refused(cluster, attacker)))
    assert joined
    if not closed:
        # The open mesh takes it in: that is the attack the closed mesh must refuse.
        assert victim.membership.peers[stranger].seq > 0
        return
    attacker.keep_sending([attacker.heartbeat()], until=lambda: False, timeout_s=WATCH_S)
    assert all(stranger not in mesh.membership.peers for mesh in cluster.nodes)
    assert all(len(mesh.slotmap.members) == 3 for mesh in cluster.nodes)


def test_a_poisoned_sequence_number_does_not_silence_a_member(cluster, attackers):
    closed = cluster.nodes[0].links._keys is not None
    victim, target = cluster.nodes[0], cluster.nodes[1].me.node_id
    attacker = _outsider(cluster, attackers, target)       # a Hello claiming a live member's id
    poison = attacker.heartbeat(seq=2 ** 62, sender=target)
    poisoned = attacker.keep_sending([poison], until=lambda: victim.links._last_seq.get(target) == 2 ** 62
                                     or (closed and _refused(cluster, attacker)))
    assert poisoned
    if not closed:
        # The open mesh now drops the member's real messages as duplicates, and finds it silent.
        wait_for(lambda: victim.membership.state(target) != State.ALIVE)
        return
    attacker.keep_sending([poison], until=lambda: False, timeout_s=WATCH_S)
    assert victim.links._last_seq[target] < 2 ** 62
    assert victim.membership.state(target) == State.ALIVE and cluster.agreed(3)


def test_a_forged_leave_kills_no_member(cluster, attackers):
    closed = cluster.nodes[0].links._keys is not None
    victim, target = cluster.nodes[0], cluster.nodes[1].me.node_id
    attacker = _outsider(cluster, attackers, target)
    forged = Leave(target, 0, 10 ** 6)
    done = attacker.keep_sending([forged], until=lambda: victim.membership.state(target) == State.DEAD
                                 or (closed and _refused(cluster, attacker)))
    assert done
    if not closed:
        return      # the open mesh took it: the member is dead in the victim's view
    attacker.keep_sending([forged], until=lambda: False, timeout_s=WATCH_S)
    assert all(mesh.membership.state(target) == State.ALIVE for mesh in cluster.nodes if mesh.me.node_id != target)
    assert cluster.agreed(3)


def test_a_forged_publish_reaches_no_subscriber(cluster, attackers):
    closed = cluster.nodes[0].links._keys is not None
    inbox = cluster.published[0]
    attacker = _outsider(cluster, attackers, _node_id("publisher"))
    forged = Publish(attacker.member.node_id, 0, b"orders", b"sell everything")
    done = attacker.keep_sending([forged], until=lambda: (b"orders", b"sell everything") in inbox
                                 or (closed and _refused(cluster, attacker)))
    assert done
    if not closed:
        return
    attacker.keep_sending([forged], until=lambda: False, timeout_s=WATCH_S)
    assert inbox == []
    # And the real fan-out still works on the closed mesh.
    cluster.nodes[1].publish(b"orders", b"hold")
    wait_for(lambda: inbox == [(b"orders", b"hold")])


def test_an_outsider_cannot_even_listen_to_a_closed_mesh(closed_cluster, attackers):
    attacker = _outsider(closed_cluster, attackers, _node_id("listener"))
    wait_for(lambda: _refused(closed_cluster, attacker))
    assert attacker.listen(WATCH_S) == []


# -- replay ------------------------------------------------------------------------------------

def _untagged(data: bytes) -> bytes:
    """The message behind a topic byte (mesh/links.py: maps sent again travel under CATCH_UP)."""
    return data[1:] if data[:1] in (CATCH_UP, QUIET, OUTSIDE) else data


def test_a_replayed_old_map_is_not_adopted_by_a_node_that_comes_back(open_cluster, attackers):
    """An open mesh even: anyone can record, and a restarted node remembers no sequence numbers.

    The attacker records a member's genuine Commit and heartbeat at epoch E; the
    cluster moves on (a member leaves); a node joining through the seed is then
    fed the recording. Before maps needed proof, it adopted the stale map."""
    seed, member = open_cluster.nodes[0], open_cluster.nodes[2]
    listener = zmq.Context.instance().socket(zmq.SUB)
    listener.setsockopt(zmq.SUBSCRIBE, b"")
    listener.setsockopt(zmq.LINGER, 0)
    listener.connect(f"tcp://127.0.0.1:{member.me.mesh_port}")
    stale = member.slotmap
    recorded: dict[type, bytes] = {}
    try:
        def record() -> bool:
            # a Commit is what it sends a node behind (under CATCH_UP to one of an older version)
            member.links.send(Commit(member.me.node_id, member._next_seq(), member.slotmap), CATCH_UP)
            try:
                while True:
                    data = listener.recv(zmq.NOBLOCK)
                    message = decode(_untagged(data))
                    if isinstance(message, (Commit, Heartbeat)) and message.sender == member.me.node_id:
                        recorded.setdefault(type(message), data)
            except zmq.Again:
                pass
            return len(recorded) == 2
        wait_for(record)
    finally:
        listener.close(linger=0)
    leaver = open_cluster.nodes[1]
    leaver.stop()
    open_cluster.nodes.remove(leaver)
    wait_for(lambda: open_cluster.agreed(2))
    assert seed.slotmap.epoch > stale.epoch

    # A node is about to join through the seed; the attacker, posing as the recorded member, replays
    # to it (in seq order: the joiner holds no sequence numbers yet).
    me = Member(_node_id("joiner"), "127.0.0.1", _free_port(), _free_port(), 0)
    joiner = Mesh(me, [("127.0.0.1", seed.me.mesh_port)], 2, TIMEOUT_MS, lambda: {}, lambda c, m: None,
                  heartbeat_interval_s=BEAT_S)
    replayer = Attacker(None, member.me.node_id)
    replay = sorted(recorded.values(), key=lambda data: decode(_untagged(data)).seq)
    try:
        joiner.links.connect("127.0.0.1", replayer.port, member.me.node_id)
        last = decode(_untagged(replay[-1])).seq
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and joiner.links._last_seq.get(member.me.node_id, -1) < last:
            for data in replay:
                replayer.pub.send(data)
            gevent.sleep(0.02)
        assert joiner.links._last_seq.get(member.me.node_id, -1) >= last, "the replay never reached the joiner"
        joiner.start()
        open_cluster.nodes.append(joiner)
        wait_for(lambda: open_cluster.agreed(3), timeout_s=20)
        adopted = [e["text"] for e in joiner.status()["events"] if e["kind"] == "epoch"]
        assert not any(text.startswith(f"epoch {stale.epoch}:") for text in adopted), adopted
    finally:
        replayer.close()


# -- one member speaking for another: neither a holder of the secret nor of an allowed key can ---------

@pytest.mark.parametrize("mode", ["shared secret", "per-node keys"])
def test_an_insider_cannot_speak_for_another_member(mode, pairs, attackers):
    """An insider (holding the secret, or an allowed key pair of its own) forges a Leave of a live member.

    A Hello naming the target makes the victim subscribe to the insider, bound
    to the target's id. With per-node keys that SUB pins the target's key,
    which the insider lacks: nothing arrives. With the secret, the victim's SUB
    is the CURVE server and the insider's own key is what the handshake proves
    (its id, endorsed by the secret: it is let in), so its messages arrive
    stamped with its own id, not the target's, and are dropped as
    impersonation. Before members had keys of their own (every member held the
    one pair derived from the secret), the same Leave killed the target in the
    victim's view. Under its own id, a Leave naming the target is dropped too.
    """
    if mode == "shared secret":
        keys, insider_keys = [curve.from_secret(SECRET) for _ in range(3)], curve.from_secret(SECRET)
    else:
        keys, insider_keys = [pairs["a"], pairs["b"], pairs["c"]], pairs["insider"]
    cluster = Cluster(keys)
    try:
        victim, target = cluster.nodes[0], cluster.nodes[1].me.node_id
        impostor = attackers(victim, target, keys=insider_keys, server_key=victim.links._keys.public)
        forged = Leave(target, 0, 10 ** 6)
        impersonations = victim.links.counters["invalid_impersonation"]
        if mode == "shared secret":
            # it got in (the secret admits it) and spoke: dropped, because its key is not the target's
            assert impostor.keep_sending([forged], until=lambda: victim.links.counters["invalid_impersonation"]
                                         > impersonations or victim.membership.state(target) == State.DEAD)
        killed = impostor.keep_sending([forged], until=lambda: victim.membership.state(target) == State.DEAD,
                                       timeout_s=WATCH_S)
        outcome = "killed it in the victim's view" if killed else "changed nothing"
        print(f"\n{mode}: an insider's forged Leave of a live member {outcome} "
              f"(dropped as impersonation: {victim.links.counters['invalid_impersonation'] - impersonations})")
        assert not killed
        in_own_name = attackers(victim, insider_keys.node_id, keys=insider_keys, server_key=victim.links._keys.public)
        assert in_own_name.keep_sending([forged], until=lambda: victim.links.counters["invalid_impersonation"]
                                        > impersonations + (1 if mode == "shared secret" else 0))
        assert victim.membership.state(target) == State.ALIVE and cluster.agreed(3)
        if mode == "shared secret":
            assert victim.links.endorsed.get(insider_keys.node_id) == insider_keys.public
    finally:
        cluster.close()
