"""Fuzz targets: the RESP request parser and the mesh message decoder, each with its seeds and its invariants.

A target takes bytes (and a random source for the RESP target's read
boundaries) and raises AssertionError, or any other exception, when an
invariant breaks:

* RESP (hypercache/resp.py): `feed` never raises; however the bytes are cut
  into reads, the requests and the protocol error are the same (the hiredis
  fast path and the careful path agree); what the parser holds stays within
  its query buffer limit plus one read.
* mesh (mesh/messages.py): `decode` never raises; a message it accepts
  encodes and decodes back to itself.

Used by tests/fuzz/run.py (`make fuzz`, a mutation fuzzer for a set time)
and by tests/unit/test_fuzz.py (a short run in every test run).
"""
from __future__ import annotations

import random

from hypercache.resp import CROSS_PROTOCOL, Limits, RequestParser
from mesh.messages import (Certificate, Commit, Gossip, Heartbeat, Hello, Invalid, Leave, Plan, Prepare, Promise, Proposal,
                           Publish, State, Vote, VoteKey, decode, digest, encode)
from mesh.slotmap import Member, SlotMap

# Redis's smallest allowed limits (CONFIG SET refuses less than 1 MB for either):
# the fast path takes only whole requests of one read (64 KB), which is below both,
# so it never checks them; a smaller limit here is a difference no node can have.
FUZZ_LIMITS = Limits(proto_max_bulk_len=1024 * 1024, client_query_buffer_limit=1024 * 1024)
READ_SIZE = 65536


def _command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


RESP_SEEDS = [
    _command(b"PING"),
    _command(b"SET", b"key", b"value") + _command(b"GET", b"key"),
    _command(b"MSET", b"a", b"1", b"b", b"2") * 3,
    b"PING\r\nSET k \"a b\\x41\" 'c'\r\n",
    b"*1\r\n$4\r\nPING\r\n*2147483647\r\n",
    b"*1000000000\r\n",
    b"*2\r\n$3\r\nGET\r\n$5000\r\n" + b"x" * 5000 + b"\r\n",
    b"*2\r\n$3\r\nGET\r\n$1048577\r\n",
    b"*3\r\n:1\r\n+OK\r\n$1\r\nx\r\n",
    b"~2\r\n$1\r\na\r\n$1\r\nb\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"*-1\r\n*0\r\n$-1\r\n",
    _command(b"SET", b"k", b"\r\n$3\r\n"),
    # runs of small bulks long enough for hiredis slices (resp._bulks), and ones with `$` payloads
    _command(b"SADD", b"s", *[b"%d" % i for i in range(40)]),
    _command(b"DEL", *[b"\r\n$%d" % i for i in range(40)]),
    # simple strings and RESP3 verbatims as elements (Redis refuses both): their sizes can
    # balance to a request's wire size (review)
    b"*3\r\n$3\r\nSET\r\n+0123456789\r\n=7\r\ntxt:val\r\n" + _command(b"GET", b"k"),
    b"*41\r\n$4\r\nSADD\r\n" + b"$1\r\nx\r\n" * 20 + b"+OK\r\n" + b"$1\r\ny\r\n" * 19,
]


def _member(index: int) -> Member:
    return Member(f"{index:040x}", "127.0.0.1", 7000 + index, 17000 + index, 9000 + index)


def _slotmap() -> SlotMap:
    return SlotMap.single(_member(1), 2).with_member(_member(2)).with_member(_member(3))


MESH_SEEDS = [encode(message) for message in (
    Heartbeat(_member(1).node_id, 7, 3, 2, digest(_slotmap()), _member(1),
              (Gossip(_member(2), 0, State.ALIVE), Gossip(_member(3), 4, State.SUSPECT)),
              1000, 2048, 12.5, ((0, 100, 42),), vote_key=b"k" * 32),
    Leave(_member(2).node_id, 3, 9),
    Proposal(_member(1).node_id, 4, 3, 2, _slotmap()),
    Vote(_member(3).node_id, 5, 3, 2, b"x" * 20, b"s" * 64),
    Certificate(_member(1).node_id, 10, 3, 2, b"x" * 20, ((0, b"s" * 64), (2, b"t" * 64))),
    VoteKey(_member(2).node_id, 11, b"k" * 32, _member(1).node_id),
    Prepare(_member(1).node_id, 7, 3, 2),
    Promise(_member(2).node_id, 9, 4, 2, _member(1).node_id, 3, _slotmap()),
    Commit(_member(2).node_id, 6, _slotmap()),
    Publish(_member(1).node_id, 8, b"news", b"hello"),
    Hello(_member(4).node_id, 0, _member(4)),
    Plan(_member(1).node_id, 12, _slotmap()),
)]


def _parse(data: bytes, cuts: list[int]) -> tuple[list[list[bytes]], str | None, int]:
    """Feed `data` cut at `cuts`; the requests, the error, and the most the parser held."""
    parser = RequestParser(FUZZ_LIMITS)
    requests: list[list[bytes]] = []
    held = 0
    start = 0
    for end in cuts + [len(data)]:
        if end <= start:
            continue
        requests += parser.feed(data[start:end])
        while parser.more:      # as the connection does: no read until the parser caught up
            held = max(held, parser.buffered)
            requests += parser.feed(b"")
        held = max(held, parser.buffered)
        start = end
        if parser.error is not None:
            break
    return requests, parser.error, held


def _until_cross_protocol(requests: list[list[bytes]]) -> list[list[bytes]]:
    """The requests a connection runs: it closes after an HTTP line (POST, Host:)."""
    for i, request in enumerate(requests):
        if request[0].lower() in CROSS_PROTOCOL:
            return requests[:i + 1]
    return requests


def _short(*values: object) -> str:
    text = repr(values)
    return text if len(text) < 300 else text[:300] + "..."


def resp_parser(data: bytes, rng: random.Random) -> None:
    whole, whole_error, _ = _parse(data, [])
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 8)))) if len(data) > 1 else []
    pieces, pieces_error, held = _parse(data, cuts)
    assert _until_cross_protocol(whole) == _until_cross_protocol(pieces), _short(whole, pieces, cuts)
    if not any(r[0].lower() in CROSS_PROTOCOL for r in whole + pieces):
        assert whole_error == pieces_error, (whole_error, pieces_error, cuts)
    assert held <= FUZZ_LIMITS.client_query_buffer_limit + READ_SIZE, held
    for request in whole:
        assert request and all(type(arg) is bytes for arg in request), _short(request)


def mesh_decoder(data: bytes, rng: random.Random) -> None:
    message = decode(data)
    if not isinstance(message, Invalid):
        assert decode(encode(message)) == message, _short(message)


TARGETS = {"resp": (resp_parser, RESP_SEEDS), "mesh": (mesh_decoder, MESH_SEEDS)}


def mutate(data: bytes, rng: random.Random, seeds: list[bytes]) -> bytes:
    """One to four random edits: flip, set, insert or delete bytes, splice a seed, write a big number."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(7)
        pos = rng.randint(0, len(out))
        if choice == 0 and out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif choice == 1 and out:
            out[rng.randrange(len(out))] = rng.choice(b"*$\r\n:+-~>|%_0123456789\x00\xff\x90\xdc\xc4")
        elif choice == 2:
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif choice == 3 and out:
            del out[pos:pos + rng.randint(1, 16)]
        elif choice == 4:
            seed = rng.choice(seeds)
            a = rng.randint(0, len(seed))
            out[pos:pos] = seed[a:a + rng.randint(1, 64)]
        elif choice == 5:
            out[pos:pos] = str(rng.choice([0, -1, 1, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64,
                                            10**9, 4097, 16385, 65536])).encode()
        else:
            out[pos:pos] = out[pos:pos + rng.randint(1, 64)] * rng.randint(1, 4)
    return bytes(out[:1 << 16])
