"""Servicing a returned set, and a stocktake of a shelf, in a real browser (typed scans)."""
from datetime import timedelta

from playwright.sync_api import expect

from loanservice.timeutil import today

from ..conftest import in_app, tags_of
from .conftest import sign_in


def test_a_returned_set_goes_to_servicing_and_comes_back(live_server, factory_for_server, page):
    from loanservice.sets import services

    school = factory_for_server.school("Riverside Primary")
    kit = factory_for_server.classroom_set(size=3, name="Violin set A")
    set_loan_id = factory_for_server.check_out_set(kit, school)
    with in_app(live_server.app) as session:  # the set came back in July
        set_loan = services.get_set_loan(session, set_loan_id)
        for tag in tags_of(live_server.app, kit):
            services.check_in_set_item(session, None, set_loan, tag, grade=2)
        session.commit()
    staff = factory_for_server.user("staff")

    sign_in(page, live_server, staff.email)
    page.get_by_role("link", name="Sets", exact=True).click()
    page.get_by_role("link", name="Violin set A").click()
    page.get_by_role("link", name="Servicing", exact=True).last.click()
    expect(page.locator("#set-servicing-state")).to_contain_text("In the store: 3 instruments")
    page.get_by_label("Serviced by").fill("Hubbard Strings (luthier)")
    page.get_by_label("Expected back").fill((today() + timedelta(days=10)).isoformat())
    page.get_by_role("button", name="Send the set to servicing").click()
    expect(page.locator("#set-servicing-state")).to_contain_text("3 instruments in servicing")

    # In servicing, it cannot be lent: the set's page says why.
    page.get_by_role("link", name="‹ Violin set A").click()
    expect(page.get_by_text("is in servicing").first).to_be_visible()

    page.goto(f"{live_server.url}/servicing")
    expect(page.get_by_role("region", name="In servicing (3)")).to_contain_text("Hubbard Strings (luthier)")

    page.goto(f"{live_server.url}/servicing/sets/{kit.id}")
    page.get_by_label("Work done").fill("Restrung, bridges set")
    page.get_by_label("Cost per instrument (£)").fill("6.50")
    page.get_by_role("button", name="Serviced: back in use").click()
    expect(page.locator(".flash").first).to_contain_text("serviced and back in use")
    expect(page.locator("#set-servicing-state")).to_contain_text("In the store: 3 instruments ready to lend")

    first = tags_of(live_server.app, kit)[0]
    page.goto(f"{live_server.url}/instruments/{first}")
    history = page.get_by_role("region", name="Repairs and servicing")
    expect(history).to_contain_text("Servicing")
    expect(history).to_contain_text("Restrung, bridges set")


def test_a_shelf_stocktake_finds_one_missing_and_one_unexpected(live_server, factory_for_server, page):
    violin = factory_for_server.instrument_type("Violin", sizes=("1/2",))
    for n in (1, 2, 3):
        factory_for_server.instrument(violin, asset_tag=f"VLN-00{n}", location="Store / Shelf B2")
    factory_for_server.instrument(violin, asset_tag="VLN-004", location="Store / Shelf C1")
    staff = factory_for_server.user("staff")

    sign_in(page, live_server, staff.email)
    page.get_by_role("link", name="Stocktake", exact=True).click()
    page.get_by_label("A shelf or location").check()
    page.get_by_label("Shelf or location", exact=True).select_option("Store / Shelf B2")
    page.get_by_role("button", name="Start the stocktake").click()
    expect(page.get_by_role("heading", name="Stocktake: Store / Shelf B2")).to_be_visible()

    for tag in ("vln-001", "VLN-002", "VLN-004", "NOPE-9"):  # typed fast, as a handheld scanner would
        box = page.get_by_label("Scan an instrument")
        box.fill(tag)
        box.press("Enter")
    expect(page.locator("#scan-queue-problems")).to_contain_text("Unknown tag: no instrument has asset tag NOPE-9")
    expect(page.locator("#progress")).to_contain_text("2 of 3 expected found, 1 other scanned")
    expect(page.get_by_role("region", name="Unexpected (1)")).to_contain_text("VLN-004")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Finish the count").click()
    expect(page.get_by_role("region", name="Missing (1)")).to_contain_text("VLN-003")
    expect(page.get_by_role("region", name="Found (2)")).to_contain_text("VLN-002")

    unexpected = page.get_by_role("region", name="Unexpected (1)")
    expect(unexpected).to_contain_text("Store / Shelf C1")
    unexpected.get_by_role("button", name="Move it here").click()
    expect(page.get_by_role("region", name="Unexpected (1)")).to_contain_text("Moved here")

    page.get_by_role("link", name="Mark missing: all 1…").click()
    expect(page.get_by_role("heading", name="Mark missing: 1 instrument?")).to_be_visible()
    page.get_by_role("button", name="Mark missing: 1 instrument").click()
    expect(page.get_by_role("region", name="Missing (1)")).to_contain_text("Marked missing")

    page.goto(f"{live_server.url}/instruments/VLN-003")
    expect(page.get_by_text("Missing").first).to_be_visible()
    page.goto(f"{live_server.url}/instruments/VLN-004")
    expect(page.get_by_text("Store / Shelf B2").first).to_be_visible()
