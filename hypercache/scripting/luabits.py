"""The libraries Redis gives scripts beyond Lua's own: bit, struct, cjson and cmsgpack.

`bit` follows LuaBitOp (32-bit two's complement results); `struct` Roberto
Ierusalimschy's lua_struct as Redis ships it (the common formats: b B h H i I l
L T f d s z x c with < > ! =); `cjson` lua-cjson 2.1's encoder (written in Lua,
so tables are walked in Lua's own `next` order and numbers printed with %.14g
as Redis's cjson does) with Python's JSON parser behind `decode`; `cmsgpack`
lua-cmsgpack's encoding rules (an array when the keys are exactly 1..n, the
smallest integer encoding, float32 when it is exact) with msgpack behind unpack.
"""
from __future__ import annotations

import json
import math
import struct as pystruct
from typing import Any

import msgpack

MAX_NESTING = 1000

# -- bit --------------------------------------------------------------------------------------


def _tobit(x: Any) -> int:
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            return 0
        x = int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))
    x = int(x) & 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def _u(x: Any) -> int:
    return _tobit(x) & 0xFFFFFFFF


def _fold(op):
    def run(first, *rest):
        value = _u(first)
        for other in rest:
            value = op(value, _u(other))
        return _tobit(value)
    return run


def _tohex(x, n=8):
    n = int(n)
    digits = "0123456789abcdef"
    if n < 0:
        n, digits = -n, "0123456789ABCDEF"
    n = min(n, 8)
    value = _u(x)
    return "".join(digits[(value >> (4 * i)) & 15] for i in reversed(range(n))).encode()


BIT = {
    "tobit": _tobit,
    "bnot": lambda x: _tobit(~_u(x)),
    "band": _fold(lambda a, b: a & b),
    "bor": _fold(lambda a, b: a | b),
    "bxor": _fold(lambda a, b: a ^ b),
    "lshift": lambda x, n: _tobit(_u(x) << (_u(n) & 31)),
    "rshift": lambda x, n: _tobit(_u(x) >> (_u(n) & 31)),
    "arshift": lambda x, n: _tobit(_tobit(x) >> (_u(n) & 31)),
    "rol": lambda x, n: _tobit((_u(x) << (_u(n) & 31)) | (_u(x) >> ((32 - (_u(n) & 31)) & 31))),
    "ror": lambda x, n: _tobit((_u(x) >> (_u(n) & 31)) | (_u(x) << ((32 - (_u(n) & 31)) & 31))),
    "bswap": lambda x: _tobit(int.from_bytes(_u(x).to_bytes(4, "little"), "big")),
    "tohex": _tohex,
}

# -- struct -----------------------------------------------------------------------------------

_SIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "T": 8, "f": 4, "d": 8}
_CODES = {"b": "b", "B": "B", "h": "h", "H": "H", "i": "i", "I": "I", "l": "q", "L": "Q", "T": "Q",
          "f": "f", "d": "d"}


def _items(fmt: str):
    """(option, size) pairs of a lua_struct format; endianness options yield ("<"/">", 0)."""
    i = 0
    while i < len(fmt):
        option = fmt[i]
        i += 1
        digits = ""
        while i < len(fmt) and fmt[i].isdigit():
            digits += fmt[i]
            i += 1
        if option in " ":
            continue
        if option in "<>=!":
            yield option, int(digits) if digits else 0
        elif option in "iI" and digits:
            yield option, int(digits)
        elif option in _SIZES:
            yield option, _SIZES[option]
        elif option in "sczx":
            yield option, int(digits) if digits else (1 if option == "x" else 0)
        else:
            raise ValueError(f"invalid format option '{option}'")


def _endian(option: str) -> str:
    return ">" if option == ">" else "<"


def struct_pack(fmt: bytes, *values):
    out = bytearray()
    order = "<"
    args = list(values)
    for option, size in _items(fmt.decode("latin-1")):
        if option in "<>=!":
            if option != "!":
                order = _endian(option)
            continue
        if option == "x":
            out += b"\x00" * size
            continue
        if not args:
            raise ValueError("bad argument to 'pack' (no value)")
        value = args.pop(0)
        if option in "fd":
            out += pystruct.pack(order + _CODES[option], float(value))
        elif option in "bBhHiIlLT":
            number = int(value) if not isinstance(value, float) else int(value)
            out += (number % (1 << (8 * size))).to_bytes(size, "little" if order == "<" else "big")
        elif option == "c":
            data = value if isinstance(value, bytes) else str(value).encode()
            if size == 0:
                size = len(data)
            out += data[:size].ljust(size, b"\x00")
        elif option == "s" or option == "z":
            data = value if isinstance(value, bytes) else str(value).encode()
            if option == "s":
                length = size or 8
                out += len(data).to_bytes(length, "little" if order == "<" else "big") + data
            else:
                out += data + b"\x00"
    return bytes(out)


def struct_unpack(fmt: bytes, data: bytes, start: int = 1):
    pos = int(start) - 1
    order = "<"
    values: list[Any] = []
    for option, size in _items(fmt.decode("latin-1")):
        if option in "<>=!":
            if option != "!":
                order = _endian(option)
            continue
        if option == "x":
            pos += size
            continue
        if option in "bBhHiIlLT":
            chunk = data[pos:pos + size]
            if len(chunk) < size:
                raise ValueError("bad argument #2 to 'unpack' (data string too short)")
            values.append(int.from_bytes(chunk, "little" if order == "<" else "big",
                                         signed=option in "bhil"))
            pos += size
        elif option in "fd":
            chunk = data[pos:pos + size]
            if len(chunk) < size:
                raise ValueError("bad argument #2 to 'unpack' (data string too short)")
            values.append(pystruct.unpack(order + _CODES[option], chunk)[0])
            pos += size
        elif option == "c":
            if size == 0:
                size = int(values.pop()) if values else 0
            values.append(data[pos:pos + size])
            pos += size
        elif option == "z":
            end = data.index(b"\x00", pos)
            values.append(data[pos:end])
            pos = end + 1
        elif option == "s":
            length = size or 8
            count = int.from_bytes(data[pos:pos + length], "little" if order == "<" else "big")
            pos += length
            values.append(data[pos:pos + count])
            pos += count
    values.append(pos + 1)
    return tuple(values)


def struct_size(fmt: bytes) -> int:
    total = 0
    for option, size in _items(fmt.decode("latin-1")):
        if option in "sz":
            raise ValueError("options 's' and 'z' have no fixed size")
        if option not in "<>=!":
            total += size
    return total


def _guard(function):
    """Python errors become (nil, message) for the Lua wrapper to raise, never a crash."""
    def run(*args):
        try:
            return (True,) + tuple(_as_tuple(function(*args)))
        except (ValueError, TypeError, OverflowError, IndexError, KeyError) as error:
            return False, str(error).encode()
    return run


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


# -- cmsgpack --------------------------------------------------------------------------------

def msgpack_encode_tokens(tokens, count: int) -> bytes:
    """Encode the flat token stream the Lua walker makes: ('a', n) / ('m', n) headers and leaves."""
    out = bytearray()
    index = 1
    while index <= count:
        token = tokens[index]
        index += 1
        if token == b"\x00a":
            n = tokens[index]
            index += 1
            out += _header(n, 0x90, 0xdc, 0xdd)
        elif token == b"\x00m":
            n = tokens[index]
            index += 1
            out += _header(n, 0x80, 0xde, 0xdf)
        elif token == b"\x00n":
            out += b"\xc0"
        elif token is True:
            out += b"\xc3"
        elif token is False:
            out += b"\xc2"
        elif isinstance(token, bytes):
            raw = token[1:]       # strings travel with a "\x01" prefix (headers use "\x00")
            size = len(raw)
            if size < 32:
                out.append(0xa0 | size)
            elif size <= 0xff:
                out += b"\xd9" + bytes([size])
            elif size <= 0xffff:
                out += b"\xda" + size.to_bytes(2, "big")
            else:
                out += b"\xdb" + size.to_bytes(4, "big")
            out += raw
        else:
            out += _number(token)
    return bytes(out)


def _header(n: int, fix: int, b16: int, b32: int) -> bytes:
    if n < 16:
        return bytes([fix | n])
    if n <= 0xffff:
        return bytes([b16]) + n.to_bytes(2, "big")
    return bytes([b32]) + n.to_bytes(4, "big")


def _number(number) -> bytes:
    if isinstance(number, float) and not (math.isinf(number) or math.isnan(number)) \
            and number == int(number) and abs(number) < 2**63:
        number = int(number)
    if isinstance(number, int):
        return msgpack.packb(number)
    as_float = pystruct.unpack(">f", pystruct.pack(">f", number))[0] if abs(number) < 3.4e38 or \
        math.isinf(number) or math.isnan(number) else None
    if as_float is not None and (as_float == number or (math.isnan(number) and math.isnan(as_float))):
        return b"\xca" + pystruct.pack(">f", number)
    return b"\xcb" + pystruct.pack(">d", number)


def msgpack_decode(runtime, data: bytes, limit: int = 0, offset: int = 0):
    """(count, value, value...) or, with a limit, (next offset, values...) as cmsgpack.unpack_limit."""
    unpacker = msgpack.Unpacker(raw=True, strict_map_key=False, max_buffer_size=len(data) + 1)
    unpacker.feed(data[offset:])
    values = []
    consumed = offset
    try:
        for value in unpacker:
            values.append(_to_lua(runtime, value, 0))
            consumed = offset + unpacker.tell()
            if limit and len(values) >= limit:
                break
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError) as error:
        raise ValueError(f"Missing bytes in input. {error}") from None
    return consumed, values


def _to_lua(runtime, value, depth: int):
    if depth > MAX_NESTING:
        raise ValueError("too deep")
    if isinstance(value, (list, tuple)):
        return runtime.table_from([_to_lua(runtime, v, depth + 1) for v in value])
    if isinstance(value, dict):
        return runtime.table_from({_to_lua(runtime, k, depth + 1): _to_lua(runtime, v, depth + 1)
                                   for k, v in value.items()})
    if isinstance(value, int) and not -(1 << 53) <= value <= 1 << 53:
        return float(value)
    if isinstance(value, msgpack.ExtType):
        return value.data
    return value


# -- cjson decode ------------------------------------------------------------------------------

def _json_constant(name: str):
    raise ValueError("Expected value but found invalid token at character 1")


def _json_to_lua(runtime, null, value, depth: int):
    if depth > MAX_NESTING:
        raise ValueError(f"Found too many nested data structures ({MAX_NESTING + 1}) at character 1")
    if value is None:
        return null
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, int):
        return value if -(1 << 53) <= value <= 1 << 53 else float(value)
    if isinstance(value, float):
        return value
    raise ValueError("unsupported JSON value")


class _Object(list):
    """A JSON object's (key, value) pairs in document order."""


def _pairs_hook(pairs):
    return _Object(pairs)


def json_decode_ordered(runtime, null, text: bytes):
    try:
        value = json.loads(text.decode("utf-8", "surrogateescape"), object_pairs_hook=_pairs_hook,
                           parse_constant=_json_constant)
    except json.JSONDecodeError as error:
        raise ValueError(f"Expected value but found invalid token at character {error.pos + 1}") from None
    except RecursionError:
        raise ValueError("Found too many nested data structures (1001) at character 1") from None
    return _ordered_to_lua(runtime, null, value, 0)


def _ordered_to_lua(runtime, null, value, depth: int):
    if depth > MAX_NESTING:
        raise ValueError(f"Found too many nested data structures ({MAX_NESTING + 1}) at character 1")
    if isinstance(value, _Object):
        table = runtime.table()
        for key, item in value:
            table[key.encode("utf-8", "surrogateescape")] = _ordered_to_lua(runtime, null, item, depth + 1)
        return table
    if isinstance(value, list):
        return runtime.table_from([_ordered_to_lua(runtime, null, item, depth + 1) for item in value])
    return _json_to_lua(runtime, null, value, depth)


# -- the tables, and the Lua halves ----------------------------------------------------------

LUA_SIDE = r"""
local py = ...
local type, pairs, next, tostring, error, select, unpack, floor, huge, format =
      type, pairs, next, tostring, error, select, unpack, math.floor, math.huge, string.format
local function raise_on(ok, ...)
  if not ok then error((...), 0) end
  return ...
end

local null = newproxy(false)
local cjson = {null = null, _NAME = 'cjson', _VERSION = '2.1.0'}
local escapes = {['"'] = '\\"', ['\\'] = '\\\\', ['/'] = '\\/', ['\b'] = '\\b', ['\f'] = '\\f',
                 ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t', ['\127'] = '\\u007f'}
for i = 0, 31 do
  local c = string.char(i)
  if not escapes[c] then escapes[c] = format('\\u%04x', i) end
end
local function encode_string(s) return '"' .. s:gsub('[%c"\\/]', escapes) .. '"' end
local function encode_number(n)
  if n ~= n or n == huge or n == -huge then
    error('Cannot serialise number: must not be NaN or Inf', 0)
  end
  return format('%.14g', n)
end
local encode_value
local function array_length(t)
  local max, items = 0, 0
  for k in next, t do
    if type(k) == 'number' and k > 0 and floor(k) == k then
      if k > max then max = k end
      items = items + 1
    else
      return -1
    end
  end
  if max > 10 and max > items * 2 then
    error('Cannot serialise table: excessively sparse array', 0)
  end
  return max
end
encode_value = function(v, depth, out)
  local kind = type(v)
  if kind == 'string' then out[#out + 1] = encode_string(v)
  elseif kind == 'number' then out[#out + 1] = encode_number(v)
  elseif kind == 'boolean' then out[#out + 1] = v and 'true' or 'false'
  elseif kind == 'nil' or v == null then out[#out + 1] = 'null'
  elseif kind == 'table' then
    depth = depth + 1
    if depth > 1000 then error('Cannot serialise, excessive nesting (' .. depth .. ')', 0) end
    local n = array_length(v)
    if n > 0 then
      out[#out + 1] = '['
      for i = 1, n do
        if i > 1 then out[#out + 1] = ',' end
        encode_value(v[i], depth, out)
      end
      out[#out + 1] = ']'
    else
      out[#out + 1] = '{'
      local first = true
      for k, item in next, v do
        if not first then out[#out + 1] = ',' end
        first = false
        local kk = type(k)
        if kk == 'string' then out[#out + 1] = encode_string(k)
        elseif kk == 'number' then out[#out + 1] = '"' .. encode_number(k) .. '"'
        else error('Cannot serialise table: table key must be a number or string', 0) end
        out[#out + 1] = ':'
        encode_value(item, depth, out)
      end
      out[#out + 1] = '}'
    end
  else
    error('Cannot serialise ' .. kind .. ': type not supported', 0)
  end
end
cjson.encode = function(...)
  if select('#', ...) ~= 1 then error('bad argument #1 to \'encode\' (expected 1 argument)', 0) end
  local out = {}
  encode_value((...), 0, out)
  return table.concat(out)
end
local py_json = py.json_decode
cjson.decode = function(...)
  if select('#', ...) ~= 1 then error('bad argument #1 to \'decode\' (expected 1 argument)', 0) end
  local s = ...
  if type(s) ~= 'string' then error("bad argument #1 to 'decode' (string expected, got " .. type(s) .. ")", 0) end
  return raise_on(py_json(s))
end
local function noop(...) return ... end
cjson.encode_keep_buffer, cjson.encode_max_depth, cjson.decode_max_depth = noop, noop, noop
cjson.encode_number_precision, cjson.encode_sparse_array, cjson.encode_invalid_numbers = noop, noop, noop
cjson.decode_invalid_numbers = noop
cjson.new = function() return cjson end

-- cmsgpack: a walk in Lua's own order, encoded by Python
local cmsgpack = {_NAME = 'cmsgpack', _VERSION = 'lua-cmsgpack 0.4.0',
                  _COPYRIGHT = 'Copyright (C) 2012, Salvatore Sanfilippo',
                  _DESCRIPTION = 'MessagePack C implementation for Lua'}
local function is_array(t)
  local count, max = 0, 0
  for k in next, t do
    if type(k) ~= 'number' or k < 1 or floor(k) ~= k then return false end
    count = count + 1
    if k > max then max = k end
  end
  return max == count
end
local function walk(v, tokens, depth)
  local kind = type(v)
  if kind == 'string' then tokens[#tokens + 1] = '\1' .. v
  elseif kind == 'number' or kind == 'boolean' then tokens[#tokens + 1] = v
  elseif kind == 'table' and depth < 16 then
    if is_array(v) then
      local n = #v
      tokens[#tokens + 1] = '\0a'; tokens[#tokens + 1] = n
      for i = 1, n do walk(v[i], tokens, depth + 1) end
    else
      local n = 0
      for _ in next, v do n = n + 1 end
      tokens[#tokens + 1] = '\0m'; tokens[#tokens + 1] = n
      for k, item in next, v do walk(k, tokens, depth + 1); walk(item, tokens, depth + 1) end
    end
  else
    tokens[#tokens + 1] = '\0n'
  end
end
local py_pack = py.msgpack_pack
cmsgpack.pack = function(...)
  local n = select('#', ...)
  if n == 0 then error('MessagePack pack needs input.', 0) end
  local tokens = {}
  for i = 1, n do walk((select(i, ...)), tokens, 0) end
  return py_pack(tokens, #tokens)
end
local py_unpack = py.msgpack_unpack
cmsgpack.unpack = function(s)
  local result = {raise_on(py_unpack(s, 0, 0))}
  return unpack(result, 2, result[1] + 1)
end
cmsgpack.unpack_one = function(s, offset)
  local result = {raise_on(py_unpack(s, 1, offset or 0))}
  return unpack(result, 2, result[1] + 2)
end
cmsgpack.unpack_limit = function(s, limit, offset)
  local result = {raise_on(py_unpack(s, limit or 0, offset or 0))}
  return unpack(result, 2, result[1] + 2)
end

local bit = {}
for name, f in pairs(py.bit) do
  bit[name] = function(...) return raise_on(f(...)) end
end
local struct = {}
for name, f in pairs(py.struct) do
  struct[name] = function(...) return raise_on(f(...)) end
end
return {cjson = cjson, cmsgpack = cmsgpack, bit = bit, struct = struct}
"""


def tables(runtime) -> dict[str, Any]:
    """Build the four library tables in `runtime` (before the sandbox hides newproxy)."""
    holder: dict[str, Any] = {}

    def decode(text):
        try:
            return True, json_decode_ordered(runtime, holder["null"], text)
        except ValueError as error:
            return False, str(error).encode()

    def pack(tokens, count):
        return msgpack_encode_tokens(tokens, count)

    def unpack(data, limit, offset):
        if not isinstance(data, bytes):
            return False, b"bad argument #1 to 'unpack' (string expected)"
        try:
            consumed, values = msgpack_decode(runtime, data, int(limit), int(offset))
        except ValueError as error:
            return False, str(error).encode()
        if limit:
            next_offset = consumed if consumed < len(data) else -1
            return (True, len(values), next_offset) + tuple(values)
        return (True, len(values)) + tuple(values)

    py = runtime.table_from({
        b"json_decode": decode, b"msgpack_pack": pack, b"msgpack_unpack": unpack,
        b"bit": runtime.table_from({name.encode(): _guard(f) for name, f in BIT.items()}),
        b"struct": runtime.table_from({b"pack": _guard(struct_pack), b"unpack": _guard(struct_unpack),
                                       b"size": _guard(struct_size)}),
    })
    libs = runtime.eval(b"function(...) " + LUA_SIDE.encode() + b" end")(py)
    holder["null"] = libs[b"cjson"][b"null"]
    return {name: libs[name.encode()] for name in ("cjson", "cmsgpack", "bit", "struct")}
