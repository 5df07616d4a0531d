"""The container values a key can hold besides a string: hash, list, set, sorted set.

Every container offers what the keyspace and the generic commands read:
`type_name` (the TYPE reply), `encoding` (the OBJECT ENCODING reply, following
Redis 7.0's listpack/quicklist/intset/hashtable/skiplist thresholds), `nbytes`
(a running estimate of the bytes CPython holds for the value, kept up to date
by every mutating method so memory accounting and eviction see it) and
`copy()` (COPY). The command modules mutate containers through these methods
and then tell the store how much the value grew: `store.resized(key, delta)`.
"""
from .. import compiled

__path__ = compiled.extend(__path__, __name__)

from .hash import Hash  # noqa: E402
from .list import List  # noqa: E402
from .set import Set  # noqa: E402
from .zset import ZSet  # noqa: E402

__all__ = ["Hash", "List", "Set", "ZSet"]
