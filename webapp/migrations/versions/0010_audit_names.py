"""Audit events named <object>.<action>: rename the entries stored under the old names; index the event filter

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 10:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# Old name → new name (as webapp.core.audit.RENAMED; copied, so this migration means the same whatever the code says later).
RENAMED = {
    "sentry-app.add": "app.create",
    "sentry-app.edit": "app.edit",
    "sentry-app.remove": "app.remove",
    "internal-integration.disable": "app.disable",
    "internal-integration.enable": "app.enable",
    "internal-integration.rotate-secret": "app.rotate-secret",
    "projectkey.add": "project-key.create",
    "projectkey.edit": "project-key.edit",
    "projectkey.remove": "project-key.remove",
}

entry = sa.table('audit_log_entry', sa.column('event', sa.String))


def _rename(pairs):
    connection = op.get_bind()
    for old, new in pairs:
        connection.execute(entry.update().where(entry.c.event == old).values(event=new))


def upgrade():
    _rename(RENAMED.items())
    op.create_index('ix_audit_log_entry_org_event_time', 'audit_log_entry', ['organization_id', 'event', 'datetime'])


def downgrade():
    op.drop_index('ix_audit_log_entry_org_event_time', table_name='audit_log_entry')
    _rename((new, old) for old, new in RENAMED.items())
