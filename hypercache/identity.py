"""A node's identity: its 40-hex id and its vote key (mesh/votes.py), kept in its data directory.

The id is minted from the key (mesh/votes.py `id_naming`), so that a member
hearing this node's key through another member's relay can tell it is this
node's (mesh/links.py). Both stay across restarts when a data directory is
given; without one each process mints its own. With mesh keys the id is the
CURVE key's (mesh/curve.py) and only the vote key is kept here.

Files: `node.id` (the id) and `vote.key` (the key's 32 private bytes in hex,
readable by the owner alone), each written whole and durably, the key first.
A data directory written before ids named keys has an id and no key: it
keeps its id, which then names no key, and gets a key of its own (its peers
take that key only off its own link; `Identity.bound` says which, and the node
warns). A key file that cannot be read stops the start with an error naming
it, rather than a new key under an id that names the lost one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mesh.durable import write_durably
from mesh.votes import SEED_BYTES, Signer, binds, id_naming

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
        return binds(self.node_id, self.signer.public)


def load_identity(data_dir: str, node_id: str | None = None) -> Identity:
    """This node's id and vote key: read from `data_dir`, or minted (and written there, if given).

    `node_id`: the id the node has from its mesh keys; then only the key is read or kept."""
    if not data_dir:
        signer = Signer()
        return Identity(id_naming(signer.public) if node_id is None else node_id, signer)
    directory = Path(data_dir)
    kept = _read_key(directory / KEY_FILE)
    if kept is None:
        signer = Signer()
        write_durably(directory / KEY_FILE, signer.seed.hex().encode() + b"\n", 0o600)
    else:
        signer = kept
    if node_id is not None:
        return Identity(node_id, signer)
    known = _read_id(directory / ID_FILE)
    if known is None:
        known = id_naming(signer.public)
        write_durably(directory / ID_FILE, known.encode() + b"\n", 0o644)
    return Identity(known, signer)


def _read(path: Path) -> str | None:
    """The file's text, None if there is none; ValueError naming it if it cannot be read."""
    try:
        return path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None


def _read_id(path: Path) -> str | None:
    # (text that is not an id is taken as none, as it always was: the id is minted anew)
    text = _read(path)
    return text if text is not None and _HEX_ID.fullmatch(text) else None


def _read_key(path: Path) -> Signer | None:
    text = _read(path)
    if text is None:
        return None
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        seed = b""
    if len(seed) != SEED_BYTES:
        raise ValueError(f"{path} is not a vote key ({SEED_BYTES * 2} hex digits); remove it and "
                         f"{path.with_name(ID_FILE)} to start this node as a new member")
    return Signer(seed)
