"""comments.simhash: each scored comment's SimHash, for its campaign

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

WITH_SIMHASH = sa.text("simhash IS NOT NULL")


def upgrade() -> None:
    # A nullable column without a default: no table rewrite on PostgreSQL, a plain ADD
    # COLUMN on SQLite (no rebuild). Comments scored before it keep NULL.
    op.add_column('comments', sa.Column('simhash', sa.BigInteger(), nullable=True))
    # Built without blocking submissions on PostgreSQL, as 0004's.
    with op.get_context().autocommit_block():
        op.create_index('ix_comments_simhash', 'comments', ['created_at', 'simhash', 'id'],
                        unique=False, postgresql_where=WITH_SIMHASH, sqlite_where=WITH_SIMHASH,
                        postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index('ix_comments_simhash', table_name='comments',
                      postgresql_concurrently=True)
    # SQLite drops a column in place since 3.35 (no rebuild of the comments table).
    op.drop_column('comments', 'simhash')
