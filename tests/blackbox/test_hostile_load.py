"""Big legal work and connection storms against a real node: a bystander's PING keeps being answered.

Each case runs an attack of loadtest/hostile.py (the script that makes the
table of docs/security.md) while a bystander PINGs on its own connection, and
prints the worst wait it saw. Before the fixes: 3 pipelined SETRANGEs at
offset 512 MB 5.4-6.2 s, a 400 MB SET 2.2 s, 2,000 HTTP requests at once
7.5-9.3 s, 3,000 half-open HTTP connections 8.4-10.7 s. The goal is 100 ms;
the bound asserted is looser (WORST_ALLOWED_S) so that a loaded 2-core
machine does not flake, and the figures measured are in docs/security.md.
"""
from __future__ import annotations

import time

import pytest
import redis

from loadtest import hostile
from mesh.keyslot import keyslot
from tests.nodes import agreed, call, encode_command, raw_connect, read_reply, request, wait_until

# runs alone (Makefile): it bounds a bystander's worst wait
pytestmark = pytest.mark.alone

WORST_ALLOWED_S = 0.5


@pytest.fixture
def web_node(node_factory):
    return node_factory.start(http=True)


def run_with_bystander(node, attack, *args):
    with hostile.Bystander(node.port) as bystander:
        bystander.more_pings(10)
        reply = attack(node, node.http_port, *args)
        bystander.more_pings(10)
    assert bystander.error is None, bystander.error
    return reply, bystander.worst


def test_an_http_storm_on_the_status_port_does_not_stall_resp(web_node):
    reply, worst = run_with_bystander(web_node, hostile.http_storm, 2000)
    print(f"\n2,000 HTTP requests at once: worst bystander PING wait {worst * 1000:.1f} ms, answers {reply}")
    # (past the server's cap the kernel's backlog overflows: a connection it let in may be
    # reset before the server accepts it, "closed"; never an error status or a hang)
    assert reply["200"] >= 256 and set(reply) <= {"200", "not_connected", "closed"}
    assert worst < WORST_ALLOWED_S


def test_half_open_http_connections_do_not_stall_resp(web_node):
    reply, worst = run_with_bystander(web_node, hostile.http_half_open, 3000)
    print(f"\n3,000 half-open HTTP connections: worst bystander PING wait {worst * 1000:.1f} ms, {reply}")
    assert reply["half_requests_sent"] >= 256
    assert worst < WORST_ALLOWED_S
    # the RESP port serves new clients meanwhile
    with raw_connect(web_node.port) as sock:
        sock.sendall(b"PING\r\n")
        assert read_reply(sock) == b"PONG"


def test_pipelined_setranges_at_512_mb_do_not_stall_the_node(node):
    reply, worst = run_with_bystander(node, hostile.setrange_pipeline)
    rss = hostile.rss_bytes(node.proc.pid)
    print(f"\n3 SETRANGE k 536870911 x: worst bystander PING wait {worst * 1000:.1f} ms, "
          f"RSS {rss / 2**20:.0f} MB, used_memory {hostile.used_memory(node) / 2**20:.0f} MB")
    assert reply == 536870912
    assert worst < WORST_ALLOWED_S
    r = node.client()
    assert r.strlen("k") == 536870912 and r.getrange("k", 536870900, -1) == b"\0" * 11 + b"x"
    assert hostile.used_memory(node) > 512 * 2**20      # accounted, though its zero pages are not resident


def test_a_bitfield_across_512_mb_patches_its_fields_and_does_not_stall_the_node(node):
    reply, worst = run_with_bystander(node, hostile.bitfield_wide)
    print(f"\nBITFIELD SET u8 0, SET u8 at 512 MB, 50 INCRBY: worst bystander PING wait {worst * 1000:.1f} ms")
    assert reply[:3] == [0, 0, 2] and reply[-1] == 51
    assert worst < WORST_ALLOWED_S      # (10.5 s for 20 INCRBYs when each copied the 512 MB span)
    r = node.client()
    assert r.strlen("bf") == 2**29 and r.getrange("bf", 2**29 - 1, -1) == b"\x01"


def test_setrange_past_maxmemory_is_refused_before_it_allocates(node_factory):
    node = node_factory.start("--maxmemory", str(64 * 2**20))
    r = node.client()
    r.set("k", "abc")
    refused = request(node, "SETRANGE", "k", "536870911", "x")
    assert str(refused) == "OOM command not allowed when used memory > 'maxmemory'."   # Redis's text
    assert r.get("k") == b"abc" and r.setrange("k", 1000, "x") == 1001     # within the limit: done
    # over the size limit it is Redis's own error, whatever maxmemory says
    with pytest.raises(redis.ResponseError, match="string exceeds maximum allowed size"):
        r.setrange("k", 536870912, "x")


def test_a_400_mb_set_is_read_while_others_are_served(node):
    reply, worst = run_with_bystander(node, hostile.big_set)
    print(f"\nSET of 400 MB: worst bystander PING wait {worst * 1000:.1f} ms")
    assert reply == 400 * 2**20
    assert worst < WORST_ALLOWED_S


def test_refused_requests_of_many_arguments_leave_no_memory_behind(node):
    """An error reply used to keep its request's arguments alive in a reference cycle until a full GC."""
    hostile.many_args_refused(node, 0, requests=1, count=200_000, size=60)     # the allocator's working set
    before = hostile.rss_bytes(node.proc.pid)
    reply = hostile.many_args_refused(node, 0, requests=10, count=200_000, size=60)
    grown = hostile.rss_bytes(node.proc.pid) - before
    print(f"\n10 refused requests of 200k arguments (~20 MB each): RSS grew {grown / 2**20:.1f} MB")
    assert str(reply).startswith("WRONGTYPE")
    assert grown < 40 * 2**20


def test_a_request_of_many_tiny_arguments_is_parsed_a_slice_per_turn_and_runs_whole(node):
    """30k members in one SADD, then pipelined commands: the parser takes slices, the node reads on after.

    The careful parser took a 64 KB read of tiny arguments in one go (20-35 ms
    of hub time); now it stops at its budget and the connection goes on at the
    next turn without reading (tests/unit/test_resp.py checks the slices).
    Here: nothing is lost or reordered across those turns, and a bystander's
    PING is answered meanwhile. (Running the SADD itself is one command, as in
    Redis: ~85 ms of hub time for 100k members here, so the test keeps it small.)
    """
    count = 30_000
    members = [b"%d" % i for i in range(count)]
    payload = (encode_command("SADD", "s", *members) + encode_command("SCARD", "s")
               + encode_command("SISMEMBER", "s", "29999"))

    def attack(node, http_port):
        with raw_connect(node.port, timeout=60) as sock:
            sock.sendall(payload)
            return [read_reply(sock, timeout=60) for _ in range(3)]
    replies, worst = run_with_bystander(node, attack)
    print(f"\nSADD of 30k tiny members: worst bystander PING wait {worst * 1000:.1f} ms")
    assert replies == [count, count, 1]
    assert worst < WORST_ALLOWED_S


def test_hostile_requests_at_one_node_get_no_member_declared_dead(node_factory):
    """The issue: each single-request stall got the node declared dead (two map changes, and its keys).

    Three nodes at the default node timeout; one is sent the requests that
    used to stall it for 2-22 s (huge declared counts, the 20-star glob,
    million-argument requests), and the primary of a key a
    legal 400 MB SET, which it also replicates (one frame: ~130 ms of the
    owner's hub, measured by hand; liveness must not depend on it). The map
    must not change. (The HTTP storms are left to the tests above: against a
    cluster member's status page 1,000 requests took 20 s to play out.)
    """
    nodes = node_factory.start_cluster(3)
    epoch = wait_until(lambda: agreed(nodes, 3), timeout=60, message=node_factory.logs)
    target = nodes[0]
    for attack in (hostile.huge_count, hostile.huge_count_after_command, hostile.glob_stars):
        attack(target, target.http_port)
    hostile.many_args_refused(target, 0, requests=3)
    assert hostile.big_set(_owner(nodes, b"big"), 0) == 400 * 2**20
    print(f"\nafter the attacks: epoch {agreed(nodes, 3)} (was {epoch})")
    assert agreed(nodes, 3) == epoch, node_factory.logs()


def test_a_legal_huge_command_keeps_its_node_alive(shared_three):
    """A ZADD of 300,000 members (with CH: added one by one) runs whole in one hub turn, 1-3 s here
    (atomic, as in Redis), longer than the tests' node timeout (1.5 s); its heartbeats go on from
    inside it (hypercache/pulse.py), and its replica's rebuild of the set beats the same way.

    Before, both peers suspected the owner in the middle of it and the map removed it and took it
    back (two epochs); with only the owner's loops paced, the replica was declared dead instead.
    """
    nodes = shared_three
    epoch = wait_until(lambda: agreed(nodes, 3), timeout=15)
    seen = [len(node.logs(tail=None)) for node in nodes]
    started = time.monotonic()
    assert hostile.legal_big(b"ZADD", b"z CH", 300_000, "scored")(_owner(nodes, b"z"), 0) == 300_000
    took = time.monotonic() - started
    # (right after its stall the owner's lease waits for fresh heartbeats: CLUSTERDOWN for a beat)
    after = wait_until(lambda: agreed(nodes, 3), timeout=15)
    suspected = sum(node.logs(tail=None)[offset:].count("member suspect") for node, offset in zip(nodes, seen))
    print(f"\na ZADD CH of 300,000 members took {took:.2f} s (node timeout 1.5 s); suspicions: {suspected}; "
          f"epoch {after} (was {epoch})")
    assert suspected == 0, [node.logs() for node in nodes]
    assert after == epoch


def test_legal_huge_reads_and_stores_keep_their_node_alive(shared_three):
    """SORT of 400,000 numbers, SUNIONSTORE, KEYS * and a big HGETALL reply over 100,000 elements
    each, one after the other on one owner: each runs whole in one hub turn (atomic, as in Redis);
    their loops and the encoding of their replies beat from inside (hypercache/pulse.py). Before,
    the SORT alone held the hub for longer than the tests' node timeout (1.5 s; a Python compare
    function per comparison) and got its node suspected; KEYS * and the reply encoders sent
    nothing either.
    (tests/unit/test_pulse.py checks, command by command, that each loop beats.)
    """
    nodes = shared_three
    epoch = wait_until(lambda: agreed(nodes, 3), timeout=15)
    owner = _owner(nodes, b"{big}")
    count, sort_count = 100_000, 400_000
    # Filled in pieces, one round trip each, the owner writable again before each: a command that
    # held the hub counts as a stall for the write lease, which then waits for fresh heartbeats
    # (CLUSTERDOWN for a beat, mesh/lease.py). The fill is not what is measured.
    with raw_connect(owner.port, timeout=60) as sock:
        for start in range(0, sort_count, 50_000):
            _writable(owner)
            sock.sendall(encode_command("RPUSH", "{big}l", *(b"%d" % ((i * 7919) % sort_count)
                                                            for i in range(start, start + 50_000))))
            assert not isinstance(read_reply(sock, timeout=60), Exception)
        for start in range(0, count, 20_000):
            for command in (("SADD", "{big}s", *(b"m%d" % i for i in range(start, start + 20_000))),
                            ("HSET", "{big}h", *(x for i in range(start, start + 20_000) for x in (b"f%d" % i, b"v"))),
                            ("MSET", *(x for i in range(start, start + 20_000) for x in (b"{big}k%d" % i, b"v")))):
                _writable(owner)
                sock.sendall(encode_command(*command))
                assert not isinstance(read_reply(sock, timeout=60), Exception)
    assert call(owner, "LLEN", "{big}l") == sort_count
    wait_until(lambda: agreed(nodes, 3), timeout=15)
    seen = [len(node.logs(tail=None)) for node in nodes]
    took = {}
    with raw_connect(owner.port, timeout=120) as sock:
        for command, size in ((("SORT", "{big}l", "STORE", "{big}sorted"), lambda reply: reply - (sort_count - count)),
                              (("SUNIONSTORE", "{big}u", "{big}s", "{big}s"), lambda reply: reply),
                              (("KEYS", "*"), lambda reply: len(reply) - 4),         # and l, s, h, sorted
                              (("HGETALL", "{big}h"), lambda reply: len(reply) // 2)):
            _writable(owner)
            started = time.monotonic()
            sock.sendall(encode_command(*command))
            reply = read_reply(sock, timeout=120)
            took[command[0]] = time.monotonic() - started
            assert size(reply) >= count, (command, str(reply)[:200])
    after = wait_until(lambda: agreed(nodes, 3), timeout=15)
    suspected = sum(node.logs(tail=None)[offset:].count("member suspect") for node, offset in zip(nodes, seen))
    print("\n" + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in took.items())
          + f" (node timeout 1.5 s); suspicions: {suspected}; epoch {after} (was {epoch})")
    assert suspected == 0, [node.logs() for node in nodes]
    assert after == epoch


def test_a_bulk_mset_and_del_reach_the_replica(shared_three):
    """MSET and DEL of many keys go into the store in bulk (Store.set_many/delete_many, pieces of
    4,096): every key they write or delete still reaches the replication stream, in order."""
    nodes = shared_three
    wait_until(lambda: agreed(nodes, 3), timeout=15)
    owner = _owner(nodes, b"{r}")
    # (the replica's address as CLUSTER SLOTS gives it: its replica endpoint, hypercache/roles.py)
    replica_port = next(replicas[0][1] for start, end, _, *replicas in call(owner, "CLUSTER", "SLOTS")
                        if start <= keyslot(b"r") <= end)
    keys = [b"{r}k%d" % i for i in range(10_000)]
    _writable(owner)
    assert call(owner, "MSET", *(x for i, key in enumerate(keys) for x in (key, b"v%d" % i))) == b"OK"
    assert call(owner, "MSET", *(x for key in keys[:100] for x in (key, b"again"))) == b"OK"
    assert call(owner, "DEL", *keys[5_000:], b"{r}missing") == 5_000
    with raw_connect(replica_port, timeout=30) as sock:
        sock.sendall(encode_command("READONLY") + encode_command("MGET", *keys))
        assert read_reply(sock) == b"OK"
        assert read_reply(sock, timeout=30) == [b"again"] * 100 + [b"v%d" % i for i in range(100, 5_000)] + [None] * 5_000


def _writable(node) -> None:
    wait_until(lambda: request(node, "SET", "{big}probe", "1") == b"OK", timeout=15)


def _owner(nodes, key: bytes):
    return next(n for n in nodes for start, end, primary, *_ in call(n, "CLUSTER", "SLOTS")
                if start <= keyslot(key) <= end and primary[1] == n.port)


def test_a_request_of_many_arguments_pipelined_behind_auth_in_one_read_runs(node_factory):
    """AUTH and a 9,000-argument SADD in one 63 KB read: after AUTH succeeds the SADD is parsed in
    slices from the loop that takes an unauthenticated client's requests one at a time, and nothing
    else would come back to it (no more bytes arrive)."""
    node = node_factory.start(password="hostile-pw")
    members = [b"%d" % (i % 10) for i in range(9000)]
    payload = encode_command("AUTH", "hostile-pw") + encode_command("SADD", "s", *members) + encode_command("SCARD", "s")
    assert len(payload) < 64 * 1024
    with raw_connect(node.port, timeout=10) as sock:
        sock.sendall(payload)
        assert [read_reply(sock, timeout=10) for _ in range(3)] == [b"OK", 10, 10]
