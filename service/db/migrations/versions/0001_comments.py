"""comments table

Revision ID: 0001
Revises: 
Create Date: 2026-11-29 04:34:02.292482
"""
from alembic import op
import sqlalchemy as sa
import service.db.types


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('comments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('post', sa.String(length=200), nullable=False),
    sa.Column('parent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('author_name', sa.String(length=100), nullable=False),
    sa.Column('author_email', sa.String(length=254), nullable=True),
    sa.Column('author_url', sa.String(length=2048), nullable=True),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=512), nullable=True),
    sa.Column('referer', sa.String(length=2048), nullable=True),
    sa.Column('status', sa.Enum('pending', 'published', 'held', 'spam', name='commentstatus', native_enum=False, length=16), nullable=False),
    sa.Column('spam_score', sa.Float(), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=True),
    sa.Column('model_version', sa.String(length=64), nullable=True),
    sa.Column('decided_by', sa.Enum('model', 'rule', 'fallback', name='decidedby', native_enum=False, length=16), nullable=True),
    sa.Column('created_at', service.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', service.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['comments.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.create_index('ix_comments_post_status_id', ['post', 'status', 'id'], unique=False)
        batch_op.create_index('ix_comments_status_created', ['status', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index('ix_comments_status_created')
        batch_op.drop_index('ix_comments_post_status_id')

    op.drop_table('comments')
