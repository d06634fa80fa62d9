"""An instrument held for a loan's signed agreement has its own status, apart from a reservation's hold

"reserved" meant two things: held for a child's reservation, and held for a loan pending its signed
agreement (REQUIRE_SIGNED_AGREEMENT). The second becomes "awaiting_signing" (shown as "Held for
signed agreement"): the instrument status CHECK takes the new value, and the instruments a pending
loan holds move to it. The downgrade moves them back to "reserved" and restores the old CHECK.

On SQLite the instrument table is rebuilt (batch mode), as in 0006.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 16:20:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('available', 'reserved', 'on_loan', 'in_repair', 'missing', 'written_off')"
NEW_STATUSES = ("status IN ('available', 'reserved', 'awaiting_signing', 'on_loan', 'in_repair', 'missing', "
                "'written_off')")
HELD_BY_PENDING_LOAN = "id IN (SELECT instrument_id FROM loan WHERE status = 'pending')"


def _replace_status_check(statuses: str) -> None:
    with op.batch_alter_table('instrument', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_instrument_status_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_instrument_status_known'), statuses)


def upgrade():
    _replace_status_check(NEW_STATUSES)
    op.execute(sa.text(f"UPDATE instrument SET status = 'awaiting_signing' "
                       f"WHERE status = 'reserved' AND {HELD_BY_PENDING_LOAN}"))


def downgrade():
    op.execute(sa.text("UPDATE instrument SET status = 'reserved' WHERE status = 'awaiting_signing'"))
    _replace_status_check(OLD_STATUSES)
