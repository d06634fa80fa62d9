"""Reports for the hub's manager and its funders: every cell of the data return of a small known hub, small
counts hidden, the asset register, the exports, saved snapshots and the pages."""
import io
from datetime import date
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import update

from loanservice.borrowers.models import Pupil
from loanservice.extensions import db
from loanservice.loans.models import Loan, LoanStatus
from loanservice.reports import figures
from loanservice.reports.figures import SchoolYear, Table, suppress
from loanservice.sets.models import SetLoan

from .conftest import in_app, login
from .pages import submit

YEAR = SchoolYear(2025)  # 2025-26


def _close(app, loan_id, on, started_on=None):
    moved = {"started_on": started_on} if started_on else {}
    with in_app(app) as session:
        session.execute(update(Loan).where(Loan.id == loan_id).values(status=LoanStatus.RETURNED, closed_on=on,
                                                                      condition_at_return=2, **moved))
        session.commit()


def _close_set(app, set_loan_id, on, pupils=None, year_group=None, started_on=None):
    """Close a set loan on ``on`` (and move its start back to ``started_on``, before the lending form allows)."""
    moved = {"started_on": started_on} if started_on else {}
    with in_app(app) as session:
        session.execute(update(Loan).where(Loan.set_loan_id == set_loan_id)
                        .values(status=LoanStatus.RETURNED, closed_on=on, condition_at_return=2, **moved))
        session.execute(update(SetLoan).where(SetLoan.id == set_loan_id)
                        .values(closed_on=on, pupils=pupils, year_group=year_group, **moved))
        session.commit()


@pytest.fixture
def hub(app, factory):
    """A small hub: three schools; whole-class sets in 2024-25 and 2025-26; pupils with their own instruments
    in 2025-26 of several year groups, families of instruments and circumstances; a loan called off."""
    a, b, c = factory.school("Ash Primary"), factory.school("Beech Primary"), factory.school("Cedar Academy")
    violin = factory.instrument_type("Violin", family="strings", sizes=("1/2",))
    trumpet = factory.instrument_type("Trumpet", family="brass", sizes=())
    # 2025-26: a set at Ash for a Year 4 class of 30, one at Beech with no class size (3 instruments).
    ash_set = factory.check_out_set(factory.classroom_set(4), a, started_on=date(2025, 9, 8), due_on=date(2026, 7, 17))
    _close_set(app, ash_set, date(2026, 7, 17), pupils=30, year_group=4)
    beech_set = factory.check_out_set(factory.classroom_set(3), b, started_on=date(2025, 9, 8),
                                      due_on=date(2026, 7, 17))
    _close_set(app, beech_set, date(2026, 7, 17))
    # 2024-25: a set at Cedar, so a Cedar pupil with a loan in 2025-26 continues after WCET.
    cedar_set = factory.check_out_set(factory.classroom_set(2), c, started_on=date(2025, 9, 1),
                                      due_on=date(2025, 9, 1))
    _close_set(app, cedar_set, date(2025, 7, 18), pupils=28, year_group=6, started_on=date(2024, 9, 9))
    pupils = {}
    for name, school, year_group, remission, send, kind in [
        ("Amy", a, 5, "free_school_meals", False, violin),
        ("Ben", a, 5, "free_school_meals", True, violin),
        ("Cal", a, 5, "pupil_premium", False, violin),
        ("Dee", a, 5, "none", False, violin),
        ("Eve", a, 6, "none", False, trumpet),
        ("Fin", a, 6, "none", False, trumpet),
        ("Gus", c, 7, "looked_after", False, violin),
    ]:
        extra = {"remission_verified_on": date(2025, 9, 1)} if remission != "none" else {}
        pupil = factory.pupil(name, school=school, year_group=year_group, remission_category=remission, send=send,
                              **extra)
        pupils[name] = pupil
        loan_id = factory.loan(factory.instrument(kind), pupil, started_on=date(2025, 10, 1), due_on=date(2026, 7, 17))
        _close(app, loan_id, date(2026, 7, 17))
    # A second loan of the same year for Amy counts her once.
    factory.loan(factory.instrument(violin), pupils["Amy"], started_on=date(2026, 7, 20), due_on=date(2026, 12, 18))
    # A loan of 2024-25 only is not in 2025-26.
    old = factory.pupil("Hal", school=b, year_group=3)
    _close(app, factory.loan(factory.instrument(violin), old, started_on=date(2025, 9, 1), due_on=date(2025, 9, 1)),
           date(2025, 3, 1), started_on=date(2024, 10, 1))
    # Called off before issue: never lent.
    with in_app(app) as session:
        called_off = factory.loan(factory.instrument(trumpet), factory.pupil("Ivy", school=a, year_group=5),
                                  started_on=date(2025, 10, 1), due_on=date(2026, 7, 17))
        session.execute(update(Loan).where(Loan.id == called_off)
                        .values(status=LoanStatus.CANCELLED, closed_on=date(2025, 10, 2)))
        session.commit()
    return pupils


def _return(app, threshold=1):
    with in_app(app) as session:
        return figures.data_return(session, YEAR, threshold)


def _table(report, title):
    return {row[0]: row[1:] for row in next(t for t in report.tables if t.title == title).as_rows()}


# ---------------------------------------------------------------- every cell, nothing hidden


def test_schools_reached_through_sets(app, hub):
    assert dict(_return(app).schools)["Schools reached through sets"] == 2


def test_schools_reached_through_individual_loans(app, hub):
    assert dict(_return(app).schools)["Schools reached through individual loans"] == 2


def test_schools_reached_in_all(app, hub):
    assert dict(_return(app).schools)["Schools reached in all"] == 3


def test_wcet_pupils_count_the_class_size_given(app, hub):
    assert _table(_return(app), "WCET pupils by year group")["Year 4"] == ["30"]


def test_wcet_pupils_count_the_instruments_when_no_class_size_was_given(app, hub):
    assert _table(_return(app), "WCET pupils by year group")["Not known"] == ["3"]


def test_wcet_pupils_total(app, hub):
    assert _table(_return(app), "WCET pupils by year group")["Total"] == ["33"]


def test_individual_loans_by_year_group_and_family(app, hub):
    table = _table(_return(app), "Pupils with individual loans, by year group and instrument family")
    assert table["Year group"] == ["Strings", "Brass", "Total"]
    assert table["Year 5"] == ["4", "0", "4"]
    assert table["Year 6"] == ["0", "2", "2"]
    assert table["Year 7"] == ["1", "0", "1"]
    assert table["Total"] == ["5", "2", "7"]


def test_a_pupil_with_two_loans_in_the_year_counts_once(app, hub):
    with in_app(app) as session:
        assert figures.pupils_reached(session, YEAR)["individual"] == 7


def test_continuation_counts_pupils_whose_school_had_a_set_the_year_before(app, hub):
    table = _table(_return(app), "Continuation after WCET")
    assert table["Individual loan this year, school had a WCET set the year before"] == ["1"]


def test_circumstances_by_remission_category(app, hub):
    table = _table(_return(app), "Pupils with individual loans, by circumstances")
    assert (table["Free school meals"], table["Pupil premium"], table["Looked after"], table["None"]) == (
        ["2"], ["1"], ["1"], ["3"])


def test_send_count(app, hub):
    assert _table(_return(app), "Pupils with individual loans, by SEND")["SEND"] == ["1"]


def test_a_loan_called_off_before_issue_is_not_counted(app, hub):
    table = _table(_return(app), "Pupils with individual loans, by year group and instrument family")
    assert table["Year 5"][-1] == "4"  # Ivy's trumpet was never lent


# ---------------------------------------------------------------- small counts hidden


def test_a_count_below_the_threshold_is_shown_as_less_than_it(app, hub):
    assert _table(_return(app, 5), "Pupils with individual loans, by SEND")["SEND"] == ["<5"]


def test_a_second_count_is_hidden_so_the_total_cannot_give_the_first_away(app, hub):
    table = _table(_return(app, 5), "WCET pupils by year group")
    assert table["Year 4"] == ["[c]"]  # 30, withheld because "Not known" (3) is, and the total 33 is shown


def test_a_count_withheld_beside_a_small_one_is_not_shown_as_small(app, hub):
    assert _table(_return(app, 5), "WCET pupils by year group")["Not known"] == ["<5"]


def test_the_total_stays_when_two_counts_are_hidden(app, hub):
    assert _table(_return(app, 5), "WCET pupils by year group")["Total"] == ["33"]


def test_zero_is_shown(app, hub):
    table = _table(_return(app, 5), "Pupils with individual loans, by year group and instrument family")
    assert table["Year 6"][0] == "0"


def test_no_hidden_count_can_be_worked_back_from_its_row_or_column():
    table = suppress(Table("t", "r", ["a", "b", "c"], [("x", [10, 3, 12]), ("y", [8, 9, 20])]), 5)
    for row in table.shown:
        assert sum(not cell.isdigit() for cell in row) != 1
    for column in zip(*table.shown, strict=True):
        assert sum(not cell.isdigit() for cell in column) != 1


def test_the_smallest_other_count_is_the_one_hidden_beside_a_small_one():
    table = suppress(Table("t", "r", ["n"], [("x", [10]), ("y", [3]), ("z", [12])]), 5)
    assert [row[0] for row in table.shown] == ["[c]", "<5", "12", "25"]


def test_a_threshold_of_one_hides_nothing():
    table = suppress(Table("t", "r", ["n"], [("x", [1]), ("y", [2])]), 1)
    assert [row[0] for row in table.shown] == ["1", "2", "3"]


# ---------------------------------------------------------------- unchanged when people are anonymised


def test_changing_a_pupils_details_after_the_loan_leaves_every_figure_unchanged(app, hub):
    before = _return(app, 1).figures()
    with in_app(app) as session:
        session.execute(update(Pupil).values(name="Pupil", send=False, year_group=None))
        session.commit()
    assert _return(app, 1).figures() == before


# ---------------------------------------------------------------- school years


def test_a_school_year_is_read_as_funders_write_it():
    assert SchoolYear.parse("2025-26").first == date(2025, 9, 1)


def test_a_school_year_ends_in_august():
    assert SchoolYear.parse("2025/2026").last == date(2026, 8, 31)


@pytest.mark.parametrize("text", ["2025-27", "twenty", "2099-00", ""])
def test_a_year_that_does_not_exist_is_refused(text):
    from loanservice.errors import InvalidInput

    with pytest.raises(InvalidInput):
        SchoolYear.parse(text)


# ---------------------------------------------------------------- pages and files


@pytest.fixture
def admin_client(client, factory):
    login(client, factory.user("admin"))
    return client


def test_the_data_return_page_shows_the_figures(staff_client, hub):
    page = staff_client.get("/reports/data-return?year=2025-26&threshold=1").get_data(as_text=True)
    assert "Schools reached through sets" in page


def test_a_threshold_of_zero_is_refused_with_a_message(staff_client, hub):
    response = staff_client.get("/reports/data-return?year=2025-26&threshold=0")
    assert response.status_code == 400
    assert "must be 1 or more" in response.get_data(as_text=True)


def test_a_year_that_does_not_exist_is_a_clear_400(staff_client):
    response = staff_client.get("/reports/data-return?year=2025-27")
    assert "the second year follows the first" in response.get_data(as_text=True)


def test_a_year_with_no_data_is_an_empty_report_not_an_error(staff_client):
    page = staff_client.get("/reports/data-return?year=2019-20").get_data(as_text=True)
    assert "No loans or sets were out in 2019-20" in page


def test_the_workbook_has_the_definitions_first(staff_client, hub):
    data = staff_client.get("/reports/data-return.xlsx?year=2025-26").data
    assert load_workbook(io.BytesIO(data)).sheetnames[0] == "Definitions"


def test_the_workbook_has_a_sheet_per_section(staff_client, hub):
    data = staff_client.get("/reports/data-return.xlsx?year=2025-26").data
    assert load_workbook(io.BytesIO(data)).sheetnames[1:] == [
        "Schools", "WCET pupils", "Individual loans", "Continuation", "Circumstances", "SEND"]


def test_the_workbook_hides_small_counts_too(staff_client, hub):
    data = staff_client.get("/reports/data-return.xlsx?year=2025-26&threshold=5").data
    sheet = load_workbook(io.BytesIO(data))["SEND"]
    assert sheet["B3"].value == "<5"


def test_the_csv_has_one_line_per_cell(staff_client, hub):
    text = staff_client.get("/reports/data-return.csv?year=2025-26&threshold=1").get_data(as_text=True)
    assert '"Pupils with individual loans, by SEND",SEND,Pupils,1' in text.splitlines()


def test_the_dashboard_draws_loans_by_term_from_its_table(staff_client, hub):
    page = staff_client.get("/reports/").get_data(as_text=True)
    assert 'data-chart-for="pupils-reached-by-school-year"' in page


def test_the_dashboard_has_the_table_a_chart_is_drawn_from(staff_client, hub):
    page = staff_client.get("/reports/").get_data(as_text=True)
    assert 'id="pupils-reached-by-school-year"' in page


def test_the_dashboard_counts_pupils_reached_this_year(staff_client, hub, factory):
    page = staff_client.get("/reports/").get_data(as_text=True)
    assert "1</span> pupils reached this school year" in page  # Amy's summer loan runs into 2026-27


def test_a_parent_cannot_open_the_reports(client, factory):
    login(client, factory.user("parent"))
    assert client.get("/reports/").status_code == 403


def test_staff_cannot_save_a_report(staff_client, hub):
    page = staff_client.get("/reports/data-return?year=2025-26").get_data(as_text=True)
    assert "Save as given to the funder" not in page


# ---------------------------------------------------------------- the asset register


@pytest.fixture
def register(app, factory):
    grant = factory.instrument_type("Cello", family="strings", sizes=("4/4",))
    factory.instrument(grant, funding_source="DfE capital grant", purchase_cost=Decimal("900.00"),
                       purchased_on=date(2024, 11, 1), serial_number="C-1")
    factory.instrument(grant, funding_source="DfE capital grant", purchase_cost=Decimal("300.00"),
                       purchased_on=date(2025, 2, 1), serial_number="C-2")
    factory.instrument(grant, funding_source="Donation", purchase_cost=Decimal("50.00"),
                       purchased_on=date(2025, 10, 1), serial_number="C-3")


def test_the_register_totals_by_funding_and_year(app, register):
    with in_app(app) as session:
        totals = figures.register_totals(session, figures.RegisterFilters(funding="DfE capital grant"),
                                         Decimal("500"))
    assert [(t.funding, t.year, t.instruments, t.cost) for t in totals] == [
        ("DfE capital grant", "2024-25", 2, Decimal("1200.00"))]


def test_the_register_flags_instruments_below_the_capitalisation_threshold(app, register):
    with in_app(app) as session:
        totals = figures.register_totals(session, figures.RegisterFilters(funding="DfE capital grant"),
                                         Decimal("500"))
    assert totals[0].below_threshold == 1


def test_the_register_csv_respects_the_filters(staff_client, register):
    text = staff_client.get("/reports/asset-register.csv?funding=Donation").get_data(as_text=True)
    assert len(text.strip().splitlines()) == 2


def test_a_funding_source_that_matches_nothing_is_a_clear_400(staff_client, register):
    response = staff_client.get("/reports/asset-register?funding=Lottery")
    assert response.status_code == 400
    assert "No instrument has the funding source “Lottery”" in response.get_data(as_text=True)


def test_a_written_off_instruments_disposal_is_on_the_register(app, admin_client, factory):
    from loanservice.inventory.models import InstrumentStatus
    from loanservice.inventory.services import change_status

    instrument = factory.instrument(funding_source="DfE capital grant")
    with in_app(app) as session:
        from loanservice.inventory.models import Instrument

        change_status(session, None, session.get(Instrument, instrument.id), InstrumentStatus.WRITTEN_OFF,
                      "cracked beyond repair")
        session.commit()
    response = submit(admin_client, f"/reports/asset-register/{instrument.asset_tag}/disposal",
                      {"proceeds": "15.00"})
    assert response.status_code == 303
    text = admin_client.get("/reports/asset-register.csv").get_data(as_text=True)
    assert "cracked beyond repair,15.00" in text


def test_a_negative_disposal_is_refused(app, admin_client, factory):
    from loanservice.inventory.models import Instrument, InstrumentStatus
    from loanservice.inventory.services import change_status

    instrument = factory.instrument()
    with in_app(app) as session:
        change_status(session, None, session.get(Instrument, instrument.id), InstrumentStatus.WRITTEN_OFF, "lost")
        session.commit()
    response = submit(admin_client, f"/reports/asset-register/{instrument.asset_tag}/disposal", {"proceeds": "-5"})
    assert response.status_code == 422


# ---------------------------------------------------------------- saved as given


def test_a_saved_report_downloads_unchanged_after_the_figures_change(app, admin_client, hub, factory):
    submit(admin_client, "/reports/data-return?year=2025-26", {"note": "Sent to ACE 1 Oct"})
    with in_app(app) as session:
        from loanservice.reports.models import ReportSnapshot

        snapshot = session.scalars(db.select(ReportSnapshot)).one()
        saved = snapshot.workbook
    factory.loan(factory.instrument(), factory.pupil("Late", year_group=5), started_on=date(2026, 1, 5),
                 due_on=date(2026, 7, 17))
    assert admin_client.get(f"/reports/saved/{snapshot.id}.xlsx").data == saved


def test_the_saved_reports_list_names_the_note(app, admin_client, hub):
    submit(admin_client, "/reports/data-return?year=2025-26", {"note": "Sent to ACE 1 Oct"})
    assert "Sent to ACE 1 Oct" in admin_client.get("/reports/saved").get_data(as_text=True)


# ---------------------------------------------------------------- the command line


def test_the_data_return_command_writes_a_workbook(app, hub, tmp_path):
    out = tmp_path / "return.xlsx"
    result = app.test_cli_runner().invoke(args=["reports", "data-return", "--year", "2025-26", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert load_workbook(out)["Schools"]["B4"].value == 3


def test_the_data_return_command_refuses_a_threshold_of_zero(app, tmp_path):
    result = app.test_cli_runner().invoke(args=["reports", "data-return", "--year", "2025-26", "--threshold", "0",
                                                "-o", str(tmp_path / "r.xlsx")])
    assert "must be 1 or more" in result.output


def test_the_asset_register_command_filters_by_funding(app, register, tmp_path):
    out = tmp_path / "register.csv"
    app.test_cli_runner().invoke(args=["reports", "asset-register", "--funding", "Donation", "-o", str(out)])
    assert "C-3" in out.read_text()


# ---------------------------------------------------------------- the class taught with a set


def test_lending_a_set_records_the_class_size_for_the_data_return(app, staff_client, factory):
    school, kit = factory.school("Oak Primary"), factory.classroom_set(3)
    lend = {"school_id": str(school.id), "pupils": "28", "year_group": "4", "due_on": "2027-07-16"}
    response = submit(staff_client, f"/sets/{kit.id}", lend, form=f"/sets/{kit.id}/check-out")
    assert response.status_code == 303
    with in_app(app) as session:
        report = figures.data_return(session, SchoolYear.containing(figures.today()), 1)
    assert {row[0]: row[1:] for row in report.tables[0].as_rows()}["Year 4"] == ["28"]


def test_a_class_of_no_pupils_is_refused_with_a_message(staff_client, factory):
    school, kit = factory.school("Elm Primary"), factory.classroom_set(3)
    response = submit(staff_client, f"/sets/{kit.id}", {"school_id": str(school.id), "pupils": "0"},
                      form=f"/sets/{kit.id}/check-out")
    assert "Give the number of pupils taught, from 1 to 200." in response.get_data(as_text=True)


def test_anonymising_families_leaves_every_figure_of_the_data_return_unchanged(app, hub):
    from loanservice.borrowers.models import Family
    from loanservice.privacy.services import anonymise_family

    before = _return(app, 1).figures()
    with in_app(app) as session:
        for pupil in ("Ben", "Cal", "Dee", "Eve", "Gus"):  # their loans are back; Ben had SEND
            anonymise_family(session, None, session.get(Family, hub[pupil].family_id), cause="erasure")
        session.commit()
        assert session.get(Pupil, hub["Ben"].id).send is False  # the flag itself is gone
    assert _return(app, 1).figures() == before


def test_anonymising_families_leaves_the_dashboard_figures_unchanged(app, hub):
    from loanservice.borrowers.models import Family
    from loanservice.privacy.services import anonymise_family

    with in_app(app) as session:
        before = figures.dashboard(session).pupils_by_year
        for pupil in ("Ben", "Dee", "Gus"):
            anonymise_family(session, None, session.get(Family, hub[pupil].family_id), cause="erasure")
        session.commit()
        assert figures.dashboard(session).pupils_by_year == before
