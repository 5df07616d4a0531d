"""longdouble.parse accepts what Redis 7.0's string2ld accepts (INCRBYFLOAT, HINCRBYFLOAT)."""
from __future__ import annotations

import pytest

from hypercache import longdouble


@pytest.mark.parametrize("raw", [b"1", b"-2.5", b"1e3", b".5", b"0x1p3", b"inf", b"-Infinity"])
def test_numbers_are_accepted(raw):
    assert longdouble.parse(raw) is not None


@pytest.mark.parametrize("raw", [b"", b" 1", b"1 ", b"abc", b"nan", b"1\x00", b"1\x003.5", b"\x001", b"1e99999"])
def test_what_redis_refuses_is_refused(raw):
    # a NUL anywhere is refused: redis-server 7.0.15 answers "not a valid float" for "1\x00"
    assert longdouble.parse(raw) is None
