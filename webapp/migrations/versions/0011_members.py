"""invitations, password resets, and when each membership began

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('invitation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('invited_by_id', sa.Integer(), nullable=True),
    sa.Column('date_added', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'],
                            name=op.f('fk_invitation_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invited_by_id'], ['user.id'], name=op.f('fk_invitation_invited_by_id_user'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitation')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_invitation_token_hash'))
    )
    with op.batch_alter_table('invitation') as batch_op:
        batch_op.create_index(batch_op.f('ix_invitation_organization_id'), ['organization_id'], unique=False)

    op.create_table('password_reset',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('date_added', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_password_reset_user_id_user'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_reset')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_password_reset_token_hash'))
    )
    with op.batch_alter_table('password_reset') as batch_op:
        batch_op.create_index(batch_op.f('ix_password_reset_user_id'), ['user_id'], unique=False)

    # Memberships from before this revision began, as far as anyone knows, when their person joined Hookline.
    with op.batch_alter_table('membership') as batch_op:
        batch_op.add_column(sa.Column('date_added', sa.DateTime(), nullable=True))
    membership = sa.table('membership', sa.column('user_id', sa.Integer), sa.column('date_added', sa.DateTime))
    user = sa.table('user', sa.column('id', sa.Integer), sa.column('date_joined', sa.DateTime))
    op.get_bind().execute(membership.update().values(
        date_added=sa.select(user.c.date_joined).where(user.c.id == membership.c.user_id).scalar_subquery()))
    with op.batch_alter_table('membership') as batch_op:
        batch_op.alter_column('date_added', existing_type=sa.DateTime(), nullable=False)


def downgrade():
    with op.batch_alter_table('membership') as batch_op:
        batch_op.drop_column('date_added')
    with op.batch_alter_table('password_reset') as batch_op:
        batch_op.drop_index(batch_op.f('ix_password_reset_user_id'))
    op.drop_table('password_reset')
    with op.batch_alter_table('invitation') as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitation_organization_id'))
    op.drop_table('invitation')
