"""The money pages: staff run invoices, record payments and corrections, read statements and aged debt;
families and schools see and download their own invoices, and nobody else's."""
import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from lxml import html as lxml_html
from sqlalchemy import func, select

from loanservice.borrowers.models import Family
from loanservice.loans import pricing
from loanservice.loans.models import AcademicTerm
from loanservice.money import services as money
from loanservice.money.models import Allocation, LedgerEntry, PayerAccount
from loanservice.timeutil import today

from .conftest import in_app, login, pdf_text
from .pages import submit, submit_on

FEE = pricing.Charges(fee_per_term=Decimal("36.00"))


@pytest.fixture
def hub(app, factory):
    """A term; a family with a parent's sign-in and two children on loan (one at half price for pupil
    premium); another family with its own sign-in; a school with an instrument of its own."""
    start = today() - timedelta(days=20)
    term = factory.term("Spring 2027", start, start + timedelta(days=80))
    parent = factory.user("parent", email="ada@example.org")
    family = factory.family(name="Ada Lovelace", email="ada@example.org", user_id=parent.id,
                            address="12 Analytical Row\nExampleton EX2 3AB")
    half = factory.pupil(name="Byron Lovelace", family=family, remission_category="pupil_premium",
                         remission_verified_on=date(2026, 9, 1))
    full = factory.pupil(name="Anne Lovelace", family=family)
    other_parent = factory.user("parent", email="charles@example.org")
    other = factory.family(name="Charles Babbage", email="charles@example.org", user_id=other_parent.id)
    school = factory.school("Hillside Primary", contact_email="music@hillside.example")
    lead = factory.user("school", school=school)
    due = term.ends_on
    violin = factory.instrument_type("Violin")
    factory.loan(factory.instrument(violin), full, due_on=due, charges=FEE)
    factory.loan(factory.instrument(violin), half, due_on=due,
                 charges=pricing.Charges(fee_per_term=Decimal("36.00"), charge_per_term=Decimal("18.00")))
    factory.loan(factory.instrument(violin), factory.pupil(name="Ada Babbage", family=other), due_on=due, charges=FEE)
    factory.loan(factory.instrument(violin), school, due_on=due, charges=pricing.Charges(fee_per_term=Decimal("50.00")))
    return {"term": term, "parent": parent, "family": family, "other_parent": other_parent, "other": other,
            "school": school, "lead": lead}


def run(app):
    """The term's invoices, issued as the CLI would."""
    with in_app(app) as session:
        term = session.scalar(select(AcademicTerm).where(AcademicTerm.name == "Spring 2027"))
        money.run_invoices(session, None, term, app.config)
        session.commit()


def account_of(app, holder):
    with in_app(app) as session:
        account = money.account_of(session, session.get(type(holder), holder.id))
        session.expunge(account)
        return account


def first_invoice(app, holder) -> LedgerEntry:
    with in_app(app) as session:
        account = money.account_of(session, session.get(type(holder), holder.id))
        invoice = session.scalars(select(LedgerEntry).where(LedgerEntry.account_id == account.id,
                                                            LedgerEntry.kind == "invoice")).first()
        session.expunge(invoice)
        return invoice


def balance(app, holder) -> Decimal:
    with in_app(app) as session:
        return money.balance(session, money.account_of(session, session.get(type(holder), holder.id)))


def entries(app) -> int:
    with in_app(app) as session:
        return session.scalar(select(func.count()).select_from(LedgerEntry))


def text(response) -> str:
    """The words of a page's <main>, as a person reads them (cells and terms apart)."""
    main = lxml_html.fromstring(response.get_data(as_text=True)).xpath("//main")[0]
    return " ".join(" ".join(main.itertext()).split())


@pytest.fixture
def admin_client(client, factory):
    login(client, factory.user("admin"))
    return client


# ---------------------------------------------------------------- the invoice run


def test_staff_preview_the_run_then_issue_it(app, staff_client, hub):
    preview = submit(staff_client, "/money/invoice-run", {"term": hub["term"].id}, form="choose-term")
    assert preview.status_code == 200
    page = text(preview)
    assert "Invoices 3" in page and "Total £140.00" in page and "Remission given £18.00" in page
    assert entries(app) == 0  # the preview wrote nothing
    issued = submit_on(staff_client, preview, preview.request.full_path, form="issue-invoices",
                       follow_redirects=True)
    assert "Issued 3 invoices for Spring 2027 (INV-000001 to INV-000003), £140.00 in all; remission given £18.00." \
        in text(issued)
    assert entries(app) == 3


def test_a_second_run_says_there_is_nothing_new_and_a_stale_confirmation_is_refused(app, staff_client, hub):
    preview = submit(staff_client, "/money/invoice-run", {"term": hub["term"].id}, form="choose-term")
    run(app)
    refused = submit_on(staff_client, preview, preview.request.full_path, form="issue-invoices")
    assert refused.status_code == 409
    assert "Nothing new to invoice for Spring 2027" in text(refused)
    assert entries(app) == 3


def test_a_run_that_changed_since_the_preview_is_refused_with_the_new_figures(app, factory, staff_client, hub):
    preview = submit(staff_client, "/money/invoice-run", {"term": hub["term"].id}, form="choose-term")
    factory.loan(factory.instrument(), factory.pupil(family=hub["other"]), due_on=hub["term"].ends_on, charges=FEE)
    refused = submit_on(staff_client, preview, preview.request.full_path, form="issue-invoices")
    assert refused.status_code == 409
    assert "The figures changed since the preview: 3 invoices, £176.00 in all." in text(refused)
    assert entries(app) == 0


def test_a_term_not_in_the_calendar_is_refused(app, staff_client, hub):
    response = staff_client.get("/money/invoice-run?term=999")
    assert response.status_code == 422
    assert "Not a valid choice" in text(response)


# ---------------------------------------------------------------- accounts


@pytest.mark.parametrize("query", ["lovelace", "A00001", "ADA@example"])
def test_accounts_are_found_by_name_reference_or_email_with_their_balance(app, staff_client, hub, query):
    run(app)
    page = text(staff_client.get(f"/money/accounts?q={query}"))
    assert "Ada Lovelace" in page and "£54.00 owed" in page
    assert "Charles Babbage" not in page


def test_the_accounts_list_pages(app, staff_client, hub):
    run(app)
    app.config["PAGE_SIZE"] = 2
    first, second = text(staff_client.get("/money/accounts")), text(staff_client.get("/money/accounts?page=2"))
    assert "A00001" in first and "A00003" not in first
    assert "A00003" in second and "3 accounts · page 2 of 2" in second


def test_the_account_page_shows_the_statement_with_a_running_balance_and_the_aged_bands(app, staff_client, hub):
    run(app)
    account = account_of(app, hub["family"])
    submit(staff_client, f"/money/accounts/{account.id}/payment", {"amount": "20.00", "method": "cash"})
    page = text(staff_client.get(f"/money/accounts/{account.id}"))
    assert "Balance: £34.00 owed" in page
    assert "Invoice INV-000001" in page and "£54.00" in page and "Payment" in page and "£34.00" in page
    assert "Current £34.00" in page and "90+ days £0.00" in page


def test_a_borrowers_page_leads_to_the_account_that_pays_for_them(app, staff_client, hub):
    run(app)
    with in_app(app) as session:
        pupil_id = session.get(Family, hub["family"].id).pupils[0].id
    page = staff_client.get(f"/borrowers/pupil/{pupil_id}").get_data(as_text=True)
    assert '<a href="/money/accounts/1">A00001</a>: £54.00 owed.' in page


def test_an_unknown_account_is_a_404_and_nothing_is_written(app, staff_client, hub):
    run(app)
    assert staff_client.get("/money/accounts/999").status_code == 404
    response = staff_client.post("/money/accounts/999/payment", data={"amount": "10", "method": "cash",
                                                                      "paid_on": today().isoformat()})
    assert response.status_code == 404
    assert entries(app) == 3


def test_parents_and_schools_cannot_open_the_staff_pages(client, hub):
    login(client, hub["parent"])
    assert client.get("/money/accounts").status_code == 403


# ---------------------------------------------------------------- payments


def test_a_payment_of_what_is_owed_settles_the_account(app, staff_client, hub):
    run(app)
    account = account_of(app, hub["family"])
    response = submit(staff_client, f"/money/accounts/{account.id}/payment",
                      {"amount": "54.00", "method": "bank_transfer", "reference": "A00001 LOVELACE"},
                      follow_redirects=True)
    assert "Recorded £54.00 from Ada Lovelace (A00001). Nothing more is owed." in text(response)
    assert balance(app, hub["family"]) == Decimal("0.00")


def test_a_payment_larger_than_the_balance_says_clearly_it_leaves_credit(app, staff_client, hub):
    run(app)
    account = account_of(app, hub["family"])
    response = submit(staff_client, f"/money/accounts/{account.id}/payment", {"amount": "60.00", "method": "cheque"},
                      follow_redirects=True)
    assert "It is more than was owed: the account now holds £6.00 in credit" in text(response)


def test_a_payment_settles_the_invoice_ticked_rather_than_the_oldest(app, factory, staff_client, hub):
    run(app)
    factory.loan(factory.instrument(), factory.pupil(family=hub["family"]), due_on=hub["term"].ends_on, charges=FEE)
    run(app)
    account = account_of(app, hub["family"])
    with in_app(app) as session:
        newer = session.scalar(select(LedgerEntry).where(LedgerEntry.number == "INV-000004"))
        newer_id = newer.id
    submit(staff_client, f"/money/accounts/{account.id}/payment",
           {"amount": "36.00", "method": "card", "invoices": [newer_id]})
    with in_app(app) as session:
        left = [(invoice.number, amount) for invoice, amount in
                money.open_invoices(session, session.get(PayerAccount, account.id))]
    assert left == [("INV-000001", Decimal("54.00"))]


@pytest.mark.parametrize(("amount", "message", "status"), [
    ("0", "The amount must be more than nothing.", 422),
    ("-5", "The amount must be more than nothing.", 422),
    ("ten", "Not a valid decimal value", 422),
])
def test_a_zero_negative_or_unreadable_payment_is_refused_and_nothing_written(app, staff_client, hub, amount,
                                                                              message, status):
    run(app)
    account = account_of(app, hub["family"])
    response = submit(staff_client, f"/money/accounts/{account.id}/payment", {"amount": amount, "method": "cash"})
    assert response.status_code == status
    assert message in text(response)
    assert entries(app) == 3


def test_a_payment_dated_tomorrow_is_refused_beside_the_date(app, staff_client, hub):
    run(app)
    account = account_of(app, hub["family"])
    response = submit(staff_client, f"/money/accounts/{account.id}/payment",
                      {"amount": "5", "method": "cash", "paid_on": (today() + timedelta(days=1)).isoformat()})
    assert response.status_code == 422
    assert 'id="paid_on-error">A payment cannot be dated in the future.' in response.get_data(as_text=True)
    assert entries(app) == 3


# ---------------------------------------------------------------- credit notes, write-offs, refunds


def test_a_credit_note_takes_part_of_an_invoice_back(app, staff_client, hub):
    run(app)
    invoice = first_invoice(app, hub["family"])
    response = submit(staff_client, f"/money/invoices/{invoice.id}/credit",
                      {"amount": "18.00", "reason": "Remission backdated"}, follow_redirects=True)
    assert "Issued credit note CN-000001 for £18.00 against INV-000001." in text(response)
    assert balance(app, hub["family"]) == Decimal("36.00")


def test_a_credit_note_larger_than_the_invoice_is_refused_and_nothing_written(app, staff_client, hub):
    run(app)
    invoice = first_invoice(app, hub["family"])
    response = submit(staff_client, f"/money/invoices/{invoice.id}/credit", {"amount": "54.01", "reason": "Too much"})
    assert response.status_code == 422
    assert "A credit note cannot be larger than what is left of INV-000001 to credit (£54.00)." in text(response)
    assert entries(app) == 3


def test_an_admin_writes_off_what_is_left_of_an_invoice_after_confirming(app, admin_client, hub):
    run(app)
    invoice = first_invoice(app, hub["other"])
    unconfirmed = submit(admin_client, f"/money/invoices/{invoice.id}/write-off", {"reason": "Moved abroad"})
    assert unconfirmed.status_code == 422 and "Tick to confirm the write-off." in text(unconfirmed)
    assert entries(app) == 3
    done = submit(admin_client, f"/money/invoices/{invoice.id}/write-off", {"reason": "Moved abroad", "confirm": "y"},
                  follow_redirects=True)
    assert f"Wrote off £36.00 of {invoice.number}." in text(done)
    assert balance(app, hub["other"]) == Decimal("0.00")


def test_store_staff_cannot_write_off_debt(app, staff_client, hub):
    run(app)
    invoice = first_invoice(app, hub["other"])
    assert staff_client.get(f"/money/invoices/{invoice.id}/write-off").status_code == 403


def test_a_refund_beyond_the_credit_is_refused_and_nothing_written(app, staff_client, hub):
    run(app)
    account = account_of(app, hub["family"])
    submit(staff_client, f"/money/accounts/{account.id}/payment", {"amount": "60.00", "method": "cash"})
    before = entries(app)
    refused = submit(staff_client, f"/money/accounts/{account.id}/refund",
                     {"amount": "6.01", "method": "bank_transfer", "reason": "Overpaid"})
    assert refused.status_code == 422
    assert "A00001 has £6.00 in credit: no more can be refunded." in text(refused)
    assert entries(app) == before
    done = submit(staff_client, f"/money/accounts/{account.id}/refund",
                  {"amount": "6.00", "method": "bank_transfer", "reason": "Overpaid"}, follow_redirects=True)
    assert "Recorded a refund of £6.00 to Ada Lovelace." in text(done)
    assert balance(app, hub["family"]) == Decimal("0.00")


# ---------------------------------------------------------------- who pays


def test_staff_name_a_payer_who_is_not_the_hirer_and_clear_it(app, staff_client, hub):
    run(app)
    account = account_of(app, hub["other"])
    url = f"/money/accounts/{account.id}/payer"
    named = submit(staff_client, url, {"name": "Exampleshire Fostering", "address": "County Hall\nExampleton"},
                   follow_redirects=True)
    assert "Invoices for A00002 go to Exampleshire Fostering." in text(named)
    cleared = submit(staff_client, url, form=f"/money/accounts/{account.id}/payer/clear", follow_redirects=True)
    assert "Invoices for A00002 go to the hirer, Charles Babbage, again." in text(cleared)


def test_a_payer_without_a_way_to_reach_them_is_refused(app, staff_client, hub):
    run(app)
    account = account_of(app, hub["other"])
    response = submit(staff_client, f"/money/accounts/{account.id}/payer", {"name": "Someone"})
    assert response.status_code == 422
    assert "Give the payer's email or postal address" in text(response)


# ---------------------------------------------------------------- the invoice page and aged debt


def test_the_invoice_page_lists_lines_with_the_remission_named_and_what_settled_it(app, staff_client, hub):
    run(app)
    account = account_of(app, hub["family"])
    submit(staff_client, f"/money/accounts/{account.id}/payment", {"amount": "10.00", "method": "cash",
                                                                  "reference": "desk"})
    page = text(staff_client.get(f"/money/invoices/{first_invoice(app, hub['family']).id}"))
    assert "Pupil premium: less £18.00" in page
    assert "for Byron Lovelace, Spring 2027" in page
    assert "Left to pay £44.00" in page
    assert "cash · desk" in page


def test_aged_debt_lists_accounts_by_total_and_exports_what_the_filter_shows(app, staff_client, hub):
    run(app)
    page = text(staff_client.get("/money/aged-debt"))
    assert page.index("Ada Lovelace") < page.index("Hillside Primary") < page.index("Charles Babbage")
    schools = staff_client.get("/money/aged-debt?kind=school")
    assert "Hillside Primary" in text(schools) and "Ada Lovelace" not in text(schools)
    export = staff_client.get("/money/aged-debt.csv?kind=school")
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    assert rows == [["Reference", "Account", "Email", "Current", "30 days", "60 days", "90+ days", "Total"],
                    ["A00003", "Hillside Primary", "music@hillside.example", "50.00", "0.00", "0.00", "0.00",
                     "50.00"]]
    assert "Hillside Primary" not in text(staff_client.get("/money/aged-debt?older_than=30"))


def test_the_aged_debt_export_link_carries_the_filter(app, staff_client, hub):
    run(app)
    assert "/money/aged-debt.csv?kind=family&amp;older_than=60" in \
        staff_client.get("/money/aged-debt?kind=family&older_than=60").get_data(as_text=True)


# ---------------------------------------------------------------- PDFs


def test_the_invoice_pdf_says_who_what_how_much_and_how_to_pay(app, staff_client, hub):
    run(app)
    pdf = staff_client.get(f"/money/invoices/{first_invoice(app, hub['family']).id}.pdf")
    assert pdf.mimetype == "application/pdf"
    words = pdf_text(pdf.data)
    for expected in ("Invoice INV-000001", f"Date {today():%-d %b %Y}", "Account reference A00001",
                     "Ada Lovelace 12 Analytical Row Exampleton EX2 3AB",
                     "for Byron Lovelace, Spring 2027 £36.00 Pupil premium: less £18.00 £18.00",
                     "for Anne Lovelace, Spring 2027 £36.00 None £36.00", "Total due £54.00",
                     "Sort code 00-00-00", "Quote your reference A00001"):
        assert expected in words, expected
    assert "2026" not in words.split("Total due")[0].split("Byron")[1]  # the date verified is evidence: never shown


def test_the_statement_pdf_has_each_entry_with_the_running_balance_and_the_aged_debt(app, staff_client, hub):
    run(app)
    account = account_of(app, hub["family"])
    submit(staff_client, f"/money/accounts/{account.id}/payment", {"amount": "20.00", "method": "cash"})
    words = pdf_text(staff_client.get(f"/money/accounts/{account.id}/statement.pdf").data)
    assert "Statement of account A00001" in words
    assert "Invoice INV-000001" in words and "£54.00 £54.00" in words and "£20.00 £34.00" in words
    assert "Balance owed £34.00" in words and "Quote your reference A00001" in words


def test_the_statement_pdf_shows_what_a_credit_is_against_but_never_staffs_reasons(app, admin_client, hub):
    run(app)
    invoice = first_invoice(app, hub["family"])
    submit(admin_client, f"/money/invoices/{invoice.id}/credit", {"amount": "4.00", "reason": "Goodwill, complained"})
    submit(admin_client, f"/money/invoices/{invoice.id}/write-off", {"reason": "Family in hardship", "confirm": "y"})
    account = account_of(app, hub["family"])
    words = pdf_text(admin_client.get(f"/money/accounts/{account.id}/statement.pdf").data)
    assert "Credit note CN-000001 against INV-000001" in words and "Debt written off against INV-000001" in words
    assert "hardship" not in words and "complained" not in words


# ---------------------------------------------------------------- families and schools


def test_a_parent_sees_their_invoices_balance_and_how_to_pay_at_home(app, client, hub):
    run(app)
    login(client, hub["parent"])
    page = text(client.get("/"))
    assert "£54.00 owed on account A00001" in page
    assert "INV-000001 (PDF)" in page and "Sort code 00-00-00" in page
    assert "Quote your reference A00001" in page
    assert "INV-000002" not in page


def test_a_parent_downloads_their_own_invoice_and_statement(app, client, hub):
    run(app)
    login(client, hub["parent"])
    invoice = first_invoice(app, hub["family"])
    assert "Total due £54.00" in pdf_text(client.get(f"/money/invoices/{invoice.id}.pdf").data)
    account = account_of(app, hub["family"])
    assert "Statement of account A00001" in pdf_text(client.get(f"/money/accounts/{account.id}/statement.pdf").data)


def test_a_parent_cannot_see_another_familys_invoice_or_statement(app, client, hub):
    run(app)
    login(client, hub["parent"])
    invoice = first_invoice(app, hub["other"])
    account = account_of(app, hub["other"])
    assert client.get(f"/money/invoices/{invoice.id}.pdf").status_code == 404
    assert client.get(f"/money/accounts/{account.id}/statement.pdf").status_code == 404
    assert client.get(f"/money/invoices/{invoice.id}").status_code == 403  # the staff page: not for parents


def test_a_school_music_lead_sees_and_downloads_the_schools_account_only(app, client, hub):
    run(app)
    login(client, hub["lead"])
    page = text(client.get("/"))
    assert "£50.00 owed on account A00003" in page
    own = first_invoice(app, hub["school"])
    assert "Hillside Primary" in pdf_text(client.get(f"/money/invoices/{own.id}.pdf").data)
    assert client.get(f"/money/invoices/{first_invoice(app, hub['family']).id}.pdf").status_code == 404


def test_nothing_is_shown_to_a_family_never_invoiced(app, client, hub):
    login(client, hub["parent"])
    assert "Invoices and payments" not in text(client.get("/"))


def test_allocations_stay_consistent_after_the_pages(app, staff_client, hub):
    """Every allocation from the pages is positive and no invoice is over-settled."""
    run(app)
    account = account_of(app, hub["family"])
    submit(staff_client, f"/money/accounts/{account.id}/payment", {"amount": "100.00", "method": "cash"})
    with in_app(app) as session:
        assert session.scalar(select(func.sum(Allocation.amount))) == Decimal("54.00")
        assert money.balance(session, session.get(PayerAccount, account.id)) == Decimal("-46.00")
