"""The Akismet-compatible API (REST 1.1): verify-key, comment-check, submit-spam, submit-ham.

Blog engines and Akismet client libraries parse plain-text answers, so this blueprint answers
text/plain, never problem+json: ``valid``/``invalid``, ``true``/``false``, the submission
thanks. Bad input is ``invalid`` with an ``X-akismet-debug-help`` header, as Akismet does.

comment-check is synchronous for the caller, but the web process never loads the model: it
puts a job at the front of the scoring queue and waits a few seconds for the worker's verdict.
No verdict in time (worker down or busy), or no usable model: ``503`` with ``Retry-After`` and
an ``X-akismet-debug-help`` header. Akismet's WordPress plugin answers any reply other than
``true``/``false`` by holding the comment and rechecking it later, the fail-safe we want;
other clients raise an error their caller must handle the same way.

Answers beyond Akismet's: ``X-Moderation-Status`` (published, held or spam: our decision,
``held`` comes back as ``false`` because Akismet has no third answer) and ``X-Spam-Score``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any, cast

from flask import Blueprint, Response, current_app, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields
from redis.exceptions import RedisError
from rq.job import Job
from rq.results import Result
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from service import database, queue
from service.db import Label, Site
from service.schemas import MAX_CONTENT_CHARS
from service.sites import find_site, record_submission, submission_post

log = logging.getLogger(__name__)

bp = Blueprint("akismet", __name__, url_prefix="/1.1")

CHECK_JOB = "worker.akismet.check_comment"
# How long comment-check waits for the worker. It must stay under the Redis client's socket
# timeout (5 s, service.queue.connect): the wait is one blocking read on that connection.
# Scoring one comment takes milliseconds; seconds mean the worker is down or swamped.
CHECK_TIMEOUT_SECONDS = 3
# A check nobody started within this long is dropped: its caller gave up long ago.
CHECK_QUEUED_TTL = 30
# A check that runs longer than this is killed, so it cannot stall the scoring worker.
CHECK_JOB_TIMEOUT = 30
# The verdict is read once, right away; keep the comment's fields in Redis no longer.
CHECK_RESULT_TTL = 60
# Failed checks stay a day for whoever investigates.
CHECK_FAILURE_TTL = 24 * 3600
# Seconds a blog should wait before asking again after a 503.
RETRY_AFTER_SECONDS = 30

# Akismet's documented test triggers.
GUARANTEED_SPAM_AUTHOR = "akismet-guaranteed-spam"
GUARANTEED_SPAM_EMAIL = "akismet-guaranteed-spam@example.com"
ADMINISTRATOR_ROLE = "administrator"

SUBMISSION_THANKS = "Thanks for making the web a better place."

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_FALSE_FLAGS = {"", "0", "false", "no", "off"}


class AkismetInvalidError(Exception):
    """The request is answered ``invalid`` (bad key, missing fields), with a debug help."""

    def __init__(self, help_text: str) -> None:
        super().__init__(help_text)
        self.help_text = help_text


class Text(fields.String):
    """A string normalised like a comment (NFC, LF, trimmed, no control characters) and cut to
    ``max_length``: Akismet clients send what they have and cannot fix an over-long field."""

    def __init__(self, max_length: int, **kwargs: Any) -> None:
        if not kwargs.get("required"):
            kwargs.setdefault("load_default", None)
        super().__init__(**kwargs)
        self.max_length = max_length

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
        text = _CONTROL.sub("", text).strip()[: self.max_length]
        if not text and self.required:
            raise ValidationError("Empty value.")
        return text or None


class Flag(fields.Field):
    """Akismet's booleans: "1", "true" and any other non-empty value are on; "0"/"false" off."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("load_default", False)
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        return str(value).strip().lower() not in _FALSE_FLAGS


def _required(max_length: int) -> Text:
    return Text(max_length, required=True)


class VerifyKeyIn(Schema):
    """verify-key: the key (``key``, or ``api_key`` as newer clients send) and the blog."""

    class Meta:
        unknown = EXCLUDE

    key = Text(255)
    api_key = Text(255)
    blog = _required(2048)


class CommentIn(Schema):
    """comment-check, submit-spam and submit-ham. Akismet clients send many more fields
    (blog_lang, server variables): those are ignored, not refused."""

    class Meta:
        unknown = EXCLUDE

    api_key = _required(255)
    blog = _required(2048)
    user_ip = _required(45)
    user_agent = Text(512)
    referrer = Text(2048)
    permalink = Text(2048)
    comment_type = Text(64)
    comment_author = Text(100)
    comment_author_email = Text(254)
    comment_author_url = Text(2048)
    comment_content = Text(MAX_CONTENT_CHARS)
    user_role = Text(64)
    is_test = Flag()


def _text(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(body, status=status, mimetype="text/plain")
    response.headers.update(headers or {})
    return response


def _unavailable(help_text: str) -> Response:
    return _text("error", 503, {"Retry-After": str(RETRY_AFTER_SECONDS),
                                "X-akismet-debug-help": help_text})


def _load(schema: Schema) -> dict[str, Any]:
    try:
        return cast(dict[str, Any], schema.load(request.form))
    except ValidationError as error:
        names = sorted(error.messages) if isinstance(error.messages, dict) else []
        raise AkismetInvalidError(
            "Empty or missing required field(s): " + ", ".join(names)) from None


def _site(key: str | None) -> Site:
    site = find_site(database.session(), key or "")
    if site is None:
        raise AkismetInvalidError("We were unable to verify the API key.")
    return site


def _comment_columns(data: dict[str, Any]) -> dict[str, Any]:
    """The Comment columns of an Akismet request."""
    return {
        "post": submission_post(data["permalink"], data["blog"]),
        "author_name": data["comment_author"] or "",
        "author_email": data["comment_author_email"],
        "author_url": data["comment_author_url"],
        "content": data["comment_content"] or "",
        "ip": data["user_ip"],
        "user_agent": data["user_agent"],
        "referer": data["referrer"],
    }


@bp.post("/verify-key")
def verify_key() -> Response:
    """``valid`` if the key belongs to an active site, else ``invalid``."""
    data = _load(VerifyKeyIn())
    _site(data["key"] or data["api_key"])
    return _text("valid")


@bp.post("/comment-check")
def comment_check() -> Response:
    """``true`` (spam; blatant spam adds ``X-akismet-pro-tip: discard``) or ``false``."""
    data = _load(CommentIn())
    site = _site(data["api_key"])
    if data["user_role"] == ADMINISTRATOR_ROLE:
        return _text("false")
    if data["comment_author"] == GUARANTEED_SPAM_AUTHOR \
            or data["comment_author_email"] == GUARANTEED_SPAM_EMAIL:
        return _text("true")
    # No transaction stays open while we wait for the worker.
    database.session().close()
    timeout = int(current_app.config.get("AKISMET_CHECK_TIMEOUT", CHECK_TIMEOUT_SECONDS))
    job = queue.scoring_queue().enqueue(
        CHECK_JOB, _comment_columns(data),
        at_front=True, ttl=CHECK_QUEUED_TTL, job_timeout=CHECK_JOB_TIMEOUT,
        result_ttl=CHECK_RESULT_TTL, failure_ttl=CHECK_FAILURE_TTL,
        description=f"akismet comment-check for site {site.id}",
    )
    result = job.latest_result(timeout=timeout)
    verdict = _verdict(job, result)
    if verdict is None:
        return _unavailable("The spam checker did not answer in time; please retry.")
    if verdict["decided_by"] == "fallback":
        return _unavailable("No spam model is available; please retry later.")
    headers = {"X-Moderation-Status": verdict["status"]}
    if verdict["score"] is not None:
        headers["X-Spam-Score"] = f"{verdict['score']:.4f}"
    if verdict["discard"]:
        headers["X-akismet-pro-tip"] = "discard"
    return _text("true" if verdict["spam"] else "false", headers=headers)


def _verdict(job: Job, result: Result | None) -> dict[str, Any] | None:
    if result is None:
        log.warning("akismet check %s: no verdict within the timeout", job.id)
        return None
    if result.type != Result.Type.SUCCESSFUL:
        log.warning("akismet check %s failed: %s", job.id, result.type.name)
        return None
    return cast(dict[str, Any], result.return_value)


def _submit(label: Label) -> Response:
    data = _load(CommentIn())
    site = _site(data["api_key"])
    if data["is_test"]:
        return _text(SUBMISSION_THANKS)
    if not data["comment_content"]:
        # Nothing a text model can learn from; Akismet still thanks.
        return _text(SUBMISSION_THANKS)
    session = database.session()
    comment = record_submission(session, site, _comment_columns(data), label)
    session.commit()
    log.info("site %s reported comment %s as %s", site.id, comment.id, label.value,
             extra={"comment_id": comment.id})
    return _text(SUBMISSION_THANKS)


@bp.post("/submit-spam")
def submit_spam() -> Response:
    """A comment the blog says is spam: stored as a spam training example."""
    return _submit(Label.SPAM)


@bp.post("/submit-ham")
def submit_ham() -> Response:
    """A comment the blog says is not spam: stored as a ham training example."""
    return _submit(Label.HAM)


@bp.errorhandler(AkismetInvalidError)
def _refused(error: AkismetInvalidError) -> Response:
    return _text("invalid", headers={"X-akismet-debug-help": error.help_text})


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    return _text(error.name, error.code or 400)


@bp.errorhandler(OperationalError)
def _database_down(error: OperationalError) -> Response:
    log.warning("database unavailable: %s", error.__class__.__name__)
    return _unavailable("The database is unavailable; please retry.")


@bp.errorhandler(RedisError)
def _redis_down(error: RedisError) -> Response:
    log.warning("redis unavailable: %s", error.__class__.__name__)
    return _unavailable("The queue is unavailable; please retry.")
