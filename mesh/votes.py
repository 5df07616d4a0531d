"""Sign map votes and check them, so that a vote relayed by the proposer counts as one heard from its voter.

Every member counted every vote, each read off the link bound to its voter
(mesh/links.py): a ballot among N members was N x N messages. In a map with
watchers (mesh/watch.py, more than 9 members) a vote now goes to the proposer
alone, and the proposer, once a majority of the base map voted for one map,
sends every member one `Certificate`: those votes' signatures. A member checks
each against the key its voter announced in its own heartbeats (`vote_key`,
read off that voter's link as well) and counts the votes that check out
exactly as if it had heard them (mesh/election.py). The proposer cannot make
up a vote, so a certificate proves what the votes it carries would have: a
round costs O(N) messages, and no member takes a single member's word. (But for
a peer a member has no link to, in an open mesh: its heartbeats come through a
relayer, mesh/links.py, whose word that member takes, and only it; its key too,
but only the key its id names, below.)

A node id names its vote key: a node mints its id from the key's digest
(`id_naming`) and keeps both in its data directory (hypercache/identity.py),
so a key relayed by another member (mesh/links.py) is taken only if it is the
one its sender's id names (`binds`): a relayer, the proposer included, cannot
swap a member's key for its own and make up its votes. Ids minted before ids
named keys (a data directory from before 6 December 2026, late), and ids derived from
a CURVE key (mesh/curve.py: that mesh relays nothing), name no key: their keys
are taken only off their own links. A node with no data directory mints both
anew in each process. A key that changes under one id (an old data directory,
the first start after losing the key file) is announced with the first map; the
old key's signatures stop checking out once this node has heard the new one (an
old vote relayed late then counts nothing, which is no loss).

A vote reaching one proposer, not every member, opens a race an insider could
run: signing two maps at one ballot for two proposers, with the honest votes
split exactly in half, makes both certificates a majority (before, every
member counted each voter's first vote as broadcast). A member votes at a
ballot only for the proposer it promised it to (mesh/bus.py), which narrows
that race and does not close it: this protocol tolerates crashes and checks
what it can, but does not claim to survive a member that lies on purpose.

What is signed names the voter, the ballot, the base map and the map voted for,
behind a label of its own: a signature made for anything else is never a vote.
A member's key vouches for its own votes only: one that announces a weak key
(a small-order point, which OpenSSL accepts) lets others sign as it, which gives
nobody a vote that member could not have cast itself.

Pure but for the key generation: values in, verdicts out.
"""
from __future__ import annotations

import functools
import hashlib
import struct
from typing import Iterable, Mapping, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from mesh.messages import KEY_BYTES, SIGNATURE_BYTES

_LABEL = b"hypercache map vote 1\0"
_NUMBERS = struct.Struct(">QQ")
_ID_LABEL = b"hypercache node id 1\0"
SEED_BYTES = 32


def id_naming(key: bytes) -> str:
    """The 40-hex node id that names the vote key `key` (the first 160 bits of a labelled SHA-256):
    finding another key with the same id is a second preimage, out of reach. (Not mesh/curve.py's
    `node_id_for`, the id a CURVE key gives.)"""
    return hashlib.sha256(_ID_LABEL + key).hexdigest()[:40]


def binds(node_id: str, key: bytes) -> bool:
    """True if `key` is the vote key the id `node_id` names (`id_naming`)."""
    return len(key) == KEY_BYTES and id_naming(key) == node_id


def signed_text(voter: str, ballot: int, base_epoch: int, map_digest: bytes) -> bytes:
    """What a vote's signature covers: the voter, the ballot, the base map's epoch and the map's digest."""
    return _LABEL + voter.encode() + _NUMBERS.pack(ballot, base_epoch) + map_digest


class Signer:
    """This node's vote key: signs its votes; `public` is what its heartbeats announce.

    A new key unless `seed` (its 32 private bytes, as `seed` gives them) says which."""

    def __init__(self, seed: bytes | None = None) -> None:
        self._key = Ed25519PrivateKey.generate() if seed is None else Ed25519PrivateKey.from_private_bytes(seed)
        self.public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def seed(self) -> bytes:
        """The private key's 32 bytes, for a data directory to keep (hypercache/identity.py)."""
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def sign(self, voter: str, ballot: int, base_epoch: int, map_digest: bytes) -> bytes:
        return self._key.sign(signed_text(voter, ballot, base_epoch, map_digest))


# Checking a signature is a function of its bytes alone, so its verdict may be remembered: a
# node checks each once anyway, and a simulation of N members in one process (loadtest/mesh_sim.py)
# checks each once instead of N times (~60 us each: 500 of them for each of 1,000 members).
@functools.lru_cache(maxsize=4096)
def _checks_out(key: bytes, signature: bytes, text: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, text)
    except (InvalidSignature, ValueError):
        return False
    return True


def valid(key: bytes | None, signature: bytes, voter: str, ballot: int, base_epoch: int,
          map_digest: bytes) -> bool:
    """True if `signature` is `voter`'s vote for the map `map_digest` at `ballot` on `base_epoch`, under `key`."""
    if key is None or len(key) != KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    return _checks_out(key, signature, signed_text(voter, ballot, base_epoch, map_digest))


def backers(votes: Iterable[tuple[int, bytes]], base_members: Sequence[str],
            keys: Mapping[str, bytes], ballot: int, base_epoch: int, map_digest: bytes) -> list[str]:
    """The members of the base map whose votes in a certificate check out.

    `votes` are (index of the voter in `base_members`, the base map's member ids in
    order; its signature). An index out of range, a voter named twice or a signature
    that does not check out under the key `keys` holds for its voter counts nothing.
    """
    ids = base_members
    found: list[str] = []
    seen: set[int] = set()
    for index, signature in votes:
        if not 0 <= index < len(ids) or index in seen:
            continue
        seen.add(index)
        voter = ids[index]
        if valid(keys.get(voter), signature, voter, ballot, base_epoch, map_digest):
            found.append(voter)
    return found


def certificate(signatures: Mapping[str, bytes], base_members: Sequence[str],
                keys: Mapping[str, bytes], ballot: int, base_epoch: int,
                map_digest: bytes) -> tuple[tuple[int, bytes], ...]:
    """The (index, signature) pairs of the votes in `signatures` (voter -> signature) that check out,
    in the base map's order: what the proposer relays (a signature that would not check out at
    the members would only make the certificate longer)."""
    return tuple((index, signatures[voter]) for index, voter in enumerate(base_members)
                 if voter in signatures
                 and valid(keys.get(voter), signatures[voter], voter, ballot, base_epoch, map_digest))
