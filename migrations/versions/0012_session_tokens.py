"""Sessions that can be ended: a session token per user, and "keep me signed in" tokens per browser

user_account.session_token is part of every session's id: a new one (sign-out, a password change or
reset, an account disabled) ends every session of that user, copies of the cookie included. Each
existing user gets a random token, which signs everyone out once. remember_token holds the SHA-256
of each browser's "keep me signed in" token, made anew at each sign-in and deleted with the sessions.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 16:20:00

"""
import secrets

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_token', sa.String(length=64), nullable=True))
    bind = op.get_bind()
    for user_id in bind.execute(sa.text('SELECT id FROM user_account')).scalars().all():
        bind.execute(sa.text('UPDATE user_account SET session_token = :token WHERE id = :id'),
                     {'token': secrets.token_urlsafe(32), 'id': user_id})
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.alter_column('session_token', existing_type=sa.String(length=64), nullable=False)

    op.create_table('remember_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_remember_token_user_id_user_account'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_remember_token')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_remember_token_token_sha256'))
    )
    with op.batch_alter_table('remember_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_remember_token_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('remember_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_remember_token_user_id'))
    op.drop_table('remember_token')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('session_token')
