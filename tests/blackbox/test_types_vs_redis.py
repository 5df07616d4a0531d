"""Hashes, lists, sets and sorted sets on a real node, byte for byte against a real redis-server.

Each script in types_scripts/ is a sequence of commands, one per line, run on a
fresh connection to both servers, in RESP2 and in RESP3; every raw reply must
be identical. `{P}` becomes a hash tag unique to the run and protocol, so all
keys of a script share a slot. A line starting with `~` is compared as an
unordered collection (a hashtable's iteration order is Redis's own).
"""
from __future__ import annotations

import shlex
from pathlib import Path

import hiredis
import pytest

from tests.nodes import encode_command, raw_connect, read_raw_reply

SCRIPTS = Path(__file__).parent / "types_scripts"


def call(sock, args: list[bytes]) -> bytes:
    """Send one command; the raw bytes of its reply."""
    sock.sendall(encode_command(*args))
    return read_raw_reply(sock)


def _flat(value) -> list:
    if isinstance(value, list):
        out = []
        for item in value:
            out.extend(_flat(item))
        return out
    return [value]


def unordered(raw: bytes) -> list:
    reader = hiredis.Reader()
    reader.feed(raw)
    return sorted(map(repr, _flat(reader.gets())))


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("script", sorted(p.stem for p in SCRIPTS.glob("*.txt")))
def test_script_matches_redis(node, redis_server, script: str, protocol: int) -> None:
    lines = [line for line in (SCRIPTS / f"{script}.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    tag = "{t%d}" % protocol
    ours, theirs = raw_connect(node.port), raw_connect(redis_server.port)
    try:
        if protocol == 3:
            call(ours, [b"HELLO", b"3"])
            call(theirs, [b"HELLO", b"3"])
        mismatches = []
        for line in lines:
            loose = line.startswith("~")
            args = [a.replace("{P}", tag).encode() for a in shlex.split(line.lstrip("~"))]
            expected, got = call(theirs, args), call(ours, args)
            if (unordered(expected) != unordered(got)) if loose else (expected != got):
                mismatches.append(f"{line}\n    redis-server: {expected!r}\n    hypercache:   {got!r}")
        assert not mismatches, "\n".join(mismatches)
    finally:
        ours.close()
        theirs.close()
