"""Values across the Lua boundary, by Redis 7.0's conversion rules.

`to_lua()` turns a command's reply (the values commands return, see reply.py)
into what redis.call gives the script, by the protocol the script chose with
redis.setresp (2 by default). `to_resp()` turns what a script returns into
reply bytes for the caller's protocol. Lua tables are built and inspected
through the small `LuaSide` helpers the sandbox provides, so this module holds
the rules only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from ..reply import (CRLF, NULL_ARRAY, CommandError, OrderedSet, Push, Raw, Status, Verbatim,
                     encode, error_bytes, format_double)

INT64_MIN = -(1 << 63)
MAX_DEPTH = 200              # nesting a reply may have; deeper is Redis's "reached lua stack limit"
STACK_LIMIT = b"-ERR reached lua stack limit\r\n"


@dataclass(frozen=True, slots=True)
class LuaSide:
    """Lua helpers the converter calls (all made by the sandbox)."""
    table: Callable[[list], Any]            # Python list -> Lua array
    ok: Callable[[bytes], Any]              # {ok=s}
    err: Callable[[bytes], Any]             # "-CODE msg" -> {err="CODE msg"} (luaPushErrorBuff)
    double: Callable[[float], Any]          # {double=x}
    big_number: Callable[[bytes], Any]      # {big_number=s}
    verbatim: Callable[[bytes, bytes], Any]     # {verbatim_string={format=f, string=s}}
    map: Callable[[list], Any]              # flat [k1, v1, ...] -> {map={k1=v1, ...}}
    set: Callable[[list], Any]              # [m1, ...] -> {set={m1=true, ...}}
    kind: Callable[[Any], tuple]            # classify a returned table (see sandbox.REPLY_KIND)
    lua_type: Callable[[Any], str | None]   # lupa.lua_type


# -- replies -> Lua -----------------------------------------------------------------------

def lua_size(value: Any) -> int:
    """More than the bytes to_lua(value) takes in Lua (a string's header, a table slot each):
    checked against the Lua state's free memory before any of it is made (engine.LUA_RESERVE)."""
    kind = type(value)
    if kind is bytes:
        return len(value) + 64
    if kind is list or kind is tuple or kind is Push or kind is OrderedSet or kind is set or kind is frozenset:
        return 128 + sum([lua_size(item) + 32 for item in value])
    if kind is Verbatim or kind is Raw or kind is str:
        return len(value) * 4 + 256     # (Raw: parsed into values no bigger than its text, a few times over)
    if kind is dict:
        return 128 + sum([lua_size(k) + lua_size(v) + 64 for k, v in value.items()])
    if kind is CommandError or kind is Status:
        return len(str(value)) * 4 + 256        # (as UTF-8, in an error or status table)
    return 64


def to_lua(value: Any, resp: int, lua: LuaSide) -> Any:
    kind = type(value)
    if kind is bytes or kind is int:
        return value
    if value is None or value is NULL_ARRAY:
        return False if resp == 2 else None
    if kind is list or kind is tuple or kind is Push:
        return lua.table([to_lua(item, resp, lua) for item in value])
    if kind is OrderedSet:          # a set reply whose order is fixed: a set for RESP3 scripts
        items = [to_lua(item, resp, lua) for item in value]
        return lua.table(items) if resp == 2 else lua.set(items)
    if kind is Status:
        return lua.ok(bytes(value))
    if kind is CommandError:
        return lua.err(b"-" + str(value).encode())
    if kind is dict:
        flat = []
        for k, v in value.items():
            flat.append(to_lua(k, resp, lua))
            flat.append(to_lua(v, resp, lua))
        return lua.table(flat) if resp == 2 else lua.map(flat)
    if kind is set or kind is frozenset:
        items = [to_lua(item, resp, lua) for item in value]
        return lua.table(items) if resp == 2 else lua.set(items)
    if kind is float:
        return format_double(value) if resp == 2 else lua.double(value)
    if kind is bool:
        return int(value) if resp == 2 else value
    if kind is Verbatim:
        return bytes(value) if resp == 2 else lua.verbatim(b"txt", bytes(value))
    if kind is Raw:
        parsed, _ = parse_resp(bytes(value), 0)
        return to_lua(parsed, resp, lua)
    if kind is str:
        return value.encode()
    raise TypeError(f"cannot give a script a reply of type {kind.__name__}")


class BigNumber(bytes):
    """A RESP3 big number read back from Raw bytes."""


def parse_resp(data: bytes, pos: int) -> tuple[Any, int]:
    """One reply value from encoded bytes (the Raw replies some commands return)."""
    kind = data[pos:pos + 1]
    end = data.index(CRLF, pos)
    line = data[pos + 1:end]
    pos = end + 2
    if kind == b"+":
        return Status(line), pos
    if kind == b"-":
        return CommandError(line.decode("utf-8", "replace")), pos
    if kind == b":":
        return int(line), pos
    if kind == b"$" or kind == b"=":
        size = int(line)
        if size < 0:
            return None, pos
        body = data[pos:pos + size]
        if kind == b"=":
            return Verbatim(body[4:]), pos + size + 2
        return body, pos + size + 2
    if kind in (b"*", b"~", b">"):
        count = int(line)
        if count < 0:
            return NULL_ARRAY, pos
        items = []
        for _ in range(count):
            item, pos = parse_resp(data, pos)
            items.append(item)
        return (set(items) if kind == b"~" and all(type(i) is bytes for i in items) else items), pos
    if kind == b"%":
        out = {}
        for _ in range(int(line)):
            k, pos = parse_resp(data, pos)
            v, pos = parse_resp(data, pos)
            out[k] = v
        return out, pos
    if kind == b"_":
        return None, pos
    if kind == b"#":
        return line == b"t", pos
    if kind == b",":
        return float(line), pos
    if kind == b"(":
        return BigNumber(line), pos
    raise ValueError("unknown reply type")


# -- Lua -> reply bytes ---------------------------------------------------------------------

def lua_number_to_int(number: Any) -> int:
    """(long long)lua_Number: truncation toward zero; out of range as x86 converts it."""
    if type(number) is int:
        return number if INT64_MIN <= number < -INT64_MIN else INT64_MIN
    if math.isnan(number) or math.isinf(number) or not INT64_MIN <= number < -INT64_MIN:
        return INT64_MIN
    return int(number)


def to_resp(value: Any, protocol: int, script_resp: int, lua: LuaSide) -> Any:
    """The caller's reply for a script's return value: a CommandError, or a value encode() writes."""
    kind = type(value)
    if kind is bytes:
        return value
    if kind is int:
        return value if INT64_MIN <= value < -INT64_MIN else INT64_MIN
    if value is None:
        return None
    if lua.lua_type(value) == "table":
        kind = lua.kind(value)
        if kind[0] == b"err":
            return CommandError(kind[1].decode("utf-8", "replace"))
    out: list[bytes] = []
    _encode(value, protocol, script_resp, lua, out, 0)
    return Raw(b"".join(out))


def _encode(value: Any, protocol: int, script_resp: int, lua: LuaSide, out: list, depth: int) -> None:
    kind = type(value)
    if kind is bytes:
        out.append(b"$%d\r\n%s\r\n" % (len(value), value))
    elif kind is bool:
        if script_resp == 2:
            out.append(b":1\r\n" if value else (b"_\r\n" if protocol == 3 else b"$-1\r\n"))
        else:
            encode(value, protocol, out)
    elif kind is int or kind is float:
        out.append(b":%d\r\n" % lua_number_to_int(value))
    elif lua.lua_type(value) == "table":
        if depth >= MAX_DEPTH:
            out.append(STACK_LIMIT)
            return
        _encode_table(value, protocol, script_resp, lua, out, depth + 1)
    else:       # nil, functions, userdata: a null
        out.append(b"_\r\n" if protocol == 3 else b"$-1\r\n")


def _encode_table(table: Any, protocol: int, script_resp: int, lua: LuaSide, out: list, depth: int) -> None:
    kind = lua.kind(table)
    tag = kind[0]
    if tag == b"err":
        out.append(error_bytes(kind[1].decode("utf-8", "replace")))
    elif tag == b"ok":
        out.append(b"+%s\r\n" % kind[1].replace(b"\r", b" ").replace(b"\n", b" "))
    elif tag == b"double":
        encode(float(kind[1]), protocol, out)
    elif tag == b"big_number":
        text = kind[1].replace(b"\r", b" ").replace(b"\n", b" ")
        out.append(b"(%s\r\n" % text if protocol == 3 else b"$%d\r\n%s\r\n" % (len(text), text))
    elif tag == b"verbatim":
        fmt, text = kind[1], kind[2]
        if protocol == 3:
            out.append(b"=%d\r\n%s:%s\r\n" % (len(text) + 4, fmt[:3], text))
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(text), text))
    elif tag == b"map":
        flat, count = kind[1], kind[2]
        out.append(b"%%%d\r\n" % count if protocol == 3 else b"*%d\r\n" % (2 * count))
        for index in range(1, 2 * count + 1):
            _encode(flat[index], protocol, script_resp, lua, out, depth)
    elif tag == b"set":
        items, count = kind[1], kind[2]
        out.append(b"~%d\r\n" % count if protocol == 3 else b"*%d\r\n" % count)
        for index in range(1, count + 1):
            _encode(items[index], protocol, script_resp, lua, out, depth)
    else:
        count = kind[2]
        out.append(b"*%d\r\n" % count)
        for index in range(1, count + 1):
            _encode(table[index], protocol, script_resp, lua, out, depth)
