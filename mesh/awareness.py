"""This node's doubt in its own timeliness: Lifeguard's local health awareness, for suspicions on silence.

A member suspects a watched peer after node_timeout without a heartbeat from it.
That is sound while the watcher itself runs on time. On a starved machine (81
real nodes on two cores while they joined, README "How the mesh scales") every
process runs late: a watcher's timer fires late, it reads heartbeats late, and
its peers, starved as well, send them late. Silence there says more about the
machine than about the peer, yet each false suspicion is news to every member,
the news costs every member CPU, and the machine starves further: 600-800
suspicions a minute, and the cluster never formed.

Lifeguard (Dadgar, Phillips and Currey, 2018; HashiCorp's memberlist) gives a
member a score of its own health that rises with evidence that it is the slow
one and falls while it runs well, and stretches its own timeouts by
(score + 1). The evidence here:

- a late tick: the heartbeat timer ran later than its interval plus the lease's
  margin (mesh/lease.py's stall), so this node was not running when it should
  have been; what it hears was read late, and what it sent left late;
- a refutation: other members suspected this node, so they did not hear it in
  time.

Each is +1, up to MAX_SCORE; every CALM_S with neither takes 1 off. A member
that runs on time stays at 0, and finds a silent peer after node_timeout, as
before. Only this node's suspicions on silence wait longer: a peer's death, a
majority of its watchers' suspicions, can then only come later, never earlier,
so the write lease and the death rule (mesh/lease.py, mesh/watch.py) stand.
Pure: `now` is passed in.
"""
from __future__ import annotations

# Up to (MAX_SCORE + 1) node timeouts before a silent peer is suspected here: 15 s at the
# default 3 s, the timeout at which 100 real members formed on two cores. (memberlist allows
# 9 probe timeouts; a node_timeout is already six heartbeats, so fewer steps are needed.)
MAX_SCORE = 4
# A second running on time, and no refutation, takes one step off: a node out of a brief
# stall is back to node_timeout within MAX_SCORE seconds, while one late over and over
# (a tick late every second or more often) stays doubtful.
CALM_S = 1.0


class LocalHealth:
    """A score from 0 (on time) to MAX_SCORE, raised by evidence of this node's own lateness."""

    __slots__ = ("score", "raised", "_calm_since")

    def __init__(self, now: float) -> None:
        self.score = 0
        self.raised = 0             # evidence counted, ever (late ticks and refutations)
        self._calm_since = now      # the last evidence, or the last step down

    def late(self, now: float) -> None:
        """The timer ran late at `now`, or this node refuted a suspicion of itself."""
        self.raised += 1
        self.score = min(MAX_SCORE, self.score + 1)
        self._calm_since = now

    def tick(self, now: float) -> None:
        """The timer ran on time at `now`: a step down per CALM_S since the last evidence or step."""
        if self.score and now - self._calm_since >= CALM_S:
            steps = int((now - self._calm_since) // CALM_S)
            self.score = max(0, self.score - steps)
            self._calm_since += steps * CALM_S

    def scaled(self, timeout_s: float) -> float:
        """`timeout_s` as this node must apply it now: (score + 1) times it."""
        return timeout_s * (self.score + 1)
