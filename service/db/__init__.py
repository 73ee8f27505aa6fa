"""Database tables and sessions. No Flask here, so the worker can use it directly."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, sessionmaker


class Base(DeclarativeBase):
    """Declarative base of every table."""


def make_engine(url: str, *, redoable: bool = False) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so web and worker can share it.

    ``redoable``: every write through this engine can be done again from what is already
    durable (the scoring worker's decisions: a decision lost to a power cut leaves its
    comment pending, and the reconciler queues it again). Its SQLite commits then skip the
    fsync (``synchronous=NORMAL``, still safe against a crash of the process); the next
    commit of any other connection, or the next checkpoint, makes them durable. On
    PostgreSQL its commits do not wait for the WAL flush (``synchronous_commit=off``: a crash
    may lose the last fraction of a second of them, never corrupt anything)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        synchronous = "NORMAL" if redoable else "FULL"

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a comment we answered 202 for survives a power cut, not only a crash.
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    if redoable and engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def _asynchronous_commit(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("SET synchronous_commit TO off")
            cursor.close()
            dbapi_connection.commit()  # a SET inside a rolled-back transaction is undone

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker:
    """Sessions that keep loaded attributes after commit (we answer from them)."""
    return sessionmaker(engine, expire_on_commit=False)


from service.db.comments import Comment, CommentStatus, DecidedBy, Label  # noqa: E402
from service.db.events import AdminEvent, CommentEvent  # noqa: E402
from service.db.imports import CommentImport  # noqa: E402
from service.db.moderators import Moderator, Role  # noqa: E402
from service.db.registry import ActiveModel, ModelArtifact, ModelVersion  # noqa: E402
from service.db.rules import PostSettings, Rule, RuleKind, Setting  # noqa: E402
from service.db.sites import AkismetCheck, Site  # noqa: E402
from service.db.webhooks import Webhook, WebhookDelivery  # noqa: E402

__all__ = [
    "ActiveModel",
    "AdminEvent",
    "AkismetCheck",
    "Base",
    "Comment",
    "CommentEvent",
    "CommentImport",
    "CommentStatus",
    "DecidedBy",
    "Label",
    "ModelArtifact",
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
