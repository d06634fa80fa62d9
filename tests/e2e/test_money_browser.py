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


def test_staff_import_a_bank_statement_and_the_parent_owes_nothing(live_server, factory_for_server, browser,
                                                                    tmp_path):
    from ..conftest import in_app

    factory = factory_for_server
    start = today() - timedelta(days=20)
    term = factory.term("Spring 2027", start, start + timedelta(days=80))
    parent = factory.parent(email="sam@example.org", name="Sam Okafor")
    child = factory.child(parent, "Ife")
    factory.loan(factory.instrument(asset_tag="CLA-001"), child, due_on=start + timedelta(days=80),
                 charges=pricing.Charges(fee_per_term=Decimal("36.00")))
    with in_app(live_server.app) as session:
        from loanservice.loans.models import AcademicTerm
        from loanservice.money import services as money

        money.run_invoices(session, None, session.get(AcademicTerm, term.id), live_server.app.config)
        session.commit()
    staff = factory.user("staff", email="desk@example.org")
    paid_on = (today() - timedelta(days=1)).strftime("%d/%m/%Y")
    statement = tmp_path / "statement.csv"  # as the demo's: the invoice quoted one way, the account another
    statement.write_text("Date,Description,Paid in\n"
                         f"{paid_on},INV-000001 OKAFOR,20.00\n"
                         f"{paid_on},FP OKAFOR A00001,16.00\n"
                         f"{paid_on},FP OKAFOR A00001,16.00\n"  # the bank sent it twice
                         f"{paid_on},J SMITH MUSIC HIRE,30.00\n")

    for size in ({"width": 375, "height": 800}, {"width": 1280, "height": 800}):
        desk = browser.new_context(viewport=size).new_page()
        sign_in(desk, live_server, staff.email)
        desk.goto(live_server.url + "/money/accounts")
        desk.get_by_role("link", name="Import a bank statement").click()
        desk.get_by_label("Bank statement (CSV)").set_input_files(str(statement))
        desk.get_by_role("button", name="Check the statement").click()
        main = desk.get_by_role("main")
        expect(main).to_contain_text("Ready to import 2 payments, £36.00")
        expect(main).to_contain_text("Not matched: 1 line (not imported)")
        expect(main).to_contain_text("Duplicates: 1 line (not imported)")
        expect(desk.get_by_label("It is a separate payment: import line 4")).not_to_be_checked()
        matched = desk.get_by_role("table", name="Matched")
        # On a phone each line is a card whose values carry their column's name; on a desk, a table row.
        card = matched.locator("td[data-label=Amount]").first
        assert card.bounding_box()["width"] > (300 if size["width"] == 375 else 0)
        assert desk.evaluate("document.documentElement.scrollWidth") <= size["width"]
        desk.screenshot(path=str(tmp_path / f"bank-preview-{size['width']}.png"), full_page=True)
        assert_accessible(desk)
        if size["width"] == 375:
            desk.context.close()
            continue
        desk.get_by_role("button", name="Import 2 payments and the ticked lines").click()
        expect(desk.locator(".flash-success")).to_contain_text("Imported 2 payments, £36.00.")
        desk.get_by_label("Bank statement (CSV)").set_input_files(str(statement))  # the same file again
        desk.get_by_role("button", name="Check the statement").click()
        expect(desk.get_by_role("alert")).to_contain_text("This statement was imported on")
        desk.context.close()

    page = browser.new_context().new_page()
    sign_in(page, live_server, "sam@example.org")
    money_region = page.get_by_role("region", name="Invoices and payments")
    expect(money_region).to_contain_text("Nothing owed on account A00001")
    page.context.close()
