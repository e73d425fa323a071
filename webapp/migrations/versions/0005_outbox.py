"""outbox: jobs committed with the change that implies them

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 09:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('outbox_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('spec_json', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_job')),
    sa.UniqueConstraint('job_id', name=op.f('uq_outbox_job_job_id'))
    )
    with op.batch_alter_table('outbox_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_job_created_at'), ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('outbox_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_job_created_at'))
    op.drop_table('outbox_job')
