"""Reply values commands return, and their encoding for RESP2 and RESP3.

A command returns plain Python values (bytes, int, None, list, dict, set,
float, bool) or one of the small types below where the wire form must be
explicit; `encode()` turns a value into bytes for the connection's protocol
version, once per pipelined batch.
"""
from __future__ import annotations

from typing import Any

from .pulse import EVERY, paced, ticking

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
        # (a reply of a million elements, KEYS * or HGETALL, is encoded with the heartbeat going:
        # hypercache/pulse.py; below EVERY elements `value` is walked as it is)
        for item in (value if len(value) <= EVERY else paced(value)):
            encode(item, protocol, out)
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
        for k, v in (value.items() if len(value) <= EVERY else ticking(value.items())):
            encode(k, protocol, out)
            encode(v, protocol, out)
    elif kind is set or kind is frozenset or kind is OrderedSet:
        out.append(b"%s%d\r\n" % (b"~" if protocol == 3 else b"*", len(value)))
        for item in (value if len(value) <= EVERY else ticking(value)):
            encode(item, protocol, out)
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
