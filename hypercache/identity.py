"""A node's identity: its 40-hex id and its vote key (mesh/votes.py), kept in its data directory.

The id is minted from the key (mesh/votes.py `node_id_for`), so that a member
hearing this node's key through another member's relay can tell it is this
node's (mesh/links.py). Both stay across restarts when a data directory is
given; without one each process mints its own.

Files: `node.id` (the id, as before keys were bound) and `vote.key` (the
key's 32 private bytes in hex, readable by the owner alone). A data directory
from before 7 December 2026 has an id and no key: it keeps its id, which then
names no key, and gets a key of its own (its peers take that key only off
its own link). An unreadable key file stops the start with an error naming it,
rather than a new key under an id that names the lost one.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from mesh.votes import SEED_BYTES, Signer, node_id_for

ID_FILE = "node.id"
KEY_FILE = "vote.key"
_HEX_ID = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Identity:
    node_id: str
    signer: Signer

    @property
    def bound(self) -> bool:
        """True if the id names the key: relays may carry the key (mesh/votes.py `binds`)."""
        return node_id_for(self.signer.public) == self.node_id


def load_identity(data_dir: str) -> Identity:
    """This node's id and vote key: read from `data_dir`, or minted (and written there, if given)."""
    if not data_dir:
        signer = Signer()
        return Identity(node_id_for(signer.public), signer)
    directory = Path(data_dir)
    kept = _read_key(directory / KEY_FILE)
    node_id = _read_id(directory / ID_FILE)
    if kept is None:
        signer = Signer()
        _write(directory / KEY_FILE, signer.seed.hex(), private=True)
    else:
        signer = kept
    if node_id is None:
        node_id = node_id_for(signer.public)
        _write(directory / ID_FILE, node_id, private=False)
    return Identity(node_id, signer)


def _read_id(path: Path) -> str | None:
    # (a file that is not an id is taken as none, as before keys were bound: the id is minted anew)
    try:
        text = path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return None
    return text if _HEX_ID.fullmatch(text) else None


def _read_key(path: Path) -> Signer | None:
    try:
        text = path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return None
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        seed = b""
    if len(seed) != SEED_BYTES:
        raise ValueError(f"{path} is not a vote key ({SEED_BYTES * 2} hex digits); remove it and "
                         f"{path.with_name(ID_FILE)} to start this node as a new member")
    return Signer(seed)


def _write(path: Path, text: str, private: bool) -> None:
    """Write `text` to `path` whole or not at all (a crash leaves the old file or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)     # (a leftover would keep its own mode)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
