"""Bulk actions on the instrument list: tick some (or take all that match the filters), confirm a page that
names how many, and the change is made to all of them in one transaction, or to none."""
import csv
import io
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from lxml import html as lxml_html
from sqlalchemy import func, select

from loanservice.inventory import bulk
from loanservice.inventory.models import ConditionCheck, Instrument, Repair
from loanservice.timeutil import today

from .conftest import in_app
from .pages import submit, submit_on


def instruments(factory, n, **kw):
    kind = factory.instrument_type("Cello", sizes=("4/4",))
    return [factory.instrument(kind, **kw) for _ in range(n)]


def where(app, tag) -> str:
    with in_app(app) as session:
        return session.scalar(select(Instrument.location).where(Instrument.asset_tag == tag))


def status_of(app, tag) -> str:
    with in_app(app) as session:
        return session.scalar(select(Instrument.status).where(Instrument.asset_tag == tag))


def confirm_page(client, action, tags=(), list_url="/instruments", **choices):
    """The confirmation page, reached as a person does: the list's bulk form, ticked boxes, an action."""
    data = {"action": action, **choices}
    if tags:
        data["tag"] = list(tags)
    return submit(client, list_url, data, form="bulk")


def test_ticked_instruments_are_moved_after_a_confirmation_naming_how_many(app, staff_client, factory):
    a, b, c = instruments(factory, 3, location="Store / A1")
    page = confirm_page(staff_client, "move", [a.asset_tag, b.asset_tag])
    assert "Move to a location: 2 instruments" in page.get_data(as_text=True)


def test_moving_ticked_instruments_moves_them_all(app, staff_client, factory):
    a, b, c = instruments(factory, 3, location="Store / A1")
    page = confirm_page(staff_client, "move", [a.asset_tag, b.asset_tag])
    response = submit_on(staff_client, page, page.request.url, {"location": "Summer store"})
    assert response.status_code == 303
    assert [where(app, a.asset_tag), where(app, b.asset_tag)] == ["Summer store", "Summer store"]


def test_moving_ticked_instruments_leaves_the_others(app, staff_client, factory):
    a, b, c = instruments(factory, 3, location="Store / A1")
    page = confirm_page(staff_client, "move", [a.asset_tag, b.asset_tag])
    submit_on(staff_client, page, page.request.url, {"location": "Summer store"})
    assert where(app, c.asset_tag) == "Store / A1"


def test_the_move_is_confirmed_on_the_list(app, staff_client, factory):
    a, b = instruments(factory, 2)
    page = confirm_page(staff_client, "move", [a.asset_tag, b.asset_tag])
    done = submit_on(staff_client, page, page.request.url, {"location": "Shelf Z"}, follow_redirects=True)
    assert "Moved 2 instruments to Shelf Z." in done.get_data(as_text=True)


def test_all_matching_the_filter_are_chosen_not_only_the_page(app, staff_client, factory):
    kind = factory.instrument_type("Flute", family="woodwind", sizes=())
    flutes = [factory.instrument(kind, make="Yamaha") for _ in range(25)]  # 20 to a page in tests
    factory.instrument(make="Stentor")
    page = confirm_page(staff_client, "move", list_url="/instruments?q=yamaha", scope="matching")
    assert "Move to a location: 25 instruments" in page.get_data(as_text=True)
    submit_on(staff_client, page, page.request.url, {"location": "Woodwind room"})
    assert where(app, flutes[-1].asset_tag) == "Woodwind room"


def test_all_matching_leaves_what_does_not_match(app, staff_client, factory):
    kind = factory.instrument_type("Flute", family="woodwind", sizes=())
    factory.instrument(kind, make="Yamaha")
    violin = factory.instrument(make="Stentor", location="Store / A1")
    page = confirm_page(staff_client, "move", list_url="/instruments?q=yamaha", scope="matching")
    submit_on(staff_client, page, page.request.url, {"location": "Woodwind room"})
    assert where(app, violin.asset_tag) == "Store / A1"


def test_an_inspection_grade_is_recorded_for_each(app, staff_client, factory):
    a, b = instruments(factory, 2)
    page = confirm_page(staff_client, "grade", [a.asset_tag, b.asset_tag])
    assert "Record an inspection grade: 2 instruments" in page.get_data(as_text=True)
    submit_on(staff_client, page, page.request.url, {"grade": "4", "note": "Summer check"})
    with in_app(app) as session:
        grades = session.scalars(select(ConditionCheck.grade).where(ConditionCheck.note == "Summer check")).all()
    assert grades == [4, 4]


def test_an_inspection_grade_becomes_the_instruments_condition(app, staff_client, factory):
    a, b = instruments(factory, 2)
    page = confirm_page(staff_client, "grade", [a.asset_tag, b.asset_tag])
    submit_on(staff_client, page, page.request.url, {"grade": "4"})
    with in_app(app) as session:
        assert session.scalar(select(Instrument.condition_grade).where(Instrument.asset_tag == b.asset_tag)) == 4


def test_sending_to_repair_opens_a_repair_for_each(app, staff_client, factory):
    a, b = instruments(factory, 2)
    page = confirm_page(staff_client, "repair", [a.asset_tag, b.asset_tag])
    assert "Send to repair or servicing: 2 instruments" in page.get_data(as_text=True)
    submit_on(staff_client, page, page.request.url, {"repairer": "Summer servicing", "fault": "Restring"})
    assert [status_of(app, a.asset_tag), status_of(app, b.asset_tag)] == ["in_repair", "in_repair"]


def test_one_that_cannot_go_to_repair_stops_them_all(app, staff_client, factory):
    a, b = instruments(factory, 2)
    factory.loan(b, factory.pupil(), due_on=today() + timedelta(days=30))
    page = confirm_page(staff_client, "repair", [a.asset_tag, b.asset_tag])
    response = submit_on(staff_client, page, page.request.url, {"repairer": "Summer servicing"})
    assert response.status_code == 409
    assert f"Nothing was sent: {b.asset_tag} is on loan" in response.get_data(as_text=True)


def test_a_refused_repair_changes_nothing(app, staff_client, factory):
    a, b = instruments(factory, 2)
    factory.loan(b, factory.pupil(), due_on=today() + timedelta(days=30))
    page = confirm_page(staff_client, "repair", [a.asset_tag, b.asset_tag])
    submit_on(staff_client, page, page.request.url, {"repairer": "Summer servicing"})
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Repair)) == 0
    assert status_of(app, a.asset_tag) == "available"


def test_a_selection_that_changed_since_the_confirmation_is_refused(app, staff_client, factory):
    kind = factory.instrument_type("Flute", family="woodwind", sizes=())
    factory.instrument(kind, make="Yamaha", location="Store / A1")
    page = confirm_page(staff_client, "move", list_url="/instruments?q=yamaha", scope="matching")
    late = factory.instrument(kind, make="Yamaha", location="Store / A1")  # added meanwhile
    response = submit_on(staff_client, page, page.request.url, {"location": "Woodwind room"})
    assert "2 instruments match now" in response.get_data(as_text=True)
    assert where(app, late.asset_tag) == "Store / A1"


def test_nothing_ticked_is_explained(app, staff_client, factory):
    instruments(factory, 2)
    response = confirm_page(staff_client, "move")
    assert response.status_code == 422
    assert "Tick the instruments first, or choose all that match the filters." in response.get_data(as_text=True)


def test_a_move_without_a_location_is_refused_beside_the_field(app, staff_client, factory):
    a, = instruments(factory, 1, location="Store / A1")
    page = confirm_page(staff_client, "move", [a.asset_tag])
    response = submit_on(staff_client, page, page.request.url, {"location": ""})
    assert response.status_code == 422
    assert "Say where they go." in response.get_data(as_text=True)


def test_more_than_a_bulk_change_takes_is_refused(app, staff_client, factory, monkeypatch):
    monkeypatch.setattr(bulk, "MOST_CHANGED", 2)
    instruments(factory, 3)
    response = confirm_page(staff_client, "move", scope="matching")
    assert "takes at most 2 instruments at once" in response.get_data(as_text=True)


def test_an_unknown_action_is_a_404(app, staff_client):
    assert staff_client.get("/instruments/bulk?action=burn&scope=matching").status_code == 404


def test_labels_for_the_ticked_go_to_the_label_page_with_their_tags(app, staff_client, factory):
    a, b, c = instruments(factory, 3)
    page = confirm_page(staff_client, "labels", [a.asset_tag, c.asset_tag])
    link = lxml_html.fromstring(page.get_data(as_text=True)).xpath("//a[contains(., 'Choose the label sheet')]")[0]
    labels = staff_client.get(link.get("href")).get_data(as_text=True)
    assert "2 instruments" in link.text_content()
    assert parse_qs(urlsplit(link.get("href")).query)["tag"] == [f"{a.asset_tag} {c.asset_tag}"]
    assert c.asset_tag in labels


def export_rows(client, page) -> list[str]:
    link = lxml_html.fromstring(page.get_data(as_text=True)).xpath("//a[contains(., 'as CSV')]")[0]
    response = client.get(link.get("href"))
    return [row["asset_tag"] for row in csv.DictReader(io.StringIO(response.get_data(as_text=True)))]


def test_export_of_the_ticked_holds_only_them(app, staff_client, factory):
    a, b, c = instruments(factory, 3)
    page = confirm_page(staff_client, "export", [a.asset_tag, c.asset_tag])
    assert "Download 2 instruments as CSV" in page.get_data(as_text=True)
    assert export_rows(staff_client, page) == [a.asset_tag, c.asset_tag]


def test_export_of_all_matching_holds_the_filtered(app, staff_client, factory):
    kind = factory.instrument_type("Flute", family="woodwind", sizes=())
    flute = factory.instrument(kind, make="Yamaha")
    factory.instrument(make="Stentor")
    page = confirm_page(staff_client, "export", list_url="/instruments?q=yamaha", scope="matching")
    assert export_rows(staff_client, page) == [flute.asset_tag]


def test_the_lists_export_link_keeps_the_filters(app, staff_client, factory):
    kind = factory.instrument_type("Flute", family="woodwind", sizes=())
    flute = factory.instrument(kind, make="Yamaha")
    factory.instrument(make="Stentor")
    listing = staff_client.get("/instruments?q=yamaha").get_data(as_text=True)
    href = lxml_html.fromstring(listing).get_element_by_id("export-link").get("href")
    rows = list(csv.DictReader(io.StringIO(staff_client.get(href).get_data(as_text=True))))
    assert [row["asset_tag"] for row in rows] == [flute.asset_tag]


def test_the_lists_export_without_filters_holds_every_instrument(app, staff_client, factory):
    instruments(factory, 3)
    rows = list(csv.DictReader(io.StringIO(staff_client.get("/instruments/export.csv").get_data(as_text=True))))
    assert len(rows) == 3
