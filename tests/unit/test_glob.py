"""Glob matching: the linear matcher agrees with a direct port of Redis's recursive stringmatchlen."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypercache.glob import MAX_NESTED_STARS, compile_glob, glob_match


def stringmatch(pattern: bytes, string: bytes, nesting: int = 0) -> bool:
    """Redis 7.0's stringmatchlen (util.c), transliterated for small inputs: the reference."""
    if nesting > MAX_NESTED_STARS:
        return False
    p = s = 0
    plen, slen = len(pattern), len(string)
    while p < plen and s < slen:
        c = pattern[p]
        if c == 42:   # *
            while p + 1 < plen and pattern[p + 1] == 42:
                p += 1
            if p + 1 == plen:
                return True
            return any(stringmatch(pattern[p + 1:], string[k:], nesting + 1) for k in range(s, slen))
        if c == 63:   # ?
            s += 1
        elif c == 91:   # [
            p += 1
            negate = p < plen and pattern[p] == 94
            if negate:
                p += 1
            matched = False
            while True:
                if p < plen and pattern[p] == 92 and plen - p >= 2:
                    p += 1
                    matched |= pattern[p] == string[s]
                elif p < plen and pattern[p] == 93:
                    break
                elif p >= plen:
                    p -= 1
                    break
                elif plen - p >= 3 and pattern[p + 1] == 45:
                    lo, hi = sorted((pattern[p], pattern[p + 2]))
                    p += 2
                    matched |= lo <= string[s] <= hi
                else:
                    matched |= pattern[p] == string[s]
                p += 1
            if matched == negate:
                return False
            s += 1
        else:
            if c == 92 and plen - p >= 2:
                p += 1
            if pattern[p] != string[s]:
                return False
            s += 1
        p += 1
        if s == slen:
            while p < plen and pattern[p] == 42:
                p += 1
            break
    return p == plen and s == slen


ALPHABET = b"ab-]^\\[*?"


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=9).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b)),
       st.binary(max_size=8).map(lambda b: bytes(b"ab-]^\\"[x % 6] for x in b)))
def test_agrees_with_redis_stringmatchlen(pattern, subject):
    assert glob_match(pattern, subject) == stringmatch(pattern, subject)


@pytest.mark.parametrize("pattern, subject, expected", [
    (b"[a-]", b"]", True), (b"[a-]", b"-", False), (b"[a-]x", b"x", True), (b"[a-]x", b"ax", False),
    (b"[a-", b"-", True), (b"[^a-]", b"b", True), (b"[]", b"]", False), (b"[", b"[", False),
    (b"*", b"", False), (b"", b"", True), (b"a*", b"a", True), (b"h?llo", b"hello", True),
    (b"h\\*llo", b"h*llo", True), (b"h\\*llo", b"hello", False), (b"a\\", b"a\\", True),
])
def test_cases_checked_against_redis_server(pattern, subject, expected):
    assert glob_match(pattern, subject) is expected


def test_nesting_limit_as_redis():
    key = b"a" * 1100
    assert glob_match(b"*a" * 1000, key)
    assert not glob_match(b"*a" * 1001, key)
    assert glob_match(b"*a" * 1000 + b"*", key)       # a trailing star does not nest
    assert not glob_match(b"*a" * 1001 + b"*", key)


def test_many_stars_against_a_key_that_does_not_match_take_linear_time():
    """As a regex, 20 stars against a 40-byte key never finished; this is one comparison."""
    started = time.process_time()
    assert not glob_match(b"*a" * 20 + b"*b", b"a" * 40)
    assert not glob_match(b"*a" * 1000 + b"b", b"a" * 100_000)
    assert time.process_time() - started < 1.0


def test_a_pattern_past_the_nesting_limit_matches_nothing_and_compiles_nothing():
    """200,000 stars (an ACL key pattern, say): no regex per segment, no match, as Redis gives up."""
    pattern = b"a*" * 200_000
    assert not glob_match(pattern, b"a" * 1000 + b"b") and not glob_match(pattern, b"a" * 300_000)
    assert compile_glob(pattern).middle == ()
