"""sentry_group.regressed_at: when a resolved issue last came back (Sentry's "regressed" substatus for 7 days)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 01:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sentry_group', schema=None) as batch_op:
        batch_op.add_column(sa.Column('regressed_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('sentry_group', schema=None) as batch_op:
        batch_op.drop_column('regressed_at')
