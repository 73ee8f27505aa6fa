"""labelled comments: a partial index for what the site learned

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

LABELLED = sa.text("label IS NOT NULL")


def upgrade() -> None:
    # The scorer asks for the labelled comments' count and newest decision before every batch
    # (service.reputation.label_stamp); without this index that was a scan of every comment.
    # Built without blocking submissions on PostgreSQL, as 0004's.
    with op.get_context().autocommit_block():
        op.create_index('ix_comments_labelled', 'comments', ['label', 'decided_at'],
                        unique=False, postgresql_where=LABELLED, sqlite_where=LABELLED,
                        postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index('ix_comments_labelled', table_name='comments',
                      postgresql_concurrently=True)
