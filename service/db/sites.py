"""Sites that use the Akismet-compatible API, each with its own key (stored hashed), and
their comment-checks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.db.comments import IdType
from service.db.types import UTCDateTime, utcnow


class Site(Base):
    """A blog allowed to call /1.1/comment-check and friends."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2048))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AkismetCheck(Base):
    """One comment-check of a site: the comment it stored (scored like any other), the guid
    answered in ``X-akismet-guid``, and the plugin's signals. submit-spam / submit-ham find
    their comment through it (by guid, else by content within the same site only)."""

    __tablename__ = "akismet_checks"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(Integer, ForeignKey("sites.id", ondelete="CASCADE"))
    comment_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("comments.id", ondelete="CASCADE"))
    guid: Mapped[str] = mapped_column(String(36), unique=True)
    # A hash of the site's view of the comment (content, author, e-mail, IP): how a recheck
    # or a submission without our guid finds its check.
    fingerprint: Mapped[str] = mapped_column(String(64))
    signals: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_akismet_checks_site_fingerprint", "site_id", "fingerprint"),
        Index("ix_akismet_checks_comment", "comment_id"),
    )
