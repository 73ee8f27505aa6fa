"""Moderators' decisions: status change, training label, audit row, in one transaction.

A decision is final: the scorer only ever moves `pending` comments, and rescoring skips any
comment with a label. Two moderators cannot clash: the change applies only if the comment is
still in the status the moderator saw (``expected_status``), else 409.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis import Redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service import caching
from service.db import Comment, CommentEvent, CommentStatus, DecidedBy, Label, Moderator
from service.db.types import utcnow
from service.errors import ConflictError, ForbiddenError, NotFoundError

# A decision can be undone by its moderator for this long: enough for the page's Undo
# button (shown for 10 s) on a slow network; a later change of mind is a new decision.
UNDO_SECONDS = 120
UNDO_KEY = "undo:{}"


class Action(enum.StrEnum):
    """What a moderator can do to a comment."""

    APPROVE = "approve"
    REJECT = "reject"
    SPAM = "spam"
    NOT_SPAM = "not_spam"


@dataclass(frozen=True, slots=True)
class Effect:
    """The status and training label an action leads to."""

    status: CommentStatus
    label: Label


EFFECTS: dict[Action, Effect] = {
    Action.APPROVE: Effect(CommentStatus.PUBLISHED, Label.HAM),
    # Removed but not spam (off-topic, abusive): as training data it is not spam.
    Action.REJECT: Effect(CommentStatus.REJECTED, Label.HAM),
    Action.SPAM: Effect(CommentStatus.SPAM, Label.SPAM),
    Action.NOT_SPAM: Effect(CommentStatus.PUBLISHED, Label.HAM),
}


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision just made: the comment after it, its audit row, and what it replaced."""

    comment: Comment
    event: CommentEvent
    before: dict[str, Any]


def _state(comment: Comment) -> dict[str, Any]:
    """What a decision overwrites, as JSON (what an undo puts back)."""
    return {"status": str(comment.status),
            "label": str(comment.label) if comment.label else None,
            "decided_by": str(comment.decided_by) if comment.decided_by else None,
            "decided_at": comment.decided_at.isoformat() if comment.decided_at else None}


def decide(
    session: Session,
    comment_id: int,
    moderator: Moderator,
    action: Action,
    note: str | None = None,
    expected_status: CommentStatus | None = None,
) -> Decided:
    """Apply ``action`` to one comment and audit it; the caller commits.

    NotFoundError if there is no such comment; ConflictError if its status is not
    ``expected_status`` (or changed under us since it was read)."""
    comment = session.get(Comment, comment_id)
    if comment is None:
        raise NotFoundError(f"No comment {comment_id}.")
    seen = expected_status or comment.status
    if comment.status != seen:
        raise ConflictError(
            f"Comment {comment_id} is {comment.status}, not {seen}; reload and retry."
        )
    before = _state(comment)
    effect = EFFECTS[action]
    now = utcnow()
    result = session.execute(
        update(Comment)
        .where(Comment.id == comment_id, Comment.status == seen)
        .values(status=effect.status, label=effect.label, decided_by=DecidedBy.MODERATOR,
                decided_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(f"Comment {comment_id} changed meanwhile; reload and retry.")
    event = CommentEvent(
        comment_id=comment_id, moderator_id=moderator.id, actor=moderator.name,
        action=action, from_status=seen, to_status=effect.status, note=note or None,
        created_at=now,
    )
    session.add(event)
    session.flush()
    session.refresh(comment)
    caching.changed(session, [comment.post])
    return Decided(comment, event, before)


def remember_for_undo(redis: Redis, decided: Decided) -> None:
    """Keep what the decision replaced for `UNDO_SECONDS` (after its commit)."""
    redis.set(UNDO_KEY.format(decided.event.id),
              json.dumps({**decided.before, "moderator_id": decided.event.moderator_id}),
              ex=UNDO_SECONDS)


def undo(session: Session, redis: Redis, comment_id: int, event_id: int,
         moderator: Moderator) -> Comment:
    """Put back what decision ``event_id`` replaced, as a decision of its own (audited as
    "undo"); the caller commits. Only its moderator, within `UNDO_SECONDS`, and only while
    it is the comment's latest change (ConflictError otherwise)."""
    comment = session.get(Comment, comment_id)
    if comment is None:
        raise NotFoundError(f"No comment {comment_id}.")
    event = session.get(CommentEvent, event_id)
    if event is None or event.comment_id != comment_id:
        raise NotFoundError(f"Comment {comment_id} has no decision {event_id}.")
    if event.moderator_id != moderator.id:
        raise ForbiddenError("Only the moderator who made a decision can undo it.")
    latest = session.scalar(select(CommentEvent.id).where(CommentEvent.comment_id == comment_id)
                            .order_by(CommentEvent.id.desc()).limit(1))
    if latest != event_id or comment.status != event.to_status:
        raise ConflictError(f"Comment {comment_id} changed since that decision; "
                            "decide it again instead.")
    stored = redis.getdel(UNDO_KEY.format(event_id))
    if stored is None:
        raise ConflictError(f"Too late to undo (undo lasts {UNDO_SECONDS // 60} minutes); "
                            "decide it again instead.")
    before = json.loads(stored)
    now = utcnow()
    result = session.execute(
        update(Comment)
        .where(Comment.id == comment_id, Comment.status == event.to_status)
        .values(status=CommentStatus(before["status"]),
                label=Label(before["label"]) if before["label"] else None,
                decided_by=DecidedBy(before["decided_by"]) if before["decided_by"] else None,
                decided_at=datetime.fromisoformat(before["decided_at"])
                if before["decided_at"] else None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(f"Comment {comment_id} changed meanwhile; reload and retry.")
    session.add(CommentEvent(
        comment_id=comment_id, moderator_id=moderator.id, actor=moderator.name,
        action="undo", from_status=event.to_status, to_status=before["status"],
        note=f"undoes {event.action} (event {event_id})", created_at=now,
    ))
    session.flush()
    session.refresh(comment)
    caching.changed(session, [comment.post])
    return comment
