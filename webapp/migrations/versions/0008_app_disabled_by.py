"""sentry_app.disabled_by_id: who disabled an app by hand

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sentry_app', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_sentry_app_disabled_by_id_user'), 'user', ['disabled_by_id'], ['id'],
                                    ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('sentry_app', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_sentry_app_disabled_by_id_user'), type_='foreignkey')
        batch_op.drop_column('disabled_by_id')
