"""Bank statement imports: each file once (by its hash), each statement line once (by its fingerprint)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 16:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('bank_import',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('file_hash', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('payments', sa.Integer(), nullable=False),
    sa.Column('total', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('imported_by_id', sa.Integer(), nullable=True),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['imported_by_id'], ['user_account.id'], name=op.f('fk_bank_import_imported_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_import')),
    sa.UniqueConstraint('file_hash', name=op.f('uq_bank_import_file_hash'))
    )
    op.create_table('bank_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_bank_line_amount_positive')),
    sa.ForeignKeyConstraint(['import_id'], ['bank_import.id'], name=op.f('fk_bank_line_import_id_bank_import')),
    sa.ForeignKeyConstraint(['payment_id'], ['ledger_entry.id'], name=op.f('fk_bank_line_payment_id_ledger_entry')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_line')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_bank_line_fingerprint')),
    sa.UniqueConstraint('payment_id', name=op.f('uq_bank_line_payment_id'))
    )
    with op.batch_alter_table('bank_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bank_line_import_id'), ['import_id'], unique=False)


def downgrade():
    with op.batch_alter_table('bank_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bank_line_import_id'))
    op.drop_table('bank_line')
    op.drop_table('bank_import')
