"""Redis glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET) compiled to regexes."""
from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=512)
def compile_glob(pattern: bytes) -> "re.Pattern[bytes]":
    """Translate `*`, `?`, `[abc]`, `[^a-z]` and `\\x` escapes as stringmatchlen does."""
    out = bytearray()
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i:i + 1]
        if c == b"*":
            out += b".*"
        elif c == b"?":
            out += b"."
        elif c == b"\\" and i + 1 < n:
            i += 1
            out += re.escape(pattern[i:i + 1])
        elif c == b"[":
            j = i + 1
            negate = j < n and pattern[j:j + 1] == b"^"
            if negate:
                j += 1
            items = bytearray()
            while j < n and pattern[j:j + 1] != b"]":
                if pattern[j:j + 1] == b"\\" and j + 1 < n:
                    j += 1
                    items += re.escape(pattern[j:j + 1])
                elif j + 2 < n and pattern[j + 1:j + 2] == b"-" and pattern[j + 2:j + 3] != b"]":
                    lo, hi = sorted((pattern[j], pattern[j + 2]))
                    items += re.escape(bytes([lo])) + b"-" + re.escape(bytes([hi]))
                    j += 2
                else:
                    items += re.escape(pattern[j:j + 1])
                j += 1
            # an unterminated class matches what was listed so far, as in Redis
            if not items:
                out += b"(?!)" if not negate else b"."
            else:
                out += b"[" + (b"^" if negate else b"") + bytes(items) + b"]"
            i = j
        else:
            out += re.escape(c)
        i += 1
    return re.compile(bytes(out) + b"\\Z", re.DOTALL)


def glob_match(pattern: bytes, subject: bytes, nocase: bool = False) -> bool:
    if nocase:
        pattern, subject = pattern.lower(), subject.lower()
    if pattern == b"*":
        return True
    return compile_glob(pattern).match(subject) is not None
