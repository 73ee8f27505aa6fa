"""Flask side of the database: one engine per app, one session per request."""

from __future__ import annotations

import os
from typing import cast

from flask import Flask, current_app, g
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.db import make_engine, make_sessionmaker


def init_app(app: Flask) -> None:
    """Create the app's engine and session factory; close the request's session at teardown."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["db_engine"] = engine
    app.extensions["db_sessions"] = make_sessionmaker(engine)

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def session() -> Session:
    """The current request's session (created on first use)."""
    if "db_session" not in g:
        factory = cast(sessionmaker, current_app.extensions["db_sessions"])
        g.db_session = factory()
    return cast(Session, g.db_session)


def standalone_session() -> Session:
    """A session outside any request (CLI commands); use it as a context manager."""
    factory = cast(sessionmaker, current_app.extensions["db_sessions"])
    return cast(Session, factory())


def ping() -> None:
    """Raise if the database does not answer."""
    with current_app.extensions["db_engine"].connect() as connection:
        connection.execute(text("SELECT 1"))


# Below this much free space where a SQLite database lives, it is not ready: its next WAL
# growth or checkpoint fails ("database or disk is full") even if a small write still fits.
SQLITE_MIN_FREE_BYTES = 8 * 1024 * 1024


class NotWritableError(Exception):
    """The database answers but cannot take a write."""


def write_probe() -> None:
    """Raise if the database cannot take a committed write (disk full, read-only, a standby).

    Cheap and table-free: SQLite rewrites its header's ``user_version`` (one page into the
    WAL, fsync'd like a comment) and needs some free space on its filesystem; PostgreSQL
    commits a transaction that was given an id (a WAL commit record)."""
    engine = current_app.extensions["db_engine"]
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            version = connection.exec_driver_sql("PRAGMA user_version").scalar() or 0
            connection.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
            connection.commit()
            database = make_url(str(engine.url)).database
            if database and database != ":memory:":
                stats = os.statvfs(os.path.dirname(os.path.abspath(database)))
                free = stats.f_bavail * stats.f_frsize
                if free < SQLITE_MIN_FREE_BYTES:
                    raise NotWritableError(f"{free // 1024} KiB free")
        elif engine.dialect.name == "postgresql":
            connection.execute(text("SELECT txid_current()"))
            connection.commit()
