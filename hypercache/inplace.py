"""Big string values built without copying them whole in one hub turn: filled in place, patched in place.

A 400 MB SET or a SETRANGE at offset 512 MB cost 2-6 s of hub time, nearly
all of it copying: the parser copied a big bulk twice when its last byte came
(`bytes(buf[a:b])`), SETRANGE built its result by concatenation (four copies
of 512 MB, each into fresh pages). On this machine one copy of 512 MB into
fresh memory takes 250-350 ms, redis-server's own SETRANGE there 360 ms.
Values stay `bytes` everywhere (the store, replies and replication rely on
it); what changes is how the big ones are made:

* `Filling`: a bytes object of the declared length, allocated with calloc
  (`bytes(n)`: untouched zero pages, no cost up front) and written as the
  bulk's bytes arrive, 64 KB per read, so the copy is spread over the reads;
* `patched`: SETRANGE writes into a fresh zeroed value (only the bytes that
  are not zero are written), or into the value itself when nothing but the
  store holds it (CPython's reference count says so) and the patch fits.

Writing into a bytes object is what the C API allows for one "just created"
and not yet shared (PyBytes_AsString's contract); a value patched in place is
shared with nobody, and its cached hash is reset. `INPLACE_OK` is False if
the layout this module checks at import time is not CPython's; then every
value is copied, as before.
"""
from __future__ import annotations

import ctypes
import sys

_as_string = ctypes.pythonapi.PyBytes_AsString
_as_string.argtypes = (ctypes.py_object,)
_as_string.restype = ctypes.c_void_p

# ob_shash, the cached hash, sits just before the characters (CPython 3.11/3.12)
_HASH_OFFSET = bytes.__basicsize__ - 1 - ctypes.sizeof(ctypes.c_ssize_t)
_DATA_OFFSET = bytes.__basicsize__ - 1       # the characters (checked by _layout_is_known)
_memmove, _memset = ctypes.memmove, ctypes.memset


def _address(value: bytes) -> int:
    return _as_string(value)


def _layout_is_known() -> bool:
    probe = bytes(16)
    try:
        cached = ctypes.c_ssize_t.from_address(id(probe) + _HASH_OFFSET)
        before = cached.value
        hashed = hash(probe)
        return (sys.implementation.name == "cpython" and before == -1 and cached.value == hashed
                and _address(probe) == id(probe) + bytes.__basicsize__ - 1)
    except Exception:  # noqa: BLE001 - any surprise means: do not write into bytes
        return False


INPLACE_OK = _layout_is_known()


def _whole_memory() -> memoryview | None:
    """A writable byte view of the process's address space (user space: 2**47 bytes on x86-64).

    A small patch of a sole-owned value (SETBIT's one byte) is then two slice stores at C
    speed, where two ctypes calls cost ~3 us, a third of a SETBIT. It writes exactly where
    ctypes.memmove would; nothing reads through it, and an address past its end is patched
    with ctypes instead."""
    try:
        return memoryview((ctypes.c_char * (1 << 47)).from_address(0)).cast("B")
    except (ValueError, OverflowError, TypeError, MemoryError):  # (a 32-bit or unusual platform)
        return None


_MEMORY = _whole_memory() if INPLACE_OK else None
_MEMORY_END = len(_MEMORY) if _MEMORY is not None else 0
_NO_HASH = b"\xff" * ctypes.sizeof(ctypes.c_ssize_t)      # -1: "not computed yet"


def _view(value: bytes) -> memoryview:
    """A writable view of a bytes object's characters (only for one nobody else sees)."""
    return memoryview((ctypes.c_char * len(value)).from_address(_address(value))).cast("B")


class Filling:
    """A bytes object of a declared length, filled in place as its bytes arrive."""

    __slots__ = ("value", "filled", "_view")

    def __init__(self, length: int) -> None:
        self.value = bytes(length)      # calloc: zero pages that cost nothing until written
        self.filled = 0
        self._view = _view(self.value) if length else memoryview(bytearray())

    @property
    def done(self) -> bool:
        return self.filled == len(self.value)

    def take(self, data: bytes | bytearray, start: int) -> int:
        """Copy what fits of data[start:]; return how many bytes were taken."""
        count = min(len(data) - start, len(self.value) - self.filled)
        if count > 0:
            with memoryview(data) as source:
                self._view[self.filled:self.filled + count] = source[start:start + count]
            self.filled += count
        return max(count, 0)

    def finish(self) -> bytes:
        value = self.value
        self._view.release()
        return value


def patched(old: bytes, offset: int, patch: bytes, sole_owner: bool) -> bytes:
    """SETRANGE's value: `old`, zero-padded to `offset` if shorter, with `patch` written at `offset`.

    `sole_owner`: nothing but the store holds `old`, so it may be written in
    place when the patch fits inside it (no copy at all).
    """
    end = offset + len(patch)
    if not INPLACE_OK:
        padded = old if len(old) >= offset else old + bytes(offset - len(old))
        return padded[:offset] + patch + padded[end:]
    if sole_owner and end <= len(old) and len(old) > 0:
        # written at the object's own address; -1, all bytes 0xFF, is "no cached hash"
        base = id(old)
        data = base + _DATA_OFFSET + offset
        if data + len(patch) <= _MEMORY_END:
            assert _MEMORY is not None
            hash_at = base + _HASH_OFFSET
            _MEMORY[data:data + len(patch)] = patch
            _MEMORY[hash_at:hash_at + len(_NO_HASH)] = _NO_HASH
            return old
        _memmove(data, patch if type(patch) is bytes else bytes(patch), len(patch))
        _memset(base + _HASH_OFFSET, 0xFF, ctypes.sizeof(ctypes.c_ssize_t))
        return old
    value = bytes(max(len(old), end))       # zeroed by calloc: the padding costs nothing
    with _view(value) as view, memoryview(old) as source:
        keep = min(len(old), offset)
        view[:keep] = source[:keep]
        view[offset:end] = patch
        if len(old) > end:
            view[end:len(old)] = source[end:]
    return value
