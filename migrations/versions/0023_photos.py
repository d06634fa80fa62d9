"""Condition photos (their bytes in a table of their own) and trigram indexes for finding borrowers as you type

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 19:50:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

TRIGRAM = [('family', 'name'), ('family', 'email'), ('pupil', 'name'), ('other_borrower', 'name'),
           ('school', 'name')]


def upgrade():
    op.create_table('condition_photo',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instrument_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('condition_check_id', sa.Integer(), nullable=True),
    sa.Column('repair_id', sa.Integer(), nullable=True),
    sa.Column('loan_id', sa.Integer(), nullable=True),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('byte_size', sa.Integer(), nullable=False),
    sa.Column('taken_by_id', sa.Integer(), nullable=True),
    sa.Column('taken_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("stage IN ('check_in', 'inspection', 'repair_sent', 'repair_back')",
                       name=op.f('ck_condition_photo_stage_known')),
    sa.CheckConstraint('byte_size > 0', name=op.f('ck_condition_photo_byte_size_positive')),
    sa.CheckConstraint('width > 0 AND height > 0', name=op.f('ck_condition_photo_dimensions_positive')),
    sa.ForeignKeyConstraint(['condition_check_id'], ['condition_check.id'],
                            name=op.f('fk_condition_photo_condition_check_id_condition_check')),
    sa.ForeignKeyConstraint(['instrument_id'], ['instrument.id'],
                            name=op.f('fk_condition_photo_instrument_id_instrument')),
    sa.ForeignKeyConstraint(['loan_id'], ['loan.id'], name=op.f('fk_condition_photo_loan_id_loan')),
    sa.ForeignKeyConstraint(['repair_id'], ['repair.id'], name=op.f('fk_condition_photo_repair_id_repair')),
    sa.ForeignKeyConstraint(['taken_by_id'], ['user_account.id'],
                            name=op.f('fk_condition_photo_taken_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_condition_photo'))
    )
    for column in ('instrument_id', 'condition_check_id', 'repair_id', 'loan_id'):
        op.create_index(op.f(f'ix_condition_photo_{column}'), 'condition_photo', [column])
    op.create_table('photo_data',
    sa.Column('photo_id', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['photo_id'], ['condition_photo.id'], ondelete='CASCADE',
                            name=op.f('fk_photo_data_photo_id_condition_photo')),
    sa.PrimaryKeyConstraint('photo_id', name=op.f('pk_photo_data'))
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        for table, column in TRIGRAM:
            op.create_index(f'ix_{table}_{column}_trgm', table, [column],
                            postgresql_using='gin', postgresql_ops={column: 'gin_trgm_ops'})


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for table, column in TRIGRAM:
            op.drop_index(f'ix_{table}_{column}_trgm', table_name=table)
    op.drop_table('photo_data')
    for column in ('instrument_id', 'condition_check_id', 'repair_id', 'loan_id'):
        op.drop_index(op.f(f'ix_condition_photo_{column}'), table_name='condition_photo')
    op.drop_table('condition_photo')
