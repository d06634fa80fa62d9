"""A remission a parent claims for their child is verified or refused before a loan copies it."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from loanservice.audit.models import AuditEvent
from loanservice.borrowers.models import Pupil, RemissionClaim
from loanservice.loans import pricing
from loanservice.loans.models import (
    AcademicTerm,
    FeeBand,
    Loan,
    RemissionRule,
)
from loanservice.timeutil import today

from .conftest import in_app, login, send_mail
from .pages import read_form, submit


@pytest.fixture
def priced(app):
    """Band A at £30 a term with a £25 deposit; free school meals pay nothing; a term to be due at the end of."""
    with in_app(app) as session:
        session.add(AcademicTerm(name="This term", starts_on=today() - timedelta(days=10),
                                 ends_on=today() + timedelta(days=30)))
        session.add(FeeBand(band="A", fee_per_term=Decimal("30.00"), deposit=Decimal("25.00")))
        session.add(RemissionRule(category="free_school_meals", kind="free"))
        session.commit()


def claiming_child(app, factory, parent=None, name="Rowan"):
    """A child whose parent said, when adding them, that they get free school meals."""
    parent = parent or factory.parent()
    child = factory.child(parent, name)
    with in_app(app) as session:
        session.add(RemissionClaim(pupil_id=child.id, category="free_school_meals"))
        session.commit()
    return parent, child


def the_loan(app):
    with in_app(app) as session:
        loan = session.scalars(select(Loan)).one()
        session.expunge(loan)
        return loan


def audit_actions(app):
    with in_app(app) as session:
        return [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def lend_page(instrument, pupil):
    return f"/loans/new?tag={instrument.asset_tag}&borrower=pupil-{pupil.id}"


def test_the_lend_form_asks_to_verify_a_claimed_remission_and_the_loan_takes_it(app, factory, staff_client, priced):
    instrument = factory.instrument(factory.instrument_type(hire_band="A"))
    _, child = claiming_child(app, factory)
    page = staff_client.get(lend_page(instrument, child)).get_data(as_text=True)
    assert "parent or carer says they are eligible for <strong>free school meals</strong>" in page
    assert "£0.00 if the claim is verified" in page
    refused = submit(staff_client, lend_page(instrument, child), button="Lend")
    assert refused.status_code == 409
    assert "verify the claim or refuse it before the instrument is lent" in refused.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalars(select(Loan)).first() is None
    response = submit(staff_client, lend_page(instrument, child), {"remission_claim": "verify"}, button="Lend")
    assert response.status_code == 303
    loan = the_loan(app)
    assert loan.remission_category == "free_school_meals"
    assert loan.charge_per_term == Decimal("0.00")
    with in_app(app) as session:
        pupil = session.get(Pupil, child.id)
        assert (pupil.remission_category, pupil.remission_verified_on) == ("free_school_meals", today())
        assert session.get(RemissionClaim, child.id) is None
    assert "pupil.remission_verified" in audit_actions(app)


def test_a_refused_claim_lends_at_the_full_fee_and_is_answered(app, factory, staff_client, priced):
    instrument = factory.instrument(factory.instrument_type(hire_band="A"))
    _, child = claiming_child(app, factory)
    response = submit(staff_client, lend_page(instrument, child), {"remission_claim": "refuse"}, button="Lend")
    assert response.status_code == 303
    loan = the_loan(app)
    assert (loan.remission_category, loan.charge_per_term) == ("none", Decimal("30.00"))
    with in_app(app) as session:
        assert session.get(RemissionClaim, child.id) is None
        assert session.get(Pupil, child.id).remission_category == "none"
    assert "pupil.remission_refused" in audit_actions(app)


def test_the_lend_form_shows_the_fee_and_charge_and_starts_from_the_instruments_grade(app, factory, staff_client,
                                                                                       priced):
    instrument = factory.instrument(factory.instrument_type(hire_band="A"), condition_grade=3)
    pupil = factory.pupil(name="Ada", remission_category="free_school_meals",
                          remission_verified_on=date(2025, 9, 10))
    page = staff_client.get(lend_page(instrument, pupil)).get_data(as_text=True)
    cost = page[page.index('id="lending-cost"'):]
    assert "<dd>£30.00 a term (band A)</dd>" in cost
    assert "<dd>Free school meals, verified 10 Sep 2025</dd>" in cost
    assert "<dt>Charge per term</dt><dd>£0.00</dd>" in cost
    assert "<dt>Deposit</dt><dd>£25.00</dd>" in cost
    form = read_form(page, lend_page(instrument, pupil))
    assert form.values("condition_grade") == ["3"]


def test_handover_asks_to_verify_the_claim_before_the_loan_is_made(app, factory, client, priced):
    kind = factory.instrument_type("Cello", sizes=("1/2",), hire_band="A")
    factory.instrument(kind, size="1/2")
    parent, child = claiming_child(app, factory)
    login(client, parent)
    client.post("/reserve", data={"pupil_id": str(child.id), "item": f"{kind.id}|1/2",
                                  "preferred_start_on": today().isoformat()})
    client.post("/logout")
    login(client, factory.user("staff"))
    # The queue's forms: offer to waiting lists, then the held row's allocate, ready and cancel.
    assert submit(client, "/reservations/queue", form=2, button="Ready to collect: Rowan").status_code == 303
    queue = client.get("/reservations/queue").get_data(as_text=True)
    assert "parent says: free school meals" in queue
    refused = submit(client, "/reservations/queue", form="due_on", button="Handed over to Rowan")
    assert refused.status_code == 409
    assert "verify the claim or refuse it" in refused.get_data(as_text=True)
    response = submit(client, "/reservations/queue", {"remission_claim": "verify"}, form="due_on",
                      button="Handed over to Rowan")
    assert response.status_code == 303
    loan = the_loan(app)
    assert (loan.remission_category, loan.charge_per_term) == ("free_school_meals", Decimal("0.00"))


def test_remission_verified_after_lending_applies_from_the_next_term_charged(app, factory, staff_client, priced):
    instrument = factory.instrument(factory.instrument_type(hire_band="A"))
    pupil = factory.pupil(name="Ada")
    factory.term("Next term", today() + timedelta(days=40), today() + timedelta(days=100))
    submit(staff_client, lend_page(instrument, pupil), button="Lend")
    loan = the_loan(app)
    with in_app(app) as session:
        pricing.raise_term_charges(session, None, session.scalar(select(AcademicTerm).where(
            AcademicTerm.name == "This term")))
        session.commit()
    page = staff_client.get(f"/loans/{loan.id}").get_data(as_text=True)
    assert "Remission verified after lending" not in page
    edit = submit(staff_client, f"/borrowers/pupil/{pupil.id}/edit", {
        "remission_category": "free_school_meals", "remission_verified_on": today().isoformat()})
    assert edit.status_code == 303
    page = staff_client.get(f"/loans/{loan.id}").get_data(as_text=True)
    assert "Ada was verified for free school meals" in page
    assert the_loan(app).charge_per_term == Decimal("30.00")  # never silently
    response = submit(staff_client, f"/loans/{loan.id}", form="apply-remission",
                      button="Apply free school meals from the next term")
    assert response.status_code == 303
    assert the_loan(app).charge_per_term == Decimal("0.00")
    with in_app(app) as session:
        # The loan is due back at the end of this term: next term charges it once it is overdue and still out.
        pricing.raise_term_charges(session, None, session.scalar(select(AcademicTerm).where(
            AcademicTerm.name == "Next term")), on=loan.due_on + timedelta(days=1))
        session.commit()
        amounts = [(c.term.name, c.amount, c.status) for c in pricing.charges_of(session, session.get(Loan, loan.id))]
    assert amounts == [("This term", Decimal("30.00"), "owed"), ("Next term", Decimal("0.00"), "waived")]
    assert "loan.remission_applied" in audit_actions(app)


def test_the_ready_to_collect_email_gives_the_store_address_and_opening_hours(database_url, smtp_server, factory):
    from loanservice import create_app

    from .conftest import config_for

    app = create_app(config_for(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port,
                                HUB_ADDRESS="Music Store\nUnit 4, Mill Road\nExampleton EX2 9ZZ",
                                HUB_OPENING_HOURS="Tuesday to Saturday 10am-4pm"))
    factory.app = app
    kind = factory.instrument_type("Cello", sizes=("1/2",))
    factory.instrument(kind, size="1/2")
    parent = factory.parent(email="pat@example.org")
    child = factory.child(parent, "Rowan")
    client = app.test_client()
    login(client, parent)
    client.post("/reserve", data={"pupil_id": str(child.id), "item": f"{kind.id}|1/2",
                                  "preferred_start_on": today().isoformat()})
    client.post("/logout")
    login(client, factory.user("staff"))
    assert submit(client, "/reservations/queue", form=2, button="Ready to collect: Rowan").status_code == 303
    send_mail(app)
    ready = [m for m in smtp_server.messages if "ready to collect" in m["Subject"]]
    body = ready[0].get_body(("plain",)).get_content()
    assert "Music Store\nUnit 4, Mill Road\nExampleton EX2 9ZZ" in body.replace("\r\n", "\n")
    assert "Opening hours:\nTuesday to Saturday 10am-4pm" in body.replace("\r\n", "\n")


def test_staff_verify_a_claim_on_the_pupils_page_and_the_loan_already_made_offers_it(app, factory, staff_client,
                                                                                    priced):
    instrument = factory.instrument(factory.instrument_type(hire_band="A"))
    parent = factory.parent()
    child = factory.child(parent, "Rowan")
    submit(staff_client, lend_page(instrument, child), button="Lend")  # before the parent claimed anything
    claiming_child_claim(app, child)
    page = staff_client.get(f"/borrowers/pupil/{child.id}").get_data(as_text=True)
    assert "Free school meals, stated" in page and "not checked yet" in page
    response = submit(staff_client, f"/borrowers/pupil/{child.id}", form=0,
                      button="Verified today: free school meals for Rowan")
    assert response.status_code == 303
    page = staff_client.get(f"/borrowers/pupil/{child.id}").get_data(as_text=True)
    assert f"Free school meals, verified {today():%-d %b %Y}" in page
    assert "not checked yet" not in page
    loan = the_loan(app)
    assert loan.charge_per_term == Decimal("30.00")
    assert "Apply free school meals from the next term" in staff_client.get(f"/loans/{loan.id}").get_data(as_text=True)


def test_a_refused_claim_on_the_pupils_page_leaves_no_remission(app, factory, staff_client):
    _, child = claiming_child(app, factory)
    response = submit(staff_client, f"/borrowers/pupil/{child.id}", form=1,
                      button="Refuse the claim: free school meals for Rowan")
    assert response.status_code == 303
    with in_app(app) as session:
        assert session.get(RemissionClaim, child.id) is None
        assert session.get(Pupil, child.id).remission_category == "none"
    assert "pupil.remission_refused" in audit_actions(app)


def test_lending_through_the_service_is_refused_while_a_claim_waits(app, factory, priced):
    from loanservice.borrowers.services import RemissionUnverified
    from loanservice.inventory.tags import resolve_instrument
    from loanservice.loans import lending

    instrument = factory.instrument()
    _, child = claiming_child(app, factory)
    with in_app(app) as session, pytest.raises(RemissionUnverified):
        lending.check_out(session, None, resolve_instrument(session, instrument.asset_tag),
                          session.get(Pupil, child.id), app.config)


def claiming_child_claim(app, child, category="free_school_meals"):
    with in_app(app) as session:
        session.add(RemissionClaim(pupil_id=child.id, category=category))
        session.commit()
