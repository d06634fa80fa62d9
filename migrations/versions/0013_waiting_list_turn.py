"""A row per waiting list (type and size) that its changes lock, so they take turns

Twenty parents reserving the last instrument of a type and size at once each read the list before
the others' rows were committed, and most were told they were number 1. Reserving, and offering an
instrument to a list, now first lock the list's row in waiting_list_turn (inserted on demand with
ON CONFLICT DO NOTHING, then SELECT ... FOR UPDATE, held until commit). No data to move: the rows
are made as lists are used.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 16:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('waiting_list_turn',
    sa.Column('type_id', sa.Integer(), nullable=False),
    sa.Column('size', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['type_id'], ['instrument_type.id'],
                            name=op.f('fk_waiting_list_turn_type_id_instrument_type')),
    sa.PrimaryKeyConstraint('type_id', 'size', name=op.f('pk_waiting_list_turn'))
    )


def downgrade():
    op.drop_table('waiting_list_turn')
