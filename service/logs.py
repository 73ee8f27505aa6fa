"""Logging, configured once for the process."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept only if it is safe to echo in a header and to log; else we make one.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
access_log = logging.getLogger("service.access")


class RequestIdFilter(logging.Filter):
    """Adds the current request's ``request_id`` to every record logged during a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context() and "request_id" in g and not hasattr(record, "request_id"):
            record.request_id = g.request_id
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with any ``extra`` ids (comment_id, job_id) kept as fields."""

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in self._STANDARD})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure(level: str = "INFO", json_logs: bool = False) -> None:
    """Configure the root logger once (later calls only change the level)."""
    root = logging.getLogger()
    root.setLevel(level)
    if getattr(configure, "_done", False):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if json_logs
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    configure._done = True  # type: ignore[attr-defined]


def init_app(app: Flask) -> None:
    """Configure logging from the app's settings (not under pytest, which captures logs); give
    every request an id (``X-Request-ID`` in, or a new one), echoed in the response."""
    if not app.config.get("TESTING"):
        configure(app.config["LOG_LEVEL"], app.config["JSON_LOGS"])

    @app.before_request
    def _request_id() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SAFE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.request_started = time.monotonic()

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        if "request_id" not in g:
            return response
        response.headers[REQUEST_ID_HEADER] = g.request_id
        if app.config["JSON_LOGS"]:  # text mode has gunicorn's access log
            access_log.info("%s %s %s", request.method, request.path, response.status_code,
                            extra={"method": request.method, "path": request.path,
                                   "status": response.status_code,
                                   "duration_ms": round(1000 * (time.monotonic()
                                                                - g.request_started), 1)})
        return response
