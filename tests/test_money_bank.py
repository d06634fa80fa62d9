"""Money in and out: the bank statement import (preview, matching, duplicates, all or nothing) and the
finance, aged-debt and remission CSV exports."""
import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from loanservice.audit.models import AuditEvent
from loanservice.borrowers.models import Family
from loanservice.loans import pricing
from loanservice.loans.models import AcademicTerm, Loan
from loanservice.money import bank
from loanservice.money import services as money
from loanservice.money.models import BankLine, LedgerEntry
from loanservice.timeutil import today

from .conftest import in_app
from .pages import submit, submit_on

FEE = pricing.Charges(fee_per_term=Decimal("36.00"))


@pytest.fixture
def invoiced(app, factory):
    """Two families invoiced for Spring 2027: A00001 owes £54 (INV-000001), A00002 £36 (INV-000002)."""
    start = today() - timedelta(days=20)
    term = factory.term("Spring 2027", start, start + timedelta(days=80))
    ada = factory.family(name="Ada Lovelace")
    half = factory.pupil(name="Byron Lovelace", family=ada, remission_category="pupil_premium",
                         remission_verified_on=date(2026, 9, 1))
    full = factory.pupil(name="Anne Lovelace", family=ada)
    charles = factory.family(name="Charles Babbage")
    factory.loan(factory.instrument(), full, due_on=term.ends_on, charges=FEE)
    factory.loan(factory.instrument(), half, due_on=term.ends_on,
                 charges=pricing.Charges(fee_per_term=Decimal("36.00"), charge_per_term=Decimal("18.00")))
    factory.loan(factory.instrument(), charles, due_on=term.ends_on, charges=FEE)
    with in_app(app) as session:
        run = money.run_invoices(session, None, session.get(AcademicTerm, term.id), app.config,
                                 on=today() - timedelta(days=10))
        session.commit()
        assert [(i.number, i.account.reference) for i in run.invoices] == [("INV-000001", "A00001"),
                                                                           ("INV-000002", "A00002")]
    return {"ada": ada, "charles": charles}


def day(days_ago: int) -> str:
    return (today() - timedelta(days=days_ago)).strftime("%d/%m/%Y")


def upload(client, text, name="statement.csv"):
    data = text.encode() if isinstance(text, str) else text
    return submit(client, "/money/bank-import", {"file": (io.BytesIO(data), name)}, form="file")


def balance_of(app, family):
    with in_app(app) as session:
        return money.balance(session, money.account_of(session, session.get(Family, family.id)))


def payments(app):
    with in_app(app) as session:
        return session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "payment"))


def test_a_statement_is_previewed_matched_and_imported_only_when_confirmed(app, staff_client, invoiced):
    text = ("Date,Description,Paid in\n"
            f"{day(3)},LOVELACE A00001 HIRE,54.00\n"
            f"{day(2)},BABBAGE INV-000002,£20.00\n"
            f"{day(2)},SOMEONE ELSE,15.00\n")
    preview = upload(staff_client, text)
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "Ready to import 2 payments, £74.00" in page
    assert "Ada Lovelace (A00001)" in page and "INV-000002" in page
    assert "No account reference (like A00012) or invoice number" in page
    assert payments(app) == 0  # a preview changes nothing

    response = submit_on(staff_client, preview, "/money/bank-import", form="csv_text")
    assert response.status_code == 303
    assert "Imported 2 payments, £74.00" in staff_client.get(response.location).get_data(as_text=True)
    assert balance_of(app, invoiced["ada"]) == 0
    assert balance_of(app, invoiced["charles"]) == Decimal("16.00")
    with in_app(app) as session:
        paid = session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "payment")
                               .order_by(LedgerEntry.id)).all()
        assert [(p.method, p.reference, p.posted_on) for p in paid] == [
            ("bank_transfer", "LOVELACE A00001 HIRE", today() - timedelta(days=3)),
            ("bank_transfer", "BABBAGE INV-000002", today() - timedelta(days=2))]
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "bank.imported"))
        assert event.summary == "Imported 2 bank payments, £74.00 from statement.csv"


def test_the_same_file_is_refused_a_second_time(app, staff_client, invoiced):
    text = f"date,amount,reference\n{day(1)},10.00,A00001\n"
    preview = upload(staff_client, text)
    assert submit_on(staff_client, preview, "/money/bank-import", form="csv_text").status_code == 303
    again = submit_on(staff_client, preview, "/money/bank-import", form="csv_text")  # Back and confirm again
    assert again.status_code == 409
    assert "nothing was imported again" in again.get_data(as_text=True)
    second = upload(staff_client, text)
    assert second.status_code == 409
    assert "This statement was imported on" in second.get_data(as_text=True)
    assert payments(app) == 1


def test_the_same_file_saved_with_other_line_endings_is_refused_too(app, staff_client, invoiced):
    text = f"date,amount,reference\n{day(1)},10.00,A00001\n{day(1)},4.00,A00002\n"
    submit_on(staff_client, upload(staff_client, text), "/money/bank-import", form="csv_text")
    again = upload(staff_client, text.replace("\n", "\r\n"))  # a browser posts the preview back with CRLF
    assert again.status_code == 409
    assert "This statement was imported on" in again.get_data(as_text=True)


def test_a_line_twice_in_the_file_or_imported_before_is_flagged_and_left_out(app, staff_client, invoiced):
    first = f"date,amount,reference\n{day(5)},10.00,A00001 HIRE\n"
    preview = upload(staff_client, first, "november.csv")
    submit_on(staff_client, preview, "/money/bank-import", form="csv_text")
    overlapping = (f"date,amount,reference\n{day(5)},10.00,a00001  hire\n"
                   f"{day(1)},5.00,A00002\n{day(1)},5.00,A00002\n")
    preview = upload(staff_client, overlapping, "december.csv")
    page = preview.get_data(as_text=True)
    assert "Ready to import 1 payment, £5.00" in page
    assert "Duplicates: 2 lines (not imported)" in page
    assert "(november.csv, line 2)" in page
    assert "The same as line 3 (date, amount and reference)." in page
    submit_on(staff_client, preview, "/money/bank-import", form="csv_text")
    assert payments(app) == 2
    assert balance_of(app, invoiced["charles"]) == Decimal("31.00")


def test_a_line_paying_more_than_its_account_owes_is_shown_as_becoming_credit(app, staff_client, invoiced):
    text = (f"date,amount,reference\n{day(2)},50.00,A00001\n{day(1)},10.00,A00001\n"
            f"{day(1)},36.00,A00002\n")
    preview = upload(staff_client, text)
    page = " ".join(preview.get_data(as_text=True).split())  # the words as a reader sees them
    assert "1 line pays more than its account owes: the extra becomes credit on the account" in page
    assert "£6.00 more than is owed: it becomes credit on A00001." in page
    assert page.count("more than is owed") == 1  # A00002's £36 pays exactly what it owes
    submit_on(staff_client, preview, "/money/bank-import", form="csv_text")
    assert balance_of(app, invoiced["ada"]) == Decimal("-6.00")


def identical_twice(days_ago=2):
    return f"date,amount,reference\n{day(days_ago)},10.00,A00002 HIRE\n{day(days_ago)},10.00,A00002 HIRE\n"


def test_an_identical_second_line_is_left_out_unless_staff_tick_it(app, staff_client, invoiced):
    preview = upload(staff_client, identical_twice())
    page = preview.get_data(as_text=True)
    assert "Ready to import 1 payment, £10.00" in page
    assert "The same as line 2 (date, amount and reference)." in page
    assert "It is a separate payment: import line 3" in page
    response = submit_on(staff_client, preview, "/money/bank-import", {"separate": "3"}, form="csv_text")
    assert response.status_code == 303
    assert "Imported 2 payments, £20.00" in staff_client.get(response.location).get_data(as_text=True)
    assert balance_of(app, invoiced["charles"]) == Decimal("16.00")


def test_checking_again_with_a_ticked_line_previews_it_among_the_payments(app, staff_client, invoiced):
    preview = upload(staff_client, identical_twice())
    again = submit_on(staff_client, preview, "/money/bank-import", {"separate": "3"}, form="csv_text",
                      button="check_again")
    page = again.get_data(as_text=True)
    assert again.status_code == 200
    assert "Ready to import 2 payments, £20.00" in page
    assert payments(app) == 0
    response = submit_on(staff_client, again, "/money/bank-import", form="csv_text")
    assert "Imported 2 payments, £20.00" in staff_client.get(response.location).get_data(as_text=True)


def test_an_untouched_duplicate_stays_out(app, staff_client, invoiced):
    preview = upload(staff_client, identical_twice())
    submit_on(staff_client, preview, "/money/bank-import", form="csv_text")
    assert payments(app) == 1


def test_an_overlapping_statement_meets_both_identical_payments_again(app, staff_client, invoiced):
    preview = upload(staff_client, identical_twice(), "november.csv")
    submit_on(staff_client, preview, "/money/bank-import", {"separate": "3"}, form="csv_text")
    overlapping = identical_twice() + f"{day(1)},5.00,A00001\n"
    page = upload(staff_client, overlapping, "december.csv").get_data(as_text=True)
    assert "Ready to import 1 payment, £5.00" in page
    assert "Duplicates: 2 lines (not imported)" in page
    assert "(november.csv, line 3)" in page


def test_a_line_imported_before_can_be_imported_again_deliberately(app, staff_client, invoiced):
    first = f"date,amount,reference\n{day(2)},10.00,A00002 HIRE\n"
    submit_on(staff_client, upload(staff_client, first, "one.csv"), "/money/bank-import", form="csv_text")
    second = first + f"{day(1)},5.00,A00001\n"
    preview = upload(staff_client, second, "two.csv")
    assert "Already imported on" in preview.get_data(as_text=True)
    response = submit_on(staff_client, preview, "/money/bank-import", {"separate": "2"}, form="csv_text")
    assert response.status_code == 303
    assert payments(app) == 3
    assert balance_of(app, invoiced["charles"]) == Decimal("16.00")


def test_a_file_of_nothing_but_duplicates_offers_them_to_tick(app, staff_client, invoiced):
    first = f"date,amount,reference\n{day(2)},10.00,A00002 HIRE\n"
    submit_on(staff_client, upload(staff_client, first, "one.csv"), "/money/bank-import", form="csv_text")
    preview = upload(staff_client, f"Date,Amount,Reference\n{day(2)},10.00,A00002 HIRE\n", "again.csv")
    page = preview.get_data(as_text=True)
    assert "Every line that matched an account is a duplicate." in page
    refused = submit_on(staff_client, preview, "/money/bank-import", form="csv_text")  # nothing ticked
    assert refused.status_code == 422
    assert "none was ticked to import as a payment of its own" in refused.get_data(as_text=True)
    assert payments(app) == 1


@pytest.mark.parametrize("line", ["three", "99999999999999999999"])
def test_a_ticked_line_that_is_not_a_line_number_is_refused_and_nothing_imported(app, staff_client, invoiced, line):
    preview = upload(staff_client, identical_twice())
    response = submit_on(staff_client, preview, "/money/bank-import", {"separate": line}, form="csv_text")
    assert response.status_code == 422
    assert payments(app) == 0


def test_the_import_page_says_what_cannot_be_imported_and_leads_back(app, staff_client, invoiced):
    page = staff_client.get("/money/bank-import").get_data(as_text=True)
    assert "Only money paid in can be imported: delete the lines of money paid out of the account" in page
    assert 'href="/money/accounts"' in page


def test_the_database_refuses_a_statement_line_imported_twice(app, invoiced):
    with in_app(app) as session:
        plan = bank.plan_bank_import(session, f"date,amount,reference\n{day(1)},10.00,A00001\n")
        bank.apply_bank_import(session, None, plan)
        session.commit()
    with in_app(app) as session:
        plan = bank.plan_bank_import(session, f"Date,Amount,Reference\n{day(1)},10.00,A00001\n")  # another file
        plan.duplicates, plan.matched = [], plan.duplicates  # as if the check had missed it
        with pytest.raises(bank.AlreadyImported):
            bank.apply_bank_import(session, None, plan)
        session.rollback()
        line = session.scalars(select(BankLine)).one()
        session.add(BankLine(import_id=line.import_id, line=9, fingerprint=line.fingerprint, paid_on=line.paid_on,
                             amount=line.amount, reference="x", payment_id=line.payment_id))
        with pytest.raises(IntegrityError):
            session.flush()


def test_unknown_references_and_ambiguous_lines_are_listed_with_the_reason(app, invoiced):
    text = ("Date,Amount,Reference\n"
            f"{day(1)},10.00,A00099\n"
            f"{day(1)},11.00,INV-000777\n"
            f"{day(1)},12.00,A00001 A00002\n"
            f"{day(1)},13.00,A00002 INV-000002\n")
    with in_app(app) as session:
        plan = bank.plan_bank_import(session, text)
    assert [(line.line, line.reason) for line in plan.unmatched] == [
        (2, "No account or invoice A00099."),
        (3, "No account or invoice INV-000777."),
        (4, "It names more than one account (A00001, A00002); record it by hand.")]
    assert [(line.line, line.account.reference, line.invoice.number) for line in plan.matched] == [
        (5, "A00002", "INV-000002")]


def test_zero_and_negative_lines_are_refused_with_their_line_number_and_nothing_is_imported(
        app, staff_client, invoiced):
    text = (f"date,amount,reference\n{day(1)},10.00,A00001\n{day(1)},0.00,A00001\n"
            f"{day(1)},-5.00,A00002\n{day(1)},(3.00),A00002\n")
    response = upload(staff_client, text)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Nothing was imported: 3 problems to fix" in page
    assert "<td>3</td><td>amount</td><td>0.00 is not money received" in page
    assert "<td>4</td><td>amount</td><td>-5.00 is not money received" in page
    assert "<td>5</td><td>amount</td><td>(3.00) is not money received" in page
    assert "Import 1 payment" not in page
    assert payments(app) == 0


@pytest.mark.parametrize("text, message", [
    ("", "The file is empty."),
    ("when,how much\n01/12/2026,5\n", "No date or amount or reference column."),
    ("date,amount,reference\n", "The file has a header but no lines."),
    ("date,amount,reference\n31/02/2026,5.00,A00001\n", "&#39;31/02/2026&#39; is not a date"),
    ("date,amount,reference\n01/12/2026,five,A00001\n", "&#39;five&#39; is not an amount of money."),
    ("date,amount,reference\n01/12/2099,5.00,A00001\n", "is in the future."),
])
def test_a_malformed_file_gets_a_clear_message(app, staff_client, invoiced, text, message):
    response = upload(staff_client, text)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_a_file_that_is_not_text_is_refused(app, staff_client, invoiced):
    response = upload(staff_client, b"\xff\xfe\x00garbage")
    assert response.status_code == 422
    assert "The file is not UTF-8 text" in response.get_data(as_text=True)


def test_common_bank_headers_and_uk_dates_are_read(app, invoiced):
    on = today() - timedelta(days=3)
    text = ("\ufeffTransaction Date,Transaction Description,Money In\n"
            f"{on:%d/%m/%y},FP INV 000001 LOVELACE,\"1,000.00\"\n"
            f"{on:%d %b %Y},A00002,5\n"
            f"{on:%Y-%m-%d},A00002 again,6\n")
    with in_app(app) as session:
        plan = bank.plan_bank_import(session, text.lstrip("\ufeff"))
    assert not plan.errors
    assert [(line.paid_on, line.amount, line.account.reference) for line in plan.matched] == [
        (on, Decimal("1000.00"), "A00001"), (on, Decimal("5.00"), "A00002"), (on, Decimal("6.00"), "A00002")]


def test_a_payment_naming_an_invoice_settles_that_invoice_first(app, factory, invoiced):
    with in_app(app) as session:
        loan = session.scalars(select(Loan).where(Loan.family_id.is_(None)).order_by(Loan.id)).first()
        later = money.invoice_loss(session, None, loan, Decimal("20.00"))
        session.commit()
        number = later.number
    with in_app(app) as session:
        plan = bank.plan_bank_import(session, f"date,amount,reference\n{day(1)},20.00,{number}\n")
        bank.apply_bank_import(session, None, plan)
        session.commit()
        invoice = session.scalar(select(LedgerEntry).where(LedgerEntry.number == number))
        assert money.invoice_left(session, invoice) == 0
        first = session.scalar(select(LedgerEntry).where(LedgerEntry.number == "INV-000001"))
        assert money.invoice_left(session, first) == Decimal("54.00")


# ---------------------------------------------------------------- exports


def read_csv(response):
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_the_finance_export_lists_the_periods_entries_with_codes_and_vat(app, staff_client, invoiced):
    app.config.update(VAT_RATE="0.20", FINANCE_NOMINAL_CODES={"hire:A": "4001"})
    with in_app(app) as session:
        account = money.account_of(session, session.get(Family, invoiced["charles"].id))
        invoice = session.scalar(select(LedgerEntry).where(LedgerEntry.number == "INV-000002"))
        money.credit_invoice(session, None, invoice, "6.00", "=HYPERLINK(\"http://x\")")
        money.record_payment(session, None, account, "30.00", "cheque", reference="CHQ 1001")
        session.commit()
    page = staff_client.get("/money/exports")
    assert page.status_code == 200
    start, end = today() - timedelta(days=30), today()
    response = submit(staff_client, "/money/exports", {"start": start.isoformat(), "end": end.isoformat()},
                      form=0)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = read_csv(response)
    assert rows[0] == ["date", "type", "number", "account_reference", "account_name", "nominal_code", "description",
                       "net", "vat", "gross"]
    by_number = {row[2] or row[1]: row for row in rows[1:]}
    assert by_number["INV-000001"][3:6] == ["A00001", "Ada Lovelace", "4001"]
    assert by_number["INV-000001"][7:] == ["45.00", "9.00", "54.00"]
    assert by_number["CN-000001"][5] == "4000"
    assert by_number["CN-000001"][6] == 'Credit against INV-000002: =HYPERLINK("http://x")'
    assert by_number["CN-000001"][7:] == ["-5.00", "-1.00", "-6.00"]
    payment = next(row for row in rows[1:] if row[1] == "Payment")
    assert payment[5:] == ["1200", "cheque CHQ 1001", "-30.00", "0.00", "-30.00"]


def test_the_finance_export_numbers_each_payment(app, staff_client, invoiced):
    with in_app(app) as session:
        account = money.account_of(session, session.get(Family, invoiced["charles"].id))
        posted = money.record_payment(session, None, account, "30.00", "cheque", reference="CHQ 1001")
        session.commit()
        number = f"PAY-{posted.entry.id:06d}"
    response = staff_client.get("/money/exports", query_string={"start": today().isoformat(),
                                                                  "end": today().isoformat()})
    assert [row[2] for row in read_csv(response)[1:] if row[1] == "Payment"] == [number]


def test_spreadsheet_formulas_in_the_export_are_neutralised(app, staff_client, invoiced):
    with in_app(app) as session:
        account = money.account_of(session, session.get(Family, invoiced["charles"].id))
        money.set_payer(session, None, account, name="=HYPERLINK(\"http://evil\")", email="x@example.org")
        money.record_payment(session, None, account, "1.00", "cash")
        session.commit()
    response = staff_client.get("/money/exports", query_string={"start": today().isoformat(),
                                                                  "end": today().isoformat()})
    payment = read_csv(response)[1]
    assert payment[4] == "'=HYPERLINK(\"http://evil\")"
    assert payment[7:] == ["-1.00", "0.00", "-1.00"]  # a credit's minus sign is a number, not a formula


def test_a_period_that_ends_before_it_starts_is_refused(app, staff_client, invoiced):
    response = staff_client.get("/money/exports", query_string={"start": "2026-12-01", "end": "2026-11-01"})
    assert response.status_code == 422
    assert "The period ends before it starts." in response.get_data(as_text=True)


def test_aged_debt_and_remission_exports(app, staff_client, invoiced):
    aged = read_csv(staff_client.get("/money/exports/aged-debt.csv"))
    assert aged[0] == ["account_reference", "account_name", "current", "30_days", "60_days", "90_days_plus", "total"]
    assert aged[1:] == [["A00001", "Ada Lovelace", "54.00", "0.00", "0.00", "0.00", "54.00"],
                        ["A00002", "Charles Babbage", "36.00", "0.00", "0.00", "0.00", "36.00"]]
    remission = read_csv(staff_client.get("/money/exports/remission.csv"))
    assert remission == [["term", "remission_category", "remission_given"],
                         ["Spring 2027", "Pupil premium", "18.00"]]


# ---------------------------------------------------------------- the demo hub


def test_the_demo_hub_has_invoices_paid_part_paid_overdue_and_a_statement_that_imports(app, staff_client, tmp_path):
    app.instance_path = str(tmp_path)
    result = app.test_cli_runner().invoke(args=["demo", "seed", "--instruments", "400"])
    assert result.exit_code == 0, result.output
    statement = tmp_path / "demo-bank-statement.csv"
    assert str(statement) in result.output
    with in_app(app) as session:
        entries = session.scalars(select(LedgerEntry)).all()
        kinds = {entry.kind for entry in entries}
        assert {"invoice", "payment", "credit_note"} <= kinds
        aged = money.aged_debt(session)
        assert any(row.bands["90+"] > 0 for row in aged)
        part_paid = [e for e in entries if e.kind == "invoice" and 0 < money.invoice_left(session, e) < e.amount]
        assert part_paid
        assert any(account.payer_name for account in session.scalars(select(money.PayerAccount)))
    preview = upload(staff_client, statement.read_text(), "demo-bank-statement.csv")
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200, page
    assert "Ready to import 6 payments" in page
    assert "Duplicates: 1 line (not imported)" in page
    assert "J SMITH MUSIC HIRE" in page
    assert "It is a separate payment: import line 3" in page
    assert page.count("more than is owed: it becomes credit on") == 1
    with in_app(app) as session:
        plan = bank.plan_bank_import(session, statement.read_text())
        named = [line.invoice.number for line in plan.matched if line.invoice is not None]
    assert submit_on(staff_client, preview, "/money/bank-import", form="csv_text").status_code == 303
    with in_app(app) as session:
        for number in named:
            invoice = session.scalar(select(LedgerEntry).where(LedgerEntry.number == number))
            assert money.invoice_left(session, invoice) == 0
