"""The comments table: one row per submission, as it was sent, plus the verdict on it."""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from service.db import Base
from service.db.types import UInt64, UTCDateTime, utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
IdType: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")


class CommentStatus(enum.StrEnum):
    """Where a comment stands. Only `published` comments are shown on the article."""

    PENDING = "pending"
    PUBLISHED = "published"
    HELD = "held"
    SPAM = "spam"
    # Removed by a moderator, but not spam (off-topic, abusive): never shown, trains as ham.
    REJECTED = "rejected"


# The partial index's condition (ix_comments_pending).
_PENDING_SQL = f"status = '{CommentStatus.PENDING.value}'"
_LABELLED_SQL = "label IS NOT NULL"
_SIMHASH_SQL = "simhash IS NOT NULL"


class DecidedBy(enum.StrEnum):
    """Who made the latest decision on a comment."""

    MODEL = "model"
    RULE = "rule"
    # No model could be loaded: the comment is held for a human instead of published.
    FALLBACK = "fallback"
    MODERATOR = "moderator"
    # Imported with the status and label it had on the blog it came from (flask ... import).
    IMPORT = "import"


class Label(enum.StrEnum):
    """The training label a moderator's decision gives a comment."""

    HAM = "ham"
    SPAM = "spam"


def _str_enum(enum_class: type[enum.StrEnum]) -> Enum:
    """A VARCHAR(16) holding the enum's values (no database enum type: adding statuses later
    needs no migration of the column)."""
    return Enum(enum_class, native_enum=False, length=16, validate_strings=True,
                values_callable=lambda members: [m.value for m in members])


class Comment(Base):
    """A reader's comment on a post."""

    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    post: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("comments.id", ondelete="SET NULL"), nullable=True
    )
    author_name: Mapped[str] = mapped_column(String(100))
    author_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    author_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    content: Mapped[str] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(45), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    referer: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    status: Mapped[CommentStatus] = mapped_column(
        _str_enum(CommentStatus), default=CommentStatus.PENDING
    )
    spam_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    reasons: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_by: Mapped[DecidedBy | None] = mapped_column(_str_enum(DecidedBy), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Set by a moderator's decision (or a site's submit-spam/ham): final, and training data.
    label: Mapped[Label | None] = mapped_column(_str_enum(Label), nullable=True)
    # The client's Idempotency-Key header: a retried POST finds its comment instead of a twin.
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # SHA-256 of the secret the 202 gave the author: it shows them their comment before it
    # is published (nobody else sees it then). Only the hash is stored.
    secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The blog it belongs to, when known (an import with --site).
    site_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("sites.id", ondelete="SET NULL", name="fk_comments_site_id"),
        nullable=True,
    )
    # The returning reader this comment came from: the random id inside the signed reader
    # token the widget keeps (service/readers.py). Trust is earned by this id, not an e-mail.
    reader_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The SimHash of its folded words (`service.campaigns`), set when the worker scores it;
    # None for short texts and for comments never scored (bot traps, imports, those scored
    # before migration 0011). Near-duplicates of it are its campaign.
    simhash: Mapped[int | None] = mapped_column(UInt64, nullable=True)

    __table_args__ = (
        # The public listing: published comments of one post, oldest first.
        Index("ix_comments_post_status_id", "post", "status", "id"),
        # Comments of one status, oldest first: the held queue and its alert.
        Index("ix_comments_status_created", "status", "created_at"),
        # The scorer and the reconciler: pending comments, oldest first (`PENDING` below).
        # Partial, so that it holds only the few comments waiting, not one entry per comment
        # ever scored: every comment leaves `pending` once, and on PostgreSQL the entries of
        # those old row versions stay in a full index until VACUUM (a batch's scan of 75,000
        # of them took 6.7 ms; a plain index scan of this one skips them after one visit).
        Index("ix_comments_pending", "id", postgresql_where=text(_PENDING_SQL),
              sqlite_where=text(_PENDING_SQL)),
        # What the site learned changes with its labelled comments (`reputation.label_stamp`,
        # asked before every scoring batch): partial, so that its count and newest decision
        # read the few labelled rows, not a scan of every comment ever stored.
        Index("ix_comments_labelled", "label", "decided_at",
              postgresql_where=text(_LABELLED_SQL), sqlite_where=text(_LABELLED_SQL)),
        # A comment's campaign: the newest comments with a SimHash, read backwards from now
        # (an index-only scan of the few columns the distances need).
        Index("ix_comments_simhash", "created_at", "simhash", "id",
              postgresql_where=text(_SIMHASH_SQL), sqlite_where=text(_SIMHASH_SQL)),
        # A commenter's comments by e-mail (data requests).
        Index("ix_comments_email_label", "author_email", "label"),
        # Trusted commenters: approved comments by returning reader.
        Index("ix_comments_reader_label", "reader_id", "label"),
        UniqueConstraint("idempotency_key", name="uq_comments_idempotency_key"),
        # An erased comment's id is never given to the next one (SQLite would reuse the
        # highest id otherwise; PostgreSQL's identity never goes back).
        {"sqlite_autoincrement": True},
    )

    def __repr__(self) -> str:
        return f"<Comment {self.id} {self.post!r} {self.status}>"


def hash_secret(secret: str) -> str:
    """What the comments table keeps of an author's secret (``secret_hash``)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


# "This comment is pending", with the value written into the SQL: a plan only uses the partial
# index ix_comments_pending when it can see the value, and PostgreSQL's generic plan for a
# bound parameter cannot (psycopg prepares the statements it runs often).
PENDING = Comment.status == literal_column(f"'{CommentStatus.PENDING.value}'")
