"""The cluster: pure cores (keyslot, ring, slotmap, membership, election, messages) and the zmq I/O (bus: agreement, links: sockets)."""
