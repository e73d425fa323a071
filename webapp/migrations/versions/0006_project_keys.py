"""project keys: a project has client keys (DSNs), each may have its own rate limit; a per-key limit per project

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00

"""
import secrets

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

project = sa.table('project', sa.column('id', sa.Integer), sa.column('public_key', sa.String),
                   sa.column('date_added', sa.DateTime))
project_key = sa.table('project_key', sa.column('id', sa.Integer), sa.column('project_id', sa.Integer),
                       sa.column('label', sa.String), sa.column('public_key', sa.String),
                       sa.column('is_active', sa.Boolean), sa.column('date_added', sa.DateTime))


def upgrade():
    op.create_table('project_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('public_key', sa.String(length=32), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('rate_limit', sa.Integer(), nullable=True),
    sa.Column('date_added', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_project_key_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_key')),
    sa.UniqueConstraint('public_key', name=op.f('uq_project_key_public_key'))
    )
    with op.batch_alter_table('project_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_key_project_id'), ['project_id'], unique=False)

    # Each project's one key becomes its first client key, "Default": every DSN in use keeps working.
    op.execute(project_key.insert().from_select(
        ['project_id', 'label', 'public_key', 'is_active', 'date_added'],
        sa.select(project.c.id, sa.literal('Default'), project.c.public_key, sa.true(), project.c.date_added),
    ))

    # The keys live in project_key alone from now on.
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_rate_limit', sa.Integer(), nullable=True))
        batch_op.drop_constraint('uq_project_public_key', type_='unique')
        batch_op.drop_column('public_key')


def downgrade():
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_key', sa.String(length=32), nullable=True))
        batch_op.drop_column('key_rate_limit')

    # A project keeps its oldest active key (else its oldest key; else a new one): the DSN most likely in use.
    connection = op.get_bind()
    keys = connection.execute(sa.select(project_key.c.project_id, project_key.c.public_key)
                              .order_by(project_key.c.is_active, project_key.c.id.desc())).all()
    kept = dict(keys)  # the last row of each project wins: its oldest active key
    for (project_id,) in connection.execute(sa.select(project.c.id)).all():
        connection.execute(project.update().where(project.c.id == project_id)
                           .values(public_key=kept.get(project_id) or secrets.token_hex(16)))

    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.alter_column('public_key', existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_project_public_key'), ['public_key'])

    with op.batch_alter_table('project_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_key_project_id'))
    op.drop_table('project_key')
