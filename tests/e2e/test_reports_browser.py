"""The hub manager's reports in a real browser: the dashboard's charts are drawn, each with its table, with
no serious accessibility problem at a desk or on a phone; a data return is saved as given and downloaded."""
from openpyxl import load_workbook
from playwright.sync_api import expect

from loanservice.demo.seed import seed
from loanservice.extensions import db

from .conftest import PHONE, assert_accessible, sign_in


def test_the_dashboard_draws_its_charts_beside_their_tables(live_server, browser):
    with live_server.app.app_context():
        seed(db.session, instruments=160)
        db.session.commit()
        db.session.remove()
    for sizes in ({"viewport": {"width": 1280, "height": 900}}, PHONE):
        page = browser.new_context(**sizes).new_page()
        errors = []
        page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        sign_in(page, live_server, "staff@demo.hub", "demo-staff-pass")
        page.goto(live_server.url + "/reports/")
        charts = page.locator(".chart canvas")
        expect(charts).to_have_count(4)
        for holder in page.locator("[data-chart-for]").all():
            table_id = holder.get_attribute("data-chart-for")
            expect(page.locator(f"table#{table_id}")).to_be_visible()
        expect(page.get_by_role("table", name="Pupils reached by school year")).to_be_visible()
        assert_accessible(page)
        assert not errors, errors
        page.context.close()


def test_an_admin_saves_the_data_return_and_downloads_it_again(live_server, browser, tmp_path):
    with live_server.app.app_context():
        seed(db.session, instruments=160)
        db.session.commit()
        db.session.remove()
    page = browser.new_context().new_page()
    sign_in(page, live_server, "admin@demo.hub", "demo-admin-pass")
    page.goto(live_server.url + "/reports/")
    page.get_by_role("link", name="Data return").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Data return")
    assert_accessible(page)
    page.get_by_label("Note (who it was given to, and when)").fill("Sent to Arts Council")
    page.get_by_role("button", name="Save as given to the funder").click()
    expect(page.locator(".flash-success")).to_contain_text("Saved: Data return")
    link = page.get_by_role("link", name=".xlsx")
    with page.expect_download() as download:
        link.first.click()
    path = tmp_path / "saved.xlsx"
    download.value.save_as(path)
    assert load_workbook(path).sheetnames[0] == "Definitions"
    page.context.close()
