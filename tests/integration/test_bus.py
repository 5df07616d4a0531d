"""The mesh bus over real zmq sockets on 127.0.0.1, several nodes in one process, polled with deadlines."""
import hashlib
import socket
import time

import gevent
import pytest
import zmq.green as zmq

from mesh.bus import NEWS_BEATS, Mesh
from mesh.messages import Hello, Leave, digest, encode
from mesh.slotmap import Member
from tests.integration.polling import wait_for

# runs alone (Makefile): meshes on 50 ms ticks and 600 ms timeouts in one process
pytestmark = pytest.mark.alone

TIMEOUT_MS = 600
BEAT_S = 0.05


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_id(index: int) -> str:
    return hashlib.sha1(f"bus-{index}-{time.time_ns()}".encode()).hexdigest()




class Cluster:
    def __init__(self) -> None:
        self.nodes: list[Mesh] = []
        self.published: dict[int, list[tuple[bytes, bytes]]] = {}

    def add(self, join: list[tuple[str, int]] | None = None, mesh_port: int | None = None,
            ballot_path=None) -> Mesh:
        index = len(self.nodes)
        me = Member(node_id(index), "127.0.0.1", free_port(), mesh_port or free_port(), free_port())
        inbox = self.published.setdefault(index, [])
        mesh = Mesh(me, join or [], 2, TIMEOUT_MS,
                    lambda: {"keys": 7, "used_memory": 100, "ops_per_sec": 1.5},
                    lambda channel, message: inbox.append((channel, message)),
                    heartbeat_interval_s=BEAT_S, ballot_path=ballot_path)
        mesh.start()
        self.nodes.append(mesh)
        return mesh

    def seed(self) -> tuple[str, int]:
        return ("127.0.0.1", self.nodes[0].me.mesh_port)

    def crash(self, mesh: Mesh) -> None:
        """Vanish without a Leave, as SIGKILL would."""
        gevent.killall(mesh._greenlets)
        mesh._placements.kill()
        if mesh.placer is not None:
            mesh.placer.close()
        mesh.links.close()
        self.nodes.remove(mesh)

    def agreed(self, members: int) -> bool:
        maps = [mesh.slotmap for mesh in self.nodes]
        return (all(len(m.members) == members for m in maps)
                and len({digest(m) for m in maps}) == 1)

    def close(self) -> None:
        for mesh in self.nodes:
            mesh.stop()


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.close()


def test_lone_node_is_a_one_member_cluster(cluster):
    mesh = cluster.add()
    assert mesh.slotmap.epoch == 0 and mesh.slotmap.members == (mesh.me,)
    assert mesh.accepting_writes()


def test_three_nodes_joined_through_one_agree_on_one_map(cluster):
    cluster.add()
    cluster.add([cluster.seed()])
    cluster.add([cluster.seed()])
    wait_for(lambda: cluster.agreed(3))
    epoch = cluster.nodes[0].slotmap.epoch
    assert all(len(mesh.membership.peers) == 2 for mesh in cluster.nodes)
    # Every member hears every other one directly, and reports its stats.
    wait_for(lambda: all(m["keys"] == 7 for mesh in cluster.nodes for m in mesh.status()["members"].values()))
    status = cluster.nodes[1].status()
    assert status["epoch"] == epoch and status["accepting_writes"]
    assert any(e["kind"] == "epoch" for e in status["events"])


def test_leave_is_committed_quickly(cluster):
    cluster.add()
    cluster.add([cluster.seed()])
    cluster.add([cluster.seed()])
    wait_for(lambda: cluster.agreed(3))
    leaver = cluster.nodes[2]
    leaver.stop()
    cluster.nodes.remove(leaver)
    started = time.monotonic()
    wait_for(lambda: cluster.agreed(2))
    assert time.monotonic() - started < TIMEOUT_MS / 1000 * 3


def test_crashed_node_is_declared_dead_and_its_slots_move(cluster):
    cluster.add()
    cluster.add([cluster.seed()])
    cluster.add([cluster.seed()])
    wait_for(lambda: cluster.agreed(3))
    victim = cluster.nodes[1]
    before = cluster.nodes[0].slotmap
    cluster.crash(victim)
    wait_for(lambda: cluster.agreed(2))
    after = cluster.nodes[0].slotmap
    assert after.epoch > before.epoch and not after.has_member(victim.me.node_id)
    kinds = {(e["kind"], e["node"]) for e in cluster.nodes[0].status()["events"]}
    assert ("dead", victim.me.node_id) in kinds
    assert all(mesh.accepting_writes() for mesh in cluster.nodes)


def test_a_dead_member_out_of_the_map_is_forgotten_with_its_links(cluster):
    cluster.add()
    cluster.add([cluster.seed()])
    victim = cluster.add([cluster.seed()])
    wait_for(lambda: cluster.agreed(3))
    gone = victim.me.node_id
    cluster.crash(victim)
    wait_for(lambda: cluster.agreed(2))

    def forgotten(mesh: Mesh) -> bool:
        return (gone not in mesh.membership.peers and gone not in mesh.status()["members"]
                and all(mesh.links._sub_ids.get(a) != gone and gone not in a for a in mesh.links._subs))
    wait_for(lambda: all(forgotten(mesh) for mesh in cluster.nodes), timeout_s=30)
    assert cluster.agreed(2)


def test_minority_stops_accepting_writes(cluster):
    cluster.add()
    cluster.add([cluster.seed()])
    cluster.add([cluster.seed()])
    wait_for(lambda: cluster.agreed(3))
    survivor = cluster.nodes[0]
    for victim in list(cluster.nodes[1:]):
        cluster.crash(victim)
    wait_for(lambda: not survivor.accepting_writes())
    # A minority cannot commit a map without the others. What is checked is that
    # nothing happens, so the wait itself is the scenario: two node timeouts.
    gevent.sleep(TIMEOUT_MS / 1000 * 2)
    assert len(survivor.slotmap.members) == 3


def test_a_node_nobody_hears_refuses_writes_before_the_majority_takes_its_slots(cluster):
    """One-way loss: everything this node sends is lost, everything sent to it arrives.

    It still hears a majority, so a lease made of arrivals alone kept it
    accepting writes after the others had declared it dead and committed a map
    without it. The lease also needs the majority's echoes of its own recent
    heartbeats (mesh/lease.py): at the instant a majority member adopts the map
    without it, it must already refuse writes. (The namespace version with
    real packet loss: tests/integration/test_partition_stall.py.)
    """
    cluster.add()
    cluster.add([cluster.seed()])
    cluster.add([cluster.seed()])
    wait_for(lambda: cluster.agreed(3))
    mute = cluster.nodes[0]
    seen: list[tuple[bool, float]] = []     # at each adoption of a map without it: (it accepted writes, its silence)
    for other in cluster.nodes[1:]:
        def adopt(slotmap, other=other, adopt=other._adopt):
            if not slotmap.has_member(mute.me.node_id) and other.slotmap.has_member(mute.me.node_id):
                now = time.monotonic()
                heard = max(now - mute.membership.peers[n.me.node_id].heard_at for n in cluster.nodes[1:])
                seen.append((mute.accepting_writes(), heard))
            adopt(slotmap)
        other._adopt = adopt
    wait_for(mute.accepting_writes)      # (right after a join the lease may wait for a heartbeat's echo)
    mute.links.send = lambda message: None
    wait_for(lambda: len(seen) == 2, timeout_s=10)
    print(f"\nat the majority's commits without it: accepting writes {[a for a, _ in seen]}, "
          f"its last heartbeat from them {max(h for _, h in seen) * 1000:.0f} ms old")
    assert [accepting for accepting, _ in seen] == [False, False]
    assert max(h for _, h in seen) < TIMEOUT_MS / 1000     # it did hear them: not a lease lost for deafness


def test_publish_reaches_every_other_node(cluster):
    cluster.add()
    cluster.add([cluster.seed()])
    cluster.add([cluster.seed()])
    wait_for(lambda: cluster.agreed(3))
    cluster.nodes[1].publish(b"news", b"hello")
    wait_for(lambda: cluster.published[0] == [(b"news", b"hello")] == cluster.published[2])
    assert cluster.published[1] == []


def test_meet_joins_a_lone_node(cluster):
    first = cluster.add()
    second = cluster.add()
    second.meet("127.0.0.1", first.me.mesh_port)
    wait_for(lambda: cluster.agreed(2))


def test_a_new_node_on_a_dead_members_address_is_heard(cluster):
    # A replaced container, or a restart without --data-dir: same host and mesh port, new node id.
    cluster.add()
    cluster.add([cluster.seed()])
    victim = cluster.add([cluster.seed()])
    wait_for(lambda: cluster.agreed(3))
    cluster.crash(victim)
    wait_for(lambda: cluster.agreed(2))
    replacement = cluster.add([cluster.seed()], mesh_port=victim.me.mesh_port)
    assert replacement.me.node_id != victim.me.node_id
    wait_for(lambda: cluster.agreed(3) and replacement.slotmap.has_member(replacement.me.node_id))
    # The SUB bound to the dead member's id is closed: one link per address remains.
    port = victim.me.mesh_port
    wait_for(lambda: all([a[2] for a in mesh.links._subs if a[1] == port] == [replacement.me.node_id]
                         for mesh in cluster.nodes[:2]))


def test_a_hello_with_an_unusable_host_is_dropped_and_joins_still_work(cluster):
    # zmq refuses to connect to "bad host": that must not end the reader of hellos.
    seed = cluster.add()
    rogue_id = node_id(97)
    hello = Hello(rogue_id, 0, Member(rogue_id, "bad host", 1, 2, 3))
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"\xff" + encode(hello))
    sub.connect(f"tcp://127.0.0.1:{seed.me.mesh_port}")
    try:
        wait_for(lambda: seed.counters["invalid"] >= 1)
        cluster.add([cluster.seed()])
        wait_for(lambda: cluster.agreed(2))
        assert rogue_id not in seed.membership.peers
    finally:
        sub.close(linger=0)


@pytest.fixture
def rogue(cluster):
    """A mesh node subscribed to a bare PUB posing as member 99: (mesh, the PUB)."""
    mesh = cluster.add()
    pub = zmq.Context.instance().socket(zmq.PUB)
    port = free_port()
    pub.bind(f"tcp://127.0.0.1:{port}")
    try:
        mesh.links.connect("127.0.0.1", port, node_id(99))
        yield mesh, pub
    finally:
        pub.close(linger=0)


def test_garbage_and_impersonation_are_dropped_and_counted(rogue):
    mesh, pub = rogue
    wait_for(lambda: _send_until_counted(pub, mesh))
    assert mesh.counters["invalid_not_msgpack"] >= 1
    assert mesh.slotmap.epoch == 0


def test_a_peer_cannot_speak_for_another(rogue):
    mesh, pub = rogue
    forged = encode(Leave(node_id(98), 10**18, 5))
    wait_for(lambda: _send_until_counted(pub, mesh, forged, "invalid_impersonation"))


def _send_until_counted(rogue, mesh, data=b"\xc1garbage", counter="invalid") -> bool:
    # A PUB drops messages until the subscription has arrived: keep sending.
    rogue.send(data)
    return mesh.counters[counter] >= 1


def test_a_first_node_restarted_without_join_is_taken_back(cluster, tmp_path):
    # The first node has no --join: restarted (same id and address), nothing names its cluster to it
    # but the members that still list it. They find it again (their SUBs re-send their Hellos), and it
    # takes their map once a majority of its other members hold a map that lists it (mesh/adoption.py).
    from tests.nodes import free_port as port_below_ephemeral     # no outgoing connection takes it meanwhile
    first = cluster.add(mesh_port=port_below_ephemeral(), ballot_path=tmp_path / "first.json")
    cluster.add([cluster.seed()])
    cluster.add([cluster.seed()])
    wait_for(lambda: cluster.agreed(3))
    cluster.crash(first)
    again = Mesh(first.me, [], 2, TIMEOUT_MS, lambda: {}, lambda channel, message: None,
                 heartbeat_interval_s=BEAT_S, ballot_path=tmp_path / "first.json")
    deadline = time.monotonic() + 10
    while True:     # zmq closes the old socket in its I/O thread: the port frees a moment later
        try:
            again.start()
            break
        except zmq.ZMQError:
            if time.monotonic() > deadline:
                raise
            gevent.sleep(0.05)
    cluster.nodes.append(again)
    wait_for(lambda: cluster.agreed(3) and again.slotmap.epoch > 0, timeout_s=20)


def test_a_big_map_hears_its_watchers_only_and_they_decide_a_death(cluster):
    """11 members (over 2 * SIDE + 1): the quiet heartbeats reach the 8 watchers only (zmq's topic
    filter, mesh/links.py), and a crashed member is declared dead by its watchers' verdict."""
    from mesh import watch
    seed = cluster.add()
    for _ in range(10):
        cluster.add(join=[cluster.seed()])
    wait_for(lambda: cluster.agreed(11), timeout_s=60)
    listener = cluster.nodes[3]
    watched = watch.neighbours([m.node_id for m in listener.slotmap.members], listener.me.node_id)
    others = {m.me.node_id for m in cluster.nodes} - watched - {listener.me.node_id}
    assert len(watched) == 2 * watch.SIDE and len(others) == 2
    # Idle (no news for a while): only the watchers' heartbeats still arrive.
    wait_for(lambda: all(not m.membership.gossip(m._clock(), NEWS_BEATS * BEAT_S) and m._clock() > m._news_until + BEAT_S
                         for m in cluster.nodes), timeout_s=10)
    before = dict(listener.links.received)
    gevent.sleep(20 * BEAT_S)     # a measurement window: who is heard in it, not a wait for a condition
    counts = {n: listener.links.received[n] - before.get(n, 0) for n in listener.links.received}
    heard = {n for n, count in counts.items() if count > 0}
    assert watched <= heard and not heard & others, (heard, others)
    # With nothing new to say, a member beats every node_timeout / 6 (0.1 s here), not at each of
    # its timer's ticks (0.05 s): at most ~10 heartbeats each in these 20 ticks, never 20.
    assert max(counts[n] for n in watched) <= 13, counts

    victim = next(m for m in cluster.nodes if m.me.node_id in others and m is not seed)
    cluster.crash(victim)
    wait_for(lambda: cluster.agreed(10) and not any(m.slotmap.has_member(victim.me.node_id)
                                                     for m in cluster.nodes), timeout_s=30)
    assert listener.membership.state(victim.me.node_id) == "dead"
