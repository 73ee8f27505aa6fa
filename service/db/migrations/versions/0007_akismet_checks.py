"""akismet checks: every comment-check stored as a comment of its site

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:00:00
"""
from alembic import op
import sqlalchemy as sa
import service.db.types


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('akismet_checks',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('comment_id', ID, nullable=False),
    sa.Column('guid', sa.String(length=36), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('signals', sa.JSON(), nullable=False),
    sa.Column('created_at', service.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('guid')
    )
    op.create_index('ix_akismet_checks_comment', 'akismet_checks', ['comment_id'], unique=False)
    op.create_index('ix_akismet_checks_site_fingerprint', 'akismet_checks',
                    ['site_id', 'fingerprint'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_akismet_checks_site_fingerprint', table_name='akismet_checks')
    op.drop_index('ix_akismet_checks_comment', table_name='akismet_checks')
    op.drop_table('akismet_checks')
