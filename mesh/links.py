"""Hold one node's mesh sockets: the XPUB it publishes on, a SUB per peer, and the join-by-subscription hello.

Sockets: one XPUB bound on the mesh port (a PUB that also reports who
subscribes to it), and one SUB per peer. A joining node's SUB subscribes with a
`Hello` topic naming itself; the XPUB hears that subscription (again on every
reconnect), which is how a member learns the address of a node that joined
through it. Since each SUB is connected to exactly one peer, a message's sender
is bound to the connection it came in on: a message claiming another sender is
dropped, so one member cannot speak for another.

With mesh keys (mesh/curve.py) the mesh is closed with CURVE: the XPUB is a
CURVE server that asks this node's ZAP handler (mesh/zap.py, an allow-list of
public keys) about every peer, and the mesh refuses to start without it; each
SUB pins its peer's server key. With a cluster secret the roles turn around
(mesh/curve.py): the XPUB is a CURVE client pinning the cluster key (only a
holder of the secret subscribes) and greets each subscriber with its
endorsement; each SUB is a CURVE server with the cluster pair, whose ZAP
handler sees the publisher's own key, and every message read carries that
key's node id (User-Id). Either way node ids are derived from public keys, so
the sender binding above is backed by the handshake: a SUB takes only messages
from the node id its peer proved, and, with a secret, only once that key was
endorsed.

In an open mesh (no keys), a peer this node has no SUB to (no room for it: `refused_now`), or
whose own link fell silent, is heard through relays: the node subscribes, on its SUBs to two
members that hear that peer, to the peer's relay topic (`relayed()`), and each of them publishes
again, as it came, what the peer said (`relay`, `_relay_out`, `_take_relayed`); what the peer
sends this node alone as well, under a topic naming both (`relayed_to()`), which each relayer
hears by subscribing to this node's own topics at the peer. Such a message is
taken as the peer's on the relayer's word: the one exception to the binding above, and one that
lets a relayer mislead the node that asked it, never the others (in a map with watchers each
checks a vote's signature under the key it heard, and every node tallies and attests what it
heard itself: a relayed lie goes no further than the node it was told to). A relayed vote key
is not taken on that word: only if the peer's id names it (`keys_checked`, mesh/votes.py), so
that a relayer cannot swap a peer's key and make up its votes, even to the node that asked it. A closed mesh keeps the
binding whole: with keys nothing is relayed. Relays are not relayed again, and a relayed
sequence number far ahead of the clock is refused (it would have every later message dropped).

The peers heard on links opened to a bare address (--join, CLUSTER MEET) are
remembered in `join_peers`: a joining node has no map to check a map against,
and takes the member the operator pointed it at as its anchor (mesh/adoption.py).

Publishing never blocks the RESP server: every send is NOBLOCK (a full queue
drops and counts). What the messages mean is mesh/bus.py's business: valid,
in-order messages are handed to `on_message`, hellos to `on_hello`.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any, Callable

import gevent
import zmq.green as zmq
from zmq.sugar.socket import Socket as NonBlockingSocket

from mesh import votes
from mesh.curve import ZAP_DOMAIN, MeshKeys
from mesh.messages import (HELLO_BY_ADDRESS, MAX_MEMBERS, MAX_MESSAGE_BYTES, Commit, Endorse, Heartbeat, Hello, Invalid,
                           Message, Promise, RollAnswer, Vote, VoteKey, decode, encode)
from mesh.slotmap import Member
from mesh.zap import ZapHandler

log = logging.getLogger(__name__)

# Outgoing queue per subscriber; beyond it PUB drops rather than blocks.
SEND_HWM = 10_000
# Sockets a mesh context may hold: a SUB per peer of a full map (more for a bare --join address under
# CURVE keys, one per allowed key until the right one speaks), a data-channel DEALER per peer, the
# XPUB, the ROUTER and the ZAP handler's.
SOCKETS_PER_CONTEXT = 4 * MAX_MEMBERS
# Topics (a first byte ahead of the message; the publisher's filter drops what a SUB did not
# subscribe to, so unwanted heartbeats cost the receiver nothing):
# - QUIET: a member's heartbeat without news (mesh/watch.py): only its watchers subscribe.
# - OUTSIDE: the heartbeat of a node outside its map (joining): members subscribe, and nodes
#   holding a cluster map that plan their join with the other joiners; not nodes that hold
#   no cluster map yet: 47 founders joining one seed heard each other 4 times a second,
#   8,800 messages a second that starved the seed placing them on the ring.
# - anything else: every SUB subscribes to every other first byte (no message starts with
#   0xfb-0xff: each is a msgpack array, 0x90-0x9f or 0xdc; 0xff alone would be read as a Hello).
# - CATCH_UP: a committed map sent again, for nodes that missed it: they subscribe while
#   behind or outside the map. A 48-member map takes ~0.1 s to decode (its owners per slot):
#   every member re-sending it to every other after each commit cost minutes of CPU.
# - TO: a message for one member, TO + addressed(node id) ahead of it: every SUB subscribes to
#   its own, so the publisher's filter sends it there only. A promise concerns its proposer
#   alone; sent to all, each ballot was N x N promises heard, and one carrying its sender's
#   earlier vote carried a whole map for every member to decode (README, "How the mesh scales").
#   So does a vote in a map with watchers (mesh/votes.py: its proposer relays a majority's),
#   a vote key asked for, and the answer to a stranded member's roll call (ADDRESSED_KINDS).
#   A map sent again to a member behind goes to it alone too (mesh/catchup.py), under a topic of
#   its own (MAPS after TO: not a hex digit, so neither topic is a prefix of the other).
#   Only to a member whose subscription to it this XPUB has seen: a member of an older version
#   (the same wire version: they upgrade one by one) does not subscribe, and gets it loud (a
#   promise) or under CATCH_UP (a map). (One topic per kind, since the members of the version
#   that addressed promises alone subscribe to that topic and drop a map under it.)
QUIET = b"\xfe"
OUTSIDE = b"\xfd"
CATCH_UP = b"\xfc"
TO = b"\xfb"
MAPS = b"m"
# - RELAYED: what a member heard from a peer, published again for members with no link of their own
#   to that peer (`relayed()`, below): TO + RELAY or RELAY_QUIET + the peer's id, then the message as
#   its sender published it, topic and all; what the peer sent to one member alone, under TO +
#   RELAY_TO + the peer's id + that member's (`relayed_to()`). No kind is a hex digit or MAPS, so no
#   member's own topics match it (a member whose id begins with the kind would have its own topic
#   read as a relay), and members of an older version, which never subscribe to it, are sent none.
#   (An older relayer takes such a request for an older member's own topic, and sends its holds
#   loud while asked: a cost of the upgrade, not a fault.)
RELAY = b"r"
RELAY_QUIET = b"q"
RELAY_TO = b"t"
RELAY_ID_CHARS = 16
ADDRESS_CHARS = 8       # addressed(): the first 8 hex digits of the member a message is for
HEX_DIGITS = b"0123456789abcdef"
_LOUD = [bytes([first]) for first in range(0xfb)]
# The counter of the messages of each kind accepted (HEARD + "heartbeat", "commit", ...):
# which kind a node's mesh time goes to (/metrics, loadtest/mesh_cost.py --kinds).
HEARD = "heard_"


def dropped_by_reason(counters: Mapping[str, int]) -> dict[str, int]:
    """Why this node's mesh dropped messages, from its counters (their sum is the stats' `mesh_dropped`):
    sent over the PUB's high-water mark, too big to send, or refused by a reader, by its reason
    (a hello that was none counts as "other")."""
    refused = {name[len("invalid_"):]: count for name, count in counters.items()
               if name.startswith("invalid_") and count}
    reasons = {"send_queue_full": counters.get("dropped", 0), "too_big": counters.get("too_big", 0), **refused,
               "other": counters.get("invalid", 0) - sum(refused.values())}
    return {reason: count for reason, count in reasons.items() if count}


# zmq's flags as plain ints: a reader asks EVENTS twice per message, and pyzmq's enums made
# each ask (and its & POLLIN) an enum construction.
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)


def addressed(node_id: str, kind: bytes = b"") -> bytes:
    """The topic of a message for `node_id` only: a promise, or with `kind` MAPS a map sent again
    (its first 8 hex digits: another member that shares them hears it too, and drops what is
    not for it, as every member did before)."""
    return TO + kind + node_id[:ADDRESS_CHARS].encode()


def relayed(origin: str, quiet: bool = False) -> bytes:
    """The topic under which a member publishes again what it heard from `origin` (its quiet
    heartbeats under their own, so that only members that watch `origin` take them)."""
    return TO + (RELAY_QUIET if quiet else RELAY) + origin[:RELAY_ID_CHARS].encode()


def relayed_to(origin: str, addressee: str) -> bytes:
    """The topic under which a member publishes again what `origin` sent to `addressee` alone
    (`addressed()`: ADDRESSED_KINDS, a map sent again), for `addressee`, which asked."""
    return TO + RELAY_TO + origin[:RELAY_ID_CHARS].encode() + addressee[:ADDRESS_CHARS].encode()


def _own_topic(topic: bytes) -> bool:
    """Whether a subscription is a member's own topic (`addressed()`, either kind), or the TO byte
    alone (a member of a version before addressed messages): what makes it addressable here."""
    rest = topic[2:] if topic[1:2] == MAPS else topic[1:]
    return topic == TO or (len(rest) == ADDRESS_CHARS and not rest.strip(HEX_DIGITS))


# What a member sends one member alone (mesh/bus.py, `addressed()`): under its plain topic, and
# maps sent again under its MAPS topic. A kind sent so must be here, or every reader drops it as
# invalid: the answers to a stranded member's roll call were (mesh/strand.py), and a member once
# stranded in a map of more than 16 (where its 8 watchers and itself are no majority) stayed so,
# without a write lease, for good.
ADDRESSED_KINDS: tuple[type, ...] = (Promise, Vote, VoteKey, RollAnswer)
ADDRESSED_MAP_KINDS: tuple[type, ...] = (Commit,)


# The reason a reader gives for a well-formed message of a kind its topic does not carry (apart
# from "schema", a malformed one): /metrics hypercache_mesh_messages_dropped_by_reason_total.
KIND_UNDER_TOPIC = "kind_under_topic"


def kinds_read_under(topic: bytes) -> tuple[type, ...] | None:
    """The kinds a reader takes under `topic` (or in a frame that starts with it), None for any:
    what goes to one member alone under `addressed()`, heartbeats under QUIET and OUTSIDE, maps
    sent again under CATCH_UP. (The simulation drops by it too: loadtest/mesh_sim.py.)"""
    first = topic[:1]
    if first == TO:
        if topic[1:2] in (RELAY, RELAY_QUIET, RELAY_TO):
            return None     # (a relay: what it carries is read by the decoder of its inner frame)
        return ADDRESSED_MAP_KINDS if topic[1:2] == MAPS else ADDRESSED_KINDS
    if first == QUIET or first == OUTSIDE:
        return (Heartbeat,)
    if first == CATCH_UP:
        return (Commit,)
    return None


def _decode_addressed(data: bytes) -> tuple[bytes, Message | Invalid]:
    """(the addressee's first hex digits, the message) of what was published under `addressed()`;
    Invalid for a kind that never goes to one member."""
    kind = MAPS if data[1:2] == MAPS else b""
    start = 1 + len(kind)
    message = decode(data[start + ADDRESS_CHARS:])
    if not isinstance(message, (*(kinds_read_under(data) or ()), Invalid)):
        return data[start:start + ADDRESS_CHARS], Invalid(KIND_UNDER_TOPIC)
    return data[start:start + ADDRESS_CHARS], message


# What is never relayed: a welcome is for the link it came in on (a hello travels in subscriptions).
_NOT_RELAYED = (Endorse, Hello)
# Origins a relayer keeps relays for, at most (each subscriber may ask for any: beyond a full map's
# peers, twice, a request is ignored), and how far ahead of the clock a relayed sequence number may be
# (a node's sequence numbers start at its clock in microseconds and grow by one a message).
MAX_RELAYED_TOPICS = 2 * MAX_MEMBERS
RELAYED_SEQ_AHEAD_US = 600_000_000
# Relays of what a peer sends one member alone: a topic per (peer, asker), so a cap of their own;
# and how many such messages per sender are remembered to drop the copy that comes the other way.
MAX_RELAYED_TO_TOPICS = 4 * MAX_MEMBERS
ADDRESSED_REMEMBERED = 64


def keys_checked(message: Message, counters: collections.Counter[str]) -> Message:
    """A relayed message as it may be taken: with a vote key only if its sender's id names that
    key (mesh/votes.py `binds`), so that a relayer cannot swap a member's key for one it signs
    with. The rest stands: a heartbeat still says its sender is alive, a `VoteKey` still asks for
    a key (mesh/bus.py learns none from an empty one). Ids that name no key (minted before ids
    named keys) have theirs heard first-hand."""
    if isinstance(message, Heartbeat) and message.vote_key and not votes.binds(message.sender, message.vote_key):
        counters["relayed_key_unbound"] += 1
        return dataclasses.replace(message, vote_key=b"")
    if isinstance(message, VoteKey) and message.key and not votes.binds(message.sender, message.key):
        counters["relayed_key_unbound"] += 1
        return dataclasses.replace(message, key=b"")
    return message


def _decode_published(data: bytes) -> Message | Invalid:
    """A message as its sender published it to all or under a topic (QUIET, OUTSIDE, CATCH_UP),
    not to one member: only heartbeats, or maps sent again, travel under a topic."""
    kinds = kinds_read_under(data)
    message = decode(data if kinds is None else data[1:])
    if kinds is not None and not isinstance(message, (*kinds, Invalid)):
        return Invalid(KIND_UNDER_TOPIC)
    return message


# The SUBs are not zmq.green sockets: green's recv() costs an EAGAIN exception, an AsyncResult,
# a Timeout and two greenlet switches per message, and its own watcher on the socket's FD calls
# back on every edge besides. Each reader only ever calls recv(NOBLOCK) once the socket's EVENTS
# say a message is there, and otherwise waits on a watcher of its FD: the hub never blocks.
# Measured with 8 SUBs receiving 31 messages a second: 224 us of CPU per message with green's
# recv, 127 us this way (/tmp bench, zmq alone).



def curve_server(sock: zmq.Socket, public: bytes, secret: bytes, domain: bytes = ZAP_DOMAIN) -> None:
    """Make `sock` a CURVE server with this pair that lets in only what this node's ZAP handler admits."""
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    sock.setsockopt(zmq.ZAP_DOMAIN, domain)
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)   # if the handler dies: refuse, not accept


def curve_client(sock: zmq.Socket, keys: MeshKeys, server_key: bytes) -> None:
    """Make `sock` a CURVE client with this node's own pair that talks only to the holder of `server_key`."""
    sock.setsockopt(zmq.CURVE_SERVERKEY, server_key)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)


def _subscribe_exactly(sub: zmq.Socket, address: tuple, want: frozenset[bytes],
                       kept: dict[tuple, frozenset[bytes]]) -> None:
    """Have the SUB at `address` subscribed to exactly `want` of the topics `kept` records for it."""
    now_on = kept.get(address, frozenset())
    if want == now_on:
        return
    for topic in want - now_on:
        sub.setsockopt(zmq.SUBSCRIBE, topic)
    for topic in now_on - want:
        sub.setsockopt(zmq.UNSUBSCRIBE, topic)
    if want:
        kept[address] = want
    else:
        kept.pop(address, None)


class _Taken:
    """The sequence numbers of the last messages taken from one sender that were for this node alone:
    such a message may come both on the sender's own link and through relays, in either order."""

    __slots__ = ("_order", "_seen")

    def __init__(self) -> None:
        self._order: collections.deque[int] = collections.deque()
        self._seen: set[int] = set()

    def first(self, seq: int) -> bool:
        """True the first time `seq` is seen (and remembered), False for a copy (or for one older
        than every number remembered, once the window is full: a copy that came very late; they
        come in either order, so the smallest, not the first in)."""
        if seq in self._seen or (len(self._order) == ADDRESSED_REMEMBERED and seq < min(self._order)):
            return False
        self._seen.add(seq)
        self._order.append(seq)
        if len(self._order) > ADDRESSED_REMEMBERED:
            self._seen.discard(self._order.popleft())
        return True


class PeerLinks:
    """The XPUB and the per-peer SUBs of one node, with the sender binding and duplicate filter on what they read."""

    def __init__(self, me: Member, bind_host: str, keys: MeshKeys | None,
                 on_message: Callable[[Message], None], on_hello: Callable[[Member, bool], None],
                 counters: collections.Counter[str], max_peers: int = MAX_MEMBERS - 1) -> None:
        if keys is not None and keys.node_id != me.node_id:
            raise ValueError("with mesh keys the node id must be the one derived from the public key")
        self.me = me
        self.counters = counters
        # mesh traffic for /metrics: messages and bytes accepted from each peer (what the PUB
        # sends goes to every peer at once: counters["out"] and ["out_bytes"])
        self.received: collections.Counter[str] = collections.Counter()
        self.received_bytes: collections.Counter[str] = collections.Counter()
        self._bind_host = bind_host
        self._on_message = on_message
        self._on_hello = on_hello
        # With CURVE keys: a context of its own, since the ZAP handler is per context (and in a
        # test several meshes share one process); without keys, behaviour is as it always was.
        self._keys = keys
        self._context = zmq.Context() if keys is not None else zmq.Context.instance()
        # zmq's default cap is 1,023 sockets a context: a member of a map near MAX_MEMBERS needs a
        # SUB per peer besides its XPUB, ZAP and data channel (a setting read when the context makes
        # its first socket: a node's does it here; in a test process an earlier one may have).
        if self._context.get(zmq.MAX_SOCKETS) < SOCKETS_PER_CONTEXT:
            self._context.set(zmq.MAX_SOCKETS, SOCKETS_PER_CONTEXT)
        # SUBs this node may open: its open-file limit's share for the mesh (hypercache/open_files.py)
        self.max_peers = max_peers
        self._refused: set[tuple] = set()      # addresses not subscribed to for want of that room
        # With a secret: node id -> own public key of each publisher whose endorsement checked out
        # (what the data channel's ZAP verdict admits too).
        self.endorsed: dict[str, bytes] = {}
        self._zap = ZapHandler(self._context, lambda domain, key: keys.admits(domain, key, self.endorsed),
                               me.node_id) if keys is not None else None
        self._pub: zmq.Socket | None = None
        self._addressable: set[bytes] = set()   # the TO topics subscribed to this XPUB (addressed())
        self._subs: dict[tuple, zmq.Socket] = {}
        self._sub_ids: dict[tuple, str] = {}    # address -> node id, bound on first message
        self._readers: dict[tuple, gevent.Greenlet] = {}
        self._watchers: dict[tuple, Any] = {}    # address -> its SUB's FD watcher (see _read)
        self._greenlets: list[gevent.Greenlet] = []
        self._last_seq: dict[str, int] = {}
        self._join_addresses: set[tuple[str, int]] = set()
        self.join_peers: set[str] = set()      # node ids heard on a link to a --join/MEET address
        self._watching: frozenset[str] | None = None    # whose quiet heartbeats to hear; None: all
        self._outsiders = True                          # hear the heartbeats of nodes outside their map
        self._catch_up = True                           # hear maps sent again
        self._topics_on: dict[tuple, tuple[bool, ...]] = {}   # SUB address -> (QUIET, OUTSIDE, CATCH_UP) on
        # Relays (`relayed()`): the topics subscribers want relayed by this node, and on each SUB
        # the relay topics this node subscribed to (the peers it hears through that one).
        self._relay_wanted: set[bytes] = set()
        self._relays_on: dict[tuple, frozenset[bytes]] = {}
        # ... and of what a peer sends one member alone: peer id prefix -> the askers' prefixes, and
        # on each SUB the askers' own topics (addressed()) this node subscribed to for them
        self._relay_to: dict[bytes, set[bytes]] = {}
        self._relayed_to_count = 0      # (the askers in _relay_to, all peers together)
        self._addressed_on: dict[tuple, frozenset[bytes]] = {}
        self._addressed_taken: dict[str, _Taken] = {}     # per sender (see _Taken)
        self._own_prefix = me.node_id[:ADDRESS_CHARS].encode()
        self._relays: dict[str, tuple[tuple[str, ...], bool]] = {}
        self.relaying = keys is None        # (a closed mesh keeps every message bound to its link)
        self._subs_made = self._relays_applied = 0      # (a SUB made since: its relays are set again)
        # messages read off each peer's own link (not relayed): how the mesh tells that a peer it
        # hears only through others is not heard directly any more (Mesh._hear_unlinked)
        self.heard_directly: collections.Counter[str] = collections.Counter()
        self.heard_directly_total = 0
        self._relayed_seq: dict[str, int] = {}     # per sender, the last seq taken from a relay
        # (origin, relayer) -> messages that relayer passed on from that origin (mesh/relays.py)
        self.relays_heard: collections.Counter[tuple[str, str]] = collections.Counter()

    @property
    def bound(self) -> bool:
        """True between a successful open() and close()."""
        return self._pub is not None

    @property
    def context(self) -> zmq.Context:
        """The sockets' context: the data channel's must be the same one (CURVE's ZAP handler is per context)."""
        return self._context

    def open(self) -> None:
        """Start the ZAP handler (with keys), bind the XPUB and listen for hellos."""
        if self._zap is not None:
            self._zap.start()
            # CURVE without a ZAP handler lets any key in: no handler, no mesh.
            if not self._zap.running:
                raise RuntimeError("mesh keys are configured but the ZAP handler is not running")
        pub = self._context.socket(zmq.XPUB)
        if self._keys is not None and self._keys.shared:
            # A client of the cluster key: only a SUB holding the secret completes the handshake; it
            # is greeted with this member's own key and its endorsement, before any other message.
            curve_client(pub, self._keys, self._keys.cluster_public)
            pub.setsockopt(zmq.XPUB_WELCOME_MSG, encode(Endorse(
                self.me.node_id, 0, self._keys.public, self._keys.endorsement(self._keys.public))))
        elif self._keys is not None:
            curve_server(pub, self._keys.public, self._keys.secret)
        pub.setsockopt(zmq.XPUB_VERBOSE, 1)
        pub.setsockopt(zmq.SNDHWM, SEND_HWM)
        pub.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        pub.setsockopt(zmq.LINGER, 0)
        pub.bind(f"tcp://{self._bind_host}:{self.me.mesh_port}")
        self._pub = pub
        self._greenlets.append(gevent.spawn(self._read_subscriptions))

    def close(self, linger_ms: int = 0) -> None:
        """Stop reading and close every socket; the XPUB keeps `linger_ms` to flush what was sent last."""
        if self._pub is None:
            return
        self._pub.setsockopt(zmq.LINGER, linger_ms)
        gevent.killall(self._greenlets)
        for watcher in self._watchers.values():
            watcher.close()
        self._watchers.clear()
        for sub in self._subs.values():
            sub.close(linger=0)
        self._pub.close()
        self._pub = None
        self._subs.clear()
        if self._zap is not None:
            self._zap.stop()

    def older_here(self) -> bool:
        """Whether a subscriber of the versions before maps were addressed is here: one that
        subscribed to its promise topic without its map topic, or to the TO byte alone (every
        first byte below 0xfc)."""
        addressable = self._addressable
        return any(topic == TO or (topic[1:2] != MAPS and TO + MAPS + topic[1:] not in addressable)
                   for topic in addressable)

    def addressable(self, node_id: str) -> bool:
        """Whether `node_id` subscribes to its own topic here: a message `addressed` to it reaches it alone."""
        return addressed(node_id) in self._addressable

    def send(self, message: Message, topic: bytes = b"", fallback: bytes = b"") -> None:
        """Publish to every peer subscribed to `topic` (QUIET, OUTSIDE, CATCH_UP, addressed(), or b"":
        all); never blocks (a full queue drops and counts). An addressed message goes under
        `fallback` instead to a member not subscribed to its own topic here (an older member, or
        not connected yet)."""
        if self._pub is None:
            return
        if topic[:1] == TO and topic not in self._addressable:
            topic = fallback
        data = topic + encode(message)
        if len(data) > MAX_MESSAGE_BYTES:
            # Every peer's SUB would drop the link over it (zmq.MAXMSGSIZE), and
            # with it the heartbeats: a big PUBLISH stays on this node instead.
            self.counters["too_big"] += 1
            log.warning("mesh message not sent: %d bytes is over the %d-byte limit kind=%s",
                        len(data), MAX_MESSAGE_BYTES, type(message).__name__)
            return
        try:
            self._pub.send(data, zmq.NOBLOCK)
            self.counters["out"] += 1
            self.counters["out_bytes"] += len(data)
        except zmq.Again:
            self.counters["dropped"] += 1

    def connect(self, host: str, mesh_port: int, node_id: str | None = None) -> None:
        """Subscribe to the peer at host:mesh_port (once), bound to `node_id` when it is known."""
        if (host, mesh_port) == (self.me.host, self.me.mesh_port):
            return
        if node_id is None:
            self._join_addresses.add((host, mesh_port))
        if self._keys is None or self._keys.shared:
            # One SUB per (address, node id): a new member at a dead member's address (a
            # replaced container, a restart without a data dir) gets a SUB bound to its own id.
            address = (host, mesh_port) if node_id is None else (host, mesh_port, node_id)
            self._subscribe(address, host, mesh_port, node_id, None)
            return
        # CURVE: every SUB pins its peer's server key, and is bound to that key's node id.
        # A known member's key is in the allow-list; behind a bare address (--join, MEET)
        # any allowed member may listen, so one SUB per allowed key: only the right one
        # completes the handshake, and the others are closed when it speaks (_settle).
        candidates = [node_id] if node_id is not None else \
            [peer for peer in self._keys.allowed if peer != self.me.node_id]
        for peer in candidates:
            key = self._keys.allowed.get(peer)
            if key is None:
                self.counters["not_allowed"] += 1
                log.warning("mesh peer not in the allow-list, not connecting node=%s peer=%s",
                            self.me.node_id[:8], peer[:8])
                continue
            self._subscribe((host, mesh_port, peer), host, mesh_port, peer, key)

    def watch(self, node_ids: frozenset[str] | None, outsiders: bool = True, catch_up: bool = True) -> None:
        """Hear the quiet heartbeats of these peers only (None: of every peer), outsiders' or not, maps sent again or not."""
        self._watching, self._outsiders, self._catch_up = node_ids, outsiders, catch_up
        for address, sub in self._subs.items():
            self._set_topics(address, sub)

    def _set_topics(self, address: tuple, sub: zmq.Socket) -> None:
        node_id = self._sub_ids.get(address)
        bare = node_id is None      # a --join/MEET address: hear all it says
        # (and what a subscriber asked this node to relay of that peer: its quiet heartbeats, its
        # heartbeats as a joiner, whether or not this node would hear them for itself)
        quiet = loud = False
        if node_id is not None and self._relay_wanted:
            quiet = relayed(node_id, quiet=True) in self._relay_wanted
            loud = relayed(node_id) in self._relay_wanted
        wanted = (bare or quiet or self._watching is None or node_id in self._watching,
                  bare or loud or self._outsiders, bare or self._catch_up)
        now_on = self._topics_on.get(address, (False, False, False))
        for topic, want, on in zip((QUIET, OUTSIDE, CATCH_UP), wanted, now_on):
            if want != on:
                sub.setsockopt(zmq.SUBSCRIBE if want else zmq.UNSUBSCRIBE, topic)
        self._topics_on[address] = wanted
        # (the topics of the members that asked for what this peer sends them alone: its publisher
        # then sends those here too, and `_read` relays them)
        askers = self._relay_to.get(node_id[:RELAY_ID_CHARS].encode(), ()) if node_id is not None else ()
        _subscribe_exactly(sub, address, frozenset(TO + kind + asker for asker in askers for kind in (b"", MAPS)),
                           self._addressed_on)

    def unlinked(self) -> frozenset[str]:
        """The peers known by id that this node has no SUB to (no room for it: `refused_now`)."""
        refused = frozenset(address[2] for address in self._refused if len(address) == 3)
        return refused - self.linked() if refused else refused

    def linked(self) -> frozenset[str]:
        """The peers this node has a SUB to, bound to their id."""
        return frozenset(self._sub_ids.values())

    def relay(self, wanted: dict[str, tuple[tuple[str, ...], bool]]) -> None:
        """Hear each origin of `wanted` through the SUBs to its relayers (origin -> (relayer ids,
        its quiet heartbeats too)): every member publishes again what it hears from a peer that
        a subscriber asked it to relay (`_relay_out`). For peers this node cannot subscribe to, or
        whose own link fell silent (Mesh._hear_unlinked)."""
        if wanted == self._relays and self._relays_applied == self._subs_made:
            return
        self._relays, self._relays_applied = dict(wanted), self._subs_made
        topics: dict[str, set[bytes]] = {}
        for origin, (relayers, quiet) in wanted.items():
            for relayer in relayers:
                on = topics.setdefault(relayer, set())
                on.add(relayed(origin))
                on.add(relayed_to(origin, self.me.node_id))
                if quiet:
                    on.add(relayed(origin, quiet=True))
        for address, sub in self._subs.items():
            node_id = self._sub_ids.get(address)
            _subscribe_exactly(sub, address, frozenset(topics.get(node_id, ())) if node_id is not None else frozenset(),
                               self._relays_on)

    def _relay_out(self, topic: bytes, data: bytes) -> None:
        """Publish again, as it came, what a peer published, under `topic` (`relayed()`, `relayed_to()`),
        if a subscriber asked this node to."""
        if topic not in self._relay_wanted or self._pub is None:
            return
        if len(topic) + len(data) > MAX_MESSAGE_BYTES:
            self.counters["relay_too_big"] += 1      # (the subscriber's SUB would drop the link over it)
            return
        try:
            self._pub.send(topic + data, zmq.NOBLOCK)
            self.counters["relayed_out"] += 1
            self.counters["out"] += 1
            self.counters["out_bytes"] += len(topic) + len(data)
        except zmq.Again:
            self.counters["dropped"] += 1

    @property
    def refused_now(self) -> int:
        """Peers not subscribed to for want of room (a degraded node: it hears them only as others relay them)."""
        return len(self._refused)

    def disconnect(self, node_id: str) -> None:
        """Close the SUBs bound to a member that is gone for good, and forget its sequence number."""
        self._refused = {a for a in self._refused if node_id not in a[2:]}
        if node_id in self._relays:     # (nor is it heard through others: a late relay would learn it again)
            self.relay({origin: how for origin, how in self._relays.items() if origin != node_id})
        for address in [a for a in self._subs if node_id in a[2:] or self._sub_ids.get(a) == node_id]:
            self._close(address)
        self._last_seq.pop(node_id, None)
        self._relayed_seq.pop(node_id, None)
        self._addressed_taken.pop(node_id, None)
        for pair in [pair for pair in self.relays_heard if node_id in pair]:
            del self.relays_heard[pair]
        self.heard_directly.pop(node_id, None)
        self.endorsed.pop(node_id, None)
        self.received.pop(node_id, None)
        self.received_bytes.pop(node_id, None)

    def _close(self, address: tuple) -> None:
        reader = self._readers.pop(address, None)
        if reader is not None:
            reader.kill(block=False)
            self._greenlets.remove(reader)
        watcher = self._watchers.pop(address, None)
        if watcher is not None:
            watcher.close()     # (before the socket, whose FD it watches, goes)
        self._subs.pop(address).close(linger=0)
        self._sub_ids.pop(address, None)
        self._topics_on.pop(address, None)
        self._relays_on.pop(address, None)
        self._addressed_on.pop(address, None)

    def _subscribe(self, address: tuple, host: str, mesh_port: int, node_id: str | None,
                   server_key: bytes | None) -> None:
        if address in self._subs:
            return
        # (the SUBs of a --join/MEET address, a few the operator named, do not count against the room:
        # a node must reach the cluster it was told to join)
        if address[:2] not in self._join_addresses and \
                sum(1 for a in self._subs if a[:2] not in self._join_addresses) >= self.max_peers:
            self._refuse(address, f"this node's open-file limit leaves the mesh room for {self.max_peers} peers")
            return
        try:
            sub = NonBlockingSocket(self._context, zmq.SUB)
        except zmq.ZMQError as error:   # EMFILE: out of files, or of the zmq context's sockets
            self._refuse(address, f"{error} (the process's open files or the zmq context's "
                                  f"{self._context.get(zmq.MAX_SOCKETS)} sockets)")
            return
        self._refused.discard(address)
        if self._keys is not None and self._keys.shared:
            # the CURVE server of this connection: the publisher proves its own key to our ZAP handler
            curve_server(sub, self._keys.cluster_public, self._keys.cluster_secret)
        elif server_key is not None and self._keys is not None:
            curve_client(sub, self._keys, server_key)
        sub.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        sub.setsockopt(zmq.LINGER, 0)
        for first in _LOUD:
            sub.setsockopt(zmq.SUBSCRIBE, first)
        sub.setsockopt(zmq.SUBSCRIBE, addressed(self.me.node_id))
        sub.setsockopt(zmq.SUBSCRIBE, addressed(self.me.node_id, MAPS))
        # No message starts with 0xff, so this topic filters nothing: it only introduces us.
        # (HELLO_BY_ADDRESS behind an address the operator gave: the publisher may be the only
        # member that knows of this node, and tells the others)
        by_address = address[:2] in self._join_addresses
        sub.setsockopt(zmq.SUBSCRIBE, b"\xff" + encode(Hello(self.me.node_id, HELLO_BY_ADDRESS if by_address else 0,
                                                               self.me)))
        try:
            sub.connect(f"tcp://{host}:{mesh_port}")
        except zmq.ZMQError as error:   # an address zmq cannot use: that peer stays unheard, nothing else
            sub.close(linger=0)
            self.counters["connect_failed"] += 1
            log.warning("mesh connect failed node=%s peer_address=%s:%d error=%s",
                        self.me.node_id[:8], host, mesh_port, error)
            return
        self._subs[address] = sub
        self._subs_made += 1
        if node_id is not None:
            self._sub_ids[address] = node_id
        self._set_topics(address, sub)
        self._watchers[address] = gevent.get_hub().loop.io(sub.getsockopt(zmq.FD), 1)
        reader = gevent.spawn(self._read, address, sub)
        self._readers[address] = reader
        self._greenlets.append(reader)
        log.info("mesh connect node=%s peer_address=%s:%d", self.me.node_id[:8], host, mesh_port)

    def _refuse(self, address: tuple, reason: str) -> None:
        """A peer this node cannot subscribe to: counted and said once per address (heard through
        relays in an open mesh, Mesh._hear_unlinked; unheard in a closed one)."""
        if address not in self._refused:
            self._refused.add(address)
            self.counters["peers_refused"] += 1
            log.warning("mesh peer not subscribed to node=%s peer_address=%s:%d reason=%s: raise 'ulimit -n' "
                        "and restart this node", self.me.node_id[:8], address[0], address[1], reason)

    def _read_subscriptions(self) -> None:
        assert self._pub is not None
        while True:
            frame = self._pub.recv()
            if frame[1:2] == TO and frame[2:3] in (RELAY, RELAY_QUIET, RELAY_TO):
                try:
                    self._relay_asked(frame[1:], frame[:1] == b"\x01")
                except Exception:   # one bad request must not end the reader every join depends on
                    log.exception("mesh relay request failed node=%s", self.me.node_id[:8])
                continue
            if frame[1:2] == TO:    # a member's own topic (zmq reports its last unsubscription only)
                if not _own_topic(frame[1:]):
                    continue        # (a kind this version does not know: nobody's own topic)
                if frame[:1] == b"\x01":
                    self._addressable.add(frame[1:])
                else:
                    self._addressable.discard(frame[1:])
                continue
            if frame[:2] != b"\x01\xff":
                continue
            hello = decode(frame[2:])
            if not isinstance(hello, Hello):
                self.counters["invalid"] += 1
                continue
            try:
                self._on_hello(hello.me, bool(hello.seq & HELLO_BY_ADDRESS))     # (a bit: room for more)
                self.connect(hello.me.host, hello.me.mesh_port, hello.sender)
            except Exception:  # one bad hello must not end the reader every join depends on
                log.exception("mesh hello failed node=%s sender=%s", self.me.node_id[:8], hello.sender[:8])

    def _relay_asked(self, topic: bytes, on: bool) -> None:
        """A subscriber asked this node to relay a peer (or the last one asking stopped): a relay
        topic of a hex id (and, for what the peer sends one member alone, that member's hex prefix),
        in an open mesh, up to MAX_RELAYED_TOPICS (MAX_RELAYED_TO_TOPICS) of them. The SUBs bound
        to that peer hear what is to be relayed, quiet heartbeats included where asked."""
        to_one = topic[1:2] == RELAY_TO
        origin = topic[2:2 + RELAY_ID_CHARS]
        asker = topic[2 + RELAY_ID_CHARS:]
        if len(origin) != RELAY_ID_CHARS or origin.strip(HEX_DIGITS) \
                or len(asker) != (ADDRESS_CHARS if to_one else 0) or asker.strip(HEX_DIGITS) \
                or asker == self._own_prefix:
            self.counters["relay_refused"] += 1     # (zmq reports an unsubscription never subscribed too)
            return
        if on and topic in self._relay_wanted:
            return      # (kept already: a repeat report)
        if on:
            if not self.relaying:
                self.counters["relay_refused"] += 1
                return
            kept, cap = (self._relayed_to_count, MAX_RELAYED_TO_TOPICS) if to_one else \
                (len(self._relay_wanted) - self._relayed_to_count, MAX_RELAYED_TOPICS)
            if kept >= cap:
                self.counters["relay_refused"] += 1
                log.warning("mesh relay not taken on node=%s: %d relays of its kind kept already",
                            self.me.node_id[:8], kept)
                return
            self._relay_wanted.add(topic)
        elif topic in self._relay_wanted:
            self._relay_wanted.discard(topic)
        else:
            return
        if to_one:
            askers = self._relay_to.setdefault(origin, set())
            if on:
                askers.add(asker)
                self._relayed_to_count += 1
            else:
                askers.discard(asker)
                self._relayed_to_count -= 1
                if not askers:
                    del self._relay_to[origin]
        prefix = origin.decode()
        for address, sub in self._subs.items():
            if self._sub_ids.get(address, "").startswith(prefix):
                self._set_topics(address, sub)

    def _endorse(self, message: Message, speaker: str | None) -> None:
        """Take a publisher's welcome (with a secret: its key is now endorsed); drop all else it sends before."""
        if isinstance(message, Endorse) and speaker == message.sender and self._keys is not None \
                and self._keys.endorses(message.key, message.tag):
            self.endorsed[speaker] = message.key
            return
        self.counters["invalid"] += 1
        self.counters["invalid_unendorsed" if not isinstance(message, Endorse) else "invalid_endorsement"] += 1

    def _settle(self, address: tuple) -> None:
        """A SUB bound to a node id got through: close the others to that address.

        They guessed other CURVE keys, or are the bare --join/MEET SUB, or are bound to
        a member that used to listen there: one process holds a port, so none will speak.
        """
        for other in [a for a in self._subs if a[:2] == address[:2] and a != address]:
            self._close(other)

    def _read(self, address: tuple, sub: zmq.Socket) -> None:
        first = True
        # With a secret, who published is what CURVE proved: the User-Id of each message.
        proven = self._keys is not None and self._keys.shared
        speaker: str | None = None
        hub = gevent.get_hub()
        watcher = self._watchers[address]
        while True:
            try:
                # (the FD signals edges, not levels: wait only once EVENTS says nothing is queued)
                if not int(sub.getsockopt(_EVENTS)) & _POLLIN:
                    hub.wait(watcher)
                    continue
                if proven:
                    frame = sub.recv(zmq.NOBLOCK, copy=False)
                    data, speaker = frame.bytes, str(frame.get("User-Id"))
                else:
                    data = sub.recv(zmq.NOBLOCK)
            except zmq.ZMQError:
                return      # closed under us (_settle, disconnect): this reader's work is done
            topic = data[:1]
            if topic == TO and data[1:2] in (RELAY, RELAY_QUIET, RELAY_TO):
                self._take_relayed(address, data)
                continue
            # (for this member, or for a member that asked this one to relay it: `_relay_asked`)
            addressee, message = _decode_addressed(data) if topic == TO else (b"", _decode_published(data))
            if isinstance(message, Invalid):
                self.counters["invalid"] += 1
                self.counters[f"invalid_{message.reason}"] += 1
                continue
            if isinstance(message, Endorse) or (speaker is not None and speaker not in self.endorsed):
                self._endorse(message, speaker)
                continue
            expected = self._sub_ids.setdefault(address, speaker or message.sender)
            if message.sender != expected or (speaker is not None and speaker != expected):
                self.counters["invalid"] += 1
                self.counters["invalid_impersonation"] += 1
                continue
            if first:
                first = False
                if len(address) == 3:
                    self._settle(address)
                if address[:2] in self._join_addresses:
                    self.join_peers.add(message.sender)
            sender, seq = message.sender, message.seq
            # (counted before the repeats: a link that brings only what relays brought first still works)
            self.heard_directly[sender] += 1
            self.heard_directly_total += 1
            # Two SUBs can reach one peer (a join address and its announce address): drop repeats.
            if seq <= self._last_seq.get(sender, -1):
                self.counters["duplicate"] += 1
                continue
            self._last_seq[sender] = seq
            if topic == TO:
                if addressee != self._own_prefix:
                    self._relay_out(relayed_to(sender, addressee.decode()), data)
                    continue
                # (a message to this node alone comes in this link's order whatever relays brought
                # meanwhile, but may have come through a relay too: `_take_relayed`)
                taken = self._addressed_taken.get(sender)
                if taken is None and sender in self._relays:
                    taken = self._addressed_taken[sender] = _Taken()
                if taken is not None and not taken.first(seq):
                    self.counters["duplicate"] += 1
                    continue
            else:
                if self._relay_wanted and not isinstance(message, _NOT_RELAYED):
                    self._relay_out(relayed(sender, quiet=topic == QUIET), data)
                if seq <= self._relayed_seq.get(sender, -1):    # (heard through a relay first)
                    self.counters["duplicate"] += 1
                    continue
            self._accept(message, len(data))

    def _accept(self, message: Message, size: int) -> None:
        """Hand on a message that passed every check, new from its sender."""
        self.counters["in"] += 1
        self.counters[HEARD + type(message).__name__.lower()] += 1
        self.received[message.sender] += 1
        self.received_bytes[message.sender] += size
        try:
            self._on_message(message)
        except Exception:  # one bad message must not end this peer's reader
            log.exception("mesh message failed node=%s sender=%s", self.me.node_id[:8], message.sender[:8])

    def _take_relayed(self, address: tuple, data: bytes) -> None:
        """A message another member relayed from a peer this node asked it to (`relay`: one it has
        no link to, or whose link fell silent), to all that asked or to this node alone
        (`relayed_to`): taken as that peer's, on the word of the member that relayed it, which must
        be the one this SUB is bound to, and must not be the sender it names."""
        relayer = self._sub_ids.get(address)
        origin = data[2:2 + RELAY_ID_CHARS].decode("ascii", "replace")
        to_one = data[1:2] == RELAY_TO
        inner = data[2 + RELAY_ID_CHARS + (ADDRESS_CHARS if to_one else 0):]
        if to_one:      # (what the origin sent this node alone: under this node's own topic)
            addressee, message = _decode_addressed(inner) if inner[:1] == TO else (b"", Invalid("schema"))
            if addressee != self._own_prefix or data[2 + RELAY_ID_CHARS:2 + RELAY_ID_CHARS + ADDRESS_CHARS] != addressee:
                message = Invalid("schema")
        else:
            message = _decode_published(inner) if inner[:1] != TO else Invalid("schema")
        if isinstance(message, Invalid) or isinstance(message, _NOT_RELAYED):
            self.counters["invalid"] += 1
            self.counters["invalid_relayed"] += 1
            return
        if relayer is None or not self.relaying or message.sender[:RELAY_ID_CHARS] != origin \
                or message.sender in (relayer, self.me.node_id):
            self.counters["invalid"] += 1
            self.counters["invalid_impersonation"] += 1
            return
        if message.sender not in self._relays:
            # (a peer this node did not ask for, or no longer does: nothing kept for it, which a
            # relayer naming made-up peers under one prefix would otherwise grow without end)
            self.counters["relayed_unasked"] += 1
            return
        if message.seq > time.time_ns() // 1000 + RELAYED_SEQ_AHEAD_US:
            self.counters["invalid"] += 1
            self.counters["invalid_relayed_seq"] += 1
            return
        self.relays_heard[(message.sender, relayer)] += 1      # (repeats too: that relayer works)
        if to_one:
            # (by the message itself, not a high-water mark: what comes to this node alone may come
            # on the origin's own link too, before or after, with other messages between)
            taken = self._addressed_taken.setdefault(message.sender, _Taken())
            if not taken.first(message.seq):
                self.counters["duplicate"] += 1
                return
        elif message.seq <= max(self._last_seq.get(message.sender, -1), self._relayed_seq.get(message.sender, -1)):
            self.counters["duplicate"] += 1     # (each origin is relayed by two members)
            return
        else:
            self._relayed_seq[message.sender] = message.seq
        self.counters["relayed_in"] += 1
        self._accept(keys_checked(message, self.counters), len(data))
