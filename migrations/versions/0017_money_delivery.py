"""Invoices reach their payers (by email or the print file), and unpaid invoices get staged reminders

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 19:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

ONE_SUBJECT = ("(CASE WHEN loan_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN set_loan_id IS NULL THEN 0 ELSE 1 END)"
               " + (CASE WHEN invoice_id IS NULL THEN 0 ELSE 1 END) = 1")


def upgrade():
    op.create_table('invoice_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('term_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('recipient_email', sa.String(length=254), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('mail_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("channel IN ('email', 'post')", name=op.f('ck_invoice_delivery_channel_known')),
    sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed')", name=op.f('ck_invoice_delivery_status_known')),
    sa.CheckConstraint("(status = 'sent') = (sent_at IS NOT NULL)", name=op.f('ck_invoice_delivery_sent_when_sent')),
    sa.ForeignKeyConstraint(['invoice_id'], ['ledger_entry.id'], name=op.f('fk_invoice_delivery_invoice_id_ledger_entry')),
    sa.ForeignKeyConstraint(['mail_id'], ['outbox_message.id'], name=op.f('fk_invoice_delivery_mail_id_outbox_message')),
    sa.ForeignKeyConstraint(['term_id'], ['academic_term.id'], name=op.f('fk_invoice_delivery_term_id_academic_term')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_delivery')),
    sa.UniqueConstraint('invoice_id', name=op.f('uq_invoice_delivery_invoice_id'))
    )
    with op.batch_alter_table('invoice_delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_delivery_mail_id'), ['mail_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoice_delivery_term_id'), ['term_id'], unique=False)

    with op.batch_alter_table('notice_stage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=8), nullable=False, server_default='loan'))
        batch_op.drop_constraint('uq_notice_stage_days_overdue', type_='unique')
        batch_op.create_unique_constraint('uq_notice_stage_kind_days', ['kind', 'days_overdue'])
        batch_op.create_check_constraint(op.f('ck_notice_stage_kind_known'), "kind IN ('loan', 'invoice')")
        batch_op.create_check_constraint(op.f('ck_notice_stage_invoice_letters'), "kind <> 'invoice' OR letter <> 'replacement'")
    with op.batch_alter_table('notice_stage', schema=None) as batch_op:
        batch_op.alter_column('kind', server_default=None)

    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invoice_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_notice_invoice_id_ledger_entry'), 'ledger_entry', ['invoice_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_notice_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_unique_constraint('uq_notice_invoice_stage', ['invoice_id', 'stage_id'])
        batch_op.drop_constraint(op.f('ck_notice_one_subject'), type_='check')
        batch_op.create_check_constraint(op.f('ck_notice_one_subject'), ONE_SUBJECT)


def downgrade():
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_notice_one_subject'), type_='check')
        batch_op.create_check_constraint(op.f('ck_notice_one_subject'), '(loan_id IS NULL) <> (set_loan_id IS NULL)')
        batch_op.drop_constraint('uq_notice_invoice_stage', type_='unique')
        batch_op.drop_index(batch_op.f('ix_notice_invoice_id'))
        batch_op.drop_constraint(batch_op.f('fk_notice_invoice_id_ledger_entry'), type_='foreignkey')
        batch_op.drop_column('invoice_id')
    with op.batch_alter_table('notice_stage', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_notice_stage_invoice_letters'), type_='check')
        batch_op.drop_constraint(op.f('ck_notice_stage_kind_known'), type_='check')
        batch_op.drop_constraint('uq_notice_stage_kind_days', type_='unique')
        batch_op.create_unique_constraint('uq_notice_stage_days_overdue', ['days_overdue'])
        batch_op.drop_column('kind')
    with op.batch_alter_table('invoice_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_delivery_term_id'))
        batch_op.drop_index(batch_op.f('ix_invoice_delivery_mail_id'))
    op.drop_table('invoice_delivery')
