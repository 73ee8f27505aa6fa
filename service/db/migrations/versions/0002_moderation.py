"""moderation

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 04:47:02.746122
"""
from alembic import op
import sqlalchemy as sa
import service.db.types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('moderators',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.Enum('moderator', 'admin', name='role', native_enum=False, length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', service.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('post_settings',
    sa.Column('post', sa.String(length=200), nullable=False),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.Column('premoderated', sa.Boolean(), nullable=False),
    sa.Column('updated_at', service.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('post')
    )
    op.create_table('rules',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.Enum('blocked_term', 'blocked_email', 'blocked_email_domain', 'blocked_url_domain', 'blocked_ip', 'watched_term', name='rulekind', native_enum=False, length=32), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('note', sa.String(length=255), nullable=True),
    sa.Column('created_by', sa.String(length=100), nullable=True),
    sa.Column('created_at', service.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'value', name='uq_rules_kind_value')
    )
    op.create_table('settings',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('admin_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('moderator_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', service.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['moderator_id'], ['moderators.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('comment_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('comment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('moderator_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', service.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['moderator_id'], ['moderators.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('comment_events', schema=None) as batch_op:
        batch_op.create_index('ix_comment_events_comment', ['comment_id', 'id'], unique=False)

    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('label', sa.Enum('ham', 'spam', name='label', native_enum=False, length=16), nullable=True))
        batch_op.create_index('ix_comments_email_label', ['author_email', 'label'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index('ix_comments_email_label')
        batch_op.drop_column('label')

    with op.batch_alter_table('comment_events', schema=None) as batch_op:
        batch_op.drop_index('ix_comment_events_comment')

    op.drop_table('comment_events')
    op.drop_table('admin_events')
    op.drop_table('settings')
    op.drop_table('rules')
    op.drop_table('post_settings')
    op.drop_table('moderators')
