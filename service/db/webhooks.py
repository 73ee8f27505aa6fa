"""Outbound webhooks configured by admins, and the log of every delivery attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.db.comments import IdType
from service.db.types import UTCDateTime, utcnow


class Webhook(Base):
    """A URL that receives signed JSON events (comment.held, comment.published, ...)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2048))
    # HMAC-SHA256 key shared with the receiver (it must be readable to sign).
    secret: Mapped[str] = mapped_column(String(128))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One delivery of one event to one webhook, with its outcome."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(Integer, ForeignKey("webhooks.id",
                                                                ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(64))
    comment_id: Mapped[int | None] = mapped_column(IdType, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),)
