"""comments: the author's secret, and ids never reused on SQLite (AUTOINCREMENT)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:00:00
"""
from alembic import op
import sqlalchemy as sa

from service.db.migrate import rebuild_sqlite_comments


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _add_secret(batch_op) -> None:
    batch_op.add_column(sa.Column('secret_hash', sa.String(length=64), nullable=True))


def _drop_secret(batch_op) -> None:
    batch_op.drop_column('secret_hash')


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        rebuild_sqlite_comments(_add_secret)
    else:
        op.add_column('comments', sa.Column('secret_hash', sa.String(length=64), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        rebuild_sqlite_comments(_drop_secret, autoincrement=False)
    else:
        op.drop_column('comments', 'secret_hash')
