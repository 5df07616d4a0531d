"""Function libraries (Redis 7 functions): the metadata line, the registry, and the DUMP payload.

Pure values and rules: the Lua work (compiling a library and running it so it
registers its functions) is the engine's; this module decides what a library
is called, whether it may be added, and how FUNCTION DUMP / RESTORE encode
libraries (Redis's RDB function opcode, the RDB version and CRC64 footer, so a
payload moves between redis-server and hypercache both ways).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .flags import KNOWN, ScriptFlags

NAME = re.compile(rb"[A-Za-z0-9_]+")
BAD_NAME = ("Library names can only contain letters, numbers, or underscores(_) and must be at "
            "least one character long")
RDB_OPCODE_FUNCTION2 = 245
RDB_VERSION = 10                     # Redis 7.0's
ENGINE = b"LUA"


class LibraryError(ValueError):
    """A refusal with Redis's text (without the ERR code)."""


@dataclass(slots=True, eq=False)
class Function:
    name: bytes
    callback: Any
    flags: ScriptFlags
    description: bytes | None
    library: "Library | None" = None


@dataclass(slots=True, eq=False)
class Library:
    name: bytes
    code: bytes
    functions: dict[bytes, Function] = field(default_factory=dict)


def metadata(code: bytes) -> tuple[bytes, bytes, int]:
    """(engine, library name, where the code after the metadata line starts)."""
    if not code.startswith(b"#!"):
        raise LibraryError("Missing library metadata")
    end = code.find(b"\n")
    if end < 0:
        raise LibraryError("Invalid library metadata")
    parts = code[:end].split()
    if not parts:
        raise LibraryError("Invalid library metadata")
    engine, name = parts[0][2:], None
    for part in parts[1:]:
        if part.startswith(b"name="):
            if name is not None:
                raise LibraryError("Invalid metadata value, name argument was given multiple times")
            name = part[5:]
            continue
        raise LibraryError(f"Invalid metadata value given: {part.decode('utf-8', 'replace')}")
    if name is None:
        raise LibraryError("Library name was not given")
    if not NAME.fullmatch(name):
        raise LibraryError(BAD_NAME)
    if engine.upper() != ENGINE:
        raise LibraryError(f"Engine '{engine.decode('utf-8', 'replace')}' not found")
    return engine, name, end


def function_flags(names: list[bytes]) -> ScriptFlags:
    decoded = []
    for name in names:
        text = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
        if text not in KNOWN:
            raise LibraryError("unknown flag given")
        decoded.append(text)
    return ScriptFlags(compat=False, names=frozenset(decoded))


@dataclass(slots=True)
class Registry:
    libraries: dict[bytes, Library] = field(default_factory=dict)
    functions: dict[bytes, Function] = field(default_factory=dict)

    def check_add(self, library: Library, replacing: Library | None) -> None:
        if not library.functions:
            raise LibraryError("No functions registered")
        for name in library.functions:
            owner = self.functions.get(name)
            if owner is not None and owner.library is not replacing:
                raise LibraryError(f"Function {name.decode('utf-8', 'replace')} already exists")

    def add(self, library: Library) -> None:
        old = self.libraries.get(library.name)
        if old is not None:
            self.remove(old)
        self.libraries[library.name] = library
        for function in library.functions.values():
            function.library = library
            self.functions[function.name] = function

    def remove(self, library: Library) -> None:
        del self.libraries[library.name]
        for name in library.functions:
            self.functions.pop(name, None)

    def function_count(self) -> int:
        return len(self.functions)


# -- DUMP / RESTORE payloads -----------------------------------------------------------------

def _crc64_table() -> list[int]:
    poly = 0x95AC9329AC4BC9B5        # Jones polynomial 0xad93d23594c935a9, reflected
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC64_TABLE = _crc64_table()


def crc64(data: bytes, crc: int = 0) -> int:
    """Redis's CRC64 (Jones, reflected): crc64(b"123456789") == 0xe9c6d914c4b8d9ca."""
    table = CRC64_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def _length(n: int) -> bytes:
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def dump(libraries: list[Library]) -> bytes:
    body = b"".join(bytes([RDB_OPCODE_FUNCTION2]) + _length(len(lib.code)) + lib.code for lib in libraries)
    body += RDB_VERSION.to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")


BAD_PAYLOAD = "DUMP payload version or checksum are wrong"


def parse_dump(payload: bytes) -> list[bytes]:
    """The library codes in a FUNCTION DUMP payload; LibraryError with Redis's texts."""
    if len(payload) < 10:
        raise LibraryError(BAD_PAYLOAD)
    version = int.from_bytes(payload[-10:-8], "little")
    if version > RDB_VERSION or crc64(payload[:-8]) != int.from_bytes(payload[-8:], "little"):
        raise LibraryError(BAD_PAYLOAD)
    body, pos, codes = payload[:-10], 0, []
    while pos < len(body):
        if body[pos] != RDB_OPCODE_FUNCTION2:
            raise LibraryError("given type is not a function")
        code, pos = _read_string(body, pos + 1)
        codes.append(code)
    return codes


def _read_length(data: bytes, pos: int) -> tuple[int, bool, int]:
    """(length or encoding, is_encoded, next position)."""
    if pos >= len(data):
        raise LibraryError("failed loading the given functions payload")
    first = data[pos]
    kind = first >> 6
    if kind == 0:
        return first & 0x3F, False, pos + 1
    if kind == 1:
        if pos + 2 > len(data):
            raise LibraryError("failed loading the given functions payload")
        return ((first & 0x3F) << 8) | data[pos + 1], False, pos + 2
    if kind == 3:
        return first & 0x3F, True, pos + 1
    if first == 0x80:
        return int.from_bytes(data[pos + 1:pos + 5], "big"), False, pos + 5
    if first == 0x81:
        return int.from_bytes(data[pos + 1:pos + 9], "big"), False, pos + 9
    raise LibraryError("failed loading the given functions payload")


def _read_string(data: bytes, pos: int) -> tuple[bytes, int]:
    length, encoded, pos = _read_length(data, pos)
    if not encoded:
        if pos + length > len(data):
            raise LibraryError("failed loading the given functions payload")
        return data[pos:pos + length], pos + length
    if length in (0, 1, 2):          # integers stored as strings
        size = 1 << length
        value = int.from_bytes(data[pos:pos + size], "little", signed=True)
        return b"%d" % value, pos + size
    if length == 3:                  # LZF
        compressed, _, pos = _read_length(data, pos)
        original, _, pos = _read_length(data, pos)
        if pos + compressed > len(data) or original > 512 * 1024 * 1024:
            raise LibraryError("failed loading the given functions payload")
        return lzf_decompress(data[pos:pos + compressed], original), pos + compressed
    raise LibraryError("failed loading the given functions payload")


def lzf_decompress(data: bytes, size: int) -> bytes:
    """LibLZF's decompressor (what redis-server's RDB strings use above 20 bytes)."""
    out = bytearray()
    pos = 0
    try:
        while pos < len(data):
            ctrl = data[pos]
            pos += 1
            if ctrl < 32:
                out += data[pos:pos + ctrl + 1]
                pos += ctrl + 1
            else:
                length = ctrl >> 5
                back = len(out) - ((ctrl & 0x1F) << 8) - 1
                if length == 7:
                    length += data[pos]
                    pos += 1
                back -= data[pos]
                pos += 1
                if back < 0:
                    raise LibraryError("failed loading the given functions payload")
                for _ in range(length + 2):
                    out.append(out[back])
                    back += 1
            if len(out) > size:
                break
    except IndexError:
        raise LibraryError("failed loading the given functions payload") from None
    if len(out) != size:
        raise LibraryError("failed loading the given functions payload")
    return bytes(out)
