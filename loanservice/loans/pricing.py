"""Pricing: the hub's fees and remission rules, what a loan costs, what each loan owes for each term
it runs in, and their settlement.

Fee and remission are copied onto the loan at issue; a term's charge takes the loan's charge per
term, so a later change of price does not rewrite what was agreed. Session first, flush, no commit.
"""
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import and_, case, false, func, insert, literal, or_, select
from sqlalchemy.orm import Session, joinedload

from ..audit.services import record
from ..borrowers.models import Pupil, RemissionCategory
from ..errors import InvalidInput, LoanServiceError
from ..inventory.csvio import spreadsheet_cell
from ..inventory.models import Instrument
from ..locks import lock
from ..timeutil import today, utcnow
from .models import (
    AcademicTerm,
    ChargeStatus,
    FeeBand,
    Loan,
    LoanCharge,
    LoanStatus,
    RemissionKind,
    RemissionRule,
)
from .queries import lock_loan

ZERO = Decimal("0.00")


def save_fee_band(session: Session, actor, band: str, fee_per_term: Decimal, deposit: Decimal = ZERO) -> FeeBand:
    """Set the fee per term and deposit of a hire band; loans already lent keep theirs."""
    band = band.strip().upper()
    if not band:
        raise InvalidInput("Name the band.", field="band")
    if fee_per_term < 0 or deposit < 0:
        raise InvalidInput("Fees and deposits cannot be negative.", field="fee_per_term")
    row = session.scalar(select(FeeBand).where(FeeBand.band == band)) or FeeBand(band=band)
    session.add(row)
    before = (row.fee_per_term, row.deposit)
    row.fee_per_term, row.deposit = fee_per_term, deposit
    session.flush()
    record(session, actor, "fees.band", row, f"Band {band}: £{fee_per_term} a term, deposit £{deposit}",
           {"fee_per_term": [before[0], fee_per_term], "deposit": [before[1], deposit]})
    return row


def save_remission_rule(session: Session, actor, category: str, kind: RemissionKind, value: Decimal = ZERO):
    """Set what a remission category pays; loans already lent keep theirs."""
    if category == "none":
        raise InvalidInput("Choose a remission category.", field="category")
    if value < 0 or (kind is RemissionKind.PERCENT_OFF and value > 100):
        raise InvalidInput("A percentage is between 0 and 100; an amount cannot be negative.", field="value")
    rule = (session.scalar(select(RemissionRule).where(RemissionRule.category == category))
            or RemissionRule(category=category))
    session.add(rule)
    rule.kind, rule.value = kind.value, ZERO if kind is RemissionKind.FREE else value
    session.flush()
    record(session, actor, "fees.remission", rule,
           f"Remission for {RemissionCategory(category).label}: {rule.summary}",
           {"kind": kind.value, "value": rule.value})
    return rule


def fee_schedule(session: Session) -> tuple[list[FeeBand], list[RemissionRule]]:
    """The hub's fee bands and remission rules, for the fees page and the public catalogue."""
    return (list(session.scalars(select(FeeBand).order_by(FeeBand.band))),
            list(session.scalars(select(RemissionRule).order_by(RemissionRule.category))))


@dataclass
class Charges:
    """What a loan costs: the fee, the remission that applies, and the resulting charge."""

    fee_per_term: Decimal = ZERO
    charge_per_term: Decimal | None = None  # None: free with remission, else the full fee
    deposit: Decimal = ZERO


def quote(
    session: Session, instrument: Instrument, borrower, *, fee_per_term: Decimal | None = None,
    charge_per_term: Decimal | None = None, deposit: Decimal | None = None, remission_category: str | None = None,
) -> Charges:
    """What lending ``instrument`` to ``borrower`` costs under the hub's fees and remission rules.

    The fee and deposit come from the instrument's hire band, the charge from the pupil's remission
    rule (free when the hub has set no rule for the category); any value given overrides them.
    ``remission_category`` prices a category the pupil does not have yet (a claim being checked).
    """
    band = session.scalar(select(FeeBand).where(FeeBand.band == instrument.type.hire_band))
    fee = fee_per_term if fee_per_term is not None else (band.fee_per_term if band else ZERO)
    if remission_category is None:
        remission_category = borrower.remission_category if isinstance(borrower, Pupil) else RemissionCategory.NONE
    if charge_per_term is None and remission_category != RemissionCategory.NONE:
        rule = session.scalar(select(RemissionRule).where(RemissionRule.category == remission_category))
        charge_per_term = rule.charge(fee) if rule is not None else ZERO
    elif charge_per_term is None:
        charge_per_term = fee
    return Charges(fee_per_term=fee, charge_per_term=charge_per_term,
                   deposit=deposit if deposit is not None else (band.deposit if band else ZERO))


def remission_and_charge(borrower, charges: Charges) -> tuple[str, Decimal]:
    remission = borrower.remission_category if isinstance(borrower, Pupil) else RemissionCategory.NONE
    for name in ("fee_per_term", "deposit"):
        if getattr(charges, name) < 0:
            raise InvalidInput(f"The {name.replace('_', ' ')} cannot be negative.", field=name)
    charge = charges.charge_per_term
    if charge is None:
        charge = ZERO if remission != RemissionCategory.NONE else charges.fee_per_term
    if charge < 0 or charge > charges.fee_per_term:
        raise InvalidInput("The charge per term is between nothing and the full fee.", field="charge_per_term")
    return remission, charge


def raise_term_charges(session: Session, actor, term: AcademicTerm, *, on: date | None = None,
                       keep_invoicing_overdue: bool = True) -> int:
    """Add a charge for ``term`` to every loan that runs in any part of it; return how many.

    A loan runs in the term when it starts by the term's end and is due back (or came back) on or
    after its first day. A loan due back before the term starts is charged only as an overdue
    instrument (``keep_invoicing_overdue``, the hub's setting): when it is still out and already
    overdue on ``on`` (the run date, default today), or came back late, during the term. A run made
    before such a loan falls due does not charge it for a term it is not meant to be out in.

    One INSERT ... SELECT, so a hub with thousands of loans is charged in one statement. A loan
    already charged for the term is left alone, so running it twice adds nothing. A loan that is
    free only because of remission gets a waived charge, so the remission shows; a free scheme
    (no fee at all) gets none.
    """
    on = on or today()
    already = select(LoanCharge.id).where(LoanCharge.loan_id == Loan.id, LoanCharge.term_id == term.id)
    waived = and_(Loan.charge_per_term == 0, Loan.fee_per_term > 0)
    out_in_term = or_(Loan.closed_on.is_(None), Loan.closed_on >= term.starts_on)
    overdue_in_term = (or_(Loan.closed_on.is_not(None), Loan.due_on < on) if keep_invoicing_overdue
                       else false())
    rows = (
        select(
            Loan.id, literal(term.id), Loan.charge_per_term,
            case((waived, literal(ChargeStatus.WAIVED.value)), else_=literal(ChargeStatus.OWED.value)),
            case((waived, literal(term.starts_on)), else_=None),
            literal(utcnow()),
        )
        .where(
            # A loan waiting for its agreement, or cancelled before issue, was never out: no charge.
            Loan.status.notin_([LoanStatus.PENDING, LoanStatus.CANCELLED]),
            Loan.started_on <= term.ends_on,
            out_in_term,
            or_(Loan.due_on >= term.starts_on, overdue_in_term),
            Loan.fee_per_term > 0,
            ~already.exists(),
        )
    )
    added = session.scalars(insert(LoanCharge).from_select(
        ["loan_id", "term_id", "amount", "status", "settled_on", "created_at"], rows).returning(LoanCharge.id))
    count = len(added.all())
    record(session, actor, "charges.raised", term, f"Raised {count} charges for {term.name}", {"count": count})
    session.flush()
    return count


def settle(session: Session, actor, charge: LoanCharge, status: ChargeStatus, on: date | None = None) -> LoanCharge:
    """Mark an owed charge paid or waived."""
    if status is ChargeStatus.OWED:
        raise InvalidInput("A charge is settled as paid or waived.", field="status")
    lock(session, charge)  # two people settling it at once: the second is told it is settled
    if charge.status is not ChargeStatus.OWED:
        raise LoanServiceError(f"That charge is already {charge.status}.")
    charge.status = status
    charge.settled_on = on or today()
    record(session, actor, f"charge.{status.value}", charge,
           f"{charge.term.name} charge of £{charge.amount} {status.value}", {"amount": charge.amount},
           instrument=charge.loan.instrument)
    session.flush()
    return charge


def unapplied_remission(loan: Loan) -> RemissionCategory | None:
    """The remission the loan's pupil was verified for after it was lent, when the loan does not have it.

    Loans copy the remission they are lent with, so verifying a pupil later changes nothing by
    itself: staff apply it (``apply_remission``) from the loan's page.
    """
    pupil = loan.pupil
    if (pupil is None or loan.is_closed or not pupil.has_remission
            or loan.remission_category == pupil.remission_category):
        return None
    return pupil.remission_category


def apply_remission(session: Session, actor, loan: Loan) -> Loan:
    """Give an open loan the remission its pupil has since been verified for: the charge per term changes
    from the next term charged on; charges already raised stay as they are. In the audit trail."""
    lock_loan(session, loan)
    category = unapplied_remission(loan)
    if category is None:
        raise LoanServiceError("This loan already has the pupil's verified remission, or there is none to apply.")
    rule = session.scalar(select(RemissionRule).where(RemissionRule.category == category))
    charge = rule.charge(loan.fee_per_term) if rule is not None else ZERO
    before = (loan.remission_category, loan.charge_per_term)
    loan.remission_category, loan.charge_per_term = category.value, charge
    session.flush()
    record(session, actor, "loan.remission_applied", loan,
           f"{category.label} (verified {loan.pupil.remission_verified_on:%-d %b %Y}) applied from the next term "
           f"charged: £{before[1]} a term becomes £{charge}",
           {"remission": [before[0], category.value], "charge_per_term": [before[1], charge]},
           instrument=loan.instrument)
    return loan


def charges_of(session: Session, loan: Loan) -> list[LoanCharge]:
    return list(session.scalars(select(LoanCharge).where(LoanCharge.loan_id == loan.id)
                                .join(LoanCharge.term).order_by(AcademicTerm.starts_on)))


def term_totals(session: Session) -> list[tuple[AcademicTerm, dict[str, Decimal], dict[str, int]]]:
    """For each term: the total and number of charges owed, paid and waived."""
    sums: dict[int, dict[str, Decimal]] = {}
    counts: dict[int, dict[str, int]] = {}
    for term_id, status, total, number in session.execute(
        select(LoanCharge.term_id, LoanCharge.status, func.sum(LoanCharge.amount), func.count())
        .group_by(LoanCharge.term_id, LoanCharge.status)
    ):
        sums.setdefault(term_id, {})[status] = Decimal(total or 0)
        counts.setdefault(term_id, {})[status] = number
    terms = session.scalars(select(AcademicTerm).order_by(AcademicTerm.starts_on)).all()
    return [(term, sums.get(term.id, {}), counts.get(term.id, {})) for term in terms]


CSV_COLUMNS = ["term", "loan", "asset_tag", "instrument", "borrower", "hirer", "remission", "fee_per_term",
               "amount", "status", "settled_on"]


def export_charges(session: Session, term: AcademicTerm | None = None) -> Iterator[str]:
    """The charges as CSV, a row at a time, for the finance office."""
    query = (select(LoanCharge).join(LoanCharge.term).join(LoanCharge.loan).join(Loan.instrument)
             .options(joinedload(LoanCharge.term),
                      joinedload(LoanCharge.loan).joinedload(Loan.instrument),
                      joinedload(LoanCharge.loan).joinedload(Loan.pupil).joinedload(Pupil.family),
                      joinedload(LoanCharge.loan).joinedload(Loan.family),
                      joinedload(LoanCharge.loan).joinedload(Loan.school),
                      joinedload(LoanCharge.loan).joinedload(Loan.other_borrower))
             .order_by(AcademicTerm.starts_on, Instrument.asset_tag, LoanCharge.id))
    if term is not None:
        query = query.where(LoanCharge.term_id == term.id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        data = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return data

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for count, charge in enumerate(session.scalars(query.execution_options(yield_per=1000)), 1):
        loan = charge.loan
        hirer = loan.pupil.family if loan.pupil is not None and loan.pupil.family is not None else loan.borrower
        writer.writerow([spreadsheet_cell(value) for value in (
            charge.term.name, loan.id, loan.instrument.asset_tag, loan.instrument.description, loan.borrower,
            hirer, loan.remission_category, loan.fee_per_term, charge.amount, charge.status, charge.settled_on,
        )])
        if count % 1000 == 0:
            yield flush()
    yield flush()
