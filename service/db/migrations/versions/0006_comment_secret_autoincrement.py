"""comments: the author's secret, and ids never reused on SQLite (AUTOINCREMENT)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def _rebuild_sqlite(autoincrement: bool, add_secret: bool) -> None:
    """Rebuild the comments table (SQLite cannot change a key's AUTOINCREMENT in place).

    Foreign keys are switched off around it, as SQLite's documented procedure says: with them
    on, dropping the old table would cascade to comment_events and clear replies' parent_id.
    The copy keeps every id, so sqlite_sequence starts at the highest one."""
    with op.get_context().autocommit_block():
        op.execute("PRAGMA foreign_keys=OFF")
        op.execute("BEGIN")
        # The partial index is not reflected with its condition: drop it, rebuild it after.
        op.drop_index('ix_comments_pending', table_name='comments')
        with op.batch_alter_table('comments', recreate='always',
                                  table_kwargs={'sqlite_autoincrement': autoincrement}
                                  ) as batch_op:
            if add_secret:
                batch_op.add_column(sa.Column('secret_hash', sa.String(length=64),
                                              nullable=True))
            else:
                batch_op.drop_column('secret_hash')
        op.create_index('ix_comments_pending', 'comments', ['id'], unique=False,
                        sqlite_where=PENDING)
        problems = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if problems:
            op.execute("ROLLBACK")
            op.execute("PRAGMA foreign_keys=ON")
            raise RuntimeError(f"comments rebuild broke foreign keys: {problems[:5]}")
        op.execute("COMMIT")
        op.execute("PRAGMA foreign_keys=ON")


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite(autoincrement=True, add_secret=True)
    else:
        op.add_column('comments', sa.Column('secret_hash', sa.String(length=64), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite(autoincrement=False, add_secret=False)
    else:
        op.drop_column('comments', 'secret_hash')
