"""An EXEC whose slot's data is still arriving waits (Dispatcher._await_loading): INFO
commandstats counts it once, however many times it was retried while it waited, as a call when it
runs and as a refused one when it gives up with TRYAGAIN."""
from __future__ import annotations

from hypercache.blocking import LOADING
from mesh.keyslot import SLOT_COUNT, keyslot

from .typeharness import Harness


class Arriving:
    """What the router reads of a node's replication: every slot's data here but one's."""

    def __init__(self, slotmap, slot: int) -> None:
        self.followed_map = slotmap
        self.loaded = bytearray(b"\x01") * SLOT_COUNT
        self.loaded[slot] = 0
        self.quiet: set[int] = set()

    def follow_map(self) -> None:
        return None

    def good_replicas(self, slot: int, max_lag: float) -> int:
        return 0


def exec_calls(h: Harness, session) -> int:
    for line in h.call(session, "INFO", "commandstats").decode().splitlines():
        if line.startswith("cmdstat_exec:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def test_a_waiting_exec_is_counted_once_when_it_runs():
    h = Harness()
    h.ctx.dispatcher = h.dispatcher     # (EXEC runs its queue through it, as on a node)
    arriving = Arriving(h.ctx.cluster.slotmap, keyslot(b"k"))
    h.ctx.replicator = arriving
    client, admin = h.session(), h.session()
    assert h.call(client, "MULTI") == b"OK"
    assert h.call(client, "SET", "k", "v") == b"QUEUED"
    assert h.raw(client, "EXEC") == b""                 # waits for the slot's data
    for _ in range(3):                                  # other slots arrive: it tries again, waits on
        h.ctx.blocking.signal(LOADING)
        h.ctx.blocking.serve_ready()
        assert h.pending(client) == b""
    assert exec_calls(h, admin) == 0
    arriving.loaded[keyslot(b"k")] = 1
    h.ctx.blocking.signal(LOADING)
    h.ctx.blocking.serve_ready()
    assert h.pending(client) == b"*1\r\n+OK\r\n"
    assert exec_calls(h, admin) == 1
    assert h.call(admin, "GET", "k") == b"v"


def exec_stats(h: Harness, session) -> str:
    for line in h.call(session, "INFO", "commandstats").decode().splitlines():
        if line.startswith("cmdstat_exec:"):
            return line
    return ""


def test_an_exec_that_waited_in_vain_is_counted_once_as_refused():
    h = Harness()
    h.ctx.dispatcher = h.dispatcher
    h.ctx.replicator = Arriving(h.ctx.cluster.slotmap, keyslot(b"k"))
    client, admin = h.session(), h.session()
    h.call(client, "MULTI")
    h.call(client, "SET", "k", "v")
    assert h.raw(client, "EXEC") == b""
    h.ctx.blocking.signal(LOADING)          # a retry while it waits
    h.ctx.blocking.serve_ready()
    h.time_out(client)                      # LOADING_WAIT_S passed: the TRYAGAIN it would have got at once
    assert h.pending(client).startswith(b"-TRYAGAIN ")
    stats = exec_stats(h, admin)
    assert "calls=0," in stats and "rejected_calls=1," in stats, stats
    assert "errorstat_TRYAGAIN:count=1" in h.call(admin, "INFO", "errorstats").decode()
    assert h.call(admin, "EXISTS", "k") == 0    # the transaction is gone with it
