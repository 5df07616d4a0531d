"""While a node joins: can it reach the members it was told to --join? Logged, and named on /health.

A joining node that never hears the cluster refuses writes; without this the only
words for it were "no majority", which blames the cluster for a typo in --join.
The probe resolves each target and opens (and closes) a TCP connection to its mesh
port, once a second until the node has adopted the cluster's map.
"""
from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import gevent

log = logging.getLogger(__name__)

PROBE_EVERY_S = 1.0
CONNECT_TIMEOUT_S = 1.0


def probe(host: str, port: int, timeout_s: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when host:port accepts a TCP connection, else why not in a few words."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        return f"cannot resolve {host}: {error.strerror}"
    last = "no address"
    for family, kind, proto, _, address in infos:
        try:
            with socket.socket(family, kind, proto) as s:
                s.settimeout(timeout_s)
                s.connect(address)
                return None
        except socket.timeout:
            last = "no answer (timed out)"
        except OSError as error:
            last = error.strerror or str(error)
    return f"cannot connect: {last}"


def reason(problems: dict[str, str | None]) -> str | None:
    """The sentence /health shows while joining, or None when some target answers."""
    if not problems or any(problem is None for problem in problems.values()):
        return None
    named = "; ".join(f"{target}: {problem}" for target, problem in sorted(problems.items()))
    return f"joining: no --join target reachable ({named})"


# A join normally completes within a couple of node timeouts (the proposer's next map).
STUCK_AFTER_TIMEOUTS = 5


def stuck_reason(joining_for_s: float, node_timeout_s: float, peer_epochs: dict[str, int]) -> str | None:
    """Why a node that reaches peers has still not been admitted, or None while that is normal.

    `peer_epochs`: the map epoch each live peer's last heartbeat carried. Peers that
    all hold epoch 0 hold no cluster's map (they are joining too: say, every node was
    told to --join a seed that died, or each other); there is nobody to admit us."""
    if not peer_epochs or joining_for_s < STUCK_AFTER_TIMEOUTS * node_timeout_s:
        return None
    waited = f"joining for {joining_for_s:.0f}s"
    members = sorted(node_id for node_id, epoch in peer_epochs.items() if epoch > 0)
    if members:
        named = ", ".join(node_id[:8] for node_id in members)
        return (f"{waited}: cluster members heard ({named}) have not admitted this node: the cluster "
                f"may have lost its majority (see their CLUSTER INFO)")
    named = ", ".join(node_id[:8] for node_id in sorted(peer_epochs))
    return (f"{waited}: no cluster to join: the nodes heard ({named}) hold no cluster map either (they "
            f"are joining too). Start one node without --join to found the cluster, or point --join "
            f"at a member of a cluster")


class JoinProbe:
    """Probes the --join targets while `joining()` is true; `problems` maps target -> None or why not."""

    def __init__(self, targets: list[tuple[str, int]], joining: Callable[[], bool],
                 stuck: Callable[[], str | None] = lambda: None) -> None:
        self.problems: dict[str, str | None] = {f"{host}:{port}": "not probed yet" for host, port in targets}
        self._targets = targets
        self._joining = joining
        self._stuck = stuck             # stuck_reason() of the mesh's view
        self._stuck_logged = False
        self._greenlet: gevent.Greenlet | None = None

    @property
    def reason(self) -> str | None:
        return (reason(self.problems) or self._stuck()) if self._joining() else None

    def start(self) -> None:
        if self._targets:
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def _run(self) -> None:
        while self._joining():
            for host, port in self._targets:
                target = f"{host}:{port}"
                problem = probe(host, port)
                if problem != self.problems[target]:
                    if problem is None:
                        log.info("join target reachable target=%s", target)
                    else:
                        log.warning("join target unreachable target=%s problem=%r", target, problem)
                self.problems[target] = problem
            stuck = self._stuck()
            if stuck is not None and not self._stuck_logged:
                log.warning("join stuck: %s", stuck)
            self._stuck_logged = stuck is not None
            gevent.sleep(PROBE_EVERY_S)
