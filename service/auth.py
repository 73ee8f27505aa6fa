"""Who is asking: a moderator by API token (``Authorization: Bearer``) or by web session.

Session-authenticated writes need the CSRF token (Flask-WTF) in a form field or the
``X-CSRFToken`` header; token-authenticated calls don't (a browser never adds the header).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, g, request, session
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import select

from service import database
from service.db import Moderator
from service.db.moderators import hash_token
from service.errors import ForbiddenError, UnauthorizedError
from service.problems import problem

csrf = CSRFProtect()
F = TypeVar("F", bound=Callable[..., Any])

SESSION_KEY = "moderator_id"
# The account's session_version when the session began: raising it revokes the session.
VERSION_KEY = "moderator_version"


def init_app(app: Flask) -> None:
    """CSRF protection for forms; cookie settings for the moderators' session."""
    # Flask's defaults already hold these keys, so they are assigned, not setdefault().
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = app.config["APP_ENV"] == "production"
    # Flask checks a session cookie's signature time against this on every request, so a
    # copied cookie stops working after it, whatever its Expires says.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(
        hours=app.config["SESSION_LIFETIME_HOURS"])
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid for the session's lifetime
    # API routes check CSRF themselves, and only for cookie sessions (see authenticate).
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError) -> Any:
        return problem(400, f"CSRF check failed: {error.description}")


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def authenticate() -> Moderator:
    """The active moderator making this request, or UnauthorizedError."""
    if "moderator" in g:
        return cast(Moderator, g.moderator)
    db = database.session()
    token = _bearer_token()
    moderator: Moderator | None = None
    if token is not None:
        moderator = db.scalar(select(Moderator).where(Moderator.token_hash == hash_token(token)))
    elif request.headers.get("Authorization"):
        raise UnauthorizedError("Use 'Authorization: Bearer <token>'.")
    elif SESSION_KEY in session:
        moderator = session_moderator()
        if moderator is not None and request.method not in ("GET", "HEAD", "OPTIONS"):
            csrf.protect()
    if moderator is None or not moderator.active:
        raise UnauthorizedError("A valid moderator token or login is required.")
    g.moderator = moderator
    return moderator


def start_session(moderator: Moderator) -> None:
    """Log ``moderator`` in on this browser: a fresh session (new CSRF token) bound to the
    account's current session version."""
    session.clear()
    session[SESSION_KEY] = moderator.id
    session[VERSION_KEY] = moderator.session_version


def session_moderator() -> Moderator | None:
    """The active moderator of this browser session, unless revoked since it began."""
    moderator_id = session.get(SESSION_KEY)
    if moderator_id is None:
        return None
    moderator = database.session().get(Moderator, moderator_id)
    if moderator is None or not moderator.active or \
            session.get(VERSION_KEY) != moderator.session_version:
        session.clear()
        return None
    return moderator


def is_moderator_request() -> bool:
    """True if the request carries a valid moderator token or session (exempt from limits)."""
    if not (_bearer_token() or SESSION_KEY in session):
        return False
    try:
        authenticate()
    except (UnauthorizedError, CSRFError):
        # A moderator's browser posting a comment like any reader (no CSRF token): not
        # exempt, and not refused either.
        return False
    return True


def require_admin() -> Moderator:
    """The requesting moderator if they are an admin; 401 or 403 otherwise."""
    moderator = authenticate()
    if not moderator.is_admin:
        raise ForbiddenError("This needs an admin account.")
    return moderator


def audit(action: str, **details: Any) -> None:
    """Record a change by the requesting admin in the audit trail (the caller commits)."""
    from service.db import AdminEvent

    moderator = authenticate()
    database.session().add(AdminEvent(moderator_id=moderator.id, actor=moderator.name,
                                      action=action, details=details))


def admin_only(view: F) -> F:
    """Decorator: the view needs an admin (checked before anything else runs)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        require_admin()
        return view(*args, **kwargs)

    return cast(F, wrapper)
