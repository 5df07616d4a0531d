"""The cluster: pure cores (keyslot, ring, slotmap, membership, election, messages) and the zmq I/O (bus: agreement, links: sockets)."""

# Replication's hot modules here (keyslot, replication, datalink, curvelink) are compiled with
# mypyc along with the node's; hypercache/compiled.py decides, for all of them or none, and is
# the only hypercache module mesh imports (it imports nothing of either package).
from hypercache import compiled as _compiled  # noqa: E402

__path__ = _compiled.extend(__path__, __name__)
