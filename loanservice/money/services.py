"""The money rules: payer accounts, numbering, the termly invoice run, payments, credit notes,
refunds, write-offs, balances and aged debt. Session first, flush, never commit.

Every change to an account takes the account's row lock first (the invoice run takes the invoice
numbers' lock, which orders runs), so two people paying one account take turns.
"""
import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload

from ..audit.services import record
from ..borrowers.models import Family, OtherBorrower, Pupil, RemissionCategory
from ..errors import InvalidInput, LoanServiceError, NotFound
from ..inventory.csvio import spreadsheet_cell
from ..inventory.models import Instrument, InstrumentType
from ..inventory.services import escape_like
from ..loans.models import AcademicTerm, ChargeStatus, Loan, LoanCharge
from ..loans.pricing import raise_term_charges
from ..schools.models import School
from ..signals import borrowing, loan_lost
from ..timeutil import today
from .models import (
    Allocation,
    EntryKind,
    InvoiceLine,
    LedgerEntry,
    LineKind,
    NumberSequence,
    PayerAccount,
    PaymentMethod,
)

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
MOST = Decimal("99999999.99")  # what Numeric(10, 2) holds
NUMBER_FORMATS = {"invoice": "INV-{:06d}", "credit_note": "CN-{:06d}", "account": "A{:05d}"}
AGE_BANDS = ("current", "30", "60", "90+")


class MoneyError(LoanServiceError):
    """A money rule refused the change."""


class AlreadyInvoiced(MoneyError):
    status_code = 409


# ---------------------------------------------------------------- numbers and locks


def take_numbers(session: Session, name: str, count: int = 1) -> list[str]:
    """The next ``count`` numbers of a numbered document, formatted.

    The UPDATE of the sequence's row (made on first use) holds the row lock until commit, so concurrent runs take
    turns, and a rolled-back transaction gives its numbers back: no gaps, no duplicates.
    """
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    session.execute(insert(NumberSequence).values(name=name, next_value=1).on_conflict_do_nothing())
    last = session.execute(
        update(NumberSequence).where(NumberSequence.name == name)
        .values(next_value=NumberSequence.next_value + count).returning(NumberSequence.next_value)
        .execution_options(synchronize_session=False)).scalar_one()
    return [NUMBER_FORMATS[name].format(n) for n in range(last - count, last)]


def _lock_accounts(session: Session, *accounts: PayerAccount) -> None:
    ids = sorted({account.id for account in accounts})
    if ids:
        session.execute(select(PayerAccount.id).where(PayerAccount.id.in_(ids)).order_by(PayerAccount.id)
                        .with_for_update())


# ---------------------------------------------------------------- accounts


def payer_of(borrower) -> Family | School | OtherBorrower | None:
    """Who pays for a loan to ``borrower``: a pupil's family, the family, the school, the borrower."""
    if isinstance(borrower, Pupil):
        return borrower.family
    return borrower


def _holder_column(holder):
    return {Family: PayerAccount.family_id, School: PayerAccount.school_id,
            OtherBorrower: PayerAccount.other_borrower_id}[type(holder)]


def account_of(session: Session, holder) -> PayerAccount | None:
    """The account of a family, school or other borrower, if it has one."""
    if holder is None:
        return None
    return session.scalar(select(PayerAccount).where(_holder_column(holder) == holder.id))


def open_account(session: Session, holder) -> PayerAccount:
    """The holder's account, opened (with its reference) the first time money is asked of them."""
    account = account_of(session, holder)
    if account is None:
        account = _open_accounts(session, [holder])[holder_key(holder)]
    return account


def holder_key(holder) -> tuple[str, int]:
    return type(holder).__name__, holder.id


def _open_accounts(session: Session, holders: Iterable) -> dict[tuple[str, int], PayerAccount]:
    """Accounts for many holders at once (one query each kind; new ones numbered together)."""
    holders = {holder_key(h): h for h in holders}
    found: dict[tuple[str, int], PayerAccount] = {}
    for kind, column in (("Family", PayerAccount.family_id), ("School", PayerAccount.school_id),
                         ("OtherBorrower", PayerAccount.other_borrower_id)):
        ids = [key[1] for key in holders if key[0] == kind]
        for chunk in range(0, len(ids), 500):
            for account in session.scalars(select(PayerAccount).where(column.in_(ids[chunk:chunk + 500]))):
                found[(kind, getattr(account, column.key))] = account
    missing = [key for key in holders if key not in found]
    if missing:
        references = take_numbers(session, "account", len(missing))
        for key, reference in zip(missing, references, strict=True):
            holder = holders[key]
            account = PayerAccount(reference=reference, **{_holder_column(holder).key: holder.id})
            session.add(account)
            found[key] = account
        session.flush()
    return found


def _account_ids(session: Session, keys: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """The account id of each holder key (``holder_key``), opening the missing accounts in bulk, numbered in order."""
    columns = {"Family": PayerAccount.family_id, "School": PayerAccount.school_id,
               "OtherBorrower": PayerAccount.other_borrower_id}
    found: dict[tuple[str, int], int] = {}

    def look_up(wanted):
        for kind, column in columns.items():
            ids = {key[1] for key in wanted if key[0] == kind}
            if len(ids) > 200:  # one pass over the accounts of that kind beats thousands of bound ids
                rows = session.execute(select(column, PayerAccount.id).where(column.is_not(None)))
                found.update(((kind, h), a) for h, a in rows if h in ids)
            elif ids:
                found.update(((kind, h), a) for h, a in session.execute(
                    select(column, PayerAccount.id).where(column.in_(list(ids)))))

    look_up(keys)
    missing = [key for key in keys if key not in found]
    if missing:
        references = take_numbers(session, "account", len(missing))
        rows = [{"reference": reference, "family_id": None, "school_id": None, "other_borrower_id": None,
                 columns[kind].key: holder_id}
                for (kind, holder_id), reference in zip(missing, references, strict=True)]
        for chunk in range(0, len(rows), 1000):
            session.execute(insert(PayerAccount.__table__), rows[chunk:chunk + 1000])
        look_up(missing)
    return found


def set_payer(session: Session, actor, account: PayerAccount, *, name: str, email: str = "",
              address: str = "") -> PayerAccount:
    """Name a payer who is not the hirer (a carer, a foster agency, the local authority), or clear it."""
    name, email, address = name.strip(), email.strip(), address.strip()
    if not name and (email or address):
        raise InvalidInput("Give the payer's name, or clear all three to invoice the hirer.", field="name")
    if name and not (email or address):
        raise InvalidInput("Give the payer's email or postal address, so invoices can reach them.", field="email")
    account.payer_name, account.payer_email, account.payer_address = name, email, address
    record(session, actor, "account.payer", account, f"Invoices for {account.reference} go to {account.name}",
           {"payer_named": bool(name)})
    session.flush()
    return account


# ---------------------------------------------------------------- balances


def balance(session: Session, account: PayerAccount) -> Decimal:
    """What the account owes (positive) or holds in credit (negative): the sum of its entries."""
    return session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), ZERO))
                          .where(LedgerEntry.account_id == account.id)) or ZERO


def _allocated(column):
    return (select(func.coalesce(func.sum(Allocation.amount), ZERO)).where(column == LedgerEntry.id)
            .correlate(LedgerEntry).scalar_subquery())


def open_debits(session: Session, account: PayerAccount) -> list[tuple[LedgerEntry, Decimal]]:
    """The account's invoices and refunds not yet settled, oldest first, with what is left of each."""
    left = LedgerEntry.amount - _allocated(Allocation.debit_id)
    rows = session.execute(select(LedgerEntry, left).where(LedgerEntry.account_id == account.id,
                                                           LedgerEntry.amount > 0, left > 0)
                           .order_by(LedgerEntry.posted_on, LedgerEntry.id))
    return [(entry, Decimal(amount)) for entry, amount in rows]


def open_credits(session: Session, account: PayerAccount) -> list[tuple[LedgerEntry, Decimal]]:
    """The account's payments, credit notes and write-offs not yet set against a debit, oldest first."""
    left = -LedgerEntry.amount - _allocated(Allocation.credit_id)
    rows = session.execute(select(LedgerEntry, left).where(LedgerEntry.account_id == account.id,
                                                           LedgerEntry.amount < 0, left > 0)
                           .order_by(LedgerEntry.posted_on, LedgerEntry.id))
    return [(entry, Decimal(amount)) for entry, amount in rows]


def invoice_left(session: Session, invoice: LedgerEntry) -> Decimal:
    """What is still owed on one invoice."""
    paid = session.scalar(select(func.coalesce(func.sum(Allocation.amount), ZERO))
                          .where(Allocation.debit_id == invoice.id)) or ZERO
    return invoice.amount - paid


def _allocate(session: Session, credit: LedgerEntry, debit: LedgerEntry, amount: Decimal) -> None:
    if amount > 0:
        session.add(Allocation(credit_id=credit.id, debit_id=debit.id, amount=amount))


def _settle(session: Session, account: PayerAccount) -> None:
    """Set the account's unallocated credits against its open debits, oldest against oldest."""
    session.flush()
    debits = open_debits(session, account)
    credits = open_credits(session, account)
    d = c = 0
    while d < len(debits) and c < len(credits):
        (debit, owed), (credit, spare) = debits[d], credits[c]
        amount = min(owed, spare)
        _allocate(session, credit, debit, amount)
        debits[d], credits[c] = (debit, owed - amount), (credit, spare - amount)
        d += debits[d][1] == 0
        c += credits[c][1] == 0
    session.flush()


def _money(value, field_name: str = "amount") -> Decimal:
    try:
        amount = Decimal(str(value)).quantize(CENT)
    except (ArithmeticError, ValueError):
        raise InvalidInput("Give an amount in pounds and pence, e.g. 12.50.", field=field_name) from None
    if amount <= 0:
        raise InvalidInput("The amount must be more than nothing.", field=field_name)
    if amount > MOST:
        raise InvalidInput("That amount is larger than any the hub handles.", field=field_name)
    return amount


# ---------------------------------------------------------------- the invoice run


@dataclass
class InvoiceRun:
    """What an invoice run did (or, before commit of a dry run, would do)."""

    term: AcademicTerm
    numbers: list[str] = field(default_factory=list)  # the invoices issued, in order
    total: Decimal = ZERO
    remission: Decimal = ZERO
    no_payer: list[str] = field(default_factory=list)  # charges with nobody to invoice (a pupil with no family)
    session: Session | None = field(default=None, repr=False)

    @property
    def count(self) -> int:
        return len(self.numbers)

    @cached_property
    def invoices(self) -> list[LedgerEntry]:
        """The invoices issued, loaded when asked for (a hub's run makes thousands)."""
        if not self.numbers:
            return []
        # The run held the numbers' lock, so its numbers are exactly this range.
        return list(self.session.scalars(select(LedgerEntry).where(
            LedgerEntry.kind == EntryKind.INVOICE, LedgerEntry.number >= self.numbers[0],
            LedgerEntry.number <= self.numbers[-1]).order_by(LedgerEntry.number)))


def run_invoices(session: Session, actor, term: AcademicTerm, config, *, on: date | None = None,
                 progress: Callable[[int], None] | None = None, total: Callable[[int], None] | None = None,
                 ) -> InvoiceRun:
    """Invoice every account for what its loans owe for ``term``: one invoice per account.

    Raises the term's charges first (a loan out in any part of the term owes the whole term; an
    overdue instrument still out is charged again). Each charge is invoiced once: a rerun invoices
    only charges raised since, and the database refuses a charge on two invoices. ``total`` is told
    how many invoices there will be and ``progress`` each one made. The caller commits, or rolls
    back for a dry run.
    """
    on = on or today()
    ahead = int(config.get("INVOICE_AHEAD_DAYS", 45))
    if (term.starts_on - on).days > ahead:
        opens = term.starts_on - timedelta(days=ahead)
        raise InvalidInput(f"{term.name} starts on {term.starts_on:%-d %b %Y}: its invoices can be run from "
                           f"{opens:%-d %b %Y}, {ahead} days before it starts.", field="term")
    take_numbers(session, "invoice", 0)  # the run's lock: a second run waits, then finds nothing new
    raise_term_charges(session, actor, term, on=on,
                       keep_invoicing_overdue=bool(config.get("INVOICE_OVERDUE_EVERY_TERM", True)))
    # Plain rows and bulk inserts, not ORM objects: a hub's run is thousands of invoices (bench/invoice_run.py).
    invoiced = select(InvoiceLine.id).where(InvoiceLine.charge_id == LoanCharge.id)
    charges = session.execute(
        select(LoanCharge.id, LoanCharge.loan_id, LoanCharge.amount, Loan.fee_per_term, Loan.remission_category,
               Loan.family_id, Loan.school_id, Loan.other_borrower_id, Loan.pupil_id, Pupil.family_id.label("pf"),
               Pupil.name.label("pupil_name"), Instrument.asset_tag, InstrumentType.name.label("type_name"))
        .join(Loan, LoanCharge.loan_id == Loan.id).join(Instrument, Loan.instrument_id == Instrument.id)
        .join(InstrumentType, Instrument.type_id == InstrumentType.id).outerjoin(Pupil, Loan.pupil_id == Pupil.id)
        .where(LoanCharge.term_id == term.id, LoanCharge.status == ChargeStatus.OWED, LoanCharge.amount > 0,
               ~invoiced.exists())
        .order_by(LoanCharge.id)).all()
    run = InvoiceRun(term=term, session=session)
    by_holder: dict[tuple[str, int], list] = defaultdict(list)
    for charge in charges:
        key = (("Family", charge.pf) if charge.pupil_id is not None and charge.pf is not None
               else None if charge.pupil_id is not None
               else ("Family", charge.family_id) if charge.family_id is not None
               else ("School", charge.school_id) if charge.school_id is not None
               else ("OtherBorrower", charge.other_borrower_id))
        if key is None:
            run.no_payer.append(f"{charge.asset_tag} ({charge.pupil_name}): no family to invoice")
            continue
        by_holder[key].append(charge)
    if not by_holder:
        return run
    if total is not None:
        total(len(by_holder))
    account_ids = _account_ids(session, list(by_holder))
    numbers = take_numbers(session, "invoice", len(by_holder))
    due_on = on + timedelta(days=int(config.get("INVOICE_DUE_DAYS", 30)))
    ordered = sorted(by_holder, key=account_ids.__getitem__)
    entries, totals = [], {}
    for number, key in zip(numbers, ordered, strict=True):
        totals[number] = sum((charge.amount for charge in by_holder[key]), ZERO)
        entries.append(dict(account_id=account_ids[key], kind=EntryKind.INVOICE.value, number=number, posted_on=on,
                            due_on=due_on, amount=totals[number], term_id=term.id,
                            created_by_id=actor.id if actor is not None else None))
    for chunk in range(0, len(entries), 1000):
        session.execute(insert(LedgerEntry.__table__), entries[chunk:chunk + 1000])
    invoice_ids = dict(session.execute(select(LedgerEntry.number, LedgerEntry.id).where(
        LedgerEntry.kind == EntryKind.INVOICE, LedgerEntry.number >= numbers[0], LedgerEntry.number <= numbers[-1])
    ).all())
    lines = []
    for number, key in zip(numbers, ordered, strict=True):
        for charge in by_holder[key]:
            who = f" for {charge.pupil_name}" if charge.pupil_id is not None else ""
            lines.append(dict(invoice_id=invoice_ids[number], kind=LineKind.HIRE.value, charge_id=charge.id,
                              loan_id=charge.loan_id, full_fee=charge.fee_per_term, amount=charge.amount,
                              remission_category=charge.remission_category,
                              description=f"{charge.type_name} {charge.asset_tag}{who}, {term.name}"[:300]))
            run.remission += charge.fee_per_term - charge.amount
        run.total += totals[number]
        if progress is not None:
            progress(1)
    for chunk in range(0, len(lines), 1000):
        session.execute(insert(InvoiceLine.__table__), lines[chunk:chunk + 1000])
    run.numbers = numbers
    this_run = select(LedgerEntry.account_id).where(
        LedgerEntry.kind == EntryKind.INVOICE, LedgerEntry.number >= numbers[0], LedgerEntry.number <= numbers[-1])
    with_credit = session.scalars(select(PayerAccount).where(
        PayerAccount.id.in_(this_run),
        select(LedgerEntry.id).where(LedgerEntry.account_id == PayerAccount.id, LedgerEntry.amount < 0).exists()))
    for account in with_credit:
        _settle(session, account)
    record(session, actor, "invoices.run", term,
           f"Invoiced {run.count} accounts £{run.total:,.2f} for {term.name}",
           {"invoices": run.count, "total": run.total, "first": numbers[0], "last": numbers[-1]})
    session.flush()
    return run


@loan_lost.connect
def _invoice_the_loss(loan: Loan, *, session: Session, actor, amount: Decimal | None) -> None:
    invoice_loss(session, actor, loan, amount)


def invoice_loss(session: Session, actor, loan: Loan, amount: Decimal | None,
                 on: date | None = None) -> LedgerEntry | None:
    """Invoice the hirer for the replacement of an instrument lost or stolen on ``loan``."""
    holder = payer_of(loan.borrower)
    if holder is None or amount is None or amount <= 0:
        return None
    on = on or today()
    number = take_numbers(session, "invoice")[0]
    account = open_account(session, holder)
    _lock_accounts(session, account)
    instrument = loan.instrument
    what = f"Replacement of {instrument.type.name} {instrument.asset_tag}, lost or stolen"
    line = InvoiceLine(kind=LineKind.LOSS, loan_id=loan.id, full_fee=amount, amount=amount, description=what[:300])
    invoice = LedgerEntry(account=account, kind=EntryKind.INVOICE, number=number, posted_on=on,
                          due_on=on + timedelta(days=30), amount=amount, created_by=actor, lines=[line])
    session.add(invoice)
    _settle(session, account)
    record(session, actor, "invoice.loss", invoice, f"{number}: replacement of {instrument.asset_tag}, £{amount:,.2f}",
           {"amount": amount}, instrument=instrument)
    return invoice


# ---------------------------------------------------------------- payments and corrections


@dataclass
class Posted:
    entry: LedgerEntry
    credit: Decimal  # what the account holds in credit afterwards


def record_payment(session: Session, actor, account: PayerAccount, amount, method: str, *,
                   on: date | None = None, reference: str = "", note: str = "",
                   invoices: list[LedgerEntry] | None = None) -> Posted:
    """Record money received; it settles the invoices chosen, then the oldest; any more is credit."""
    amount = _money(amount)
    try:
        method = PaymentMethod(method)
    except ValueError:
        raise InvalidInput("Choose how it was paid.", field="method") from None
    on = on or today()
    if on > today():
        raise InvalidInput("A payment cannot be dated in the future.", field="on")
    _lock_accounts(session, account)
    payment = LedgerEntry(account=account, kind=EntryKind.PAYMENT, posted_on=on, amount=-amount, method=method,
                          reference=reference.strip()[:100], note=note.strip(), created_by=actor)
    session.add(payment)
    session.flush()
    spare = amount
    for invoice in invoices or []:
        if invoice.account_id != account.id or invoice.kind != EntryKind.INVOICE:
            raise InvalidInput("Choose invoices of this account.", field="invoices")
        part = min(spare, invoice_left(session, invoice))
        _allocate(session, payment, invoice, part)
        spare -= part
    _settle(session, account)
    record(session, actor, "payment.recorded", payment,
           f"£{amount:,.2f} by {method.label.lower()} from {account.reference}",
           {"amount": amount, "method": method.value, "reference": payment.reference})
    return Posted(payment, _credit(session, account))


def _credit(session: Session, account: PayerAccount) -> Decimal:
    return max(ZERO, -balance(session, account))


def credit_invoice(session: Session, actor, invoice: LedgerEntry, amount, reason: str,
                   on: date | None = None) -> Posted:
    """Take (part of) an invoice back with a numbered credit note; the invoice itself never changes."""
    if invoice.kind != EntryKind.INVOICE:
        raise InvalidInput("Only an invoice can be credited.")
    amount = _money(amount)
    if not reason.strip():
        raise InvalidInput("Say why the invoice is credited.", field="reason")
    _lock_accounts(session, invoice.account)
    most = creditable(session, invoice)
    if amount > most:
        raise InvalidInput(f"A credit note cannot be larger than what is left of {invoice.number} to credit "
                           f"(£{most:,.2f}).", field="amount")
    number = take_numbers(session, "credit_note")[0]
    note = LedgerEntry(account=invoice.account, kind=EntryKind.CREDIT_NOTE, number=number, posted_on=on or today(),
                       amount=-amount, against=invoice, note=reason.strip(), created_by=actor)
    session.add(note)
    session.flush()
    _allocate(session, note, invoice, min(amount, invoice_left(session, invoice)))
    _settle(session, invoice.account)
    record(session, actor, "invoice.credited", note, f"{note.number}: £{amount:,.2f} off {invoice.number}",
           {"amount": amount, "reason": reason.strip()})
    return Posted(note, _credit(session, invoice.account))


def write_off(session: Session, actor, invoice: LedgerEntry, reason: str, on: date | None = None) -> LedgerEntry:
    """Give up on what is left of an invoice (a manager's decision, recorded with the reason)."""
    if not reason.strip():
        raise InvalidInput("Say why the debt is written off.", field="reason")
    _lock_accounts(session, invoice.account)
    left = invoice_left(session, invoice)
    if left <= 0:
        raise MoneyError(f"Nothing is owed on {invoice.number}.")
    entry = LedgerEntry(account=invoice.account, kind=EntryKind.WRITE_OFF, posted_on=on or today(), amount=-left,
                        against=invoice, note=reason.strip(), created_by=actor)
    session.add(entry)
    session.flush()
    _allocate(session, entry, invoice, left)
    record(session, actor, "invoice.written_off", entry, f"£{left:,.2f} of {invoice.number} written off",
           {"amount": left, "reason": reason.strip()})
    session.flush()
    return entry


def refund(session: Session, actor, account: PayerAccount, amount, method: str, reason: str,
           on: date | None = None) -> LedgerEntry:
    """Pay back (part of) an account's credit."""
    amount = _money(amount)
    try:
        method = PaymentMethod(method)
    except ValueError:
        raise InvalidInput("Choose how the money is paid back.", field="method") from None
    _lock_accounts(session, account)
    credit = _credit(session, account)
    if amount > credit:
        raise InvalidInput(f"{account.reference} has £{credit:,.2f} in credit: no more can be refunded.",
                           field="amount")
    entry = LedgerEntry(account=account, kind=EntryKind.REFUND, posted_on=on or today(), amount=amount, method=method,
                        note=reason.strip(), created_by=actor)
    session.add(entry)
    _settle(session, account)
    record(session, actor, "refund.recorded", entry, f"£{amount:,.2f} refunded to {account.reference}",
           {"amount": amount, "method": method.value})
    return entry


# ---------------------------------------------------------------- statements and debt


@dataclass
class StatementLine:
    entry: LedgerEntry
    running: Decimal


def statement(session: Session, account: PayerAccount) -> list[StatementLine]:
    """Every entry of the account, oldest first, with the balance after each."""
    running = ZERO
    lines = []
    for entry in session.scalars(select(LedgerEntry).where(LedgerEntry.account_id == account.id)
                                 .order_by(LedgerEntry.posted_on, LedgerEntry.id)):
        running += entry.amount
        lines.append(StatementLine(entry, running))
    return lines


def age_band(invoice_date: date, on: date) -> str:
    days = (on - invoice_date).days
    return "90+" if days >= 90 else "60" if days >= 60 else "30" if days >= 30 else "current"


@dataclass
class AgedDebt:
    account: PayerAccount
    bands: dict[str, Decimal]

    @property
    def total(self) -> Decimal:
        return sum(self.bands.values(), ZERO)


def aged_debt(session: Session, on: date | None = None, account: PayerAccount | None = None) -> list[AgedDebt]:
    """What each account owes, by the age of its invoices: current, 30, 60 and 90+ days."""
    on = on or today()
    left = LedgerEntry.amount - _allocated(Allocation.debit_id)
    query = (select(LedgerEntry.account_id, LedgerEntry.posted_on, left)
             .where(LedgerEntry.amount > 0, left > 0, LedgerEntry.posted_on <= on))
    if account is not None:
        query = query.where(LedgerEntry.account_id == account.id)
    debts: dict[int, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(AGE_BANDS, ZERO))
    for account_id, posted_on, amount in session.execute(query):
        debts[account_id][age_band(posted_on, on)] += Decimal(amount)
    accounts = {a.id: a for a in session.scalars(select(PayerAccount).where(PayerAccount.id.in_(list(debts))))}
    rows = [AgedDebt(accounts[account_id], bands) for account_id, bands in debts.items()]
    return sorted(rows, key=lambda row: (-row.total, row.account.reference))


def debt_block(session: Session, holder, config, on: date | None = None) -> str | None:
    """Why new loans and reservations are refused for ``holder`` under the hub's debt setting, if they are."""
    days, most = config.get("DEBT_BLOCK_DAYS"), config.get("DEBT_BLOCK_AMOUNT")
    if days is None and most is None:
        return None
    account = account_of(session, holder)
    if account is None:
        return None
    on = on or today()
    # Only what is past its due date counts: an invoice issued today is not a debt yet. Each
    # invoice by its own lateness, not its aged-debt band: 50 days late is over a 45-day limit.
    late = [(entry, left) for entry, left in open_debits(session, account) if (entry.due_on or entry.posted_on) < on]
    overdue = sum((left for entry, left in late
                   if days is not None and (on - (entry.due_on or entry.posted_on)).days >= int(days)), ZERO)
    if overdue > 0:
        return (f"{account.name} owes £{overdue:,.2f} on invoices more than {days} days past their due date "
                f"(account {account.reference}).")
    owed = sum((left for _, left in late), ZERO)
    if most is not None and owed > Decimal(str(most)):
        return (f"{account.name} owes £{owed:,.2f} past its due date, more than the hub's limit of "
                f"£{Decimal(str(most)):,.2f} (account {account.reference}).")
    return None


class InDebt(MoneyError):
    """New loans and reservations are refused: the account is in debt beyond the hub's limit."""

    status_code = 409


@borrowing.connect
def _refuse_a_debtor(borrower, *, session: Session, config, actor=None, override: bool = False) -> None:
    """Refuse a loan or reservation for an account in debt, unless staff override it (recorded with what is owed)."""
    holder = payer_of(borrower)
    reason = debt_block(session, holder, config)
    if reason is None:
        return
    if not override:
        raise InDebt(f"{reason} No new loans or reservations until it is paid.", field="override_debt")
    account = account_of(session, holder)
    owed = balance(session, account)
    record(session, actor, "account.debt_overridden", account,
           f"Lent to {borrower} despite the debt: {account.reference} owes £{owed:,.2f}",
           {"owed": owed, "reason": reason, "borrower": str(borrower)})


def find_account(session: Session, reference: str) -> PayerAccount:
    account = session.scalar(select(PayerAccount).where(PayerAccount.reference == reference.strip().upper()))
    if account is None:
        raise NotFound(f"No account with the reference {reference.strip()!r}.")
    return account


def term_by_name(session: Session, name: str) -> AcademicTerm:
    term = session.scalar(select(AcademicTerm).where(AcademicTerm.name == name.strip()))
    if term is None:
        names = ", ".join(session.scalars(select(AcademicTerm.name).order_by(AcademicTerm.starts_on)))
        raise NotFound(f"No term called {name.strip()!r} in the calendar (terms: {names or 'none yet'}).")
    return term


def remission_given(session: Session) -> list[tuple[str, str, Decimal]]:
    """What the hub's remission policy cost, per term and category: the full fee minus what was charged."""
    rows = session.execute(
        select(AcademicTerm.name, Loan.remission_category, func.sum(Loan.fee_per_term - LoanCharge.amount))
        .select_from(LoanCharge).join(LoanCharge.loan).join(LoanCharge.term)
        .where(Loan.remission_category != RemissionCategory.NONE)
        .group_by(AcademicTerm.starts_on, AcademicTerm.name, Loan.remission_category)
        .order_by(AcademicTerm.starts_on, Loan.remission_category))
    return [(term, category, Decimal(amount)) for term, category, amount in rows]


# ---------------------------------------------------------------- what the money pages show


HOLDER_KINDS = {"family": "Families", "school": "Schools", "other": "Other borrowers"}
_KIND_COLUMNS = {"family": PayerAccount.family_id, "school": PayerAccount.school_id,
                 "other": PayerAccount.other_borrower_id}


def accounts_query(q: str = ""):
    """The select of accounts whose reference, name (hirer's or payer's) or email contains ``q``, by reference."""
    query = (select(PayerAccount)
             .outerjoin(Family, PayerAccount.family_id == Family.id)
             .outerjoin(School, PayerAccount.school_id == School.id)
             .outerjoin(OtherBorrower, PayerAccount.other_borrower_id == OtherBorrower.id)
             .options(joinedload(PayerAccount.family), joinedload(PayerAccount.school),
                      joinedload(PayerAccount.other_borrower))
             .order_by(PayerAccount.reference))
    q = q.strip()
    if q:
        like = f"%{escape_like(q)}%"
        query = query.where(or_(*(column.ilike(like, escape="\\") for column in (
            PayerAccount.reference, PayerAccount.payer_name, PayerAccount.payer_email, Family.name, Family.email,
            School.name, School.contact_email, OtherBorrower.name, OtherBorrower.email))))
    return query


def balances(session: Session, accounts: Iterable[PayerAccount]) -> dict[int, Decimal]:
    """Each account's balance, in one query."""
    ids = [account.id for account in accounts]
    found = dict(session.execute(select(LedgerEntry.account_id, func.sum(LedgerEntry.amount))
                                 .where(LedgerEntry.account_id.in_(ids)).group_by(LedgerEntry.account_id)).all())
    return {account_id: Decimal(found.get(account_id) or ZERO) for account_id in ids}


def open_invoices(session: Session, account: PayerAccount) -> list[tuple[LedgerEntry, Decimal]]:
    """The account's invoices not yet settled, oldest first, with what is left of each."""
    return [(entry, left) for entry, left in open_debits(session, account) if entry.kind == EntryKind.INVOICE]


def invoices_of(session: Session, account: PayerAccount) -> list[tuple[LedgerEntry, Decimal]]:
    """Every invoice of the account, newest first, with what is left to pay on each."""
    left = LedgerEntry.amount - _allocated(Allocation.debit_id)
    rows = session.execute(select(LedgerEntry, left).where(LedgerEntry.account_id == account.id,
                                                           LedgerEntry.kind == EntryKind.INVOICE)
                           .order_by(LedgerEntry.posted_on.desc(), LedgerEntry.id.desc()))
    return [(entry, Decimal(amount)) for entry, amount in rows]


def settled_by(session: Session, invoice: LedgerEntry) -> list[tuple[LedgerEntry, Decimal]]:
    """The payments, credit notes and write-offs set against an invoice, in order, with the part of each."""
    rows = session.execute(select(LedgerEntry, Allocation.amount)
                           .join(Allocation, Allocation.credit_id == LedgerEntry.id)
                           .where(Allocation.debit_id == invoice.id).order_by(Allocation.id))
    return [(entry, Decimal(amount)) for entry, amount in rows]


def creditable(session: Session, invoice: LedgerEntry) -> Decimal:
    """How much of an invoice credit notes may still take back."""
    credited = -(session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), ZERO)).where(
        LedgerEntry.against_id == invoice.id, LedgerEntry.kind == EntryKind.CREDIT_NOTE)) or ZERO)
    return invoice.amount - credited


def credit_held(session: Session, account: PayerAccount) -> Decimal:
    """What the account holds in credit (nothing when it owes)."""
    return _credit(session, account)


def aged_debt_report(session: Session, on: date | None = None, *, kind: str = "",
                     older_than: int | None = None) -> list[AgedDebt]:
    """The aged-debt list, of one kind of holder (``HOLDER_KINDS``) and owing on invoices over ``older_than`` days."""
    rows = aged_debt(session, on)
    if kind in _KIND_COLUMNS:
        rows = [row for row in rows if getattr(row.account, _KIND_COLUMNS[kind].key) is not None]
    if older_than:
        rows = [row for row in rows if any(amount > 0 for band, amount in row.bands.items()
                                           if band != "current" and int(band.rstrip("+")) >= older_than)]
    return rows


AGED_DEBT_COLUMNS = ["Reference", "Account", "Email", "Current", "30 days", "60 days", "90+ days", "Total"]


def export_aged_debt(rows: list[AgedDebt]) -> Iterator[str]:
    """The aged-debt list as CSV, a row at a time (text a spreadsheet would run as a formula neutralised)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for values in [AGED_DEBT_COLUMNS] + [
            [row.account.reference, row.account.name, row.account.email, *(row.bands[b] for b in AGE_BANDS), row.total]
            for row in rows]:
        writer.writerow([spreadsheet_cell(value) for value in values])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


@dataclass(frozen=True)
class HowToPay:
    """What a payer needs to pay by bank transfer: the hub's bank details and the reference to quote."""

    bank_lines: list[str]
    reference: str


def how_to_pay(config, account: PayerAccount) -> HowToPay:
    lines = [line.strip() for line in (config.get("HUB_BANK_DETAILS") or "").split("|") if line.strip()]
    return HowToPay(bank_lines=lines, reference=account.reference)


@dataclass
class HolderMoney:
    """What a family or school sees of its account: balance, invoices and how to pay."""

    account: PayerAccount
    balance: Decimal
    invoices: list[tuple[LedgerEntry, Decimal]]
    how_to_pay: HowToPay

    @property
    def owed(self) -> Decimal:
        return max(ZERO, self.balance)

    @property
    def credit(self) -> Decimal:
        return max(ZERO, -self.balance)


def holder_money(session: Session, holder, config) -> HolderMoney | None:
    """The account of a family or school as they see it, or None when nothing has been invoiced to them."""
    account = account_of(session, holder)
    if account is None:
        return None
    return HolderMoney(account, balance(session, account), invoices_of(session, account), how_to_pay(config, account))


def issue_invoices(session: Session, actor, term: AcademicTerm, config, *,
                   expected: tuple[int, Decimal] | None = None, progress: Callable[[int], None] | None = None,
                   total: Callable[[int], None] | None = None) -> InvoiceRun:
    """Run the invoices for ``term`` as previewed: refused when there is nothing new, or when the run
    would now differ from the ``expected`` (count, total) the person confirmed."""
    run = run_invoices(session, actor, term, config, progress=progress, total=total)
    if not run.invoices:
        raise AlreadyInvoiced(f"Nothing new to invoice for {term.name}: every charge of the term is on an invoice "
                              "already.")
    if expected is not None and (run.count, run.total) != expected:
        raise MoneyError(f"The figures changed since the preview: {run.count} invoices, £{run.total:,.2f} in all. "
                         "Check them and confirm again.")
    return run
