"""Servicing and stocktakes

Servicing shares the repair record (a Repair of kind "service", under a service plan), so one
history holds both; an instrument being serviced has its own status, "in_service", which the
instrument status CHECK takes. Service plans per instrument type; stocktakes and their items; each
instrument's last-counted date.

On SQLite the instrument and repair tables are rebuilt (batch mode), as in 0011.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 19:50:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

OLD_STATUSES = ("status IN ('available', 'reserved', 'awaiting_signing', 'on_loan', 'in_repair', 'missing', "
                "'written_off')")
NEW_STATUSES = ("status IN ('available', 'reserved', 'awaiting_signing', 'on_loan', 'in_repair', 'in_service', "
                "'missing', 'written_off')")


def upgrade():
    op.create_table('service_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('type_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('schedule', sa.Enum('every_summer', 'every_months', 'at_return', name='schedule', native_enum=False, create_constraint=False, length=16), nullable=False),
    sa.Column('interval_months', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(schedule = 'every_months') = (interval_months IS NOT NULL)", name=op.f('ck_service_plan_interval_for_months')),
    sa.CheckConstraint('interval_months IS NULL OR interval_months BETWEEN 1 AND 120', name=op.f('ck_service_plan_interval_range')),
    sa.CheckConstraint("schedule IN ('every_summer', 'every_months', 'at_return')", name=op.f('ck_service_plan_schedule_known')),
    sa.ForeignKeyConstraint(['type_id'], ['instrument_type.id'], name=op.f('fk_service_plan_type_id_instrument_type')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_plan')),
    sa.UniqueConstraint('type_id', 'name', name=op.f('uq_service_plan_type_id'))
    )
    op.create_index(op.f('ix_service_plan_type_id'), 'service_plan', ['type_id'], unique=False)

    op.create_table('stocktake',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('place', sa.Enum('store', 'shelf', 'school', name='place', native_enum=False, create_constraint=False, length=16), nullable=False),
    sa.Column('location', sa.String(length=120), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=True),
    sa.Column('started_by_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_by_id', sa.Integer(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("(place = 'school') = (school_id IS NOT NULL)", name=op.f('ck_stocktake_school_for_school')),
    sa.CheckConstraint("(place = 'shelf') = (location <> '')", name=op.f('ck_stocktake_location_for_shelf')),
    sa.CheckConstraint('finished_at IS NULL OR finished_at >= started_at', name=op.f('ck_stocktake_finished_after_start')),
    sa.CheckConstraint("place IN ('store', 'shelf', 'school')", name=op.f('ck_stocktake_place_known')),
    sa.ForeignKeyConstraint(['finished_by_id'], ['user_account.id'], name=op.f('fk_stocktake_finished_by_id_user_account')),
    sa.ForeignKeyConstraint(['school_id'], ['school.id'], name=op.f('fk_stocktake_school_id_school')),
    sa.ForeignKeyConstraint(['started_by_id'], ['user_account.id'], name=op.f('fk_stocktake_started_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stocktake'))
    )
    op.create_index(op.f('ix_stocktake_school_id'), 'stocktake', ['school_id'], unique=False)

    op.create_table('stocktake_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stocktake_id', sa.Integer(), nullable=False),
    sa.Column('instrument_id', sa.Integer(), nullable=False),
    sa.Column('expected', sa.Boolean(), nullable=False),
    sa.Column('scanned_at', sa.DateTime(), nullable=True),
    sa.Column('scanned_by_id', sa.Integer(), nullable=True),
    sa.Column('resolution', sa.Enum('moved_here', 'marked_missing', 'marked_found', name='resolution', native_enum=False, create_constraint=False, length=16), nullable=True),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('resolved_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('expected OR scanned_at IS NOT NULL', name=op.f('ck_stocktake_item_expected_or_scanned')),
    sa.CheckConstraint("resolution IN ('moved_here', 'marked_missing', 'marked_found')", name=op.f('ck_stocktake_item_resolution_known')),
    sa.ForeignKeyConstraint(['instrument_id'], ['instrument.id'], name=op.f('fk_stocktake_item_instrument_id_instrument')),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['user_account.id'], name=op.f('fk_stocktake_item_resolved_by_id_user_account')),
    sa.ForeignKeyConstraint(['scanned_by_id'], ['user_account.id'], name=op.f('fk_stocktake_item_scanned_by_id_user_account')),
    sa.ForeignKeyConstraint(['stocktake_id'], ['stocktake.id'], name=op.f('fk_stocktake_item_stocktake_id_stocktake')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stocktake_item')),
    sa.UniqueConstraint('stocktake_id', 'instrument_id', name=op.f('uq_stocktake_item_stocktake_id'))
    )
    op.create_index('ix_stocktake_item_instrument', 'stocktake_item', ['instrument_id'], unique=False)

    with op.batch_alter_table('instrument', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_instrument_status_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_instrument_status_known'), NEW_STATUSES)

    op.create_table('instrument_count',
    sa.Column('instrument_id', sa.Integer(), nullable=False),
    sa.Column('last_counted_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['instrument_id'], ['instrument.id'], name=op.f('fk_instrument_count_instrument_id_instrument')),
    sa.PrimaryKeyConstraint('instrument_id', name=op.f('pk_instrument_count'))
    )

    with op.batch_alter_table('repair', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.Enum('repair', 'service', name='repairkind', native_enum=False, create_constraint=False, length=16), server_default='repair', nullable=False))
        batch_op.add_column(sa.Column('plan_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_repair_plan_id'), ['plan_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_repair_plan_id_service_plan'), 'service_plan', ['plan_id'], ['id'], ondelete='SET NULL')
        batch_op.create_check_constraint(op.f('ck_repair_kind_known'), "kind IN ('repair', 'service')")


def downgrade():
    op.execute(sa.text("UPDATE instrument SET status = 'in_repair' WHERE status = 'in_service'"))
    with op.batch_alter_table('repair', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_repair_kind_known'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_repair_plan_id_service_plan'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_repair_plan_id'))
        batch_op.drop_column('plan_id')
        batch_op.drop_column('kind')
    with op.batch_alter_table('instrument', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_instrument_status_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_instrument_status_known'), OLD_STATUSES)
    op.drop_table('instrument_count')
    op.drop_index('ix_stocktake_item_instrument', table_name='stocktake_item')
    op.drop_table('stocktake_item')
    op.drop_index(op.f('ix_stocktake_school_id'), table_name='stocktake')
    op.drop_table('stocktake')
    op.drop_index(op.f('ix_service_plan_type_id'), table_name='service_plan')
    op.drop_table('service_plan')
