"""Money in a real browser: staff run the term's invoices, then a parent signs in and downloads theirs."""
from datetime import timedelta
from decimal import Decimal

from playwright.sync_api import expect

from loanservice.loans import pricing
from loanservice.timeutil import today

from ..conftest import pdf_text
from .conftest import assert_accessible, sign_in


def test_staff_run_the_invoices_and_a_parent_downloads_theirs(live_server, factory_for_server, browser):
    factory = factory_for_server
    start = today() - timedelta(days=20)
    factory.term("Spring 2027", start, start + timedelta(days=80))
    parent = factory.parent(email="robin@example.org", name="Robin Parent")
    child = factory.child(parent, "Alex", remission_category="free_school_meals",
                          remission_verified_on=today() - timedelta(days=100))
    factory.loan(factory.instrument(asset_tag="VLN-001"), child, due_on=start + timedelta(days=80),
                 charges=pricing.Charges(fee_per_term=Decimal("36.00"), charge_per_term=Decimal("12.00")))
    staff = factory.user("staff", email="store@example.org")

    desk = browser.new_context().new_page()
    sign_in(desk, live_server, staff.email)
    desk.get_by_role("link", name="Money").click()
    desk.get_by_role("link", name="Run invoices for a term").click()
    desk.get_by_label("Term to invoice").select_option(label="Spring 2027")
    desk.get_by_role("button", name="Preview").click()
    expect(desk.get_by_role("main")).to_contain_text("Remission given")
    assert_accessible(desk)
    desk.get_by_role("button", name="Issue 1 invoice for Spring 2027").click()
    expect(desk.locator(".flash-success")).to_contain_text("Issued 1 invoice for Spring 2027 (INV-000001")
    assert_accessible(desk)
    desk.context.close()

    page = browser.new_context().new_page()
    sign_in(page, live_server, "robin@example.org")
    money = page.get_by_role("region", name="Invoices and payments")
    expect(money).to_contain_text("£12.00 owed on account A00001")
    expect(money).to_contain_text("Quote your reference A00001")
    assert_accessible(page)
    link = money.get_by_role("link", name="INV-000001 (PDF)")
    with page.expect_response(lambda r: r.url.endswith(".pdf")) as answer:
        link.click()
    response = answer.value
    assert response.status == 200 and response.header_value("content-type") == "application/pdf"
    words = pdf_text(page.context.request.get(response.url).body())
    assert "Invoice INV-000001" in words and "Free school meals: less £24.00" in words and "Total due £12.00" in words
    page.context.close()
