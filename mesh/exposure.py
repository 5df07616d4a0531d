"""Decide whether the mesh may listen where it is told to: the mesh's protected mode.

An open mesh lets anyone who reaches its port take the cluster: one forged
heartbeat makes a member, a forged Leave kills one, a forged Publish reaches
every subscriber. So, as Redis's protected mode does for clients, a mesh with
neither a cluster secret nor mesh keys listens on loopback only, unless the
operator says --mesh-insecure. Pure (no zmq: flag parsing asks it too).
"""
from __future__ import annotations

import ipaddress


class MeshExposed(RuntimeError):
    """The mesh would listen beyond loopback with nothing to close it."""


def refusal(bind_host: str, closed: bool, insecure: bool) -> str | None:
    """Why the mesh must not open on `bind_host`, or None if it may."""
    if closed or insecure or loopback(bind_host):
        return None
    return (f"the mesh would listen on {bind_host or 'every address'} unauthenticated: anyone reaching its "
            "port could take the cluster. Give every member the same --cluster-secret-file (or "
            "HYPERCACHE_CLUSTER_SECRET), or mesh keys, or --mesh-insecure to run it open anyway")


def loopback(host: str) -> bool:
    """True for an address only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:      # a host name (or "" for every address): it may be reached from elsewhere
        return False
