"""The audit trail: every change of a comment's status, and every change an admin makes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.db.comments import IdType
from service.db.types import UTCDateTime, utcnow


class CommentEvent(Base):
    """One status change of one comment: by the model, a rule, or a moderator."""

    __tablename__ = "comment_events"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    comment_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("comments.id", ondelete="CASCADE")
    )
    moderator_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("moderators.id", ondelete="SET NULL"), nullable=True
    )
    # "model", "rule", "fallback" or the moderator's name (kept if the account goes).
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_comment_events_comment", "comment_id", "id"),)


class AdminEvent(Base):
    """An admin's change to rules, settings or accounts."""

    __tablename__ = "admin_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    moderator_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("moderators.id", ondelete="SET NULL"), nullable=True
    )
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
