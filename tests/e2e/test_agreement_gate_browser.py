"""With REQUIRE_SIGNED_AGREEMENT on: staff lend, the parent signs on their phone, staff issue; or cancel."""
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from loanservice.documents.services import save_hire_conditions
from loanservice.timeutil import today

from ..conftest import in_app
from .conftest import assert_accessible, sign_in


@pytest.fixture
def gated_server(live_server):
    live_server.app.config["REQUIRE_SIGNED_AGREEMENT"] = True
    with in_app(live_server.app) as session:
        save_hire_conditions(session, None, "Look after the instrument and keep it in its case.\n\n"
                             "Loss or theft: you pay the replacement cost.")
        session.commit()
    return live_server


def no_sideways_scroll(page):
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px on a phone"


def lend(page, server, tag: str, borrower: str):
    page.goto(server.url + f"/loans/new?tag={tag}")
    expect(page.get_by_text("This hub needs a signed agreement first")).to_be_visible()
    # Found by name, as with thousands of pupils: "Find", then choose among the matches.
    page.get_by_label("Find the borrower").fill(borrower.split(": ", 1)[1])
    page.get_by_role("button", name="Find").click()
    page.get_by_role("radio", name=borrower).check()
    page.get_by_label("Due date").fill((today() + timedelta(days=60)).isoformat())
    page.get_by_role("radio", name="2 Good").check()
    page.get_by_role("button", name="Lend").click()


def test_staff_lend_the_parent_signs_on_a_phone_and_staff_issue(gated_server, factory_for_server, page, phone):
    factory, server = factory_for_server, gated_server
    parent = factory.parent(name="Robin Parent", email="robin@example.org")
    child = factory.child(parent, "Alex")
    violin = factory.instrument_type("Violin", sizes=("1/2",))
    instrument = factory.instrument(violin, size="1/2", asset_tag="VLN-42")
    staff = factory.user("staff", name="Sam Storekeeper")

    sign_in(page, server, staff.email)
    lend(page, server, "VLN-42", f"Pupil: {child.name}")
    expect(page.get_by_text("VLN-42 is held for Alex until the loan agreement is signed")).to_be_visible()
    pending = page.get_by_role("region", name="Awaiting signed agreement")
    expect(pending).to_contain_text("The agreement is not signed yet")
    assert_accessible(page)

    # Too early: the store is told why, and nothing changes.
    pending.get_by_role("button", name="Issue instrument").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot be issued until the agreement is signed")
    assert_accessible(page)
    page.goto(server.url + "/instruments/VLN-42")
    expect(page.get_by_text("Awaiting signed agreement: held for Alex")).to_be_visible()
    assert_accessible(page)

    # The parent signs on their phone.
    sign_in(phone, server, parent.email)
    expect(phone.get_by_text("Waiting for your signature")).to_be_visible()
    no_sideways_scroll(phone)
    assert_accessible(phone)
    phone.get_by_role("link", name=re.compile("Read and sign the loan agreement")).click()
    expect(phone.get_by_text("The instrument is held for you")).to_be_visible()
    no_sideways_scroll(phone)
    assert_accessible(phone)
    phone.get_by_label("Your full name").fill("Robin Parent")
    phone.get_by_label(re.compile("I have read the loan agreement")).check()
    phone.get_by_role("button", name="Sign the agreement").click()
    expect(phone.get_by_text("Thank you: the agreement is signed.")).to_be_visible()
    phone.goto(server.url + "/")
    expect(phone.get_by_text("Signed: ready to hand over")).to_be_visible()

    # The store issues it.
    page.goto(server.url + "/instruments/VLN-42")
    page.get_by_role("link", name="Issue or cancel the loan").click()
    expect(page.get_by_text("The agreement was signed by Robin Parent")).to_be_visible()
    page.get_by_role("button", name="Issue instrument").click()
    expect(page.get_by_text("VLN-42 issued to Alex: on loan until")).to_be_visible()
    expect(page.get_by_role("link", name="Check in")).to_be_visible()
    with in_app(server.app) as session:
        from loanservice.inventory.models import Instrument

        assert session.get(Instrument, instrument.id).status == "on_loan"


def test_staff_cancel_a_pending_loan_after_confirming_on_a_phone(gated_server, factory_for_server, phone):
    factory, server = factory_for_server, gated_server
    family = factory.family("Jo Carer")
    violin = factory.instrument_type("Violin", sizes=("1/2",))
    factory.instrument(violin, size="1/2", asset_tag="VLN-43")
    staff = factory.user("staff")
    sign_in(phone, server, staff.email)
    lend(phone, server, "VLN-43", f"Family: {family.name}")
    expect(phone.get_by_role("status")).to_contain_text("VLN-43 is held for Jo Carer until the loan agreement")
    no_sideways_scroll(phone)
    assert_accessible(phone)
    # The dashboard leads to the list of what is waiting.
    phone.goto(server.url + "/dashboard")
    phone.get_by_role("link", name="1 loan awaiting a signed agreement").click()
    expect(phone.get_by_role("row").filter(has_text="VLN-43")).to_contain_text("Not signed yet")
    no_sideways_scroll(phone)
    assert_accessible(phone)
    phone.get_by_role("link", name="Loan VLN-43").click()
    phone.get_by_role("link", name="Cancel this loan…").click()
    expect(phone.get_by_text("This cannot be undone.")).to_be_visible()
    no_sideways_scroll(phone)
    assert_accessible(phone)
    phone.get_by_label("Why (optional)").fill("They chose a cello instead")
    phone.get_by_role("button", name="Cancel the loan").click()
    expect(phone.get_by_text("The loan is cancelled and VLN-43 is released.")).to_be_visible()
    expect(phone.get_by_text("Cancelled before issue").first).to_be_visible()
    phone.goto(server.url + "/instruments/VLN-43")
    expect(phone.get_by_role("link", name="Lend")).to_be_visible()
