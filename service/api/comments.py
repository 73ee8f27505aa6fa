"""Public comments API: submit a comment, read one, list a post's published comments."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any, cast

from flask import current_app, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE
from redis.exceptions import RedisError
from sqlalchemy import Connection, Table, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from service import caching, database, guard, limits, queue, readers, webhooks
from service.api import html_form
from service.api.body import parse_body, post_path
from service.db import Comment, CommentEvent, CommentStatus, DecidedBy, PostSettings
from service.db.comments import hash_secret
from service.db.types import utcnow
from service.errors import ForbiddenError, InvalidFieldError, NotFoundError, ServiceError
from service.problems import PROBLEM_JSON
from service.schemas import (
    CommentAccepted,
    CommentIn,
    CommentInForm,
    CommentOut,
    CommentPage,
    FormToken,
    FormTokenArgs,
    PageArgs,
    Problem,
)
from service.sites import SUBMISSION_POST_PREFIX

log = logging.getLogger(__name__)

blp = Blueprint(
    "comments", __name__, url_prefix="/api/v1", description="Submit and read comments."
)
# A browser's plain HTML form gets a 303 back to its page (or a page of its own), not JSON.
blp.after_request(html_form.answer)

_BODY_DOC = {
    "required": True,
    "content": {
        "application/json": {"schema": CommentIn},
        "application/x-www-form-urlencoded": {"schema": CommentInForm},
    },
}


def _client_ip() -> str | None:
    # Behind a proxy, ProxyFix (configured by the deployment) rewrites remote_addr.
    return request.remote_addr


IDEMPOTENCY_KEY_MAX = 255
# What makes a retry "the same comment" for its Idempotency-Key.
_SAME_COMMENT = ("post", "author_name", "author_email", "author_url", "content", "parent_id")


def _idempotency_key() -> str | None:
    """The header's key, scoped to the client: stored as a hash of the client's network and
    the key, so another client's identical key never finds this client's comment."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise ServiceError("The Idempotency-Key header must be 1 to 255 printable characters.")
    scoped = f"{limits.client_network()}\n{key}".encode()
    return "sha256:" + hashlib.sha256(scoped).hexdigest()


# The header (or ``secret`` query parameter) that shows an author their unpublished comment.
SECRET_HEADER = "X-Comment-Secret"
# 192 random bits: not guessable, short enough for a URL.
SECRET_BYTES = 24


def new_secret() -> tuple[str, str]:
    """A fresh per-comment secret and the SHA-256 hex digest that is stored instead of it."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return secret, hash_secret(secret)


def _accepted(ident: int, post: str, created_at: Any, reader_id: str | None,
              secret: str | None = None) -> tuple[dict[str, Any], int, dict[str, str]]:
    # Always "pending" here: a comment a bot trap filed as spam must look like any other.
    token = readers.token_for(current_app.config["SECRET_KEY"], reader_id or readers.new_id())
    body = {"id": ident, "status": CommentStatus.PENDING, "post": post, "created_at": created_at,
            "reader_token": token}
    if secret is not None:
        body["secret"] = secret
    return body, 202, {"Location": f"/api/v1/comments/{ident}"}


_COMMENTS = cast(Table, Comment.__table__)
_EVENTS = cast(Table, CommentEvent.__table__)


# Built once: a schema instance deep-copies its fields (9 % of a submission's CPU); loading
# keeps no state on it.
_COMMENT_IN = CommentIn()

# Built once (statement construction costs more than SQLite's lookup).
_CLOSED = select(PostSettings.closed).where(PostSettings.post == bindparam("post"))
_PARENT = select(_COMMENTS.c.post, _COMMENTS.c.status).where(_COMMENTS.c.id == bindparam("id"))
_INSERT = insert(_COMMENTS)
_INSERT_EVENT = insert(_EVENTS)
_BY_KEY = select(_COMMENTS.c.id, _COMMENTS.c.created_at, _COMMENTS.c.reader_id,
                 *(_COMMENTS.c[name] for name in _SAME_COMMENT)).where(
    _COMMENTS.c.idempotency_key == bindparam("key"))


_NEW_SECRET = _COMMENTS.update().where(_COMMENTS.c.id == bindparam("ident")).values(
    secret_hash=bindparam("secret_hash"))


def _by_key(connection: Connection, key: str, fields: dict[str, Any]
            ) -> tuple[dict[str, Any], int, dict[str, str]] | None:
    """The answer for a retry with this client's key, with a fresh secret (only the hash of
    the first was kept); 422 if the key came with another comment (a client bug or a guess,
    never a reason to hand out someone's comment)."""
    row = connection.execute(_BY_KEY, {"key": key}).first()
    if row is None:
        return None
    if any(getattr(row, name) != fields.get(name) for name in _SAME_COMMENT):
        raise InvalidFieldError("Idempotency-Key", "This key was already used for a different "
                                "comment. Send a new key with a new comment.")
    secret, digest = new_secret()
    connection.execute(_NEW_SECRET, {"ident": row.id, "secret_hash": digest})
    database.session().commit()
    return _accepted(row.id, row.post, row.created_at, row.reader_id, secret=secret)


@blp.route("/comments")
class Comments(MethodView):
    """The comments collection."""

    @blp.doc(requestBody=_BODY_DOC, parameters=[{
        "in": "header", "name": "Idempotency-Key", "required": False,
        "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
        "description": "A retry with the same key returns the same comment.",
    }])
    @blp.response(202, CommentAccepted, description="Stored; it will be scored shortly.")
    @blp.alt_response(303, description="A browser's plain HTML form (a form body, `Accept` "
                      "preferring text/html): back to its `return_to` or Referer page, with "
                      "`?comment=ID&comment_status=pending`. Refusals answer an HTML page.")
    @blp.alt_response(422, schema=Problem, content_type=PROBLEM_JSON,
                      description="A field is invalid (problem+json with `errors`).")
    @blp.alt_response(409, schema=Problem, content_type=PROBLEM_JSON,
                      description="The same comment was just submitted (its `id`).")
    @blp.alt_response(429, schema=Problem, content_type=PROBLEM_JSON,
                      description="Too many comments from this IP or e-mail.")
    def post(self) -> Any:
        """Submit a comment: stored at once as `pending`, then scored by a worker."""
        exempt = limits.is_exempt()
        submission = _Submission(exempt=exempt, counted=exempt)
        try:
            return _submit(submission)
        except Exception:
            # Refused before its limits were counted (a bad body, a key reused with another
            # body): it counts all the same, and a limit it reaches answers first. Refused
            # after (a closed post, a duplicate, a hidden parent): its marks are undone.
            submission.count_limits()
            submission.undo_marks()  # refused: as if it had never come, bar the counts
            raise


@dataclass(slots=True)
class _Submission:
    """Whether this submission is exempt from limits and flood control (a trusted IP, a
    moderator), whether it was counted against the rate limits yet, and the "used" key of
    the ripe form token it came with (it passes the per-post limit once)."""

    exempt: bool
    counted: bool
    token_key: str | None = None
    spent: bool = False
    flood_marks: tuple[str, ...] = ()

    def count_limits(self) -> None:
        """Count it against the limits alone (no flood mark), once."""
        if not self.counted:
            self.counted = True
            limits.check_submission(queue.redis(), None, 0, flood=False,
                                    token_key=self.token_key)

    def undo_marks(self) -> None:
        """A comment refused after its limits' round trip (a closed post, a duplicate, a
        reply to a comment not shown) leaves no flood mark (the reader's next comment is not
        "too fast") and gives its form token back (the corrected form still passes)."""
        keys = [*self.flood_marks, *([self.token_key] if self.spent and self.token_key else [])]
        self.spent, self.flood_marks = False, ()
        if keys:
            with contextlib.suppress(RedisError):
                queue.redis().delete(*keys)


def _submit(submission: _Submission) -> Any:
    key = _idempotency_key()
    fields = parse_body(_COMMENT_IN)
    honeypot, form_token = fields.pop("hp_website"), fields.pop("form_token")
    fields.pop("return_to")  # read by html_form.answer, for a browser's plain form
    submission.token_key = guard.ripe_token_key(fields["post"], form_token)
    reader_id = readers.id_from(current_app.config["SECRET_KEY"],
                                fields.pop("reader_token")) or readers.new_id()
    # The busiest route: SQLAlchemy core on the request session's connection (the ORM's
    # unit of work would double the CPU per comment; see docs/PERFORMANCE.md).
    connection = database.session().connection()
    if key is not None:
        submission.count_limits()  # a limited retry gets 429, not its comment
        if (existing := _by_key(connection, key, fields)) is not None:
            return existing
    ip = _client_ip()
    unused = None
    if not submission.exempt:
        # The limits (unless counted above), flood control and spending the form token:
        # one round trip, before any SQL, so that a flood's refusals cost the least.
        windows = not submission.counted
        submission.counted = True
        try:
            unused = limits.check_submission(
                queue.redis(), fields.get("author_email"), current_app.config["FLOOD_SECONDS"],
                windows=windows, token_key=submission.token_key)
            submission.spent = bool(unused)
            if current_app.config["FLOOD_SECONDS"] > 0:
                submission.flood_marks = tuple(limits.flood_keys(fields.get("author_email")))
        except limits.FloodError:
            # A reader who sent the same comment again moments ago: 409 says it is in.
            guard.check_duplicate(connection, fields, ip)
            raise
    closed = connection.scalar(_CLOSED, {"post": fields["post"]})
    if closed:
        raise ForbiddenError("Comments are closed on this post.")
    parent_id = fields.get("parent_id")
    if parent_id is not None:
        parent = connection.execute(_PARENT, {"id": parent_id}).first()
        if parent is None or parent.post != fields["post"] or \
                parent.status != CommentStatus.PUBLISHED:
            raise InvalidFieldError(
                "parent_id", "The comment you replied to is no longer shown on this post."
            )
    # Identical submissions wait here for each other until the first one commits, so
    # the others find it (409) instead of all passing the check at once.
    guard.lock_duplicates(connection, fields, ip)
    guard.check_duplicate(connection, fields, ip)
    trap = guard.check_bot_traps(fields["post"], honeypot, form_token, queue.redis(), unused)
    now = utcnow()
    secret, secret_hash = new_secret()
    row = {
        **fields,
        "secret_hash": secret_hash,
        "ip": ip,
        "user_agent": (request.user_agent.string or None) and request.user_agent.string[:512],
        "referer": request.referrer[:2048] if request.referrer else None,
        "status": CommentStatus.PENDING,
        "idempotency_key": key,
        "reader_id": reader_id,
        "created_at": now,
    }
    if trap.spam_reason:
        row.update(status=CommentStatus.SPAM, decided_by=DecidedBy.RULE,
                   reasons=[trap.spam_reason], decided_at=now)
    elif trap.hold_reason:
        row["reasons"] = [trap.hold_reason]  # pending: the worker scores it, then holds it
    try:
        result = connection.execute(_INSERT, row)
        ident = int(result.inserted_primary_key[0])  # type: ignore[index]
    except IntegrityError:
        # A concurrent retry with the same Idempotency-Key won the race.
        database.session().rollback()
        existing = _by_key(database.session().connection(), key, fields) if key else None
        if existing is None:
            raise
        return existing
    if trap.spam_reason:
        connection.execute(_INSERT_EVENT, {
            "comment_id": ident, "actor": DecidedBy.RULE, "action": "bot-trap",
            "from_status": CommentStatus.PENDING, "to_status": CommentStatus.SPAM,
            "note": trap.spam_reason, "created_at": now})
    database.session().commit()
    if trap.spam_reason:
        _announce_trapped(ident)
    else:
        try:
            queue.request_scoring(queue.scoring_queue())
        except Exception:
            # The comment is safe in the database; the reconciler queues a job later.
            log.warning("could not queue scoring for comment %s; left pending", ident,
                        extra={"comment_id": ident})
    return _accepted(ident, fields["post"], now, reader_id, secret)


def _announce_trapped(ident: int) -> None:
    """Send a bot trap's decision to the webhooks subscribed to `comment.spam`, like every
    other decision. Best effort: the comment is stored and the bot gets its 202 regardless."""
    session = database.session()
    try:
        hooks = webhooks.queue_for(queue.redis(), dict(current_app.config))
        webhooks.comments_decided(session, hooks, [session.get_one(Comment, ident)])
    except Exception:
        session.rollback()
        log.warning("could not announce trapped comment %s", ident, exc_info=True,
                    extra={"comment_id": ident})


@blp.route("/form-token")
class FormTokens(MethodView):
    """Tokens for comment forms."""

    @blp.arguments(FormTokenArgs, location="query", as_kwargs=True, unknown=RAISE)
    @blp.response(200, FormToken)
    def get(self, post: str) -> dict[str, str]:
        """A signed token for a form shown now; send it back as `form_token`."""
        return {"token": guard.issue_form_token(post.strip("/"))}


@blp.route("/comments/<int(max=9223372036854775807):comment_id>")
class CommentById(MethodView):
    """One comment."""

    @blp.doc(parameters=[
        {"in": "header", "name": SECRET_HEADER, "required": False, "schema": {"type": "string"},
         "description": "The `secret` of the 202: shows the author their comment before it "
                        "is published."},
        {"in": "query", "name": "secret", "required": False, "schema": {"type": "string"},
         "description": f"The same as the {SECRET_HEADER} header."}])
    @blp.response(200, CommentOut)
    @blp.alt_response(404, schema=Problem, content_type=PROBLEM_JSON,
                      description="No such published comment (or a wrong secret).")
    def get(self, comment_id: int) -> Any:
        """A published comment's public view (no e-mail, no IP). The author, with the secret
        of the 202, also sees it before: ``pending``, then ``held`` for anything not
        published (held, spam and rejected read alike, so a bot learns nothing)."""
        comment = database.session().get(Comment, comment_id)
        # One answer for "missing", "not published" and "not yours": ids are sequential.
        missing = NotFoundError(f"No comment {comment_id}.")
        if comment is None or comment.post.startswith(SUBMISSION_POST_PREFIX):
            raise missing  # rows sites reported through the Akismet API are never public
        if comment.status == CommentStatus.PUBLISHED:
            # Asked again each time (the widget follows a comment until it is decided),
            # and the answer depends on the secret header.
            return comment, 200, {"Cache-Control": "no-cache", "Vary": SECRET_HEADER}
        if not _is_author(comment):
            raise missing
        status = CommentStatus.PENDING if comment.status == CommentStatus.PENDING \
            else CommentStatus.HELD
        view = {name: getattr(comment, name) for name in CommentOut._declared_fields}
        # Its author's alone: no cache may keep it, let alone hand it to someone else.
        return {**view, "status": status, "decided_at": None}, 200, {
            "Cache-Control": "private, no-store", "Vary": SECRET_HEADER}


def _is_author(comment: Comment) -> bool:
    """True if the request carries the secret of this comment's 202."""
    given = request.headers.get(SECRET_HEADER) or request.args.get("secret")
    if not given or not comment.secret_hash or len(given) > 256:
        return False
    return hmac.compare_digest(hash_secret(given), comment.secret_hash)


@blp.route("/posts/<path:post>/comments")
class PostComments(MethodView):
    """The published comments of one post."""

    @blp.arguments(PageArgs, location="query", as_kwargs=True, unknown=RAISE)
    @blp.response(200, CommentPage, description="Also 304 for an `If-None-Match` naming the "
                  "current ETag. The same for everyone (published comments only), so caches "
                  "may share it: `Cache-Control: public, max-age=10, "
                  "stale-while-revalidate=60`.")
    def get(self, post: str, limit: int, cursor: str | None) -> Any:
        """Published comments, oldest first, ``limit`` per page; ``next`` is the next cursor."""
        post = post_path(post)
        # Before the database: a tag is never newer than the rows it is sent with.
        tag = caching.read_tag([post], "listing", post, str(limit), cursor or "")
        if caching.fresh(tag):
            return caching.not_modified(cast(str, tag), caching.LISTING_CACHE_CONTROL)
        session = database.session()
        published = (Comment.post == post, Comment.status == CommentStatus.PUBLISHED,
                     # what sites report through the Akismet API is never shown
                     ~Comment.post.startswith(SUBMISSION_POST_PREFIX, autoescape=True))
        query = select(Comment).where(*published).order_by(Comment.id).limit(limit + 1)
        if cursor is not None:
            query = query.where(Comment.id > int(cursor))
        rows = list(session.scalars(query))
        total = session.scalar(select(func.count()).select_from(Comment).where(*published))
        more = len(rows) > limit
        rows = rows[:limit]
        page = _COMMENT_PAGE.dump({
            "comments": rows,
            "next": str(rows[-1].id) if more else None,
            "total": total or 0,
            "closed": bool(session.scalar(_CLOSED, {"post": post})),
        })
        return caching.conditional(jsonify(page), tag, caching.LISTING_CACHE_CONTROL)


_COMMENT_PAGE = CommentPage()
