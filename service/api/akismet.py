"""The Akismet-compatible API (REST 1.1), as Akismet's WordPress plugin and client libraries
speak it: verify-key, comment-check, submit-spam, submit-ham, get-subscription, get-stats,
test and deactivate.

Blog engines and Akismet client libraries parse plain-text answers, so this blueprint answers
text/plain (JSON where Akismet does), never problem+json: ``valid``/``invalid``,
``true``/``false``, the submission thanks. Bad input is ``invalid`` with an
``X-akismet-debug-help`` header, as Akismet does; unknown ``/1.1/*`` paths are a text 404.

Every comment-check is stored as a comment of its site (``akismet_checks`` links the two, with
the guid we answer in ``X-akismet-guid``) and scored by the same pipeline as the widget's
comments: pending, one ``score_pending`` job requested, never a job of its own at the front of
the queue. The web process waits a few seconds for the row's decision; at most
``AKISMET_MAX_WAITING`` checks wait at once (over all web workers), each site key has a rate
limit, and nobody waits while the queued scoring job has waited longer than the timeout
(the worker is down or swamped). No decision in time: ``503``
``error`` with ``Retry-After``; the plugin holds the comment and its WP-Cron recheck asks again,
which finds the stored check (by its fingerprint) and answers its decision.

Answers: spam ``true`` (blatant spam adds ``X-akismet-pro-tip: discard``), published
``false``, held ``false`` plus an ``X-akismet-error`` header: Akismet's plugin (5.0.2,
``Akismet::auto_check_comment``) sends any comment whose answer carries that header to
moderation, so "held" reaches WordPress as held. Beyond Akismet's: ``X-Moderation-Status``
and ``X-Spam-Score``.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, json, request
from limits import parse_many
from marshmallow import EXCLUDE, Schema, ValidationError, fields
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, NotFound

from service import database, queue
from service.api.body import allow_larger_bodies
from service.db import (
    AkismetCheck,
    Comment,
    CommentEvent,
    CommentStatus,
    DecidedBy,
    Label,
    Site,
)
from service.db.types import utcnow
from service.guard import MIN_FILL_SECONDS
from service.limits import rate_limiter
from service.sites import (
    blog_matches,
    find_check,
    find_site,
    record_check,
    record_submission,
    submission_post,
)

log = logging.getLogger(__name__)

bp = Blueprint("akismet", __name__, url_prefix="/1.1")

# WordPress allows comments of 65,525 characters and its plugin sends the content twice (as
# comment_content and POST_comment) plus every HTTP_* header. Four UTF-8 bytes a character,
# percent-encoded to 12: 2 x 786 KB, and room for the rest.
MAX_BODY_BYTES = 2 * 1024 * 1024
# The longest comment WordPress stores; an Akismet check keeps the whole of it.
MAX_CONTENT_CHARS = 65_525
# Seconds a blog should wait before asking again after a 503.
RETRY_AFTER_SECONDS = 30
# A recheck or a retried check within this long finds the stored check instead of storing a
# twin (the plugin rechecks held comments for 15 days).
RECHECK_WINDOW = timedelta(days=15)
# How often the wait for a decision looks at the row: first soon, then less often.
POLL_FIRST_SECONDS, POLL_MAX_SECONDS = 0.02, 0.2
# A waiting slot of a web process killed mid-wait is given back after this long.
WAITING_KEY_TTL = 60
# Spam this sure is "blatant": Akismet's `X-akismet-pro-tip: discard`, the blog may drop it
# unseen. The same bar as a trusted commenter's spam ceiling (service.rules).
DISCARD_SCORE = 0.99
# What Akismet's "time saved" counts per spam caught (its own estimate is about this).
SECONDS_SAVED_PER_SPAM = 10
SIX_MONTHS = timedelta(days=183)

# Akismet's documented test triggers.
GUARANTEED_SPAM_AUTHOR = "akismet-guaranteed-spam"
GUARANTEED_SPAM_EMAIL = "akismet-guaranteed-spam@example.com"
ADMINISTRATOR_ROLE = "administrator"

SUBMISSION_THANKS = "Thanks for making the web a better place."
HELD_HELP = "Held for moderation by the comment service."

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_FALSE_FLAGS = {"", "0", "false", "no", "off"}


class AkismetInvalidError(Exception):
    """The request is answered ``invalid`` (bad key, missing fields), with a debug help."""

    def __init__(self, help_text: str) -> None:
        super().__init__(help_text)
        self.help_text = help_text


class AkismetLimitedError(Exception):
    """Too many requests for a key, or too many wrong keys from an IP: 429 to retry later."""


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


class IPAddress(Text):
    """An IPv4 or IPv6 address, written the canonical way."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            raise ValidationError("Not an IP address.") from None


class Flag(fields.Field):
    """Akismet's booleans: "1", "true" and any other non-empty value are on; "0"/"false" off."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("load_default", False)
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        return str(value).strip().lower() not in _FALSE_FLAGS


def _required(max_length: int) -> Text:
    return Text(max_length, required=True)


class KeyIn(Schema):
    """verify-key, get-subscription, get-stats, deactivate: the key (``key``, or ``api_key``
    as newer clients send) and the blog."""

    class Meta:
        unknown = EXCLUDE

    key = Text(255)
    api_key = Text(255)
    blog = _required(2048)
    # get-stats: "6-months" or "all".
    period = Text(16, data_key="from")


class CommentIn(Schema):
    """comment-check, submit-spam and submit-ham. Akismet clients send many more fields
    (server variables, the form's fields): the signals we use are read apart, the rest is
    ignored, not refused."""

    class Meta:
        unknown = EXCLUDE

    api_key = _required(255)
    blog = _required(2048)
    user_ip = IPAddress(45, required=True)
    user_agent = Text(512)
    referrer = Text(2048)
    permalink = Text(2048)
    comment_type = Text(64)
    comment_author = Text(100)
    comment_author_email = Text(254)
    comment_author_url = Text(2048)
    comment_content = Text(MAX_CONTENT_CHARS)
    # WordPress sends the roles as a comma-separated list ("editor,administrator").
    user_role = Text(255)
    is_test = Flag()
    # Ours, echoed back (X-akismet-guid) by a client that keeps it.
    guid = Text(36)
    # WordPress's recheck (WP-Cron, "Check for Spam") says why it asks again.
    recheck_reason = Text(64)
    # The WordPress user who clicked "Spam" / "Not Spam".
    reporter = Text(100)


def _text(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(body, status=status, mimetype="text/plain")
    response.headers.update(headers or {})
    return response


def _json(data: dict[str, Any]) -> Response:
    return Response(json.dumps(data), mimetype="application/json")


def _unavailable(help_text: str, headers: dict[str, str] | None = None) -> Response:
    return _text("error", 503, {"Retry-After": str(RETRY_AFTER_SECONDS),
                                "X-akismet-debug-help": help_text, **(headers or {})})


# The app's 64 KiB limit is for the widget's comments.
allow_larger_bodies(bp.name, MAX_BODY_BYTES)


def _load(schema: Schema) -> dict[str, Any]:
    try:
        return cast(dict[str, Any], schema.load(request.form))
    except ValidationError as error:
        names = sorted(error.messages) if isinstance(error.messages, dict) else []
        raise AkismetInvalidError(
            "Empty or missing required field(s): " + ", ".join(names)) from None


def _hit(limit: str, *identifiers: str) -> bool:
    """Count one request against ``limit`` (a moving window in Redis); False once it is spent.
    Redis down lifts the limit, as it does for the comment API."""
    if not limit:
        return True
    try:
        return all(rate_limiter().hit(item, *identifiers) for item in parse_many(limit))
    except (RedisError, ValueError, AttributeError) as error:
        log.warning("akismet limit not counted: %s", error.__class__.__name__)
        return True


def _failures_left() -> bool:
    limit = str(current_app.config.get("AKISMET_KEY_FAILURES", ""))
    if not limit:
        return True
    try:
        return all(rate_limiter().test(item, "akismet-key-failures", _client())
                   for item in parse_many(limit))
    except (RedisError, ValueError, AttributeError):
        return True


def _client() -> str:
    return request.remote_addr or "unknown"


def _site(key: str | None, blog: str) -> Site:
    """The active site of ``key``, which must be the site of ``blog``. Wrong keys count
    against the IP, and an IP out of guesses is refused before its key is even looked up."""
    if not _failures_left():
        raise AkismetLimitedError()
    site = find_site(database.session(), key or "")
    if site is None:
        _hit(str(current_app.config.get("AKISMET_KEY_FAILURES", "")),
             "akismet-key-failures", _client())
        raise AkismetInvalidError("We were unable to verify the API key.")
    if not blog_matches(site, blog):
        raise AkismetInvalidError(
            f"The blog {blog[:100]} is not the site of this key ({site.url}).")
    return site


def _author_url(value: str | None) -> tuple[str | None, str | None]:
    """The author URL if it is an http(s) URL; else None and a note (never stored)."""
    if not value:
        return None, None
    parts = urlsplit(value)
    if parts.scheme.lower() in ("http", "https") and parts.hostname:
        return value, None
    return None, "comment_author_url is not an http(s) URL; not stored"


def _comment_columns(data: dict[str, Any]) -> dict[str, Any]:
    """The Comment columns of an Akismet request."""
    return {
        "post": submission_post(data["permalink"], data["blog"]),
        "author_name": data["comment_author"] or "",
        "author_email": data["comment_author_email"],
        "author_url": _author_url(data["comment_author_url"])[0],
        "content": data["comment_content"] or "",
        "ip": data["user_ip"],
        "user_agent": data["user_agent"],
        "referer": data["referrer"],
    }


def _roles(data: dict[str, Any]) -> set[str]:
    return {role.strip() for role in (data["user_role"] or "").split(",") if role.strip()}


def _signals(data: dict[str, Any], received: float) -> dict[str, Any]:
    """What the plugin tells us beyond the comment: its honeypot, the page-load time its
    script wrote into the form, the nonce check, the post's last change, the blog's
    language, the user, how many request headers the reader sent. Kept with the check."""
    form = request.form
    signals: dict[str, Any] = {}
    honeypot = form.get("POST_ak_hp_textarea")
    if honeypot is not None:
        signals["honeypot_filled"] = bool(honeypot.strip())
    loaded = form.get("POST_ak_js", "")
    if loaded.isdigit():
        # The plugin's script swaps its random placeholder (0-250) for Date.getTime().
        if int(loaded) > 10**12:
            signals["fill_seconds"] = round(received - int(loaded) / 1000, 1)
        else:
            signals["javascript"] = False
    for name in ("akismet_comment_nonce", "blog_lang", "comment_post_modified_gmt",
                 "comment_type", "recheck_reason"):
        value = form.get(name)
        if value:
            signals[name] = value[:64]
    if form.get("user_ID", "0") not in ("", "0"):
        signals["user_id"] = form["user_ID"][:20]
    roles = _roles(data)
    if roles:
        signals["user_roles"] = sorted(roles)[:10]
    signals["request_headers"] = sum(1 for name in form if name.startswith("HTTP_"))
    if data["is_test"]:
        signals["is_test"] = True
    note = _author_url(data["comment_author_url"])[1]
    if note:
        signals["note"] = note
    return signals


def _bot_trap(signals: dict[str, Any]) -> tuple[str, str] | None:
    """The plugin's honeypot and page-load time, judged like the widget's (service.guard):
    ``("spam", reason)`` for a filled honeypot, ``("held", reason)`` for a fast form (scored,
    then held for a moderator: autofill and pasted text are fast too)."""
    if signals.get("honeypot_filled"):
        return "spam", "honeypot field filled in"
    elapsed = signals.get("fill_seconds")
    # Below -60 s the blog's and the reader's clocks disagree: it proves nothing.
    if elapsed is not None and -60 < elapsed < MIN_FILL_SECONDS:
        return "held", f"form sent {max(elapsed, 0):.1f} s after the page loaded"
    return None


def _answer(comment: Comment, guid: str) -> Response:
    """The Akismet answer to a comment's current decision; 503 while it is pending."""
    headers = {"X-akismet-guid": guid}
    status = comment.status
    if status == CommentStatus.PENDING:
        return _unavailable("The spam checker did not answer in time; please retry.", headers)
    spam = comment.label == Label.SPAM if comment.label else status == CommentStatus.SPAM
    headers["X-Moderation-Status"] = str(status)
    if comment.spam_score is not None:
        headers["X-Spam-Score"] = f"{comment.spam_score:.4f}"
    if spam:
        blocked = comment.decided_by == DecidedBy.RULE
        sure = comment.spam_score is not None and comment.spam_score >= DISCARD_SCORE
        if blocked or sure:
            headers["X-akismet-pro-tip"] = "discard"
        return _text("true", headers=headers)
    if status != CommentStatus.PUBLISHED and comment.label != Label.HAM:
        headers["X-akismet-error"] = HELD_HELP
    return _text("false", headers=headers)


def _waiting_key() -> str:
    return f"{queue.scoring_queue().name}:akismet-waiting"


def _scoring_stalled(timeout: float) -> bool:
    """Whether the queued scoring job has waited longer than ``timeout`` unstarted: the
    worker is down or swamped, and a check waiting for it would only hold a web worker."""
    scoring = queue.scoring_queue()
    job_id = scoring.connection.get(queue.requested_key(scoring))
    if job_id is None:
        return False
    try:
        job = Job.fetch(job_id.decode() if isinstance(job_id, bytes) else str(job_id),
                        connection=scoring.connection, serializer=scoring.serializer)
    except NoSuchJobError:
        return False
    # The status read with the job (refresh=False): a job that finished meanwhile has its
    # hash deleted at once, and a second read would raise instead of saying "not queued".
    if job.enqueued_at is None or job.get_status(refresh=False) != JobStatus.QUEUED:
        return False
    enqueued = job.enqueued_at
    if enqueued.tzinfo is None:
        enqueued = enqueued.replace(tzinfo=UTC)
    return (utcnow() - enqueued).total_seconds() > timeout


@contextmanager
def _waiting_slot(timeout: float) -> Iterator[bool]:
    """One of the AKISMET_MAX_WAITING slots for waiting on a verdict, if one is free and the
    scoring worker keeps up; else False (answer at once: the comment is stored)."""
    if _scoring_stalled(timeout):
        yield False
        return
    redis = queue.redis()
    key = _waiting_key()
    with redis.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, WAITING_KEY_TTL)
        taken, _ = pipe.execute()
    try:
        yield int(taken) <= int(current_app.config.get("AKISMET_MAX_WAITING", 1))
    finally:
        redis.decr(key)


def _decision(comment_id: int) -> Comment | None:
    session = database.session()
    comment = session.get(Comment, comment_id, populate_existing=True)
    session.close()  # no transaction stays open while we wait
    return comment


def _wait(comment: Comment) -> Comment:
    """The comment once decided, or as it stands after AKISMET_CHECK_TIMEOUT seconds."""
    timeout = float(current_app.config.get("AKISMET_CHECK_TIMEOUT", 3))
    deadline = time.monotonic() + timeout
    pause = POLL_FIRST_SECONDS
    with _waiting_slot(timeout) as may_wait:
        if not may_wait:
            log.info("akismet check of comment %s: not waiting (scoring stalled or no slot)",
                     comment.id, extra={"comment_id": comment.id})
            return comment
        while comment.status == CommentStatus.PENDING and time.monotonic() < deadline:
            time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
            pause = min(pause * 2, POLL_MAX_SECONDS)
            comment = _decision(comment.id) or comment
    return comment


@bp.post("/verify-key")
def verify_key() -> Response:
    """``valid`` if the key belongs to an active site of this blog, else ``invalid``."""
    data = _load(KeyIn())
    _site(data["key"] or data["api_key"], data["blog"])
    return _text("valid")


@bp.post("/comment-check")
def comment_check() -> Response:
    """Store the comment, let the pipeline decide it, answer the decision (see the module)."""
    received = time.time()
    data = _load(CommentIn())
    site = _site(data["api_key"], data["blog"])
    if ADMINISTRATOR_ROLE in _roles(data):
        return _text("false")
    if data["comment_author"] == GUARANTEED_SPAM_AUTHOR \
            or data["comment_author_email"] == GUARANTEED_SPAM_EMAIL:
        return _text("true")
    if not _hit(str(current_app.config.get("AKISMET_RATE_LIMIT", "")),
                "akismet-check", str(site.id)):
        raise AkismetLimitedError()
    session = database.session()
    columns = _comment_columns(data)
    check = find_check(session, site, data["guid"], columns)
    if check is not None and check.created_at >= utcnow() - RECHECK_WINDOW:
        comment = session.get(Comment, check.comment_id)
        if comment is None:  # pragma: no cover - the foreign key cascades
            raise NotFound()
        guid = check.guid
        session.close()
        if comment.status == CommentStatus.PENDING:
            queue.request_scoring(queue.scoring_queue())
    else:
        signals = _signals(data, received)
        trap = _bot_trap(signals)
        verdict = None
        if trap is not None and trap[0] == "spam":
            verdict = {"status": CommentStatus.SPAM, "decided_by": DecidedBy.RULE,
                       "reasons": [trap[1]]}
        elif trap is not None:  # pending: the worker's rules hold it after scoring
            columns = {**columns, "reasons": [trap[1]]}
        comment, check = record_check(session, site, columns, signals, verdict)
        guid = check.guid
        session.commit()
        log.info("site %s: comment-check stored as comment %s", site.id, comment.id,
                 extra={"comment_id": comment.id})
        session.close()
        if verdict is None:
            try:
                queue.request_scoring(queue.scoring_queue())
            except RedisError:
                # Stored and pending: the reconciler queues it; the blog rechecks later.
                log.warning("could not queue scoring for comment %s; left pending",
                            comment.id, extra={"comment_id": comment.id})
                return _answer(comment, guid)
    return _answer(_wait(comment), guid)


def _submit(label: Label) -> Response:
    data = _load(CommentIn())
    site = _site(data["api_key"], data["blog"])
    if data["is_test"]:
        return _text(SUBMISSION_THANKS)
    if not data["comment_content"]:
        # Nothing a text model can learn from; Akismet still thanks.
        return _text(SUBMISSION_THANKS)
    session = database.session()
    comment = record_submission(session, site, _comment_columns(data), label,
                                guid=data["guid"], reporter=data["reporter"])
    session.commit()
    log.info("site %s reported comment %s as %s", site.id, comment.id, label.value,
             extra={"comment_id": comment.id})
    return _text(SUBMISSION_THANKS)


@bp.post("/submit-spam")
def submit_spam() -> Response:
    """A comment the blog says is spam: its check's comment is labelled spam."""
    return _submit(Label.SPAM)


@bp.post("/submit-ham")
def submit_ham() -> Response:
    """A comment the blog says is not spam: its check's comment is labelled ham."""
    return _submit(Label.HAM)


@bp.post("/get-subscription")
def get_subscription() -> Response:
    """The plugin's account check after verify-key: an active, self-hosted subscription."""
    data = _load(KeyIn())
    site = _site(data["key"] or data["api_key"], data["blog"])
    return _json({"status": "active", "account_type": "self-hosted",
                  "account_name": site.url, "account_id": site.id,
                  "next_billing_date": None, "limit_reached": False})


@bp.post("/get-stats")
def get_stats() -> Response:
    """The site's checks, as the plugin's settings page shows them (``from``: 6-months/all)."""
    data = _load(KeyIn())
    site = _site(data["key"] or data["api_key"], data["blog"])
    session = database.session()
    checks = select(AkismetCheck.comment_id).where(AkismetCheck.site_id == site.id)
    if data["period"] == "6-months":
        checks = checks.where(AkismetCheck.created_at >= utcnow() - SIX_MONTHS)
    by_status: dict[str, int] = {str(status): n for status, n in session.execute(
        select(Comment.status, func.count()).where(Comment.id.in_(checks))
        .group_by(Comment.status)).all()}
    reports: dict[str, int] = {action: n for action, n in session.execute(
        select(CommentEvent.action, func.count())
        .where(CommentEvent.comment_id.in_(checks), CommentEvent.actor == f"site:{site.id}",
               CommentEvent.from_status.is_not(None))
        .group_by(CommentEvent.action)).all()}
    spam = by_status.get(CommentStatus.SPAM, 0)
    total = sum(by_status.values())
    missed, false_positives = reports.get("submit-spam", 0), reports.get("submit-ham", 0)
    accuracy = 100.0 if total == 0 else round(100 * (1 - (missed + false_positives) / total), 2)
    return _json({"spam": spam, "ham": by_status.get(CommentStatus.PUBLISHED, 0),
                  "held": by_status.get(CommentStatus.HELD, 0), "missed_spam": missed,
                  "false_positives": false_positives, "accuracy": accuracy,
                  "time_saved": spam * SECONDS_SAVED_PER_SPAM})


@bp.post("/deactivate")
def deactivate() -> Response:
    """The plugin's "disconnect": nothing to release on our side (`sites revoke` does that)."""
    data = _load(KeyIn())
    _site(data["key"] or data["api_key"], data["blog"])
    return _text("deactivated")


@bp.route("/test", methods=["GET", "POST"])
def connectivity_test() -> Response:
    """The plugin's "can this site reach Akismet" probe."""
    return _text("connected")


@bp.route("/<path:unknown>", methods=["GET", "POST"])
def unknown_path(unknown: str) -> Response:
    """Any other /1.1/ path: a text 404, as Akismet's clients expect text."""
    raise NotFound()


@bp.errorhandler(AkismetInvalidError)
def _refused(error: AkismetInvalidError) -> Response:
    return _text("invalid", headers={"X-akismet-debug-help": error.help_text})


@bp.errorhandler(AkismetLimitedError)
def _limited(error: AkismetLimitedError) -> Response:
    return _text("Too Many Requests", 429, {
        "Retry-After": str(RETRY_AFTER_SECONDS),
        "X-akismet-debug-help": "Too many requests for this key, or too many wrong keys."})


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
