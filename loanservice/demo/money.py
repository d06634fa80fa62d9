"""The demo hub's money: last term and this term invoiced, most of last term paid, some part-paid,
some 90 days and more overdue, a payer who is not the hirer, a credit note, and a bank statement to
import that pays some of this term's invoices (``bank_statement``); deposits invoiced with one
refunded at its return, a family paying by monthly instalments, and a school invoiced for a set
per instrument."""
import csv
import io
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..accounts.models import User
from ..borrowers.models import RemissionCategory
from ..loans import lending
from ..loans.models import AcademicTerm, LoanCharge
from ..money import services as money
from ..money.models import EntryKind, LedgerEntry, LoanDeposit
from ..sets.models import SetLoan
from ..timeutil import today

PAYER = dict(name="Northshire County Council (Virtual School)", email="virtual.school@northshire.example",
             address="County Hall\nNorthtown NT1 1AA")
STATEMENT_LINES = 6  # this term's open invoices the demo statement pays
OVERPAID = 5  # what the last of them pays beyond what is owed


def seed_money(session: Session, admin: User) -> None:
    """Invoice the two terms that have charges, and record what has been paid of them."""
    terms = list(session.scalars(select(AcademicTerm).where(
        select(LoanCharge.id).where(LoanCharge.term_id == AcademicTerm.id).exists()).order_by(AcademicTerm.starts_on)))
    if not terms:
        return
    config = {"INVOICE_DUE_DAYS": 30, "INSTALMENTS_ALLOWED": True, "INSTALMENTS_PER_TERM": 3,
              "DEPOSIT_REMISSION_CATEGORIES": [category.value for category in RemissionCategory]}
    set_loan = session.scalar(select(SetLoan).order_by(SetLoan.id).limit(1))
    if set_loan is not None:  # a school invoiced for a set, per instrument
        money.save_set_fee(session, admin, set_loan.classroom_set, "instrument", Decimal("6.00"))
    runs = [money.run_invoices(session, admin, term, config, on=_invoice_date(term)) for term in terms]
    if not runs[0].invoices:
        return
    first_account = runs[0].invoices[0].account
    money.set_payer(session, admin, first_account, **PAYER)  # a foster child's hire, paid by the council
    if len(runs) > 1:
        _pay_last_term(session, admin, runs[0].invoices)
    _pay_some(session, admin, runs[-1].invoices)
    _instalments(session, admin, runs[-1].invoices, config)
    _refund_a_deposit(session, admin)


def _instalments(session: Session, admin: User, invoices: list[LedgerEntry], config) -> None:
    """A family that pays by monthly instalments: this term's invoice split, and the next ones too."""
    for invoice in invoices:
        if invoice.account.family_id is not None and not invoice.account.payer_name \
                and money.invoice_left(session, invoice) == invoice.amount:
            money.choose_instalments(session, admin, invoice.account, config, True)
            money.split_into_instalments(session, admin, invoice, config, on=invoice.posted_on)
            return


def _refund_a_deposit(session: Session, admin: User) -> None:
    """An instrument brought back and its deposit (paid with its invoice) refunded by bank transfer."""
    for deposit in session.scalars(select(LoanDeposit).order_by(LoanDeposit.id)):
        if deposit.loan.is_open and deposit.loan.pupil_id is not None:
            invoice = deposit.line.invoice
            left = money.invoice_left(session, invoice)
            if left > 0:
                money.record_payment(session, admin, deposit.account, left, "card", on=_paid_on(invoice, 4),
                                     invoices=[invoice])
            lending.check_in(session, admin, deposit.loan, grade=4, note="Back in good order")
            money.refund_deposit(session, admin, deposit, method="bank_transfer")
            return


def _invoice_date(term: AcademicTerm) -> date:
    return min(today(), term.starts_on + timedelta(days=7))


def _paid_on(invoice: LedgerEntry, days: int) -> date:
    return min(today(), invoice.posted_on + timedelta(days=days))


def _pay_last_term(session: Session, admin: User, invoices: list[LedgerEntry]) -> None:
    """Last term: most paid; every fifth paid in part; every seventh unpaid (90+ days overdue by now); one credited."""
    for n, invoice in enumerate(invoices):
        if n == 1:
            money.credit_invoice(session, admin, invoice, min(invoice.amount, Decimal("10.00")),
                                 "Instrument returned in the first week of term", on=_paid_on(invoice, 5))
            continue
        if n % 7 == 6:
            continue
        amount = (invoice.amount / 2).quantize(Decimal("0.01")) if n % 5 == 4 else invoice.amount
        method = ("bank_transfer", "card", "cheque", "cash")[n % 4]
        money.record_payment(session, admin, invoice.account, amount, method, on=_paid_on(invoice, 10 + n % 20),
                             reference=f"{invoice.account.reference} {invoice.number}" if method == "bank_transfer"
                             else "")


def _pay_some(session: Session, admin: User, invoices: list[LedgerEntry]) -> None:
    """This term: every third invoice paid; the rest open, some of them paid by the demo bank statement."""
    for n, invoice in enumerate(invoices):
        if n % 3 == 0 and n > 0:
            money.record_payment(session, admin, invoice.account, invoice.amount, "card", on=_paid_on(invoice, 3))


def bank_statement(session: Session) -> str:
    """A bank CSV for the demo: payments for some of this term's open invoices, quoted the ways payers do,
    one paying £5 more than is owed (it becomes credit), a line twice, and one that names no account (to
    see the unmatched list)."""
    term_id = session.scalar(select(LedgerEntry.term_id).where(LedgerEntry.kind == EntryKind.INVOICE)
                             .order_by(LedgerEntry.posted_on.desc(), LedgerEntry.id.desc()).limit(1))
    invoices = session.scalars(select(LedgerEntry).where(LedgerEntry.kind == EntryKind.INVOICE,
                                                         LedgerEntry.term_id == term_id)
                               .order_by(LedgerEntry.number)).all()
    on = today() - timedelta(days=1)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["Date", "Description", "Paid in"])
    lines = 0
    for invoice in invoices:
        left = money.invoice_left(session, invoice)
        if left <= 0 or lines >= STATEMENT_LINES:
            continue
        surname = invoice.account.name.split()[-1].upper()
        reference = f"FP {surname} {invoice.account.reference}" if lines % 2 else f"{invoice.number} {surname}"
        paid = left + OVERPAID if lines == STATEMENT_LINES - 1 else left
        writer.writerow([f"{on:%d/%m/%Y}", reference, f"{paid:.2f}"])
        if lines == 0:
            writer.writerow([f"{on:%d/%m/%Y}", reference, f"{left:.2f}"])  # the bank sent it twice
        lines += 1
    writer.writerow([f"{on:%d/%m/%Y}", "J SMITH MUSIC HIRE", "30.00"])
    return buffer.getvalue()
