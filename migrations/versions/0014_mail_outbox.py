"""The outbox delivers every email: each message's state, tries, lease and error; notices point at their mail

Mail was sent from inside the request (or kept here only when no mail server was set). Now every
message is written here in the transaction of its change and a sender delivers it after the commit.
Messages already here were kept by a hub without a mail server and never sent: they are marked
failed with that reason, so that staff can see them and send any again from the Mail page.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 16:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

KEPT = "Kept in the development outbox while no mail server was set; never sent."


def upgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=10), nullable=False, server_default='failed'))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(), nullable=False,
                                      server_default=sa.func.current_timestamp()))
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('error', sa.Text(), nullable=False, server_default=KEPT))
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.alter_column('status', server_default=None)
        batch_op.alter_column('attempts', server_default=None)
        batch_op.alter_column('next_attempt_at', server_default=None)
        batch_op.alter_column('error', server_default=None)
        batch_op.create_check_constraint('status_known', "status IN ('queued', 'sent', 'failed')")
        batch_op.create_check_constraint('attempts_not_negative', 'attempts >= 0')
        batch_op.create_check_constraint('sent_when_sent', "(status = 'sent') = (sent_at IS NOT NULL)")
        batch_op.create_index('ix_outbox_message_due', ['status', 'next_attempt_at'], unique=False)

    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mail_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_notice_mail_id_outbox_message'), 'outbox_message',
                                    ['mail_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_notice_mail_id'), ['mail_id'], unique=False)


def downgrade():
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_mail_id'))
        batch_op.drop_constraint(batch_op.f('fk_notice_mail_id_outbox_message'), type_='foreignkey')
        batch_op.drop_column('mail_id')
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_message_due')
        batch_op.drop_constraint('sent_when_sent', type_='check')
        batch_op.drop_constraint('attempts_not_negative', type_='check')
        batch_op.drop_constraint('status_known', type_='check')
        for column in ('error', 'sent_at', 'claimed_by', 'claimed_until', 'next_attempt_at', 'attempts', 'status'):
            batch_op.drop_column(column)
