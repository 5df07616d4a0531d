"""Write a small file whole and durably: what a node keeps across restarts (its ballot, its id and vote key).

A crash or a power loss leaves the old file or the new one, never a part of
either: the bytes go to a temporary file beside it, are synced, renamed over
it, and the directory is synced so that the rename itself survives. The
temporary file is created afresh (never a leftover, never through a link
someone left in its place), with the mode the file is to have.
"""
from __future__ import annotations

import os
from pathlib import Path


def write_durably(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
