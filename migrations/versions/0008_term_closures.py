"""Closures within terms (half-terms, INSET days): days of term that are not counted as overdue

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 13:20:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('term_closure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('term_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.CheckConstraint('ends_on >= starts_on', name=op.f('ck_term_closure_ends_after_start')),
    sa.ForeignKeyConstraint(['term_id'], ['academic_term.id'], name=op.f('fk_term_closure_term_id_academic_term'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_term_closure'))
    )
    with op.batch_alter_table('term_closure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_term_closure_term_id'), ['term_id'], unique=False)


def downgrade():
    with op.batch_alter_table('term_closure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_term_closure_term_id'))
    op.drop_table('term_closure')
