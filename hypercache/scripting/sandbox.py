"""The Lua 5.1 runtime scripts run in: Redis's globals, its `redis` API, read-only globals, the hook.

Scripts never see the real global table. Each EVAL runs with a fresh
environment whose lookups go to `G`, the allowed globals, and which refuses
new globals ("Attempt to modify a readonly table") and unknown ones ("Script
attempted to access nonexistent global variable"), as Redis 7.0's read-only
globals do; the libraries are read-only proxies. `loadstring`/`load` give the
chunks they compile the caller's environment, and refuse bytecode, so nothing
reaches `debug`, `os`, `io`, `require`, `loadfile`, `dofile` or lupa's `python`.

The count hook calls Python every HOOK_EVERY instructions (Redis uses the same
100000): that is where a long script notices the busy threshold, lets the hub
serve other clients (-BUSY), and is killed. Coroutines get the hook too, since
Lua 5.1 hooks are per thread and a loop in a coroutine would otherwise never
be interrupted.
"""
from __future__ import annotations

from typing import Any

import lupa.lua51 as lua51

HOOK_EVERY = 100_000
KILLED = "Script killed by user with SCRIPT KILL..."

PRELUDE = r"""
local bridge = ...
local dbg, real_G = debug, _G
local py_tick = bridge.tick
local setfenv, setmetatable, getfenv, type, tostring, error, rawget, next, xpcall, select =
      setfenv, setmetatable, getfenv, type, tostring, error, rawget, next, xpcall, select
local loadstring, load, unpack, pairs = loadstring, load, unpack, pairs

-- luaPushErrorBuff: "-CODE msg" or "msg" -> {err="CODE msg"}
local function push_error(s)
  local code, msg
  if s:sub(1, 1) == '-' then
    local space = s:find(' ', 1, true)
    if space then code, msg = s:sub(2, space - 1), s:sub(space + 1)
    else code, msg = 'ERR', s:sub(2) end
  else
    code, msg = 'ERR', s
  end
  msg = msg:gsub('^[\r\n]+', ''):gsub('[\r\n]+$', '')
  return {err = code .. ' ' .. msg}
end

local USER = {['@user_script'] = true, ['@user_function'] = true}

local py_unwrap = bridge.unwrap
local function err_handler(err)
  local positional = false
  if type(err) == 'userdata' then err, positional = py_unwrap(err) end
  local level, found = 2, nil
  while true do
    local info = dbg.getinfo(level, 'Sl')
    if not info then break end
    if USER[info.source] then found = info break end
    level = level + 1
  end
  if type(err) ~= 'table' then
    local message = tostring(err)
    if positional and found then message = found.short_src .. ':' .. found.currentline .. ': ' .. message end
    err = {err = 'ERR ' .. message}
  end
  if found then err.source = found.source; err.line = found.currentline end
  return err
end

local function readonly_error() error('Attempt to modify a readonly table', 2) end
local function readonly(tbl)
  return setmetatable({}, {__index = tbl, __newindex = readonly_error, __metatable = false})
end

-- the hook: Python decides (busy threshold, yielding to the hub, kill)
local HOOK_EVERY = bridge.hook_every
local killed_message
local function killed_hook()
  local info = dbg.getinfo(2, 'S')
  if info and USER[info.source] then error(push_error(killed_message)) end
end
local function count_hook()
  local message = py_tick()
  if message then
    killed_message = message
    dbg.sethook(killed_hook, 'l')
    error(push_error(message))
  end
end
local function arm(thread)
  if thread then dbg.sethook(thread, count_hook, '', HOOK_EVERY)
  else dbg.sethook(count_hook, '', HOOK_EVERY) end
end

-- allowed globals
local G = {}
for _, name in ipairs({'assert', 'collectgarbage', 'error', 'gcinfo', 'getmetatable', 'ipairs',
                       'next', 'pairs', 'rawequal', 'rawget', 'rawset', 'select',
                       'setmetatable', 'tonumber', 'tostring', 'type', 'unpack', '_VERSION'}) do
  G[name] = real_G[name]
end
-- redis.call is a Python function (a C call: a `return redis.call(...)` keeps the
-- script's frame for the error's line); its errors travel as Python exceptions
-- holding the Lua error table, unwrapped wherever a script can catch them
local pcall = pcall
local function unwrapped(ok, ...)
  if ok then return ok, ... end
  local e = ...
  if type(e) == 'userdata' then e = py_unwrap(e) end
  -- as Redis's pcall: an error table gives its message (scripts written for Redis 6 read a string)
  if type(e) == 'table' and type(rawget(e, 'err')) == 'string' then e = rawget(e, 'err') end
  return false, e
end
G.pcall = function(f, ...) return unwrapped(pcall(f, ...)) end
G.xpcall = function(f, handler)
  return xpcall(f, function(e)
    if type(e) == 'userdata' then e = py_unwrap(e) end
    return handler(e)
  end)
end

local function no_bytecode(s)
  return type(s) == 'string' and s:byte(1) == 27
end
G.loadstring = function(s, name)
  if no_bytecode(s) then return nil, 'loading bytecode is not allowed' end
  local f, e = loadstring(s, name)
  if f then setfenv(f, getfenv(2)) end
  return f, e
end
G.load = function(source, name)
  if type(source) == 'string' then return G.loadstring(source, name) end
  local f, e = load(source, name)
  if f then setfenv(f, getfenv(2)) end
  return f, e
end

local co_create, co_wrap = coroutine.create, coroutine.wrap
local co = {}
for k, v in pairs(coroutine) do co[k] = v end
co.create = function(f) local thread = co_create(f); arm(thread); return thread end
co.wrap = function(f)
  local thread = co.create(f)
  return function(...)
    local result = {coroutine.resume(thread, ...)}
    if not result[1] then error(result[2], 0) end
    return select(2, unpack(result))
  end
end
G.coroutine = readonly(co)

local m = {}
for k, v in pairs(math) do m[k] = v end
m.random, m.randomseed = bridge.math.random, bridge.math.randomseed
G.math = readonly(m)

local s = {}
for k, v in pairs(string) do s[k] = v end
G.string = readonly(s)
local t = {}
for k, v in pairs(table) do t[k] = v end
G.table = readonly(t)
local floor = math.floor
for _, name in ipairs({'bit', 'struct', 'cjson', 'cmsgpack'}) do
  G[name] = readonly(bridge[name])
end

-- the redis API
local redis = {}
redis.call = bridge.call_raise
redis.pcall = bridge.call_protected
redis.error_reply = function(...)
  local e = ...
  if select('#', ...) ~= 1 or type(e) ~= 'string' then return push_error('wrong number or type of arguments') end
  if e:sub(1, 1) ~= '-' then e = '-' .. e end
  return push_error(e)
end
redis.status_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then return push_error('wrong number or type of arguments') end
  return {ok = s}
end
-- the ones that raise errors are Python functions: a `return redis.x(...)` tail call
-- to a Lua function would lose the script's frame, and with it the error's line
redis.sha1hex, redis.log, redis.setresp, redis.set_repl = bridge.sha1hex, bridge.log, bridge.setresp, bridge.set_repl
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = bridge.acl_check_cmd
redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = bridge.version, bridge.version_num
G.redis = readonly(redis)
G.__redis__err__handler = err_handler

-- functions: at FUNCTION LOAD the library sees redis.register_function and little else
local load_redis = {}
for _, name in ipairs({'log', 'LOG_DEBUG', 'LOG_VERBOSE', 'LOG_NOTICE', 'LOG_WARNING', 'setresp',
                       'REDIS_VERSION', 'REDIS_VERSION_NUM', 'sha1hex', 'error_reply', 'status_reply'}) do
  load_redis[name] = redis[name]
end
local py_register = bridge.register_function
load_redis.register_function = function(...)
  local argc = select('#', ...)
  if argc < 1 or argc > 2 then error(push_error('wrong number of arguments to redis.register_function')) end
  local err
  if argc == 1 then
    local args = ...
    if type(args) ~= 'table' then
      err = 'calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).'
    else
      local name, desc, cb, flags
      for k, v in pairs(args) do
        if type(k) ~= 'string' then err = 'named argument key given to redis.register_function is not a string' break end
        local key = k:lower()
        if key == 'function_name' then
          if type(v) ~= 'string' then err = 'function_name argument given to redis.register_function must be a string' break end
          name = v
        elseif key == 'description' then
          if type(v) ~= 'string' then err = 'description argument given to redis.register_function must be a string' break end
          desc = v
        elseif key == 'callback' then
          if type(v) ~= 'function' then err = 'callback argument given to redis.register_function must be a function' break end
          cb = v
        elseif key == 'flags' then
          if type(v) ~= 'table' then err = 'flags argument to redis.register_function must be a table representing function flags' break end
          flags = {}
          for _, f in ipairs(v) do
            if type(f) ~= 'string' then err = 'unknown flag given' break end
            flags[#flags + 1] = f
          end
          if err then break end
        else
          err = 'unknown argument given to redis.register_function' break
        end
      end
      if not err then
        if not name then err = 'redis.register_function must get a function name argument'
        elseif not cb then err = 'redis.register_function must get a callback argument'
        else err = py_register(name, cb, flags or {}, desc) end
      end
    end
  else
    local name, cb = ...
    if type(name) ~= 'string' then err = 'first argument to redis.register_function must be a string'
    elseif type(cb) ~= 'function' then err = 'second argument to redis.register_function must be a function'
    else err = py_register(name, cb, {}, nil) end
  end
  if err then error(push_error(err)) end
end
local LOAD_G = setmetatable({redis = readonly(load_redis)}, {__index = G})

local function nonexistent(k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 3)
end
-- one metatable for every EVAL's environment: a run costs one new table
local ENV_MT = {
  __index = function(t, k)
    local v = G[k]
    if v == nil then
      if k == '_G' then return t end
      nonexistent(k)
    end
    return v
  end,
  __newindex = readonly_error,
  __metatable = false}
local function library_env(lookup_of)
  return setmetatable({}, {
    __index = function(t, k)
      local v = lookup_of()[k]
      if v == nil then
        if k == '_G' then return t end
        nonexistent(k)
      end
      return v
    end,
    __newindex = readonly_error,
    __metatable = false})
end

local api = {}
api.compile = function(body, chunkname)
  if no_bytecode(body) then return nil, 'loading bytecode is not allowed' end
  return loadstring(body, chunkname)
end
-- the count hook stays armed between runs (it costs nothing without a run); a kill
-- replaces it with the line hook, which the next run puts back
local function rearm()
  if killed_message then killed_message = nil; arm() end
end
api.run_eval = function(f, keys, argv)
  rearm()
  setfenv(f, setmetatable({KEYS = keys, ARGV = argv}, ENV_MT))
  return xpcall(f, err_handler)
end
-- KEYS and ARGV made in Lua from the arguments: one crossing instead of three (short calls)
local function split(nkeys, ...)
  local all = {...}
  local keys, argv = {}, {}
  for i = 1, nkeys do keys[i] = all[i] end
  for i = nkeys + 1, select('#', ...) do argv[i - nkeys] = all[i] end
  return keys, argv
end
api.run_eval_args = function(f, nkeys, ...)
  local keys, argv = split(nkeys, ...)
  return api.run_eval(f, keys, argv)
end
api.run_function_args = function(callback, nkeys, ...)
  local keys, argv = split(nkeys, ...)
  return api.run_function(callback, keys, argv)
end
api.run_function = function(callback, keys, args)
  rearm()
  return xpcall(function() return callback(keys, args) end, err_handler)
end
api.load_library = function(f)
  local lookup = LOAD_G
  setfenv(f, library_env(function() return lookup end))
  rearm()
  local ok, e = xpcall(f, err_handler)
  lookup = G
  return ok, e
end
api.rearm = rearm
api.ok = function(s) return {ok = s} end
api.err = push_error
api.double = function(x) return {double = x} end
api.big_number = function(s) return {big_number = s} end
api.verbatim = function(f, s) return {verbatim_string = {format = f, string = s}} end
api.map = function(flat, n)
  local out = {}
  for i = 1, n, 2 do
    local k = flat[i]
    if k ~= nil then out[k] = flat[i + 1] end
  end
  return {map = out}
end
api.set = function(items, n)
  local out = {}
  for i = 1, n do
    local k = items[i]
    if k ~= nil then out[k] = true end
  end
  return {set = out}
end
api.kind = function(t)
  local e = rawget(t, 'err')
  if type(e) == 'string' then return 'err', e end
  local o = rawget(t, 'ok')
  if type(o) == 'string' then return 'ok', o end
  local d = rawget(t, 'double')
  if type(d) == 'number' then return 'double', d end
  local b = rawget(t, 'big_number')
  if type(b) == 'string' then return 'big_number', b end
  local v = rawget(t, 'verbatim_string')
  if type(v) == 'table' then
    local f, s = rawget(v, 'format'), rawget(v, 'string')
    if type(f) == 'string' and type(s) == 'string' then return 'verbatim', f, s end
  end
  local mp = rawget(t, 'map')
  if type(mp) == 'table' then
    local flat, n = {}, 0
    for k, val in next, mp do flat[2 * n + 1] = k; flat[2 * n + 2] = val; n = n + 1 end
    return 'map', flat, n
  end
  local st = rawget(t, 'set')
  if type(st) == 'table' then
    local items, n = {}, 0
    for k in next, st do n = n + 1; items[n] = k end
    return 'set', items, n
  end
  local n = 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  return 'array', t, n
end
api.error_table = function(t)
  return rawget(t, 'err'), rawget(t, 'source'), rawget(t, 'line')
end
api.is_table = function(v) return type(v) == 'table' end

-- what scripts must never reach
for _, name in ipairs({'python', 'os', 'io', 'require', 'loadfile', 'dofile', 'module', 'package',
                       'debug', 'print', 'newproxy', 'getfenv', 'setfenv'}) do
  real_G[name] = nil
end
arm()
return api
"""


def _no_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    # Lua may call the Python functions it is handed, never reach into them
    # (f.__globals__ and the like would be a way out of the sandbox).
    raise AttributeError("not accessible from Lua")


def new_runtime(max_memory: int) -> Any:
    """A fresh Lua 5.1 state with no Python reachable from Lua except what `bridge` hands it."""
    return lua51.LuaRuntime(encoding=None, register_eval=False, register_builtins=False,
                            unpack_returned_tuples=True, max_memory=max_memory,
                            attribute_filter=_no_attributes)


def install(runtime: Any, bridge: dict) -> Any:
    """Run the prelude with `bridge` (name -> Python callable or value); returns the api table."""
    table = runtime.table_from({key.encode(): value for key, value in bridge.items()})
    setup = runtime.eval(b"function(...) " + PRELUDE.encode() + b" end")
    return setup(table)


lua_type = lua51.lua_type
LuaError = lua51.LuaError
LuaMemoryError = getattr(lua51, "LuaMemoryError", MemoryError)
