"""In the browser: a half-term added and removed on the calendar, and the notices page by keyboard."""
from datetime import timedelta

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from loanservice.documents import notices
from loanservice.timeutil import today

from ..conftest import in_app
from .conftest import sign_in


def serious_violations(page) -> list[str]:
    results = Axe().run(page)
    return [f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']]}"
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def test_an_admin_adds_a_half_term_and_the_loan_is_less_overdue_then_removes_it(live_server, factory_for_server,
                                                                                page):
    factory = factory_for_server
    factory.term("Autumn", today() - timedelta(days=60), today() + timedelta(days=30))
    factory.loan(factory.instrument(asset_tag="HALF-1"), factory.pupil(name="Ada"),
         started_on=today() - timedelta(days=50), due_on=today() - timedelta(days=14))
    sign_in(page, live_server, factory.user("admin").email)
    page.goto(live_server.url + "/terms")
    page.get_by_label("Term", exact=True).select_option(label="Autumn")
    page.locator("#closure-name").fill("Half-term")
    page.get_by_label("First day closed").fill((today() - timedelta(days=10)).isoformat())
    page.get_by_label("Last day closed").fill((today() - timedelta(days=4)).isoformat())
    page.get_by_role("button", name="Add closure").click()
    expect(page.get_by_text("Added Half-term to Autumn")).to_be_visible()
    assert serious_violations(page) == []
    page.goto(live_server.url + "/loans/overdue")
    expect(page.get_by_role("row", name="HALF-1")).to_contain_text("7 days")
    page.goto(live_server.url + "/terms")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Remove Half-term").click()
    expect(page.get_by_text("Removed Half-term from Autumn.")).to_be_visible()
    assert asked and asked[0].startswith("Remove Half-term from Autumn?")
    page.goto(live_server.url + "/loans/overdue")
    expect(page.get_by_role("row", name="HALF-1")).to_contain_text("14 days")


def test_staff_reach_the_notices_table_by_keyboard_and_choose_the_day(live_server, factory_for_server, phone):
    factory = factory_for_server
    factory.loan(factory.instrument(asset_tag="LATE-1"), factory.pupil(name="Ben"),
         started_on=today() - timedelta(days=50), due_on=today() - timedelta(days=20))
    with in_app(live_server.app) as session:
        notices.add_usual_stages(session, None)
        session.commit()
    sign_in(phone, live_server, factory.user("staff").email)
    phone.goto(live_server.url + "/notices")
    assert serious_violations(phone) == []
    region = phone.get_by_role("region", name=f"Notices due as of {today():%-d %b %Y}")
    for _ in range(40):
        phone.keyboard.press("Tab")
        if region.evaluate("element => element === document.activeElement"):
            break
    expect(region).to_be_focused()
    phone.get_by_label("Show the notices due as of").fill((today() - timedelta(days=10)).isoformat())
    phone.get_by_role("button", name="Show").click()
    expect(phone.get_by_role("heading", name=f"Due as of {today() - timedelta(days=10):%-d %b %Y}: 1")).to_be_visible()
    expect(phone.get_by_role("link", name="Read the reminder (PDF)")).to_be_visible()
