"""imported comments: their origin, and the site of a comment

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:00:00
"""
from alembic import op
import sqlalchemy as sa
import service.db.types
from service.db.migrate import rebuild_sqlite_comments


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('comment_imports',
    sa.Column('comment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('origin', sa.String(length=255), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('external_parent', sa.String(length=255), nullable=True),
    sa.Column('imported_at', service.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('comment_id'),
    sa.UniqueConstraint('source', 'origin', 'external_id', name='uq_comment_imports_external')
    )
    if op.get_bind().dialect.name == 'sqlite':
        # A rebuild (as 0006) that keeps comment_events and AUTOINCREMENT.
        rebuild_sqlite_comments(_add_site)
    else:
        op.add_column('comments', sa.Column('site_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_comments_site_id', 'comments', 'sites', ['site_id'], ['id'],
                              ondelete='SET NULL')


def _add_site(batch_op) -> None:
    batch_op.add_column(sa.Column('site_id', sa.Integer(), nullable=True))
    batch_op.create_foreign_key('fk_comments_site_id', 'sites', ['site_id'], ['id'],
                                ondelete='SET NULL')


def _drop_site(batch_op) -> None:
    batch_op.drop_constraint('fk_comments_site_id', type_='foreignkey')
    batch_op.drop_column('site_id')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        rebuild_sqlite_comments(_drop_site)
    else:
        op.drop_constraint('fk_comments_site_id', 'comments', type_='foreignkey')
        op.drop_column('comments', 'site_id')
    op.drop_table('comment_imports')
