"""READONLY / READWRITE on a real 3-node cluster (replication factor 2): replicas of a slot serve reads."""
from __future__ import annotations

import hiredis

from tests.nodes import NodeProcess, by_port, call, raw_connect, read_reply, encode_command


def _roles(nodes: list[NodeProcess], key: str) -> tuple[int, NodeProcess, NodeProcess]:
    """(slot, primary, a replica) of key's slot, from CLUSTER SLOTS."""
    slot = int(call(nodes[0], "CLUSTER", "KEYSLOT", key))
    for first, last, primary, *replicas in call(nodes[0], "CLUSTER", "SLOTS"):
        if first <= slot <= last:
            assert replicas, "replication factor 2 must list a replica"
            node_at = by_port(nodes)
            return slot, node_at[primary[1]], node_at[replicas[0][1]]
    raise AssertionError(f"slot {slot} unassigned")


def test_a_replica_serves_reads_after_readonly_and_redirects_writes(shared_three):
    slot, primary, replica = _roles(shared_three, "profile:42")
    moved = f"MOVED {slot} 127.0.0.1:{primary.port}"
    with raw_connect(replica.port) as conn:
        def ask(*args):
            conn.sendall(encode_command(*args))
            return read_reply(conn)
        first = ask("GET", "profile:42")
        assert isinstance(first, hiredis.ReplyError) and str(first) == moved
        assert ask("READONLY") == b"OK"
        assert ask("GET", "profile:42") is None          # served here (no data yet: nil)
        assert ask("EXISTS", "profile:42") == 0
        write = ask("SET", "profile:42", "x")            # writes still go to the primary
        assert isinstance(write, hiredis.ReplyError) and str(write) == moved
        assert ask("READWRITE") == b"OK"
        again = ask("GET", "profile:42")
        assert isinstance(again, hiredis.ReplyError) and str(again) == moved
