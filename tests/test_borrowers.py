"""Staff keep families' and pupils' details up to date; loans keep what they were made on."""
from datetime import date, timedelta
from decimal import Decimal

from lxml import html
from sqlalchemy import select

from loanservice.audit.models import AuditEvent
from loanservice.borrowers.models import Family, Pupil
from loanservice.loans import pricing
from loanservice.loans.models import Loan
from loanservice.timeutil import today

from .conftest import in_app, login
from .pages import submit


def test_staff_change_a_familys_contact_details_and_postal_address(app, factory, staff_client):
    family = factory.family("Jo Carer", email="jo@example.org")
    page = staff_client.get(f"/borrowers/family/{family.id}").get_data(as_text=True)
    assert "letters by post cannot be addressed" not in page  # they have an email
    form = staff_client.get(f"/borrowers/family/{family.id}/edit").get_data(as_text=True)
    assert 'value="jo@example.org"' in form
    assert "Postal address" in form

    response = submit(staff_client, f"/borrowers/family/{family.id}/edit", {
        "email": "", "phone": "01234 567890",
        "address": "  12 Elm Road \r\n\r\n Exampleton EX2 3CD  "})
    assert response.status_code == 303
    page = staff_client.get(response.location).get_data(as_text=True)
    assert "Saved Jo Carer." in page
    assert "12 Elm Road\nExampleton EX2 3CD" in page
    assert "01234 567890" in page
    with in_app(app) as session:
        saved = session.get(Family, family.id)
        assert (saved.email, saved.address) == ("", "12 Elm Road\nExampleton EX2 3CD")
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "family.changed")).one()
        # What changed, never the values: the audit trail is append-only and holds no personal data.
        assert event.changes == {"fields": ["email", "phone", "address"]}
        assert "Elm" not in event.summary and "01234" not in str(event.changes)


def test_a_family_without_email_or_address_is_flagged_and_a_bad_edit_changes_nothing(app, factory, staff_client):
    family = factory.family("Mrs Smith")
    page = staff_client.get(f"/borrowers/family/{family.id}").get_data(as_text=True)
    assert "None: letters by post cannot be addressed" in page
    bad = submit(staff_client, f"/borrowers/family/{family.id}/edit", {
        "name": "  ", "email": "not-an-email", "address": "1 Lane"})
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert "There is a problem" in text
    with in_app(app) as session:
        assert session.get(Family, family.id).address == ""
        assert session.scalars(select(AuditEvent).where(AuditEvent.action == "family.changed")).first() is None
    assert staff_client.get("/borrowers/family/999999/edit").status_code == 404


def test_changing_a_pupils_remission_does_not_rewrite_their_loans(app, factory, staff_client):
    pupil = factory.pupil("Sam Carer", remission_category="free_school_meals",
                          remission_verified_on=date(2025, 9, 1))
    loan_id = factory.loan(factory.instrument(), pupil, started_on=today(), due_on=today() + timedelta(days=60),
                   charges=pricing.Charges(fee_per_term=Decimal("30.00")))

    response = staff_client.post(f"/borrowers/pupil/{pupil.id}/edit", data={
        "name": "Sam Carer", "school_id": "0", "year_group": "5", "remission_category": "none"})
    assert response.status_code == 303
    page = staff_client.get(response.location).get_data(as_text=True)
    assert "Loans already made keep their fee and remission." in page
    assert "Year 5" in page
    with in_app(app) as session:
        saved = session.get(Pupil, pupil.id)
        assert (saved.remission_category, saved.remission_verified_on, saved.year_group) == ("none", None, 5)
        loan = session.get(Loan, loan_id)
        assert loan.remission_category == "free_school_meals" and loan.charge_per_term == Decimal("0.00")

    future = staff_client.post(f"/borrowers/pupil/{pupil.id}/edit", data={
        "name": "Sam Carer", "school_id": "0", "remission_category": "pupil_premium",
        "remission_verified_on": (today() + timedelta(days=3)).isoformat()})
    assert future.status_code == 422
    assert "The verification date is in the future." in future.get_data(as_text=True)
    with in_app(app) as session:
        assert session.get(Pupil, pupil.id).remission_category == "none"


def test_only_staff_change_borrowers(app, factory, client):
    family = factory.family("Jo Carer")
    pupil = factory.pupil("Sam", family=family)
    for role in ("parent", "school"):
        other = app.test_client()
        login(other, factory.user(role))
        assert other.get(f"/borrowers/family/{family.id}/edit").status_code == 403
        assert other.post(f"/borrowers/pupil/{pupil.id}/edit", data={"name": "Hacked"}).status_code == 403
    with in_app(app) as session:
        assert session.get(Pupil, pupil.id).name == "Sam"


def search_borrowers(client, q):
    """Search from the borrowers page's own search box; the page that comes back."""
    return submit(client, "/borrowers", {"q": q}, form="q").get_data(as_text=True)


def section(page: str, heading: str) -> str:
    """The text of the page's panel under ``heading``, as a person reads it."""
    panel = html.fromstring(page).xpath(f"//section[h2[text()='{heading}']]")[0]
    return " ".join(panel.text_content().split())


def test_the_borrowers_page_pages_through_every_family(factory, staff_client):
    with in_app(factory.app) as session:
        session.add_all(Family(name=f"Family {n:03}") for n in range(1, 102))
        session.commit()
    page = staff_client.get("/borrowers").get_data(as_text=True)
    assert "101 families · page 1 of 6" in page
    last = staff_client.get("/borrowers?page=6").get_data(as_text=True)
    assert "Family 101" in last


def test_one_search_finds_families_schools_and_other_borrowers_grouped_by_kind(factory, staff_client):
    factory.pupil("Hilary Adams", family=factory.family("Jo Adams"))
    factory.family("Sam Brown")
    factory.school("Hillcrest Academy")
    factory.school("Riverside Primary")
    factory.other_borrower("Hillside Youth Orchestra")
    page = search_borrowers(staff_client, "hil")
    assert "Jo Adams: Hilary Adams" in section(page, "Families and their pupils")
    assert "Sam Brown" not in page
    assert "Hillcrest Academy" in section(page, "Schools")
    assert "Riverside Primary" not in page
    assert "Hillside Youth Orchestra" in section(page, "Ensembles, teachers and partners")


def test_a_family_is_found_by_its_email(factory, staff_client):
    factory.family("Jo Adams", email="jo.adams@example.org")
    page = search_borrowers(staff_client, "jo.adams@")
    assert "Jo Adams" in section(page, "Families and their pupils")


def test_a_search_that_finds_nothing_says_so_and_leads_back(factory, staff_client):
    factory.family("Jo Adams")
    factory.school("Hillcrest Academy")
    page = search_borrowers(staff_client, "zebra")
    assert "Nothing matches “zebra”" in page
    assert 'href="/borrowers">Show every borrower' in page


def test_a_search_for_a_percent_sign_matches_only_a_percent_sign(factory, staff_client):
    factory.school("Hillcrest Academy")
    page = search_borrowers(staff_client, "%")
    assert "Nothing matches “%”" in page


def test_the_next_page_of_a_search_keeps_the_search(factory, staff_client):
    with in_app(factory.app) as session:
        session.add_all(Family(name=f"Adams {n:02}") for n in range(1, 23))
        session.add(Family(name="Brown"))
        session.commit()
    page = search_borrowers(staff_client, "adams")
    next_page = html.fromstring(page).xpath("//a[@rel='next']/@href")[0]
    assert "Adams 22" in staff_client.get(next_page).get_data(as_text=True)
