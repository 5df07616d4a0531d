"""Map a key to one of the 16,384 Redis Cluster hash slots.

slot = CRC16-XMODEM(key, or the non-empty text inside its first {...}) & 0x3FFF,
exactly as Redis Cluster computes it. `binascii.crc_hqx(data, 0)` is that CRC
implemented in C, which matters: this runs for every keyed command.
"""
from binascii import crc_hqx
from typing import Final

SLOT_COUNT: Final = 16384
# Compiled, a module global that is not Final is looked up in the module's dict at each use
# (a Final one is a C static): the CRC function is called through this name.
CRC16: Final = crc_hqx

# Compiled (hypercache/compiled.py), a loop over a short key's bytes is native and beats two
# `find` calls (each a generic method call there): 53 against 107 ns for a tagged key of 22
# bytes, as redis-benchmark --cluster sends. Interpreted, the loop is the slower (259 against
# 164 ns), so the source keeps both. (`__file__` is the extension's when compiled.)
NATIVE: Final = not __file__.endswith(".py")
SCAN_AT_MOST: Final = 64       # longer keys: find's memchr, whatever the form


def keyslot(key: bytes) -> int:
    """Return the hash slot of `key`, honouring a non-empty `{hash tag}`."""
    if 123 not in key:          # "{": an int needle is ~10x faster than b"{"
        return CRC16(key, 0) & 0x3FFF
    size = len(key)
    if NATIVE and size <= SCAN_AT_MOST:
        start = 0
        while key[start] != 123:
            start += 1
        end = start + 1
        while end < size and key[end] != 125:
            end += 1
        found = end < size
    else:
        start = key.find(b"{")
        end = key.find(b"}", start + 1)
        found = end != -1
    # "{}" (empty tag) hashes the whole key, as in Redis.
    if found and end > start + 1:
        key = key[start + 1:end]
    return CRC16(key, 0) & 0x3FFF
