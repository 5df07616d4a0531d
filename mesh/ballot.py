"""Keep this node's ballot (the highest epoch it voted in, the epoch it holds) on disk across restarts.

Two different maps are never committed with one epoch only if every member
votes at most once per epoch. A vote held in memory alone is forgotten by a
restart: a node that voted for map A at epoch 7, crashed and came back with the
same id could then vote for map B at epoch 7 and make a second majority. So
the bus saves the ballot *before* its vote leaves the node, and a restarted
node starts from the saved one.

The file is written whole to a temporary name, flushed to disk and renamed
over the old one (os.replace is atomic), so a crash leaves the old ballot or
the new, never half of one. A file that exists but cannot be read is an error,
not an empty ballot: starting at voted_epoch 0 is exactly the double vote this
file exists to prevent; the operator decides (delete it only if the node's id
is deleted too).

Without a data directory nothing is saved: such a node gets a fresh random id
at every start, so a restarted node is a new voter and cannot vote twice.
The slot map itself is not restored: a restarted node rejoins and adopts the
cluster's current map, which may have moved its slots away in the meantime.
Its last vote is kept whole (ballot, base epoch and the packed map): a
promise must report it, or a map that may have been chosen could be replaced.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mesh.durable import write_durably

FILE_NAME = "ballot.json"


@dataclass(frozen=True, slots=True)
class Ballot:
    voted_epoch: int = 0     # highest ballot this node has promised or voted in
    epoch: int = 0           # epoch of the last map it committed (display and sanity only)
    vote_ballot: int = 0     # the last vote: its ballot, the base map's epoch, the map (mesh.messages.pack_slotmap)
    vote_base: int = 0
    vote_map: bytes = b""


class BallotError(RuntimeError):
    """The ballot file exists but is not a ballot."""


def load(path: Path) -> Ballot:
    """Return the saved ballot, Ballot() if there is none; BallotError if the file is damaged."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Ballot()
    try:
        fields = json.loads(text)
        ballot = Ballot(fields["voted_epoch"], fields["epoch"], fields.get("vote_ballot", 0),
                        fields.get("vote_base", 0), bytes.fromhex(fields.get("vote_map", "")))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise BallotError(f"{path} is not a ballot ({error}); refusing to forget past votes") from error
    if not all(type(value) is int and value >= 0
               for value in (ballot.voted_epoch, ballot.epoch, ballot.vote_ballot, ballot.vote_base)):
        raise BallotError(f"{path} holds negative or non-integer epochs")
    return ballot


def save(path: Path, ballot: Ballot) -> None:
    """Write the ballot atomically and durably (mesh/durable.py)."""
    fields = {"voted_epoch": ballot.voted_epoch, "epoch": ballot.epoch}
    if ballot.vote_map:
        fields.update(vote_ballot=ballot.vote_ballot, vote_base=ballot.vote_base, vote_map=ballot.vote_map.hex())
    write_durably(path, json.dumps(fields).encode() + b"\n")
