"""Decide who may speak on a CURVE-secured mesh: key files, node ids bound to keys, and the ZAP verdict.

With mesh keys configured, a node's id is derived from its CURVE public key
(`node_id_for`), so the id every message carries is bound to the key its
connection was authenticated with: a SUB pins its peer's server key, and a
message on it whose sender is not that key's id is dropped by the bus. One
member can then not speak for another, even though a SUB cannot see who
published a message.

The allow-list is a directory of public-key certificates (`*.key`, as written
by `hypercache keygen`); the ZAP handler (mesh/zap.py) asks `zap_verdict` about
every connecting peer. Apart from reading key files, nothing here does I/O.

The easy way to close a mesh is one cluster secret (`from_secret`): every
member derives the same CURVE key pair from it, every socket is a CURVE server
or client with that pair, and the allow-list holds its public key alone. What
it buys: nobody without the secret can connect, read or inject (CURVE
authenticates and encrypts every message, and its per-session nonces make a
recorded message useless to replay), on the mesh and the data channel alike,
with the cryptography in libzmq rather than per message in Python. What it
does not buy: the members are one trust domain. Node ids are then not bound to
keys, so any holder of the secret can claim any node id, exactly as it could
with per-sender HMAC keys derived from a shared secret (whoever can check a
member's MAC can make it). "No member can speak for another" needs a key per
member that the others cannot derive: per-node key pairs (`load`).
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path

from zmq.utils import z85     # (encoding only; this module opens no socket, so plain zmq is safe here)

ZAP_VERSION = b"1.0"
ZAP_DOMAIN = b"hypercache-mesh"


# A shorter secret is refused: the key pair is only as strong as what it is derived from.
MIN_SECRET_BYTES = 16
_SECRET_LABEL = b"hypercache cluster secret -> mesh CURVE key pair, v2"


@dataclass(frozen=True, slots=True)
class MeshKeys:
    public: bytes                     # this node's z85 public key (40 bytes)
    secret: bytes                     # this node's z85 secret key
    allowed: dict[str, bytes] = field(default_factory=dict)   # node id -> z85 public key of every peer allowed in
    # One key pair derived from the cluster secret, held by every member: node ids are not bound to keys.
    shared: bool = False

    @property
    def node_id(self) -> str:
        return node_id_for(self.public)

    def server_key(self, node_id: str) -> bytes | None:
        """The key a socket connecting to `node_id` must pin; None if that member is not allowed in."""
        return self.public if self.shared else self.allowed.get(node_id)

    @property
    def allowed_keys(self) -> frozenset[bytes]:
        """The public keys the ZAP handler lets in."""
        return frozenset({self.public}) if self.shared else frozenset(self.allowed.values())


def from_secret(cluster_secret: bytes) -> MeshKeys:
    """The cluster's one CURVE key pair, derived from its shared secret (the same on every member).

    A Curve25519 secret key is any 32 bytes (the curve arithmetic clamps it), so
    an HMAC-SHA256 of a fixed label under the secret is one.
    """
    if len(cluster_secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the cluster secret must be at least {MIN_SECRET_BYTES} bytes")
    from zmq import curve_public      # a libzmq call, no socket
    secret = z85.encode(hmac.new(cluster_secret, _SECRET_LABEL, hashlib.sha256).digest())
    return MeshKeys(curve_public(secret), secret, shared=True)


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


def zap_verdict(request: list[bytes], allowed_keys: frozenset[bytes]) -> tuple[list[bytes], bytes | None]:
    """Answer one ZAP request (RFC 27): (reply frames, the peer's z85 key if it was let in, else None).

    Only CURVE in our domain with a key on the allow-list passes; anything else,
    malformed requests included, is refused.
    """
    if len(request) < 6:
        return [ZAP_VERSION, b"", b"500", b"malformed request", b"", b""], None
    version, request_id, domain, _address, _identity, mechanism, *credentials = request
    if version != ZAP_VERSION:
        return [ZAP_VERSION, request_id, b"500", b"version not supported", b"", b""], None
    if mechanism != b"CURVE" or domain != ZAP_DOMAIN or len(credentials) != 1 or len(credentials[0]) != 32:
        return [version, request_id, b"400", b"CURVE only", b"", b""], None
    key = z85.encode(credentials[0])
    if key not in allowed_keys:
        return [version, request_id, b"400", b"key not allowed", b"", b""], None
    # user id = the peer's node id, for logs; the bus binds senders to keys itself.
    return [version, request_id, b"200", b"OK", node_id_for(key).encode(), b""], key
