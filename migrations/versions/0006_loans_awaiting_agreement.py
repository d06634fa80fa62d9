"""Loans awaiting a signed agreement: the pending and cancelled loan statuses

With REQUIRE_SIGNED_AGREEMENT on, an individual loan is made "pending" at check-out: the
instrument is held for the borrower until the agreement is signed and staff issue it, or the
loan is "cancelled" before issue. A pending loan holds its instrument like an open one, so
closed_on stays empty for both; the partial unique index on instrument_id WHERE closed_on IS
NULL (one loan holding each instrument) therefore covers pending loans unchanged. Only two
check constraints change: the statuses known, and which statuses go with an empty closed_on.

On SQLite the loan table is rebuilt (batch mode); migrations/env.py turns SQLite's foreign
key enforcement off for the rebuild, so the tables that refer to loans keep their rows, and
checks every foreign key before committing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:12:40.118204

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('open', 'returned', 'exchanged', 'lost')"
NEW_STATUSES = "status IN ('open', 'returned', 'exchanged', 'lost', 'pending', 'cancelled')"
OLD_OPEN_UNTIL_CLOSED = "(status = 'open') = (closed_on IS NULL)"
NEW_OPEN_UNTIL_CLOSED = "(status IN ('open', 'pending')) = (closed_on IS NULL)"


def _replace_checks(status_known: str, open_until_closed: str) -> None:
    with op.batch_alter_table('loan', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_loan_status_known'), type_='check')
        batch_op.drop_constraint(op.f('ck_loan_open_until_closed'), type_='check')
        batch_op.create_check_constraint(op.f('ck_loan_status_known'), status_known)
        batch_op.create_check_constraint(op.f('ck_loan_open_until_closed'), open_until_closed)


def upgrade():
    _replace_checks(NEW_STATUSES, NEW_OPEN_UNTIL_CLOSED)


def downgrade():
    waiting = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM loan WHERE status IN ('pending', 'cancelled')")).scalar()
    if waiting:
        raise RuntimeError(
            f"{waiting} loans are pending or cancelled, which revision 0005 cannot hold: issue or cancel the "
            "pending ones and delete the cancelled ones (with their agreements) before downgrading.")
    _replace_checks(OLD_STATUSES, OLD_OPEN_UNTIL_CLOSED)
