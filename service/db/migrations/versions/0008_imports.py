"""imported comments: their origin, and the site of a comment

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:00:00
"""
from alembic import op
import sqlalchemy as sa
import service.db.types


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
        _rebuild_sqlite_comments(add=True)
    else:
        op.add_column('comments', sa.Column('site_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_comments_site_id', 'comments', 'sites', ['site_id'], ['id'],
                              ondelete='SET NULL')


def _rebuild_sqlite_comments(add: bool) -> None:
    """Add (or drop) site_id by rebuilding the table, as 0006 does: foreign keys off around
    it (dropping the old table would otherwise cascade to comment_events and clear replies'
    parent_id), AUTOINCREMENT kept, the partial index rebuilt with its condition."""
    with op.get_context().autocommit_block():
        op.execute("PRAGMA foreign_keys=OFF")
        op.execute("BEGIN")
        op.drop_index('ix_comments_pending', table_name='comments')
        with op.batch_alter_table('comments', recreate='always',
                                  table_kwargs={'sqlite_autoincrement': True}) as batch_op:
            if add:
                batch_op.add_column(sa.Column('site_id', sa.Integer(), nullable=True))
                batch_op.create_foreign_key('fk_comments_site_id', 'sites', ['site_id'],
                                            ['id'], ondelete='SET NULL')
            else:
                batch_op.drop_constraint('fk_comments_site_id', type_='foreignkey')
                batch_op.drop_column('site_id')
        op.create_index('ix_comments_pending', 'comments', ['id'], unique=False,
                        sqlite_where=sa.text("status = 'pending'"))
        problems = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if problems:
            op.execute("ROLLBACK")
            op.execute("PRAGMA foreign_keys=ON")
            raise RuntimeError(f"comments rebuild broke foreign keys: {problems[:5]}")
        op.execute("COMMIT")
        op.execute("PRAGMA foreign_keys=ON")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite_comments(add=False)
    else:
        op.drop_constraint('fk_comments_site_id', 'comments', type_='foreignkey')
        op.drop_column('comments', 'site_id')
    op.drop_table('comment_imports')
