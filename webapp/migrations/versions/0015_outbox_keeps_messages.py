"""outbox_job.message_id and queued_at: a message's row stays until it is delivered or given up

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 06:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('queued_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_job_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_job_queued_at'), ['queued_at'], unique=False)


def downgrade():
    with op.batch_alter_table('outbox_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_job_queued_at'))
        batch_op.drop_index(batch_op.f('ix_outbox_job_message_id'))
        batch_op.drop_column('queued_at')
        batch_op.drop_column('message_id')
