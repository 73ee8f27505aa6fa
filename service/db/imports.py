"""Where an imported comment came from: its id in the blog's old system, so that importing
the same export again stores nothing twice, and replies find their parents."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.db.comments import IdType
from service.db.types import UTCDateTime, utcnow


class CommentImport(Base):
    """One imported comment: (source, origin, external id) → our comment."""

    __tablename__ = "comment_imports"

    comment_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True
    )
    # The format: wxr, disqus, isso, remark42.
    source: Mapped[str] = mapped_column(String(16))
    # The blog the export names (WXR's base URL, the Disqus forum, the Remark42 site), or "".
    origin: Mapped[str] = mapped_column(String(255))
    external_id: Mapped[str] = mapped_column(String(255))
    # The external id of the comment this one replies to (resolved to parent_id on import).
    external_parent: Mapped[str | None] = mapped_column(String(255), nullable=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("source", "origin", "external_id", name="uq_comment_imports_external"),
    )
