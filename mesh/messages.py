"""Declare the mesh wire messages once, and turn them into msgpack bytes and back.

Every message is a msgpack array `[version, kind, sender, seq, *body]`: the
protocol version first so a newer peer can be recognised and ignored rather
than misread; `sender` and a per-sender sequence number on everything.
`decode` never raises: bytes that are too long, not msgpack, of an unknown
version or kind, or that fail the schema come back as an `Invalid` value with a
reason, for the bus to drop and count.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Final, Union

import msgpack

from mesh.keyslot import SLOT_COUNT
from mesh.slotmap import Member, SlotMap

# 2: maps are adopted only when proven (mesh/adoption.py), proposals only when they follow the
# base map; a version-1 node would adopt any Commit, so the two do not mix.
# 3: heartbeats echo the latest heartbeat heard from each peer (the write lease, mesh/lease.py).
# 4: a heartbeat without news goes only to the sender's watchers, behind a 0xfe topic byte
# (mesh/watch.py, mesh/links.py); its member list holds suspicions and news, not every member.
# 5: rings of more than 64 members are placed differently (mesh/ring.py: fewer vnodes past 127
# members, fewer cuts weighed per piece); a voter rebuilds a proposal to check it, so a version-4
# node would refuse a version-5 proposer's maps of that size.
# 6: heartbeats say under which map the sender holds every slot it owns (`holds`).
# 7: a quiet heartbeat with an empty member list (to the watchers, who hold the sender in
# their map) leaves out the sender's addresses (`me` is nil): 62 of its ~310 bytes.
# 8: votes are signed (mesh/votes.py) and, in a map with watchers, go to the proposer alone, who
# relays a majority's signatures in a `Certificate`; heartbeats announce the sender's vote key.
VERSION: Final = 8
# Also set as zmq.MAXMSGSIZE on every mesh socket; a 64-member map is ~20 KiB.
MAX_MESSAGE_BYTES: Final = 1 << 20
MAX_MEMBERS: Final = 1024
# An Ed25519 public key and signature (mesh/votes.py)
KEY_BYTES: Final = 32
SIGNATURE_BYTES: Final = 64
_NODE_ID: Final = re.compile(r"[0-9a-f]{40}")
# A host name, IPv4 or IPv6 address: peers connect to it, and zmq refuses spaces, '*', '/'...
_HOST: Final = re.compile(r"[A-Za-z0-9._:%\[\]-]+")
_MAX_STR: Final = 255
_MAX_CHANNEL: Final = 64 * 1024


class State:
    """Member states as they travel in member lists (plain strings keep the wire readable)."""

    ALIVE: Final = "alive"
    SUSPECT: Final = "suspect"
    DEAD: Final = "dead"
    ALL: Final = ("alive", "suspect", "dead")


@dataclass(frozen=True, slots=True)
class Gossip:
    """What a sender believes about one member: spreads member lists and suspicion."""

    member: Member
    incarnation: int
    state: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    sender: str
    seq: int
    incarnation: int
    epoch: int
    digest: bytes                      # digest of the sender's current slot map
    me: Member | None                  # the sender's addresses; None in a quiet heartbeat
    members: tuple[Gossip, ...]        # the sender's member list, its suspicions included
    keys: int                          # the sender's stats, for the status UI
    used_memory: int
    ops_per_sec: float
    # A joining node's copy ahead of its admission (hypercache/replication.py, "replicate,
    # catch up, switch"): (the epoch of the map it plans on, slots the plan gives it, slots it
    # holds of them). Empty from members. The proposer admits a joiner once it holds them all.
    catching_up: tuple[tuple[int, int, int], ...] = ()
    # The seq of the latest heartbeat the sender heard from each peer, by the peer's
    # `echo_key`: a node learns when it was last heard, not only when it last heard.
    heard: tuple[tuple[bytes, int], ...] = ()
    # The epoch of the map under which the sender holds a complete copy of every slot it
    # owns, 0 while some copy is still arriving: a member that stopped owning a slot keeps
    # its copy as a fallback until every owner says so (mesh/holdings.py, Holdings.fallback).
    holds: int = 0
    # The sender's vote key (mesh/votes.py), with its addresses (b"" when `me` is None): what its
    # votes relayed in a Certificate are checked against.
    vote_key: bytes = b""


def echo_key(node_id: str) -> bytes:
    """The first 8 bytes of a node id: names a peer in `Heartbeat.heard` at a third of the hex id's size."""
    return bytes.fromhex(node_id[:16])


@dataclass(frozen=True, slots=True)
class Leave:
    """The sender is stopping on purpose: no need to wait for its timeout."""

    sender: str
    seq: int
    incarnation: int


@dataclass(frozen=True, slots=True)
class Prepare:
    """Ask the members of the map at `base_epoch` to promise `ballot` (mesh/election.py)."""

    sender: str
    seq: int
    ballot: int
    base_epoch: int


@dataclass(frozen=True, slots=True)
class Promise:
    """A promise to `proposer` for `ballot` on `base_epoch`, with the sender's last vote on that base."""

    sender: str
    seq: int
    ballot: int
    base_epoch: int
    proposer: str
    voted_ballot: int                  # 0 and None: no vote on this base
    voted_map: SlotMap | None


@dataclass(frozen=True, slots=True)
class Proposal:
    """A candidate next map at `ballot`, built on the map at `base_epoch`, asking for votes."""

    sender: str
    seq: int
    ballot: int
    base_epoch: int
    slotmap: SlotMap


@dataclass(frozen=True, slots=True)
class Vote:
    """The sender's vote for the map `digest` at `ballot` on `base_epoch`, signed (mesh/votes.py)."""

    sender: str
    seq: int
    ballot: int
    base_epoch: int
    digest: bytes
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class Certificate:
    """A majority's votes for the map `digest` at `ballot` on `base_epoch`, relayed by its proposer:
    (the voter's index among the base map's members, its vote's signature) each."""

    sender: str
    seq: int
    ballot: int
    base_epoch: int
    digest: bytes
    votes: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class VoteKey:
    """The sender's vote key (mesh/votes.py), and the member whose key it asks for (`asking`; "" in an answer)."""

    sender: str
    seq: int
    key: bytes
    asking: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The map the sender, the proposer, will make with the nodes asking to join (mesh/plans.py):
    members copy the joiners their slots ahead of it. Advice, not a decision: nothing is voted on it."""

    sender: str
    seq: int
    slotmap: SlotMap


@dataclass(frozen=True, slots=True)
class RollCall:
    """The sender, a member stranded by its watchers' silence (mesh/strand.py), asks every member
    to answer: its write lease needs a majority of the whole map's answers meanwhile."""

    sender: str
    seq: int
    incarnation: int


@dataclass(frozen=True, slots=True)
class RollAnswer:
    """The sender heard the roll call `call_seq` of the member it is addressed to: evidence for
    that member's lease, as an echo is (mesh/lease.py)."""

    sender: str
    seq: int
    call_seq: int


@dataclass(frozen=True, slots=True)
class Commit:
    """A committed map, re-sent so that members who missed the votes (or just joined) catch up.

    With the certificate the sender adopted it on (`ballot` and the signed `votes`, as in a
    `Certificate`; 0 and () without): a node holding the map's base adopts it on those, at
    once, instead of waiting for a majority's heartbeats to name it (mesh/adoption.py).
    """

    sender: str
    seq: int
    slotmap: SlotMap
    ballot: int = 0
    votes: tuple[tuple[int, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Publish:
    """A PUBLISH received by the sender's clients, for every other node's subscribers."""

    sender: str
    seq: int
    channel: bytes
    message: bytes


HELLO_BY_ADDRESS = 1


@dataclass(frozen=True, slots=True)
class Hello:
    """Sent as a SUB subscription topic: tells a publisher who has just subscribed to it.

    `seq` has the bit HELLO_BY_ADDRESS from a node that reached this one through an address the
    operator gave it (--join, CLUSTER MEET): this publisher may be the only member that knows
    of it, and tells every member (Membership.has_news). 0 from one that heard of this member
    from others, who told every member of it already (and from versions before 6 December).
    """

    sender: str
    seq: int
    me: Member


@dataclass(frozen=True, slots=True)
class Endorse:
    """A publisher's welcome to each new subscriber, with a cluster secret (mesh/curve.py).

    `key` is the sender's own z85 CURVE public key (its node id is the key's
    hash) and `tag` HMAC(secret, key): the sender holds the secret. Sent once
    per connection by the XPUB itself (ZMQ_XPUB_WELCOME_MSG), before anything else.
    """

    sender: str
    seq: int
    key: bytes
    tag: bytes


@dataclass(frozen=True, slots=True)
class Invalid:
    reason: str


Message = Union[Heartbeat, Leave, Proposal, Vote, Commit, Publish, Hello, Prepare, Promise, Endorse, Certificate,
                VoteKey, Plan, RollCall, RollAnswer]

# (Endorse, kind 10, is new in this version's secret mode; nodes of an older version
# drop it as an unknown kind, and could not complete a secret-mode handshake anyway.
# Plan, kind 13, is advice (mesh/plans.py): a node of an older version drops it and places the
# joiners itself, as it did; one that hears no plan from an older proposer copies nothing ahead.
# RollCall and RollAnswer, kinds 14 and 15 (mesh/strand.py): a node of an older version drops
# them, answers no roll call, and declares no stranded member dead.)
_KINDS: dict[type, int] = {Heartbeat: 1, Leave: 2, Proposal: 3, Vote: 4, Commit: 5, Publish: 6, Hello: 7,
                           Prepare: 8, Promise: 9, Endorse: 10, Certificate: 11,
                           VoteKey: 12, Plan: 13, RollCall: 14, RollAnswer: 15}


class _Bad(Exception):
    """Raised inside decoding only; `decode` turns it into an Invalid value."""


def digest(slotmap: SlotMap) -> bytes:
    """Return a short fingerprint of a map's content, the same on every node."""
    return hashlib.sha1(msgpack.packb(_map_body(slotmap))).digest()


def pack_slotmap(slotmap: SlotMap) -> bytes:
    """Return a map as msgpack bytes (for the ballot file)."""
    return msgpack.packb(_map_body(slotmap))


def unpack_slotmap(data: bytes) -> SlotMap | None:
    """Return the map packed in `data`, or None if it is not one."""
    try:
        return _slotmap(msgpack.unpackb(data, max_array_len=SLOT_COUNT, max_map_len=0, max_ext_len=0))
    except Exception:  # msgpack and SlotMap raise several unrelated types for malformed input
        return None


def encode(message: Message) -> bytes:
    head = [VERSION, _KINDS[type(message)], message.sender, message.seq]
    if isinstance(message, Heartbeat):
        body = [message.incarnation, message.epoch, message.digest,
                None if message.me is None else _member_body(message.me),
                [[_member_body(g.member), g.incarnation, g.state] for g in message.members],
                message.keys, message.used_memory, float(message.ops_per_sec),
                [list(entry) for entry in message.catching_up], [list(echo) for echo in message.heard],
                message.holds, message.vote_key]
    elif isinstance(message, Leave):
        body = [message.incarnation]
    elif isinstance(message, Proposal):
        body = [message.ballot, message.base_epoch, _map_body(message.slotmap)]
    elif isinstance(message, Plan):
        body = [_map_body(message.slotmap)]
    elif isinstance(message, Vote):
        body = [message.ballot, message.base_epoch, message.digest, message.signature]
    elif isinstance(message, Certificate):
        body = [message.ballot, message.base_epoch, message.digest, [list(vote) for vote in message.votes]]
    elif isinstance(message, VoteKey):
        body = [message.key, message.asking]
    elif isinstance(message, Prepare):
        body = [message.ballot, message.base_epoch]
    elif isinstance(message, Promise):
        body = [message.ballot, message.base_epoch, message.proposer, message.voted_ballot,
                None if message.voted_map is None else _map_body(message.voted_map)]
    elif isinstance(message, Commit):
        body = [_map_body(message.slotmap), message.ballot, [list(vote) for vote in message.votes]]
    elif isinstance(message, Publish):
        body = [message.channel, message.message]
    elif isinstance(message, RollCall):
        body = [message.incarnation]
    elif isinstance(message, RollAnswer):
        body = [message.call_seq]
    elif isinstance(message, Endorse):
        body = [message.key, message.tag]
    else:
        body = [_member_body(message.me)]
    return msgpack.packb(head + body)


def decode(data: Any) -> Message | Invalid:
    """Return the message in `data`, or Invalid(reason); never raises."""
    if len(data) > MAX_MESSAGE_BYTES:
        return Invalid("too_long")
    try:
        fields = msgpack.unpackb(data, max_str_len=_MAX_CHANNEL, max_bin_len=MAX_MESSAGE_BYTES,
                                 max_array_len=SLOT_COUNT, max_map_len=0, max_ext_len=0)
    except Exception:  # msgpack raises several unrelated types for malformed input
        return Invalid("not_msgpack")
    try:
        return _message(fields)
    except _Bad as bad:
        return Invalid(str(bad))
    except (ValueError, TypeError, IndexError):
        return Invalid("schema")


def _message(fields: Any) -> Message:
    _check(isinstance(fields, list) and len(fields) >= 4, "schema")
    version, kind, sender, seq, *body = fields
    _check(version == VERSION, "version")
    sender = _node_id(sender)
    seq = _uint(seq)
    if kind == 1:
        _length(body, 12)
        incarnation, epoch, map_digest, me, members, keys, used_memory, ops, catching_up, heard, holds, vote_key = body
        _check(isinstance(members, list) and len(members) <= MAX_MEMBERS, "schema")
        gossip = tuple(_gossip(entry) for entry in members)
        _check(isinstance(catching_up, list) and len(catching_up) <= 1, "schema")
        _check(isinstance(heard, list) and len(heard) <= MAX_MEMBERS, "schema")
        member = None if me is None else _member(me)
        _check(member is None or member.node_id == sender, "sender")
        return Heartbeat(sender, seq, _uint(incarnation), _uint(epoch), _bytes(map_digest, 20), member,
                         gossip, _uint(keys), _uint(used_memory), _number(ops),
                         tuple(_progress(entry) for entry in catching_up), tuple(_echo(echo) for echo in heard),
                         _uint(holds), _key_or_empty(vote_key, KEY_BYTES))
    if kind == 2:
        _length(body, 1)
        return Leave(sender, seq, _uint(body[0]))
    if kind == 3:
        _length(body, 3)
        return Proposal(sender, seq, _uint(body[0]), _uint(body[1]), _slotmap(body[2]))
    if kind == 4:
        _length(body, 4)
        return Vote(sender, seq, _uint(body[0]), _uint(body[1]), _bytes(body[2], 20),
                    _key_or_empty(body[3], SIGNATURE_BYTES))
    if kind == 5:
        _length(body, 3)
        _check(isinstance(body[2], list) and len(body[2]) <= MAX_MEMBERS, "schema")
        return Commit(sender, seq, _slotmap(body[0]), _uint(body[1]), tuple(_signed(vote) for vote in body[2]))
    if kind == 6:
        _length(body, 2)
        return Publish(sender, seq, _bytes(body[0], _MAX_CHANNEL), _bytes(body[1], MAX_MESSAGE_BYTES))
    if kind == 7:
        _length(body, 1)
        member = _member(body[0])
        _check(member.node_id == sender, "sender")
        return Hello(sender, seq, member)
    if kind == 8:
        _length(body, 2)
        return Prepare(sender, seq, _uint(body[0]), _uint(body[1]))
    if kind == 9:
        _length(body, 5)
        return Promise(sender, seq, _uint(body[0]), _uint(body[1]), _node_id(body[2]), _uint(body[3]),
                       None if body[4] is None else _slotmap(body[4]))
    if kind == 10:
        _length(body, 2)
        key, tag = _bytes(body[0], 40), _bytes(body[1], 32)
        _check(len(key) == 40 and len(tag) == 32, "schema")
        _check(hashlib.sha1(key).hexdigest() == sender, "sender")
        return Endorse(sender, seq, key, tag)
    if kind == 11:
        _length(body, 4)
        _check(isinstance(body[3], list) and len(body[3]) <= MAX_MEMBERS, "schema")
        return Certificate(sender, seq, _uint(body[0]), _uint(body[1]), _bytes(body[2], 20),
                           tuple(_signed(vote) for vote in body[3]))
    if kind == 12:
        _length(body, 2)
        key = _bytes(body[0], KEY_BYTES)
        _check(len(key) == KEY_BYTES, "schema")
        return VoteKey(sender, seq, key, "" if body[1] == "" else _node_id(body[1]))
    if kind == 13:
        _length(body, 1)
        planned = _slotmap(body[0])
        _check(planned.base_epoch is not None, "schema")    # (a plan is always made on a base)
        return Plan(sender, seq, planned)
    if kind == 14:
        _length(body, 1)
        return RollCall(sender, seq, _uint(body[0]))
    if kind == 15:
        _length(body, 1)
        return RollAnswer(sender, seq, _uint(body[0]))
    raise _Bad("kind")


def _member_body(member: Member) -> list:
    return [member.node_id, member.host, member.port, member.mesh_port, member.http_port]


def _map_body(slotmap: SlotMap) -> list:
    index = {member.node_id: i for i, member in enumerate(slotmap.members)}
    return [slotmap.epoch, slotmap.replication_factor,
            [_member_body(member) for member in slotmap.members],
            [position for position, _ in slotmap.tokens],
            [index[node_id] for _, node_id in slotmap.tokens],
            [[slot, node_id] for slot, node_id in slotmap.migrating],
            [[slot, node_id] for slot, node_id in slotmap.importing],
            slotmap.base_epoch]


def _slotmap(body: Any) -> SlotMap:
    _check(isinstance(body, list), "schema")
    # (7 fields: a map saved in a ballot file before maps carried their base)
    _check(len(body) in (7, 8), "schema")
    epoch, replication_factor, members, positions, owners, migrating, importing = body[:7]
    base_epoch = body[7] if len(body) == 8 else None
    _check(isinstance(members, list) and 0 < len(members) <= MAX_MEMBERS, "schema")
    parsed = tuple(_member(member) for member in members)
    _check(isinstance(positions, list) and isinstance(owners, list)
           and 0 < len(positions) == len(owners), "schema")
    # Each token checked by builtins over the whole list, not by a Python call per token: a
    # 100-member map has ~7,500 tokens, and 100 real members on 2 cores spent their time
    # decoding the maps of proposals, votes and commits (README, "How the mesh scales").
    # The same checks as _uint: plain ints (not bools), 0 <= v < 2**63; an owner is a member.
    _check(set(map(type, positions)) == {int} and set(map(type, owners)) == {int}, "schema")
    _check(0 <= min(positions) and max(positions) < 1 << 63, "schema")
    _check(0 <= min(owners) and max(owners) < len(parsed), "schema")
    ids = [member.node_id for member in parsed]
    tokens = tuple(zip(positions, map(ids.__getitem__, owners)))
    _check(1 <= _uint(replication_factor) <= 16, "schema")
    # SlotMap itself rejects unsorted members, stray tokens or positions off the ring.
    return SlotMap(_uint(epoch), replication_factor, parsed, tokens,
                   _motion(migrating), _motion(importing), None if base_epoch is None else _uint(base_epoch))


def _motion(pairs: Any) -> tuple[tuple[int, str], ...]:
    _check(isinstance(pairs, list), "schema")
    result = []
    for pair in pairs:
        _length(pair, 2)
        slot = _uint(pair[0])
        _check(slot < SLOT_COUNT, "schema")
        result.append((slot, _node_id(pair[1])))
    return tuple(result)


# Members and member-list entries already decoded, by their wire fields. A heartbeat with news
# names the same members in every copy each peer sends (10 newcomers, in up to 100 heartbeats a
# second while they join), and checking one (the id and host patterns, the ports, two frozen
# dataclasses) cost ~1.8 us of Python: most of a node's time reading the mesh at 80 members
# (py-spy, README). A field list seen before is the same valid value again, provided its
# numbers are ints, not the floats or bools that compare equal to them, which the schema
# refuses. Emptied when full, so a peer sending endless new entries costs a rebuild, not memory.
_KNOWN_MEMBERS: Final[dict[tuple, Member]] = {}
_KNOWN_GOSSIP: Final[dict[tuple, Gossip]] = {}
KNOWN_AT_MOST: Final = 8 * MAX_MEMBERS     # (a member in a few states and incarnations, in a full map)


def _gossip(entry: Any) -> Gossip:
    _length(entry, 3)
    body, incarnation, state = entry
    _length(body, 5)
    key = (*body, incarnation, state)
    known = _known(_KNOWN_GOSSIP, key)
    if known is not None and type(incarnation) is int and _int_ports(body):
        return known
    _check(state in State.ALL, "schema")
    gossip = Gossip(_member(body), _uint(incarnation), state)
    _remember(_KNOWN_GOSSIP, key, gossip)
    return gossip


def _member(body: Any) -> Member:
    _length(body, 5)
    key = tuple(body)
    known = _known(_KNOWN_MEMBERS, key)
    if known is not None and _int_ports(body):
        return known
    node_id, host, port, mesh_port, http_port = body
    _check(isinstance(host, str) and 0 < len(host) <= _MAX_STR and _HOST.fullmatch(host) is not None, "schema")
    member = Member(_node_id(node_id), host, _uint(port), _uint(mesh_port), _uint(http_port))
    _remember(_KNOWN_MEMBERS, key, member)
    return member


def _int_ports(body: list) -> bool:
    return type(body[2]) is int and type(body[3]) is int and type(body[4]) is int


def _known(known: dict, key: tuple) -> Any:
    try:
        return known.get(key)
    except Exception:   # an unhashable field (a list, a map): the checks below give the reason
        return None


def _remember(known: dict, key: tuple, value: Any) -> None:
    if len(known) >= KNOWN_AT_MOST:
        known.clear()
    known[key] = value


def _progress(body: Any) -> tuple[int, int, int]:
    _length(body, 3)
    epoch, planned, held = (_uint(value) for value in body)
    _check(held <= planned <= SLOT_COUNT, "schema")
    return epoch, planned, held


def _echo(body: Any) -> tuple[bytes, int]:
    _length(body, 2)
    key, seq = body
    _check(isinstance(key, bytes) and len(key) == 8, "schema")
    return key, _uint(seq)


def _key_or_empty(value: Any, length: int) -> bytes:
    """A key or signature of exactly `length` bytes, or b"" for none."""
    value = _bytes(value, length)
    _check(len(value) in (0, length), "schema")
    return value


def _signed(body: Any) -> tuple[int, bytes]:
    _check(isinstance(body, list), "schema")
    _length(body, 2)
    signature = _bytes(body[1], SIGNATURE_BYTES)
    _check(len(signature) == SIGNATURE_BYTES, "schema")
    return _uint(body[0]), signature


def _node_id(value: Any) -> str:
    _check(isinstance(value, str) and _NODE_ID.fullmatch(value) is not None, "node_id")
    return value


def _uint(value: Any) -> int:
    _check(type(value) is int and 0 <= value < 1 << 63, "schema")
    return value


def _number(value: Any) -> float:
    _check(type(value) in (int, float) and value >= 0, "schema")
    return float(value)


def _bytes(value: Any, limit: int) -> bytes:
    _check(isinstance(value, bytes) and len(value) <= limit, "schema")
    return value


def _length(value: Any, length: int) -> None:
    _check(isinstance(value, list) and len(value) == length, "schema")


def _check(condition: bool, reason: str) -> None:
    if not condition:
        raise _Bad(reason)
