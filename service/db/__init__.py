"""Database tables and sessions. No Flask here, so the worker can use it directly."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, sessionmaker


class Base(DeclarativeBase):
    """Declarative base of every table."""


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so web and worker can share it."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a comment we answered 202 for survives a power cut, not only a crash.
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    """Sessions that keep loaded attributes after commit (we answer from them)."""
    return sessionmaker(engine, expire_on_commit=False)


from service.db.comments import Comment, CommentStatus, DecidedBy, Label  # noqa: E402
from service.db.events import AdminEvent, CommentEvent  # noqa: E402
from service.db.moderators import Moderator, Role  # noqa: E402
from service.db.registry import ModelVersion  # noqa: E402
from service.db.rules import PostSettings, Rule, RuleKind, Setting  # noqa: E402
from service.db.sites import Site  # noqa: E402
from service.db.webhooks import Webhook, WebhookDelivery  # noqa: E402

__all__ = [
    "AdminEvent",
    "Base",
    "Comment",
    "CommentEvent",
    "CommentStatus",
    "DecidedBy",
    "Label",
    "ModelVersion",
    "Moderator",
    "PostSettings",
    "Role",
    "Rule",
    "RuleKind",
    "Setting",
    "Site",
    "Webhook",
    "WebhookDelivery",
    "make_engine",
    "make_sessionmaker",
]
