"""Reply values commands return, and their encoding for RESP2 and RESP3.

A command returns plain Python values (bytes, int, None, list, dict, set,
float, bool) or one of the small types below where the wire form must be
explicit; `encode()` turns a value into bytes for the connection's protocol
version, once per pipelined batch.
"""
from __future__ import annotations

from itertools import chain
from typing import Any

from .pulse import chunks

CRLF = b"\r\n"
# "$<len>\r\n" of the bulk strings most values fit, made once (the fast lane, list elements)
BULK_HEADERS_CACHED = 1024
BULK_HEADERS = tuple(b"$%d\r\n" % size for size in range(BULK_HEADERS_CACHED))


class Status(bytes):
    """A simple string reply (`+OK`)."""


class Verbatim(bytes):
    """A verbatim text reply (RESP3 `=`, a bulk string in RESP2), e.g. INFO."""


class Push(list):
    """An out-of-band message (RESP3 `>`, an array in RESP2), e.g. pub/sub."""


class OrderedSet(list):
    """A set reply whose order matters (RESP3 `~`, an array in RESP2), e.g. COMMAND's flags."""


class Raw(bytes):
    """Bytes already encoded for the wire; identical in both protocols."""


class _NullArray:
    """RESP2 `*-1` (a nil multi-bulk, e.g. EXEC aborted, BLPOP timeout); RESP3 `_`."""
    __slots__ = ()


NULL_ARRAY = _NullArray()
OK = Raw(b"+OK\r\n")
QUEUED = Raw(b"+QUEUED\r\n")
PONG = Raw(b"+PONG\r\n")


class CommandError(Exception):
    """A command failed; `str(self)` is the full error text, e.g. `ERR syntax error`."""

    # the Command whose rejected call Redis counts (a wrong arity names it), else None
    command: Any = None


def format_double(value: float) -> bytes:
    """Format a double as Redis 7.0 does for replies (%.17g, with inf/-inf/nan)."""
    if value != value:
        return b"nan"
    if value == float("inf"):
        return b"inf"
    if value == float("-inf"):
        return b"-inf"
    return b"%.17g" % value


def error_bytes(text: str) -> bytes:
    # An error must be one line; replace CR/LF as Redis's addReplyErrorLength does.
    return b"-" + text.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace") + CRLF


def encode(value, protocol: int, out: list) -> None:
    """Append the encoding of `value` to `out` (a list later joined into one write)."""
    kind = type(value)
    if kind is bytes:
        out.append(b"$%d\r\n%s\r\n" % (len(value), value))
    elif kind is Raw:
        out.append(value)
    elif kind is int:
        out.append(b":%d\r\n" % value)
    elif value is None:
        out.append(b"_\r\n" if protocol == 3 else b"$-1\r\n")
    elif kind is list or kind is tuple:
        out.append(b"*%d\r\n" % len(value))
        if len(value) < BULK_RUN:
            for item in value:
                encode(item, protocol, out)
        else:
            _encode_many(value, protocol, out)
    elif kind is Status:
        out.append(b"+%s\r\n" % value)
    elif kind is CommandError:
        out.append(error_bytes(str(value)))
    elif kind is float:
        text = format_double(value)
        if protocol == 3:
            out.append(b",%s\r\n" % text)
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(text), text))
    elif kind is dict:
        if protocol == 3:
            out.append(b"%%%d\r\n" % len(value))
        else:
            out.append(b"*%d\r\n" % (2 * len(value)))
        if len(value) < BULK_RUN:
            for k, v in value.items():
                encode(k, protocol, out)
                encode(v, protocol, out)
        else:
            _encode_many(list(chain.from_iterable(value.items())), protocol, out)
    elif kind is set or kind is frozenset or kind is OrderedSet:
        out.append(b"%s%d\r\n" % (b"~" if protocol == 3 else b"*", len(value)))
        if len(value) < BULK_RUN:
            for item in value:
                encode(item, protocol, out)
        else:
            _encode_many(value if kind is OrderedSet else list(value), protocol, out)
    elif kind is bool:
        if protocol == 3:
            out.append(b"#t\r\n" if value else b"#f\r\n")
        else:
            out.append(b":1\r\n" if value else b":0\r\n")
    elif kind is Verbatim:
        if protocol == 3:
            out.append(b"=%d\r\ntxt:%s\r\n" % (len(value) + 4, value))
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(value), value))
    elif kind is Push:
        out.append(b"%s%d\r\n" % (b">" if protocol == 3 else b"*", len(value)))
        for item in value:
            encode(item, protocol, out)
    elif value is NULL_ARRAY:
        out.append(b"_\r\n" if protocol == 3 else b"*-1\r\n")
    elif kind is str:
        raw = value.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    else:
        raise TypeError(f"cannot encode reply of type {kind.__name__}")


# Elements from which an array's items are looked at together (below, one by one is as quick).
BULK_RUN = 32
_BULK = b"$%d\r\n%s\r\n".__mod__
_ONLY_BYTES = frozenset((bytes,))
_BYTES_AND_FLOATS = (frozenset((bytes, float)), frozenset((float,)))


def _encode_many(items: list | tuple, protocol: int, out: list) -> None:
    """The elements of a big array (or a map's keys and values in turn), in pieces of pulse.EVERY.

    A piece of plain bytes (KEYS, HGETALL, SMEMBERS, SORT, ZRANGE: nearly every big reply),
    or of bytes and doubles in RESP2 (ZRANGE WITHSCORES), is encoded by one join whose loop
    runs in C; any other piece element by element. Between pieces the heartbeat goes on
    (hypercache/pulse.py): a reply of a million elements took seconds to encode one by one
    (HGETALL of 500k fields 2.8 s, redis-server 0.3 s).
    """
    for piece in chunks(items):
        kinds = set(map(type, piece))
        if kinds == _ONLY_BYTES:
            out.append(b"".join(map(_BULK, zip(map(len, piece), piece))))
        elif protocol == 2 and kinds in _BYTES_AND_FLOATS:
            # (RESP2 sends a double as a bulk string: format_double's text, which is %.17g's)
            texts = [item if type(item) is bytes else b"%.17g" % item for item in piece]
            out.append(b"".join(map(_BULK, zip(map(len, texts), texts))))
        else:
            for item in piece:
                encode(item, protocol, out)
