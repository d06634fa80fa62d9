"""Children's data: retention, holds, anonymisation (proved on a dump of the whole database), erasure,
subject access requests and the family export."""
import io
import json
import threading
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, inspect, select, text, update

from loanservice.accounts.models import User
from loanservice.borrowers.models import Family, Pupil
from loanservice.documents import notices
from loanservice.documents import services as documents
from loanservice.documents.models import Agreement, Notice
from loanservice.loans import lending, pricing
from loanservice.loans.models import AcademicTerm, Loan, LoanCharge
from loanservice.money import services as money
from loanservice.money.models import LedgerEntry
from loanservice.privacy import services as privacy
from loanservice.privacy.models import AccessRequest, RemovedDocument
from loanservice.reservations.models import Reservation
from loanservice.timeutil import today

from .conftest import ON_POSTGRES, in_app, login, pdf_text, publish_hire_conditions
from .pages import submit

AUTUMN_2018 = ("Autumn 2018", date(2018, 9, 3), date(2018, 12, 19))
SPRING_2019 = ("Spring 2019", date(2019, 1, 7), date(2019, 4, 5))
# Everything that names the Hoppers, as it was typed; none may survive anonymisation anywhere.
HOPPER_WORDS = ("Grace Hopper", "Hopper", "grace.hopper@example.org", "07700 900123", "Cobol Lane",
                "Arlington AR1 2BC", "case scuffed on the lid", "Gran Hopper-Smith", "Ada Hopper")


def _set(app, model, row_id, **values):
    with in_app(app) as session:
        session.execute(update(model).where(model.id == row_id).values(**values))
        session.commit()


def _past_family(app, factory, school, *, name, email, child, phone="", address="", note="", signer=None):
    """A family whose only loan ended in February 2019: signed agreement, a reminder letter, invoiced and paid."""
    parent = factory.parent(email=email, name=name)
    _set(app, Family, parent.family_id, phone=phone, address=address, created_at=datetime(2018, 9, 1))
    _set(app, User, parent.id, last_login_at=datetime(2019, 3, 1))
    pupil = factory.child(parent, name=child, school=school, year_group=5, remission_category="free_school_meals",
                          remission_verified_on=date(2018, 9, 1), send=True)
    loan_id = factory.loan(factory.instrument(), pupil, started_on=date(2018, 9, 10), due_on=date(2018, 12, 12),
                           charges=pricing.Charges(fee_per_term=Decimal("36.00"), charge_per_term=Decimal("18.00")))
    hub = documents.Hub.from_config(app.config)
    with in_app(app) as session:
        loan = session.get(Loan, loan_id)
        agreement = documents.prepare_agreement(session, None, loan, hub)
        documents.record_desk_signature(session, None, agreement, signer_name=signer or name, hub=hub)
        session.commit()
    return parent, pupil, loan_id


@pytest.fixture
def hub(app, factory):
    """The Hoppers (due for anonymisation), the Turings (an instrument still out) and their figures."""
    factory.term(*AUTUMN_2018)
    factory.term(*SPRING_2019)
    publish_hire_conditions(app)
    with in_app(app) as session:
        notices.add_usual_stages(session, None)
        session.commit()
    school = factory.school("Elm Park Primary")
    hopper, ada, hopper_loan = _past_family(
        app, factory, school, name="Grace Hopper", email="grace.hopper@example.org", child="Ada Hopper",
        phone="07700 900123", address="1 Cobol Lane\nArlington AR1 2BC")
    turing, alan, turing_loan = _past_family(app, factory, school, name="Ethel Turing", email="ethel@example.org",
                                             child="Alan Turing")
    config = app.config
    with in_app(app) as session:
        # The autumn invoice, paid; the reminder letter (emailed, so also in the outbox).
        autumn = session.scalar(select(AcademicTerm).where(AcademicTerm.name == "Autumn 2018"))
        money.run_invoices(session, None, autumn, config, on=date(2018, 9, 10))
        session.flush()
        account = money.account_of(session, session.get(Family, hopper.family_id))
        money.record_payment(session, None, account, money.balance(session, account), "bank_transfer",
                             on=date(2018, 10, 1), reference="HOPPER VIOLIN", note="Paid by Grace Hopper")
        session.commit()
    with in_app(app) as session:
        documents_hub = documents.Hub.from_config(config)
        notices.send_notices(session, None, date(2019, 1, 20), documents_hub, config, deliver=False, processes=1)
    with in_app(app) as session:
        lending.check_in(session, None, session.get(Loan, hopper_loan), grade=3, note="Ada's case scuffed on the lid",
                         returned_on=date(2019, 2, 1))
        session.commit()
    with in_app(app) as session:
        privacy.record_access_request(session, None, family_id=hopper.family_id, requester_name="Gran Hopper-Smith",
                                      relationship_to_child="grandmother, with parental responsibility",
                                      received_on=today() - timedelta(days=3))
        session.commit()
    return {"hopper": hopper, "ada": ada, "hopper_loan": hopper_loan, "turing": turing, "alan": alan,
            "turing_loan": turing_loan, "school": school}


def dump(app) -> str:
    """Every row of every table (the outbox and stored PDFs included), as one lower-case text."""
    parts = []
    with in_app(app) as session:
        connection = session.connection()
        for table in sorted(inspect(connection).get_table_names()):
            rows = []
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                cells = [bytes(value).decode("latin-1") if isinstance(value, (bytes, memoryview)) else value
                         for value in row]
                rows.append("\n".join(f"{table}:{value}" for value in cells))
            parts += sorted(rows)  # in a stable order: PostgreSQL returns rows as they lie after an update
    return "\n".join(parts).lower()


def figures(app) -> dict:
    """The hub-wide counts a report gives: loans by school, year group and remission; charges and payments."""
    with in_app(app) as session:
        by = session.execute(select(Pupil.school_id, Pupil.year_group, Pupil.remission_category, func.count(Loan.id))
                             .join(Loan, Loan.pupil_id == Pupil.id)
                             .group_by(Pupil.school_id, Pupil.year_group, Pupil.remission_category)).all()
        return {"loans": sorted(map(tuple, by), key=str), "families": session.scalar(select(func.count(Family.id))),
                "pupils": session.scalar(select(func.count(Pupil.id))),
                "charges": session.scalar(select(func.sum(LoanCharge.amount))),
                "ledger": sorted(map(tuple, session.execute(select(LedgerEntry.kind, func.sum(LedgerEntry.amount))
                                                            .group_by(LedgerEntry.kind)).all()), key=str),
                "conditions": sorted(map(tuple, session.execute(
                    select(Loan.condition_at_issue, Loan.condition_at_return, Loan.status)).all()), key=str)}


def anonymise(app, *args):
    return app.test_cli_runner().invoke(args=["privacy", "anonymise", *args])


# ---------------------------------------------------------------- anonymisation


def test_the_hoppers_are_named_everywhere_before_anonymising(app, hub):
    before = dump(app)
    for word in ("grace hopper", "grace.hopper@example.org", "cobol lane", "case scuffed on the lid", "hopper violin"):
        assert word in before, word


def test_after_anonymising_no_table_holds_any_name_email_address_or_note_of_the_family(app, hub):
    result = anonymise(app)
    assert result.exit_code == 0, result.output
    assert "1 family was anonymised; 1 kept" in result.output
    after = dump(app)
    for word in HOPPER_WORDS:
        assert word.lower() not in after, word


def test_anonymising_keeps_every_hub_wide_figure(app, hub):
    before = figures(app)
    anonymise(app)
    assert figures(app) == before


def test_anonymised_family_and_child_read_as_numbers_and_lose_the_send_flag(app, hub):
    anonymise(app)
    with in_app(app) as session:
        family = session.get(Family, hub["hopper"].family_id)
        pupil = session.get(Pupil, hub["ada"].id)
        assert (family.name, family.email, family.phone, family.address) == (f"Family {family.id}", "", "", "")
        assert pupil.name == f"Pupil {pupil.id}"
        assert pupil.send is False
        assert pupil.remission_category == "free_school_meals"


def test_stored_pdfs_naming_the_family_are_deleted_keeping_date_kind_and_hash(app, hub):
    with in_app(app) as session:
        agreement = session.scalar(select(Agreement).join(Loan).where(Loan.id == hub["hopper_loan"]))
        sha = agreement.sha256
    anonymise(app)
    with in_app(app) as session:
        kept = session.scalars(select(RemovedDocument).where(
            RemovedDocument.family_id == hub["hopper"].family_id).order_by(RemovedDocument.id)).all()
        assert [(d.kind, d.sha256) for d in kept][0] == ("agreement", sha)
        assert {d.kind for d in kept} == {"agreement", "signed agreement", "notice"}
        assert session.scalar(select(func.count(Notice.id)).where(
            Notice.loan_id == hub["hopper_loan"], Notice.pdf.is_not(None))) == 0


def test_the_audit_trail_records_what_was_anonymised_never_the_values(app, hub):
    from loanservice.audit.models import AuditEvent

    anonymise(app)
    with in_app(app) as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "privacy.anonymised"))
        assert event.entity_id == hub["hopper"].family_id
        assert event.changes["counts"]["documents removed"] == 3
        assert "hopper" not in json.dumps(event.changes).lower() + event.summary.lower()


def test_the_audit_trail_still_refuses_a_change_to_its_figures(app, hub):
    from loanservice.audit.models import AuditEvent

    with in_app(app) as session:
        with pytest.raises(Exception, match="append-only"):
            session.execute(update(AuditEvent.__table__).values(action="forged"))
        session.rollback()
        with pytest.raises(Exception, match="append-only"):
            session.execute(update(LedgerEntry.__table__).values(amount=Decimal("1.00")))


def test_a_second_run_changes_nothing(app, hub):
    anonymise(app)
    before = dump(app)
    result = anonymise(app)
    assert result.exit_code == 0, result.output
    assert "0 families were anonymised" in result.output
    assert dump(app) == before


def test_a_family_with_an_instrument_still_on_loan_is_kept_and_says_why(app, hub):
    with in_app(app) as session:  # the Turings' loan is still out
        assert session.get(Loan, hub["turing_loan"]).closed_on is None
    result = anonymise(app)
    assert "an instrument is on loan to it" in result.output
    with in_app(app) as session:
        assert session.get(Family, hub["turing"].family_id).name == "Ethel Turing"


def test_a_family_with_a_loan_awaiting_its_agreement_is_kept(app, hub, factory):
    with in_app(app) as session:
        lending.check_in(session, None, session.get(Loan, hub["turing_loan"]), grade=2, returned_on=date(2019, 2, 1))
        session.commit()
    _set(app, Loan, hub["turing_loan"], status="pending", closed_on=None)
    result = anonymise(app)
    assert "awaiting its signed agreement" in result.output
    with in_app(app) as session:
        assert session.get(Family, hub["turing"].family_id).name == "Ethel Turing"


def test_a_family_with_an_open_reservation_is_kept(app, hub, factory):
    with in_app(app) as session:
        session.add(Reservation(pupil_id=hub["ada"].id, type_id=factory.instrument_type("Flute").id,
                                preferred_start_on=date(2019, 1, 7), created_at=datetime(2019, 1, 1)))
        session.commit()
    result = anonymise(app)
    assert "Kept family" in result.output and "a reservation is still open" in result.output
    with in_app(app) as session:
        assert session.get(Family, hub["hopper"].family_id).name == "Grace Hopper"


def test_a_family_that_owes_money_is_kept(app, hub):
    with in_app(app) as session:
        account = money.account_of(session, session.get(Family, hub["hopper"].family_id))
        money.refund(session, None, account, money.credit_held(session, account) or Decimal("0"), "bank_transfer",
                     "test") if money.credit_held(session, account) else None
        session.add(LedgerEntry(account_id=account.id, kind="invoice", number="INV-OLD-1", posted_on=date(2019, 1, 1),
                                due_on=date(2019, 1, 31), amount=Decimal("12.50")))
        session.commit()
    result = anonymise(app)
    assert "its account owes £12.50" in result.output
    with in_app(app) as session:
        assert session.get(Family, hub["hopper"].family_id).name == "Grace Hopper"


def test_a_family_on_hold_is_kept(app, hub):
    with in_app(app) as session:
        privacy.hold_family(session, None, session.get(Family, hub["hopper"].family_id), "Insurance claim open")
        session.commit()
    result = anonymise(app)
    assert "it is on hold (Insurance claim open)" in result.output
    with in_app(app) as session:
        assert session.get(Family, hub["hopper"].family_id).name == "Grace Hopper"


def test_a_hold_with_no_reason_is_refused(app, hub):
    with in_app(app) as session:
        with pytest.raises(privacy.InvalidInput, match="Give the reason"):
            privacy.hold_family(session, None, session.get(Family, hub["hopper"].family_id), "   ")


def test_an_anonymisation_date_in_the_future_is_refused_and_nothing_changes(app, hub):
    result = anonymise(app, "--as-of", (today() + timedelta(days=1)).isoformat())
    assert result.exit_code == 1
    assert "is in the future" in result.output
    with in_app(app) as session:
        assert session.get(Family, hub["hopper"].family_id).name == "Grace Hopper"


def test_a_dry_run_names_who_would_go_and_changes_nothing(app, hub):
    before = dump(app)
    result = anonymise(app, "--dry-run")
    assert "1 family would be anonymised" in result.output
    assert dump(app) == before


def test_review_lists_each_family_due_and_why(app, hub):
    result = app.test_cli_runner().invoke(args=["privacy", "review", "--as-of", "2025-06-01"])
    assert result.exit_code == 0, result.output
    assert "Grace Hopper: due 2025-02-01 (6 years since the last loan ended); will be anonymised" in result.output


def test_review_as_of_before_the_period_ends_lists_nobody(app, hub):
    result = app.test_cli_runner().invoke(args=["privacy", "review", "--as-of", "2025-01-31"])
    assert "Grace Hopper" not in result.output


def _fail_on_pupil_update(app, pupil_id):
    with in_app(app) as session:
        if ON_POSTGRES:
            session.execute(text("CREATE FUNCTION test_fail() RETURNS trigger AS $$ BEGIN "
                                 "RAISE EXCEPTION 'disk full'; END; $$ LANGUAGE plpgsql"))
            session.execute(text(f"CREATE TRIGGER test_fail BEFORE UPDATE ON pupil FOR EACH ROW "
                                 f"WHEN (OLD.id = {pupil_id}) EXECUTE FUNCTION test_fail()"))
        else:
            session.execute(text(f"CREATE TRIGGER test_fail BEFORE UPDATE ON pupil WHEN OLD.id = {pupil_id} "
                                 "BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
        session.commit()


def _drop_failure(app):
    with in_app(app) as session:
        session.execute(text("DROP TRIGGER test_fail ON pupil" if ON_POSTGRES else "DROP TRIGGER test_fail"))
        if ON_POSTGRES:
            session.execute(text("DROP FUNCTION test_fail()"))
        session.commit()


def test_a_failure_mid_run_leaves_no_family_half_done_and_a_rerun_finishes(app, hub, factory):
    with in_app(app) as session:  # the Turings' instrument comes back and they pay: both families are due
        lending.check_in(session, None, session.get(Loan, hub["turing_loan"]), grade=2, returned_on=date(2019, 2, 1))
        account = money.account_of(session, session.get(Family, hub["turing"].family_id))
        money.record_payment(session, None, account, money.balance(session, account), "cash", on=date(2019, 2, 1))
        session.commit()
    _fail_on_pupil_update(app, hub["alan"].id)
    try:
        result = anonymise(app)
        assert result.exit_code == 1
        assert f"Stopped at family #{hub['turing'].family_id}, left as it was" in result.output
        with in_app(app) as session:
            assert session.get(Family, hub["hopper"].family_id).name.startswith("Family ")
            turing = session.get(Family, hub["turing"].family_id)
            assert (turing.name, turing.email) == ("Ethel Turing", "ethel@example.org")
            assert session.scalar(select(func.count(RemovedDocument.id)).where(
                RemovedDocument.family_id == turing.id)) == 0
    finally:
        _drop_failure(app)
    result = anonymise(app)
    assert result.exit_code == 0, result.output
    assert "ethel" not in dump(app)


def test_old_emails_are_purged_and_recent_ones_kept(app, hub):
    from loanservice.mail import OutboxMessage, queue_mail

    with in_app(app) as session:
        mail = session.scalar(select(OutboxMessage).where(OutboxMessage.recipients.contains("ethel")))
        session.execute(update(OutboxMessage).where(OutboxMessage.id == mail.id).values(
            status="sent", sent_at=datetime(2019, 1, 20), created_at=datetime(2019, 1, 20)))
        queue_mail(session, app.config, to="ethel@example.org", subject="Your reservation is ready", body="Hello")
        session.commit()
        mail_id = mail.id
    result = anonymise(app)
    assert "1 old email was purged" in result.output
    with in_app(app) as session:
        purged = session.get(OutboxMessage, mail_id)
        assert (purged.recipients, purged.subject, len(purged.message)) == ("(removed)", "(removed)", 0)
        recent = session.scalar(select(OutboxMessage).where(OutboxMessage.subject == "Your reservation is ready"))
        assert recent.recipients == "ethel@example.org"


# ---------------------------------------------------------------- the pages: list, hold, erase


def test_admin_sees_the_coming_list_and_holds_a_family_with_a_reason(app, client, factory, hub):
    login(client, factory.user("admin"))
    page = client.get("/privacy/").get_data(as_text=True)
    assert "Grace Hopper" in page and "Will be anonymised" in page
    assert "Ethel Turing" in page and "Kept: an instrument is on loan" in page
    refused = submit(client, f"/privacy/families/{hub['hopper'].family_id}/hold", {"reason": ""})
    assert refused.status_code == 422
    assert "Give the reason for the hold." in refused.get_data(as_text=True)
    held = submit(client, f"/privacy/families/{hub['hopper'].family_id}/hold", {"reason": "Debt recovery"},
                  follow_redirects=True)
    assert "Grace Hopper is on hold" in held.get_data(as_text=True)
    assert "Kept: it is on hold (Debt recovery)" in held.get_data(as_text=True)


def test_staff_cannot_see_the_coming_list(app, staff_client):
    assert staff_client.get("/privacy/").status_code == 403


def test_admin_changes_the_retention_policy(app, client, factory, hub):
    login(client, factory.user("admin"))
    response = submit(client, "/privacy/", {"family_years": "8"}, follow_redirects=True)
    assert "Saved the retention policy." in response.get_data(as_text=True)
    result = app.test_cli_runner().invoke(args=["privacy", "review"])
    assert "Grace Hopper" not in result.output  # 8 years: not due until 2027


def test_staff_erase_a_family_on_request_after_typing_erase(app, staff_client, hub):
    url = f"/privacy/families/{hub['hopper'].family_id}/erase"
    refused = submit(staff_client, url, {"confirm": "yes"})
    assert refused.status_code == 422 and "Type ERASE to confirm." in refused.get_data(as_text=True)
    erased = submit(staff_client, url, {"confirm": "erase"}, follow_redirects=True)
    assert "Erased Grace Hopper" in erased.get_data(as_text=True)
    assert "grace.hopper@example.org" not in dump(app)


def test_erasure_is_refused_with_its_reason_while_a_loan_is_out(app, staff_client, hub):
    url = f"/privacy/families/{hub['turing'].family_id}/erase"
    page = staff_client.get(url).get_data(as_text=True)
    assert "Because an instrument is on loan to it or awaiting its signed agreement." in page
    refused = submit(staff_client, url, {"confirm": "ERASE"})
    assert refused.status_code == 409
    assert "Ethel Turing cannot be anonymised: an instrument is on loan" in refused.get_data(as_text=True)


def test_an_unknown_family_is_a_404(app, staff_client, hub):
    assert staff_client.get("/privacy/families/999999").status_code == 404
    assert staff_client.get("/privacy/families/999999/export").status_code == 404


# ---------------------------------------------------------------- subject access


def test_a_request_is_due_one_calendar_month_later():
    assert privacy.add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert privacy.add_months(date(2026, 11, 15), 1) == date(2026, 12, 15)
    assert privacy.add_months(date(2026, 12, 15), 2) == date(2027, 2, 15)


def test_staff_record_a_request_and_the_register_shows_its_deadline(app, staff_client, hub):
    received = today() - timedelta(days=1)
    response = submit(staff_client, "/privacy/requests", {
        "family_id": str(hub["turing"].family_id), "requester_name": "Mr Turing", "relationship_to_child": "father",
        "received_on": received.isoformat()}, form="family_id", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert f"answer by {privacy.add_months(received, 1):%-d %B %Y}" in page
    assert "Mr Turing (father)" in page


def test_recording_a_request_names_the_family_it_was_recorded_against(app, staff_client, hub):
    with in_app(app) as session:
        name = session.get(Family, hub["turing"].family_id).name
    response = submit(staff_client, "/privacy/requests", {
        "family_id": str(hub["turing"].family_id), "requester_name": "Mr Turing", "relationship_to_child": "father",
        "received_on": today().isoformat()}, form="family_id", follow_redirects=True)
    assert f"request about {name} (family {hub['turing'].family_id})" in response.get_data(as_text=True)


def test_a_request_for_an_unknown_family_says_so(app, staff_client, hub):
    response = submit(staff_client, "/privacy/requests", {
        "family_id": "999999", "requester_name": "Someone", "relationship_to_child": "aunt",
        "received_on": today().isoformat()}, form="family_id")
    assert response.status_code == 404
    assert "There is no family number 999999." in response.get_data(as_text=True)


def test_an_extension_needs_a_reason_and_moves_the_deadline_by_up_to_two_months(app, staff_client, hub):
    with in_app(app) as session:
        request = session.scalar(select(AccessRequest))
        due = request.due_on
    url = f"/privacy/requests/{request.id}/extend"
    refused = submit(staff_client, url, {"months": "2", "reason": ""})
    assert refused.status_code == 422 and "Say why the request needs longer." in refused.get_data(as_text=True)
    done = submit(staff_client, url, {"months": "2", "reason": "Records held at two schools"}, follow_redirects=True)
    assert f"answer by {privacy.add_months(due, 2):%-d %B %Y}" in done.get_data(as_text=True)


# ---------------------------------------------------------------- the export


def _zip(response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.data))


def test_a_parent_downloads_everything_held_about_their_family(app, client, hub):
    login(client, hub["hopper"])
    home = client.get("/").get_data(as_text=True)
    assert f"/privacy/families/{hub['hopper'].family_id}/export" in home
    archive = _zip(client.get(f"/privacy/families/{hub['hopper'].family_id}/export"))
    names = archive.namelist()
    assert "summary.html" in names and "data.json" in names
    data = json.loads(archive.read("data.json"))
    assert data["family"]["email"] == "grace.hopper@example.org"
    assert data["children"][0]["name"] == "Ada Hopper"
    assert data["children"][0]["remission_category"] == "Free school meals"
    assert data["children"][0]["remission_verified_on"] == "2018-09-01"
    assert data["loans"][0]["condition_at_return"] == 3
    assert data["loans"][0]["return_note"] == "Ada's case scuffed on the lid"
    assert [e["kind"] for e in data["invoices_and_payments"]] == ["invoice", "payment"]
    assert data["notices"][0]["letter"] == "Reminder"
    assert data["emails"][0]["recipients"] == "grace.hopper@example.org"
    assert any(e["action"] == "loan.out" for e in data["audit_events"])
    assert data["subject_access_requests"][0]["requester_name"] == "Gran Hopper-Smith"
    summary = archive.read("summary.html").decode()
    assert "Everything Demo Music Hub holds about Grace Hopper" in summary
    assert "Ada Hopper" in summary and "Free school meals" in summary
    agreement = next(n for n in names if n.startswith("documents/agreement-") and n.endswith("-signed.pdf"))
    assert "Grace Hopper" in pdf_text(archive.read(agreement))
    assert any(n.startswith("documents/notice-") for n in names)
    assert any(n.startswith("emails/") and n.endswith(".eml") for n in names)


def test_another_parent_asking_for_the_export_gets_404(app, client, hub):
    login(client, hub["turing"])
    assert client.get(f"/privacy/families/{hub['hopper'].family_id}/export").status_code == 404


def test_a_school_user_asking_for_the_export_gets_404(app, client, factory, hub):
    login(client, factory.user("school", school=hub["school"]))
    assert client.get(f"/privacy/families/{hub['hopper'].family_id}/export").status_code == 404


def test_an_export_asked_twice_at_once_gives_both_the_whole_file(app, factory, hub):
    staff = factory.user("staff")
    results = []

    def fetch():
        client = app.test_client()
        login(client, staff)
        response = client.get(f"/privacy/families/{hub['hopper'].family_id}/export")
        results.append((response.status_code, sorted(zipfile.ZipFile(io.BytesIO(response.data)).namelist())))

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in results] == [200, 200]
    assert results[0][1] == results[1][1]


def test_after_anonymising_the_export_is_gone(app, staff_client, hub):
    anonymise(app)
    assert staff_client.get(f"/privacy/families/{hub['hopper'].family_id}/export").status_code == 404


def test_the_family_privacy_page_shows_when_its_data_may_go(app, staff_client, hub):
    page = staff_client.get(f"/privacy/families/{hub['hopper'].family_id}").get_data(as_text=True)
    assert "may be anonymised from <strong>1 February 2025</strong>" in page
    assert "Nothing stops it being anonymised" in page


# ---------------------------------------------------------------- the privacy notice


def test_the_privacy_notice_is_versioned_and_a_parent_keeps_the_version_they_accepted(app, client, factory):
    from loanservice.privacy.models import PrivacyNoticeAcceptance

    admin = factory.user("admin")
    login(client, admin)
    refused = submit(client, "/privacy/notice/edit", {"text": ""})
    assert refused.status_code == 422 and "Write the privacy notice." in refused.get_data(as_text=True)
    first = submit(client, "/privacy/notice/edit", {"text": "We keep your child's name and school.\n\nFor 6 years."},
                   follow_redirects=True)
    assert "Published version 1 of the privacy notice." in first.get_data(as_text=True)
    client.post("/logout", data={})
    anonymous = app.test_client()
    register_page = anonymous.get("/register").get_data(as_text=True)
    assert 'href="/privacy/notice"' in register_page
    submit(anonymous, "/register", {"name": "Pat Parent", "email": "pat@example.org",
                                    "password": "a long enough passphrase 7", "confirm": "a long enough passphrase 7"})
    again = app.test_client()
    login(again, admin)
    submit(again, "/privacy/notice/edit", {"text": "We keep your child's name and school.\n\nFor 7 years."})
    with in_app(app) as session:
        user = session.scalar(select(User).where(User.email == "pat@example.org"))
        accepted = session.scalars(select(PrivacyNoticeAcceptance).where(PrivacyNoticeAcceptance.user_id == user.id)
                                   ).all()
        assert [a.notice.version for a in accepted] == [1]
    page = again.get("/privacy/notice").get_data(as_text=True)
    assert "Version 2" in page and "For 7 years." in page


def test_every_page_links_the_privacy_notice(app, client):
    assert 'href="/privacy/notice"' in client.get("/login").get_data(as_text=True)
    empty = client.get("/privacy/notice")
    assert empty.status_code == 200
    assert "has not published its privacy notice here yet" in empty.get_data(as_text=True)
