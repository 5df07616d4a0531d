"""hypercache: a Redis-compatible cache node; nodes form a cluster over a ZeroMQ mesh.

Layout (a request flows top to bottom):
    __main__.py   flags / HYPERCACHE_* env -> Config -> Node.run()
    config.py     frozen Config, runtime Settings (CONFIG GET/SET), node id
    server.py     accepts clients (maxclients, protected mode), owns their connections
    connection.py one client served from hub io-watcher callbacks: one send per batch, back-pressure
    resp.py       sans-IO RESP request parser (hiredis + a careful path), Redis's limits
    reply.py      the reply values commands return, encoded for RESP2 or RESP3
    dispatch.py   request -> command lookup, arity, auth, MULTI queueing -> route -> run -> reply
    routing.py    pure: keys + slot map -> run here | MOVED | ASK | CROSSSLOT | CLUSTERDOWN
    commands/     the data-declared command table and one module per command group
    store.py      pure keyspace: per-slot dicts, expiry, memory accounting, eviction
    pulse.py      heartbeats sent from inside a long command's loops (busy, not dead), no yield
    blocking.py   clients blocked on keys (BLPOP & co); keyevents.py: who hears a key change
    session.py    per-connection state; context.py: the services a command may use
    stats.py      counters for INFO and the status UI; status.py: the UI's snapshot
    node.py       composition root: builds and starts the parts, no decisions

Words, one per concept everywhere: a *slot* is one of 16384 hash slots; a
*vnode* is a token a member holds on the ring; a slot's *owners* are the
first *replication_factor* distinct members walking the ring from it, the
*primary* first; an *epoch* numbers each committed slot map; a member's
*incarnation* rises when it refutes being *suspect*; a *dead* member has been
declared failed by a majority.
"""

# the one place the version is written: setup.cfg reads it (attr:), and --version, INFO server,
# /cluster/status and the hypercache_build_info metric report it
__version__ = "0.1.0"

# the hot modules compiled with mypyc when built and fresh (compiled.py says why or why not)
from . import compiled  # noqa: E402

__path__ = compiled.extend(__path__, __name__)
