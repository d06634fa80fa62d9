"""The signed copy of an agreement: the same agreement with its signature boxes filled in

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 13:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signed_pdf', sa.LargeBinary(), nullable=True))


def downgrade():
    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.drop_column('signed_pdf')
