"""Stocktakes: each outcome (found, missing, unexpected, wrong status), resolving them, bad scans, reports."""
import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from loanservice.errors import LoanServiceError
from loanservice.inventory.models import Instrument, InstrumentCount
from loanservice.inventory.services import mark_missing
from loanservice.inventory.tags import resolve_instrument
from loanservice.loans.models import Loan, LoanStatus
from loanservice.stocktake import services
from loanservice.stocktake.models import Place, Resolution, Stocktake, StocktakeItem
from loanservice.stocktake.services import Outcome
from loanservice.timeutil import today

from .conftest import in_app, login, pdf_text, tags_of
from .pages import read_form, submit

SHELF = "Store / Shelf B2"
OTHER_SHELF = "Store / Shelf C1"


def start(app, **kw):
    with in_app(app) as session:
        stocktake = services.start_stocktake(session, None, **kw)
        session.commit()
        return stocktake.id


def scan(app, stocktake_id, code):
    with in_app(app) as session:
        answer = services.scan(session, None, session.get(Stocktake, stocktake_id), code,
                               base_url="http://hub.test")
        session.commit()
        return answer


def finish(app, stocktake_id):
    with in_app(app) as session:
        services.finish(session, None, session.get(Stocktake, stocktake_id))
        session.commit()


def outcomes(app, stocktake_id):
    with in_app(app) as session:
        result = services.results(session, session.get(Stocktake, stocktake_id))
        return {outcome: [line.instrument.asset_tag for line in lines] for outcome, lines in result.by_outcome.items()}


@pytest.fixture
def shelf(factory):
    """Three instruments on SHELF, one on OTHER_SHELF, one lent."""
    kind = factory.instrument_type("Violin", sizes=("1/2",))
    on_shelf = [factory.instrument(kind, asset_tag=f"VLN-00{n}", location=SHELF) for n in (1, 2, 3)]
    elsewhere = factory.instrument(kind, asset_tag="VLN-004", location=OTHER_SHELF)
    lent = factory.instrument(kind, asset_tag="VLN-005", location=SHELF)
    factory.loan(lent, factory.family(name="Ada's family"), due_on=today() + timedelta(days=30))
    return on_shelf, elsewhere, lent


def test_a_shelf_stocktake_expects_what_is_recorded_there_in_the_store(app, shelf):
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    with in_app(app) as session:
        assert services.expected_count(session, session.get(Stocktake, stocktake_id)) == 3


def test_each_outcome_of_a_shelf_stocktake(app, factory, shelf):
    with in_app(app) as session:
        mark_missing(session, None, resolve_instrument(session, "VLN-003"))
        session.commit()
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    for code in ("VLN-001", "VLN-004", "VLN-005", "VLN-003"):
        scan(app, stocktake_id, code)
    finish(app, stocktake_id)
    result = outcomes(app, stocktake_id)
    assert result[Outcome.FOUND] == ["VLN-001"]
    assert result[Outcome.MISSING] == ["VLN-002"]
    assert result[Outcome.UNEXPECTED] == ["VLN-004", "VLN-005"]
    assert result[Outcome.WRONG_STATUS] == ["VLN-003"]


def test_a_label_url_counts_like_its_tag_and_a_second_scan_counts_once(app, shelf):
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    scan(app, stocktake_id, "http://hub.test/i/VLN-001")
    again = scan(app, stocktake_id, "vln-001")
    assert again.again is True
    assert again.summary == "1 of 3 expected found"


def test_a_finished_count_records_the_day_each_instrument_found_was_last_counted(app, shelf):
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    scan(app, stocktake_id, "VLN-001")
    finish(app, stocktake_id)
    with in_app(app) as session:
        counted = dict(session.execute(select(Instrument.asset_tag, InstrumentCount.last_counted_on)
                                       .join(InstrumentCount)).all())
    assert counted == {"VLN-001": today()}


def test_a_school_stocktake_expects_the_sets_it_holds(app, factory):
    kit, school = factory.classroom_set(size=3), factory.school(name="Oak Primary")
    factory.check_out_set(kit, school)
    stray = factory.instrument()
    stocktake_id = start(app, place=Place.SCHOOL, school_id=school.id)
    first, second, _ = tags_of(app, kit)
    scan(app, stocktake_id, first)
    scan(app, stocktake_id, second)
    scan(app, stocktake_id, stray.asset_tag)
    finish(app, stocktake_id)
    result = outcomes(app, stocktake_id)
    assert result[Outcome.FOUND] == sorted([first, second])
    assert result[Outcome.MISSING] == [tags_of(app, kit)[2]]
    assert result[Outcome.UNEXPECTED] == [stray.asset_tag]


# ---------------------------------------------------------------- bad scans


def test_an_unknown_tag_is_refused_and_nothing_is_counted(app, shelf):
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    with pytest.raises(LoanServiceError, match="Unknown tag: no instrument has asset tag NOPE-1") as refused:
        scan(app, stocktake_id, "NOPE-1")
    assert refused.value.status_code == 404
    with in_app(app) as session:
        assert session.scalar(select(func.count()).where(StocktakeItem.scanned_at.is_not(None))) == 0


def test_a_sets_own_label_is_refused(app, factory, shelf):
    kit = factory.classroom_set(size=2, name="Ukulele set A", tag="SET-UKE-A")
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    with pytest.raises(LoanServiceError, match="SET-UKE-A is the label of a classroom set, Ukulele set A") as refused:
        scan(app, stocktake_id, "SET-UKE-A")
    assert refused.value.status_code == 422
    assert kit.id


def test_a_finished_stocktake_refuses_scans_and_a_second_finish(app, shelf):
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    finish(app, stocktake_id)
    with pytest.raises(LoanServiceError, match="is finished") as refused:
        scan(app, stocktake_id, "VLN-001")
    assert refused.value.status_code == 409
    with pytest.raises(LoanServiceError, match="already finished"):
        finish(app, stocktake_id)


def test_finishing_twice_from_the_page_is_a_409(app, factory, client, shelf):
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    login(client, factory.user("staff"))
    page = client.get(f"/stocktakes/{stocktake_id}")
    form = read_form(page.get_data(as_text=True), f"/stocktakes/{stocktake_id}", f"/stocktakes/{stocktake_id}/finish")
    assert client.post(form.action, data=dict(form.pairs)).status_code == 303
    second = client.post(form.action, data=dict(form.pairs))
    assert second.status_code == 409
    assert "already finished" in second.get_data(as_text=True)


# ---------------------------------------------------------------- resolving


def _line_id(app, stocktake_id, tag):
    with in_app(app) as session:
        return session.scalar(select(StocktakeItem.id).join(StocktakeItem.instrument)
                              .where(StocktakeItem.stocktake_id == stocktake_id,
                                     StocktakeItem.instrument.has(asset_tag=tag)))


def resolve(app, stocktake_id, tag, action):
    with in_app(app) as session:
        services.resolve_one(session, None, session.get(Stocktake, stocktake_id), _line_id(app, stocktake_id, tag),
                             action)
        session.commit()


def test_marking_a_missing_instrument_missing(app, shelf):
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    finish(app, stocktake_id)
    resolve(app, stocktake_id, "VLN-002", Resolution.MARKED_MISSING)
    with in_app(app) as session:
        assert resolve_instrument(session, "VLN-002").status == "missing"


def test_moving_an_unexpected_instrument_here(app, shelf):
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    scan(app, stocktake_id, "VLN-004")
    finish(app, stocktake_id)
    resolve(app, stocktake_id, "VLN-004", Resolution.MOVED_HERE)
    with in_app(app) as session:
        assert resolve_instrument(session, "VLN-004").location == SHELF


def test_marking_found_an_instrument_recorded_missing(app, shelf):
    with in_app(app) as session:
        mark_missing(session, None, resolve_instrument(session, "VLN-003"))
        session.commit()
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    scan(app, stocktake_id, "VLN-003")
    resolve(app, stocktake_id, "VLN-003", Resolution.MARKED_FOUND)
    with in_app(app) as session:
        assert resolve_instrument(session, "VLN-003").status == "available"


def test_an_unexpected_instrument_on_loan_cannot_just_be_moved_here(app, shelf):
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    scan(app, stocktake_id, "VLN-005")
    with pytest.raises(LoanServiceError, match="check it in from its loan first"):
        resolve(app, stocktake_id, "VLN-005", Resolution.MOVED_HERE)


def test_a_school_set_item_not_found_is_reported_missing_from_its_loan(app, factory):
    kit, school = factory.classroom_set(size=2), factory.school()
    factory.check_out_set(kit, school)
    stocktake_id = start(app, place=Place.SCHOOL, school_id=school.id)
    first, second = tags_of(app, kit)
    scan(app, stocktake_id, first)
    finish(app, stocktake_id)
    resolve(app, stocktake_id, second, Resolution.MARKED_MISSING)
    with in_app(app) as session:
        assert session.scalar(select(Loan.status).join(Loan.instrument)
                              .where(Loan.instrument.has(asset_tag=second))) == LoanStatus.LOST


def test_bulk_marking_missing_names_how_many_then_does_them_all(app, factory, client, shelf):
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    finish(app, stocktake_id)
    login(client, factory.user("staff"))
    url = f"/stocktakes/{stocktake_id}/resolve-all?outcome=missing"
    page = client.get(url).get_data(as_text=True)
    assert "Mark missing: 3 instruments?" in page
    response = submit(client, url)
    assert response.status_code == 303
    with in_app(app) as session:
        assert [resolve_instrument(session, f"VLN-00{n}").status for n in (1, 2, 3)] == ["missing"] * 3


def test_bulk_resolution_is_all_or_nothing(app, factory, client, shelf):
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    for code in ("VLN-004", "VLN-005"):
        scan(app, stocktake_id, code)
    login(client, factory.user("staff"))
    response = submit(client, f"/stocktakes/{stocktake_id}/resolve-all?outcome=unexpected")
    assert response.status_code == 409
    assert "VLN-005 is recorded on loan" in response.get_data(as_text=True)
    with in_app(app) as session:
        assert resolve_instrument(session, "VLN-004").location == OTHER_SHELF
        assert session.scalar(select(func.count()).where(StocktakeItem.resolution.is_not(None))) == 0


def test_bulk_resolution_refuses_when_the_count_shown_has_changed(app, factory, client, shelf):
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    finish(app, stocktake_id)
    login(client, factory.user("staff"))
    url = f"/stocktakes/{stocktake_id}/resolve-all?outcome=missing"
    page = client.get(url)
    resolve(app, stocktake_id, "VLN-001", Resolution.MARKED_MISSING)  # someone else, meanwhile
    form = read_form(page.get_data(as_text=True), url)
    response = client.post(form.action, data=dict(form.pairs))
    assert response.status_code == 409
    assert "2 instruments (not 3)" in response.get_data(as_text=True)


# ---------------------------------------------------------------- pages


def test_staff_start_a_shelf_stocktake_and_scan_from_the_page(app, factory, client, shelf):
    login(client, factory.user("staff"))
    response = submit(client, "/stocktakes", {"place": "shelf", "location": SHELF})
    assert response.status_code == 303
    page_url = response.headers["Location"]
    response = submit(client, page_url, {"code": "VLN-001"}, form="code")
    assert response.status_code == 303
    assert "1 of 3 expected found" in client.get(page_url).get_data(as_text=True)


def test_a_scan_from_the_queue_answers_json(app, factory, client, shelf):
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    login(client, factory.user("staff"))
    page = client.get(f"/stocktakes/{stocktake_id}")
    form = read_form(page.get_data(as_text=True), f"/stocktakes/{stocktake_id}", "code")
    data = dict(form.pairs, code="VLN-002")
    answer = client.post(form.action, data=data, headers={"Accept": "application/json"})
    assert answer.get_json()["summary"] == "1 of 3 expected found"
    refused = client.post(form.action, data=dict(form.pairs, code="SET-NOPE"),
                          headers={"Accept": "application/json"})
    assert refused.status_code == 404
    assert refused.get_json()["message"] == "Unknown tag: no instrument has asset tag SET-NOPE."


def test_a_shelf_stocktake_without_a_shelf_is_refused(app, factory, client, shelf):
    login(client, factory.user("staff"))
    response = submit(client, "/stocktakes", {"place": "shelf", "location": ""})
    assert response.status_code == 422
    assert "Choose the shelf or location to count." in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Stocktake)) == 0


def test_the_report_pdf_and_csv_list_each_outcome(app, factory, client, shelf):
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    scan(app, stocktake_id, "VLN-001")
    scan(app, stocktake_id, "VLN-004")
    finish(app, stocktake_id)
    login(client, factory.user("staff"))
    text = pdf_text(client.get(f"/stocktakes/{stocktake_id}/report.pdf").data)
    assert "Stocktake: Store / Shelf B2" in text
    assert "Missing (2)" in text
    assert "Unexpected (1) Tag Instrument Records said Scanned Put right VLN-004" in text
    rows = list(csv.DictReader(io.StringIO(client.get(f"/stocktakes/{stocktake_id}/report.csv")
                                           .get_data(as_text=True))))
    assert {row["asset_tag"]: row["outcome"] for row in rows} == {
        "VLN-001": "Found", "VLN-002": "Missing", "VLN-003": "Missing", "VLN-004": "Unexpected"}


def test_the_instrument_page_and_the_asset_register_show_the_last_counted_day(app, factory, client, shelf):
    stocktake_id = start(app, place=Place.SHELF, location=SHELF)
    scan(app, stocktake_id, "VLN-001")
    finish(app, stocktake_id)
    login(client, factory.user("staff"))
    assert f"<dt>Last counted</dt><dd>{today():%-d %b %Y}</dd>" in client.get("/instruments/VLN-001").get_data(
        as_text=True)
    register = client.get("/instruments/export.csv").get_data(as_text=True)
    rows = {row["asset_tag"]: row for row in csv.DictReader(io.StringIO(register))}
    assert rows["VLN-001"]["last_counted_on"] == today().isoformat()


def test_school_users_cannot_open_stocktakes(app, factory, client):
    login(client, factory.user("school"))
    assert client.get("/stocktakes").status_code == 403
