"""The debt block: under the hub's setting, an account in debt gets no new loans or reservations, with a
clear message; staff may lend despite the debt, and the override is in the audit trail with what is owed."""
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from loanservice.audit.models import AuditEvent
from loanservice.borrowers.models import Family
from loanservice.loans import pricing
from loanservice.loans.models import AcademicTerm, Loan
from loanservice.money import services as money
from loanservice.reservations.models import Reservation
from loanservice.timeutil import today

from .conftest import in_app, login
from .pages import submit

FEE = pricing.Charges(fee_per_term=Decimal("36.00"))


def owe(app, factory, pupil, days_ago: int) -> None:
    """Lend ``pupil`` an instrument and invoice the term ``days_ago`` days ago: £36.00 unpaid."""
    start = today() - timedelta(days=days_ago + 5)
    term = factory.term(f"Term {days_ago}", start, start + timedelta(days=days_ago + 60))  # still running today
    factory.loan(factory.instrument(), pupil, started_on=start, due_on=term.ends_on, charges=FEE)
    with in_app(app) as session:
        money.run_invoices(session, None, session.get(AcademicTerm, term.id), app.config,
                           on=today() - timedelta(days=days_ago))
        session.commit()


@pytest.fixture
def blocking(app):
    app.config.update(DEBT_BLOCK_DAYS=60, DEBT_BLOCK_AMOUNT=None)


def lend_page(client, tag, pupil):
    return f"/loans/new?tag={tag}&borrower=pupil-{pupil.id}"


def loans_of(app, pupil):
    with in_app(app) as session:
        return session.scalar(select(func.count()).select_from(Loan).where(Loan.pupil_id == pupil.id))


def test_staff_cannot_lend_to_an_account_in_debt_and_are_told_why(app, factory, staff_client, blocking):
    family = factory.family(name="Ada Lovelace")
    pupil = factory.pupil(name="Byron Lovelace", family=family)
    owe(app, factory, pupil, days_ago=100)
    factory.instrument(asset_tag="VLN-9")
    response = submit(staff_client, lend_page(staff_client, "VLN-9", pupil), {"condition_grade": "2"}, button="Lend")
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert ("Ada Lovelace owes £36.00 on invoices more than 60 days past their due date (account A00001). "
            "No new loans or reservations until it is paid.") in page
    assert 'name="override_debt"' in page
    assert loans_of(app, pupil) == 1  # only the loan invoiced


def test_staff_can_lend_despite_the_debt_and_the_override_is_audited(app, factory, staff_client, blocking):
    family = factory.family(name="Ada Lovelace")
    pupil = factory.pupil(name="Byron Lovelace", family=family)
    owe(app, factory, pupil, days_ago=100)
    factory.instrument(asset_tag="VLN-9")
    response = submit(staff_client, lend_page(staff_client, "VLN-9", pupil),
                      {"condition_grade": "2", "override_debt": "y"}, button="Lend")
    assert response.status_code == 303, response.get_data(as_text=True)
    assert loans_of(app, pupil) == 2
    with in_app(app) as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "account.debt_overridden"))
        assert event.summary == "Lent to Byron Lovelace despite the debt: A00001 owes £36.00"
        assert event.changes["owed"] in ("36.00", 36.0, "36")
        assert event.actor.role == "staff"


def test_a_recent_invoice_does_not_block_and_nothing_is_audited(app, factory, staff_client, blocking):
    pupil = factory.pupil(family=factory.family(name="Ada Lovelace"))
    owe(app, factory, pupil, days_ago=10)
    factory.instrument(asset_tag="VLN-9")
    response = submit(staff_client, lend_page(staff_client, "VLN-9", pupil),
                      {"condition_grade": "2", "override_debt": "y"}, button="Lend")
    assert response.status_code == 303
    with in_app(app) as session:
        assert session.scalar(select(AuditEvent).where(AuditEvent.action == "account.debt_overridden")) is None


def test_owing_more_than_the_amount_limit_blocks(app, factory, blocking):
    app.config.update(DEBT_BLOCK_DAYS=None, DEBT_BLOCK_AMOUNT="30.00")
    family = factory.family(name="Ada Lovelace")
    pupil = factory.pupil(family=family)
    owe(app, factory, pupil, days_ago=31)
    with in_app(app) as session:
        assert money.debt_block(session, session.get(Family, family.id), app.config) == (
            "Ada Lovelace owes £36.00 past its due date, more than the hub's limit of £30.00 (account A00001).")


def test_without_the_setting_nobody_is_blocked(app, factory, staff_client):
    pupil = factory.pupil(family=factory.family())
    owe(app, factory, pupil, days_ago=110)
    factory.instrument(asset_tag="VLN-9")
    response = submit(staff_client, lend_page(staff_client, "VLN-9", pupil), {"condition_grade": "2"}, button="Lend")
    assert response.status_code == 303


def test_a_paid_account_is_not_blocked(app, factory, staff_client, blocking):
    family = factory.family()
    pupil = factory.pupil(family=family)
    owe(app, factory, pupil, days_ago=100)
    with in_app(app) as session:
        money.record_payment(session, None, money.account_of(session, session.get(Family, family.id)), "36.00", "cash")
        session.commit()
    factory.instrument(asset_tag="VLN-9")
    response = submit(staff_client, lend_page(staff_client, "VLN-9", pupil), {"condition_grade": "2"}, button="Lend")
    assert response.status_code == 303


def test_a_parent_in_debt_cannot_reserve_and_is_told_why(app, factory, client, blocking):
    kind = factory.instrument_type("Violin", sizes=("1/2",))
    factory.instrument(kind, size="1/2")
    parent = factory.parent(name="Ada Lovelace")
    child = factory.child(parent, "Byron Lovelace")
    owe(app, factory, child, days_ago=125)
    login(client, parent)
    response = submit(client, "/reserve", {"pupil_id": str(child.id), "item": f"{kind.id}|1/2",
                                           "preferred_start_on": today().isoformat()})
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "owes £36.00 on invoices more than 60 days past their due date" in page
    assert "No new loans or reservations until it is paid." in page
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Reservation)) == 0


def test_the_days_limit_counts_each_invoices_own_age_not_its_aged_debt_band(app, factory):
    app.config.update(DEBT_BLOCK_DAYS=45, DEBT_BLOCK_AMOUNT=None)
    family = factory.family(name="Ada Lovelace")
    owe(app, factory, factory.pupil(family=family), days_ago=80)  # 50 days late: in the 30-day band
    with in_app(app) as session:
        holder = session.get(Family, family.id)
        assert money.debt_block(session, holder, app.config) == (
            "Ada Lovelace owes £36.00 on invoices more than 45 days past their due date (account A00001).")
        assert money.debt_block(session, holder, app.config, on=today() - timedelta(days=6)) is None
