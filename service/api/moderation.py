"""Moderation API: the queue, a comment's full record, decisions (one or many)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE
from redis.exceptions import RedisError
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from service import auth, bands, database, moderation, queue
from service.api.webhooks import notify_decided
from service.db import AkismetCheck, Comment, CommentEvent, CommentStatus
from service.db.types import utcnow
from service.errors import InvalidFieldError, NotFoundError, ServiceError, UnavailableError
from service.problems import PROBLEM_JSON
from service.schemas import (
    MAX_ID,
    BulkDecisionIn,
    BulkOut,
    DecisionIn,
    ModerationDetail,
    Problem,
    QueueArgs,
    QueuePage,
    StatsArgs,
    StatsOut,
    UndoIn,
)

log = logging.getLogger(__name__)
# The author's other comments shown beside one comment.
AUTHOR_COMMENTS_SHOWN = 10
# A comment's campaign is looked for among the comments of the last CAMPAIGN_DAYS, at most
# the newest CAMPAIGN_SCAN of them with a SimHash (a bounded read, index-only: a campaign is
# a burst, and a page must not slow down as the site ages), and its newest CAMPAIGN_SHOWN
# members are listed (a page a moderator reads; the bulk endpoint takes 200 ids).
CAMPAIGN_DAYS = 30
CAMPAIGN_SCAN = 5_000
CAMPAIGN_SHOWN = 50

blp = Blueprint(
    "moderation", __name__, url_prefix="/api/v1/moderation",
    description="The moderators' queue and decisions (Bearer token or moderator session).",
)
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


@blp.before_request
def _authenticate() -> None:
    auth.authenticate()


def _of_site(site: int) -> Any:
    """The comments an Akismet site sent (its checks and reports)."""
    return Comment.id.in_(select(AkismetCheck.comment_id).where(AkismetCheck.site_id == site))


def _filtered(post: str | None, q: str | None, site: int | None = None) -> list[Any]:
    conditions: list[Any] = []
    if site is not None:
        conditions.append(_of_site(site))
    if post:
        conditions.append(Comment.post == post.strip("/"))
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        conditions.append(or_(
            Comment.content.ilike(pattern, escape="\\"),
            Comment.author_name.ilike(pattern, escape="\\"),
            Comment.author_email.ilike(pattern, escape="\\"),
            Comment.ip.ilike(pattern, escape="\\"),
        ))
    return conditions


def _score_key() -> Any:
    return func.coalesce(Comment.spam_score, -1.0)


def _page_query(query: Select[Any], sort: str, cursor: str | None) -> Select[Any]:
    """Keyset paging: ``cursor`` is the last row's sort key ("id" or "score:id")."""
    descending = sort.startswith("-")
    if sort.endswith("score"):
        key = _score_key()
        order = [key.desc(), Comment.id.desc()] if descending else [key, Comment.id]
        if cursor:
            try:
                score_text, id_text = cursor.split(":", 1)
                last_score, last_id = float(score_text), _cursor_id(id_text)
            except ValueError:
                raise InvalidFieldError("cursor", "Not a cursor from this listing.") from None
            if descending:
                query = query.where(or_(key < last_score,
                                        and_(key == last_score, Comment.id < last_id)))
            else:
                query = query.where(or_(key > last_score,
                                        and_(key == last_score, Comment.id > last_id)))
        return query.order_by(*order)
    if cursor:
        try:
            last_id = _cursor_id(cursor)
        except ValueError:
            raise InvalidFieldError("cursor", "Not a cursor from this listing.") from None
        query = query.where(Comment.id < last_id if descending else Comment.id > last_id)
    return query.order_by(Comment.id.desc() if descending else Comment.id)


def _cursor_id(text: str) -> int:
    """An id from a cursor: ASCII digits within BIGINT (isdigit() would take "²")."""
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_ID:
        raise ValueError(text)
    return int(text)


def _cursor_of(comment: Comment, sort: str) -> str:
    if sort.endswith("score"):
        return f"{comment.spam_score if comment.spam_score is not None else -1.0!r}:{comment.id}"
    return str(comment.id)


def queue_counts(session: Session, conditions: list[Any]) -> dict[str, int]:
    """Comments per status under the given filters (every status present, zeros included)."""
    rows = session.execute(
        select(Comment.status, func.count()).where(*conditions).group_by(Comment.status)
    ).all()
    counts = {status.value: 0 for status in CommentStatus}
    counts.update({str(getattr(status, "value", status)): n for status, n in rows})
    return counts


@blp.route("/queue")
class Queue(MethodView):
    """The moderation queue."""

    @blp.doc(security=SECURITY)
    @blp.arguments(QueueArgs, location="query", as_kwargs=True, unknown=RAISE)
    @blp.response(200, QueuePage)
    def get(self, status: CommentStatus, post: str | None, q: str | None, sort: str,
            limit: int, cursor: str | None, site: int | None = None) -> dict[str, Any]:
        """Comments in one status (default: held, oldest first), with counts per status."""
        session = database.session()
        conditions = _filtered(post, q, site)
        query = select(Comment).where(Comment.status == status, *conditions).limit(limit + 1)
        rows = list(session.scalars(_page_query(query, sort, cursor)))
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "comments": rows,
            "next": _cursor_of(rows[-1], sort) if more and rows else None,
            "counts": queue_counts(session, conditions),
            "active_model": bands.active_model(),
            "bands": bands.bands_of(c.model_version for c in rows),
        }


def comment_detail(session: Session, comment_id: int) -> dict[str, Any]:
    """A comment's columns and its history (events, oldest first), for `ModerationDetail`."""
    comment = session.get(Comment, comment_id)
    if comment is None:
        raise NotFoundError(f"No comment {comment_id}.")
    history = session.scalars(
        select(CommentEvent).where(CommentEvent.comment_id == comment_id)
        .order_by(CommentEvent.id)
    ).all()
    record = {column.key: getattr(comment, column.key) for column in Comment.__mapper__.columns}
    return {**record, "history": history, "bands": bands.drawn_with(comment.model_version),
            "author_comments": author_comments(session, comment),
            "campaign": campaign(session, comment)}


def author_comments(session: Session, comment: Comment) -> list[Comment]:
    """The same author's other comments, newest first: by e-mail (any case), else by
    returning-reader token, else by IP address (a name alone proves nothing)."""
    if comment.author_email:
        same = func.lower(Comment.author_email) == comment.author_email.lower()
    elif comment.reader_id:
        same = Comment.reader_id == comment.reader_id
    elif comment.ip:
        same = Comment.ip == comment.ip
    else:
        return []
    return list(session.scalars(
        select(Comment).where(same, Comment.id != comment.id)
        .order_by(Comment.id.desc()).limit(AUTHOR_COMMENTS_SHOWN)))


def campaign(session: Session, comment: Comment) -> dict[str, Any]:
    """The comment's near-duplicates on any post by any author (`service.campaigns`) among
    the recent ones: how many, how many in each status, the newest `CAMPAIGN_SHOWN` (for
    `Campaign`); none for a comment without a SimHash (short, or never scored)."""
    ids: list[int] = []
    if comment.simhash is not None:
        # numpy, on a moderator's path only: the public paths of a web worker never load it.
        from service.campaigns import members

        candidates = session.execute(
            select(Comment.id, Comment.simhash)
            .where(Comment.simhash.is_not(None),
                   Comment.created_at >= utcnow() - timedelta(days=CAMPAIGN_DAYS))
            .order_by(Comment.created_at.desc()).limit(CAMPAIGN_SCAN)).all()
        ids = [i for i in members([(i, h) for i, h in candidates if h is not None],
                                  comment.simhash) if i != comment.id]
    if not ids:
        return {"total": 0, "counts": {status.value: 0 for status in CommentStatus},
                "comments": []}
    counts = queue_counts(session, [Comment.id.in_(ids)])
    shown = session.scalars(select(Comment).where(Comment.id.in_(ids[:CAMPAIGN_SHOWN]))
                            .order_by(Comment.created_at.desc(), Comment.id.desc()))
    return {"total": sum(counts.values()), "counts": counts, "comments": list(shown)}


@blp.route("/comments/<int(max=9223372036854775807):comment_id>")
class CommentRecord(MethodView):
    """Everything known about one comment."""

    @blp.doc(security=SECURITY)
    @blp.response(200, ModerationDetail)
    def get(self, comment_id: int) -> dict[str, Any]:
        """Content, author fields, e-mail, IP, User-Agent, score, reasons, history, the
        author's other comments and the comment's campaign (its near-duplicates)."""
        return comment_detail(database.session(), comment_id)


@blp.route("/comments/<int(max=9223372036854775807):comment_id>/decision")
class Decision(MethodView):
    """A moderator's decision on one comment."""

    @blp.doc(security=SECURITY)
    @blp.arguments(DecisionIn)
    @blp.response(200, ModerationDetail)
    @blp.alt_response(409, schema=Problem, content_type=PROBLEM_JSON,
                      description="The comment is no longer in `expected_status`.")
    def post(self, decision: dict[str, Any], comment_id: int) -> dict[str, Any]:
        """approve -> published; reject -> rejected; spam -> spam; not_spam -> published."""
        session = database.session()
        decided = moderation.decide(
            session, comment_id, auth.authenticate(), moderation.Action(decision["action"]),
            decision["note"], decision["expected_status"],
        )
        session.commit()
        try:
            moderation.remember_for_undo(queue.redis(), decided)
        except RedisError as error:  # the decision stands; only its undo is unavailable
            log.warning("no undo for comment %s: Redis %s", comment_id,
                        error.__class__.__name__, extra={"comment_id": comment_id})
        notify_decided([comment_id])
        return comment_detail(session, comment_id)


@blp.route("/comments/<int(max=9223372036854775807):comment_id>/undo")
class Undo(MethodView):
    """Take back one's own decision, shortly after making it."""

    @blp.doc(security=SECURITY)
    @blp.arguments(UndoIn)
    @blp.response(200, ModerationDetail)
    @blp.alt_response(409, schema=Problem, content_type=PROBLEM_JSON,
                      description="Too late, or the comment changed since the decision.")
    def post(self, undo: dict[str, Any], comment_id: int) -> dict[str, Any]:
        """Put back the status and label decision ``event_id`` replaced (within two
        minutes, by its moderator, while nothing changed since); audited as "undo"."""
        session = database.session()
        try:
            moderation.undo(session, queue.redis(), comment_id, undo["event_id"],
                            auth.authenticate())
        except RedisError:
            raise UnavailableError("Undo is unavailable right now (Redis is down); "
                                   "decide the comment again instead.") from None
        session.commit()
        notify_decided([comment_id])
        return comment_detail(session, comment_id)


@blp.route("/decisions")
class BulkDecisions(MethodView):
    """One decision on many comments."""

    @blp.doc(security=SECURITY)
    @blp.arguments(BulkDecisionIn)
    @blp.response(200, BulkOut)
    def post(self, decision: dict[str, Any]) -> dict[str, Any]:
        """Each comment is decided and audited on its own; one failure doesn't stop the rest.

        A campaign (a comment's near-duplicates): send the ids of its record's
        `campaign.comments`, one request per status they were listed in, that status as
        `expected_status`: a member someone decided meanwhile is reported (`ok: false`) and
        left as it is."""
        session = database.session()
        moderator = auth.authenticate()
        action = moderation.Action(decision["action"])
        results = []
        for comment_id in dict.fromkeys(decision["ids"]):
            try:
                comment = moderation.decide(session, comment_id, moderator, action,
                                            decision["note"],
                                            decision["expected_status"]).comment
                session.commit()
                results.append({"id": comment_id, "ok": True, "status": comment.status.value})
            except ServiceError as error:
                session.rollback()
                results.append({"id": comment_id, "ok": False, "error": error.detail,
                                "status": None})
        notify_decided(r["id"] for r in results if r["ok"])
        return {"results": results}


AUTOMATIC_ACTORS = ("model", "rule", "fallback")


@blp.route("/stats")
class Stats(MethodView):
    """How the model is doing, as moderators see it."""

    @blp.doc(security=SECURITY)
    @blp.arguments(StatsArgs, location="query", as_kwargs=True, unknown=RAISE)
    @blp.response(200, StatsOut)
    def get(self, days: int, site: int | None = None) -> dict[str, Any]:
        """Per day and model version: comments published, held and filed as spam
        automatically, and moderators' overturns (false positives, missed spam)."""
        return accuracy(database.session(), days, site)


def accuracy(session: Session, days: int, site: int | None = None) -> dict[str, Any]:
    """`StatsOut`: per day and model version over the last ``days``, newest first."""
    since = utcnow() - timedelta(days=days)
    rows: dict[tuple[str, str | None], dict[str, Any]] = {}

    def bucket(when: Any, version: str | None) -> dict[str, Any]:
        key = (when.date().isoformat(), version)
        return rows.setdefault(key, {"date": key[0], "model_version": version,
                                     "published": 0, "held": 0, "spam": 0,
                                     "false_positives": 0, "missed_spam": 0,
                                     "held_resolved": 0})

    of_site = [] if site is None else [_of_site(site)]
    automatic = session.execute(
        select(CommentEvent.created_at, CommentEvent.to_status, Comment.model_version)
        .join(Comment, Comment.id == CommentEvent.comment_id)
        .where(CommentEvent.actor.in_(AUTOMATIC_ACTORS), CommentEvent.created_at >= since,
               *of_site)
    ).all()
    for when, to_status, version in automatic:
        if to_status in ("published", "held", "spam"):
            bucket(when, version)[to_status] += 1
    human = session.execute(
        select(CommentEvent.created_at, CommentEvent.from_status, CommentEvent.to_status,
               Comment.model_version)
        .join(Comment, Comment.id == CommentEvent.comment_id)
        .where(CommentEvent.moderator_id.is_not(None), CommentEvent.created_at >= since,
               *of_site)
    ).all()
    for when, from_status, to_status, version in human:
        day = bucket(when, version)
        if from_status == "spam" and to_status == "published":
            day["false_positives"] += 1
        elif from_status == "published" and to_status == "spam":
            day["missed_spam"] += 1
        elif from_status == "held":
            day["held_resolved"] += 1
    ordered = sorted(rows.values(), key=lambda r: (r["date"], r["model_version"] or ""),
                     reverse=True)
    return {"days": ordered}
