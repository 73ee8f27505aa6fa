"""Flask side of the database: one engine per app, one session per request."""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app, g
from sqlalchemy import text
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
