"""RFC 9457 problem details: the one place that turns exceptions into error responses.

It sits at the bottom of the web layer: it imports `service.errors`, `metrics` and `queue`,
never `auth` or `limits` (they import it), so imports flow one way."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json
from marshmallow import ValidationError
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from service import metrics, queue
from service.errors import ServiceError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# Seconds a client should wait before retrying when a backing service is down.
RETRY_AFTER_SECONDS = 5


def problem(
    status: int,
    detail: str | None = None,
    *,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    type_: str = "about:blank",
    title: str | None = None,
    extensions: dict[str, Any] | None = None,
    counted: bool = False,
) -> Response:
    """A problem+json response (a 429 is counted as a refusal unless ``counted`` already)."""
    body: dict[str, Any] = {
        **(extensions or {}),
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if status == 429 and not counted:  # every refusal is built here
        metrics.count_refusal(queue.redis())
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers.update(headers or {})
    return response


def _flatten_webargs(messages: Any) -> dict[str, Any]:
    """webargs nests field errors by location ({"json": {"content": [...]}}); drop that level."""
    if isinstance(messages, dict):
        flat: dict[str, Any] = {}
        for key, value in messages.items():
            if key in {"json", "form", "query", "querystring", "json_or_form", "headers"} and (
                isinstance(value, dict)
            ):
                flat.update(value)
            else:
                flat[key] = value
        return flat
    return {"_schema": messages}


def from_http_exception(error: HTTPException) -> Response:
    """Problem for a werkzeug/flask-smorest HTTP error (abort, 404, 405, 413, webargs 422)."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or (
        _flatten_webargs(data["messages"]) if "messages" in data else None
    )
    headers = dict(data.get("headers") or {})
    if status == 429 and "Retry-After" not in headers:  # a 429 from an HTTPException
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    detail = data.get("message") or (error.description if status != 500 else None)
    if status == 422 and errors:
        detail = "Some fields are invalid: " + ", ".join(sorted(errors))
    return problem(status, detail, errors=errors, headers=headers)


def from_validation_error(error: ValidationError) -> Response:
    """422 with the schema's messages per field."""
    errors = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
    return problem(422, "Some fields are invalid: " + ", ".join(sorted(errors)), errors=errors)


def from_service_error(error: ServiceError) -> Response:
    """Problem for one of our domain errors."""
    headers = dict(error.headers)
    if error.status == 503:
        headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="moderation"'
    return problem(error.status, error.detail, errors=error.errors, headers=headers,
                   title=error.title, extensions=error.extensions,
                   counted=getattr(error, "counted", False))


def from_database_error(error: Exception) -> Response:
    """The database is unreachable or refused: 503, retry later. Nothing was committed."""
    log.warning("database unavailable: %s", error.__class__.__name__)
    return problem(
        503, "The database is unavailable; please retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def from_redis_error(error: RedisError) -> Response:
    """Redis is unreachable for a request that needs it: 503, retry later."""
    log.warning("redis unavailable: %s", error.__class__.__name__)
    return problem(
        503, "The queue is unavailable; please retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def init_app(app: Flask) -> None:
    """Register the handlers."""
    app.register_error_handler(HTTPException, from_http_exception)
    app.register_error_handler(ValidationError, from_validation_error)
    app.register_error_handler(ServiceError, from_service_error)
    app.register_error_handler(OperationalError, from_database_error)
    app.register_error_handler(RedisError, from_redis_error)
