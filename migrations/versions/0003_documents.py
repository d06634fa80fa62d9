"""Documents: terms and conditions, agreements, overdue notices, development outbox

Terms versions; agreements kept as the PDF bytes that were signed (with their SHA-256);
the admin's notice stages and each loan's notice history (one notice per loan and stage);
the outbox that keeps mail when no MAIL_SERVER is set.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 20:15:41.692878

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('notice_stage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('days_overdue', sa.Integer(), nullable=False),
    sa.Column('letter', sa.String(length=16), nullable=False),
    sa.Column('return_within_days', sa.Integer(), nullable=True),
    sa.CheckConstraint("letter IN ('reminder', 'final', 'replacement')", name=op.f('ck_notice_stage_letter_known')),
    sa.CheckConstraint('days_overdue > 0', name=op.f('ck_notice_stage_days_positive')),
    sa.CheckConstraint('return_within_days IS NULL OR return_within_days > 0', name=op.f('ck_notice_stage_return_within_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_stage')),
    sa.UniqueConstraint('days_overdue', name=op.f('uq_notice_stage_days_overdue'))
    )
    op.create_table('outbox_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('recipients', sa.String(length=1000), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('message', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_message'))
    )
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_message_created_at'), ['created_at'], unique=False)

    op.create_table('terms_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('version > 0', name=op.f('ck_terms_version_version_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_terms_version_created_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_terms_version')),
    sa.UniqueConstraint('version', name=op.f('uq_terms_version_version'))
    )
    op.create_table('agreement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=False),
    sa.Column('terms_version_id', sa.Integer(), nullable=False),
    sa.Column('pdf', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('signed_at', sa.DateTime(), nullable=True),
    sa.Column('signed_name', sa.String(length=200), nullable=False),
    sa.Column('signature_method', sa.String(length=8), nullable=True),
    sa.Column('signed_by_id', sa.Integer(), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('countersigned_at', sa.DateTime(), nullable=True),
    sa.Column('countersigned_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("signature_method <> 'online' OR signed_by_id IS NOT NULL", name=op.f('ck_agreement_online_has_user')),
    sa.CheckConstraint("signature_method IS NULL OR signature_method IN ('online', 'desk')", name=op.f('ck_agreement_signature_method_known')),
    sa.CheckConstraint("signed_at IS NULL OR signed_name <> ''", name=op.f('ck_agreement_signed_with_name')),
    sa.CheckConstraint('(signed_at IS NULL) = (signature_method IS NULL)', name=op.f('ck_agreement_signed_with_method')),
    sa.CheckConstraint('countersigned_at IS NULL OR signed_at IS NOT NULL', name=op.f('ck_agreement_countersigned_after_signing')),
    sa.CheckConstraint('length(sha256) = 64', name=op.f('ck_agreement_sha256_length')),
    sa.ForeignKeyConstraint(['countersigned_by_id'], ['user_account.id'], name=op.f('fk_agreement_countersigned_by_id_user_account')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_agreement_created_by_id_user_account')),
    sa.ForeignKeyConstraint(['loan_id'], ['loan.id'], name=op.f('fk_agreement_loan_id_loan')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user_account.id'], name=op.f('fk_agreement_recorded_by_id_user_account')),
    sa.ForeignKeyConstraint(['signed_by_id'], ['user_account.id'], name=op.f('fk_agreement_signed_by_id_user_account')),
    sa.ForeignKeyConstraint(['terms_version_id'], ['terms_version.id'], name=op.f('fk_agreement_terms_version_id_terms_version')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreement'))
    )
    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agreement_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_agreement_terms_version_id'), ['terms_version_id'], unique=False)

    op.create_table('notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=True),
    sa.Column('set_loan_id', sa.Integer(), nullable=True),
    sa.Column('stage_id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('days_overdue', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('recipient_name', sa.String(length=200), nullable=False),
    sa.Column('recipient_email', sa.String(length=254), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('pdf', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("(status = 'sent') = (sent_at IS NOT NULL)", name=op.f('ck_notice_sent_when_sent')),
    sa.CheckConstraint("channel IN ('email', 'post')", name=op.f('ck_notice_channel_known')),
    sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed')", name=op.f('ck_notice_status_known')),
    sa.CheckConstraint('(loan_id IS NULL) <> (set_loan_id IS NULL)', name=op.f('ck_notice_one_subject')),
    sa.ForeignKeyConstraint(['loan_id'], ['loan.id'], name=op.f('fk_notice_loan_id_loan')),
    sa.ForeignKeyConstraint(['set_loan_id'], ['set_loan.id'], name=op.f('fk_notice_set_loan_id_set_loan')),
    sa.ForeignKeyConstraint(['stage_id'], ['notice_stage.id'], name=op.f('fk_notice_stage_id_notice_stage')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice')),
    sa.UniqueConstraint('loan_id', 'stage_id', name='uq_notice_loan_stage'),
    sa.UniqueConstraint('set_loan_id', 'stage_id', name='uq_notice_set_loan_stage')
    )
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notice_as_of'), ['as_of'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_set_loan_id'), ['set_loan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_stage_id'), ['stage_id'], unique=False)



def downgrade():
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_stage_id'))
        batch_op.drop_index(batch_op.f('ix_notice_set_loan_id'))
        batch_op.drop_index(batch_op.f('ix_notice_loan_id'))
        batch_op.drop_index(batch_op.f('ix_notice_as_of'))

    op.drop_table('notice')
    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agreement_terms_version_id'))
        batch_op.drop_index(batch_op.f('ix_agreement_loan_id'))

    op.drop_table('agreement')
    op.drop_table('terms_version')
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_message_created_at'))

    op.drop_table('outbox_message')
    op.drop_table('notice_stage')
