"""pending comments: a partial index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 11:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    # Built without blocking submissions on PostgreSQL (CONCURRENTLY cannot run inside a
    # transaction); SQLite builds it in a moment either way. A build that fails half-way
    # leaves an invalid index of this name on PostgreSQL: the next upgrade then stops on
    # "already exists" until it is dropped (DROP INDEX CONCURRENTLY ix_comments_pending).
    with op.get_context().autocommit_block():
        op.create_index('ix_comments_pending', 'comments', ['id'], unique=False,
                        postgresql_where=PENDING, sqlite_where=PENDING,
                        postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index('ix_comments_pending', table_name='comments',
                      postgresql_concurrently=True)
