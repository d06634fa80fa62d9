"""Moving in: importing schools, families, pupils, other borrowers and running loans, all or nothing."""
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from loanservice.borrowers.models import Family, OtherBorrower, Pupil
from loanservice.inventory.models import Instrument, InstrumentStatus
from loanservice.loans.models import Loan
from loanservice.schools.models import School
from loanservice.timeutil import today

from .conftest import in_app, login
from .pages import submit, submit_on

SCHOOLS = ("name,urn,address,contact_name,contact_email,phone\n"
           "Hillside Primary,123456,1 Hill Road; Exampleton,Ms A Lead,music@hillside.example,01234 111222\n"
           "Valley Academy,123457,,,,\n")
FAMILIES = ("hirer,email,phone,address\n"
            "Sam Parent,sam@example.org,07700 900123,2 Elm Street\n"
            "Kim Carer,KIM@example.org,,\n")
PUPILS = ("name,family_email,school_urn,year_group,remission_category,remission_verified_on,send\n"
          "Alex Parent,sam@example.org,123456,5,free_school_meals,2026-09-01,no\n"
          "Jo Carer,kim@example.org,123457,Reception,,,yes\n")
OTHERS = "name,description,email,phone\nCounty Youth Orchestra,Youth orchestra,cyo@example.org,\n"


@pytest.fixture
def admin_client(client, factory):
    login(client, factory.user("admin"))
    return client


def upload(client, kind, text, name="file.csv"):
    data = text.encode() if isinstance(text, str) else text
    return submit(client, f"/moving-in/{kind}", {"file": (io.BytesIO(data), name)}, form="file")


def import_file(client, kind, text):
    """Check the file, then press Import on the preview, as a person does; the response to the import."""
    preview = upload(client, kind, text)
    assert preview.status_code == 200, preview.get_data(as_text=True)
    return submit_on(client, preview, f"/moving-in/{kind}", form="csv_text")


def count(app, model):
    with in_app(app) as session:
        return session.scalar(select(func.count()).select_from(model))


def page_of(response) -> str:
    return response.get_data(as_text=True)


def test_the_moving_in_page_lists_the_imports_in_order(admin_client):
    page = page_of(admin_client.get("/moving-in"))
    order = [page.index(word) for word in ("Import instruments", "Import schools", "Import families",
                                           "Import pupils", "Import other borrowers", "Import running loans",
                                           "Import invitations")]
    assert order == sorted(order)


def test_each_template_has_the_exact_columns_and_an_example_row(admin_client):
    from loanservice.inventory.csvio import INSTRUMENTS
    from loanservice.moving.kinds import KINDS

    for kind in [INSTRUMENTS, *KINDS.values()]:
        text = admin_client.get(f"/moving-in/{kind.name}/template.csv").get_data(as_text=True).lstrip("\ufeff")
        header, example, *_ = text.splitlines()
        assert header.split(",") == kind.columns


def test_imports_are_staff_only_for_admins(client, factory):
    login(client, factory.user("staff"))
    assert client.get("/moving-in/schools").status_code == 403


def test_schools_families_pupils_and_others_import_and_refer_to_each_other(app, admin_client):
    assert import_file(admin_client, "schools", SCHOOLS).status_code == 303
    assert import_file(admin_client, "families", FAMILIES).status_code == 303
    assert import_file(admin_client, "pupils", PUPILS).status_code == 303
    response = import_file(admin_client, "others", OTHERS)
    assert "Imported 1 other borrower" in page_of(admin_client.get(response.location))
    with in_app(app) as session:
        alex = session.scalar(select(Pupil).where(Pupil.name == "Alex Parent"))
        jo = session.scalar(select(Pupil).where(Pupil.name == "Jo Carer"))
        hillside = session.scalar(select(School).where(School.urn == "123456"))
        assert alex.school.name == "Hillside Primary"
        assert alex.family.email == "sam@example.org"
        assert alex.remission_verified_on == date(2026, 9, 1)
        assert jo.year_group == 0
        assert jo.send is True
        assert jo.family.email == "kim@example.org"
        assert hillside.address == "1 Hill Road\nExampleton"
    assert count(app, OtherBorrower) == 1


def test_the_same_file_is_refused_twice(app, admin_client):
    import_file(admin_client, "schools", SCHOOLS)
    again = upload(admin_client, "schools", SCHOOLS)
    assert again.status_code == 422
    assert "already imported" in page_of(again)
    assert count(app, School) == 2


def test_a_byte_order_mark_is_read_as_excel_writes_it(app, admin_client):
    import_file(admin_client, "schools", "\ufeff" + SCHOOLS)
    assert count(app, School) == 2


def test_a_file_in_another_encoding_is_refused_clearly(app, admin_client):
    response = upload(admin_client, "families", "hirer,email\nZoë Müller,zoe@example.org\n".encode("cp1252"))
    assert response.status_code == 422
    assert "not UTF-8" in page_of(response)


@pytest.mark.parametrize(("text", "message"), [
    ("name,address\nHillside,1 Road\n", "Missing column: urn"),
    ("name,urn,colour\nHillside,123456,blue\n", "Unknown column: colour"),
    ("name,urn\nHillside,123456\nHillside Two,123456\n", "123456 is also on line 2"),
    ("name,urn\nHillside,12AB\n", "not a school&#39;s Unique Reference Number"),
    ("name,urn\n,123456\n", "name is empty"),
    ("name,urn\nHillside,123456,extra\n", "more cells than the header"),
    ("name,urn\n", "header but no schools"),
])
def test_bad_school_files_say_what_is_wrong_and_import_nothing(app, admin_client, text, message):
    response = upload(admin_client, "schools", text)
    assert response.status_code == 422
    assert message in page_of(response)
    assert count(app, School) == 0


def test_an_existing_urn_is_named(app, admin_client, factory):
    factory.school("Old School", urn="123456")
    response = upload(admin_client, "schools", SCHOOLS)
    assert "A school with URN 123456 is already recorded" in page_of(response)
    assert count(app, School) == 1


def test_pupils_naming_an_unknown_family_or_school_import_nothing(app, admin_client, factory):
    factory.family("Sam Parent", email="sam@example.org")
    text = ("name,family_email,school_urn,year_group,remission_category,remission_verified_on,send\n"
            "Alex,sam@example.org,,5,,,\n"
            "Bea,nobody@example.org,,5,,,\n"
            "Cy,sam@example.org,999999,14,free_school_meals,,maybe\n")
    page = page_of(upload(admin_client, "pupils", text))
    assert "No family has the email nobody@example.org" in page
    assert "No school has the URN 999999" in page
    assert "year_group must be a whole number from 0 to 13" in page
    assert "send must be yes or no" in page
    assert count(app, Pupil) == 0


def test_remission_needs_the_date_it_was_verified(app, admin_client, factory):
    factory.family("Sam Parent", email="sam@example.org")
    text = ("name,family_email,remission_category,remission_verified_on\n"
            "Alex,sam@example.org,pupil_premium,\n")
    assert "Pupil premium needs the date eligibility was verified" in page_of(upload(admin_client, "pupils", text))


def test_a_family_email_already_recorded_or_twice_in_the_file_is_refused(app, admin_client, factory):
    factory.family("Sam Parent", email="sam@example.org")
    text = "hirer,email\nSam Again,SAM@example.org\nNew One,new@example.org\nNew Two,new@example.org\n"
    page = page_of(upload(admin_client, "families", text))
    assert "A family with the email sam@example.org is already recorded" in page
    assert "new@example.org is also on line 3" in page
    assert count(app, Family) == 1


LOANS_HEADER = ("asset_tag,borrower_type,borrower,pupil,started_on,due_on,fee_per_term,remission_category,"
                "charge_per_term,deposit,condition,accessories\n")


def _borrowers(factory):
    family = factory.family("Sam Parent", email="sam@example.org")
    factory.pupil("Alex Parent", family=family, remission_category="free_school_meals",
                  remission_verified_on=date(2026, 9, 1))
    factory.school("Hillside", urn="123456")
    factory.other_borrower("County Youth Orchestra")


def test_running_loans_go_out_to_each_kind_of_borrower_as_agreed(app, admin_client, factory):
    _borrowers(factory)
    kind = factory.instrument_type("Violin", sizes=("1/2",))
    for tag in ("VN-1", "VN-2", "VN-3", "VN-4"):
        factory.instrument(kind, asset_tag=tag)
    start = (today() - timedelta(days=60)).isoformat()
    due = (today() + timedelta(days=100)).isoformat()
    text = LOANS_HEADER + (
        f"VN-1,pupil,sam@example.org,Alex Parent,{start},{due},30.00,free_school_meals,0.00,0,2,Case and bow\n"
        f"VN-2,family,sam@example.org,,{start},{due},30,,,25,3,\n"
        f"VN-3,school,123456,,{start},{due},,,,,,\n"
        f"VN-4,other,County Youth Orchestra,,{start},{due},10,,5,,,\n")
    response = import_file(admin_client, "loans", text)
    assert "Imported 4 running loans" in page_of(admin_client.get(response.location))
    with in_app(app) as session:
        loans = {loan.instrument.asset_tag: loan for loan in session.scalars(select(Loan))}
        assert loans["VN-1"].pupil.name == "Alex Parent"
        assert loans["VN-1"].charge_per_term == Decimal("0.00")
        assert loans["VN-1"].remission_category == "free_school_meals"
        assert loans["VN-2"].charge_per_term == Decimal("30.00")
        assert loans["VN-2"].deposit == Decimal("25.00")
        assert loans["VN-2"].condition_at_issue == 3
        assert loans["VN-3"].school.urn == "123456"
        assert loans["VN-4"].other_borrower.name == "County Youth Orchestra"
        assert loans["VN-4"].charge_per_term == Decimal("5.00")
        statuses = set(session.scalars(select(Instrument.status)))
        assert statuses == {InstrumentStatus.ON_LOAN}
    detail = page_of(admin_client.get("/instruments/VN-1"))
    assert "Alex Parent" in detail


def test_a_loan_for_an_instrument_already_out_or_unknown_borrowers_import_nothing(app, admin_client, factory):
    _borrowers(factory)
    kind = factory.instrument_type("Violin", sizes=("1/2",))
    out = factory.instrument(kind, asset_tag="OUT-1")
    factory.instrument(kind, asset_tag="FREE-1")
    factory.instrument(kind, asset_tag="FREE-2")
    factory.loan(out, factory.other_borrower("Someone"), due_on=today() + timedelta(days=30))
    start = (today() - timedelta(days=10)).isoformat()
    due = (today() + timedelta(days=100)).isoformat()
    text = LOANS_HEADER + (
        f"OUT-1,family,sam@example.org,,{start},{due},,,,,,\n"
        f"FREE-1,family,nobody@example.org,,{start},{due},,,,,,\n"
        f"FREE-2,school,999999,,{start},{due},,,,,,\n"
        f"FREE-2,pupil,sam@example.org,Alex Parent,{start},{due},,,,,,\n"
        f"NOPE-1,other,County Youth Orchestra,,{start},{due},,,,,,\n"
        f"FREE-1,pupil,sam@example.org,Nobody,{start},{due},,,,,,\n")
    response = upload(admin_client, "loans", text)
    page = page_of(response)
    assert response.status_code == 422
    assert "OUT-1 is already out on loan" in page
    assert "No family has the email nobody@example.org" in page
    assert "No school has the URN 999999" in page
    assert "No instrument has the tag NOPE-1" in page
    assert "has no pupil called Nobody" in page
    assert count(app, Loan) == 1


def test_a_loan_due_before_it_started_or_charged_more_than_its_fee_is_refused(app, admin_client, factory):
    _borrowers(factory)
    kind = factory.instrument_type("Violin", sizes=("1/2",))
    factory.instrument(kind, asset_tag="VN-1")
    factory.instrument(kind, asset_tag="VN-2")
    text = LOANS_HEADER + (
        "VN-1,family,sam@example.org,,2026-09-01,2026-08-01,,,,,,\n"
        "VN-2,family,sam@example.org,,2026-09-01,2027-07-01,10,,20,,,\n")
    page = page_of(upload(admin_client, "loans", text))
    assert "The due date is before the start date" in page
    assert "is more than the fee" in page


def test_a_loan_imported_meanwhile_sends_the_whole_file_back(app, admin_client, factory):
    """The instrument goes out between the check and the import: the import refuses, nothing half-written."""
    _borrowers(factory)
    kind = factory.instrument_type("Violin", sizes=("1/2",))
    factory.instrument(kind, asset_tag="VN-1")
    late = factory.instrument(kind, asset_tag="VN-2")
    start = (today() - timedelta(days=10)).isoformat()
    due = (today() + timedelta(days=100)).isoformat()
    text = LOANS_HEADER + (f"VN-1,family,sam@example.org,,{start},{due},,,,,,\n"
                           f"VN-2,family,sam@example.org,,{start},{due},,,,,,\n")
    preview = upload(admin_client, "loans", text)
    factory.loan(late, factory.other_borrower("Someone"), due_on=today() + timedelta(days=30))
    response = submit_on(admin_client, preview, "/moving-in/loans", form="csv_text")
    assert response.status_code in (409, 422)
    assert "VN-2 is already out on loan" in page_of(response)
    assert count(app, Loan) == 1
    with in_app(app) as session:
        assert session.scalar(select(Instrument.status).where(Instrument.asset_tag == "VN-1")) \
            is InstrumentStatus.AVAILABLE


def test_the_example_files_import_one_after_another(app, admin_client, factory):
    kind = factory.instrument_type("Violin", sizes=("1/2",))
    for _ in range(4):
        factory.instrument(kind)
    for name in ("schools", "families", "pupils", "others", "loans"):
        text = admin_client.get(f"/moving-in/{name}/example.csv").get_data(as_text=True)
        response = import_file(admin_client, name, text)
        assert response.status_code == 303, name
    assert count(app, Loan) == 4


def test_staff_add_an_ensemble_from_a_page(app, client, factory):
    login(client, factory.user("staff"))
    response = submit(client, "/borrowers/other/new", {"name": "County Youth Orchestra",
                                                        "description": "Youth orchestra", "email": "cyo@example.org"})
    assert response.status_code == 303
    assert "County Youth Orchestra" in page_of(client.get(response.location))
    again = submit(client, "/borrowers/other/new", {"name": "county youth orchestra"})
    assert again.status_code == 422
    assert "already recorded" in page_of(again)
    assert count(app, OtherBorrower) == 1


def test_the_borrowers_export_holds_what_the_search_shows(app, client, factory):
    login(client, factory.user("staff"))
    factory.pupil("Ada Lovelace", family=factory.family("Anne Lovelace", email="anne@example.org"))
    factory.family("Bob Other", email="bob@example.org")
    factory.other_borrower("Lovelace Ensemble")
    everyone = client.get("/borrowers/export.csv").get_data(as_text=True)
    assert "Bob Other" in everyone
    page = page_of(client.get("/borrowers?q=lovelace"))
    assert 'href="/borrowers/export.csv?q=lovelace"' in page
    matching = client.get("/borrowers/export.csv?q=lovelace").get_data(as_text=True).splitlines()
    assert [line.split(",")[:2] for line in matching[1:]] == [
        ["family", "Anne Lovelace"], ["pupil", "Ada Lovelace"], ["other", "Lovelace Ensemble"]]


def test_the_loans_export_holds_what_the_filters_show(app, client, factory):
    login(client, factory.user("staff"))
    kind = factory.instrument_type("Violin", sizes=("1/2",))
    due = today() + timedelta(days=30)
    factory.loan(factory.instrument(kind, asset_tag="VN-1"), factory.school("Hillside"), due_on=due)
    factory.loan(factory.instrument(kind, asset_tag="VN-2"), factory.other_borrower("Brass Band"), due_on=due)
    page = page_of(client.get("/loans?kind=school"))
    assert "VN-1" in page
    assert "VN-2" not in page
    assert 'href="/loans/export.csv?kind=school"' in page
    rows = client.get("/loans/export.csv?kind=school").get_data(as_text=True).splitlines()
    assert [row.split(",")[1] for row in rows[1:]] == ["VN-1"]
    everything = client.get("/loans/export.csv").get_data(as_text=True).splitlines()
    assert sorted(row.split(",")[1] for row in everything[1:]) == ["VN-1", "VN-2"]


def test_a_ten_thousand_row_file_imports_through_the_page(app, admin_client):
    text = "hirer,email,phone,address\n" + "".join(
        f"Parent number {i},parent.number.{i}@example.org,07700 900{i % 1000:03d},{i} Long Road; Exampleton EX1\n"
        for i in range(10_000))
    response = import_file(admin_client, "families", text)
    assert response.status_code == 303
    assert count(app, Family) == 10_000
