"""Lua scripting: EVAL and Redis 7 functions on one sandboxed Lua 5.1 runtime (lupa).

Layout:
    sandbox.py   the Lua runtime: globals allowed to scripts, the `redis` API, read-only
                 globals, the error handler, the count hook (Lua source kept in one place)
    convert.py   command replies -> Lua values (RESP2 / RESP3 rules) and Lua values -> reply bytes
    rand.py      Redis's deterministic math.random (its lrand48)
    flags.py     shebang (`#!lua flags=...`) and function flags, parsed as values
    library.py   function libraries: metadata line, registry, FUNCTION LIST / DUMP payloads
    engine.py    one run at a time: routing of redis.call, busy threshold, SCRIPT/FUNCTION KILL
    luabits.py   the bit, struct, cjson and cmsgpack libraries Redis gives scripts
"""
from .. import compiled

# engine.py runs compiled (hypercache/compiled.py): every EVALSHA and redis.call passes through it
__path__ = compiled.extend(__path__, __name__)
