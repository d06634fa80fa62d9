"""Bookings of classroom sets for coming terms, and calendar feeds

On PostgreSQL an exclusion constraint (btree_gist) keeps two bookings that hold a set (allocated
or delivered) from overlapping in time: the range is [starts_on, ends_on + 1), ends_on being the
last day. SQLite has no exclusion constraints: there the service's check is the rule.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 19:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('calendar_feed',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=True),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['school_id'], ['school.id'], name=op.f('fk_calendar_feed_school_id_school')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_feed')),
    sa.UniqueConstraint('key', name=op.f('uq_calendar_feed_key')),
    sa.UniqueConstraint('token', name=op.f('uq_calendar_feed_token'))
    )
    op.create_table('booking',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.Column('type_id', sa.Integer(), nullable=False),
    sa.Column('pupils', sa.Integer(), nullable=False),
    sa.Column('sizes', sa.String(length=200), nullable=False),
    sa.Column('teacher', sa.String(length=200), nullable=False),
    sa.Column('period', sa.String(length=80), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('preferred_week', sa.Date(), nullable=True),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('requested', 'allocated', 'declined', 'delivered', 'collected', 'cancelled', name='bookingstatus', native_enum=False, length=16), nullable=False),
    sa.Column('decline_reason', sa.String(length=500), nullable=False),
    sa.Column('set_id', sa.Integer(), nullable=True),
    sa.Column('delivery_on', sa.Date(), nullable=True),
    sa.Column('collection_on', sa.Date(), nullable=True),
    sa.Column('delivered_on', sa.Date(), nullable=True),
    sa.Column('collected_on', sa.Date(), nullable=True),
    sa.Column('set_loan_id', sa.Integer(), nullable=True),
    sa.Column('collection_reminded_on', sa.Date(), nullable=True),
    sa.Column('rolled_from_id', sa.Integer(), nullable=True),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status <> 'declined' OR decline_reason <> ''", name=op.f('ck_booking_declined_has_reason')),
    sa.CheckConstraint("status IN ('requested', 'allocated', 'declined', 'delivered', 'collected', 'cancelled')", name=op.f('ck_booking_status_known')),
    sa.CheckConstraint("status NOT IN ('allocated', 'delivered', 'collected') OR set_id IS NOT NULL", name=op.f('ck_booking_allocated_has_set')),
    sa.CheckConstraint('collected_on IS NULL OR (delivered_on IS NOT NULL AND collected_on >= delivered_on)', name=op.f('ck_booking_collected_after_delivered')),
    sa.CheckConstraint('collection_on IS NULL OR delivery_on IS NULL OR collection_on >= delivery_on', name=op.f('ck_booking_collection_after_delivery')),
    sa.CheckConstraint('ends_on >= starts_on', name=op.f('ck_booking_ends_after_start')),
    sa.CheckConstraint('pupils > 0', name=op.f('ck_booking_has_pupils')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['user_account.id'], name=op.f('fk_booking_requested_by_id_user_account')),
    sa.ForeignKeyConstraint(['rolled_from_id'], ['booking.id'], name=op.f('fk_booking_rolled_from_id_booking')),
    sa.ForeignKeyConstraint(['school_id'], ['school.id'], name=op.f('fk_booking_school_id_school')),
    sa.ForeignKeyConstraint(['set_id'], ['classroom_set.id'], name=op.f('fk_booking_set_id_classroom_set')),
    sa.ForeignKeyConstraint(['set_loan_id'], ['set_loan.id'], name=op.f('fk_booking_set_loan_id_set_loan')),
    sa.ForeignKeyConstraint(['type_id'], ['instrument_type.id'], name=op.f('fk_booking_type_id_instrument_type')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking')),
    sa.UniqueConstraint('rolled_from_id', name=op.f('uq_booking_rolled_from_id')),
    sa.UniqueConstraint('set_loan_id', name=op.f('uq_booking_set_loan_id'))
    )
    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_booking_school_id'), ['school_id'], unique=False)
        batch_op.create_index('ix_booking_set_dates', ['set_id', 'starts_on'], unique=False)
        batch_op.create_index('ix_booking_status_collection', ['status', 'collection_on'], unique=False)
        batch_op.create_index('ix_booking_status_delivery', ['status', 'delivery_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_booking_type_id'), ['type_id'], unique=False)

    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS btree_gist')
        op.execute("ALTER TABLE booking ADD CONSTRAINT ex_booking_set_dates EXCLUDE USING gist "
                   "(set_id WITH =, daterange(starts_on, ends_on + 1, '[)') WITH &&) "
                   "WHERE (status IN ('allocated', 'delivered'))")


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE booking DROP CONSTRAINT ex_booking_set_dates')
    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_booking_type_id'))
        batch_op.drop_index('ix_booking_status_delivery')
        batch_op.drop_index('ix_booking_status_collection')
        batch_op.drop_index('ix_booking_set_dates')
        batch_op.drop_index(batch_op.f('ix_booking_school_id'))

    op.drop_table('booking')
    op.drop_table('calendar_feed')
