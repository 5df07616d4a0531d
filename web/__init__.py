"""The status UI: a Flask app that shows the cluster as one node sees it, built over a read-only status snapshot.

Layout:
    snapshot.py   the snapshot contract (TypedDicts): the only thing the app knows of the node
    views.py      pure: snapshot -> the JSON documents (status, nodes, health, events, overview)
    ring.py       pure: members' slot ranges -> tracks of arcs for the ring picture
    metrics.py    snapshot -> Prometheus metric families, at scrape time
    routes.py     the endpoints: /, /cluster/{status,nodes,events,overview}, /health, /metrics
    errors.py     every error as a JSON document
    templates/    index.html, the page skeleton
    static/       ES modules, never innerHTML: app.js (polls /cluster/overview, members, events),
                  ring.js (the SVG ring), charts.js (sparklines), dom.js, format.js; style.css

The node calls `serve(snapshot, host, port)` inside its gevent process. The
snapshot callable returns a fresh dict (see web.snapshot.Snapshot) each call;
it must not block the hub, and the app never mutates what it gets.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from flask import Flask, Response
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from web import errors
from web.metrics import SnapshotCollector
from web.routes import REGISTRY_KEY, SNAPSHOT_KEY, bp
from web.snapshot import SnapshotSource

if TYPE_CHECKING:
    from gevent.pywsgi import WSGIServer

log = logging.getLogger(__name__)

# The page loads only its own script and style and talks only to its own node
# (other nodes are plain links), so any injected markup has nothing to run.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def create_app(snapshot: SnapshotSource) -> Flask:
    """Build the app; `snapshot` is called once per request (once per scrape for /metrics)."""
    app = Flask(__name__)
    app.json.sort_keys = True  # type: ignore[attr-defined]  # byte-stable JSON: nodes can be diffed
    app.extensions[SNAPSHOT_KEY] = snapshot
    # A registry per app, not prometheus_client's global one: several apps
    # (tests, or nodes in one process) must not collide.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    # The process as the kernel and the interpreter see it: RSS, CPU seconds, open fds
    # (process_*), garbage collections (python_gc_*), the interpreter (python_info).
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    PlatformCollector(registry=registry)
    app.extensions[REGISTRY_KEY] = registry
    app.register_blueprint(bp)
    errors.register(app)

    @app.after_request
    def _secure(response: Response) -> Response:
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app


def serve(snapshot: SnapshotSource, host: str, port: int, spawn: Any = "default",
          idle_timeout_s: float | None = None) -> WSGIServer:
    """Start the app on gevent's WSGI server in the calling thread's hub and return the started server.

    Port 0 picks a free port; read it back from `server.server_port`. `spawn`
    (a gevent Pool) caps the connections served at once; `idle_timeout_s`
    closes a connection that sends nothing for that long (a half-open request).
    The node runs this in a thread of its own (hypercache/status_server.py).
    """
    from gevent.pywsgi import WSGIServer  # imported here so create_app works without gevent

    class _Server(WSGIServer):
        def handle(self, sock: Any, address: Any) -> None:
            if idle_timeout_s is not None:
                sock.settimeout(idle_timeout_s)
            super().handle(sock, address)

    # log=None: no access log line per request (the page polls every second);
    # server errors still reach logging through gevent's adapter.
    server = _Server((host, port), create_app(snapshot), log=None, error_log=log, spawn=spawn)
    server.start()
    log.info("web serving host=%s port=%d", host, server.server_port)
    return server
