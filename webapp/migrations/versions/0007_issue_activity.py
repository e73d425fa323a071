"""issue activity, issue environments, incident status history; indexes for the issues list and charts

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('activity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('comment_id', sa.Integer(), nullable=True),
    sa.Column('data_json', sa.Text(), nullable=False),
    sa.Column('date', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['comment_id'], ['comment.id'], name=op.f('fk_activity_comment_id_comment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['sentry_group.id'], name=op.f('fk_activity_group_id_sentry_group'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_activity_user_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity'))
    )
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index('ix_activity_group_date', ['group_id', 'date'], unique=False)
        batch_op.create_index(batch_op.f('ix_activity_comment_id'), ['comment_id'], unique=False)

    op.create_table('group_environment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('first_seen', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['sentry_group.id'], name=op.f('fk_group_environment_group_id_sentry_group'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_group_environment_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_group_environment')),
    sa.UniqueConstraint('group_id', 'environment', name=op.f('uq_group_environment_group_id_environment'))
    )
    with op.batch_alter_table('group_environment', schema=None) as batch_op:
        batch_op.create_index('ix_group_environment_project_environment', ['project_id', 'environment'], unique=False)

    op.create_table('incident_status_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('metric_value', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('notifications_json', sa.Text(), nullable=False),
    sa.Column('date', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_incident_status_change_incident_id_incident'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_incident_status_change_user_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_status_change'))
    )
    with op.batch_alter_table('incident_status_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_status_change_incident_id'), ['incident_id'], unique=False)

    # (group_id, received) serves everything the group_id index did, and an issue's events by day.
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index('ix_event_group_received', ['group_id', 'received'], unique=False)
        batch_op.drop_index('ix_event_group_id')

    with op.batch_alter_table('sentry_group', schema=None) as batch_op:
        batch_op.create_index('ix_sentry_group_project_status_last_seen', ['project_id', 'status', 'last_seen'], unique=False)

    _backfill()


def _backfill():
    """Give existing issues their first-seen and comment entries, and their environments from stored events."""
    op.execute("INSERT INTO activity (group_id, kind, user_id, comment_id, data_json, date) "
               "SELECT id, 'first_seen', NULL, NULL, '{}', first_seen FROM sentry_group")
    op.execute("INSERT INTO activity (group_id, kind, user_id, comment_id, data_json, date) "
               "SELECT group_id, 'comment', user_id, id, '{}', date_added FROM comment")
    if op.get_bind().dialect.name == 'postgresql':
        environment = "substr(data_json::json ->> 'environment', 1, 64)"
        is_text = "json_typeof(data_json::json -> 'environment') = 'string'"
    else:
        environment = "substr(json_extract(data_json, '$.environment'), 1, 64)"
        is_text = "json_type(data_json, '$.environment') = 'text'"
    op.execute("INSERT INTO group_environment (project_id, group_id, environment, first_seen) "
               f"SELECT project_id, group_id, {environment}, min(received) FROM event "
               f"WHERE {is_text} AND {environment} <> '' GROUP BY project_id, group_id, {environment}")


def downgrade():
    with op.batch_alter_table('sentry_group', schema=None) as batch_op:
        batch_op.drop_index('ix_sentry_group_project_status_last_seen')

    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_group_id'), ['group_id'], unique=False)
        batch_op.drop_index('ix_event_group_received')

    with op.batch_alter_table('incident_status_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_status_change_incident_id'))
    op.drop_table('incident_status_change')

    with op.batch_alter_table('group_environment', schema=None) as batch_op:
        batch_op.drop_index('ix_group_environment_project_environment')
    op.drop_table('group_environment')

    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_comment_id'))
        batch_op.drop_index('ix_activity_group_date')
    op.drop_table('activity')
