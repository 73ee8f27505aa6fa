"""returning readers (comments.reader_id) and revocable sessions (moderators.session_version)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 06:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('comments', sa.Column('reader_id', sa.String(length=32), nullable=True))
    op.create_index('ix_comments_reader_label', 'comments', ['reader_id', 'label'],
                    unique=False)
    op.add_column('moderators', sa.Column('session_version', sa.Integer(), nullable=False,
                                          server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('moderators') as batch:
        batch.drop_column('session_version')
    op.drop_index('ix_comments_reader_label', table_name='comments')
    with op.batch_alter_table('comments') as batch:
        batch.drop_column('reader_id')
