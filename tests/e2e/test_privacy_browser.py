"""Children's data in a real browser: an admin holds a family from the coming anonymisation list; a parent,
on a phone, downloads everything held about their family."""
import io
import json
import zipfile
from datetime import date, datetime

from playwright.sync_api import expect
from sqlalchemy import update

from loanservice.accounts.models import User
from loanservice.borrowers.models import Family
from loanservice.loans import lending
from loanservice.loans.models import Loan

from ..conftest import in_app
from .conftest import PHONE, assert_accessible, sign_in


def _past_family(app, factory, name, email, child):
    """A parent whose child's loan ended in 2019: due for anonymisation now."""
    parent = factory.parent(email=email, name=name)
    pupil = factory.child(parent, child)
    loan_id = factory.loan(factory.instrument(), pupil, started_on=date(2018, 9, 10), due_on=date(2018, 12, 12))
    with in_app(app) as session:
        lending.check_in(session, None, session.get(Loan, loan_id), grade=2, returned_on=date(2019, 2, 1))
        session.execute(update(Family).where(Family.id == parent.family_id).values(created_at=datetime(2018, 9, 1)))
        session.execute(update(User).where(User.id == parent.id).values(last_login_at=datetime(2019, 3, 1)))
        session.commit()
    return parent


def test_an_admin_sees_the_coming_list_and_holds_a_family(live_server, factory_for_server, page):
    factory = factory_for_server
    _past_family(live_server.app, factory, "Grace Hopper", "grace@example.org", "Ada Hopper")
    _past_family(live_server.app, factory, "Ethel Turing", "ethel@example.org", "Alan Turing")
    factory.user("admin", email="boss@example.org")

    sign_in(page, live_server, "boss@example.org")
    page.get_by_role("link", name="Privacy", exact=True).click()
    coming = page.get_by_role("region", name="Families due for anonymisation")
    expect(coming).to_contain_text("Grace Hopper")
    expect(coming).to_contain_text("Ethel Turing")
    expect(coming).to_contain_text("6 years since the last loan ended")
    assert_accessible(page)

    page.get_by_role("link", name="Hold Grace Hopper").click()
    page.get_by_role("button", name="Hold this family").click()
    expect(page.locator("#reason-error")).to_have_text("Give the reason for the hold.")
    page.get_by_label("Reason for the hold").fill("Insurance claim for a broken cello")
    page.get_by_role("button", name="Hold this family").click()

    expect(page.get_by_text("Grace Hopper is on hold")).to_be_visible()
    coming = page.get_by_role("region", name="Families due for anonymisation")
    expect(coming.get_by_role("row", name="Grace Hopper")).to_contain_text("Kept: it is on hold")
    expect(coming.get_by_role("row", name="Ethel Turing")).to_contain_text("Will be anonymised")
    held = page.get_by_role("region", name="Families on hold")
    expect(held.get_by_role("row", name="Grace Hopper")).to_contain_text("Insurance claim for a broken cello")


def test_a_parent_downloads_their_familys_data_on_a_phone(live_server, factory_for_server, browser):
    factory = factory_for_server
    _past_family(live_server.app, factory, "Grace Hopper", "grace@example.org", "Ada Hopper")
    context = browser.new_context(accept_downloads=True, **PHONE)
    page = context.new_page()
    try:
        sign_in(page, live_server, "grace@example.org")
        link = page.get_by_role("link", name="Download our data (ZIP)")
        expect(link).to_be_visible()
        with page.expect_download() as download_info:
            link.click()
        download = download_info.value
        assert download.suggested_filename.startswith("family-") and download.suggested_filename.endswith(".zip")
        archive = zipfile.ZipFile(io.BytesIO(open(download.path(), "rb").read()))
        data = json.loads(archive.read("data.json"))
        assert data["family"]["name"] == "Grace Hopper"
        assert data["children"][0]["name"] == "Ada Hopper"
        assert "Ada Hopper" in archive.read("summary.html").decode()
    finally:
        context.close()
