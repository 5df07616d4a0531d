"""Map a key to one of the 16,384 Redis Cluster hash slots.

slot = CRC16-XMODEM(key, or the non-empty text inside its first {...}) & 0x3FFF,
exactly as Redis Cluster computes it. `binascii.crc_hqx(data, 0)` is that CRC
implemented in C, which matters: this runs for every keyed command.
"""
from binascii import crc_hqx

SLOT_COUNT = 16384


def keyslot(key: bytes) -> int:
    """Return the hash slot of `key`, honouring a non-empty `{hash tag}`."""
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        # "{}" (empty tag) hashes the whole key, as in Redis.
        if end > start + 1:
            key = key[start + 1:end]
    return crc_hqx(key, 0) & 0x3FFF
