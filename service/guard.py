"""The submission guard: checks that need state (Redis, the database, the clock), apart from
field validation. It returns a verdict and a reason, like Isso's Guard.

- a filled honeypot field or a forged form token: file as spam, quietly (the answer looks
  like any other, so bots learn nothing);
- a form sent faster than people type, or a form token used before (each serves one
  comment): hold for a moderator after scoring (autofill and a pasted text are fast too);
- flood control: one comment per IP and per e-mail every few seconds (429; counted with the
  rate limits in one Redis script, `service.limits.check_submission`);
- duplicates: the same author, post and text within minutes returns the existing comment (409).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Connection, Select, bindparam, select, text
from sqlalchemy.orm import Session

from service.db import Comment
from service.db.types import utcnow
from service.errors import ConflictError, ServiceError

log = logging.getLogger(__name__)

TOKEN_SALT = "comment-form"
# A form token older than this proves nothing either way (a tab left open overnight).
FORM_TOKEN_MAX_AGE = 24 * 3600
# People need more than this to read a post and type a comment; bots post at once.
MIN_FILL_SECONDS = 3
# WordPress's flood interval: one comment per IP or e-mail every 15 seconds.
FLOOD_SECONDS = 15
# The same text by the same author on the same post within this window is a double submit.
DUPLICATE_WINDOW = timedelta(minutes=10)


class TooManyRequestsError(ServiceError):
    """Flood control: wait ``retry_after`` seconds."""

    status = 429
    title = "Too Many Requests"
    type_slug = "rate-limited"
    # True once the refusal is counted (service.metrics), by the limits' own round trip.
    counted = False

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.headers["Retry-After"] = str(retry_after)


class DuplicateCommentError(ConflictError):
    """The same comment was just submitted; ``comment_id`` is the existing one."""

    def __init__(self, comment_id: int) -> None:
        super().__init__("You already sent this comment; it is being checked "
                         f"(comment {comment_id}).")
        self.comment_id = comment_id
        self.extensions["id"] = comment_id
        self.headers["Location"] = f"/api/v1/comments/{comment_id}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Nothing: let the model decide; ``spam_reason``: spam without scoring; ``hold_reason``:
    scored, but held for a human at least (the worker's rules read it, service.rules)."""

    spam_reason: str | None = None
    hold_reason: str | None = None


# Redis keys of the form tokens already used (a hash of the token, kept as long as it is valid).
USED_TOKEN_KEY = "form-token:used:"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=TOKEN_SALT)


# Random bytes in each token: two forms shown in the same second get different tokens (the
# signature covers the post and a 1 s timestamp), so one reader's comment never spends
# another's.
TOKEN_NONCE_BYTES = 9


def issue_form_token(post: str) -> str:
    """A signed token naming the post and the time the form was shown, unique per form."""
    return _serializer().dumps({"p": post, "n": secrets.token_urlsafe(TOKEN_NONCE_BYTES)})


def ripe_token_key(post: str, form_token: str | None) -> str | None:
    """The "used" key of ``form_token`` if it is genuine, unexpired, for ``post`` and at least
    MIN_FILL_SECONDS old (a form a reader took the time to fill in); else None. Whether it was
    used before is Redis's to say (`limits.check_submission` spends it)."""
    if not form_token:
        return None
    try:
        data, issued = _serializer().loads(form_token, max_age=FORM_TOKEN_MAX_AGE,
                                           return_timestamp=True)
    except BadSignature:  # SignatureExpired too
        return None
    if not isinstance(data, dict) or data.get("p") != post or \
            time.time() - issued.timestamp() < MIN_FILL_SECONDS:
        return None
    return _used_key(form_token)


def check_bot_traps(post: str, honeypot: str | None, form_token: str | None,
                    redis: Redis | None = None, unused: bool | None = None) -> Verdict:
    """Honeypot, fill time and single use. A missing token is fine (API clients); a forged
    one is not. With ``redis``, a valid token is spent: a second comment with it is held.
    Redis down: the token is not checked for reuse. ``unused``: what spending it in the
    limits' round trip found (`limits.check_submission`): then it is not spent again."""
    if honeypot:
        return Verdict("honeypot field filled in")
    if not form_token:
        return Verdict()
    try:
        data, issued = _serializer().loads(form_token, max_age=FORM_TOKEN_MAX_AGE,
                                           return_timestamp=True)
    except SignatureExpired:
        return Verdict()
    except BadSignature:
        return Verdict("forged form token")
    if not isinstance(data, dict) or data.get("p") != post:
        return Verdict("form token from another post")
    elapsed = time.time() - issued.timestamp()
    # Both reasons begin as service.rules.GUARD_HOLD_REASONS says: the worker holds them.
    first_use = unused if unused is not None else redis is None or _spend(redis, form_token)
    if not first_use:
        return Verdict(hold_reason="form token used before (a form serves one comment)")
    if elapsed < MIN_FILL_SECONDS:
        return Verdict(hold_reason=f"form sent {max(elapsed, 0):.1f} s after it was shown")
    return Verdict()


def _used_key(form_token: str) -> str:
    return USED_TOKEN_KEY + hashlib.sha256(form_token.encode()).hexdigest()[:32]


def _spend(redis: Redis, form_token: str) -> bool:
    """Mark the token used; False if it already was. Redis down: True (let it pass)."""
    try:
        return bool(redis.set(_used_key(form_token), 1, ex=FORM_TOKEN_MAX_AGE, nx=True))
    except RedisError:
        log.warning("form token reuse not checked: Redis unavailable")
        return True


def too_fast_message(seconds: int) -> str:
    """What a reader reads when flood control or a rate limit refuses a comment."""
    if seconds <= 1:
        wait = "a second"
    elif seconds < 50:
        wait = f"{seconds} seconds"
    elif seconds <= 90:
        wait = "a minute"
    else:
        wait = f"{round(seconds / 60)} minutes"
    return f"You're posting too fast; please wait {wait} and send your comment again."


def _duplicate_query(by_email: bool) -> Select[int]:
    author = (Comment.author_email == bindparam("email")) if by_email else \
        (Comment.author_name == bindparam("name")) & (Comment.ip == bindparam("ip"))
    return select(Comment.id).where(
        Comment.post == bindparam("post"), Comment.content == bindparam("content"), author,
        Comment.created_at >= bindparam("since"),
    ).order_by(Comment.id.desc()).limit(1)


# Built once: every submission runs one of them.
_DUPLICATE_BY_EMAIL, _DUPLICATE_BY_NAME_AND_IP = _duplicate_query(True), _duplicate_query(False)


def lock_duplicates(connection: Connection, fields: dict[str, Any], ip: str | None) -> None:
    """Make identical submissions (same post, author, text) take turns until this
    transaction ends, so that of N concurrent ones exactly one is stored and the others see
    it in check_duplicate. PostgreSQL: a transaction-level advisory lock on a hash of the
    three (other comments never wait). SQLite: its one write lock, taken now (BEGIN
    IMMEDIATE) rather than at the INSERT."""
    author = fields.get("author_email") or f"{fields['author_name']}\n{ip}"
    digest = hashlib.sha256(f"{fields['post']}\n{author}\n{fields['content']}".encode())
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(_ADVISORY_LOCK,
                           {"key": int.from_bytes(digest.digest()[:8], "big", signed=True)})
    elif dialect == "sqlite":
        dbapi = connection.connection.dbapi_connection
        if dbapi is not None and not getattr(dbapi, "in_transaction", True):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def check_duplicate(connection: Connection | Session, fields: dict[str, Any],
                    ip: str | None) -> None:
    """409 with the existing comment's id if this exact comment was just submitted."""
    email = fields.get("author_email")
    existing = connection.scalar(
        _DUPLICATE_BY_EMAIL if email else _DUPLICATE_BY_NAME_AND_IP,
        {"post": fields["post"], "content": fields["content"], "email": email,
         "name": fields["author_name"], "ip": ip, "since": utcnow() - DUPLICATE_WINDOW},
    )
    if existing is not None:
        raise DuplicateCommentError(existing)
