"""Moderation rules set by admins: block and watch lists, site settings, per-post settings."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.db.types import UTCDateTime, utcnow


class RuleKind(enum.StrEnum):
    """What a rule matches, and so what it does (blocked: spam; watched: hold)."""

    BLOCKED_TERM = "blocked_term"
    BLOCKED_EMAIL = "blocked_email"
    BLOCKED_EMAIL_DOMAIN = "blocked_email_domain"
    BLOCKED_URL_DOMAIN = "blocked_url_domain"
    BLOCKED_IP = "blocked_ip"
    WATCHED_TERM = "watched_term"


class Rule(Base):
    """One entry of a block or watch list."""

    __tablename__ = "rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[RuleKind] = mapped_column(
        Enum(RuleKind, native_enum=False, length=32,
             values_callable=lambda e: [m.value for m in e])
    )
    value: Mapped[str] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("kind", "value", name="uq_rules_kind_value"),)


class Setting(Base):
    """A site-wide moderation setting (name -> integer or float as text)."""

    __tablename__ = "settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class PostSettings(Base):
    """Per-post moderation: closed to new comments, or every comment held for review."""

    __tablename__ = "post_settings"

    post: Mapped[str] = mapped_column(String(200), primary_key=True)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    premoderated: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
