"""Room for a full map's peers on real zmq sockets: a SUB for each of ~1,000 peers, and a clear refusal,
never an exception, for a peer beyond the room a low open-file limit leaves (hypercache/open_files.py)."""
from __future__ import annotations

import collections
import hashlib
import logging
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mesh.links import PeerLinks
from mesh.slotmap import Member
from tests.nodes import free_port

REPO = Path(__file__).resolve().parents[2]
# Peers at a documentation address (RFC 5737) that nothing answers: zmq connects lazily and keeps
# trying, so each SUB is real, and no process of this machine can take their hellos for a member.
NOWHERE = "192.0.2.1"


def _member(label: str, host: str, mesh_port: int) -> Member:
    return Member(hashlib.sha1(label.encode()).hexdigest(), host, mesh_port - 10000, mesh_port, 0)


def test_peers_past_the_meshs_room_are_refused_counted_and_said_once(caplog):
    me = _member("crowded", "127.0.0.1", free_port())
    peers = [_member(f"peer {i}", NOWHERE, 20000 + i) for i in range(3)]
    counters: collections.Counter[str] = collections.Counter()
    links = PeerLinks(me, "127.0.0.1", None, lambda message: None, lambda member, by_address: None, counters, max_peers=2)
    links.open()
    try:
        with caplog.at_level(logging.WARNING, logger="mesh.links"):
            for peer in peers + peers[2:]:      # the third twice (each map adopted connects again)
                links.connect(peer.host, peer.mesh_port, peer.node_id)
        assert len(links._subs) == 2
        assert counters["peers_refused"] == 1
        said = [record.getMessage() for record in caplog.records if "not subscribed" in record.getMessage()]
        assert len(said) == 1 and f":{peers[2].mesh_port} " in said[0] and "ulimit -n" in said[0]
    finally:
        links.close()


def test_the_address_a_node_was_told_to_join_is_subscribed_to_past_the_room():
    me = _member("crowded joiner", "127.0.0.1", free_port())
    peer = _member("a member", NOWHERE, 20010)
    counters: collections.Counter[str] = collections.Counter()
    links = PeerLinks(me, "127.0.0.1", None, lambda message: None, lambda member, by_address: None, counters, max_peers=1)
    links.open()
    try:
        links.connect(NOWHERE, 20011)                      # --join (its node id unknown)
        links.connect(peer.host, peer.mesh_port, peer.node_id)
        assert len(links._subs) == 2 and counters["peers_refused"] == 0
        links.connect(NOWHERE, 20012, _member("one more", NOWHERE, 20012).node_id)
        assert len(links._subs) == 2 and counters["peers_refused"] == 1
    finally:
        links.close()


@pytest.mark.skipif(resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 8192, reason="needs a hard ulimit -n of 8192")
def test_a_node_holds_a_sub_for_each_peer_of_a_map_past_zmqs_default_of_1023_sockets():
    # A process of its own: zmq reads the context's socket cap when it makes the first socket. The
    # peers' ports lie above every port free_port() gives: this node's own (host, port) among them
    # was skipped as itself (1,022 SUBs, about 1 run in 12 before).
    script = textwrap.dedent("""
        import collections, hashlib, resource
        from mesh.links import PeerLinks
        from mesh.messages import MAX_MEMBERS
        from mesh.slotmap import Member
        resource.setrlimit(resource.RLIMIT_NOFILE, (8192, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        def member(i, port):
            return Member(hashlib.sha1(b"%d" % i).hexdigest(), "NOWHERE", port - 10000, port, 0)
        counters = collections.Counter()
        links = PeerLinks(member(0, PORT), "127.0.0.1", None, lambda m: None, lambda m, by_address: None, counters)
        links.open()
        for i in range(1, MAX_MEMBERS):
            links.connect("NOWHERE", 40000 + i, member(i, 40000 + i).node_id)
        print(len(links._subs), counters["peers_refused"], counters["connect_failed"])
        links.close()
    """).replace("NOWHERE", NOWHERE).replace("PORT", str(free_port()))
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1023", "0", "0"]
