"""How invoices reach people: sent in one action (email with the PDF, or one print file), reminders for
unpaid invoices through the staged notices, and which loans a term charges (the pricing fix)."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from loanservice.documents import invoice_delivery, notices
from loanservice.documents.models import InvoiceDelivery, Notice, NoticeKind, NoticeLetter
from loanservice.documents.services import Hub
from loanservice.errors import InvalidInput
from loanservice.loans import pricing
from loanservice.loans.models import AcademicTerm, LoanCharge
from loanservice.money import services as money
from loanservice.money.models import LedgerEntry

from .conftest import attachment_text, in_app, login, mail_to, pdf_text, send_mail
from .pages import submit

FEE = pricing.Charges(fee_per_term=Decimal("36.00"))
AUTUMN = ("Autumn 2025", date(2025, 9, 3), date(2025, 12, 19))
SPRING = ("Spring 2026", date(2026, 1, 5), date(2026, 3, 27))
RUN_ON = date(2026, 1, 10)  # the invoices fall due 30 days later, on 9 Feb 2026
INVOICES_DUE = date(2026, 2, 9)


# ---------------------------------------------------------------- which loans a term charges


@pytest.fixture
def terms(factory):
    return factory.term(*AUTUMN), factory.term(*SPRING)


def _charged(app, on, keep=True) -> int:
    with in_app(app) as session:
        spring = session.scalar(select(AcademicTerm).where(AcademicTerm.name == SPRING[0]))
        count = pricing.raise_term_charges(session, None, spring, on=on, keep_invoicing_overdue=keep)
        session.commit()
        return count


def test_a_loan_due_back_before_the_term_is_not_charged_by_a_run_made_before_it_falls_due(app, factory, terms):
    factory.loan(factory.instrument(), factory.family(), started_on=date(2025, 9, 10), due_on=date(2025, 12, 12),
                 charges=FEE)
    assert _charged(app, on=date(2025, 12, 1)) == 0


def test_a_loan_still_out_and_overdue_at_the_run_is_charged_for_the_term(app, factory, terms):
    factory.loan(factory.instrument(), factory.family(), started_on=date(2025, 9, 10), due_on=date(2025, 12, 12),
                 charges=FEE)
    assert _charged(app, on=date(2026, 1, 6)) == 1


def test_with_the_hub_setting_off_an_overdue_loan_is_not_charged_again(app, factory, terms):
    factory.loan(factory.instrument(), factory.family(), started_on=date(2025, 9, 10), due_on=date(2025, 12, 12),
                 charges=FEE)
    assert _charged(app, on=date(2026, 1, 6), keep=False) == 0


def test_a_loan_due_back_within_the_term_is_charged_whenever_the_run_is(app, factory, terms):
    factory.loan(factory.instrument(), factory.family(), started_on=date(2025, 9, 10), due_on=date(2026, 2, 20),
                 charges=FEE)
    assert _charged(app, on=date(2025, 12, 1)) == 1


def test_the_invoice_run_uses_its_date_to_decide(app, factory, terms):
    factory.loan(factory.instrument(), factory.family(email="a@example.org"), started_on=date(2025, 9, 10),
                 due_on=date(2025, 12, 12), charges=FEE)
    with in_app(app) as session:
        spring = session.scalar(select(AcademicTerm).where(AcademicTerm.name == SPRING[0]))
        early = money.run_invoices(session, None, spring, app.config, on=date(2025, 12, 1))
        assert early.count == 0
        session.rollback()
        late = money.run_invoices(session, None, spring, app.config, on=date(2026, 1, 6))
        assert late.count == 1


# ---------------------------------------------------------------- sending a term's invoices


@pytest.fixture
def invoiced(app, factory, terms):
    """Spring 2026 invoiced on 10 Jan 2026: one family with email, one without (with an address)."""
    emailed = factory.family("Ada Lovelace", email="ada@example.org")
    posted = factory.family("Mrs Smith", address="4 Elm Road\nExampleton EX2 3CD")
    kind = factory.instrument_type("Cello", sizes=("3/4",))
    for family, tag in ((emailed, "CE-1"), (posted, "CE-2")):
        factory.loan(factory.instrument(kind, asset_tag=tag, size="3/4"), factory.pupil(family=family),
                     started_on=date(2025, 9, 10), due_on=date(2026, 3, 27), charges=FEE)
    with in_app(app) as session:
        spring = session.scalar(select(AcademicTerm).where(AcademicTerm.name == SPRING[0]))
        money.run_invoices(session, None, spring, app.config, on=RUN_ON)
        session.commit()
        numbers = {i.account.name: i.number for i in session.scalars(select(LedgerEntry).order_by(LedgerEntry.id))}
        references = {i.account.name: i.account.reference for i in session.scalars(select(LedgerEntry))}
    return {"term": terms[1], "emailed": emailed, "posted": posted, "numbers": numbers, "references": references}


def _send(app):
    with in_app(app) as session:
        term = session.get(AcademicTerm, session.scalar(select(AcademicTerm.id).where(AcademicTerm.name == SPRING[0])))
        return invoice_delivery.send_invoices(session, None, term, Hub.from_config(app.config), app.config,
                                              processes=1)


def test_an_emailed_invoice_arrives_with_its_pdf_attached(app, invoiced, smtp_server):
    mail_to(app, smtp_server)
    _send(app)
    send_mail(app)
    [message] = smtp_server.messages
    assert str(message["To"]) == "ada@example.org"
    letter = attachment_text(message)
    assert invoiced["numbers"]["Ada Lovelace"] in letter
    assert "£36.00" in letter
    assert invoiced["references"]["Ada Lovelace"] in letter


def test_the_email_says_the_amount_the_due_date_and_the_reference(app, invoiced, smtp_server):
    mail_to(app, smtp_server)
    _send(app)
    send_mail(app)
    body = smtp_server.messages[0].get_body(("plain",)).get_content()
    assert (f"invoice {invoiced['numbers']['Ada Lovelace']} for Spring 2026: £36.00, due by 9 Feb 2026"
            in body)
    assert f"Quote your account reference {invoiced['references']['Ada Lovelace']}" in body


def test_the_print_file_holds_only_the_accounts_without_email(app, invoiced):
    result = _send(app)
    printed = pdf_text(result.print_file)
    assert invoiced["numbers"]["Mrs Smith"] in printed
    assert "4 Elm Road" in printed
    assert invoiced["numbers"]["Ada Lovelace"] not in printed


def test_sending_counts_emailed_and_printed(app, invoiced):
    result = _send(app)
    assert (result.emailed, result.printed) == (1, 1)


def test_sending_again_sends_nothing_twice(app, invoiced, smtp_server):
    mail_to(app, smtp_server)
    _send(app)
    with pytest.raises(Exception, match="has been sent already"):
        _send(app)
    send_mail(app)
    assert len(smtp_server.messages) == 1


def test_the_database_refuses_a_second_delivery_of_one_invoice(app, invoiced):
    from sqlalchemy.exc import IntegrityError

    _send(app)
    with in_app(app) as session:
        first = session.scalars(select(InvoiceDelivery)).first()
        session.add(InvoiceDelivery(invoice_id=first.invoice_id, term_id=first.term_id, channel="post",
                                    status="pending"))
        with pytest.raises(IntegrityError):
            session.flush()


def test_staff_send_the_terms_invoices_from_its_page_and_download_the_print_file(app, client, factory, invoiced):
    login(client, factory.user("staff"))
    page = client.get(f"/money/terms/{invoiced['term'].id}/invoices").get_data(as_text=True)
    assert "Send 2 invoices" in page
    sent = submit(client, f"/money/terms/{invoiced['term'].id}/invoices", form="send-invoices", follow_redirects=True)
    text = sent.get_data(as_text=True)
    assert "Spring 2026: 1 invoice emailed with the PDF attached, 1 to print." in text
    pdf = client.get(f"/money/terms/{invoiced['term'].id}/invoices-to-print.pdf")
    assert pdf.status_code == 200
    assert invoiced["numbers"]["Mrs Smith"] in pdf_text(pdf.data)


def test_a_parent_cannot_reach_the_terms_invoices_page(app, client, factory, invoiced):
    login(client, factory.parent())
    assert client.get(f"/money/terms/{invoiced['term'].id}/invoices").status_code in (403, 404)


def test_the_print_file_of_a_term_with_nothing_posted_is_a_404(app, client, factory, invoiced):
    login(client, factory.user("staff"))
    assert client.get(f"/money/terms/{invoiced['term'].id}/invoices-to-print.pdf").status_code == 404


# ---------------------------------------------------------------- reminders for unpaid invoices


@pytest.fixture
def stages(app, invoiced):
    with in_app(app) as session:
        notices.add_usual_stages(session, None, NoticeKind.INVOICE)
        session.commit()
    return invoiced


def _due(app, as_of):
    with in_app(app) as session:
        return sorted((d.stage.name, d.invoice.number) for d in notices.due_notices(session, as_of))


def test_no_reminder_before_the_first_stage(app, stages):
    assert _due(app, date(2026, 2, 15)) == []


def test_a_reminder_is_due_seven_days_after_the_due_date(app, stages):
    assert _due(app, date(2026, 2, 16)) == sorted(("Payment reminder", n) for n in stages["numbers"].values())


def test_a_paid_invoice_gets_no_reminder(app, stages):
    with in_app(app) as session:
        account = money.account_of(session, session.merge(stages["emailed"]))
        money.record_payment(session, None, account, Decimal("36.00"), "bank_transfer", on=date(2026, 2, 1))
        session.commit()
    assert _due(app, date(2026, 2, 16)) == [("Payment reminder", stages["numbers"]["Mrs Smith"])]


def test_a_part_paid_invoice_is_chased_for_what_is_left(app, stages, smtp_server):
    mail_to(app, smtp_server)
    with in_app(app) as session:
        account = money.account_of(session, session.merge(stages["emailed"]))
        money.record_payment(session, None, account, Decimal("10.00"), "bank_transfer", on=date(2026, 2, 1))
        session.commit()
    _run_notices(app, date(2026, 2, 16))
    send_mail(app)
    [message] = smtp_server.messages
    letter = attachment_text(message)
    assert "Still to pay £26.00" in letter


def _run_notices(app, as_of):
    with in_app(app) as session:
        return notices.send_notices(session, None, as_of, Hub.from_config(app.config), app.config, deliver=False,
                                    processes=1)


def test_the_reminder_letter_names_the_invoice_the_amount_the_bank_details_and_the_reference(app, stages,
                                                                                           smtp_server):
    mail_to(app, smtp_server)
    _run_notices(app, date(2026, 2, 16))
    send_mail(app)
    letter = attachment_text(smtp_server.messages[0])
    assert f"Reminder: invoice {stages['numbers']['Ada Lovelace']} unpaid" in letter
    assert "Still to pay £36.00" in letter
    assert "Sort code 00-00-00" in letter
    assert f"Quote your reference {stages['references']['Ada Lovelace']}" in letter


def test_the_reminder_email_says_the_same_in_words(app, stages, smtp_server):
    mail_to(app, smtp_server)
    _run_notices(app, date(2026, 2, 16))
    send_mail(app)
    body = smtp_server.messages[0].get_body(("plain",)).get_content()
    assert f"invoice {stages['numbers']['Ada Lovelace']} of 10 Jan 2026 (£36.00) was due by 9 Feb 2026" in body
    assert "Sort code 00-00-00" in body
    assert f"Quote your account reference {stages['references']['Ada Lovelace']}" in body


def test_the_reminder_without_email_is_printed(app, stages):
    result = _run_notices(app, date(2026, 2, 16))
    assert stages["numbers"]["Mrs Smith"] in pdf_text(result.print_file)


def test_a_stage_is_never_sent_twice(app, stages):
    _run_notices(app, date(2026, 2, 16))
    again = _run_notices(app, date(2026, 2, 17))
    assert again.claimed == 0


def test_the_next_stage_follows_after_the_gap(app, stages, smtp_server):
    mail_to(app, smtp_server)
    _run_notices(app, date(2026, 2, 16))
    send_mail(app)  # a later stage waits until the letter before it has gone
    assert _due(app, date(2026, 3, 1)) == []
    assert _due(app, date(2026, 3, 2)) == sorted(("Second payment reminder", n) for n in stages["numbers"].values())


def test_the_final_notice_gives_a_date_to_pay_by(app, stages, smtp_server):
    mail_to(app, smtp_server)
    for as_of in (date(2026, 2, 16), date(2026, 3, 2), date(2026, 3, 16)):
        _run_notices(app, as_of)
        send_mail(app)
    finals = [m for m in smtp_server.messages if str(m["Subject"]).startswith("Final notice to pay")]
    assert "within 14 days, by 30 Mar 2026" in attachment_text(finals[0])


def test_invoice_and_loan_stages_are_kept_apart(app, stages):
    with in_app(app) as session:
        assert notices.stages(session) == []
        assert [s.name for s in notices.stages(session, NoticeKind.INVOICE)] == [
            "Payment reminder", "Second payment reminder", "Final notice to pay"]


def test_an_invoice_stage_cannot_ask_for_a_replacement_cost(app, stages):
    with in_app(app) as session, pytest.raises(InvalidInput, match="not a replacement-cost letter"):
        notices.save_stage(session, None, name="Pay up", days_overdue=60, letter=NoticeLetter.REPLACEMENT,
                           kind=NoticeKind.INVOICE)


def test_the_database_refuses_a_second_letter_of_one_stage_about_one_invoice(app, stages):
    from sqlalchemy.exc import IntegrityError

    _run_notices(app, date(2026, 2, 16))
    with in_app(app) as session:
        first = session.scalars(select(Notice).where(Notice.invoice_id.is_not(None))).first()
        session.add(Notice(invoice_id=first.invoice_id, stage_id=first.stage_id, as_of=date(2026, 2, 17),
                           days_overdue=8, channel="post", recipient_name="x", status="pending"))
        with pytest.raises(IntegrityError):
            session.flush()


def test_admin_add_an_invoice_stage_from_the_stages_page(app, client, factory, terms):
    login(client, factory.user("admin"))
    response = submit(client, "/notices/stages", {"kind": "invoice", "name": "Nudge", "days_overdue": "10",
                                                  "letter": "reminder"}, form=-1, follow_redirects=True)
    assert response.status_code == 200
    with in_app(app) as session:
        assert [(s.kind, s.name, s.days_overdue) for s in notices.stages(session, NoticeKind.INVOICE)] == [
            ("invoice", "Nudge", 10)]


def test_staff_see_invoice_reminders_due_and_preview_one(app, client, factory, stages):
    login(client, factory.user("staff"))
    page = client.get("/notices?as_of=2026-02-16").get_data(as_text=True)
    assert f"Invoice {stages['numbers']['Ada Lovelace']}, £36.00 unpaid" in page
    with in_app(app) as session:
        invoice_id = session.scalar(select(LedgerEntry.id).where(LedgerEntry.number == stages["numbers"]["Mrs Smith"]))
    preview = client.get(f"/notices/preview/invoice/{invoice_id}.pdf?as_of=2026-02-16")
    assert preview.status_code == 200
    assert "4 Elm Road" in pdf_text(preview.data)


def test_reminders_leave_the_invoices_ledger_alone(app, stages):
    _run_notices(app, date(2026, 2, 16))
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(LoanCharge)) == 2
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 2


def test_an_invoice_by_post_with_no_address_is_held_back_until_the_address_is_added(app, factory, invoiced):
    from loanservice.borrowers.models import Family

    with in_app(app) as session:
        session.get(Family, invoiced["posted"].id).address = ""
        session.commit()
    first = _send(app)
    assert (first.printed, first.held_back) == (0, ["Mrs Smith"])
    with in_app(app) as session:
        session.get(Family, invoiced["posted"].id).address = "4 Elm Road\nExampleton EX2 3CD"
        session.commit()
    second = _send(app)
    assert second.printed == 1
