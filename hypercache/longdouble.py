"""x87 80-bit long double arithmetic, emulated exactly, for INCRBYFLOAT (and HINCRBYFLOAT).

Redis parses these operands with strtold, adds them as `long double` (a 64-bit
significand on x86-64) and writes the sum with "%.17Lf" minus trailing zeros.
A Python float has a 53-bit significand, so 10.5 + 0.1 would print as
"10.59999999999999964" instead of Redis's "10.6". Here every value is a
Fraction holding exactly the long double Redis would hold: parsing and each
addition round to 64 significant bits (ties to even, as the FPU does), and
formatting rounds the exact value to 17 decimals. Pure and exact; slow only
by C standards, which suits a command that is not on the hot path.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import TypeGuard

SIGNIFICAND_BITS = 64
MAX_EXPONENT = 16384          # finite long doubles are < 2**16384
MIN_SUBNORMAL_EXPONENT = -16445   # the smallest subnormal is 2**-16445
MAX_CHARS = 5 * 1024          # Redis's MAX_LONG_DOUBLE_CHARS: longer input is refused

_DECIMAL = re.compile(rb"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?")
_HEX = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?\d+))?")
_INFINITY = re.compile(rb"([+-]?)(?:inf|infinity)", re.IGNORECASE)

Number = Fraction | float     # a float only for +-inf and nan


def round_to_long_double(x: Fraction) -> Number:
    """`x` rounded to the nearest long double; +-inf when it is too large for one."""
    if x == 0:
        return Fraction(0)
    num, den = abs(x.numerator), x.denominator
    # find e with 2**(e-1) <= |x| < 2**e
    e = num.bit_length() - den.bit_length()
    if (num >= den << e) if e >= 0 else (num << -e >= den):
        e += 1
    # scale so the significand is an integer of SIGNIFICAND_BITS bits (fewer for subnormals)
    shift = min(SIGNIFICAND_BITS - e, -MIN_SUBNORMAL_EXPONENT)
    scaled = Fraction(num << shift, den) if shift >= 0 else Fraction(num, den << -shift)
    significand = round(scaled)          # round() on a Fraction ties to even
    value = Fraction(significand, 1 << shift) if shift >= 0 else Fraction(significand << -shift)
    if value >= Fraction(1 << MAX_EXPONENT):
        return math.inf if x > 0 else -math.inf
    return value if x > 0 else -value


def parse(raw: bytes) -> Number | None:
    """What Redis's string2ld accepts (strtold over the whole string), else None.

    Refused as Redis 7.0 refuses them: empty or over-long input, leading
    space, trailing garbage, a NUL anywhere (redis-server 7.0.15 refuses
    "1\\x00" though strtold would stop there), nan, and values that overflow
    or underflow to zero.
    """
    if not raw or len(raw) >= MAX_CHARS or 0 in raw or raw[:1].isspace():
        return None
    match = _HEX.fullmatch(raw)
    if match:
        value = _parse_hex(*match.groups())
    else:
        match = _DECIMAL.fullmatch(raw)
        if match and (match.group(2) or match.group(3)):
            value = _parse_decimal(*match.groups())
        else:
            match = _INFINITY.fullmatch(raw)
            if not match:
                return None
            return -math.inf if match.group(1) == b"-" else math.inf
    if value is None or isinstance(value, float):
        return None          # strtold's ERANGE: overflow or underflow to zero
    return value


def _parse_decimal(sign: bytes, whole: bytes, fraction: bytes | None, exponent: bytes | None):
    fraction = fraction or b""
    digits = (whole + fraction).lstrip(b"0")
    if not digits:
        return Fraction(0)
    power = int(exponent or 0) - len(fraction)
    magnitude = len(digits) + power      # |x| is about 10**(magnitude-1)
    if magnitude > 4940:
        return math.inf                  # past 1.19e4932: overflow
    if magnitude < -4960:
        return None                      # below the smallest subnormal: underflow to zero
    x = Fraction(int(digits)) * Fraction(10) ** power
    return _signed(sign, round_to_long_double(x))


def _parse_hex(sign: bytes, whole: bytes, fraction: bytes | None, exponent: bytes | None):
    fraction = fraction or b""
    if not whole and not fraction:
        return None
    digits = int(whole + fraction or b"0", 16)
    if digits == 0:
        return Fraction(0)
    power = int(exponent or 0) - 4 * len(fraction)
    magnitude = digits.bit_length() + power
    if magnitude > MAX_EXPONENT + 1:
        return math.inf
    if magnitude < MIN_SUBNORMAL_EXPONENT - 1:
        return None
    x = Fraction(digits) * Fraction(2) ** power
    return _signed(sign, round_to_long_double(x))


def _signed(sign: bytes, value: Number) -> Number:
    return -value if sign == b"-" else value


def add(a: Number, b: Number) -> Number:
    """a + b as the FPU computes it: exact sum, rounded once."""
    if isinstance(a, float) or isinstance(b, float):
        return float(a) + float(b)      # an infinity is involved: inf or nan
    return round_to_long_double(a + b)


def is_finite(value: Number) -> TypeGuard[Fraction]:
    """Neither +-inf nor nan: a Fraction, since those are the only floats."""
    return not isinstance(value, float) or math.isfinite(value)


def format_human(value: Fraction) -> bytes:
    """Redis's ld2string(LD_STR_HUMAN): "%.17Lf", trailing zeros and a bare '.' dropped, no "-0"."""
    scaled = round(value * 10**17)       # exact value rounded to 17 decimals, ties to even
    digits = str(abs(scaled)).rjust(18, "0")
    whole, decimals = digits[:-17], digits[-17:].rstrip("0")
    text = whole + ("." + decimals if decimals else "")
    if scaled < 0:
        text = "-" + text
    return text.encode()
