"""Makes every error the web app returns a small JSON document with the right 4xx/5xx status."""

from __future__ import annotations

import logging
import re

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a handler raises on purpose; its message is safe to show the client."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class SnapshotUnavailable(ApiError):
    """The node could not produce a snapshot (it is starting or stopping)."""

    def __init__(self) -> None:
        super().__init__(503, "snapshot_unavailable", "the node could not report its status")


def error_response(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": code, "message": message, "status": status})
    response.status_code = status
    return response


def register(app: Flask) -> None:
    """Install the JSON error handlers on app."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error.status, error.code, error.message)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = re.sub(r"[^a-z0-9]+", "_", (error.name or "error").lower()).strip("_")
        response = error_response(status, code, error.description or code)
        # Keep what the client needs to recover, e.g. Allow on 405.
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        # The details go to the log, never to the client.
        log.exception("web request failed error=%s", type(error).__name__)
        return error_response(500, "internal_error", "internal error")
