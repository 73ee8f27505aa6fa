"""Alembic, driven from code so `flask db upgrade`, `make run` and the tests share one path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, op
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on '%' in passwords.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision``."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def revision(url: str, message: str) -> None:
    """Autogenerate a new migration from the difference between the tables and ``url``."""
    command.revision(alembic_config(url), message=message, autogenerate=True)


def rebuild_sqlite_comments(change: Callable[[Any], None], autoincrement: bool = True) -> None:
    """Rebuild SQLite's comments table with ``change`` applied to its batch operations (for
    what SQLite cannot alter in place), for migrations.

    Foreign keys are switched off around it, as SQLite's documented procedure says: with them
    on, dropping the old table would cascade to comment_events and clear replies' parent_id.
    The copy keeps every id, so sqlite_sequence starts at the highest one. The partial index
    is not reflected with its condition: it is dropped and built again."""
    with op.get_context().autocommit_block():
        op.execute("PRAGMA foreign_keys=OFF")
        op.execute("BEGIN")
        op.drop_index("ix_comments_pending", table_name="comments")
        with op.batch_alter_table("comments", recreate="always",
                                  table_kwargs={"sqlite_autoincrement": autoincrement}
                                  ) as batch_op:
            change(batch_op)
        op.create_index("ix_comments_pending", "comments", ["id"], unique=False,
                        sqlite_where=sa.text("status = 'pending'"))
        problems = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if problems:
            op.execute("ROLLBACK")
            op.execute("PRAGMA foreign_keys=ON")
            raise RuntimeError(f"comments rebuild broke foreign keys: {problems[:5]}")
        op.execute("COMMIT")
        op.execute("PRAGMA foreign_keys=ON")
