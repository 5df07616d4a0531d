"""RESP requests in: a sans-IO parser of one connection's bytes, with Redis's limits.

Parsing has two paths that must agree:

* the fast path hands a whole read to `hiredis.Reader` (C) and accepts the
  result only when the read ended exactly on a request boundary and every
  element was a bulk string; that is what well-behaved clients send, and it
  keeps the parse of a request near 0.2 us;
* the careful path is a Python parser that owns the bytes whenever the fast
  path cannot vouch for them: a request split across reads, an inline command
  typed into telnet, anything malformed, and every client that has not
  authenticated yet. It enforces the limits *before* buffering a declared
  length, with Redis's exact error texts.

Replies go out through hypercache/reply.py.
"""
from __future__ import annotations

from typing import Final
import re
from dataclasses import dataclass
from itertools import accumulate

import hiredis

from . import inplace

CRLF = b"\r\n"
INLINE_MAX_SIZE = 64 * 1024          # Redis PROTO_INLINE_MAX_SIZE
UNAUTH_MAX_ARGS = 10                 # Redis's limits before AUTH succeeds
UNAUTH_MAX_BULK = 16384
INT_MAX = 2**31 - 1
# hiredis allocates an aggregate as soon as it reads the header, and freeing a
# list of n (never filled) items touches all of it: `*1000000000\r\n` stalled
# the hub 2-5 s. A count of 7 digits or more is left to the careful path, which
# never allocates ahead of the bytes. `*` heads every request, so its search has
# a literal prefix (~1 ns a byte); `~`, `>` and `|` (RESP3 sets, pushes and
# attributes, which clients never send) are searched for only when present.
_BIG_ARRAY = re.compile(rb"\*[0-9]{7}")
_BIG_RESP3_AGGREGATE = re.compile(rb"[~>|][0-9]{7}")
# A bulk at least this long that is not all read yet is written into its final
# bytes object as it arrives (hypercache/inplace.py): copying 400 MB at once when
# the last byte came stalled the hub 2.2 s.
BIG_BULK = 1024 * 1024
# How much a connection reads at a time (hypercache/connection.py). Inside a
# request of many arguments it reads less: the careful path parses tiny
# arguments at 2-5 us each, so a 64 KB read of empty ones held the hub 20-50 ms
# (324 ms once under load); a quarter of that keeps a turn short.
READ_SIZE: Final = 65536
MANY_ARGS = 4096
MANY_ARGS_READ_SIZE = 16384
# And however much a read holds, the careful path parses at most this many
# arguments per call: one read (the first of a request is 64 KB, ~11,000 empty
# arguments) cost 20-35 ms of hub time at once. It stops with `more` set, and
# the connection comes back on the hub's next turn (after other clients' I/O)
# without reading, until the parser has caught up.
ARGS_PER_TURN = 1024
# Runs of small bulks inside a big request go to hiredis in slices of up to
# this many (`_bulks`): ~0.3 us an argument instead of 2-5 us. A slice costs
# the budget an eighth of its arguments, at least BULKS_MIN (it copies the
# buffer), and after a try that failed a call parses one by one (a try reads
# the whole buffer: a try per argument was quadratic).
BULKS_MIN = 32
BULKS_MAX = 8192
# hiredis allocates an aggregate at its header: one of 5+ digits anywhere in the
# bytes is not handed to it here (nor a run of bulks after it: a payload that
# looks like one only costs the one-by-one parse).
_SIZED_AGGREGATE = re.compile(rb"[*%~>|][0-9]{5}")
# What holding one argument costs beyond its bytes (object header, list slot):
# counted so that millions of empty arguments still meet the query buffer limit.
ARG_OVERHEAD = 40
# An HTTP request line (POST) or header (Host:) read as an inline command: the
# node closes the connection on it (commands/connection.py). Parsing stops
# there, as in Redis, which reads one request at a time, so the rest of an HTTP
# request (a browser's `sec-ch-ua: "Chromium";v="120"` is unbalanced quotes)
# cannot earn a protocol error reply before the connection closes in silence.
CROSS_PROTOCOL = (b"post", b"host:")


@dataclass(frozen=True, slots=True)
class Limits:
    proto_max_bulk_len: int = 512 * 1024 * 1024
    client_query_buffer_limit: int = 1024 * 1024 * 1024


def _parse_length(line: bytes | bytearray) -> int | None:
    """Parse a header number exactly as Redis's string2ll: optional '-', digits, no leading zero."""
    if not line or len(line) > 20:
        return None
    negative = line[:1] == b"-"
    body = line[1:] if negative else line
    # string2ll accepts "0" but not "-0", "00" or "01", and nothing outside a long long
    if not body.isdigit() or (body[:1] == b"0" and (negative or len(body) > 1)):
        return None
    value = int(line)
    return value if -2**63 <= value < 2**63 else None


class RequestParser:
    """Bytes from one connection in, complete requests (lists of bytes) out.

    `feed(data)` returns the requests completed by `data`. If the stream broke
    the protocol, the requests before the fault are still returned and
    `self.error` holds the message; the connection answers it and closes.
    """

    __slots__ = ("limits", "authenticated", "error", "_reader", "_careful",
                 "_buf", "_args", "_need", "_bulk", "_args_bytes", "_filling", "read_size", "more")

    def __init__(self, limits: Limits = Limits(), authenticated: bool = True) -> None:
        self.limits = limits
        self.authenticated = authenticated
        self.error: str | None = None
        self._reader = hiredis.Reader()
        self._careful = False
        self._buf = bytearray()
        self._args: list[bytes] | None = None   # request being assembled (careful path)
        self._need = 0                          # arguments still to read for it
        self._bulk = -1                         # declared length of the bulk being read
        self._args_bytes = 0
        self._filling: inplace.Filling | None = None    # a big bulk being read (BIG_BULK)
        self.read_size = READ_SIZE      # what the connection should read next
        self.more = False               # parsing stopped at ARGS_PER_TURN: feed(b"") goes on

    @property
    def holds_bytes(self) -> bool:
        """Unparsed bytes are held (the careful path): `feed(b"")` may yield more requests."""
        return bool(self._buf) and self._filling is None

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete request (query buffer size)."""
        return len(self._buf) + self._args_bytes + (self._filling.filled if self._filling is not None else 0)

    def feed(self, data: bytes) -> list[list[bytes]]:
        """Requests completed by `data`; `feed(b"")` continues with bytes already held.

        Before authentication the parser hands out one request at a time: the
        connection runs it (it may be AUTH) and feeds b"" for the next, so a
        request pipelined behind a successful AUTH gets the post-auth limits,
        as in Redis, which parses and runs requests one by one.

        The fast path is inlined here (one call per read matters at one
        request per read): `data` must start a request and end a line.
        """
        if (data and data[0] == 42 and data[-1] == 10 and not self._careful and self.authenticated
                and self.error is None and _BIG_ARRAY.search(data) is None
                and (data.find(b"~") == data.find(b">") == data.find(b"|") == -1
                     or _BIG_RESP3_AGGREGATE.search(data) is None)):
            reader = self._reader
            reader.feed(data)
            gets = reader.gets
            frames = []
            pos = 0         # where the next request or bulk string must start in `data`
            try:
                frame = gets()
                while frame is not False:
                    # Every request must be a non-empty array of bulk strings:
                    # hiredis also accepts nested arrays, integers, nils and maps,
                    # which Redis refuses ("expected '$', got ..."); the careful
                    # path says so.
                    if type(frame) is not list or not frame or data[pos] != 42:    # "*"
                        break
                    size = len(frame)
                    pos += 4 if size < 10 else 5 if size < 100 else 3 + len(str(size))
                    for arg in frame:
                        # (a simple string "+x" or a RESP3 verbatim "=" comes back as bytes too:
                        # each argument must start with "$" where its bulk would)
                        if type(arg) is not bytes or data[pos] != 36:                # "$"
                            break
                        size = len(arg)
                        pos += size + (6 if size < 10 else 7 if size < 100 else 8 if size < 1000
                                       else 5 + len(str(size)))
                    else:       # every argument is a bulk string: take it, read the next
                        frames.append(frame)
                        frame = gets()
                        continue
                    break       # one argument is not
                else:           # hiredis has no more whole replies
                    # The read must be exactly these requests, each an array of bulk strings
                    # at the offsets their sizes put them (hiredis refuses a length with a
                    # leading zero, so a size is its bytes): `pos` ends at the read's end. An
                    # unfinished next request that hiredis holds leaves bytes after it.
                    # (Counting CRLFs and "\r\n$", as this did, scanned the read twice more:
                    # ~30 ns a request at -P 16.) A bulk whose two closing bytes are not CRLF
                    # is skipped unread, as Redis does; if its skipped bytes began a next
                    # request that hiredis then took in, that request is partial (the fuzzer
                    # found its header lost: the rest ran as inline commands). An empty array
                    # comes back at once only from a reader that holds nothing partial.
                    if frames and pos == len(data) and not reader.has_data():
                        reader.feed(b"*0\r\n")
                        if reader.gets() == []:
                            return frames
            except (hiredis.ProtocolError, TypeError, IndexError, MemoryError):
                pass    # (hiredis allocates a declared array at once: 2**32-1 elements fail)
            self._reader = hiredis.Reader()
        if self.error is not None:
            return []
        if not data:
            return self._parse_buffer() if self._buf else []
        self._careful = True
        self._buf += data
        return self._parse_buffer()

    # -- careful path ------------------------------------------------------------

    def release(self) -> None:
        """Drop whatever a closed connection's request held (a bulk still arriving: up to 512 MB)."""
        self.more = False
        self._buf = bytearray()
        self._args = None
        self._args_bytes = 0
        self._filling = None
        self._reader = hiredis.Reader()

    def _fail(self, message: str) -> None:
        self.error = message
        self.more = False
        self.read_size = READ_SIZE
        self._buf = bytearray()
        self._args = None
        self._filling = None

    def _parse_buffer(self) -> list[list[bytes]]:
        buf = self._buf
        pos = 0
        out: list[list[bytes]] = []
        limits = self.limits
        budget = ARGS_PER_TURN
        bulks = self.authenticated      # runs of bulks may go to hiredis (_bulks) until a try fails
        self.more = False
        while pos < len(buf):
            if budget <= 0:
                self.more = True
                break
            budget -= 1
            if self._args is None:
                if buf[pos] != 42:   # an inline command
                    end = buf.find(b"\n", pos)
                    if end == -1:
                        if len(buf) - pos > INLINE_MAX_SIZE:
                            self._fail("too big inline request")
                            return out
                        break
                    line = bytes(buf[pos:end]).rstrip(b"\r")
                    pos = end + 1
                    args = split_inline(line)
                    if args is None:
                        self._fail("unbalanced quotes in request")
                        return out
                    if args:
                        out.append(args)
                        if not self.authenticated or args[0].lower() in CROSS_PROTOCOL:
                            break
                    continue
                end = buf.find(CRLF, pos)
                if end == -1:
                    if len(buf) - pos > INLINE_MAX_SIZE:
                        self._fail("too big mbulk count string")
                        return out
                    break
                count = _parse_length(buf[pos + 1:end])
                if count is None or count > INT_MAX:
                    self._fail("invalid multibulk length")
                    return out
                if not self.authenticated and count > UNAUTH_MAX_ARGS:
                    self._fail("unauthenticated multibulk length")
                    return out
                pos = end + 2
                if count <= 0:
                    continue
                self._args = []
                self._need = count
                self._bulk = -1
                if count > MANY_ARGS:
                    self.read_size = MANY_ARGS_READ_SIZE
            # inside a multibulk request
            if bulks and self._bulk == -1 and self._need >= BULKS_MIN:
                taken = _bulks(buf, pos, self._need)
                if taken is None:
                    bulks = False       # one by one for the rest of this call: a try reads the buffer
                else:
                    args, pos, size = taken
                    self._args.extend(args)
                    self._args_bytes += size + ARG_OVERHEAD * len(args)
                    self._need -= len(args)
                    budget -= max(len(args) // 8, BULKS_MIN)     # (each slice copies the buffer)
                    if self._need == 0:
                        out.append(self._args)
                        self._args = None
                        self._args_bytes = 0
                        self.read_size = READ_SIZE
                    continue
            if self._bulk == -1:
                end = buf.find(CRLF, pos)
                if end == -1:
                    if len(buf) - pos > INLINE_MAX_SIZE:
                        self._fail("too big bulk count string")
                        return out
                    break
                # as Redis: the line must be complete before its first byte is judged
                if buf[pos] != 36:   # b"$"
                    self._fail("expected '$', got '%s'" % chr(buf[pos]))
                    return out
                length = _parse_length(buf[pos + 1:end])
                if length is None or length < 0 or length > limits.proto_max_bulk_len:
                    self._fail("invalid bulk length")
                    return out
                if not self.authenticated and length > UNAUTH_MAX_BULK:
                    self._fail("unauthenticated bulk length")
                    return out
                self._bulk = length
                pos = end + 2
            if self._filling is None:
                if len(buf) - pos >= self._bulk + 2:
                    arg = bytes(buf[pos:pos + self._bulk])
                    pos += self._bulk + 2
                elif self._bulk >= BIG_BULK:
                    # the rest arrives over many reads: straight into the value, a read at a time
                    self._filling = inplace.Filling(self._bulk)
                    pos += self._filling.take(buf, pos)
                    break
                else:
                    break
            else:
                pos += self._filling.take(buf, pos)
                if not self._filling.done or len(buf) - pos < 2:
                    break
                arg = self._filling.finish()
                self._filling = None
                pos += 2
            self._bulk = -1
            self._args.append(arg)
            self._args_bytes += len(arg) + ARG_OVERHEAD
            self._need -= 1
            if self._need == 0:
                out.append(self._args)
                self._args = None
                self._args_bytes = 0
                self.read_size = READ_SIZE
                if not self.authenticated:
                    break
        del buf[:pos]
        if self.buffered > limits.client_query_buffer_limit:
            self._fail("query buffer limit exceeded")
            return out
        if not buf and self._args is None:
            self._careful = False   # on a request boundary again: back to hiredis
        return out


def _bulks(buf: bytearray, pos: int, need: int) -> tuple[list[bytes], int, int] | None:
    """The next whole bulk strings at `pos` (up to `need`, BULKS_MAX), parsed by hiredis; None to parse one by one.

    hiredis reads them as the elements of an array whose header we supply,
    sized from the `$` signs ahead (an upper bound: the last bulk may be
    incomplete, payloads may hold `$`; one smaller try, then the careful path).
    It also takes what Redis refuses here (`+OK`, `:1`, `=`, nested arrays),
    so the result is kept only if each element began with `$` where a bulk of
    the lengths read would put it: element i at pos + the sizes of those before
    it, a size being length + digits + 5 (hiredis, like Redis, refuses lengths
    with leading zeros or a sign). Then every element was a bulk and the bytes
    taken are exactly those sizes. Returns (args, the position after them, their bytes).
    """
    if pos >= len(buf) or buf[pos] != 36 or _SIZED_AGGREGATE.search(buf, pos) is not None:
        return None
    available = buf.count(b"\r\n$", pos) + 1
    count = min(need, BULKS_MAX, available)
    for attempt in (count, count - 1):
        if attempt < BULKS_MIN:
            return None
        reader = hiredis.Reader()
        reader.feed(b"*%d\r\n" % attempt)
        reader.feed(buf, pos, len(buf) - pos)   # type: ignore[arg-type]  # any buffer will do; the stub says bytes
        try:
            frame = reader.gets()
        except hiredis.ProtocolError:
            return None
        if frame is False:
            continue
        if type(frame) is not list or len(frame) != attempt:
            return None
        try:
            lengths = list(map(len, frame))
        except TypeError:       # a nil, an integer, a double: not a bulk
            return None
        if max(lengths) < 10:
            sizes = [n + 6 for n in lengths]
        else:
            sizes = [n + len(str(n)) + 5 for n in lengths]
        starts = list(accumulate(sizes, initial=pos))
        end = starts.pop()      # where the next element starts
        if bytes(map(buf.__getitem__, starts)) != b"$" * attempt:
            return None
        return frame, end, sum(lengths)
    return None


_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}
_HEX = b"0123456789abcdefABCDEF"


def split_inline(line: bytes) -> list[bytes] | None:
    """Split an inline command like Redis's sdssplitargs; None on unbalanced quotes."""
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \t\n\r\v\f":
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            if in_double:
                if i >= n:
                    return None
                c = line[i]
                if (c == 92 and i + 3 < n and line[i + 1] == 120
                        and line[i + 2] in _HEX and line[i + 3] in _HEX):
                    current.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    current += _ESCAPES.get(line[i], bytes([line[i]]))
                elif c == 34:
                    # a closing quote must be followed by a space or the end
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        return None
                    in_double = False
                    i += 1
                    break
                else:
                    current.append(c)
            elif in_single:
                if i >= n:
                    return None
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    current.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        return None
                    in_single = False
                    i += 1
                    break
                else:
                    current.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in b" \t\n\r":   # sdssplitargs ends a bare word here (\v \f belong to it)
                    break
                if c == 34:
                    in_double = True
                elif c == 39:
                    in_single = True
                else:
                    current.append(c)
            i += 1
        args.append(bytes(current))
