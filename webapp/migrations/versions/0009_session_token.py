"""user.session_token: a session names it, and changing it ends every session of that person

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 13:45:00

"""
import secrets

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user') as batch_op:
        batch_op.add_column(sa.Column('session_token', sa.String(length=32), nullable=True))
    user = sa.table('user', sa.column('id', sa.Integer), sa.column('session_token', sa.String))
    connection = op.get_bind()
    for (user_id,) in connection.execute(sa.select(user.c.id)).all():
        connection.execute(user.update().where(user.c.id == user_id).values(session_token=secrets.token_hex(16)))
    with op.batch_alter_table('user') as batch_op:
        batch_op.alter_column('session_token', existing_type=sa.String(length=32), nullable=False)


def downgrade():
    with op.batch_alter_table('user') as batch_op:
        batch_op.drop_column('session_token')
