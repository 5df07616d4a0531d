"""Maps the HTTP endpoints to views of the snapshot: the page, the JSON API, health and metrics."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from web import views
from web.errors import ApiError, SnapshotUnavailable
from web.snapshot import Snapshot, SnapshotSource

log = logging.getLogger(__name__)

bp = Blueprint("status", __name__)

SNAPSHOT_KEY = "hypercache.snapshot"
REGISTRY_KEY = "hypercache.registry"
DEFAULT_EVENTS = 50
MAX_EVENTS = 500


@bp.get("/")
def page() -> str:
    # The page fills itself from /cluster/overview; only the title uses the
    # snapshot, so a node that cannot report still serves a page that says so.
    try:
        node: dict[str, Any] | None = dict(_snapshot()["node"])
    except SnapshotUnavailable:
        node = None
    return render_template("index.html", node=node)


@bp.get("/cluster/status")
def cluster_status() -> Response:
    return _json(views.status_view(_snapshot()))


@bp.get("/cluster/nodes")
def cluster_nodes() -> Response:
    return _json(views.nodes_view(_snapshot()))


@bp.get("/cluster/events")
def cluster_events() -> Response:
    return _json(views.events_view(_snapshot(), _limit()))


@bp.get("/cluster/overview")
def cluster_overview() -> Response:
    return _json(views.overview_view(_snapshot(), _limit()))


@bp.get("/health")
def health() -> Response:
    body, status = views.health_view(_snapshot())
    return _json(body, status)


@bp.get("/metrics")
def metrics() -> Response:
    registry: CollectorRegistry = current_app.extensions[REGISTRY_KEY]
    try:
        text = generate_latest(registry)
    except Exception as error:
        # A malformed snapshot must not turn into a half-written exposition.
        log.exception("metrics scrape failed error=%s", type(error).__name__)
        raise SnapshotUnavailable() from error
    return Response(text, mimetype=None, content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def _snapshot() -> Snapshot:
    source: SnapshotSource = current_app.extensions[SNAPSHOT_KEY]
    try:
        return source()
    except Exception as error:
        log.warning("snapshot failed error=%s", type(error).__name__, exc_info=True)
        raise SnapshotUnavailable() from error


def _limit() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_EVENTS
    # ASCII digits only: str.isdigit() would let "²" through to int().
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_EVENTS:
        raise ApiError(400, "bad_request", f"limit must be an integer from 1 to {MAX_EVENTS}")
    return int(raw)


def _json(body: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    # Status is live data: a cached answer is a wrong answer.
    response.headers["Cache-Control"] = "no-store"
    return response
