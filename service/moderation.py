"""Moderators' decisions: status change, training label, audit row, in one transaction.

A decision is final: the scorer only ever moves `pending` comments, and rescoring skips any
comment with a label. Two moderators cannot clash: the change applies only if the comment is
still in the status the moderator saw (``expected_status``), else 409.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from service.db import Comment, CommentEvent, CommentStatus, DecidedBy, Label, Moderator
from service.db.types import utcnow
from service.errors import ConflictError, NotFoundError


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


def decide(
    session: Session,
    comment_id: int,
    moderator: Moderator,
    action: Action,
    note: str | None = None,
    expected_status: CommentStatus | None = None,
) -> Comment:
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
    session.add(CommentEvent(
        comment_id=comment_id, moderator_id=moderator.id, actor=moderator.name,
        action=action, from_status=seen, to_status=effect.status, note=note or None,
        created_at=now,
    ))
    session.flush()
    session.refresh(comment)
    return comment
