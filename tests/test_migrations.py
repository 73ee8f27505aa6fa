"""Alembic migrations build exactly the tables the code declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.db import Base, make_engine


def test_migrations_match_the_tables(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_upgrading_a_database_with_comments_keeps_their_history(tmp_path) -> None:
    """Migrations that rebuild the comments table on SQLite (0006, 0008) keep every row of
    the tables that point at it, and the AUTOINCREMENT that stops ids being reused."""
    from sqlalchemy import text

    from service.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0004")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO comments (id, post, author_name, content, status, created_at, reasons)"
            " VALUES (5, 'p', 'Ann', 'First', 'published', '2026-01-01 00:00:00', '[]'),"
            " (6, 'p', 'Bo', 'Reply', 'published', '2026-01-01 00:01:00', '[]')"))
        connection.execute(text("UPDATE comments SET parent_id = 5 WHERE id = 6"))
        connection.execute(text(
            "INSERT INTO comment_events (comment_id, actor, action, from_status, to_status,"
            " created_at) VALUES (5, 'worker', 'decide', 'pending', 'published',"
            " '2026-01-01 00:00:00')"))
    engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM comment_events")).scalar() == 1
        assert connection.execute(text("SELECT parent_id FROM comments WHERE id = 6")
                                  ).scalar() == 5
        table_sql = connection.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'comments'")).scalar()
    engine.dispose()
    assert "AUTOINCREMENT" in table_sql
