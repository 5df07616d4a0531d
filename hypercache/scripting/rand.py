"""Redis's math.random: the 48-bit linear congruential generator of rand48, seeded as Redis seeds it.

Redis replaces Lua's math.random with this generator so that a script's
"random" numbers are the same on every platform; the state is one per server,
carried from script to script, reset only by math.randomseed (Redis 7.0).
"""
from __future__ import annotations

from dataclasses import dataclass

MULTIPLIER = 0x5DEECE66D
INCREMENT = 0xB
MASK48 = (1 << 48) - 1
DEFAULT_STATE = 0x1234ABCD330E      # X2 X1 X0 of rand48's initial state
LRAND48_MAX = 2147483647            # INT32_MAX, Redis's REDIS_LRAND48_MAX


@dataclass(slots=True)
class Rand48:
    state: int = DEFAULT_STATE

    def seed(self, value: int) -> None:
        """redisSrand48: the low 32 bits of the seed above the fixed 0x330E."""
        self.state = ((value & 0xFFFFFFFF) << 16) | 0x330E

    def next_int(self) -> int:
        """redisLrand48: the top 31 bits of the next state."""
        self.state = (MULTIPLIER * self.state + INCREMENT) & MASK48
        return self.state >> 17

    def next_fraction(self) -> float:
        return (self.next_int() % LRAND48_MAX) / LRAND48_MAX
