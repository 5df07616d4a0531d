"""The cluster: pure cores (keyslot, ring, slotmap, membership, messages) and the zmq bus."""
