"""The hub's billing rules: monthly instalments, deposits as ledger lines (held, refunded or kept), and
schools' hire fees for classroom sets

An invoice's instalments, a deposit's release and a set loan's termly hire are append-only like the
ledger. A loan has one deposit, a deposit one release, a set loan one hire a term: unique constraints,
so no race or rerun can refund a deposit twice or invoice a set twice.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 19:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


APPEND_ONLY = ("invoice_instalment", "loan_deposit", "deposit_release", "set_hire_charge")


def _append_only(dialect: str, tables) -> list[str]:
    """The same triggers as 0015's (its function ledger_append_only on PostgreSQL)."""
    if dialect == "postgresql":
        return [f"""CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
                    FOR EACH ROW EXECUTE FUNCTION ledger_append_only()""" for table in tables]
    if dialect == "sqlite":
        return [f"""CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table}
                    BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"""
                for table in tables for verb in ("update", "delete")]
    return []


def _drop_append_only(dialect: str, tables) -> list[str]:
    if dialect == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}" for table in tables]
    return [f"DROP TRIGGER IF EXISTS {table}_no_{verb}" for table in tables for verb in ("update", "delete")]


def _invoice_line(kinds: str) -> sa.Table:
    """invoice_line as 0015 made it, with the kinds of line given (SQLite rebuilds the table from this)."""
    return sa.Table(
        'invoice_line', sa.MetaData(),
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('invoice_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('charge_id', sa.Integer(), nullable=True),
        sa.Column('loan_id', sa.Integer(), nullable=True),
        sa.Column('description', sa.String(length=300), nullable=False),
        sa.Column('full_fee', sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column('remission_category', sa.String(length=32), nullable=False),
        sa.Column('amount', sa.Numeric(precision=10, scale=2), nullable=False),
        sa.CheckConstraint("(kind = 'hire') = (charge_id IS NOT NULL)", name='ck_invoice_line_hire_has_charge'),
        sa.CheckConstraint(f"kind IN ({kinds})", name='ck_invoice_line_kind_known'),
        sa.CheckConstraint('amount >= 0 AND full_fee >= amount', name='ck_invoice_line_amount_range'),
        sa.ForeignKeyConstraint(['charge_id'], ['loan_charge.id'], name='fk_invoice_line_charge_id_loan_charge'),
        sa.ForeignKeyConstraint(['invoice_id'], ['ledger_entry.id'], name='fk_invoice_line_invoice_id_ledger_entry'),
        sa.ForeignKeyConstraint(['loan_id'], ['loan.id'], name='fk_invoice_line_loan_id_loan'),
        sa.PrimaryKeyConstraint('id', name='pk_invoice_line'),
        sa.UniqueConstraint('charge_id', name='uq_invoice_line_charge_id'),
        sa.Index('ix_invoice_line_invoice_id', 'invoice_id'),
        sa.Index('ix_invoice_line_loan_id', 'loan_id'),
    )


def _line_kinds(kinds: str) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        # The rebuild drops the table's append-only triggers: made again after it.
        for statement in _drop_append_only("sqlite", ["invoice_line"]):
            op.execute(statement)
        with op.batch_alter_table('invoice_line', copy_from=_invoice_line(kinds), recreate="always"):
            pass
        for statement in _append_only("sqlite", ["invoice_line"]):
            op.execute(statement)
    else:
        op.drop_constraint(op.f('ck_invoice_line_kind_known'), 'invoice_line', type_='check')
        op.create_check_constraint(op.f('ck_invoice_line_kind_known'), 'invoice_line', f"kind IN ({kinds})")


def upgrade():
    with op.batch_alter_table('payer_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pays_by_instalments', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    _line_kinds("'hire', 'loss', 'deposit', 'set_hire'")
    op.create_table('invoice_instalment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_invoice_instalment_amount_positive')),
    sa.CheckConstraint('number >= 1', name=op.f('ck_invoice_instalment_number_positive')),
    sa.ForeignKeyConstraint(['invoice_id'], ['ledger_entry.id'], name=op.f('fk_invoice_instalment_invoice_id_ledger_entry')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_instalment')),
    sa.UniqueConstraint('invoice_id', 'number', name=op.f('uq_invoice_instalment_invoice_id'))
    )
    op.create_table('loan_deposit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('line_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_loan_deposit_amount_positive')),
    sa.ForeignKeyConstraint(['account_id'], ['payer_account.id'], name=op.f('fk_loan_deposit_account_id_payer_account')),
    sa.ForeignKeyConstraint(['line_id'], ['invoice_line.id'], name=op.f('fk_loan_deposit_line_id_invoice_line')),
    sa.ForeignKeyConstraint(['loan_id'], ['loan.id'], name=op.f('fk_loan_deposit_loan_id_loan')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_deposit')),
    sa.UniqueConstraint('line_id', name=op.f('uq_loan_deposit_line_id')),
    sa.UniqueConstraint('loan_id', name=op.f('uq_loan_deposit_loan_id'))
    )
    with op.batch_alter_table('loan_deposit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loan_deposit_account_id'), ['account_id'], unique=False)
    op.create_table('deposit_release',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deposit_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('credit_note_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('released_on', sa.Date(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(outcome = 'refunded') = (credit_note_id IS NOT NULL)", name=op.f('ck_deposit_release_refund_has_credit_note')),
    sa.CheckConstraint("outcome IN ('refunded', 'kept')", name=op.f('ck_deposit_release_outcome_known')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_deposit_release_created_by_id_user_account')),
    sa.ForeignKeyConstraint(['credit_note_id'], ['ledger_entry.id'], name=op.f('fk_deposit_release_credit_note_id_ledger_entry')),
    sa.ForeignKeyConstraint(['deposit_id'], ['loan_deposit.id'], name=op.f('fk_deposit_release_deposit_id_loan_deposit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deposit_release')),
    sa.UniqueConstraint('credit_note_id', name=op.f('uq_deposit_release_credit_note_id')),
    sa.UniqueConstraint('deposit_id', name=op.f('uq_deposit_release_deposit_id'))
    )
    op.create_table('set_hire_fee',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('set_id', sa.Integer(), nullable=False),
    sa.Column('basis', sa.String(length=10), nullable=False),
    sa.Column('fee', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("basis IN ('set', 'instrument')", name=op.f('ck_set_hire_fee_basis_known')),
    sa.CheckConstraint('fee >= 0', name=op.f('ck_set_hire_fee_fee_not_negative')),
    sa.ForeignKeyConstraint(['set_id'], ['classroom_set.id'], name=op.f('fk_set_hire_fee_set_id_classroom_set')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_set_hire_fee')),
    sa.UniqueConstraint('set_id', name=op.f('uq_set_hire_fee_set_id'))
    )
    op.create_table('set_hire_charge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('set_loan_id', sa.Integer(), nullable=False),
    sa.Column('term_id', sa.Integer(), nullable=False),
    sa.Column('line_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_set_hire_charge_amount_positive')),
    sa.ForeignKeyConstraint(['line_id'], ['invoice_line.id'], name=op.f('fk_set_hire_charge_line_id_invoice_line')),
    sa.ForeignKeyConstraint(['set_loan_id'], ['set_loan.id'], name=op.f('fk_set_hire_charge_set_loan_id_set_loan')),
    sa.ForeignKeyConstraint(['term_id'], ['academic_term.id'], name=op.f('fk_set_hire_charge_term_id_academic_term')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_set_hire_charge')),
    sa.UniqueConstraint('line_id', name=op.f('uq_set_hire_charge_line_id')),
    sa.UniqueConstraint('set_loan_id', 'term_id', name=op.f('uq_set_hire_charge_set_loan_id'))
    )
    with op.batch_alter_table('set_hire_charge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_set_hire_charge_term_id'), ['term_id'], unique=False)
    for statement in _append_only(op.get_bind().dialect.name, APPEND_ONLY):
        op.execute(statement)


def downgrade():
    for statement in _drop_append_only(op.get_bind().dialect.name, APPEND_ONLY):
        op.execute(statement)
    with op.batch_alter_table('set_hire_charge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_set_hire_charge_term_id'))
    op.drop_table('set_hire_charge')
    op.drop_table('set_hire_fee')
    op.drop_table('deposit_release')
    with op.batch_alter_table('loan_deposit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loan_deposit_account_id'))
    op.drop_table('loan_deposit')
    op.drop_table('invoice_instalment')
    _line_kinds("'hire', 'loss'")
    with op.batch_alter_table('payer_account', schema=None) as batch_op:
        batch_op.drop_column('pays_by_instalments')
