"""The staff inventory pages, as a person uses them."""
import re
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from loanservice import create_app
from loanservice.audit.models import AuditEvent
from loanservice.inventory.models import ConditionCheck, Instrument, Repair
from loanservice.sets.models import ClassroomSetItem
from loanservice.timeutil import today

from .conftest import config_for, in_app, login
from .pages import submit


def count_instruments(app):
    with in_app(app) as session:
        return session.scalar(select(func.count()).select_from(Instrument))


def form(type_id, **kw):
    data = {"type_id": str(type_id), "size": "1/2", "make": "Stentor", "model": "Student II",
            "serial_number": "D123456", "location": "Store / A1", "condition_grade": "2",
            "purchased_on": "2024-09-01", "purchase_cost": "120.50", "funding_source": "Capital grant"}
    data.update(kw)
    return data


def test_add_an_instrument_and_see_it(app, staff_client, factory):
    violin = factory.instrument_type("Violin")
    response = submit(staff_client, "/instruments/new", form(violin.id))
    assert response.status_code == 303
    page = staff_client.get(response.location).get_data(as_text=True)
    assert "MIX-000001" in page
    assert "Violin 1/2" in page
    assert "£120.50" in page
    assert "Capital grant" in page
    assert "Added MIX-000001" in page  # in the audit trail


def test_generated_tags_have_the_digits_the_hub_set(database_url, factory):
    app = create_app(config_for(database_url, ASSET_TAG_PREFIX="VIO", ASSET_TAG_DIGITS=4))
    client = app.test_client()
    violin = factory.instrument_type("Violin")
    login(client, factory.user("staff"))
    response = submit(client, "/instruments/new", form(violin.id), follow_redirects=True)
    assert "Added VIO-0001." in response.get_data(as_text=True)


def test_bad_input_on_the_add_form_is_explained_and_nothing_is_added(app, staff_client, factory):
    violin = factory.instrument_type("Violin")
    factory.instrument(violin, asset_tag="MIX-000777")
    cases = [
        (form(violin.id, purchase_cost="-10"), 422, "Cannot be negative"),
        (form(violin.id, purchase_cost="250000000"), 422, "That amount is too large"),
        (form(violin.id, replacement_value="sNaN"), 422, "Enter an amount in pounds"),
        (form(violin.id, replacement_value="1e30"), 422, "That amount is too large"),
        (form(violin.id, purchased_on="2025-02-30"), 422, "Not a valid date"),
        (form(violin.id, size="5/8"), 422, "not one of them"),
        (form(999), 422, "Unknown instrument type"),
        (form(violin.id, asset_tag="mix-000777"), 409, "MIX-000777 is already in use"),
        (form(violin.id, asset_tag="bad tag!"), 422, "letters, digits and hyphens"),
        (form(violin.id, condition_grade="9"), 422, "Not a valid choice"),
    ]
    for data, status, message in cases:
        response = submit(staff_client, "/instruments/new", data)
        assert response.status_code == status, (data, response.status_code)
        assert message in response.get_data(as_text=True), message
    assert count_instruments(app) == 1


def test_list_searches_filters_sorts_and_pages(app, staff_client, factory):
    violin = factory.instrument_type("Violin")
    flute = factory.instrument_type("Flute", family="woodwind", sizes=())
    for n in range(25):
        factory.instrument(violin, make="Stentor", serial_number=f"S{n:03d}", location="Store / A1")
    factory.instrument(flute, make="Yamaha", model="YFL-212", serial_number="Y999", location="Store / F1",
                       condition_grade=4)

    page = staff_client.get("/instruments").get_data(as_text=True)
    assert "26 instruments" in page and "page 1 of 2" in page
    assert page.count(">Store / A1</option>") == page.count(">Store / F1</option>") == 1
    assert "MIX-000021" not in page  # 20 a page in tests
    assert "MIX-000021" in staff_client.get("/instruments?page=2").get_data(as_text=True)

    page = staff_client.get("/instruments?q=yfl").get_data(as_text=True)
    assert "<p>1 instrument</p>" in page and "MIX-000026" in page
    assert "MIX-000026" in staff_client.get("/instruments?q=y999").get_data(as_text=True)
    assert staff_client.get("/instruments?q=mix-000026").location.endswith("/instruments/MIX-000026")
    assert "7 instruments" in staff_client.get("/instruments?q=mix-00002").get_data(as_text=True)
    assert "MIX-000026" in staff_client.get("/instruments?q=YFL-212").get_data(as_text=True)
    page = staff_client.get(f"/instruments?type={flute.id}").get_data(as_text=True)
    assert "<p>1 instrument</p>" in page
    page = staff_client.get("/instruments?condition=4").get_data(as_text=True)
    assert "MIX-000026" in page and "MIX-000001" not in page
    page = staff_client.get("/instruments?location=Store / F1").get_data(as_text=True)
    assert "<p>1 instrument</p>" in page
    page = staff_client.get("/instruments?sort=condition").get_data(as_text=True)
    assert page.index("MIX-000026") < page.index("MIX-000025")  # grade 4 before grade 2
    assert "<p>1 instrument</p>" in staff_client.get("/instruments?q=flute f1").get_data(as_text=True)
    assert "25 instruments" in staff_client.get("/instruments?q=violin stentor").get_data(as_text=True)
    page = staff_client.get("/instruments?q=nothing-like-this").get_data(as_text=True)
    assert "No instruments match" in page


def test_search_finds_a_word_inside_the_make_model_or_serial_in_any_case(staff_client, factory):
    violin = factory.instrument_type("Violin")
    factory.instrument(violin, make="Höfner", model="Allegretto AS-060", serial_number="hf-2291-x")  # MIX-000001
    factory.instrument(violin, make="Stentor", model="Student II", serial_number="ST7731")  # MIX-000002

    def found(q):
        page = staff_client.get("/instruments", query_string={"q": q}).get_data(as_text=True)
        return [tag for tag in ("MIX-000001", "MIX-000002") if tag in page]

    assert found("HöFN") == ["MIX-000001"]  # make: inside, other case (ASCII letters; ö as typed)
    assert found("LEGRETTO as-0") == ["MIX-000001"]  # model, two words
    assert found("HF-2291-X") == ["MIX-000001"]  # serial, upper case for lower
    assert found("t773") == ["MIX-000002"]
    assert found("stUDent") == ["MIX-000002"]
    assert found("violin") == ["MIX-000001", "MIX-000002"]  # the type's name
    assert found("hf_2291") == []  # _ is a character, not a wildcard
    assert found("tent 2291") == []  # every word must match


def test_list_survives_odd_query_arguments(staff_client, factory):
    factory.instrument()
    for query in ["?page=abc", "?page=-3", "?type=x", "?condition=zz", "?status=flying", "?sort=drop",
                  "?q=%25_%5C", "?per_page=100000"]:
        assert staff_client.get(f"/instruments{query}").status_code == 200, query


def test_empty_inventory_says_how_to_start(staff_client):
    page = staff_client.get("/instruments").get_data(as_text=True)
    assert "No instruments yet" in page and "Add the first instrument" in page


def test_unknown_tag_is_a_helpful_404(staff_client):
    response = staff_client.get("/instruments/NO-SUCH-TAG")
    assert response.status_code == 404
    assert "Unknown tag" in response.get_data(as_text=True) and "NO-SUCH-TAG" in response.get_data(as_text=True)


def test_tag_in_any_case_finds_the_instrument(staff_client, factory):
    instrument = factory.instrument()
    response = staff_client.get(f"/instruments/{instrument.asset_tag.lower()}")
    assert response.status_code == 301 and response.location.endswith(instrument.asset_tag)


def test_record_a_condition_check_and_see_it_in_the_history(app, staff_client, factory):
    instrument = factory.instrument(condition_grade=1)
    response = submit(staff_client, f"/instruments/{instrument.asset_tag}/condition",
                      {"grade": "4", "reason": "inspection", "note": "Bridge <b>warped</b>"})
    assert response.status_code == 303
    page = staff_client.get(response.location).get_data(as_text=True)
    assert "Condition recorded" in page
    assert "4 Poor" in page
    assert "Bridge &lt;b&gt;warped&lt;/b&gt;" in page
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(ConditionCheck)) == 2


def test_condition_check_without_a_grade_is_refused(app, staff_client, factory):
    instrument = factory.instrument()
    response = submit(staff_client, f"/instruments/{instrument.asset_tag}/condition", {"reason": "inspection"})
    assert response.status_code == 422
    assert "Choose a condition grade" in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(ConditionCheck)) == 1


def test_send_to_repair_and_back(app, staff_client, factory):
    instrument = factory.instrument()
    tag = instrument.asset_tag
    response = submit(staff_client, f"/instruments/{tag}/repair", {
        "repairer": "Hubbard Strings", "fault": "Open seam", "sent_on": "2025-01-06",
        "expected_back_on": "2025-01-27", "expected_cost": "45"})
    assert response.status_code == 303
    page = staff_client.get(f"/instruments/{tag}").get_data(as_text=True)
    assert "In repair" in page
    assert "Hubbard Strings" in page
    assert "Back from repair" in page
    response = submit(staff_client, f"/instruments/{tag}/repair/return", {
        "returned_on": "2025-01-20", "actual_cost": "50", "work_done": "Seam glued", "grade": "2"})
    assert response.status_code == 303
    with in_app(app) as session:
        repair = session.scalar(select(Repair))
        assert (repair.returned_on, repair.actual_cost) == (date(2025, 1, 20), Decimal("50.00"))
        assert session.scalar(select(Instrument.status)) == "available"


def test_repair_with_impossible_dates_changes_nothing(app, staff_client, factory):
    instrument = factory.instrument()
    response = submit(staff_client, f"/instruments/{instrument.asset_tag}/repair", {
        "repairer": "R", "sent_on": "2025-03-10", "expected_back_on": "2025-03-01"})
    assert response.status_code == 422
    assert "before the date sent" in response.get_data(as_text=True)
    response = submit(staff_client, f"/instruments/{instrument.asset_tag}/repair", {
        "repairer": "R", "sent_on": "2099-03-10"})
    assert response.status_code == 422
    assert "The date sent is in the future" in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(Instrument.status)) == "available"
        assert session.scalar(select(func.count()).select_from(Repair)) == 0


def test_write_off_needs_confirmation_and_a_reason(app, staff_client, factory):
    instrument = factory.instrument()
    url = f"/instruments/{instrument.asset_tag}/write-off"
    assert "This cannot be undone" in staff_client.get(url).get_data(as_text=True)
    response = submit(staff_client, url, {"reason": "Crushed"})
    assert response.status_code == 422
    assert "Tick to confirm" in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(Instrument.status)) == "available"
    response = submit(staff_client, url, {"reason": "Crushed", "confirm": "y"})
    assert response.status_code == 303
    page = staff_client.get(response.location).get_data(as_text=True)
    assert "Written off: Crushed" in page
    assert "Send to repair" not in page


def test_repair_of_a_written_off_instrument_is_refused_with_a_4xx(app, staff_client, factory):
    instrument = factory.instrument()
    submit(staff_client, f"/instruments/{instrument.asset_tag}/write-off", {"reason": "Lost", "confirm": "y"})
    response = staff_client.post(f"/instruments/{instrument.asset_tag}/repair",  # an old tab: the page is gone
                                 data={"repairer": "R", "sent_on": "2025-03-10"})
    assert response.status_code == 409
    assert "written off; it cannot become in repair" in response.get_data(as_text=True)


def test_edit_changes_details_and_audits_them(app, staff_client, factory):
    staff = factory.user("staff", name="Sam Storekeeper")
    violin = factory.instrument_type("Violin")
    instrument = factory.instrument(violin, location="Store / A1")
    submit(staff_client, "/dashboard", form="/logout")
    login(staff_client, staff)
    response = submit(staff_client, f"/instruments/{instrument.asset_tag}/edit", {"location": "Store / C3"})
    assert response.status_code == 303
    page = staff_client.get(response.location).get_data(as_text=True)
    assert "Store / C3" in page
    assert "Sam Storekeeper" in page
    assert "Changed" in page
    with in_app(app) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "instrument.edited")).one()
        assert event.changes["location"] == ["Store / A1", "Store / C3"]


def test_edit_to_a_duplicate_tag_is_refused(app, staff_client, factory):
    violin = factory.instrument_type("Violin")
    factory.instrument(violin, asset_tag="A-1")
    second = factory.instrument(violin, asset_tag="A-2")
    response = submit(staff_client, f"/instruments/{second.asset_tag}/edit", {"asset_tag": "a-1"})
    assert response.status_code == 409
    with in_app(app) as session:
        assert sorted(session.scalars(select(Instrument.asset_tag))) == ["A-1", "A-2"]


def test_types_can_be_added_and_listed(staff_client):
    response = submit(staff_client, "/types/new", {"name": "Cello", "family": "strings",
                                                   "sizes": "1/4, 1/2, 3/4, 4/4", "hire_band": "b"})
    assert response.status_code == 303
    page = staff_client.get("/types").get_data(as_text=True)
    assert "Cello" in page
    assert "1/4, 1/2, 3/4, 4/4" in page
    response = submit(staff_client, "/types/new", {"name": "cello", "family": "strings", "hire_band": "A"})
    assert response.status_code == 422
    assert "already a type called cello" in response.get_data(as_text=True)


def test_a_page_past_the_end_of_the_list_says_so_and_leads_back(app, factory, staff_client):
    for _ in range(3):
        factory.instrument()
    page = staff_client.get("/instruments?page=99").get_data(as_text=True)
    assert "No instruments yet" not in page
    assert "No instruments on this page" in page and "page=1" in page  # the last page (20 a page: one)


def test_cancelling_a_loan_opened_from_an_instrument_goes_back_to_it(app, factory, staff_client):
    tag = factory.instrument().asset_tag
    page = staff_client.get(f"/loans/new?tag={tag}").get_data(as_text=True)
    assert f'href="/instruments/{tag}">Cancel</a>' in page


def test_a_set_instruments_page_names_its_set_and_offers_no_lending_of_its_own(app, factory, staff_client):
    kit = factory.classroom_set(size=2, name="Ukulele set A")
    with in_app(app) as session:
        tag = session.scalars(select(Instrument.asset_tag).join(ClassroomSetItem)
                              .where(ClassroomSetItem.set_id == kit.id)).first()
    page = staff_client.get(f"/instruments/{tag}").get_data(as_text=True)
    assert "Ukulele set A</a>:" in page and "it is lent with the set, not on its own." in page
    assert f"/loans/new?tag={tag}" not in page
    loose = factory.instrument().asset_tag
    assert f"/loans/new?tag={loose}" in staff_client.get(f"/instruments/{loose}").get_data(as_text=True)



A_YEAR_ON = today() + timedelta(days=365)


def location_in_list(page: str, tag: str) -> str:
    """The Location cell of an instrument's row in the list, as a person reads it."""
    from lxml import html

    row = html.fromstring(page).xpath(f"//tr[th//a[text()='{tag}']]")[0]
    return " ".join(row.xpath(".//td[@data-label='Location']")[0].text_content().split())


def test_the_list_shows_an_instrument_on_loan_with_its_borrower_and_its_shelf_to_come_back_to(
        app, staff_client, factory):

    lent = factory.instrument(location="Store / Shelf A1")
    factory.loan(lent, factory.pupil("Ava Jones", school=factory.school("Riverside Primary")),
         due_on=A_YEAR_ON)
    page = staff_client.get("/instruments").get_data(as_text=True)
    assert location_in_list(page, lent.asset_tag) == ("On loan to Ava Jones (Riverside Primary) "
                                                      "· back to Store / Shelf A1")


def test_the_list_shows_an_instrument_in_the_store_on_its_shelf(staff_client, factory):
    shelved = factory.instrument(location="Store / Shelf B2")
    page = staff_client.get("/instruments").get_data(as_text=True)
    assert location_in_list(page, shelved.asset_tag) == "Store / Shelf B2"


def test_the_list_shows_an_instrument_lent_to_a_school_at_that_school(app, staff_client, factory):

    lent = factory.instrument(location="Store / Shelf A1")
    factory.loan(lent, factory.school("Hillcrest Academy"), due_on=A_YEAR_ON)
    page = staff_client.get("/instruments").get_data(as_text=True)
    assert location_in_list(page, lent.asset_tag) == "At Hillcrest Academy · back to Store / Shelf A1"


def test_the_list_finds_where_its_instruments_are_in_one_statement_for_the_whole_page(app, staff_client, factory):
    from .conftest import statements_run

    violin = factory.instrument_type("Violin")
    for n in range(5):
        factory.loan(factory.instrument(violin), factory.pupil(f"Pupil {n}", school=factory.school()),
             due_on=A_YEAR_ON)
    with statements_run(app) as statements:
        page = staff_client.get("/instruments").get_data(as_text=True)
    assert page.count("On loan to") == 5
    assert sum(bool(re.search(r"\bFROM loan\b", s)) for s, _ in statements) == 1


def test_the_list_shows_an_instrument_held_for_a_signed_agreement_on_its_shelf_and_for_whom(
        app, staff_client, factory):

    held = factory.instrument(location="Store / Shelf A1")
    factory.loan(held, factory.pupil("Ava Jones"), due_on=A_YEAR_ON, awaiting_agreement=True)
    page = staff_client.get("/instruments").get_data(as_text=True)
    assert location_in_list(page, held.asset_tag) == "Store / Shelf A1 · held for Ava Jones"
