"""Billing rules in a real browser: staff split a term's invoice into monthly instalments, the parent
sees the due dates and the deposit held, and after the return staff refund the deposit (on a phone)."""
from datetime import timedelta
from decimal import Decimal

from playwright.sync_api import expect

from loanservice.loans import lending, pricing
from loanservice.loans.models import Loan
from loanservice.timeutil import today

from ..conftest import in_app
from .conftest import PHONE, assert_accessible, sign_in


def test_instalments_and_a_deposit_from_invoice_to_refund(live_server, factory_for_server, browser):
    factory = factory_for_server
    start = today() - timedelta(days=20)
    factory.term("Spring 2027", start, start + timedelta(days=80))
    parent = factory.parent(email="robin@example.org", name="Robin Parent")
    child = factory.child(parent, "Alex")
    loan_id = factory.loan(factory.instrument(asset_tag="VLN-001"), child, due_on=start + timedelta(days=80),
                 charges=pricing.Charges(fee_per_term=Decimal("36.00"), deposit=Decimal("25.00")))
    staff = factory.user("staff", email="store@example.org")

    desk = browser.new_context().new_page()
    sign_in(desk, live_server, staff.email)
    desk.get_by_role("link", name="Money").click()
    desk.get_by_role("link", name="Run invoices for a term").click()
    desk.get_by_label("Term to invoice").select_option(label="Spring 2027")
    desk.get_by_role("button", name="Preview").click()
    desk.get_by_role("button", name="Issue 1 invoice for Spring 2027").click()
    desk.goto(f"{live_server.url}/money/accounts")
    desk.get_by_role("link", name="A00001").click()
    desk.get_by_role("region", name="Open invoices").get_by_role("link", name="INV-000001", exact=True).click()
    expect(desk.get_by_role("main")).to_contain_text("Refundable deposit: ")
    desk.get_by_role("link", name="Pay by instalments").click()
    expect(desk.get_by_role("region", name="Instalments")).to_contain_text("£20.33")
    assert_accessible(desk)
    desk.get_by_label("The payer has agreed to pay this invoice by these instalments").check()
    desk.get_by_role("button", name="Pay by instalments").click()
    expect(desk.locator(".flash-success")).to_contain_text("INV-000001 is paid in 3 instalments")
    expect(desk.get_by_role("region", name="Monthly instalments")).to_contain_text("£20.34")
    desk.context.close()

    page = browser.new_context(**PHONE).new_page()
    sign_in(page, live_server, "robin@example.org")
    money = page.get_by_role("region", name="Invoices and payments")
    expect(money).to_contain_text("By monthly instalments:")
    expect(money).to_contain_text("The hub holds £25.00 of refundable deposits for you")
    assert_accessible(page)
    page.context.close()

    with in_app(live_server.app) as session:  # the violin comes back
        lending.check_in(session, None, session.get(Loan, loan_id), grade=4)
        session.commit()
    desk = browser.new_context(**PHONE).new_page()
    sign_in(desk, live_server, staff.email)
    desk.goto(f"{live_server.url}/loans/{loan_id}")
    desk.get_by_role("link", name="Refund or keep the deposit").click()
    desk.get_by_label("Refund it (the instrument came back in good order)").check()
    desk.get_by_label("Pay the refund back").select_option(label="Bank transfer")
    assert_accessible(desk)
    desk.get_by_role("button", name="Save").click()
    expect(desk.locator(".flash-success")).to_contain_text("The deposit of £25.00 for VLN-001 is refunded")
    expect(desk.get_by_role("region", name="Deposits held: £0.00")).to_contain_text("Refunded on")
    desk.context.close()
