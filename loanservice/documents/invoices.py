"""Invoices and statements as PDFs, in the documents' look: plain data in, WeasyPrint out."""
from datetime import date

from sqlalchemy.orm import Session

from ..borrowers.models import RemissionCategory
from ..money import services as money
from ..money.models import LedgerEntry, PayerAccount
from ..timeutil import today
from .render import render_pdf
from .services import Hub


def _payer(account: PayerAccount, config) -> dict:
    return {"name": account.name, "address": account.address.splitlines(), "reference": account.reference,
            "how_to_pay": money.how_to_pay(config, account)}


def invoice_context(invoice: LedgerEntry, hub: Hub, config) -> dict:
    """Plain data for the invoice template: lines with the full fee, the remission named (never its evidence)
    and the amount due."""
    lines = [{"description": line.description, "full_fee": line.full_fee, "amount": line.amount,
              "remission": (RemissionCategory(line.remission_category).label
                            if line.remission_category != RemissionCategory.NONE else ""),
              "remission_amount": line.remission} for line in invoice.lines]
    return {"hub": hub, "number": invoice.number, "posted_on": invoice.posted_on, "due_on": invoice.due_on,
            "term": invoice.term.name if invoice.term is not None else "", "lines": lines, "total": invoice.amount,
            "instalments": [{"number": i.number, "due_on": i.due_on, "amount": i.amount} for i in invoice.instalments],
            **_payer(invoice.account, config)}


def invoice_pdf(invoice: LedgerEntry, hub: Hub, config) -> bytes:
    return render_pdf("documents/invoice.html", hub=hub, i=invoice_context(invoice, hub, config))


def _detail(entry: LedgerEntry) -> str:
    """What the payer reads beside an entry: their own reference, or the invoice it is against; never staff's
    notes (a write-off's reason stays with the hub)."""
    if entry.against is not None:
        return f"against {entry.against.number}"
    return entry.reference


def statement_pdf(session: Session, account: PayerAccount, hub: Hub, config, on: date | None = None) -> bytes:
    """The account's statement: every entry oldest first with the running balance, and the aged debt."""
    on = on or today()
    lines = [{"posted_on": line.entry.posted_on, "what": line.entry.kind_label, "number": line.entry.number or "",
              "detail": _detail(line.entry), "debit": line.entry.amount if line.entry.amount > 0 else None,
              "credit": -line.entry.amount if line.entry.amount < 0 else None, "running": line.running}
             for line in money.statement(session, account)]
    aged = money.aged_debt(session, on, account)
    bands = aged[0].bands if aged else dict.fromkeys(money.AGE_BANDS, money.ZERO)
    instalments = [{"number": invoice.number, "due_on": part.due_on, "amount": part.amount}
                   for invoice, left in money.open_invoices(session, account) if invoice.instalments
                   for part in money.due_parts(invoice, left)]
    return render_pdf("documents/statement.html", hub=hub, on=on, lines=lines, bands=bands, instalments=instalments,
                      balance=money.balance(session, account), **_payer(account, config))
