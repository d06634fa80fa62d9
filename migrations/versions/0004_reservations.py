"""Parents and reservations: parent sign-ups, email links, stated remission, requests, reservations

Parent accounts (whether the email is confirmed); single-use, expiring email links (only their
SHA-256 kept); the remission a parent states until staff verify it; parents' requests to return
or exchange; reservations of a type and size, with partial unique indexes so that an instrument
is held for at most one reservation and a child has one open reservation per instrument type.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 20:34:03.734634

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('account_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("purpose IN ('confirm', 'reset')", name=op.f('ck_account_token_purpose_known')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_account_token_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_token')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_account_token_token_sha256'))
    )
    with op.batch_alter_table('account_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_token_user_id'), ['user_id'], unique=False)

    op.create_table('parent_account',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('email_confirmed_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_parent_account_user_id_user_account')),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_parent_account'))
    )
    op.create_table('remission_claim',
    sa.Column('pupil_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('stated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("category IN ('free_school_meals', 'pupil_premium', 'looked_after', 'previously_looked_after', 'benefits')", name=op.f('ck_remission_claim_category_known')),
    sa.ForeignKeyConstraint(['pupil_id'], ['pupil.id'], name=op.f('fk_remission_claim_pupil_id_pupil'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pupil_id', name=op.f('pk_remission_claim'))
    )
    op.create_table('parent_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('handled_at', sa.DateTime(), nullable=True),
    sa.Column('handled_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind IN ('return', 'next_size')", name=op.f('ck_parent_request_kind_known')),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], name=op.f('fk_parent_request_family_id_family')),
    sa.ForeignKeyConstraint(['handled_by_id'], ['user_account.id'], name=op.f('fk_parent_request_handled_by_id_user_account')),
    sa.ForeignKeyConstraint(['loan_id'], ['loan.id'], name=op.f('fk_parent_request_loan_id_loan')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_parent_request'))
    )
    with op.batch_alter_table('parent_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_parent_request_family_id'), ['family_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_parent_request_loan_id'), ['loan_id'], unique=False)

    op.create_table('reservation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pupil_id', sa.Integer(), nullable=False),
    sa.Column('type_id', sa.Integer(), nullable=False),
    sa.Column('size', sa.String(length=16), nullable=False),
    sa.Column('preferred_start_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('instrument_id', sa.Integer(), nullable=True),
    sa.Column('collect_by', sa.Date(), nullable=True),
    sa.Column('loan_id', sa.Integer(), nullable=True),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('held_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status <> 'collected' OR loan_id IS NOT NULL", name=op.f('ck_reservation_collected_has_loan')),
    sa.CheckConstraint("status <> 'ready' OR collect_by IS NOT NULL", name=op.f('ck_reservation_ready_has_deadline')),
    sa.CheckConstraint("status <> 'waiting' OR instrument_id IS NULL", name=op.f('ck_reservation_waiting_holds_nothing')),
    sa.CheckConstraint("status IN ('waiting', 'held', 'ready', 'collected', 'lapsed', 'cancelled')", name=op.f('ck_reservation_status_known')),
    sa.CheckConstraint("status NOT IN ('held', 'ready', 'collected') OR instrument_id IS NOT NULL", name=op.f('ck_reservation_held_has_instrument')),
    sa.ForeignKeyConstraint(['instrument_id'], ['instrument.id'], name=op.f('fk_reservation_instrument_id_instrument')),
    sa.ForeignKeyConstraint(['loan_id'], ['loan.id'], name=op.f('fk_reservation_loan_id_loan')),
    sa.ForeignKeyConstraint(['pupil_id'], ['pupil.id'], name=op.f('fk_reservation_pupil_id_pupil')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['user_account.id'], name=op.f('fk_reservation_requested_by_id_user_account')),
    sa.ForeignKeyConstraint(['type_id'], ['instrument_type.id'], name=op.f('fk_reservation_type_id_instrument_type')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservation')),
    sa.UniqueConstraint('loan_id', name=op.f('uq_reservation_loan_id'))
    )
    with op.batch_alter_table('reservation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reservation_instrument_id'), ['instrument_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reservation_pupil_id'), ['pupil_id'], unique=False)
        batch_op.create_index('ix_reservation_type_size_status', ['type_id', 'size', 'status', 'created_at'], unique=False)
        batch_op.create_index('uq_reservation_active_per_pupil_type', ['pupil_id', 'type_id'], unique=True, sqlite_where=sa.text("status IN ('waiting', 'held', 'ready')"), postgresql_where=sa.text("status IN ('waiting', 'held', 'ready')"))
        batch_op.create_index('uq_reservation_holding_instrument', ['instrument_id'], unique=True, sqlite_where=sa.text("status IN ('held', 'ready')"), postgresql_where=sa.text("status IN ('held', 'ready')"))



def downgrade():
    with op.batch_alter_table('reservation', schema=None) as batch_op:
        batch_op.drop_index('uq_reservation_holding_instrument', sqlite_where=sa.text("status IN ('held', 'ready')"), postgresql_where=sa.text("status IN ('held', 'ready')"))
        batch_op.drop_index('uq_reservation_active_per_pupil_type', sqlite_where=sa.text("status IN ('waiting', 'held', 'ready')"), postgresql_where=sa.text("status IN ('waiting', 'held', 'ready')"))
        batch_op.drop_index('ix_reservation_type_size_status')
        batch_op.drop_index(batch_op.f('ix_reservation_pupil_id'))
        batch_op.drop_index(batch_op.f('ix_reservation_instrument_id'))

    op.drop_table('reservation')
    with op.batch_alter_table('parent_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_parent_request_loan_id'))
        batch_op.drop_index(batch_op.f('ix_parent_request_family_id'))

    op.drop_table('parent_request')
    op.drop_table('remission_claim')
    op.drop_table('parent_account')
    with op.batch_alter_table('account_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_token_user_id'))

    op.drop_table('account_token')
