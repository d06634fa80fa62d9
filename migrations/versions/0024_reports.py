"""Reports: what funders ask for. The circumstances of a pupil at issue are kept on the loan, a set
loan's class size and year group, an instrument's disposal, and saved report snapshots

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 19:55:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('loan', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pupil_year_group', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('pupil_send', sa.Boolean(), nullable=False, server_default=sa.false()))
    # Loans already made keep the circumstances the pupil has now: the nearest there is.
    op.execute("UPDATE loan SET pupil_year_group = (SELECT year_group FROM pupil WHERE pupil.id = loan.pupil_id), "
               "pupil_send = COALESCE((SELECT send FROM pupil WHERE pupil.id = loan.pupil_id), pupil_send) "
               "WHERE pupil_id IS NOT NULL")
    op.create_index('ix_loan_started_on', 'loan', ['started_on'])
    op.create_index('ix_loan_closed_on', 'loan', ['closed_on'])
    with op.batch_alter_table('set_loan', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pupils', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('year_group', sa.Integer(), nullable=True))
        batch_op.create_check_constraint(op.f('ck_set_loan_pupils_positive'), 'pupils IS NULL OR pupils > 0')
        batch_op.create_check_constraint(op.f('ck_set_loan_year_group_range'), 'year_group IS NULL OR year_group BETWEEN 0 AND 13')
    with op.batch_alter_table('instrument', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disposed_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('disposal_proceeds', sa.Numeric(precision=10, scale=2), nullable=True))
        batch_op.create_check_constraint(op.f('ck_instrument_disposal_proceeds_positive'),
                                         'disposal_proceeds IS NULL OR disposal_proceeds >= 0')
    op.create_table('report_snapshot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('workbook', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('data_return', 'asset_register')", name=op.f('ck_report_snapshot_kind_known')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_report_snapshot_created_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_snapshot'))
    )


def downgrade():
    op.drop_table('report_snapshot')
    with op.batch_alter_table('instrument', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_instrument_disposal_proceeds_positive'), type_='check')
        batch_op.drop_column('disposal_proceeds')
        batch_op.drop_column('disposed_on')
    with op.batch_alter_table('set_loan', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_set_loan_year_group_range'), type_='check')
        batch_op.drop_constraint(op.f('ck_set_loan_pupils_positive'), type_='check')
        batch_op.drop_column('year_group')
        batch_op.drop_column('pupils')
    op.drop_index('ix_loan_closed_on', 'loan')
    op.drop_index('ix_loan_started_on', 'loan')
    with op.batch_alter_table('loan', schema=None) as batch_op:
        batch_op.drop_column('pupil_send')
        batch_op.drop_column('pupil_year_group')
