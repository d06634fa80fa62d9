"""Bank statement import: a CSV of money received (date, amount, reference) becomes payments.

Read the file and plan first (nothing written): each line is matched to an account by the account
reference (A00012) or an invoice number (INV-000034) in its reference text, or listed as unmatched
with the reason; a line seen twice in the file or imported before is flagged and left out unless
staff tick it as a payment of its own (two real payments of one amount and reference on one day).
Staff confirm the plan, and every matched line is recorded as a bank transfer in one transaction
(the caller commits, or rolls back the lot). The same file is refused a second time, and the database
refuses a line imported twice (its fingerprint is unique) whatever the code misses: the n-th identical
payment has a fingerprint of its own, so an overlapping statement meets each of them again.
"""
import hashlib
import re
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..audit.services import record
from ..csvimport import RowError, read_rows
from ..errors import InvalidInput
from ..timeutil import today
from .models import BankImport, BankLine, EntryKind, LedgerEntry, PayerAccount, PaymentMethod
from .services import MOST, ZERO, MoneyError, _lock_accounts, balances, record_payment

MAX_LINES = 20000
# The header names banks and spreadsheets use, each read as one of the three columns.
DATE_HEADERS = ("date", "transaction_date", "posting_date", "posted_date", "value_date", "date_posted",
                "payment_date", "txn_date")
AMOUNT_HEADERS = ("amount", "paid_in", "money_in", "credit", "credit_amount", "amount_(gbp)", "amount_gbp",
                  "value", "paid_in_(£)", "money_in_(£)", "amount_(£)")
REFERENCE_HEADERS = ("reference", "description", "details", "narrative", "memo", "transaction_description",
                     "payment_reference", "transaction_details", "payee")
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%d-%m-%Y", "%d.%m.%Y", "%d %b %Y", "%d %B %Y", "%d-%b-%Y",
                "%d-%b-%y", "%d %b %y")
ACCOUNT_PATTERN = re.compile(r"(?<![A-Z0-9])A(\d{5})(?!\d)")
INVOICE_PATTERN = re.compile(r"(?<![A-Z0-9])INV[-\s]?(\d{6})(?!\d)")


class AlreadyImported(MoneyError):
    status_code = 409


@dataclass
class StatementLine:
    """A line of the statement, as read and matched."""

    line: int
    paid_on: date
    amount: Decimal
    reference: str
    fingerprint: str
    account: PayerAccount | None = None
    invoice: LedgerEntry | None = None
    reason: str = ""  # why it is not matched
    duplicate: str = ""  # why it is left out as a duplicate
    separate: bool = False  # a duplicate staff chose to import as a payment of its own
    credit: Decimal = ZERO  # what the line pays beyond what its account owes: it becomes credit

    @property
    def may_import_separately(self) -> bool:
        """A duplicate on a known account, which staff may import deliberately as a payment of its own."""
        return bool(self.duplicate) and self.account is not None


@dataclass
class BankPlan:
    """What importing a statement would do: nothing is written until staff confirm."""

    file_hash: str
    matched: list[StatementLine] = field(default_factory=list)
    unmatched: list[StatementLine] = field(default_factory=list)
    duplicates: list[StatementLine] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    imported_before: BankImport | None = None

    @property
    def ok(self) -> bool:
        """Whether the file can be imported: no errors, not imported before, and a line to import."""
        return not self.errors and self.imported_before is None and bool(self.matched)

    @property
    def may_confirm(self) -> bool:
        """Whether staff can confirm: the file can be imported, or a duplicate could be ticked to import it."""
        return self.ok or (not self.errors and self.imported_before is None
                           and any(line.may_import_separately for line in self.duplicates))

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.matched), ZERO)


def file_hash(text: str) -> str:
    """The file's SHA-256, its line endings aside: a browser posts the previewed text back with CRLF."""
    return hashlib.sha256("\n".join(text.splitlines()).encode()).hexdigest()


def fingerprint(paid_on: date, amount: Decimal, reference: str, occurrence: int = 1) -> str:
    """What identifies a statement line: its date, amount and reference (spacing and case aside), and
    which of the identical payments it is (the first, the second...)."""
    text = f"{paid_on.isoformat()}|{amount}|{' '.join(reference.upper().split())}"
    return hashlib.sha256((text if occurrence == 1 else f"{text}|{occurrence}").encode()).hexdigest()


def parse_statement_date(text: str) -> date:
    """Read a statement's date: 2026-12-03, 03/12/2026, 03/12/26, 03-12-2026, 3 Dec 2026 (UK order)."""
    text = " ".join(text.split())
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a date (use 03/12/2026 or 2026-12-03)." if text else "The date is empty.")


def parse_amount(text: str) -> Decimal:
    """Read an amount received; zero or less is refused (a statement of money in only)."""
    cleaned = text.strip().replace("£", "").replace(",", "").replace(" ", "")
    if cleaned.startswith("(") and cleaned.endswith(")"):  # accountants' negative
        cleaned = "-" + cleaned[1:-1]
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"{text.strip()!r} is not an amount of money." if text.strip()
                         else "The amount is empty.") from None
    if not amount.is_finite():
        raise ValueError(f"{text.strip()!r} is not an amount of money.")
    if amount <= 0:
        raise ValueError(f"{text.strip()} is not money received: only payments in (more than £0) can be imported. "
                         "Delete the lines of money paid out of the account.")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"{text.strip()!r} has more than two decimal places.")
    if amount > MOST:
        raise ValueError(f"{text.strip()!r} is larger than any amount the hub handles.")
    return amount


def _columns(header: list[str]) -> tuple[dict[str, str], list[str]]:
    """Which header is the date and the amount, and which carry reference text; what is missing."""
    chosen: dict[str, str] = {}
    for role, names in (("date", DATE_HEADERS), ("amount", AMOUNT_HEADERS)):
        for name in names:
            if name in header:
                chosen[role] = name
                break
    references = [h for h in header if h in REFERENCE_HEADERS]
    missing = [role for role in ("date", "amount") if role not in chosen] + ([] if references else ["reference"])
    chosen["reference"] = ",".join(references)
    return chosen, missing


def plan_bank_import(session: Session, text: str, separate: Collection[int] = ()) -> BankPlan:
    """Read every line, match it or say why not, flag duplicates and report every problem; import nothing.

    ``separate`` holds the line numbers of duplicates staff chose to import as payments of their own.
    """
    plan = BankPlan(file_hash=file_hash(text))
    plan.imported_before = session.scalar(select(BankImport).where(BankImport.file_hash == plan.file_hash))
    columns: dict[str, str] = {}

    def check_header(header: list[str]) -> RowError | None:
        found, missing = _columns(header)
        columns.update(found)
        if not missing:
            return None
        return RowError(1, ", ".join(missing), f"No {' or '.join(missing)} column. The first row must name the "
                        "columns: date, amount and reference (or Description, Paid in...).")

    lines: list[StatementLine] = []
    for number, values in read_rows(text, plan.errors, check_header, limit=MAX_LINES, noun="lines"):
        line = _read_line(number, values, columns, plan.errors)
        if line is not None:
            lines.append(line)
    if not lines and not plan.errors:
        plan.errors.append(RowError(1, "", "The file has a header but no lines."))
    _match(session, lines)
    _flag_duplicates(session, lines, set(separate))
    for line in lines:
        if line.duplicate and not line.separate:
            plan.duplicates.append(line)
        else:
            (plan.unmatched if line.account is None else plan.matched).append(line)
    _note_credit(session, plan.matched)
    return plan


def _read_line(number: int, values: dict[str, str], columns: dict[str, str], errors: list[RowError]):
    problems = len(errors)
    try:
        paid_on = parse_statement_date(values.get(columns["date"], ""))
        if paid_on > today():
            errors.append(RowError(number, "date", f"{paid_on:%-d %b %Y} is in the future."))
    except ValueError as error:
        errors.append(RowError(number, "date", str(error)))
    try:
        amount = parse_amount(values.get(columns["amount"], ""))
    except ValueError as error:
        errors.append(RowError(number, "amount", str(error)))
    reference = " ".join(" ".join(values.get(name, "") for name in columns["reference"].split(",")).split())[:200]
    if len(errors) > problems:
        return None
    return StatementLine(number, paid_on, amount, reference, fingerprint(paid_on, amount, reference))


def _match(session: Session, lines: list[StatementLine]) -> None:
    """Find each line's account from the account references and invoice numbers in its reference."""
    found = [(line, {f"A{n}" for n in ACCOUNT_PATTERN.findall(line.reference.upper())},
              {f"INV-{n}" for n in INVOICE_PATTERN.findall(line.reference.upper())}) for line in lines]
    references = set().union(*(refs for _, refs, _ in found)) if found else set()
    numbers = set().union(*(nums for _, _, nums in found)) if found else set()
    accounts = {a.reference: a for a in session.scalars(
        select(PayerAccount).where(PayerAccount.reference.in_(references)))} if references else {}
    invoices = {i.number: i for i in session.scalars(
        select(LedgerEntry).where(LedgerEntry.number.in_(numbers), LedgerEntry.kind == EntryKind.INVOICE))
    } if numbers else {}
    for line, refs, nums in found:
        if not refs and not nums:
            line.reason = "No account reference (like A00012) or invoice number (like INV-000034) in the reference."
            continue
        unknown = sorted(r for r in refs if r not in accounts) + sorted(n for n in nums if n not in invoices)
        if unknown:
            line.reason = f"No account or invoice {', '.join(unknown)}."
            continue
        holders = {accounts[r].id: accounts[r] for r in refs} | {invoices[n].account_id: invoices[n].account
                                                                   for n in nums}
        if len(holders) > 1:
            named = ", ".join(sorted(a.reference for a in holders.values()))
            line.reason = f"It names more than one account ({named}); record it by hand."
            continue
        line.account = next(iter(holders.values()))
        line.invoice = invoices[sorted(nums)[0]] if len(nums) == 1 else None


def _flag_duplicates(session: Session, lines: list[StatementLine], separate: set[int]) -> None:
    """Flag a line imported before or the same as an earlier line of the file; import the ones in
    ``separate`` (on a known account) as payments of their own, each with an occurrence not yet taken."""
    alike: dict[str, list[StatementLine]] = defaultdict(list)
    for line in lines:
        same = alike[line.fingerprint]
        same.append(line)
        if len(same) > 1:  # the second identical payment of the file is told apart from the first
            line.fingerprint = fingerprint(line.paid_on, line.amount, line.reference, len(same))
    before = _imported(session, [line.fingerprint for line in lines])
    for same in alike.values():
        for line in same:
            earlier = before.get(line.fingerprint)
            if earlier is not None:
                line.duplicate = (f"Already imported on {earlier.bank_import.imported_at:%-d %b %Y} "
                                  f"({earlier.bank_import.filename or 'a statement'}, line {earlier.line}).")
            elif line is not same[0]:
                line.duplicate = f"The same as line {same[0].line} (date, amount and reference)."
        chosen = [line for line in same if line.may_import_separately and line.line in separate]
        if chosen:
            _take_free_occurrences(session, chosen, taken={line.fingerprint for line in same if not line.duplicate})


def _imported(session: Session, prints: list[str]) -> dict[str, BankLine]:
    found = {}
    for chunk in range(0, len(prints), 500):
        for bank_line in session.scalars(select(BankLine).where(BankLine.fingerprint.in_(prints[chunk:chunk + 500]))):
            found[bank_line.fingerprint] = bank_line
    return found


def _take_free_occurrences(session: Session, chosen: list[StatementLine], taken: set[str]) -> None:
    occurrence = 1
    for line in chosen:
        while True:
            candidate = fingerprint(line.paid_on, line.amount, line.reference, occurrence)
            occurrence += 1
            if candidate not in taken and not _imported(session, [candidate]):
                break
        taken.add(candidate)
        line.fingerprint, line.separate = candidate, True


def _note_credit(session: Session, matched: list[StatementLine]) -> None:
    """Note on each line what it pays beyond what its account owes by then (it becomes credit)."""
    owed = balances(session, {line.account.id: line.account for line in matched}.values())
    for line in matched:
        left = owed[line.account.id]
        line.credit = max(ZERO, min(line.amount, line.amount - left))
        owed[line.account.id] = left - line.amount


def apply_bank_import(session: Session, actor, plan: BankPlan, filename: str = "") -> BankImport:
    """Record every matched line as a bank transfer; any failure raises and the caller rolls back the lot."""
    if plan.imported_before is not None:
        raise AlreadyImported(f"This file was imported on {plan.imported_before.imported_at:%-d %b %Y}; "
                              "nothing was imported again.")
    if plan.errors:
        raise InvalidInput("The file has errors; nothing was imported.")
    if not plan.matched:
        raise InvalidInput("Every line that matched an account is a duplicate, and none was ticked to import as "
                           "a payment of its own; nothing was imported." if plan.duplicates else
                           "No line of the file matched an account; nothing was imported.")
    bank_import = BankImport(file_hash=plan.file_hash, filename=filename.strip()[:200], payments=len(plan.matched),
                             total=plan.total, imported_by=actor)
    try:
        # Every account first, in one order: two imports of overlapping statements then take turns
        # (lines in common share their accounts) instead of deadlocking, and the second meets the first's lines.
        _lock_accounts(session, *(line.account for line in plan.matched))
        session.add(bank_import)
        session.flush()
        for line in plan.matched:
            posted = record_payment(session, actor, line.account, line.amount, PaymentMethod.BANK_TRANSFER,
                                    on=line.paid_on, reference=line.reference,
                                    invoices=[line.invoice] if line.invoice is not None else None)
            session.add(BankLine(bank_import=bank_import, line=line.line, fingerprint=line.fingerprint,
                                 paid_on=line.paid_on, amount=line.amount, reference=line.reference,
                                 payment=posted.entry))
        session.flush()
    except IntegrityError as error:  # another import of the same file or line got there first
        if "file_hash" in str(error.orig):
            raise AlreadyImported("Someone else imported this statement a moment ago; nothing was imported "
                                  "again.") from None
        raise AlreadyImported("Some of these statement lines were imported from another statement a moment ago; "
                              "nothing was imported. Check the statement again to see which.") from None
    record(session, actor, "bank.imported", bank_import,
           f"Imported {len(plan.matched)} bank payments, £{plan.total:,.2f}"
           + (f" from {bank_import.filename}" if bank_import.filename else ""),
           {"payments": len(plan.matched), "total": plan.total, "unmatched": len(plan.unmatched),
            "duplicates": len(plan.duplicates),
            "separate_lines": [line.line for line in plan.matched if line.separate]})
    return bank_import
