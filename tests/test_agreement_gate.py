"""REQUIRE_SIGNED_AGREEMENT: an individual loan waits, its instrument held, until the agreement is signed."""
import html
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from loanservice.audit.models import AuditEvent
from loanservice.borrowers.models import Family
from loanservice.documents.models import Agreement
from loanservice.documents.notices import add_usual_stages, due_notices
from loanservice.inventory.models import Instrument
from loanservice.loans import lending, pricing
from loanservice.loans.models import AcademicTerm, Loan, LoanCharge
from loanservice.mail import OutboxMessage
from loanservice.reservations.models import Reservation
from loanservice.reservations.services import free_instruments
from loanservice.timeutil import today

from .conftest import config_for, in_app, login, pdf_text, publish_hire_conditions


@pytest.fixture
def app_config(database_url):
    return config_for(database_url, REQUIRE_SIGNED_AGREEMENT=True)


@pytest.fixture
def hirer(factory):
    """A parent with a sign-in, their child, and a violin to lend; (parent, family, pupil, instrument)."""
    parent = factory.parent(name="Dana Okoro", email="dana@example.org")
    with in_app(factory.app) as session:
        family = session.scalar(select(Family).where(Family.user_id == parent.id))
        session.expunge(family)
    pupil = factory.child(parent, name="Sam Okoro", year_group=5)
    violin = factory.instrument_type("Violin", sizes=("1/2", "3/4"))
    instrument = factory.instrument(violin, size="1/2", asset_tag="VLN-7", accessories="case, bow")
    return parent, family, pupil, instrument


def lend_form(instrument, borrower: str, **extra) -> dict:
    data = {"tag": instrument.asset_tag, "borrower": borrower, "started_on": today().isoformat(),
            "due_on": (today() + timedelta(days=60)).isoformat(), "condition_grade": "2", "fee_per_term": "30"}
    data.update(extra)
    return data


def check_out_to(client, instrument, pupil, **extra) -> int:
    """Lend from the form to a pupil; returns the loan's id, once its page (and message) was read."""
    response = client.post("/loans/new", data=lend_form(instrument, f"pupil-{pupil.id}", **extra))
    assert response.status_code == 303, response.get_data(as_text=True)
    page(client, response.location)
    return int(response.location.rsplit("/", 1)[1])


def raw(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


def page(client, url: str) -> str:
    """What a person reads on the page: its text, without the markup."""
    return words(raw(client, url))


def words(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def sign_online(client, loan_id: int):
    """The parent opens the agreement page, reads the PDF and signs with the fingerprint its form carries."""
    with in_app(client.application) as session:
        agreement = session.scalars(select(Agreement).where(Agreement.loan_id == loan_id)
                                    .order_by(Agreement.id.desc())).first()
        agreement_id, sha = agreement.id, agreement.sha256
    assert f'value="{sha}"' in client.get(f"/loans/{loan_id}/agreement").get_data(as_text=True)
    assert client.get(f"/agreements/{agreement_id}.pdf").status_code == 200
    return client.post(f"/agreements/{agreement_id}/sign",
                       data={"full_name": "Dana Okoro", "agreed": "y", "sha256": sha})


def state(app, loan_id: int) -> tuple:
    with in_app(app) as session:
        loan = session.get(Loan, loan_id)
        return loan.status, loan.instrument.status, loan.started_on, loan.closed_on


def audit_actions(app, loan_id: int) -> list[str]:
    with in_app(app) as session:
        return list(session.scalars(select(AuditEvent.action).where(
            AuditEvent.entity_type == "loan", AuditEvent.entity_id == loan_id).order_by(AuditEvent.id)))


# ---------------------------------------------------------------- the whole journey


def test_a_pupil_loan_waits_for_the_parent_to_sign_online_then_staff_issue_it(app, client, factory, hirer):
    parent, family, pupil, instrument = hirer
    publish_hire_conditions(app)
    start = today() - timedelta(days=3)
    factory.term("This term", start - timedelta(days=20), today() + timedelta(days=90))
    staff = factory.user("staff", name="Store Keeper")
    login(client, staff)
    response = client.post("/loans/new", data=lend_form(instrument, f"pupil-{pupil.id}",
                                                        started_on=start.isoformat()))
    assert response.status_code == 303
    loan_id = int(response.location.rsplit("/", 1)[1])
    shown = page(client, response.location)
    assert "VLN-7 is held for Sam Okoro until the loan agreement is signed" in shown
    assert "Awaiting signed agreement" in shown and "Issue instrument" in shown and "Cancel this loan" in shown
    assert "Check in" not in shown and "Renew" not in shown
    assert state(app, loan_id)[:2] == ("pending", "awaiting_signing")
    with in_app(app) as session:  # the parent is emailed a link to sign
        [mail] = session.scalars(select(OutboxMessage)).all()
        assert mail.recipients == "dana@example.org" and "sign the loan agreement for Sam Okoro's" in mail.subject
        assert f"http://hub.test/loans/{loan_id}/agreement" in mail.message.decode()
    with in_app(app) as session:  # the agreement is ready to sign, and says when the loan starts
        agreement = session.scalars(select(Agreement).where(Agreement.loan_id == loan_id)).one()
        assert not agreement.is_signed
        assert "The day the instrument is handed over" in pdf_text(agreement.pdf)

    # The instrument page and the scan station say so, and offer no check-in.
    shown = page(client, "/instruments/VLN-7")
    assert "Awaiting signed agreement: held for Sam Okoro" in shown and "Issue or cancel the loan" in shown
    assert "Check in" not in shown and "Write off" not in shown and "Send to repair" not in shown
    assert f'href="/loans/{loan_id}/agreement"' in raw(client, "/instruments/VLN-7")
    shown = page(client, "/scan?code=VLN-7")
    assert "awaiting a signed agreement" in shown and "Issue or cancel the loan" in shown
    assert "Awaiting signed agreement" in page(client, f"/borrowers/family/{family.id}")
    assert "1 loan awaiting a signed agreement" in page(client, "/dashboard")
    assert "VLN-7 Violin" in page(client, "/loans/awaiting-agreement")
    assert "Not signed yet" in page(client, "/loans/awaiting-agreement")

    # Nothing is charged while it waits.
    with in_app(app) as session:
        term = session.scalar(select(AcademicTerm))
        assert pricing.raise_term_charges(session, None, term) == 0
        session.commit()

    # Issuing before it is signed is refused, and changes nothing.
    refused = client.post(f"/loans/{loan_id}/issue")
    assert refused.status_code == 409
    assert "cannot be issued until the agreement is signed" in words(refused.get_data(as_text=True))
    assert state(app, loan_id) == ("pending", "awaiting_signing", start, None)
    client.post("/logout")

    # The parent sees it waiting for their signature, signs online, and cannot issue it themselves.
    login(client, parent)
    home = page(client, "/")
    assert "Waiting for your signature" in home and "Read and sign the loan agreement" in home
    assert "Ask to return" not in home
    assert "The instrument is held for you" in page(client, f"/loans/{loan_id}/agreement")
    assert sign_online(client, loan_id).status_code == 303
    assert "Signed: ready to hand over" in page(client, "/")
    signed = page(client, f"/loans/{loan_id}/agreement")
    assert "Agreement signed." in signed and "collect it from the store" in signed
    assert "Awaiting signed agreement" not in signed and "Once you have signed" not in signed
    assert 'href="/">Back to your home page</a>' in raw(client, f"/loans/{loan_id}/agreement")
    assert client.post(f"/loans/{loan_id}/issue").status_code == 403
    assert client.get("/loans/awaiting-agreement").status_code == 403
    assert state(app, loan_id)[0] == "pending"
    client.post("/logout")

    # Staff issue it: open from today, due date kept, instrument on loan, an audit event.
    login(client, staff)
    assert "signed by Dana Okoro" in page(client, f"/loans/{loan_id}")
    assert "Signed by Dana Okoro" in page(client, "/loans/awaiting-agreement")
    response = client.post(f"/loans/{loan_id}/issue")
    assert response.status_code == 303
    assert "VLN-7 issued to Sam Okoro" in page(client, response.location)
    assert state(app, loan_id) == ("open", "on_loan", today(), None)
    with in_app(app) as session:
        loan = session.get(Loan, loan_id)
        assert loan.due_on == today() + timedelta(days=60) and loan.issued_by_id == staff.id
        assert loan.fee_per_term == Decimal("30.00") and loan.charge_per_term == Decimal("30.00")
    assert audit_actions(app, loan_id) == ["loan.pending", "loan.issued"]
    shown = page(client, f"/loans/{loan_id}")
    assert "On loan" in shown and "Check in" in shown and "Issue instrument" not in shown
    assert "Nothing is waiting" in page(client, "/loans/awaiting-agreement")
    assert "awaiting a signed agreement" not in page(client, "/dashboard")

    # Issued, it is charged like any loan.
    with in_app(app) as session:
        assert pricing.raise_term_charges(session, None, session.scalar(select(AcademicTerm))) == 1
        session.commit()
        assert session.scalar(select(LoanCharge.amount).where(LoanCharge.loan_id == loan_id)) == Decimal("30.00")

    # A second press of the button (a double submit) is refused and changes nothing.
    again = client.post(f"/loans/{loan_id}/issue")
    assert again.status_code == 409 and "VLN-7 was already issued on" in again.get_data(as_text=True)
    assert audit_actions(app, loan_id).count("loan.issued") == 1

    # The parent's home: the instrument is out, so there is no receipt to offer (it would be an error page).
    client.post("/logout")
    login(client, parent)
    home = page(client, "/")
    assert "Ask to return" in home and "Loan agreement (signed)" in home and "Receipt" not in home


def test_a_family_signs_at_the_desk_and_staff_issue_from_the_agreement_page(app, client, factory, hirer):
    _, family, _, instrument = hirer
    publish_hire_conditions(app)
    login(client, factory.user("staff"))
    response = client.post("/loans/new", data=lend_form(instrument, f"family-{family.id}"))
    loan_id = int(response.location.rsplit("/", 1)[1])
    assert state(app, loan_id)[0] == "pending"
    with in_app(app) as session:
        agreement_id = session.scalar(select(Agreement.id).where(Agreement.loan_id == loan_id))
    assert "Issue instrument" not in page(client, f"/loans/{loan_id}/agreement")  # not signed yet
    assert client.post(f"/agreements/{agreement_id}/desk-signature",
                       data={"signer_name": "Dana Okoro"}).status_code == 303
    shown = page(client, f"/loans/{loan_id}/agreement")
    assert "signed at the desk" in shown and "Issue instrument" in shown
    assert client.post(f"/loans/{loan_id}/issue").status_code == 303
    assert state(app, loan_id)[:2] == ("open", "on_loan")


def test_a_new_unsigned_copy_of_the_agreement_must_be_signed_before_issue(app, client, factory, hirer):
    _, family, _, instrument = hirer
    publish_hire_conditions(app)
    login(client, factory.user("staff"))
    loan_id = int(client.post("/loans/new", data=lend_form(instrument, f"family-{family.id}"))
                  .location.rsplit("/", 1)[1])
    with in_app(app) as session:
        first = session.scalar(select(Agreement.id).where(Agreement.loan_id == loan_id))
    unsigned = raw(client, f"/loans/{loan_id}/agreement")
    assert "Make a new copy" in unsigned and "data-confirm" not in unsigned  # nothing signed to lose
    client.post(f"/agreements/{first}/desk-signature", data={"signer_name": "Dana Okoro"})
    # Replacing a signed copy asks first, saying what it means.
    signed = raw(client, f"/loans/{loan_id}/agreement")
    confirm = re.search(r'data-confirm="([^"]*)"[^>]*>\s*Make a new copy', signed)
    assert confirm, signed
    assert "The latest copy is signed" in confirm.group(1) and "signed copy is kept" in confirm.group(1)
    assert "will have to sign the new one before the instrument can be issued" in confirm.group(1)
    # The loan changed after signing: staff make a new copy, which is what now needs signing.
    assert client.post(f"/loans/{loan_id}/agreement", data={"fresh": "1"}).status_code == 303
    refused = client.post(f"/loans/{loan_id}/issue")
    assert refused.status_code == 409 and "until the agreement is signed" in refused.get_data(as_text=True)
    assert state(app, loan_id)[0] == "pending"


def test_issue_is_refused_once_the_due_date_has_passed(app, client, factory, hirer):
    _, _, pupil, instrument = hirer
    publish_hire_conditions(app)
    login(client, factory.user("staff"))
    loan_id = check_out_to(client, instrument, pupil, started_on=(today() - timedelta(days=20)).isoformat(),
                                due_on=(today() - timedelta(days=1)).isoformat())
    with in_app(app) as session:
        agreement_id = session.scalar(select(Agreement.id).where(Agreement.loan_id == loan_id))
    client.post(f"/agreements/{agreement_id}/desk-signature", data={"signer_name": "Dana Okoro"})
    refused = client.post(f"/loans/{loan_id}/issue")
    assert refused.status_code == 422
    text_ = html.unescape(refused.get_data(as_text=True))
    assert "before today: cancel it and lend VLN-7 again with a new due date" in text_
    assert state(app, loan_id)[:2] == ("pending", "awaiting_signing")


def test_staff_cancel_a_pending_loan_after_a_confirmation_and_the_instrument_is_free_again(
        app, client, factory, hirer):
    parent, family, pupil, instrument = hirer
    publish_hire_conditions(app)
    login(client, factory.user("staff"))
    loan_id = check_out_to(client, instrument, pupil)
    confirm = page(client, f"/loans/{loan_id}/cancel")
    assert "This cannot be undone." in confirm and "Keep the loan" in confirm
    assert state(app, loan_id)[0] == "pending"  # opening the page changes nothing
    response = client.post(f"/loans/{loan_id}/cancel", data={"note": "The family changed their mind"})
    assert response.status_code == 303
    assert "The loan is cancelled and VLN-7 is released." in page(client, response.location)
    status, instrument_status, _, closed_on = state(app, loan_id)
    assert (status, instrument_status, closed_on) == ("cancelled", "available", today())
    assert "Cancelled before issue" in page(client, f"/borrowers/family/{family.id}")
    # Cancelled: it cannot be issued, cancelled again, or signed.
    issued = client.post(f"/loans/{loan_id}/issue")
    assert issued.status_code == 409 and "This loan was cancelled on" in issued.get_data(as_text=True)
    assert client.post(f"/loans/{loan_id}/cancel", data={}).status_code == 409
    cancelled = page(client, f"/loans/{loan_id}/cancel")  # opened again: says so, and offers nothing
    assert f"Cancelled on {today():%-d %b %Y}, before VLN-7 was issued." in cancelled
    assert "This cannot be undone." not in cancelled and "Keep the loan" not in cancelled
    client.post("/logout")
    login(client, parent)
    with in_app(app) as session:
        agreement = session.scalar(select(Agreement).where(Agreement.loan_id == loan_id))
        agreement_id, sha = agreement.id, agreement.sha256
    assert "Sign the agreement" not in page(client, f"/loans/{loan_id}/agreement")  # the form is gone; post anyway
    signed = client.post(f"/agreements/{agreement_id}/sign",
                         data={"full_name": "Dana Okoro", "agreed": "y", "sha256": sha})
    assert signed.status_code == 409 and "cancelled before the instrument was issued" in html.unescape(
        signed.get_data(as_text=True))
    assert "Waiting for your signature" not in page(client, "/")
    client.post("/logout")
    # Free again: it can be lent to someone else.
    login(client, factory.user("staff"))
    other = factory.other_borrower(name="Youth Orchestra")
    assert client.post("/loans/new", data=lend_form(instrument, f"other-{other.id}")).status_code == 303


def test_cancelling_offers_the_instrument_to_the_waiting_list(app, client, factory, hirer):
    _, _, pupil, instrument = hirer
    publish_hire_conditions(app)
    waiting_parent = factory.parent()
    child = factory.child(waiting_parent)
    with in_app(app) as session:
        session.add(Reservation(pupil_id=child.id, type_id=instrument.type_id, size="1/2", status="waiting",
                                preferred_start_on=today()))
        session.commit()
    login(client, factory.user("staff"))
    loan_id = check_out_to(client, instrument, pupil)
    assert client.post(f"/loans/{loan_id}/cancel", data={}).status_code == 303
    with in_app(app) as session:
        reservation = session.scalar(select(Reservation).where(Reservation.pupil_id == child.id))
        assert (reservation.status, reservation.instrument_id) == ("held", instrument.id)
        assert session.get(Instrument, instrument.id).status == "reserved"


# ---------------------------------------------------------------- what a pending loan cannot do


def test_a_pending_loan_cannot_be_checked_in_renewed_exchanged_or_lost(app, client, factory, hirer):
    _, _, pupil, instrument = hirer
    bigger = factory.instrument(instrument.type, size="3/4")
    publish_hire_conditions(app)
    login(client, factory.user("staff"))
    loan_id = check_out_to(client, instrument, pupil)
    before = state(app, loan_id)
    for action, data in (("check-in", {"grade": "2", "returned_on": today().isoformat()}),
                         ("renew", {}), ("exchange", {"tag": bigger.asset_tag, "grade": "2"}),
                         ("lost", {"note": "Left on the bus"})):
        shown = raw(client, f"/loans/{loan_id}/{action}")  # the page offers no form, and says why
        assert "VLN-7 has not been issued: it is held for Sam Okoro until the loan agreement is signed." in shown
        assert '<form method="post" class="panel"' not in shown, action
        response = client.post(f"/loans/{loan_id}/{action}", data=data)
        assert response.status_code == 409, action
        assert "VLN-7 has not been issued: it is waiting for a signed agreement" in response.get_data(as_text=True)
    assert state(app, loan_id) == before
    with in_app(app) as session:
        assert session.get(Instrument, bigger.id).status == "available"
        assert session.scalar(select(func.count()).select_from(Loan)) == 1


def test_an_instrument_held_for_a_pending_loan_cannot_be_lent_reserved_or_sent_away(app, client, factory, hirer):
    _, family, pupil, instrument = hirer
    publish_hire_conditions(app)
    login(client, factory.user("staff"))
    check_out_to(client, instrument, pupil)
    other = factory.pupil(name="Another Child")
    for borrower in (f"pupil-{other.id}", f"family-{family.id}", f"school-{factory.school().id}"):
        response = client.post("/loans/new", data=lend_form(instrument, borrower))
        assert response.status_code == 409
        assert "VLN-7 is held for Sam Okoro until their loan agreement is signed." in html.unescape(
            response.get_data(as_text=True))
    for url, data in (("repair", {"repairer": "Hubbard Strings", "sent_on": today().isoformat()}),
                      ("missing", {"note": "Cannot find it"}), ("write-off", {"reason": "Broken", "confirm": "y"})):
        response = client.post(f"/instruments/VLN-7/{url}", data=data)
        assert response.status_code == 409, url
        assert "held for a loan waiting for its signed agreement: cancel that loan first" in \
            response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 1
        assert session.get(Instrument, instrument.id).status == "awaiting_signing"
        # The catalogue does not offer it, and the database itself refuses a second loan on it.
        assert free_instruments(session, instrument.type_id, "1/2") == []
        with pytest.raises(IntegrityError):
            session.execute(text(
                "INSERT INTO loan (instrument_id, family_id, status, started_on, due_on, accessories, "
                "condition_at_issue, damaged, return_note, fee_per_term, remission_category, charge_per_term, "
                "deposit, created_at) VALUES (:i, :f, 'open', :d, :d, '', 2, false, '', 0, 'none', 0, 0, :d)"),
                {"i": instrument.id, "f": family.id, "d": today()})
        session.rollback()


def test_the_parent_cannot_ask_to_return_a_loan_not_handed_over(app, client, factory, hirer):
    parent, _, pupil, instrument = hirer
    publish_hire_conditions(app)
    staff_client = app.test_client()
    login(staff_client, factory.user("staff"))
    loan_id = check_out_to(staff_client, instrument, pupil)
    login(client, parent)
    response = client.post(f"/my-loans/{loan_id}/ask", data={"kind": "return"})
    assert response.status_code == 409 and "has not been handed over yet" in response.get_data(as_text=True)


def test_pending_loans_are_not_overdue_chased_or_rolled_over(app, client, factory, hirer):
    _, _, pupil, instrument = hirer
    publish_hire_conditions(app)
    start, due = today() - timedelta(days=120), today() - timedelta(days=90)
    factory.term("Last term", start - timedelta(days=5), due)
    factory.term("This term", due + timedelta(days=10), today() + timedelta(days=60))
    login(client, factory.user("staff"))
    pending_id = check_out_to(client, instrument, pupil, started_on=start.isoformat(), due_on=due.isoformat())
    # The same, issued: it is the control that the lists do show late loans.
    late = factory.instrument(asset_tag="LATE-1")
    with in_app(app) as session:
        late_loan = lending.open_loan(session, None, session.get(Instrument, late.id),
                                       session.get(type(pupil), pupil.id), started_on=start, due_on=due)
        session.commit()
        late_id = late_loan.id
        add_usual_stages(session, None)
        session.commit()
    overdue = page(client, "/loans/overdue")
    assert "LATE-1" in overdue and "VLN-7" not in overdue
    with in_app(app) as session:
        assert [notice.loan.id for notice in due_notices(session, today()) if notice.loan] == [late_id]
        last, this = session.scalars(select(AcademicTerm).order_by(AcademicTerm.starts_on)).all()
        assert lending.roll_over(session, None, last, this) == 1
        session.commit()
        assert session.get(Loan, pending_id).due_on == due
    assert "VLN-7" not in page(client, "/notices")


# ---------------------------------------------------------------- who it applies to, and when


def test_schools_and_other_borrowers_are_lent_at_once(app, client, factory):
    publish_hire_conditions(app)
    login(client, factory.user("staff"))
    for borrower in (f"school-{factory.school().id}", f"other-{factory.other_borrower().id}"):
        instrument = factory.instrument()
        response = client.post("/loans/new", data=lend_form(instrument, borrower))
        assert response.status_code == 303
        assert state(app, int(response.location.rsplit("/", 1)[1]))[:2] == ("open", "on_loan")
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Agreement)) == 0


def test_with_the_setting_off_check_out_lends_at_once_as_before(app, client, factory, hirer):
    _, _, pupil, instrument = hirer
    app.config["REQUIRE_SIGNED_AGREEMENT"] = False
    login(client, factory.user("staff"))
    assert "needs a signed agreement first" not in page(client, "/loans/new")
    loan_id = check_out_to(client, instrument, pupil)  # no terms needed either
    assert state(app, loan_id)[:2] == ("open", "on_loan")
    shown = page(client, f"/loans/{loan_id}")
    assert "Check in" in shown and "Issue instrument" not in shown
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Agreement)) == 0
        assert audit_actions(app, loan_id) == ["loan.out"]
    refused = client.post(f"/loans/{loan_id}/issue")
    assert refused.status_code == 409 and "was already issued" in refused.get_data(as_text=True)


def test_the_lend_form_says_what_the_setting_does(app, client, factory):
    login(client, factory.user("staff"))
    assert "This hub needs a signed agreement first" in page(client, "/loans/new")


def test_without_terms_and_conditions_check_out_is_refused_and_nothing_changes(app, client, factory, hirer):
    _, _, pupil, instrument = hirer
    login(client, factory.user("staff"))
    response = client.post("/loans/new", data=lend_form(instrument, f"pupil-{pupil.id}"))
    assert response.status_code == 409 and "no terms and conditions yet" in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 0
        assert session.get(Instrument, instrument.id).status == "available"


def test_a_reservation_collected_under_the_setting_waits_for_the_agreement(app, client, factory, hirer):
    parent, _, pupil, instrument = hirer
    publish_hire_conditions(app)
    with in_app(app) as session:
        reservation = Reservation(pupil_id=pupil.id, type_id=instrument.type_id, size="1/2", status="ready",
                                  instrument_id=instrument.id, preferred_start_on=today(),
                                  collect_by=today() + timedelta(days=5))
        session.add(reservation)
        session.get(Instrument, instrument.id).status = "reserved"
        session.commit()
        reservation_id = reservation.id
    login(client, factory.user("staff"))
    response = client.post(f"/reservations/{reservation_id}/collect",
                           data={"due_on": (today() + timedelta(days=60)).isoformat()})
    assert response.status_code == 303, response.get_data(as_text=True)
    assert "VLN-7 is held for Sam Okoro until the loan agreement is signed" in page(client, response.location)
    loan_id = int(response.location.rsplit("/", 1)[1])
    assert state(app, loan_id)[:2] == ("pending", "awaiting_signing")
    with in_app(app) as session:
        assert session.get(Reservation, reservation_id).status == "collected"
        mails = [m.subject for m in session.scalars(select(OutboxMessage))]
        assert mails == ["Demo Music Hub: sign the loan agreement for Sam Okoro's Violin 1/2"]


def test_a_pending_loan_without_any_agreement_is_not_issued(app, client, factory, hirer):
    _, _, pupil, instrument = hirer
    login(client, factory.user("staff"))
    with in_app(app) as session:  # held for its agreement, but none was made
        loan = lending.open_loan(session, None, session.get(Instrument, instrument.id),
                                 session.get(type(pupil), pupil.id), due_on=today() + timedelta(days=60),
                                 awaiting_agreement=True)
        session.commit()
        loan_id = loan.id
    refused = client.post(f"/loans/{loan_id}/issue")
    assert refused.status_code == 409
    assert "VLN-7 cannot be issued: there is no agreement for this loan yet" in words(refused.get_data(as_text=True))
    assert state(app, loan_id)[:2] == ("pending", "awaiting_signing")
