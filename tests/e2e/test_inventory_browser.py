"""A store staff member's day, in a real browser."""
import re

from playwright.sync_api import expect

from .conftest import sign_in


def test_staff_adds_an_instrument_records_a_check_and_sees_the_history(live_server, factory_for_server, page):
    staff = factory_for_server.user("staff", name="Sam Storekeeper")
    factory_for_server.instrument_type("Violin", sizes=("1/4", "1/2", "3/4"))
    factory_for_server.instrument_type("Flute", family="woodwind", sizes=())
    sign_in(page, live_server, staff.email)
    expect(page.get_by_role("heading", name="Instrument store")).to_be_visible()

    page.get_by_role("link", name="Add an instrument").first.click()
    page.get_by_label("Instrument type").select_option(label="Violin")
    # Only the violin's sizes are offered once the type is chosen, after a "Choose a size".
    expect(page.locator("#size option")).to_have_text(["Choose a size", "1/4", "1/2", "3/4"])
    page.get_by_label("Size", exact=True).select_option("1/2")
    page.get_by_label("Make").fill("Stentor")
    page.get_by_label("Serial number").fill("D778899")
    page.get_by_label("Location").fill("Store / Shelf B3")
    page.get_by_label("2 Good").check()
    page.get_by_label("Purchase cost (£)").fill("129.00")
    page.get_by_role("button", name="Save instrument").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("MIX-000001")
    expect(page.get_by_text("Added MIX-000001.")).to_be_visible()

    check = page.get_by_role("region", name="Record a condition check")
    check.get_by_label("4 Poor").check()
    check.get_by_label("Note").fill("Seam opening on the lower bout")
    check.get_by_role("button", name="Record condition").click()

    expect(page.get_by_text("Condition recorded for MIX-000001.")).to_be_visible()
    history = page.get_by_role("region", name="Condition history")
    expect(history.get_by_role("row").nth(1)).to_contain_text("Seam opening on the lower bout")
    expect(history.get_by_role("row").nth(1)).to_contain_text("4 Poor")
    expect(history.get_by_role("row").nth(1)).to_contain_text("Sam Storekeeper")
    expect(page.get_by_role("region", name="Audit trail")).to_contain_text("Condition 4 (Poor), inspection")

    # And it is found again from the list by its serial number.
    page.get_by_role("link", name="Instruments", exact=True).click()
    page.get_by_role("searchbox", name="Search").fill("d778899")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("link", name="MIX-000001")).to_be_visible()


def test_bad_input_is_explained_next_to_the_field(live_server, factory_for_server, page):
    staff = factory_for_server.user("staff")
    factory_for_server.instrument_type("Violin", sizes=("1/2",))
    sign_in(page, live_server, staff.email)
    page.goto(live_server.url + "/instruments/new")
    page.get_by_label("Instrument type").select_option(label="Violin")
    page.get_by_label("2 Good").check()
    page.get_by_label("Purchase cost (£)").fill("-40")
    page.get_by_role("button", name="Save instrument").click()
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    expect(page.locator("#purchase_cost-error")).to_have_text(re.compile("Cannot be negative"))
    expect(page.get_by_label("Purchase cost (£)")).to_have_attribute("aria-invalid", "true")


def test_a_school_user_is_shown_a_clear_403_for_staff_pages(live_server, factory_for_server, page):
    school = factory_for_server.school("Riverside Primary")
    lead = factory_for_server.user("school", school=school)
    sign_in(page, live_server, lead.email)
    expect(page.get_by_text("Riverside Primary").first).to_be_visible()
    response = page.goto(live_server.url + "/instruments")
    assert response.status == 403
    expect(page.get_by_role("heading", name="You do not have access to this page")).to_be_visible()


def test_the_instrument_list_works_on_a_phone(live_server, factory_for_server, phone):
    staff = factory_for_server.user("staff")
    for _ in range(3):
        factory_for_server.instrument()
    sign_in(phone, live_server, staff.email)
    phone.goto(live_server.url + "/instruments")
    expect(phone.get_by_role("link", name="MIX-000003")).to_be_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"page is {width}px wide on a 375px phone"
