"""Domain exceptions, one flat module. Views raise these; `service.problems` turns them into
RFC 9457 problem+json answers."""

from __future__ import annotations

from typing import Any


class ConfigError(RuntimeError):
    """The settings are unusable (for example, production mode without a secret key)."""


class ServiceError(Exception):
    """Base of the errors an API client may see; carries its HTTP status and problem fields."""

    status = 400
    title = "Bad request"
    type_slug = "bad-request"

    def __init__(self, detail: str, *, errors: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        # Extra problem members and headers, set by subclasses.
        self.extensions: dict[str, Any] = {}
        self.headers: dict[str, str] = {}


class InvalidFieldError(ServiceError):
    """A field is well-formed but not acceptable (for example, a parent from another post)."""

    status = 422
    title = "Validation failed"
    type_slug = "validation"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors={field: [message]})


class NotFoundError(ServiceError):
    """The addressed resource does not exist (or is not visible to the caller)."""

    status = 404
    title = "Not found"
    type_slug = "not-found"


class UnavailableError(ServiceError):
    """A backing service (database, Redis) is down; the client should retry later."""

    status = 503
    title = "Service unavailable"
    type_slug = "unavailable"


class UnauthorizedError(ServiceError):
    """No valid credentials (missing, wrong or disabled token; no session)."""

    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"


class ForbiddenError(ServiceError):
    """Valid credentials, but not allowed (wrong role, closed post)."""

    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class ConflictError(ServiceError):
    """The resource changed since the client last saw it, or already exists."""

    status = 409
    title = "Conflict"
    type_slug = "conflict"


class ImportFileError(Exception):
    """A file given to ``flask --app service import`` is missing, unreadable or not in the
    format named (never an HTTP answer: the CLI prints it on one line)."""
