"""Redis glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET) matched in linear time.

A pattern is split at its runs of `*` into segments; every token of a segment
(`?`, a literal, a `[class]`) matches exactly one byte, so a segment is a
fixed-length regex without quantifiers. The first segment must match at the
start, the last at the end, and each one between at its leftmost place after
the previous one: leftmost is never worse for what follows, so no backtracking
is needed. The work is O(len(subject) * len(pattern)) in C. (Translated to one
regex, `*a*a*...*b` backtracks: 20 stars against a 40-byte key never ended.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Redis's stringmatchlen gives up (no match) past 1000 nested `*`s; a trailing
# `*` matches at once and does not nest (checked against redis-server 7.0).
MAX_NESTED_STARS = 1000


@dataclass(frozen=True, slots=True)
class Glob:
    """A compiled pattern: the segments between runs of `*`, each with its length."""

    first: re.Pattern[bytes]
    first_len: int
    middle: tuple[re.Pattern[bytes], ...]
    last: re.Pattern[bytes] | None     # None: the pattern has no `*` at all
    last_len: int
    nested_stars: int

    def match(self, subject: bytes) -> bool:
        if not subject:     # stringmatchlen never matches "" but with an empty pattern
            return self.last is None and self.first_len == 0
        if self.last is None:
            return self.first.fullmatch(subject) is not None
        if self.nested_stars > MAX_NESTED_STARS:
            return False
        end = len(subject) - self.last_len
        if end < self.first_len or self.first.match(subject) is None:
            return False
        pos = self.first_len
        for segment in self.middle:
            found = segment.search(subject, pos, end)
            if found is None:
                return False
            pos = found.end()
        return self.last.match(subject, end) is not None


def _class(pattern: bytes, i: int) -> tuple[bytes, int]:
    """The regex of the `[...]` class opening at `i`, and the index of its last byte."""
    n = len(pattern)
    j = i + 1
    negate = j < n and pattern[j] == 94   # ^
    if negate:
        j += 1
    items = bytearray()
    while j < n and pattern[j] != 93:     # ]
        if pattern[j] == 92 and j + 1 < n:     # a backslash escapes the next byte
            j += 1
            items += re.escape(pattern[j:j + 1])
        elif j + 2 < n and pattern[j + 1] == 45:   # a-z (or z-a); as Redis, `[a-]` is the range a..]
            lo, hi = sorted((pattern[j], pattern[j + 2]))
            items += re.escape(bytes([lo])) + b"-" + re.escape(bytes([hi]))
            j += 2
        else:
            items += re.escape(pattern[j:j + 1])
        j += 1
    # an unterminated class matches what was listed so far, as in Redis
    if not items:
        return (b"." if negate else b"(?!)"), j
    return b"[" + (b"^" if negate else b"") + bytes(items) + b"]", j


_NEVER = re.compile(b"(?!)")


@lru_cache(maxsize=512)
def compile_glob(pattern: bytes) -> Glob:
    """Translate `*`, `?`, `[abc]`, `[^a-z]` and `\\x` escapes as stringmatchlen does."""
    segments: list[tuple[bytes, int]] = []
    current = bytearray()
    length = 0
    stars = 0
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == 42:        # *: close the segment, fold the run
            segments.append((bytes(current), length))
            current, length = bytearray(), 0
            stars += 1
            while i + 1 < n and pattern[i + 1] == 42:
                i += 1
        elif c == 63:      # ?
            current += b"."
            length += 1
        elif c == 92 and i + 1 < n:
            i += 1
            current += re.escape(pattern[i:i + 1])
            length += 1
        elif c == 91:      # [
            regex, i = _class(pattern, i)
            current += regex
            length += 1
        else:
            current += re.escape(pattern[i:i + 1])
            length += 1
        i += 1
    segments.append((bytes(current), length))
    nested = stars - (length == 0)
    if nested > MAX_NESTED_STARS:
        # no subject can match (Redis gives up past that depth): compile nothing, as 200,000
        # segments (an ACL key pattern of `a*a*...`) would stall the hub for seconds
        return Glob(_NEVER, 1, (), _NEVER, 1, nested)
    compiled = [(re.compile(regex, re.DOTALL), size) for regex, size in segments]
    if len(compiled) == 1:
        return Glob(compiled[0][0], compiled[0][1], (), None, 0, 0)
    return Glob(compiled[0][0], compiled[0][1], tuple(p for p, _ in compiled[1:-1]),
                compiled[-1][0], compiled[-1][1], stars - (compiled[-1][1] == 0))


def glob_match(pattern: bytes, subject: bytes, nocase: bool = False) -> bool:
    """Does `subject` match `pattern` as Redis's stringmatchlen says (callers shortcut a lone `*`)."""
    if nocase:
        pattern, subject = pattern.lower(), subject.lower()
    return compile_glob(pattern).match(subject)
