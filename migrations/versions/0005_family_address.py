"""Families get a postal address, for the letters of those without email

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 22:10:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('family', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.String(length=500), nullable=False, server_default=''))


def downgrade():
    with op.batch_alter_table('family', schema=None) as batch_op:
        batch_op.drop_column('address')
