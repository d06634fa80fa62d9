"""CSV for the hub's finance system and reports: the ledger for a period with nominal codes and
VAT, the aged debt, and the remission given. Every cell goes through ``spreadsheet_cell``."""
import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from ..borrowers.models import RemissionCategory
from ..errors import InvalidInput
from ..inventory.csvio import spreadsheet_cell
from ..inventory.models import Instrument
from ..loans.models import Loan
from .models import EntryKind, InvoiceLine, LedgerEntry, LineKind
from .services import AGE_BANDS, ZERO, aged_debt, remission_given

FINANCE_COLUMNS = ["date", "type", "number", "account_reference", "account_name", "nominal_code", "description",
                   "net", "vat", "gross"]
AGED_DEBT_COLUMNS = ["account_reference", "account_name", "current", "30_days", "60_days", "90_days_plus", "total"]
REMISSION_COLUMNS = ["term", "remission_category", "remission_given"]
# Nominal codes when the hub sets none: sales of hire and of replacements, a bank account, bad debt;
# deposits held are a liability (owed back), not a sale.
DEFAULT_NOMINAL_CODES = {"hire": "4000", "loss": "4010", "credit_note": "4000", "payment": "1200",
                         "refund": "1200", "write_off": "8100", "deposit": "2100", "set_hire": "4000"}
VAT_KINDS = (EntryKind.INVOICE, EntryKind.CREDIT_NOTE)  # payments, refunds and write-offs carry no VAT
# Payments, refunds and write-offs have no document number: the export numbers them by their entry.
ENTRY_PREFIXES = {"payment": "PAY", "refund": "REF", "write_off": "WO"}
CENT = Decimal("0.01")


def nominal_codes(config) -> dict[str, str]:
    """The hub's nominal codes: its FINANCE_NOMINAL_CODES over the defaults ("hire:B" for a fee band)."""
    return DEFAULT_NOMINAL_CODES | dict(config.get("FINANCE_NOMINAL_CODES") or {})


def vat_rate(config) -> Decimal:
    """The VAT rate the hub charges on hire, as a fraction (0.20 for 20%); 0 by default."""
    try:
        rate = Decimal(str(config.get("VAT_RATE") or "0"))
    except ArithmeticError:
        raise InvalidInput("VAT_RATE must be a fraction such as 0.20.") from None
    if not rate.is_finite() or not 0 <= rate < 1:
        raise InvalidInput("VAT_RATE must be a fraction from 0 up to 1, such as 0.20.")
    return rate


def split_vat(gross: Decimal, rate: Decimal) -> tuple[Decimal, Decimal]:
    """The net and VAT of an amount that includes VAT at ``rate``."""
    net = (gross / (1 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)
    return net, gross - net


def _line_code(line: InvoiceLine, codes: dict[str, str]) -> str:
    if line.kind == LineKind.HIRE and line.loan is not None:
        band = line.loan.instrument.type.hire_band
        return codes.get(f"hire:{band}", codes["hire"])
    return codes.get(line.kind, codes["hire"])


def finance_rows(session: Session, config, start: date, end: date) -> Iterator[list]:
    """The ledger entries posted from ``start`` to ``end``: an invoice or credit note has a row per nominal code.

    Amounts carry the ledger's sign: positive adds to what is owed (invoices, refunds), negative
    takes from it (credit notes, payments, write-offs). Gross includes the VAT.
    """
    if end < start:
        raise InvalidInput("The period ends before it starts.", field="end")
    return _finance_rows(session, nominal_codes(config), vat_rate(config), start, end)


def _finance_rows(session: Session, codes: dict[str, str], rate: Decimal, start: date, end: date) -> Iterator[list]:
    entries = session.scalars(
        select(LedgerEntry).where(LedgerEntry.posted_on >= start, LedgerEntry.posted_on <= end)
        .options(joinedload(LedgerEntry.account), joinedload(LedgerEntry.against),
                 joinedload(LedgerEntry.lines).joinedload(InvoiceLine.loan).joinedload(Loan.instrument)
                 .joinedload(Instrument.type))
        .order_by(LedgerEntry.posted_on, LedgerEntry.id)).unique()
    for entry in entries:
        for code, gross, description in _entry_parts(entry, codes):
            net, vat = split_vat(gross, rate) if entry.kind in VAT_KINDS else (gross, ZERO)
            yield [entry.posted_on, EntryKind(entry.kind).label, entry_number(entry), entry.account.reference,
                   entry.account.name, code, description, net, vat, gross]


def entry_number(entry: LedgerEntry) -> str:
    """The number a finance system files an entry under: an invoice's or credit note's own, else PAY-000012."""
    return entry.number or f"{ENTRY_PREFIXES.get(entry.kind, 'ENT')}-{entry.id:06d}"


def _entry_parts(entry: LedgerEntry, codes: dict[str, str]) -> Iterable[tuple[str, Decimal, str]]:
    """(nominal code, gross, description) for each part of an entry."""
    if entry.kind == EntryKind.INVOICE and entry.lines:
        by_code: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for line in entry.lines:
            by_code[_line_code(line, codes)] += line.amount
        term = entry.term.name if entry.term is not None else ""
        return [(code, amount, f"Invoice {term}".strip()) for code, amount in sorted(by_code.items())]
    if entry.kind == EntryKind.CREDIT_NOTE:
        return [(codes["credit_note"], entry.amount, f"Credit against {entry.against}: {entry.note}"[:200])]
    if entry.kind == EntryKind.WRITE_OFF:
        return [(codes["write_off"], entry.amount, f"Written off {entry.against}: {entry.note}"[:200])]
    method = f"{entry.method.replace('_', ' ')} " if entry.method else ""
    return [(codes.get(entry.kind, ""), entry.amount, f"{method}{entry.reference}".strip()[:200])]


def aged_debt_rows(session: Session, on: date) -> Iterator[list]:
    """The aged-debt report on ``on``: an account a row, the most owed first."""
    for row in aged_debt(session, on):
        yield [row.account.reference, row.account.name, *(row.bands[band] for band in AGE_BANDS), row.total]


def remission_rows(session: Session) -> Iterator[list]:
    """The remission given (full fee less what was charged) per term and remission category."""
    for term, category, amount in remission_given(session):
        yield [term, RemissionCategory(category).label, amount]


def _cell(value) -> str:
    """A number as it is (a credit's minus sign is not a formula); any text neutralised."""
    return str(value) if isinstance(value, Decimal | int) and not isinstance(value, bool) else spreadsheet_cell(value)


def as_csv(header: list[str], rows: Iterable[list]) -> Iterator[str]:
    """CSV text a few hundred rows at a time, every cell safe to open in a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for count, row in enumerate(rows, 1):
        writer.writerow([_cell(cell) for cell in row])
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
