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
from typing import Any, Callable

import msgpack
from lupa.lua51 import LuaError

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

# -- struct (lua_struct's rules: native little-endian, alignment off unless '!') --------------

MAXINTSIZE = 32
MAXALIGN = 8


class Positional(str):
    """An error Lua raises with the caller's position in front (luaL_error), as Redis's C libraries do."""


def arg_error(number: int, function: str, message: str) -> Positional:
    return Positional(f"bad argument #{number} to '{function}' ({message})")


def lua_type_name(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, bytes):
        return "string"
    from lupa.lua51 import lua_type
    return lua_type(value) or "userdata"


def check_number(args: tuple, index: int, function: str) -> float:
    """luaL_checknumber of argument `index` (1-based)."""
    if index > len(args):
        raise ValueError(arg_error(index, function, "number expected, got no value"))
    value = args[index - 1]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, bytes):
        try:
            return float(value.strip()) if b"x" not in value.lower() else int(value.strip(), 16)
        except ValueError:
            pass
    raise ValueError(arg_error(index, function, f"number expected, got {lua_type_name(value)}"))


def check_string(args: tuple, index: int, function: str) -> bytes:
    if index > len(args):
        raise ValueError(arg_error(index, function, "string expected, got no value"))
    value = args[index - 1]
    if isinstance(value, bytes):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return b"%.14g" % value
    raise ValueError(arg_error(index, function, f"string expected, got {lua_type_name(value)}"))


def _getnum(fmt: bytes, i: int, default: int) -> tuple[int, int]:
    if i >= len(fmt) or not 48 <= fmt[i] <= 57:
        return default, i
    value = 0
    while i < len(fmt) and 48 <= fmt[i] <= 57:
        value = value * 10 + fmt[i] - 48
        if value > 2**31 - 1:
            raise ValueError(Positional("integral size overflow"))
        i += 1
    return value, i


def _optsize(opt: str, fmt: bytes, i: int) -> tuple[int, int]:
    if opt in "Bb":
        return 1, i
    if opt in "Hh":
        return 2, i
    if opt in "LlTd":
        return 8, i
    if opt == "f":
        return 4, i
    if opt == "x":
        return 1, i
    if opt == "c":
        return _getnum(fmt, i, 1)
    if opt in "iI":
        size, i = _getnum(fmt, i, 4)
        if size > MAXINTSIZE:
            raise ValueError(Positional(f"integral size {size} is larger than limit of {MAXINTSIZE}"))
        return size, i
    return 0, i


def _toalign(length: int, align: int, opt: str, size: int) -> int:
    if size == 0 or opt == "c":
        return 0
    size = min(size, align)
    return (size - (length & (size - 1))) & (size - 1)


class _Header:
    __slots__ = ("little", "align")

    def __init__(self) -> None:
        self.little, self.align = True, 1


def _control(opt: str, fmt: bytes, i: int, h: _Header, function: str) -> int:
    if opt == " ":
        return i
    if opt == ">":
        h.little = False
    elif opt == "<":
        h.little = True
    elif opt == "!":
        a, i = _getnum(fmt, i, MAXALIGN)
        if a & (a - 1) or a == 0:
            raise ValueError(Positional(f"alignment {a} is not a power of 2"))
        h.align = a
    else:
        raise ValueError(arg_error(1, function, f"invalid format option '{opt}'"))
    return i


def struct_pack(*args):
    fmt = check_string(args, 1, "pack")
    h, out, arg, i = _Header(), bytearray(), 2, 0
    while i < len(fmt):
        opt = chr(fmt[i])
        i += 1
        size, i = _optsize(opt, fmt, i)
        out += b"\x00" * _toalign(len(out), h.align, opt, size)
        if opt in "bBhHlLTiI":
            number = check_number(args, arg, "pack")
            arg += 1
            value = (int(number) & (2**64 - 1)) & ((1 << (8 * min(size, 8))) - 1)
            out += value.to_bytes(size, "little" if h.little else "big")
        elif opt == "x":
            out += b"\x00"
        elif opt in "fd":
            number = float(check_number(args, arg, "pack"))
            arg += 1
            try:
                out += pystruct.pack(("<" if h.little else ">") + opt, number)
            except OverflowError:
                out += pystruct.pack(("<" if h.little else ">") + opt, math.copysign(math.inf, number))
        elif opt in "cs":
            data = check_string(args, arg, "pack")
            arg += 1
            if size == 0:
                size = len(data)
            if len(data) < size:
                raise ValueError(arg_error(arg, "pack", "string too short"))
            out += data[:size]
            if opt == "s":
                out += b"\x00"
        else:
            i = _control(opt, fmt, i, h, "pack")
    return bytes(out)


def _number_result(value: int) -> Any:
    return value if -(1 << 53) <= value <= 1 << 53 else float(value)


def struct_unpack(*args):
    fmt = check_string(args, 1, "unpack")
    data = check_string(args, 2, "unpack")
    pos = int(check_number(args, 3, "unpack")) if len(args) >= 3 and args[2] is not None else 1
    if pos <= 0:
        raise ValueError(arg_error(3, "unpack", "offset must be 1 or greater"))
    pos -= 1
    h, values, i = _Header(), [], 0
    while i < len(fmt):
        opt = chr(fmt[i])
        i += 1
        size, i = _optsize(opt, fmt, i)
        pos += _toalign(pos, h.align, opt, size)
        if not (size <= len(data) and pos <= len(data) - size):
            raise ValueError(arg_error(2, "unpack", "data string too short"))
        if opt in "bBhHlLTiI":
            raw = 0
            chunk = data[pos:pos + size]
            for byte in (chunk if not h.little else reversed(chunk)):
                raw = ((raw << 8) | byte) & (2**64 - 1)
            if opt.islower() and size * 8 - 1 < 64:
                mask = ((2**64 - 1) << (size * 8 - 1)) & (2**64 - 1)
                if raw & mask:
                    raw |= mask
                if raw >= 1 << 63:
                    raw -= 1 << 64
            values.append(_number_result(raw))
        elif opt in "fd":
            values.append(pystruct.unpack(("<" if h.little else ">") + opt, data[pos:pos + size])[0])
        elif opt == "c":
            if size == 0:
                if not values or not isinstance(values[-1], (int, float)):
                    raise ValueError(Positional("format 'c0' needs a previous size"))
                size = int(values.pop())
                if not (size <= len(data) and pos <= len(data) - size):
                    raise ValueError(arg_error(2, "unpack", "data string too short"))
            values.append(data[pos:pos + size])
        elif opt == "s":
            end = data.find(b"\x00", pos)
            if end < 0:
                raise ValueError(Positional("unfinished string in data"))
            size = end - pos + 1
            values.append(data[pos:end])
        elif opt != "x":
            i = _control(opt, fmt, i, h, "unpack")
        pos += size
    values.append(pos + 1)
    return tuple(values)


def struct_size(*args):
    fmt = check_string(args, 1, "size")
    h, pos, i = _Header(), 0, 0
    while i < len(fmt):
        opt = chr(fmt[i])
        i += 1
        size, i = _optsize(opt, fmt, i)
        pos += _toalign(pos, h.align, opt, size)
        if opt == "s":
            raise ValueError(arg_error(1, "size", "option 's' has no fixed size"))
        if opt == "c" and size == 0:
            raise ValueError(arg_error(1, "size", "option 'c0' has no fixed size"))
        if not opt.isalnum():
            i = _control(opt, fmt, i, h, "size")
        pos += size
    return pos


def _guard(function):
    """Errors leave as Lua errors with the message Redis's C library would give."""
    def run(*args):
        try:
            return function(*args)
        except (ValueError, TypeError, OverflowError, IndexError, KeyError) as error:
            message = error.args[0] if error.args else str(error)
            raise LuaError(message if isinstance(message, Positional) else Positional(str(message))) from None
    return run


# -- math.random (Redis's own generator) ------------------------------------------------------

def math_functions(rand) -> dict[str, Any]:
    def random(*args):
        r = rand.next_fraction()
        if not args:
            return r
        if len(args) == 1:
            upper = int(check_number(args, 1, "random"))
            if upper < 1:
                raise ValueError(arg_error(1, "random", "interval is empty"))
            return math.floor(r * upper) + 1
        if len(args) == 2:
            lower, upper = int(check_number(args, 1, "random")), int(check_number(args, 2, "random"))
            if lower > upper:
                raise ValueError(arg_error(2, "random", "interval is empty"))
            return math.floor(r * (upper - lower + 1)) + lower
        raise ValueError(Positional("wrong number of arguments"))

    def randomseed(*args):
        rand.seed(int(check_number(args, 1, "randomseed")))

    return {"random": _guard(random), "randomseed": _guard(randomseed)}


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
cjson.decode = py.json_decode
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
cmsgpack.unpack = py.msgpack_unpack
cmsgpack.unpack_one = py.msgpack_unpack_one
cmsgpack.unpack_limit = py.msgpack_unpack_limit

local bit, struct = {}, {}
for name, f in pairs(py.bit) do bit[name] = f end
for name, f in pairs(py.struct) do struct[name] = f end
return {cjson = cjson, cmsgpack = cmsgpack, bit = bit, struct = struct}
"""


# Lua bytes a decoded byte of JSON or MessagePack may become, at most (`[0,0,...]`: two bytes
# of text a table slot and a number each): what must be free before decoding (engine.LUA_RESERVE)
DECODED_PER_BYTE = 64


def _as_is(function):
    return function


def tables(runtime, rand, room: Callable[[int], bool] = lambda size: True,
           uncapped: Callable[[Callable[[], Any]], Any] = lambda make: make(),
           guarded: Callable[[Any], Any] = _as_is) -> dict[str, Any]:
    """Build the library tables in `runtime` (before the sandbox hides newproxy); `rand` feeds
    math.random. The script engine's memory guards (engine.LUA_RESERVE): `room(size)`, whether
    Lua values of that size may be made from Python; `uncapped(make)`, make them with the limit
    off; `guarded(f)`, f run only with the reserve free."""
    holder: dict[str, Any] = {}

    def check_room(data: bytes) -> None:
        if not room(len(data) * DECODED_PER_BYTE):
            raise ValueError("not enough memory")

    @_guard
    def decode(*args):
        if len(args) != 1:
            raise ValueError(Positional("bad argument #1 to 'decode' (expected 1 argument)"))
        text = check_string(args, 1, "decode")
        check_room(text)
        return uncapped(lambda: json_decode_ordered(runtime, holder["null"], text))

    def pack(tokens, count):
        return msgpack_encode_tokens(tokens, count)

    def unpacker(limit_arg: bool, one: bool):
        @_guard
        def unpack(*args):
            data = check_string(args, 1, "unpack")
            limit = 1 if one else (int(check_number(args, 2, "unpack_limit")) if limit_arg and len(args) >= 2
                                   and args[1] is not None else 0)
            index = 2 if one else 3
            offset = int(check_number(args, index, "unpack")) if len(args) >= index and args[index - 1] is not None else 0
            if not data:
                raise ValueError(Positional("MessagePack unpack needs input."))
            check_room(data)
            consumed, values = uncapped(lambda: msgpack_decode(runtime, data, limit, offset))
            if limit_arg or one:
                return (consumed if consumed < len(data) else -1,) + tuple(values)
            return tuple(values)
        return unpack

    py = runtime.table_from({
        b"json_decode": guarded(decode), b"msgpack_pack": guarded(pack),
        b"msgpack_unpack": guarded(unpacker(False, False)), b"msgpack_unpack_one": guarded(unpacker(False, True)),
        b"msgpack_unpack_limit": guarded(unpacker(True, False)),
        b"bit": runtime.table_from({name.encode(): guarded(_guard(f)) for name, f in BIT.items()}),
        b"struct": runtime.table_from({b"pack": guarded(_guard(struct_pack)), b"unpack": guarded(_guard(struct_unpack)),
                                       b"size": guarded(_guard(struct_size))}),
    })
    libs = runtime.eval(b"function(...) " + LUA_SIDE.encode() + b" end")(py)
    holder["null"] = libs[b"cjson"][b"null"]
    # Lua-written entry points are called through Python, so that a `return cjson.encode(x)`
    # (a tail call) keeps the script's frame for the error's position, as Redis's C functions do
    protected = runtime.eval(b"function(f, ...) return pcall(f, ...) end")

    def through_python(function):
        def call(*args):
            result = protected(function, *args)
            if not isinstance(result, tuple):
                result = (result,)
            if result[0]:
                return result[1:]
            error = result[1] if len(result) > 1 else None
            if isinstance(error, bytes):
                raise LuaError(Positional(error.decode("utf-8", "replace")))
            raise LuaError(error)
        return call

    cjson, cmsgpack = libs[b"cjson"], libs[b"cmsgpack"]
    cjson[b"encode"] = through_python(cjson[b"encode"])
    cmsgpack[b"pack"] = through_python(cmsgpack[b"pack"])
    out = {name: libs[name.encode()] for name in ("cjson", "cmsgpack", "bit", "struct")}
    out["math"] = runtime.table_from({k.encode(): v for k, v in math_functions(rand).items()})
    return out
