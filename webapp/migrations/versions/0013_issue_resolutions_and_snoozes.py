"""Every way of resolving and ignoring an issue: its resolution, its snooze, and the releases projects have sent

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 04:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('release',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=200), nullable=False),
    sa.Column('first_seen', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_release_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_release')),
    sa.UniqueConstraint('project_id', 'version', name=op.f('uq_release_project_id_version'))
    )
    with op.batch_alter_table('sentry_group', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolution_type', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('resolution_release', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('ignore_until', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('ignore_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('ignore_window', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('ignore_user_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('ignore_base_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('ignore_base_users', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('ignore_until_escalating', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('escalated_at', sa.DateTime(), nullable=True))
    op.execute("UPDATE sentry_group SET resolution_type = 'now' WHERE status = 'resolved'")
    _backfill_releases()


def _backfill_releases():
    """The releases of stored events, each first seen when its first event was received."""
    if op.get_bind().dialect.name == 'postgresql':
        version = "substr(data_json::json ->> 'release', 1, 200)"
        is_text = "json_typeof(data_json::json -> 'release') = 'string'"
    else:
        version = "substr(json_extract(data_json, '$.release'), 1, 200)"
        is_text = "json_type(data_json, '$.release') = 'text'"
    op.execute("INSERT INTO release (project_id, version, first_seen) "
               f"SELECT project_id, {version}, min(received) FROM event WHERE {is_text} AND {version} <> '' "
               f"GROUP BY project_id, {version} ORDER BY min(received)")


def downgrade():
    with op.batch_alter_table('sentry_group', schema=None) as batch_op:
        for column in ('escalated_at', 'ignore_until_escalating', 'ignore_base_users', 'ignore_base_count',
                       'ignore_user_count', 'ignore_window', 'ignore_count', 'ignore_until', 'resolution_release',
                       'resolution_type'):
            batch_op.drop_column(column)
    op.drop_table('release')
