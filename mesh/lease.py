"""The write lease: until when this node may acknowledge writes, measured from when its evidence arrived.

A node accepts writes while it has heard a majority of its map's members
within node_timeout: the others cannot have given its slots away before they
stopped hearing it for as long. That holds only if "heard" means when the
heartbeat arrived. Stamped when the hub got round to it, a heartbeat that sat
in a queue while the hub stalled renewed the lease late: a node cut off while
its hub stalled 2.5 s woke up, read the heartbeats sent before the cut, and
acknowledged writes for 2.1-2.7 s after the majority had taken its slots.

The hub cannot see when a message reached its socket, but it knows when it
was itself running: the heartbeat timer (`pulse`) fires every interval, so a
gap longer than that is a stall, and a message read during or just after one
may have arrived any time since the stall began. `arrived_by(now)` is
therefore a lower bound of the arrival of a message read at `now`, and the
lease ends `margin` before node_timeout after the majority's arrivals: the
others' own view of this node started up to a heartbeat earlier, and deciding
its death takes them a little longer still. Pure: `now` is passed in.

Hearing the majority is not being heard by it. A node whose outgoing packets
are lost (one-way loss, an MTU black hole: its heartbeats are big, the TCP
acknowledgements it sends are small) still hears every peer, while they stop
hearing it, declare it dead and take its slots: in the namespace test such a
node acknowledged writes until it adopted the majority's map, past
node_timeout, and in 1 of 8 runs 42 writes on both sides. So every heartbeat also echoes the seq of the latest
heartbeat its sender heard from each peer, and `SentBeats` remembers when
this node sent each of its own. A peer cannot have stopped hearing this node
before node_timeout after the moment it sent the heartbeat that peer echoes
(the peer read it later than that); the evidence for a member is the older
of the two, so the lease holds only while a majority both hears this node
and is heard by it. The sending time is this node's own clock: a stall while
the echo waited in a socket cannot make it look newer.
"""
from __future__ import annotations

import collections

def margin_s(heartbeat_interval_s: float, node_timeout_s: float) -> float:
    """How much earlier than node_timeout the lease ends: a heartbeat, at most a quarter of the timeout.

    The others' last heartbeat from this node may be up to one interval older
    than this node's last one from them; their suspicion must then spread and
    a map commit before they serve its slots, which takes longer still.
    """
    return min(heartbeat_interval_s, node_timeout_s / 4)


class ArrivalClock:
    """The earliest moment a message read now may have arrived, given the hub's stalls."""

    __slots__ = ("interval_s", "stall_s", "pulse_at", "stall_began_at", "stall_ended_at")

    def __init__(self, interval_s: float, stall_s: float, now: float) -> None:
        """The timer runs every `interval_s`; later than that by `stall_s` is a stall.

        Lateness below `stall_s` is common on a loaded machine (counted as stalls,
        100 ms of it made a healthy 3-node cluster flicker to CLUSTERDOWN); the
        lease's margin covers it, so `stall_s` is the margin.
        """
        self.interval_s = interval_s
        self.stall_s = stall_s
        self.pulse_at = now                      # the timer's last run: the hub was running then
        self.stall_began_at = float("-inf")      # the last stall the timer saw
        self.stall_ended_at = float("-inf")

    def _late(self, now: float) -> bool:
        return now - self.pulse_at > self.interval_s + self.stall_s

    def pulse(self, now: float) -> None:
        """The timer ran at `now` (once per interval when the hub is well)."""
        if self._late(now):
            self.stall_began_at, self.stall_ended_at = self.pulse_at, now
        self.pulse_at = now

    def arrived_by(self, now: float) -> float:
        """A lower bound of when a message read at `now` arrived."""
        if self._late(now):
            return self.pulse_at         # stalled since: the timer has not caught up yet
        if now - self.stall_ended_at <= self.interval_s:
            return self.stall_began_at   # read right after a stall: it may have waited through it
        return now


def lease_until(arrivals: list[float], members: int, node_timeout_s: float, margin: float) -> float:
    """Until when writes are accepted: node_timeout after the oldest arrival of the most recently heard majority.

    `arrivals` holds, for each member of the map heard from (this node counting
    as +inf), when its latest heartbeat arrived.
    """
    needed = members // 2 + 1
    if len(arrivals) < needed:
        return float("-inf")
    newest_first = sorted(arrivals, reverse=True)
    return newest_first[needed - 1] + node_timeout_s - margin


class SentBeats:
    """When this node sent each of its recent heartbeats, by seq: what a peer's echo is worth."""

    __slots__ = ("_sent", "_keep")

    def __init__(self, keep: int) -> None:
        """Remember the last `keep` heartbeats: an echo older than node_timeout renews nothing anyway."""
        self._sent: collections.OrderedDict[int, float] = collections.OrderedDict()
        self._keep = keep

    def sent(self, seq: int, now: float) -> None:
        self._sent[seq] = now
        while len(self._sent) > self._keep:
            self._sent.popitem(last=False)

    def sent_at(self, seq: int) -> float:
        """When heartbeat `seq` left (-inf if it is not one of the remembered ones: no evidence)."""
        return self._sent.get(seq, float("-inf"))
