"""metric_alert_rule.evaluated_at: when a rule was last evaluated (the minute tick evaluates each minute once)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 03:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('metric_alert_rule', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evaluated_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('metric_alert_rule', schema=None) as batch_op:
        batch_op.drop_column('evaluated_at')
