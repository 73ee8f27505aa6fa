"""models in the database: artifacts (bytes, metadata, SHA-256) and the active row

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 17:40:00

A store of model folders from before (MODEL_DIR with its ACTIVE file) is imported with one
command: `flask --app service model import` (what `make run` and `make train` do).
"""
from alembic import op
import sqlalchemy as sa
import service.db.types


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('model_artifacts',
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', service.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('version')
    )
    op.create_table('model_active',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('activated_at', service.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('activated_by', sa.String(length=100), nullable=True),
    sa.CheckConstraint('id = 1', name='ck_model_active_one_row'),
    sa.ForeignKeyConstraint(['version'], ['model_artifacts.version']),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('model_active')
    op.drop_table('model_artifacts')
