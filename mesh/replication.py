"""Replication streams as values: the wire frames, the primary's offsets and acks, the replica's checks.

A *stream* runs from one node to one replica node and carries the effects of
every slot the first is primary of and the second holds a copy of. The primary
draws a `run_id` whenever it (re)starts a stream; offsets count the stream's
frames from 1, so a replica applies frame n only after frame n-1 of the same
run, acknowledges the highest offset it applied, and answers anything else
with REFUSE (a gap: the primary restarts the stream with a full copy).

A value too big for one frame travels as PART frames, each a piece of its
data, followed by a BATCH frame whose only effect is that key's with its data
left out (None): the replica joins the pieces it received since. Frames stay
bounded (mesh/datalink.py's MAX_FRAME_BYTES), and so does what one of them costs
either side.

A full copy of slots is SYNC_START (the replica drops what it held of them),
then BATCH frames of their keys, then SYNC_DONE; live writes travel in the same
stream in between, so the replica ends with exactly the primary's state. Copies
of one stream are numbered: a slot a later copy began again is left out of the
earlier copy's SYNC_DONE (OutStream.copy_ends). Once per map, when it holds every
slot it leads, the primary says so (LED_HELD), after the copies that map began.

A node that is the primary of slots whose data it does not hold (it joined, or
restarted) sends PULL to another owner; that owner adds the slots to its
stream to the puller (a hand-off) and copies them the same way.

Fencing: a replica applies a frame only if, in the newest map it knows, the
sender is the primary of every slot the frame touches (or the frame's epoch is
newer than that map), so a former primary, paused past its removal, cannot
collect acknowledgements.

Pure: no sockets, no clock.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import msgpack

VERSION = 1

# frame kinds
BATCH = 0        # primary -> replica: effects [(slot, key, state), ...]
SYNC_START = 1   # primary -> replica: drop your copy of these slots, a full copy follows
SYNC_DONE = 2    # primary -> replica: the full copy of these slots is complete
ACK = 3          # replica -> primary: applied everything up to `offset` of run `run_id`
REFUSE = 4       # replica -> primary: not applied; `body` says why (GAP or FENCED)
PULL = 5         # a primary without the data of these slots -> an owner that has it: send me a copy
NOT_HELD = 6     # the answer to a PULL for slots the owner does not hold either
# When no live member holds a slot current, the best copy left beats none:
HELD_STALE = 7   # the answer to a PULL: not held current, but a copy last current at an epoch: [[slot, epoch], ...]
PULL_STALE = 8   # a PULL that takes such a copy (slots); the answer is a hand-off or NOT_HELD
PART = 9         # primary -> replica: [slot, piece], a piece of the data of the next BATCH's one big value
# A BATCH whose acknowledgement may wait (async mode's live writes: no reply waits for it).
# The replica acknowledges it within a tick of its upkeep (hypercache/replication.py's
# MAINTAIN_EVERY_S), or with its acknowledgement of the next frame that is not lazy (an
# empty BATCH asks for one: WAIT sends it). An acknowledgement per frame cost the replica
# a send, and the primary a wake-up, a read and a decode, per loop turn.
LAZY = 10
# Keyspace notifications of the writes of the BATCH frames before it, for a replica that asked
# for them (its ACK's body is WANTS_EVENTS): [[slot, class, event, key], ...]
EVENTS = 11
# primary -> replica, body []: the sender holds every slot it leads under the frame's epoch (sent
# once per map, after the copies that map begins): a replica's copies in doubt after maps it
# skipped are current again (mesh/holdings.py, Holdings.doubt_after_skip)
LED_HELD = 12
WANTS_EVENTS = 1

GAP = "gap"
FENCED = "fenced"

# In-flight frames a primary keeps accounting for before it gives up on a
# replica and restarts its stream with a full copy (a bounded backlog). The
# pieces of one value leave together, so the bytes bound is above the biggest
# string (Redis's 512 MB): at 256 MB, any bigger value marked the stream broken
# as it was sent, and so did the full copy that followed, for ever.
MAX_INFLIGHT_BYTES = 1024 * 1024 * 1024
MAX_INFLIGHT_FRAMES = 100_000


class Frame:
    """One frame of the data channel; a value: never changed once made.

    A plain class, not a frozen dataclass: compiled with mypyc, a dataclass keeps
    the `__init__` the dataclasses module generates, interpreted (a frozen one sets
    each field through object.__setattr__), and every frame and acknowledgement
    makes one: 1.9% of the cluster's CPU in a sync SET -P 1 run (perf)."""

    __slots__ = ("kind", "sender", "epoch", "run_id", "offset", "body")

    def __init__(self, kind: int, sender: str, epoch: int, run_id: int, offset: int, body: Any) -> None:
        self.kind = kind
        self.sender = sender      # node id of the sender
        self.epoch = epoch        # the sender's slot map epoch
        self.run_id = run_id
        self.offset = offset
        self.body = body          # BATCH: list of [slot, key, state]; SYNC_*: list of slots; REFUSE: [reason, epoch]

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Frame) and self.kind == other.kind and self.sender == other.sender
                and self.epoch == other.epoch and self.run_id == other.run_id and self.offset == other.offset
                and self.body == other.body)

    def __hash__(self) -> int:
        return hash((self.kind, self.sender, self.epoch, self.run_id, self.offset))

    def __repr__(self) -> str:
        return (f"Frame(kind={self.kind!r}, sender={self.sender!r}, epoch={self.epoch!r}, "
                f"run_id={self.run_id!r}, offset={self.offset!r}, body={self.body!r})")


# One packer for every frame: msgpack.packb builds a Packer (and its buffer) per call,
# which cost more than packing a small frame (1.6% of a sync SET -P 1 run, perf).
# (The hub's thread is the only one that encodes frames: no call re-enters it. Its buffer
# keeps the size of the biggest frame packed, at most MAX_FRAME_BYTES.)
_packer = msgpack.Packer(use_bin_type=True)


def encode(frame: Frame) -> bytes:
    return _packer.pack((VERSION, frame.kind, frame.sender, frame.epoch, frame.run_id,
                         frame.offset, frame.body))


def encode_part(sender: str, epoch: int, run_id: int, offset: int, slot: int, piece: bytes | memoryview) -> list:
    """A PART frame of a string's piece as [its msgpack up to the piece, the piece]: the
    same bytes as encode(), but the piece, a view of the value, is never copied here."""
    pack = _packer.pack
    head = b"".join((_packer.pack_array_header(7), pack(VERSION), pack(PART), pack(sender), pack(epoch),
                     pack(run_id), pack(offset), _packer.pack_array_header(2), pack(slot),
                     b"\xc6", len(piece).to_bytes(4, "big")))     # (msgpack's bin 32 header)
    return [head, piece]


def decode(data: bytes) -> Frame | None:
    """The frame in `data`, or None when it is not a valid frame of this version."""
    try:
        fields = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception:
        return None
    if type(fields) is not list or len(fields) != 7 or fields[0] != VERSION:
        return None
    _, kind, sender, epoch, run_id, offset, body = fields
    if (type(kind) is not int or not BATCH <= kind <= LED_HELD or type(sender) is not str
            or len(sender) != 40 or type(epoch) is not int or type(run_id) is not int
            or type(offset) is not int or epoch < 0 or offset < 0):
        return None
    if kind in (SYNC_START, SYNC_DONE, PULL, NOT_HELD, PULL_STALE):
        if type(body) is not list or not all(type(s) is int and 0 <= s < 16384 for s in body):
            return None
    elif kind == LED_HELD:
        if type(body) is not list or body:
            return None
    elif kind == HELD_STALE:
        if type(body) is not list or not all(
                type(pair) is list and len(pair) == 2 and type(pair[0]) is int and 0 <= pair[0] < 16384
                and type(pair[1]) is int and pair[1] >= 0 for pair in body):
            return None
    elif kind == PART:
        # (the piece's content is checked when its value is built: effects.joined, value_of)
        if (type(body) is not list or len(body) != 2 or type(body[0]) is not int or not 0 <= body[0] < 16384
                or type(body[1]) not in (bytes, list)):
            return None
    elif kind == EVENTS:
        if type(body) is not list or not all(
                type(e) is list and len(e) == 4 and type(e[0]) is int and 0 <= e[0] < 16384
                and type(e[1]) is int and type(e[2]) is bytes and type(e[3]) is bytes for e in body):
            return None
    elif kind == BATCH or kind == LAZY:
        if type(body) is not list:
            return None
        for effect in body:
            if (type(effect) is not list or len(effect) != 3 or type(effect[0]) is not int
                    or not 0 <= effect[0] < 16384 or type(effect[1]) is not bytes):
                return None
    return Frame(kind, sender, epoch, run_id, offset, body)


def fenced(owners: tuple[tuple[str, ...], ...], map_epoch: int, frame: Frame, slots,
           importing: dict[int, str] | None = None, me: str | None = None, joining: bool = False) -> bool:
    """Must a replica refuse `frame`: its map is as new, and names another primary for one of
    `slots`, or (given `me`) does not make this node an owner of it?

    `importing` (slot -> owner) names the slots this node pulled from their
    sender: a hand-off comes from an owner that is not the primary. A copy of a
    slot this node does not own would not be kept current: taking it, and later
    counting on it, served stale data. A `joining` node takes the slots' primary's
    copies ahead of its admission all the same: it counts on none of them until
    that primary confirms them after the switch.
    """
    if frame.epoch > map_epoch:
        return False     # the sender knows a newer map than we do: we cannot judge it yet
    sender = frame.sender
    for slot in slots:
        slot_owners = owners[slot]
        if importing is not None and importing.get(slot) == sender:
            continue
        if not slot_owners or slot_owners[0] != sender or (me is not None and me not in slot_owners
                                                            and not joining):
            return True
    return False


def lost_their_lead(writers: list, written: list, owners: tuple[tuple[str, ...], ...], me: str,
                    loaded) -> set:
    """Of this commit's `writers` ((client, start, end) in `written`), those that wrote a slot
    this node no longer leads, or no longer holds whole, under the map just followed.

    Their writes ran under the map before, and the commit comes after the new one was
    followed (it arrived between a client's run and the commit): such a slot's replication
    targets are gone, and its new primary may not have the write. Acknowledging it would
    lose it for good once the new primary writes the key (seen in the rolling scenario)."""
    return {conn for conn, start, end in writers
            if any(owners[slot][:1] != (me,) or not loaded[slot] for slot, _ in written[start:end])}


@dataclass(slots=True, eq=False)      # identity: the replicator keys dicts by stream
class OutStream:
    """The primary's side of one stream: offsets sent, acknowledged, and slots still being copied."""

    peer: str
    run_id: int
    slots: frozenset[int] = frozenset()       # slots whose writes this stream carries
    next_offset: int = 1
    acked: int = 0
    inflight: deque = field(default_factory=deque)      # (offset, nbytes) not acknowledged yet
    inflight_bytes: int = 0
    # copies in flight per slot: a slot the map takes away and gives back before its
    # first copy is acknowledged has two, and is copying until the newest is
    copies: dict[int, int] = field(default_factory=dict)
    copies_begun: int = 0                     # full copies begun on this run (each one's number)
    # slot -> the number of the copy that makes it whole: an earlier copy still under way
    # when a later one began again leaves it out of its SYNC_DONE (the later one's START
    # emptied the replica's slot, and what the earlier sent since is only part of it)
    newest_copy: dict[int, int] = field(default_factory=dict)
    copy_done_at: deque = field(default_factory=deque)  # (offset of SYNC_DONE, slots)
    broken: bool = False                      # the replica refused, or the backlog overflowed
    wants_events: bool = False                # its last ACK asked for keyspace notifications (EVENTS)

    def sent(self, nbytes: int) -> int:
        """Account for one frame about to be sent; its offset."""
        offset = self.next_offset
        self.next_offset += 1
        self.inflight.append((offset, nbytes))
        self.inflight_bytes += nbytes
        if self.inflight_bytes > MAX_INFLIGHT_BYTES or len(self.inflight) > MAX_INFLIGHT_FRAMES:
            self.broken = True
        return offset

    def copy_starts(self, slots) -> int:
        """A full copy of `slots` begins (its SYNC_START is about to be sent); its number."""
        self.copies_begun += 1
        number = self.copies_begun
        copies, newest = self.copies, self.newest_copy
        for slot in slots:
            copies[slot] = copies.get(slot, 0) + 1
            newest[slot] = number
        return number

    def superseded(self, number: int, slot: int) -> bool:
        """A later copy than `number` began `slot` again (it copies the slot whole)."""
        return self.newest_copy.get(slot) != number

    def copy_ends(self, number: int, slots) -> list[int]:
        """Copy `number` of `slots` ends: the slots it made whole (its SYNC_DONE names only those)."""
        newest = self.newest_copy
        whole = [slot for slot in slots if newest.get(slot) == number]
        for slot in whole:
            del newest[slot]
        return whole

    @property
    def copying(self) -> set[int]:
        """Slots whose full copy is not acknowledged yet."""
        return set(self.copies)

    def copy_finishes(self, offset: int, slots: list[int]) -> None:
        """The SYNC_DONE of `slots` went out at `offset`."""
        self.copy_done_at.append((offset, slots))

    def on_ack(self, run_id: int, offset: int) -> bool:
        """Record an acknowledgement; False if it is stale or not ours."""
        if run_id != self.run_id or offset <= self.acked or offset >= self.next_offset:
            return False
        self.acked = offset
        inflight = self.inflight
        while inflight and inflight[0][0] <= offset:
            self.inflight_bytes -= inflight.popleft()[1]
        done = self.copy_done_at
        copies = self.copies
        while done and done[0][0] <= offset:
            for slot in done.popleft()[1]:
                left = copies.get(slot, 0) - 1
                if left > 0:
                    copies[slot] = left
                else:
                    copies.pop(slot, None)
        return True

    @property
    def lag(self) -> int:
        """Frames sent and not acknowledged."""
        return self.next_offset - 1 - self.acked

    @property
    def in_sync(self) -> bool:
        return not self.copies and not self.broken


# what a replica does with a frame
APPLY = "apply"
DUPLICATE = "duplicate"


@dataclass(slots=True)
class InStream:
    """The replica's side of one stream: the run it follows and the last offset applied."""

    primary: str
    run_id: int = -1
    applied: int = 0
    # the PART pieces applied since the last value they made (joined by the next BATCH)
    pieces: list = field(default_factory=list)

    def admit(self, run_id: int, offset: int) -> str:
        """APPLY the frame, ack a DUPLICATE again, or refuse a GAP."""
        if run_id == self.run_id:
            if offset == self.applied + 1:
                return APPLY
            return DUPLICATE if offset <= self.applied else GAP
        if offset == 1:      # a new run starts (its first frame is always SYNC_START)
            self.run_id = run_id
            self.applied = 0
            self.pieces = []
            return APPLY
        return GAP
