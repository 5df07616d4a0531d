"""Decide who may speak on a CURVE-secured mesh: key files, node ids bound to keys, and the ZAP verdict.

With mesh keys configured, a node's id is derived from its own CURVE public
key (`node_id_for`), so the id every message carries is bound to the key its
connection was authenticated with, and the links drop a message whose sender
is not that key's id: one member cannot speak for another. Two ways there:

- per-node key pairs (`load`): an allow-list directory of public-key
  certificates (`*.key`, as written by `hypercache keygen`); every SUB pins its
  peer's server key;
- one cluster secret (`from_secret`): every member still has its *own* key
  pair (made at its first start, kept in its data directory: `member_pair`),
  and the secret does two things only. (1) Admission: every member derives the
  same "cluster" key pair from it; the mesh's XPUB is a CURVE *client* that
  pins the cluster key, so only a holder of the secret can subscribe (listen,
  or send a Hello), and the data channel's ROUTER is a CURVE server with it.
  (2) Endorsement: a member's own public key comes with HMAC(secret, key)
  (`endorsement`), sent as its XPUB's welcome message, so a publisher shows it
  holds the secret too. The SUBs are CURVE *servers* with the cluster pair:
  the handshake proves the publisher's own key, and every message read arrives
  stamped with that key's node id (ZeroMQ's User-Id, from the ZAP reply).
  Nothing derived from the secret lets a holder speak as another member: the
  cluster pair and endorsements only admit, while a member's id is the hash of
  a key whose secret half only that member has.

Apart from reading and writing key files, nothing here does I/O; the ZAP
handler (mesh/zap.py) asks `zap_verdict` about every connecting peer.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from zmq.utils import z85     # (encoding only; this module opens no socket, so plain zmq is safe here)

ZAP_VERSION = b"1.0"
ZAP_DOMAIN = b"hypercache-mesh"       # the mesh's sockets that are CURVE servers
DATA_DOMAIN = b"hypercache-data"      # the data channel's ROUTER


# A shorter secret is refused: the key pair is only as strong as what it is derived from.
MIN_SECRET_BYTES = 16
_SECRET_LABEL = b"hypercache cluster secret -> mesh CURVE key pair, v2"
_ENDORSE_LABEL = b"hypercache cluster secret -> endorsement of a member's own key, v1"


@dataclass(frozen=True, slots=True)
class MeshKeys:
    public: bytes                     # this node's own z85 public key (40 bytes): its node id is its hash
    secret: bytes = field(repr=False)  # this node's own z85 secret key
    allowed: dict[str, bytes] = field(default_factory=dict)   # per-node keys: node id -> z85 key let in
    # With a cluster secret: the pair every member derives from it (admission only) and the key
    # that endorses a member's own public key (`endorsement`). Empty with per-node keys.
    cluster_public: bytes = b""
    cluster_secret: bytes = field(default=b"", repr=False)
    endorser: bytes = field(default=b"", repr=False)

    @property
    def shared(self) -> bool:
        """True when the mesh is closed with a cluster secret (members' own keys endorsed by it)."""
        return bool(self.cluster_public)

    @property
    def node_id(self) -> str:
        return node_id_for(self.public)

    def server_key(self, node_id: str) -> bytes | None:
        """The key a socket connecting to `node_id` pins; None if that member is not allowed in.

        With a cluster secret, the cluster key: the data channel's ROUTER presents it, and a
        mesh XPUB pins it (the SUB, the server, presents it)."""
        return self.cluster_public if self.shared else self.allowed.get(node_id)

    def endorsement(self, public: bytes) -> bytes:
        """HMAC(secret, a member's own z85 public key): shows that a holder of the secret owns that key."""
        return hmac.new(self.endorser, _ENDORSE_LABEL + public, hashlib.sha256).digest()

    def endorses(self, public: bytes, tag: bytes) -> bool:
        return self.shared and hmac.compare_digest(self.endorsement(public), tag)

    def admits(self, domain: bytes, public: bytes, endorsed: Mapping[str, bytes]) -> bool:
        """Whether the ZAP handler lets in a peer presenting `public` (z85) on a socket of `domain`.

        Per-node keys: the allow-list. Cluster secret: on the mesh (our SUBs are CURVE servers
        connecting to publishers this node chose) any key: the publisher's endorsement arrives
        as its first message, and the links check it; on the data channel, only keys already
        endorsed on the mesh (a primary that is not yet is refused, and ZeroMQ tries again).
        """
        if not self.shared:
            return public in self.allowed.values()
        if domain == ZAP_DOMAIN:
            return True
        return endorsed.get(node_id_for(public)) == public


def from_secret(cluster_secret: bytes, own: tuple[bytes, bytes] | None = None) -> MeshKeys:
    """This member's keys with a cluster secret: its own pair (`own`, or a fresh one) and the secret's.

    The cluster pair is the same on every member: a Curve25519 secret key is
    any 32 bytes (the curve arithmetic clamps it), so an HMAC-SHA256 of a fixed
    label under the secret is one. It admits; it names nobody.
    """
    if len(cluster_secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the cluster secret must be at least {MIN_SECRET_BYTES} bytes")
    from zmq import curve_keypair, curve_public      # libzmq calls, no socket
    shared_secret = z85.encode(hmac.new(cluster_secret, _SECRET_LABEL, hashlib.sha256).digest())
    public, secret = own if own is not None else curve_keypair()
    return MeshKeys(public, secret, cluster_public=curve_public(shared_secret), cluster_secret=shared_secret,
                    endorser=hmac.new(cluster_secret, _ENDORSE_LABEL, hashlib.sha256).digest())


def member_pair(data_dir: str) -> tuple[bytes, bytes] | None:
    """This member's own key pair, kept in its data directory (made at its first start); None without one.

    Its node id is the hash of the public half, so a restart with the same
    directory is the same member (as `node.id` made it before).
    """
    if not data_dir:
        return None
    from zmq.auth import create_certificates, load_certificate   # file I/O only, no sockets
    path = Path(data_dir) / "mesh.key_secret"
    if not path.exists():
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        _, secret_file = create_certificates(data_dir, "mesh")
        Path(secret_file).chmod(0o600)
    public, secret = load_certificate(path)
    if not secret or len(z85.decode(public)) != 32:
        raise ValueError(f"{path} is not a CURVE key pair")
    return public, secret


def node_id_for(public_key: bytes) -> str:
    """The 40-hex node id of the member holding this z85 public key."""
    return hashlib.sha1(public_key).hexdigest()


def load(secret_key_file: str | Path, public_keys_dir: str | Path) -> MeshKeys:
    """Read this node's key pair and the allow-list; ValueError if either is missing or malformed."""
    from zmq.auth import load_certificate, load_certificates   # file parsing only, no sockets
    public, secret = load_certificate(secret_key_file)
    if not secret:
        raise ValueError(f"{secret_key_file} holds no secret key (use the .key_secret file)")
    if not Path(public_keys_dir).is_dir():
        raise ValueError(f"{public_keys_dir} is not a directory of public keys")
    allowed = {node_id_for(key): key for key in load_certificates(public_keys_dir)}
    for key in allowed.values():
        if len(z85.decode(key)) != 32:
            raise ValueError(f"a key in {public_keys_dir} is not a CURVE public key")
    return MeshKeys(public, secret, allowed)


def keygen(directory: str | Path, name: str) -> tuple[Path, Path]:
    """Write NAME.key (public: share it in every peer's allow-list) and NAME.key_secret (keep it here)."""
    from zmq.auth import create_certificates
    Path(directory).mkdir(parents=True, exist_ok=True)
    public_file, secret_file = create_certificates(directory, name)
    Path(secret_file).chmod(0o600)
    return Path(public_file), Path(secret_file)


def zap_verdict(request: list[bytes], admits: Callable[[bytes, bytes], bool]) -> tuple[list[bytes], bytes | None]:
    """Answer one ZAP request (RFC 27): (reply frames, the peer's z85 key if it was let in, else None).

    Only CURVE in one of our domains with a key that `admits(domain, key)`
    passes; anything else, malformed requests included, is refused.
    """
    if len(request) < 6:
        return [ZAP_VERSION, b"", b"500", b"malformed request", b"", b""], None
    version, request_id, domain, _address, _identity, mechanism, *credentials = request
    if version != ZAP_VERSION:
        return [ZAP_VERSION, request_id, b"500", b"version not supported", b"", b""], None
    if mechanism != b"CURVE" or domain not in (ZAP_DOMAIN, DATA_DOMAIN) or len(credentials) != 1 \
            or len(credentials[0]) != 32:
        return [version, request_id, b"400", b"CURVE only", b"", b""], None
    key = z85.encode(credentials[0])
    if not admits(domain, key):
        return [version, request_id, b"400", b"key not allowed", b"", b""], None
    # User-Id = the peer's node id: ZeroMQ stamps it on every message read from that peer, which is
    # how a ROUTER (and, with a cluster secret, a SUB) knows who sent what.
    return [version, request_id, b"200", b"OK", node_id_for(key).encode(), b""], key
