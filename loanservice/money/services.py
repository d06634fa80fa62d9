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
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import cached_property

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, joinedload, selectinload

from ..audit.services import record
from ..borrowers.models import Family, OtherBorrower, Pupil, RemissionCategory
from ..errors import InvalidInput, LoanServiceError, NotFound
from ..inventory.csvio import spreadsheet_cell
from ..inventory.models import Instrument, InstrumentType
from ..inventory.services import escape_like
from ..loans.models import AcademicTerm, ChargeStatus, Loan, LoanCharge, LoanStatus
from ..loans.pricing import raise_term_charges
from ..schools.models import School
from ..sets.models import ClassroomSet, SetLoan
from ..signals import borrowing, loan_lost
from ..timeutil import today, utcnow
from .models import (
    Allocation,
    DepositOutcome,
    DepositRelease,
    EntryKind,
    Instalment,
    InvoiceLine,
    LedgerEntry,
    LineKind,
    LoanDeposit,
    NumberSequence,
    PayerAccount,
    PaymentMethod,
    SetFeeBasis,
    SetHireCharge,
    SetHireFee,
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


@dataclass(frozen=True)
class BillingRules:
    """The hub's billing settings, as the invoice run reads them."""

    first_year_free: bool = False
    part_term_in_full: bool = True
    keep_invoicing_overdue: bool = True
    deposit_amount: Decimal = ZERO
    deposit_categories: frozenset[str] = frozenset()
    instalments_allowed: bool = False
    instalments: int = 1

    @classmethod
    def from_config(cls, config) -> "BillingRules":
        try:
            deposit = Decimal(str(config.get("DEPOSIT_AMOUNT") or "0")).quantize(CENT)
        except ArithmeticError:
            deposit = ZERO
        return cls(first_year_free=bool(config.get("FIRST_YEAR_FREE", False)),
                   part_term_in_full=bool(config.get("CHARGE_PART_TERM_IN_FULL", True)),
                   keep_invoicing_overdue=bool(config.get("KEEP_INVOICING_OVERDUE", True)),
                   deposit_amount=max(deposit, ZERO),
                   deposit_categories=frozenset(config.get("DEPOSIT_REMISSION_CATEGORIES") or ()),
                   instalments_allowed=bool(config.get("INSTALMENTS_ALLOWED", False)),
                   instalments=max(1, int(config.get("INSTALMENTS_PER_TERM") or 1)))

    def deposit_for(self, loan_deposit: Decimal, remission_category: str) -> Decimal:
        """The deposit a loan pays: its own (from its fee band) or the hub's; none for a remission category
        the hub excuses."""
        if remission_category != RemissionCategory.NONE and remission_category not in self.deposit_categories:
            return ZERO
        return loan_deposit if loan_deposit > 0 else self.deposit_amount


@dataclass
class _Line:
    """An invoice line the run is about to write."""

    kind: LineKind
    description: str
    full_fee: Decimal
    amount: Decimal
    loan_id: int | None = None
    charge_id: int | None = None
    remission_category: str = "none"
    link: int | None = None  # the loan of a deposit, the set loan of a set's hire


def _holder_of_loan(row) -> tuple[str, int] | None:
    """Who pays for a loan row (with its pupil's family as ``pf``): None for a pupil with no family."""
    if row.pupil_id is not None:
        return ("Family", row.pf) if row.pf is not None else None
    return (("Family", row.family_id) if row.family_id is not None
            else ("School", row.school_id) if row.school_id is not None
            else ("OtherBorrower", row.other_borrower_id))


def _loan_columns():
    return (Loan.family_id, Loan.school_id, Loan.other_borrower_id, Loan.pupil_id, Pupil.family_id.label("pf"),
            Pupil.name.label("pupil_name"), Instrument.asset_tag, InstrumentType.name.label("type_name"))


def first_year_ends(first_start: date) -> date:
    """The day a pupil's first year of hire ends (the anniversary of their first loan's start)."""
    try:
        return first_start.replace(year=first_start.year + 1)
    except ValueError:  # 29 February
        return first_start.replace(year=first_start.year + 1, day=28)


def part_of_term(term: AcademicTerm, started_on: date, closed_on: date | None) -> tuple[int, int]:
    """How many of the term's days a loan was out, and the term's days."""
    days = (term.ends_on - term.starts_on).days + 1
    first, last = max(started_on, term.starts_on), min(closed_on or term.ends_on, term.ends_on)
    return max(0, min(days, (last - first).days + 1)), days


def _hire_lines(session: Session, term: AcademicTerm, rules: BillingRules, run: "InvoiceRun"):
    """The term's charges not yet invoiced, as lines (first year free, part of a term), keyed by who pays."""
    invoiced = select(InvoiceLine.id).where(InvoiceLine.charge_id == LoanCharge.id)
    columns = [LoanCharge.id, LoanCharge.loan_id, LoanCharge.amount, Loan.fee_per_term, Loan.remission_category,
               Loan.started_on, Loan.closed_on, *_loan_columns()]
    if rules.first_year_free:
        earlier = aliased(Loan)
        columns.append(select(func.min(earlier.started_on)).where(
            earlier.pupil_id == Loan.pupil_id, earlier.status.notin_([LoanStatus.PENDING, LoanStatus.CANCELLED]))
            .correlate(Loan).scalar_subquery().label("first_start"))
    query = (select(*columns)
             .join(Loan, LoanCharge.loan_id == Loan.id).join(Instrument, Loan.instrument_id == Instrument.id)
             .join(InstrumentType, Instrument.type_id == InstrumentType.id).outerjoin(Pupil, Loan.pupil_id == Pupil.id)
             .where(LoanCharge.term_id == term.id, LoanCharge.status == ChargeStatus.OWED, LoanCharge.amount > 0,
                    ~invoiced.exists())
             .order_by(LoanCharge.id))
    if not rules.keep_invoicing_overdue:
        # An instrument out this term only because it was kept past its due date is not invoiced again.
        query = query.where(or_(Loan.due_on >= term.starts_on, Loan.closed_on.is_not(None)))
    free = []
    for charge in session.execute(query):
        key = _holder_of_loan(charge)
        if key is None:
            run.no_payer.append(f"{charge.asset_tag} ({charge.pupil_name}): no family to invoice")
            continue
        who = f" for {charge.pupil_name}" if charge.pupil_id is not None else ""
        description = f"{charge.type_name} {charge.asset_tag}{who}, {term.name}"
        amount = charge.amount
        if rules.first_year_free and charge.pupil_id is not None and charge.first_start is not None \
                and term.starts_on < first_year_ends(charge.first_start):
            amount = ZERO
            description += f": first year free (to {first_year_ends(charge.first_start):%-d %b %Y})"
            free.append(charge.id)
        elif not rules.part_term_in_full:
            out, days = part_of_term(term, charge.started_on, charge.closed_on)
            if out < days:
                amount = (charge.amount * out / days).quantize(CENT, rounding=ROUND_HALF_UP)
                description += f": part of the term, {out} of {days} days"
        yield key, _Line(LineKind.HIRE, description, charge.fee_per_term, amount, loan_id=charge.loan_id,
                         charge_id=charge.id, remission_category=charge.remission_category)
    for chunk in range(0, len(free), 1000):  # what the first year does not pay is waived, not owed
        session.execute(update(LoanCharge).where(LoanCharge.id.in_(free[chunk:chunk + 1000]))
                        .values(status=ChargeStatus.WAIVED, settled_on=term.starts_on)
                        .execution_options(synchronize_session=False))


def _deposit_lines(session: Session, term: AcademicTerm, rules: BillingRules, run: "InvoiceRun"):
    """A deposit line for each loan out in the term that has not been invoiced its deposit yet."""
    if rules.deposit_amount <= 0 and session.scalar(select(Loan.id).where(Loan.deposit > 0).limit(1)) is None:
        return
    has_deposit = select(LoanDeposit.id).where(LoanDeposit.loan_id == Loan.id)
    rows = session.execute(
        select(Loan.id, Loan.deposit, Loan.remission_category, *_loan_columns())
        .join(Instrument, Loan.instrument_id == Instrument.id)
        .join(InstrumentType, Instrument.type_id == InstrumentType.id).outerjoin(Pupil, Loan.pupil_id == Pupil.id)
        .where(Loan.status == LoanStatus.OPEN, Loan.closed_on.is_(None), Loan.set_loan_id.is_(None),
               Loan.started_on <= term.ends_on, ~has_deposit.exists())
        .order_by(Loan.id))
    for row in rows:
        amount = rules.deposit_for(row.deposit, row.remission_category)
        key = _holder_of_loan(row)
        if amount <= 0 or key is None:
            continue
        who = f" for {row.pupil_name}" if row.pupil_id is not None else ""
        yield key, _Line(LineKind.DEPOSIT, f"Refundable deposit: {row.type_name} {row.asset_tag}{who}", amount,
                         amount, loan_id=row.id, link=row.id)


def set_hire_amount(fee: SetHireFee, items: int) -> Decimal:
    return fee.fee if fee.basis is SetFeeBasis.PER_SET else fee.fee * items


def _set_hire_lines(session: Session, term: AcademicTerm):
    """A line for each classroom set a school holds in the term, at the set's hire fee, not yet invoiced."""
    done = select(SetHireCharge.id).where(SetHireCharge.set_loan_id == SetLoan.id, SetHireCharge.term_id == term.id)
    rows = session.execute(
        select(SetLoan, SetHireFee).join(SetHireFee, SetHireFee.set_id == SetLoan.set_id)
        .where(SetHireFee.fee > 0, SetLoan.started_on <= term.ends_on,
               or_(SetLoan.closed_on.is_(None), SetLoan.closed_on >= term.starts_on), ~done.exists())
        .options(joinedload(SetLoan.classroom_set)).order_by(SetLoan.id))
    for set_loan, fee in rows:
        amount = set_hire_amount(fee, set_loan.item_count)
        each = (f"{set_loan.item_count} instruments at £{fee.fee:,.2f} each" if fee.basis is SetFeeBasis.PER_INSTRUMENT
                else "the set")
        yield ("School", set_loan.school_id), _Line(
            LineKind.SET_HIRE, f"Classroom set {set_loan.classroom_set.name} ({each}), {term.name}", amount, amount,
            link=set_loan.id)


def _insert_linked_lines(session: Session, term: AcademicTerm, linked: list[tuple[dict, _Line, int]]) -> None:
    """Write the deposit and set-hire lines with the row that says they are invoiced (refused twice by the
    database: a loan has one deposit, a set loan one hire a term)."""
    if not linked:
        return
    ids = session.scalars(insert(InvoiceLine.__table__).returning(InvoiceLine.id, sort_by_parameter_order=True),
                          [row for row, _, _ in linked]).all()
    deposits = [dict(loan_id=line.link, account_id=account_id, line_id=line_id, amount=line.amount, created_at=utcnow())
                for line_id, (_, line, account_id) in zip(ids, linked, strict=True) if line.kind is LineKind.DEPOSIT]
    sets = [dict(set_loan_id=line.link, term_id=term.id, line_id=line_id, amount=line.amount)
            for line_id, (_, line, _) in zip(ids, linked, strict=True) if line.kind is LineKind.SET_HIRE]
    if deposits:
        session.execute(insert(LoanDeposit.__table__), deposits)
    if sets:
        session.execute(insert(SetHireCharge.__table__), sets)


def _plan_instalments(session: Session, rules: BillingRules, invoices: list[tuple[int, int, Decimal]],
                      first_due: date) -> None:
    """Monthly instalments for the run's invoices to accounts that pay that way (where the hub allows it)."""
    if not rules.instalments_allowed or rules.instalments < 2:
        return
    paying = set(session.scalars(select(PayerAccount.id).where(PayerAccount.pays_by_instalments.is_(True))))
    rows = [dict(invoice_id=invoice_id, number=n, due_on=due, amount=amount)
            for account_id, invoice_id, total in invoices if account_id in paying
            for n, (due, amount) in enumerate(instalment_plan(total, first_due, rules.instalments), 1)]
    for chunk in range(0, len(rows), 1000):
        session.execute(insert(Instalment.__table__), rows[chunk:chunk + 1000])


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
    rules = BillingRules.from_config(config)
    raise_term_charges(session, actor, term, on=on, keep_invoicing_overdue=rules.keep_invoicing_overdue)
    run = InvoiceRun(term=term, session=session)
    by_holder: dict[tuple[str, int], list[_Line]] = defaultdict(list)
    for key, line in [*_hire_lines(session, term, rules, run), *_deposit_lines(session, term, rules, run),
                      *_set_hire_lines(session, term)]:
        by_holder[key].append(line)
    # An account whose lines all come to nothing (a first year free) gets no invoice: there is nothing to pay.
    by_holder = {key: lines for key, lines in by_holder.items() if sum((line.amount for line in lines), ZERO) > 0}
    if not by_holder:
        session.flush()
        return run
    if total is not None:
        total(len(by_holder))
    account_ids = _account_ids(session, list(by_holder))
    numbers = take_numbers(session, "invoice", len(by_holder))
    due_on = on + timedelta(days=int(config.get("INVOICE_DUE_DAYS", 30)))
    ordered = sorted(by_holder, key=account_ids.__getitem__)
    entries, totals = [], {}
    for number, key in zip(numbers, ordered, strict=True):
        totals[number] = sum((line.amount for line in by_holder[key]), ZERO)
        entries.append(dict(account_id=account_ids[key], kind=EntryKind.INVOICE.value, number=number, posted_on=on,
                            due_on=due_on, amount=totals[number], term_id=term.id,
                            created_by_id=actor.id if actor is not None else None))
    for chunk in range(0, len(entries), 1000):
        session.execute(insert(LedgerEntry.__table__), entries[chunk:chunk + 1000])
    invoice_ids = dict(session.execute(select(LedgerEntry.number, LedgerEntry.id).where(
        LedgerEntry.kind == EntryKind.INVOICE, LedgerEntry.number >= numbers[0], LedgerEntry.number <= numbers[-1])
    ).all())
    lines, linked = [], []
    for number, key in zip(numbers, ordered, strict=True):
        for line in by_holder[key]:
            row = dict(invoice_id=invoice_ids[number], kind=line.kind.value, charge_id=line.charge_id,
                       loan_id=line.loan_id, full_fee=line.full_fee, amount=line.amount,
                       remission_category=line.remission_category, description=line.description[:300])
            (linked if line.link is not None else lines).append((row, line, account_ids[key]))
            if line.kind is LineKind.HIRE:
                run.remission += line.full_fee - line.amount
        run.total += totals[number]
        if progress is not None:
            progress(1)
    lines = [row for row, _, _ in lines]
    _insert_linked_lines(session, term, linked)
    _plan_instalments(session, rules, [(account_ids[key], invoice_ids[number], totals[number])
                                       for number, key in zip(numbers, ordered, strict=True)], due_on)
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
    """What each account owes, by the age of its invoices: current, 30, 60 and 90+ days.

    An invoice paid by instalments ages instalment by instalment: each as if invoiced when it falls due
    (its due date less the invoice's own time to pay), so one not yet due is current."""
    on = on or today()
    left = LedgerEntry.amount - _allocated(Allocation.debit_id)
    query = (select(LedgerEntry.id, LedgerEntry.account_id, LedgerEntry.posted_on, LedgerEntry.due_on,
                    LedgerEntry.amount, left)
             .where(LedgerEntry.amount > 0, left > 0, LedgerEntry.posted_on <= on))
    if account is not None:
        query = query.where(LedgerEntry.account_id == account.id)
    rows = session.execute(query).all()
    plans = _instalments_of(session, query.with_only_columns(LedgerEntry.id))
    debts: dict[int, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(AGE_BANDS, ZERO))
    for entry_id, account_id, posted_on, due_on, amount, owed in rows:
        for part in _parts(posted_on, due_on, Decimal(amount), Decimal(owed), plans.get(entry_id, [])):
            debts[account_id][age_band(part.aged_from, on)] += part.amount
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
    # An invoice paid by instalments is late instalment by instalment, each from its own due date.
    late = [part for entry, left in open_debits(session, account) for part in due_parts(entry, left)
            if part.due_on < on]
    overdue = sum((part.amount for part in late if days is not None and (on - part.due_on).days >= int(days)), ZERO)
    if overdue > 0:
        return (f"{account.name} owes £{overdue:,.2f} on invoices more than {days} days past their due date "
                f"(account {account.reference}).")
    owed = sum((part.amount for part in late), ZERO)
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
    deposits_held: Decimal = ZERO

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
    return HolderMoney(account, balance(session, account), invoices_of(session, account), how_to_pay(config, account),
                       deposits_held(session, account))


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


# ---------------------------------------------------------------- monthly instalments


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day when it has fewer)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise ValueError(day)  # pragma: no cover


def instalment_plan(total: Decimal, first_due: date, count: int) -> list[tuple[date, Decimal]]:
    """``count`` monthly instalments from ``first_due`` summing exactly to ``total``: equal parts in whole
    pence, the last taking the pennies left over (fewer instalments when there are fewer pence)."""
    count = max(1, min(count, int(total / CENT)))
    part = (total / count).quantize(CENT, rounding=ROUND_DOWN)
    amounts = [part] * (count - 1) + [total - part * (count - 1)]
    return [(add_months(first_due, n), amount) for n, amount in enumerate(amounts)]


@dataclass(frozen=True)
class DuePart:
    """A part of what is left on a debit that falls due on one date: the whole of it, or an instalment."""

    due_on: date
    aged_from: date  # the date its age counts from, as an invoice's posting date does
    amount: Decimal


def _parts(posted_on: date, due_on: date | None, amount: Decimal, left: Decimal,
           plan: list[tuple[date, Decimal]]) -> list[DuePart]:
    if not plan:
        return [DuePart(due_on or posted_on, posted_on, left)]
    paid = amount - left  # payments settle the first instalments first
    parts = []
    for instalment_due, instalment in plan:
        settled = min(paid, instalment)
        paid -= settled
        if instalment > settled:
            parts.append(DuePart(instalment_due, posted_on + (instalment_due - (due_on or posted_on)),
                                 instalment - settled))
    return parts


def due_parts(entry: LedgerEntry, left: Decimal) -> list[DuePart]:
    """What is left on a debit, by the date each part falls due (one part, or one an instalment)."""
    plan = [(i.due_on, i.amount) for i in entry.instalments] if entry.kind == EntryKind.INVOICE else []
    return _parts(entry.posted_on, entry.due_on, entry.amount, left, plan)


def _instalments_of(session: Session, invoice_ids) -> dict[int, list[tuple[date, Decimal]]]:
    plans: dict[int, list[tuple[date, Decimal]]] = defaultdict(list)
    for invoice_id, due_on, amount in session.execute(
            select(Instalment.invoice_id, Instalment.due_on, Instalment.amount)
            .where(Instalment.invoice_id.in_(invoice_ids)).order_by(Instalment.invoice_id, Instalment.number)):
        plans[invoice_id].append((due_on, Decimal(amount)))
    return plans


def next_due(entry: LedgerEntry, left: Decimal) -> DuePart | None:
    """The next part of an invoice to pay, with its due date (None when it is paid)."""
    parts = due_parts(entry, left) if left > 0 else []
    return parts[0] if parts else None


class InstalmentsRefused(MoneyError):
    status_code = 409


def choose_instalments(session: Session, actor, account: PayerAccount, config, pays_by_instalments: bool
                       ) -> PayerAccount:
    """Record whether the account pays each term's invoice by monthly instalments, from the next invoice run."""
    if pays_by_instalments and not config.get("INSTALMENTS_ALLOWED"):
        raise InstalmentsRefused("The hub does not offer monthly instalments (setting INSTALMENTS_ALLOWED).")
    _lock_accounts(session, account)
    account.pays_by_instalments = pays_by_instalments
    count = int(config.get("INSTALMENTS_PER_TERM") or 1)
    record(session, actor, "account.instalments", account,
           f"{account.reference} pays " + (f"by {count} monthly instalments a term" if pays_by_instalments
                                            else "each invoice in one payment"),
           {"pays_by_instalments": pays_by_instalments})
    session.flush()
    return account


def split_into_instalments(session: Session, actor, invoice: LedgerEntry, config, on: date | None = None
                           ) -> list[Instalment]:
    """Let an issued invoice be paid by monthly instalments from its due date (or today, if that has passed)."""
    if invoice.kind != EntryKind.INVOICE:
        raise InvalidInput("Only an invoice can be paid by instalments.")
    if not config.get("INSTALMENTS_ALLOWED"):
        raise InstalmentsRefused("The hub does not offer monthly instalments (setting INSTALMENTS_ALLOWED).")
    _lock_accounts(session, invoice.account)
    if session.scalar(select(Instalment.id).where(Instalment.invoice_id == invoice.id).limit(1)) is not None:
        raise InstalmentsRefused(f"{invoice.number} is already paid by instalments.")
    left = invoice_left(session, invoice)
    if left <= 0:
        raise InstalmentsRefused(f"{invoice.number} is paid: there is nothing left to pay by instalments.")
    on = on or today()
    count = int(config.get("INSTALMENTS_PER_TERM") or 1)
    if count < 2:
        raise InstalmentsRefused("The hub's setting INSTALMENTS_PER_TERM allows a single payment only.")
    paid = invoice.amount - left
    # What is paid already is the first instalment's, so the plan covers the invoice's whole amount.
    plan = instalment_plan(left, max(invoice.due_on or on, on), count)
    if paid > 0:
        plan = [(invoice.posted_on, paid)] + plan
    rows = [Instalment(invoice=invoice, number=n, due_on=due, amount=amount) for n, (due, amount) in enumerate(plan, 1)]
    session.add_all(rows)
    session.flush()
    record(session, actor, "invoice.instalments", invoice,
           f"{invoice.number} paid in {len(rows)} instalments: "
           + ", ".join(f"£{row.amount:,.2f} by {row.due_on:%-d %b %Y}" for row in rows), {"count": len(rows)})
    return rows


# ---------------------------------------------------------------- deposits


class DepositReleased(MoneyError):
    status_code = 409


def deposits_of(session: Session, account: PayerAccount) -> list[LoanDeposit]:
    """The account's deposits, held first, then newest first."""
    deposits = session.scalars(select(LoanDeposit).where(LoanDeposit.account_id == account.id)
                               .options(selectinload(LoanDeposit.release), joinedload(LoanDeposit.line)
                                        .joinedload(InvoiceLine.invoice))
                               .order_by(LoanDeposit.id.desc())).all()
    return sorted(deposits, key=lambda deposit: not deposit.held)


def deposit_of(session: Session, loan: Loan) -> LoanDeposit | None:
    """The loan's deposit, once invoiced."""
    return session.scalar(select(LoanDeposit).where(LoanDeposit.loan_id == loan.id))


def deposits_held(session: Session, account: PayerAccount) -> Decimal:
    """What the hub holds of the account's deposits."""
    released = select(DepositRelease.id).where(DepositRelease.deposit_id == LoanDeposit.id)
    return session.scalar(select(func.coalesce(func.sum(LoanDeposit.amount), ZERO))
                          .where(LoanDeposit.account_id == account.id, ~released.exists())) or ZERO


def _release(session: Session, actor, deposit: LoanDeposit, outcome: DepositOutcome, reason: str,
             on: date | None, credit_note: LedgerEntry | None = None) -> DepositRelease:
    release = DepositRelease(deposit_id=deposit.id, outcome=outcome, reason=reason, released_on=on or today(),
                             credit_note=credit_note, created_by=actor)
    session.add(release)
    session.flush()
    return release


def _check_held(session: Session, deposit: LoanDeposit) -> None:
    """Refuse a deposit already released (read after the account's lock, so two staff take turns)."""
    _lock_accounts(session, deposit.account)
    done = session.scalar(select(DepositRelease).where(DepositRelease.deposit_id == deposit.id))
    if done is not None:
        raise DepositReleased(f"The deposit for {deposit.loan.instrument.asset_tag} was already "
                              f"{done.outcome.label.lower()} on {done.released_on:%-d %b %Y}: nothing more can be "
                              "done with it.")
    if deposit.loan.is_open:
        raise DepositReleased(f"{deposit.loan.instrument.asset_tag} is still on loan: its deposit is held until it "
                              "comes back, or is recorded lost.")


def refund_deposit(session: Session, actor, deposit: LoanDeposit, *, method: str = "", on: date | None = None
                   ) -> DepositRelease:
    """Give a deposit back at return: a credit note against the invoice that charged it (which settles what
    is owed, or becomes credit), then paid out by ``method`` if one is given, else left as credit."""
    _check_held(session, deposit)
    invoice = deposit.line.invoice
    tag = deposit.loan.instrument.asset_tag
    posted = credit_invoice(session, actor, invoice, deposit.amount, f"Deposit for {tag} refunded on its return",
                            on=on)
    release = _release(session, actor, deposit, DepositOutcome.REFUNDED, "", on, posted.entry)
    if method:
        payout = min(deposit.amount, _credit(session, deposit.account))
        if payout > 0:
            refund(session, actor, deposit.account, payout, method, f"Deposit for {tag}", on=on)
    record(session, actor, "deposit.refunded", deposit.loan, f"Deposit of £{deposit.amount:,.2f} for {tag} refunded",
           {"amount": deposit.amount, "method": method or "credit"}, instrument=deposit.loan.instrument)
    return release


def keep_deposit(session: Session, actor, deposit: LoanDeposit, reason: str, on: date | None = None
                 ) -> DepositRelease:
    """Keep a deposit against damage or loss, with the reason."""
    if not reason.strip():
        raise InvalidInput("Say why the deposit is kept (the damage, or the loss).", field="reason")
    _check_held(session, deposit)
    release = _release(session, actor, deposit, DepositOutcome.KEPT, reason.strip(), on)
    tag = deposit.loan.instrument.asset_tag
    record(session, actor, "deposit.kept", deposit.loan, f"Deposit of £{deposit.amount:,.2f} for {tag} kept",
           {"amount": deposit.amount, "reason": reason.strip()}, instrument=deposit.loan.instrument)
    return release


# ---------------------------------------------------------------- schools' set hire fees


def set_fees(session: Session) -> list[tuple[ClassroomSet, SetHireFee | None]]:
    """Every classroom set with its hire fee (None: the school pays nothing for it)."""
    fees = {fee.set_id: fee for fee in session.scalars(select(SetHireFee))}
    return [(classroom_set, fees.get(classroom_set.id))
            for classroom_set in session.scalars(select(ClassroomSet).order_by(ClassroomSet.name))]


def save_set_fee(session: Session, actor, classroom_set: ClassroomSet, basis: str, fee) -> SetHireFee:
    """Set what a school pays a term for a set: a fee for the set, or per instrument in it (0: free)."""
    try:
        basis = SetFeeBasis(basis)
    except ValueError:
        raise InvalidInput("Choose whether the fee is per set or per instrument.", field="basis") from None
    try:
        fee = Decimal(str(fee)).quantize(CENT)
    except (ArithmeticError, ValueError):
        raise InvalidInput("Give the fee in pounds and pence, e.g. 120.00.", field="fee") from None
    if fee < 0:
        raise InvalidInput("A hire fee cannot be negative.", field="fee")
    if fee > MOST:
        raise InvalidInput("That fee is larger than any the hub handles.", field="fee")
    row = session.scalar(select(SetHireFee).where(SetHireFee.set_id == classroom_set.id)) or SetHireFee(
        set_id=classroom_set.id)
    session.add(row)
    row.basis, row.fee = basis, fee
    session.flush()
    record(session, actor, "set.hire_fee", classroom_set,
           f"{classroom_set.name}: £{fee:,.2f} a term {basis.label}", {"fee": fee, "basis": basis.value})
    return row
