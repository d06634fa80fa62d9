"""Loans of single instruments: services and staff pages."""
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from loanservice.audit.models import AuditEvent
from loanservice.borrowers.models import Family, Pupil
from loanservice.errors import InvalidInput, LoanServiceError
from loanservice.inventory.models import ConditionCheck, Instrument, Repair
from loanservice.inventory.services import mark_found, mark_missing, send_to_repair, write_off
from loanservice.inventory.tags import resolve_instrument
from loanservice.loans import availability, calendar, lending, pricing, queries
from loanservice.loans.models import AcademicTerm, Loan, LoanCharge, RemissionKind
from loanservice.schools.models import School
from loanservice.sets.models import ClassroomSet
from loanservice.sets.services import check_out_set
from loanservice.timeutil import today

from .conftest import in_app, login
from .pages import read_form, submit


def load_loan(session, loan_id):
    return session.get(Loan, loan_id)


# ---------------------------------------------------------------- services


def test_check_out_lends_the_instrument_and_copies_fee_and_remission(app, factory):
    instrument = factory.instrument(accessories="case, bow")
    pupil = factory.pupil(remission_category="free_school_meals", remission_verified_on=date(2025, 9, 10),
                          year_group=4)
    start = today()
    loan_id = factory.loan(instrument, pupil, started_on=start, due_on=start + timedelta(days=90),
                   charges=pricing.Charges(fee_per_term=Decimal("30.00"), deposit=Decimal("25.00")))
    with in_app(app) as session:
        loan = load_loan(session, loan_id)
        assert loan.instrument.status == "on_loan"
        assert loan.borrower.name == pupil.name and loan.borrower_kind == "pupil"
        assert loan.fee_per_term == Decimal("30.00")
        assert loan.charge_per_term == Decimal("0.00")  # free with remission
        assert loan.remission_category == "free_school_meals"
        assert loan.deposit == Decimal("25.00")
        assert loan.accessories == "case, bow"
        assert loan.condition_at_issue == instrument.condition_grade
        # A later change of the pupil's eligibility does not rewrite the loan.
        loan.pupil.remission_category = "none"
        session.commit()
        assert session.get(Loan, loan_id).remission_category == "free_school_meals"


def test_without_remission_the_full_fee_is_charged(app, factory):
    instrument, family = factory.instrument(), factory.family()
    loan_id = factory.loan(instrument, family, due_on=today() + timedelta(days=10),
                   charges=pricing.Charges(fee_per_term=Decimal("16.00")))
    with in_app(app) as session:
        assert load_loan(session, loan_id).charge_per_term == Decimal("16.00")


def test_due_date_defaults_to_the_end_of_the_term(app, factory):
    start = today()
    factory.term("This term", start - timedelta(days=10), start + timedelta(days=40))
    factory.term("Next term", start + timedelta(days=55), start + timedelta(days=120))
    loan_id = factory.loan(factory.instrument(), factory.school(), started_on=start)
    with in_app(app) as session:
        loan = load_loan(session, loan_id)
        assert loan.due_on == start + timedelta(days=40)
        lending.renew(session, None, loan)
        session.commit()
        assert load_loan(session, loan_id).due_on == start + timedelta(days=120)


def test_due_date_is_required_without_a_term(app, factory):
    with pytest.raises(InvalidInput, match="give a due date"):
        factory.loan(factory.instrument(), factory.school())


def test_due_date_before_start_is_refused(app, factory):
    instrument = factory.instrument()
    with pytest.raises(InvalidInput, match="start date is in the future"):
        factory.loan(instrument, factory.school(), started_on=today() + timedelta(days=1),
             due_on=today() + timedelta(days=9))
    with pytest.raises(InvalidInput, match="before the start"):
        factory.loan(instrument, factory.school(), started_on=today(), due_on=today() - timedelta(days=1))
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 0
        assert resolve_instrument(session, instrument.asset_tag).status == "available"


@pytest.mark.parametrize("make_unlendable, message", [
    (lambda s, i: send_to_repair(s, None, i, repairer="Luthier"), "is in repair"),
    (lambda s, i: write_off(s, None, i, "Crushed"), "has been written off"),
    (lambda s, i: mark_missing(s, None, i), "is missing"),
])
def test_instruments_that_are_not_in_stock_cannot_be_lent(app, factory, make_unlendable, message):
    instrument = factory.instrument()
    with in_app(app) as session:
        make_unlendable(session, resolve_instrument(session, instrument.asset_tag))
        session.commit()
    with pytest.raises(LoanServiceError, match=f"{instrument.asset_tag} {message}"):
        factory.loan(instrument, factory.family(), due_on=today())


def test_a_second_check_out_is_refused_as_already_on_loan(app, factory):
    instrument = factory.instrument()
    factory.loan(instrument, factory.family(), due_on=today())
    with pytest.raises(LoanServiceError, match=f"^{instrument.asset_tag} is already on loan.$"):
        factory.loan(instrument, factory.family(), due_on=today())


def test_the_database_allows_one_open_loan_per_instrument(app, factory):
    """Even past the service (a stale status read), the index refuses a second open loan."""
    instrument, first, second = factory.instrument(), factory.family(), factory.family()
    factory.loan(instrument, first, due_on=today())
    with in_app(app) as session:
        locked = resolve_instrument(session, instrument.asset_tag)
        locked.status = "available"  # as a racing request that read it before the first commit
        with pytest.raises(LoanServiceError, match="is already on loan"):
            lending.open_loan(session, None, locked, session.get(type(second), second.id), due_on=today())
        session.rollback()
        assert session.scalar(select(func.count()).select_from(Loan)) == 1


def test_check_in_records_the_return_condition_and_makes_it_available(app, factory):
    instrument = factory.instrument()
    loan_id = factory.loan(instrument, factory.family(), due_on=today())
    with in_app(app) as session:
        loan = lending.check_in(session, None, load_loan(session, loan_id), grade=3, note="Scratched back")
        session.commit()
        loan = load_loan(session, loan_id)
        assert (loan.status, loan.closed_on, loan.condition_at_return) == ("returned", today(), 3)
        assert loan.instrument.status == "available" and loan.instrument.condition_grade == 3
        check = session.scalars(select(ConditionCheck).where(ConditionCheck.reason == "return")).one()
        assert (check.grade, check.note) == (3, "Scratched back")
        with pytest.raises(LoanServiceError, match="is not on loan"):
            lending.check_in(session, None, loan, grade=2)


def test_check_in_writes_its_history_at_once_and_leaves_nothing_for_the_next_flush(app, factory):
    instrument = factory.instrument(condition_grade=2)
    staff = factory.user("staff")
    loan_id = factory.loan(instrument, factory.school(name="Hill School"), due_on=today())
    with in_app(app) as session:
        loan = load_loan(session, loan_id)
        before = loan.instrument.updated_at
        lending.check_in(session, session.get(type(staff), staff.id), loan, grade=3, note="Scuffed")
        # The loaded objects show the return before any commit, with no changes pending.
        assert (loan.status, loan.closed_on, loan.condition_at_return, loan.return_note) == (
            "returned", today(), 3, "Scuffed")
        assert (loan.instrument.status, loan.instrument.condition_grade) == ("available", 3)
        assert not session.dirty and not session.new
        assert loan.closed_by.id == staff.id
        assert loan.instrument.updated_at >= before  # the UPDATE's own timestamp, read back
        session.commit()
        events = session.execute(select(AuditEvent.action, AuditEvent.summary, AuditEvent.actor_id)
                                 .where(AuditEvent.instrument_id == instrument.id).order_by(AuditEvent.id)).all()[-3:]
        assert [(action, actor) for action, _, actor in events] == [
            ("instrument.condition", staff.id), ("instrument.status", staff.id), ("loan.in", staff.id)]
        assert events[2][1] == "Returned by Hill School"
        check = session.scalars(select(ConditionCheck).where(ConditionCheck.reason == "return")).one()
        assert (check.grade, check.note, check.checked_by_id) == (3, "Scuffed", staff.id)
        assert load_loan(session, loan_id).closed_by_id == staff.id


def test_a_damaged_return_goes_to_repair(app, factory):
    instrument = factory.instrument()
    loan_id = factory.loan(instrument, factory.family(), due_on=today())
    with in_app(app) as session:
        with pytest.raises(InvalidInput, match="Describe the damage"):
            lending.check_in(session, None, load_loan(session, loan_id), grade=4, damaged=True)
        lending.check_in(session, None, load_loan(session, loan_id), grade=4, damaged=True, note="Cracked top")
        session.commit()
        assert resolve_instrument(session, instrument.asset_tag).status == "in_repair"
        assert session.scalars(select(Repair)).one().fault == "Cracked top"
        assert load_loan(session, loan_id).damaged is True


def test_renewal_must_move_the_due_date_later(app, factory):
    loan_id = factory.loan(factory.instrument(), factory.family(), due_on=today() + timedelta(days=5))
    with in_app(app) as session:
        with pytest.raises(InvalidInput, match="later"):
            lending.renew(session, None, load_loan(session, loan_id), today())
        lending.renew(session, None, load_loan(session, loan_id), today() + timedelta(days=60))
        session.commit()
        assert load_loan(session, loan_id).due_on == today() + timedelta(days=60)


def test_an_overdue_loan_is_renewed_from_today_not_to_a_date_already_gone(app, factory, staff_client):
    gone = today() - timedelta(days=10)
    loan_id = factory.loan(factory.instrument(), factory.family(), started_on=today() - timedelta(days=90), due_on=gone)
    past = gone + timedelta(days=5)
    response = staff_client.post(f"/loans/{loan_id}/renew", data={"due_on": past.isoformat()})
    assert response.status_code == 422
    assert f"{past:%-d %b %Y} is in the past: give a due date from today on." in response.get_data(as_text=True)
    with in_app(app) as session:
        assert load_loan(session, loan_id).due_on == gone
    new_due = today() + timedelta(days=30)
    response = staff_client.post(f"/loans/{loan_id}/renew", data={"due_on": new_due.isoformat()})
    assert response.status_code == 303
    assert f"renewed: due back {new_due:%-d %b %Y}." in staff_client.get(response.location).get_data(as_text=True)


def test_the_renew_page_renders_the_due_date_it_showed_once(app, factory, staff_client):
    loan_id = factory.loan(factory.instrument(), factory.family(), due_on=today() + timedelta(days=5))
    page = staff_client.get(f"/loans/{loan_id}/renew").get_data(as_text=True)
    rendered = read_form(page, f"/loans/{loan_id}/renew")
    assert len(rendered.values("was_due_on")) == 1


def test_a_loan_is_renewed_from_the_form_as_the_page_renders_it(app, factory, staff_client):
    loan_id = factory.loan(factory.instrument(), factory.family(), due_on=today() + timedelta(days=5))
    new_due = today() + timedelta(days=40)
    response = submit(staff_client, f"/loans/{loan_id}/renew", {"due_on": new_due.isoformat()},
                      follow_redirects=True)
    assert f"renewed: due back {new_due:%-d %b %Y}." in response.get_data(as_text=True)


def test_the_latest_due_date_is_the_end_of_the_next_school_year():
    assert calendar.latest_due_date(date(2026, 11, 22)) == date(2028, 8, 31)
    assert calendar.latest_due_date(date(2026, 9, 1)) == date(2028, 8, 31)  # a new school year has begun
    assert calendar.latest_due_date(date(2026, 8, 31)) == date(2027, 8, 31)
    assert calendar.latest_due_date(date(2027, 1, 4)) == date(2028, 8, 31)


def test_the_earliest_start_date_is_the_start_of_the_previous_school_year():
    assert calendar.earliest_start_date(date(2026, 11, 22)) == date(2025, 9, 1)
    assert calendar.earliest_start_date(date(2026, 9, 1)) == date(2025, 9, 1)  # a new school year has begun
    assert calendar.earliest_start_date(date(2026, 8, 31)) == date(2024, 9, 1)
    assert calendar.earliest_start_date(date(2027, 1, 4)) == date(2025, 9, 1)


def far_future_typo() -> date:
    """A due date with the year mistyped, e.g. 2062 for 2026."""
    return date(today().year + 36, 7, 20)


def test_renewal_to_a_far_future_typo_is_refused_and_changes_nothing(app, factory):
    due = today() + timedelta(days=5)
    loan_id = factory.loan(factory.instrument(), factory.family(), due_on=due)
    latest = calendar.latest_due_date(today())
    with in_app(app) as session:
        with pytest.raises(InvalidInput, match="too far ahead") as refused:
            lending.renew(session, None, load_loan(session, loan_id), far_future_typo())
        assert refused.value.field == "due_on"
        assert f"the end of the next school year, {latest:%-d %b %Y}, at the latest" in refused.value.message
        with pytest.raises(InvalidInput, match="too far ahead"):
            lending.renew(session, None, load_loan(session, loan_id), latest + timedelta(days=1))
        session.rollback()
        assert load_loan(session, loan_id).due_on == due
        assert session.scalar(select(func.count()).where(AuditEvent.action == "loan.renewed")) == 0
        lending.renew(session, None, load_loan(session, loan_id), latest)  # the bound itself is fine
        session.commit()
        assert load_loan(session, loan_id).due_on == latest


def test_the_renew_form_refuses_a_far_future_typo_beside_the_due_date(app, factory, staff_client):
    due = today() + timedelta(days=5)
    loan_id = factory.loan(factory.instrument(), factory.family(), due_on=due)
    typo = far_future_typo()
    response = staff_client.post(f"/loans/{loan_id}/renew", data={"due_on": typo.isoformat()})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'<p class="error" id="due_on-error">{typo:%-d %b %Y} is too far ahead' in page
    with in_app(app) as session:
        assert load_loan(session, loan_id).due_on == due
    within = today() + timedelta(days=200)
    response = staff_client.post(f"/loans/{loan_id}/renew", data={"due_on": within.isoformat()})
    assert response.status_code == 303
    with in_app(app) as session:
        assert load_loan(session, loan_id).due_on == within


def test_size_exchange_returns_one_size_and_lends_the_next_to_the_same_pupil(app, factory):
    violin = factory.instrument_type("Violin", sizes=("1/4", "1/2", "3/4"))
    small = factory.instrument(violin, size="1/4")
    bigger = factory.instrument(violin, size="1/2")
    wrong = factory.instrument(violin, size="3/4")
    pupil = factory.pupil(remission_category="pupil_premium", remission_verified_on=date(2025, 9, 1))
    loan_id = factory.loan(small, pupil, due_on=today() + timedelta(days=30),
                   charges=pricing.Charges(fee_per_term=Decimal("30.00"), charge_per_term=Decimal("12.00")))
    with in_app(app) as session:
        with pytest.raises(InvalidInput, match="next size is a Violin 1/2"):
            lending.size_exchange(session, None, load_loan(session, loan_id),
                                   resolve_instrument(session, wrong.asset_tag), grade=2)
        session.rollback()
        new = lending.size_exchange(session, None, load_loan(session, loan_id),
                                     resolve_instrument(session, bigger.asset_tag, for_update=True), grade=2)
        session.commit()
        old = load_loan(session, loan_id)
        assert old.status == "exchanged" and old.instrument.status == "available"
        new = session.get(Loan, new.id)
        assert new.exchanged_from_id == old.id and new.pupil_id == pupil.id
        assert new.instrument.asset_tag == bigger.asset_tag and new.instrument.status == "on_loan"
        assert (new.fee_per_term, new.charge_per_term, new.remission_category) == (
            Decimal("30.00"), Decimal("12.00"), "pupil_premium")
        assert new.due_on == today() + timedelta(days=30)


def test_mark_lost_closes_the_loan_and_the_replacement_value_is_owed(app, factory):
    instrument = factory.instrument(replacement_value=Decimal("140.00"))
    loan_id = factory.loan(instrument, factory.family(), due_on=today())
    with in_app(app) as session:
        lending.mark_lost(session, None, load_loan(session, loan_id), "Stolen from car")
        session.commit()
        loan = load_loan(session, loan_id)
        assert (loan.status, loan.replacement_owed) == ("lost", Decimal("140.00"))
        assert loan.instrument.status == "missing"
    # Once found, the same instrument can be lent again: the lost loan is closed.
    with in_app(app) as session:
        mark_found(session, None, resolve_instrument(session, instrument.asset_tag), 2)
        session.commit()
    factory.loan(instrument, factory.family(), due_on=today())


def test_a_family_sees_its_pupils_loans(app, factory):
    family = factory.family()
    pupil = factory.pupil(family=family)
    first = factory.loan(factory.instrument(), pupil, due_on=today())
    factory.loan(factory.instrument(), factory.pupil(), due_on=today())
    with in_app(app) as session:
        lending.check_in(session, None, load_loan(session, first), grade=2)
        session.commit()
    second = factory.loan(factory.instrument(), family, due_on=today())
    with in_app(app) as session:
        now, before = queries.loans_of(session, session.get(Family, family.id))
        assert [loan.id for loan in now] == [second] and [loan.id for loan in before] == [first]


def test_overdue_lists_open_loans_past_due(app, factory):
    late = factory.loan(factory.instrument(), factory.family(), started_on=today() - timedelta(days=60),
                due_on=today() - timedelta(days=3))
    factory.loan(factory.instrument(), factory.family(), due_on=today())
    with in_app(app) as session:
        assert [loan.id for loan in queries.overdue_loans(session)] == [late]


# ---------------------------------------------------------------- pages


def test_staff_lend_an_instrument_from_the_form_and_see_it_on_the_borrower_page(app, factory, staff_client):
    factory.instrument(asset_tag="VLN-1")
    pupil = factory.pupil(name="Ada Lovelace", year_group=5)
    page = staff_client.get(f"/loans/new?tag=VLN-1&borrower=pupil-{pupil.id}").get_data(as_text=True)
    assert "Ada Lovelace" in page
    due = (today() + timedelta(days=30)).isoformat()
    response = staff_client.post("/loans/new", data={
        "tag": "http://hub.test/i/vln-1", "borrower": f"pupil-{pupil.id}", "started_on": today().isoformat(),
        "due_on": due, "condition_grade": "2", "fee_per_term": "30", "deposit": "25"})
    assert response.status_code == 303, response.get_data(as_text=True)
    page = staff_client.get(f"/borrowers/pupil/{pupil.id}").get_data(as_text=True)
    assert "Holds now (1)" in page and "VLN-1" in page
    page = staff_client.get("/instruments/VLN-1").get_data(as_text=True)
    assert "Ada Lovelace" in page and "On loan" in page
    # The same form again (a double submit) is refused and changes nothing.
    again = staff_client.post("/loans/new", data={
        "tag": "VLN-1", "borrower": f"pupil-{pupil.id}", "started_on": today().isoformat(), "due_on": due,
        "condition_grade": "2"})
    assert again.status_code == 409 and "VLN-1 is already on loan." in again.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 1


def test_the_lend_form_refuses_a_far_future_typo_beside_the_due_date(app, factory, staff_client):
    instrument, family = factory.instrument(), factory.family()
    lend_form = {"tag": instrument.asset_tag, "borrower": f"family-{family.id}", "started_on": today().isoformat(),
               "condition_grade": "2"}
    typo = far_future_typo()
    response = staff_client.post("/loans/new", data={**lend_form, "due_on": typo.isoformat()})
    assert response.status_code == 422
    assert f'<p class="error" id="due_on-error">{typo:%-d %b %Y} is too far ahead' in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 0
        assert resolve_instrument(session, instrument.asset_tag).status == "available"
    latest = calendar.latest_due_date(today())
    response = staff_client.post("/loans/new", data={**lend_form, "due_on": latest.isoformat()})
    assert response.status_code == 303
    with in_app(app) as session:
        assert session.scalars(select(Loan)).one().due_on == latest


def test_the_lend_form_refuses_a_start_date_before_last_school_year_beside_the_start_date(app, factory,
                                                                                         staff_client):
    instrument, family = factory.instrument(), factory.family()
    lend_form = {"tag": instrument.asset_tag, "borrower": f"family-{family.id}", "condition_grade": "2",
               "due_on": (today() + timedelta(days=30)).isoformat()}
    earliest = calendar.earliest_start_date(today())
    for typo in (date(2010, 9, 6), earliest - timedelta(days=1)):
        response = staff_client.post("/loans/new", data={**lend_form, "started_on": typo.isoformat()})
        assert response.status_code == 422
        assert (f'<p class="error" id="started_on-error">{typo:%-d %b %Y} is too long ago: a loan can start on '
                f"{earliest:%-d %b %Y}, the start of the previous school year, at the earliest. Check the year."
                ) in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 0
        assert resolve_instrument(session, instrument.asset_tag).status == "available"
    # A loan handed over last school year and recorded only now is still recorded.
    response = staff_client.post("/loans/new", data={**lend_form, "started_on": earliest.isoformat()})
    assert response.status_code == 303
    with in_app(app) as session:
        assert session.scalars(select(Loan)).one().started_on == earliest


def test_the_lend_form_refuses_a_due_date_before_the_start(app, factory, staff_client):
    instrument, family = factory.instrument(), factory.family()
    response = staff_client.post("/loans/new", data={
        "tag": instrument.asset_tag, "borrower": f"family-{family.id}", "started_on": today().isoformat(),
        "due_on": (today() - timedelta(days=1)).isoformat(), "condition_grade": "2"})
    assert response.status_code == 422
    assert "The due date is before the start date." in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 0


def test_check_in_page_requires_a_condition_and_refuses_a_second_check_in(app, factory, staff_client):
    instrument = factory.instrument()
    loan_id = factory.loan(instrument, factory.family(), due_on=today())
    response = staff_client.post(f"/loans/{loan_id}/check-in", data={"returned_on": today().isoformat()})
    text = response.get_data(as_text=True)
    assert response.status_code == 422 and "Choose a condition grade." in text
    # The error summary links to the radio group's first radio, an element that exists.
    assert re.search(r'<a href="#grade-0">[^<]*Choose a condition grade', text) and 'id="grade-0"' in text
    assert 'href="#grade"' not in text
    data = {"returned_on": today().isoformat(), "grade": "2", "note": "Fine"}
    assert staff_client.post(f"/loans/{loan_id}/check-in", data=data).status_code == 303
    page = staff_client.get(f"/loans/{loan_id}").get_data(as_text=True)
    assert "Return receipt" in page and "2 Good" in page
    again = staff_client.post(f"/loans/{loan_id}/check-in", data=data)
    assert again.status_code == 409 and "is not on loan" in again.get_data(as_text=True)


def test_exchange_and_lost_pages(app, factory, staff_client):
    violin = factory.instrument_type("Violin", sizes=("1/4", "1/2"))
    small, bigger = factory.instrument(violin, size="1/4"), factory.instrument(violin, size="1/2")
    loan_id = factory.loan(small, factory.pupil(), due_on=today())
    response = staff_client.post(f"/loans/{loan_id}/exchange", data={"tag": bigger.asset_tag, "grade": "2"})
    assert response.status_code == 303
    page = staff_client.get(response.location).get_data(as_text=True)
    assert "Exchanged from" in page and small.asset_tag in page
    new_id = int(response.location.rsplit("/", 1)[1])
    response = staff_client.post(f"/loans/{new_id}/lost", data={"note": "Left on the bus"})
    assert response.status_code == 303
    with in_app(app) as session:
        assert session.get(Loan, new_id).status == "lost"


ACTIONS = ("check-in", "renew", "exchange", "lost")


def test_a_closed_loans_action_pages_say_what_happened_instead_of_offering_their_forms(app, factory,
                                                                                      staff_client):
    violin = factory.instrument_type("Violin", sizes=("1/4", "1/2"))
    returned = factory.loan(factory.instrument(violin, size="1/4"), factory.pupil(), due_on=today())
    lost = factory.loan(factory.instrument(violin, size="1/4", replacement_value=Decimal("180")), factory.family(),
                due_on=today())
    exchanged = factory.loan(factory.instrument(violin, size="1/4"), factory.pupil(), due_on=today())
    still_out = factory.loan(factory.instrument(violin, size="1/4"), factory.family(name="The Patels"),
                     due_on=today())
    assert staff_client.post(f"/loans/{returned}/check-in",
                             data={"grade": "3", "damaged": "y", "note": "Bridge down",
                                   "returned_on": today().isoformat()}).status_code == 303
    assert staff_client.post(f"/loans/{lost}/lost", data={"note": "Left on the bus"}).status_code == 303
    bigger = factory.instrument(violin, size="1/2")
    assert staff_client.post(f"/loans/{exchanged}/exchange", data={"tag": bigger.asset_tag,
                                                                   "grade": "2"}).status_code == 303
    day = f"{today():%-d %b %Y}"
    said = {returned: f"Returned on {day} in condition 3 Fair, damaged: sent to repair.",
            lost: f"Recorded as lost or stolen on {day}: its replacement cost, £180.00, is owed.",
            exchanged: f"Exchanged for the next size on {day}: "}
    for loan_id, what_happened in said.items():
        for action in ACTIONS:
            response = staff_client.get(f"/loans/{loan_id}/{action}")
            page = response.get_data(as_text=True)
            assert response.status_code == 200 and what_happened in page, (loan_id, action)
            assert "<form method=\"post\" class=\"panel\"" not in page, (loan_id, action)
    assert "came back in condition 2 Good." in staff_client.get(f"/loans/{exchanged}/renew").get_data(as_text=True)
    # A form sent from a page opened before the loan closed is refused and changes nothing.
    late = staff_client.post(f"/loans/{returned}/check-in", data={"grade": "1", "returned_on": today().isoformat()})
    assert late.status_code == 409 and said[returned] in late.get_data(as_text=True)
    with in_app(app) as session:
        assert session.get(Loan, returned).condition_at_return == 3
    for action in ACTIONS:  # a loan still out offers every one
        assert "<form method=\"post\" class=\"panel\"" in staff_client.get(f"/loans/{still_out}/{action}").get_data(
            as_text=True)
    cancel = staff_client.get(f"/loans/{still_out}/cancel").get_data(as_text=True)  # only a pending loan is cancelled
    assert "<form method=\"post\" class=\"panel\"" not in cancel and "This cannot be undone" not in cancel
    assert f"is on loan to The Patels until {day}: check it in, or record it lost, instead." in cancel


def test_overdue_page_lists_late_loans_for_staff_only(app, factory, client, staff_client):
    late = factory.instrument(asset_tag="LATE-1")
    family = factory.family(name="The Late Family", email="late@example.org", phone="01234 000111")
    factory.loan(late, factory.pupil(name="Ada", family=family), started_on=today() - timedelta(days=30),
         due_on=today() - timedelta(days=3))
    page = staff_client.get("/loans/overdue").get_data(as_text=True)
    assert "LATE-1" in page and "Ada" in page and "3 days" in page
    assert "late@example.org" in page and "01234 000111" in page  # the hirer to chase, by name
    assert "The Late Family <span class=\"muted\">(parent or carer)</span>" in page
    other = app.test_client()
    login(other, factory.user("parent"))
    assert other.get("/loans/overdue").status_code == 403
    assert other.get("/borrowers").status_code == 403


def test_staff_add_a_family_and_a_pupil_with_remission(app, factory, staff_client):
    response = staff_client.post("/borrowers/family/new", data={"name": "Jo Carer", "email": "jo@example.org"})
    assert response.status_code == 303
    family_id = int(response.location.rsplit("/", 1)[1])
    bad = staff_client.post(f"/borrowers/family/{family_id}/pupils/new", data={
        "name": "Sam", "school_id": "0", "remission_category": "free_school_meals"})
    assert bad.status_code == 422 and "Give the date eligibility was verified." in bad.get_data(as_text=True)
    ok = staff_client.post(f"/borrowers/family/{family_id}/pupils/new", data={
        "name": "Sam", "school_id": "0", "year_group": "4", "remission_category": "free_school_meals",
        "remission_verified_on": "2025-09-01"})
    assert ok.status_code == 303
    page = staff_client.get(f"/borrowers/family/{family_id}").get_data(as_text=True)
    assert "Sam" in page and "jo@example.org" in page


def test_admin_keeps_the_academic_calendar(app, factory, client):
    login(client, factory.user("admin"))
    data = {"name": "Autumn 2026", "starts_on": "2026-09-01", "ends_on": "2026-12-18"}
    assert client.post("/terms", data=data).status_code == 303
    overlap = client.post("/terms", data={"name": "Oops", "starts_on": "2026-12-01", "ends_on": "2027-01-10"})
    assert overlap.status_code == 422 and "overlap Autumn 2026" in overlap.get_data(as_text=True)
    again = client.post("/terms", data={"name": "autumn 2026", "starts_on": "2030-09-01", "ends_on": "2030-12-01"})
    assert again.status_code == 422 and "already a term called autumn 2026" in again.get_data(as_text=True)


def test_the_condition_checked_at_issue_is_recorded(app, factory):
    instrument = factory.instrument(condition_grade=2)
    loan_id = factory.loan(instrument, factory.family(), due_on=today(), condition_grade=3, condition_note="Worn case")
    with in_app(app) as session:
        check = session.scalars(select(ConditionCheck).where(ConditionCheck.reason == "issue")).one()
        assert (check.grade, check.note) == (3, "Worn case")
        assert load_loan(session, loan_id).condition_at_issue == 3


# ---------------------------------------------------------------- charges


def test_each_loan_is_charged_for_every_term_it_runs_in_and_remission_shows_as_waived(app, factory, client):
    start = today() - timedelta(days=100)
    autumn = factory.term("Autumn", start, start + timedelta(days=60))
    spring = factory.term("Spring", start + timedelta(days=70), today() + timedelta(days=30))
    paying = factory.pupil(name="=cmd|' /C calc'!A0")  # a name a spreadsheet would run
    free = factory.pupil(remission_category="looked_after", remission_verified_on=date(2025, 9, 1))
    fee = pricing.Charges(fee_per_term=Decimal("36.40"))
    spanning = factory.loan(factory.instrument(), paying, started_on=start + timedelta(days=50),
                    due_on=today(), charges=fee)
    remitted = factory.loan(factory.instrument(), free, started_on=start + timedelta(days=80), due_on=today(),
                    charges=fee)
    factory.loan(factory.instrument(), factory.school(), started_on=start, due_on=today())  # a free scheme
    with in_app(app) as session:
        assert pricing.raise_term_charges(session, None, session.get(AcademicTerm, autumn.id)) == 1
        assert pricing.raise_term_charges(session, None, session.get(AcademicTerm, spring.id)) == 2
        assert pricing.raise_term_charges(session, None, session.get(AcademicTerm, spring.id)) == 0
        session.commit()
        rows = session.execute(select(LoanCharge.loan_id, LoanCharge.term_id, LoanCharge.amount, LoanCharge.status)
                               .order_by(LoanCharge.id)).all()
    assert rows == [(spanning, autumn.id, Decimal("36.40"), "owed"), (spanning, spring.id, Decimal("36.40"), "owed"),
                    (remitted, spring.id, Decimal("0.00"), "waived")]

    login(client, factory.user("admin"))
    page = client.get("/charges").get_data(as_text=True)
    assert "£72.80" not in page and "£36.40 (1)" in page
    assert client.post("/charges/1/paid").status_code == 303
    again = client.post("/charges/1/waived")
    assert "already paid" in client.get(again.location).get_data(as_text=True)
    csv_text = client.get(f"/charges.csv?term={spring.id}").get_data(as_text=True)
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("term,loan,asset_tag") and len(lines) == 3
    assert "'=cmd" in csv_text and "looked_after" in csv_text


def test_only_hub_managers_see_charges(app, factory, staff_client):
    assert staff_client.get("/charges").status_code == 403
    assert staff_client.get("/charges.csv").status_code == 403


def test_the_audit_trail_names_children_and_families_by_number_only(app, factory):
    pupil = factory.pupil(name="Zebedee Quist")
    loan_id = factory.loan(factory.instrument(), pupil, due_on=today())
    with in_app(app) as session:
        lending.mark_lost(session, None, load_loan(session, loan_id), "Left at the park")
        session.commit()
        events = session.scalars(select(AuditEvent)).all()
        text = " ".join(f"{e.summary} {e.changes}" for e in events)
        assert f"pupil #{pupil.id}" in text and "Zebedee" not in text
        assert session.scalar(select(Instrument.status_reason)) == f"lost by pupil #{pupil.id}: Left at the park"


def test_roll_over_moves_open_loans_due_at_the_end_of_a_term_to_the_next(app, factory):
    start = today() - timedelta(days=20)
    summer = factory.term("Summer", start, today() + timedelta(days=10))
    autumn = factory.term("Autumn", today() + timedelta(days=40), today() + timedelta(days=120))
    rolling = factory.loan(factory.instrument(), factory.family(), started_on=start)
    other_date = factory.loan(factory.instrument(), factory.family(), started_on=start, due_on=today())
    returned = factory.loan(factory.instrument(), factory.family(), started_on=start)
    kit = factory.classroom_set(size=1)
    with in_app(app) as session:
        school = session.get(School, factory.school().id)
        check_out_set(session, None, session.get(ClassroomSet, kit.id), school, started_on=start)
        lending.check_in(session, None, load_loan(session, returned), grade=2)
        session.commit()
        with pytest.raises(InvalidInput, match="later term"):
            lending.roll_over(session, None, session.get(AcademicTerm, autumn.id), session.get(AcademicTerm, summer.id))
        assert lending.roll_over(session, None, session.get(AcademicTerm, summer.id),
                                  session.get(AcademicTerm, autumn.id)) == 1
        session.commit()
        assert load_loan(session, rolling).due_on == autumn.ends_on
        assert load_loan(session, other_date).due_on == today()
        assert session.scalar(select(func.count()).where(Loan.set_loan_id.is_not(None),
                                                         Loan.due_on == summer.ends_on)) == 1
        event = session.scalars(select(AuditEvent).where(AuditEvent.summary.like("Rolled over%"))).one()
        assert event.entity_id == rolling


def test_admin_rolls_loans_over_from_the_calendar_page(app, factory, client):
    summer = factory.term("Summer", today() - timedelta(days=20), today() + timedelta(days=10))
    autumn = factory.term("Autumn", today() + timedelta(days=40), today() + timedelta(days=120))
    loan_id = factory.loan(factory.instrument(), factory.family(), started_on=today())
    login(client, factory.user("admin"))
    page = client.get("/terms").get_data(as_text=True)
    assert "<title>Academic calendar ·" in page  # the title is the page's name, nothing else
    assert 'data-confirm="Move every open loan due at the end of the first term' in page  # asked first
    bad = client.post("/terms/roll-over", data={"from_term": str(autumn.id), "to_term": str(summer.id)})
    assert bad.status_code == 422 and "Roll loans over to a later term." in bad.get_data(as_text=True)
    response = client.post("/terms/roll-over", data={"from_term": str(summer.id), "to_term": str(autumn.id)})
    assert response.status_code == 303
    assert "Rolled 1 loan over to Autumn." in client.get(response.location).get_data(as_text=True)
    with in_app(app) as session:
        assert load_loan(session, loan_id).due_on == autumn.ends_on


# ---------------------------------------------------------------- fees and remission


def test_fees_come_from_the_band_and_remission_rules_and_stay_on_the_loan(app, factory, client):
    violin = factory.instrument_type("Violin", sizes=("1/2",), hire_band="B")
    login(client, factory.user("admin"))
    assert client.post("/fees/band", data={"band-band": "b", "band-fee_per_term": "36.40",
                                           "band-deposit": "25"}).status_code == 303
    assert client.post("/fees/remission", data={"rule-category": "pupil_premium", "rule-kind": "percent_off",
                                                "rule-value": "60"}).status_code == 303
    bad = client.post("/fees/remission", data={"rule-category": "pupil_premium", "rule-kind": "percent_off",
                                               "rule-value": "160"})
    assert bad.status_code == 422 and "between 0 and 100" in bad.get_data(as_text=True)
    page = client.get("/fees").get_data(as_text=True)
    assert "£36.40" in page and "60% off" in page

    full = factory.loan(factory.instrument(violin), factory.pupil(), due_on=today())
    premium = factory.loan(factory.instrument(violin), factory.pupil(
        remission_category="pupil_premium", remission_verified_on=date(2025, 9, 1)), due_on=today())
    looked_after = factory.loan(factory.instrument(violin), factory.pupil(
        remission_category="looked_after", remission_verified_on=date(2025, 9, 1)), due_on=today())
    with in_app(app) as session:
        assert [(load_loan(session, i).fee_per_term, load_loan(session, i).charge_per_term,
                 load_loan(session, i).deposit) for i in (full, premium, looked_after)] == [
            (Decimal("36.40"), Decimal("36.40"), Decimal("25.00")),
            (Decimal("36.40"), Decimal("14.56"), Decimal("25.00")),  # 60% off
            (Decimal("36.40"), Decimal("0.00"), Decimal("25.00")),  # no rule: free
        ]
    # Each category has one name everywhere: the fees page, the loan page, the borrower page.
    assert client.post("/fees/remission", data={"rule-category": "benefits", "rule-kind": "free",
                                                "rule-value": "0"}).status_code == 303
    page = client.get("/fees").get_data(as_text=True)
    assert "Pupil premium</th>" in page and "Household benefits</th>" in page
    assert "Pupil Premium" not in page and ">Benefits<" not in page
    benefits_pupil = factory.pupil(remission_category="benefits", remission_verified_on=date(2025, 9, 1))
    benefits = factory.loan(factory.instrument(violin), benefits_pupil, due_on=today())
    assert "<dd>Household benefits</dd>" in client.get(f"/loans/{benefits}").get_data(as_text=True)
    assert "<dd>Pupil premium</dd>" in client.get(f"/loans/{premium}").get_data(as_text=True)
    assert "Household benefits, verified" in client.get(f"/borrowers/pupil/{benefits_pupil.id}").get_data(as_text=True)
    # A later price rise leaves the loans as they were agreed.
    client.post("/fees/band", data={"band-band": "B", "band-fee_per_term": "50", "band-deposit": "25"})
    with in_app(app) as session:
        assert load_loan(session, full).fee_per_term == Decimal("36.40")


def test_a_fixed_remission_charge_is_never_more_than_the_fee(app, factory):
    with in_app(app) as session:
        rule = pricing.save_remission_rule(session, None, "benefits", RemissionKind.FIXED, Decimal("10.00"))
        assert rule.charge(Decimal("30.00")) == Decimal("10.00")
        assert rule.charge(Decimal("7.00")) == Decimal("7.00")
        assert rule.summary == "£10.00 a term"


def test_store_actions_that_would_strand_a_loan_send_staff_to_the_loan(app, staff_client, factory):
    instrument = factory.instrument()
    loan_id = factory.loan(instrument, factory.pupil(), started_on=today(), due_on=today() + timedelta(days=30))
    tag = instrument.asset_tag
    page = staff_client.get(f"/instruments/{tag}").get_data(as_text=True)
    assert f'href="/loans/{loan_id}/check-in"' in page
    assert "Send to repair" not in page and "Mark missing" not in page and "Write off" not in page
    for url, data in [(f"/instruments/{tag}/repair", {"repairer": "R", "sent_on": today().isoformat()}),
                      (f"/instruments/{tag}/missing", {"note": "gone"}),
                      (f"/instruments/{tag}/write-off", {"reason": "gone", "confirm": "y"})]:
        response = staff_client.post(url, data=data)
        assert response.status_code == 409, url
        assert "is on loan: check it in first" in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.get(Loan, loan_id).is_open
        assert resolve_instrument(session, tag).status == "on_loan"


def test_an_unusable_instrument_is_not_lent(app, factory):
    instrument = factory.instrument(condition_grade=5)
    with pytest.raises(LoanServiceError, match="graded 5 \\(unusable\\)"):
        factory.loan(instrument, factory.pupil(), started_on=today(), due_on=today() + timedelta(days=30))
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 0


def test_scanning_a_lent_instrument_offers_check_in_and_names_the_borrower(app, staff_client, factory):
    instrument = factory.instrument()
    pupil = factory.pupil(name="Oliver Patel")
    loan_id = factory.loan(instrument, pupil, started_on=today(), due_on=today() + timedelta(days=30))
    page = staff_client.get(f"/scan?code={instrument.asset_tag.lower()}").get_data(as_text=True)
    assert f'href="/loans/{loan_id}/check-in"' in page and "with Oliver Patel" in page
    detail = staff_client.get(f"/instruments/{instrument.asset_tag}").get_data(as_text=True)
    assert "On loan to" in detail and "Oliver Patel" in detail
    unknown = staff_client.get("/scan?code=new-77").get_data(as_text=True)
    assert 'href="/instruments/new?tag=NEW-77"' in unknown
    assert 'value="NEW-77"' in staff_client.get("/instruments/new?tag=NEW-77").get_data(as_text=True)


def test_staff_find_the_borrower_by_name_and_nothing_is_lent_until_they_choose(app, factory, staff_client):
    instrument = factory.instrument(asset_tag="FIND-1")
    school = factory.school("Riverside Primary")
    factory.pupil("Amelia Ahmed", school=school, year_group=4)
    factory.pupil("Amelia Ahmed", year_group=6)  # a namesake: the year and school tell them apart
    factory.pupil("Oliver Khan")
    page = staff_client.get("/loans/new?tag=FIND-1").get_data(as_text=True)
    assert "Oliver Khan" not in page and "Amelia" not in page  # no list of every pupil in the hub

    found = staff_client.post("/loans/new", data={"tag": "FIND-1", "who": "  amelia ", "find": "1"})
    assert found.status_code == 200
    page = found.get_data(as_text=True)
    assert "Pupil: Amelia Ahmed (Year 4, Riverside Primary)" in page and "Pupil: Amelia Ahmed (Year 6)" in page
    assert "Oliver Khan" not in page and 'value="FIND-1"' in page  # what was typed is kept
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 0
        assert resolve_instrument(session, "FIND-1").status == "available"

    none = staff_client.post("/loans/new", data={"tag": "FIND-1", "who": "100%_", "find": "1"})
    assert "No borrower's name contains “100%_”" in none.get_data(as_text=True)
    unchosen = staff_client.post("/loans/new", data={"tag": "FIND-1", "who": "amelia",
                                                     "started_on": today().isoformat(),
                                                     "due_on": (today() + timedelta(days=30)).isoformat(),
                                                     "condition_grade": "2"})
    assert unchosen.status_code == 422 and "Find and choose the borrower." in unchosen.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 0
        amelia = session.scalars(select(Pupil).where(Pupil.year_group == 4)).one()
    lent = staff_client.post("/loans/new", data={
        "tag": "FIND-1", "borrower": f"pupil-{amelia.id}", "started_on": today().isoformat(),
        "due_on": (today() + timedelta(days=30)).isoformat(), "condition_grade": "2"})
    assert lent.status_code == 303
    with in_app(app) as session:
        loan = session.scalars(select(Loan)).one()
        assert (loan.pupil_id, loan.instrument_id) == (amelia.id, instrument.id)


def test_a_classroom_set_member_is_not_lent_on_its_own_but_the_set_still_goes_out(app, factory, staff_client):
    violin = factory.instrument_type("Violin", sizes=("1/4", "1/2"))
    members = [factory.instrument(violin, size="1/2", asset_tag=f"MIX-00002{n}") for n in (8, 9)]
    kit = factory.classroom_set(name="Violin set A", instruments=members)
    pupil = factory.pupil(name="Ada Lovelace")
    response = staff_client.post("/loans/new", data={
        "tag": "MIX-000029", "borrower": f"pupil-{pupil.id}", "started_on": today().isoformat(),
        "due_on": (today() + timedelta(days=30)).isoformat(), "condition_grade": "2"})
    assert response.status_code == 409
    assert "MIX-000029 belongs to Violin set A: take it out of the set first." in response.get_data(as_text=True)
    # Nor as the next size in an exchange, which then changes nothing.
    small = factory.instrument(violin, size="1/4")
    loan_id = factory.loan(small, pupil, due_on=today() + timedelta(days=30))
    with in_app(app) as session:
        with pytest.raises(availability.NotLendable, match="MIX-000028 belongs to Violin set A"):
            lending.size_exchange(session, None, load_loan(session, loan_id),
                                   resolve_instrument(session, "MIX-000028", for_update=True), grade=2)
        session.rollback()
        assert load_loan(session, loan_id).status == "open"
        set_loan = check_out_set(session, None, session.get(ClassroomSet, kit.id),
                                 session.get(School, factory.school().id), due_on=today() + timedelta(days=30))
        session.commit()
        assert set_loan.item_count == 2


def test_a_loan_cannot_start_before_the_instruments_last_loan_ended(app, factory, staff_client):
    instrument, family = factory.instrument(), factory.family(name="The Greens")
    loan_id = factory.loan(instrument, factory.pupil(name="Mia Green"), started_on=today() - timedelta(days=60),
                   due_on=today() + timedelta(days=30))
    with in_app(app) as session:  # lent two months ago, back a week ago
        lending.check_in(session, None, session.get(Loan, loan_id), grade=2, returned_on=today() - timedelta(days=7))
        session.commit()
    lend_form = {"tag": instrument.asset_tag, "borrower": f"family-{family.id}", "condition_grade": "2",
               "due_on": (today() + timedelta(days=30)).isoformat()}
    response = staff_client.post("/loans/new",
                                 data={**lend_form, "started_on": (today() - timedelta(days=30)).isoformat()})
    ended = today() - timedelta(days=7)
    assert response.status_code == 422
    assert (f"{instrument.asset_tag} was on loan until {ended:%-d %b %Y}: a new loan can start on that day at the "
            "earliest.") in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 1
    response = staff_client.post("/loans/new", data={**lend_form, "started_on": ended.isoformat()})
    assert response.status_code == 303


def test_a_renewal_from_a_form_shown_before_the_last_one_renews_nothing(app, factory, staff_client):
    due = today() + timedelta(days=5)
    loan_id = factory.loan(factory.instrument(), factory.family(), due_on=due)
    form = staff_client.get(f"/loans/{loan_id}/renew").get_data(as_text=True)
    assert f'name="was_due_on" type="hidden" value="{due.isoformat()}"' in form
    first, second = today() + timedelta(days=100), today() + timedelta(days=200)
    # Two tabs showing the same form (or Back, then the same post again): the first renews...
    assert staff_client.post(f"/loans/{loan_id}/renew",
                             data={"due_on": first.isoformat(), "was_due_on": due.isoformat()}).status_code == 303
    # ...the second is refused with the loan's new due date, and nothing moves again.
    again = staff_client.post(f"/loans/{loan_id}/renew",
                              data={"due_on": second.isoformat(), "was_due_on": due.isoformat()})
    assert again.status_code == 409
    assert f"was renewed meanwhile: it is now due back {first:%-d %b %Y}." in again.get_data(as_text=True)
    with in_app(app) as session:
        assert load_loan(session, loan_id).due_on == first
        assert session.scalar(select(func.count()).where(AuditEvent.action == "loan.renewed")) == 1
    # The refusal's page shows the loan as it is now: renewing from it works.
    assert f'name="was_due_on" type="hidden" value="{first.isoformat()}"' in again.get_data(as_text=True)
    assert staff_client.post(f"/loans/{loan_id}/renew",
                             data={"due_on": second.isoformat(), "was_due_on": first.isoformat()}).status_code == 303


def test_the_lend_form_puts_the_cursor_where_the_next_step_is(app, factory, staff_client):
    instrument = factory.instrument()
    factory.family(name="Dana Okafor")
    autofocused = lambda page: re.findall(r'<input[^>]*\bautofocus\b[^>]*>', page)  # noqa: E731
    [field] = autofocused(staff_client.get("/loans/new").get_data(as_text=True))
    assert 'id="tag"' in field  # ready for a scanner
    [field] = autofocused(staff_client.get(f"/loans/new?tag={instrument.asset_tag}").get_data(as_text=True))
    assert 'id="who"' in field
    found = staff_client.post("/loans/new", data={"tag": instrument.asset_tag, "who": "okafor", "find": "1"})
    [field] = autofocused(found.get_data(as_text=True))
    assert 'name="borrower"' in field and 'type="radio"' in field  # the first borrower found, not the page top


def test_the_overdue_list_counts_days_of_term_and_leaves_out_a_loan_late_only_over_a_holiday(app, factory,
                                                                                            staff_client):
    # Term ended ten days ago; the next starts in five days. Another loan was due before last term ended.
    factory.term("Autumn", today() - timedelta(days=90), today() - timedelta(days=10))
    factory.term("Spring", today() + timedelta(days=5), today() + timedelta(days=90))
    holiday_only = factory.instrument(asset_tag="HOLS-1")
    in_term = factory.instrument(asset_tag="TERM-1")
    factory.loan(holiday_only, factory.pupil(name="Ada"), started_on=today() - timedelta(days=60),
         due_on=today() - timedelta(days=10))  # due on the last day of term
    factory.loan(in_term, factory.pupil(name="Ben"), started_on=today() - timedelta(days=60),
         due_on=today() - timedelta(days=15))  # five days of term late, then the holiday
    page = staff_client.get("/loans/overdue").get_data(as_text=True)
    assert "TERM-1" in page and "5 days" in page and "15 days" not in page
    assert "HOLS-1" not in page  # not overdue over the holiday
    assert "1 loan past the due date" in page and "school holidays are not counted" in page



def test_a_cancelled_hold_does_not_stop_a_backdated_loan(app, factory):
    instrument = factory.instrument()
    held = factory.loan(instrument, factory.pupil(name="Bo"), due_on=today() + timedelta(days=30),
                        awaiting_agreement=True)
    with in_app(app) as session:
        lending.cancel_pending(session, None, session.get(Loan, held), "Changed their mind")
        session.commit()
    # Handed over to someone else a week ago and recorded only now: the cancelled hold was never a loan.
    factory.loan(instrument, factory.family(), started_on=today() - timedelta(days=7),
                 due_on=today() + timedelta(days=30))
