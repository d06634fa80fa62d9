"""The loans domain: check an instrument out to a borrower and back in, renew, exchange, lose.

Every function takes the session first, changes state, flushes and returns; the caller
(view, CLI command, later the API) owns the transaction and rolls back on a LoanServiceError.
"""
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import JSON, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from ..audit.models import AuditEvent
from ..audit.services import record
from ..batch import Batch
from ..borrowers.models import Family, OtherBorrower, Pupil, RemissionCategory
from ..errors import InvalidInput, LoanServiceError, NotFound
from ..inventory.models import CheckReason, Instrument, InstrumentStatus
from ..inventory.services import change_status, escape_like, record_condition, send_to_repair
from ..schools.models import School
from ..signals import instrument_freed
from ..templating import counted
from ..timeutil import today, utcnow
from .calendar import days_of_term, days_off
from .models import (
    BORROWER_KINDS,
    AcademicTerm,
    FeeBand,
    Loan,
    LoanStatus,
    RemissionRule,
    borrower_column,
    borrower_kind,
)

S = InstrumentStatus
ZERO = Decimal("0.00")
DAMAGE_REPAIRER = "Store workshop (damaged on return)"


class NotLendable(LoanServiceError):
    """The instrument cannot be lent now (on loan, in repair, missing, written off...)."""

    status_code = 409


class NotOnLoan(LoanServiceError):
    status_code = 409


class NotPending(LoanServiceError):
    """The loan is not waiting to be issued (already issued, or cancelled)."""

    status_code = 409


class AgreementNotSigned(LoanServiceError):
    status_code = 409


# Why an instrument in each status cannot be lent, in words for the person at the counter: in a few
# words (for a list of several, as a set's), and as the whole sentence for one instrument.
_UNLENDABLE = {
    S.ON_LOAN: ("is on loan", "{tag} is already on loan."),
    S.IN_REPAIR: ("is in repair", "{tag} is in repair; it cannot be lent until it is back."),
    S.MISSING: ("is missing", "{tag} is missing; mark it found before lending it."),
    S.WRITTEN_OFF: ("has been written off", "{tag} has been written off and cannot be lent."),
    S.RESERVED: ("is reserved for someone else", "{tag} is reserved for someone else."),
}
_UNUSABLE = ("is graded 5 (unusable)", "{tag} is graded 5 (unusable): send it to repair, or record a new condition "
                                       "check, before lending it.")


def already_on_loan(instrument_or_tag) -> NotLendable:
    tag = getattr(instrument_or_tag, "asset_tag", instrument_or_tag)
    return NotLendable(_UNLENDABLE[S.ON_LOAN][1].format(tag=tag))


def audit_name(borrower) -> str:
    """How the append-only audit trail names a borrower: people by record number only, so that
    erasing a family's or pupil's details at the end of retention leaves no name behind."""
    if isinstance(borrower, (Pupil, Family)):
        return f"{borrower_kind(borrower)} #{borrower.id}"
    return str(borrower)


# ---------------------------------------------------------------- look-ups


def get_borrower(session: Session, kind: str, borrower_id: int):
    """The pupil, family, school or other borrower named by ``kind`` and id, or NotFound."""
    model = BORROWER_KINDS.get(kind)
    borrower = session.get(model, borrower_id) if model is not None else None
    if borrower is None:
        raise NotFound("There is no such borrower.", field="borrower")
    return borrower


def find_borrowers(session: Session, q: str, *, limit: int = 15) -> list:
    """Pupils, families, schools and other borrowers whose name contains ``q`` (each kind up to ``limit``)."""
    q = q.strip()
    if not q:
        return []
    like = f"%{escape_like(q)}%"
    found = list(session.scalars(select(Pupil).where(Pupil.name.ilike(like, escape="\\"))
                                 .options(joinedload(Pupil.school)).order_by(Pupil.name, Pupil.id).limit(limit)))
    for model in (Family, School, OtherBorrower):
        found += session.scalars(select(model).where(model.name.ilike(like, escape="\\"))
                                 .order_by(model.name, model.id).limit(limit))
    return found


def current_loan_for(session: Session, instrument: Instrument, *, for_update: bool = False) -> Loan | None:
    """The loan holding the instrument: open, or pending its signed agreement (at most one, by an index)."""
    query = select(Loan).where(Loan.instrument_id == instrument.id, Loan.closed_on.is_(None))
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def loans_of(session: Session, borrower) -> tuple[list[Loan], list[Loan]]:
    """What a borrower holds now (or has held for them, pending an agreement) and held before.

    A pupil's loans count for their family too.
    """
    column = getattr(Loan, borrower_column(borrower))
    condition = column == borrower.id
    if isinstance(borrower, Family):
        condition = or_(condition, Loan.pupil_id.in_(select(Pupil.id).where(Pupil.family_id == borrower.id)))
    loans = session.scalars(
        select(Loan).where(condition).options(joinedload(Loan.instrument), joinedload(Loan.pupil))
        .order_by(Loan.started_on.desc(), Loan.id.desc())
    ).all()
    return [loan for loan in loans if not loan.is_closed], [loan for loan in loans if loan.is_closed]


def loans_of_instrument(session: Session, instrument: Instrument) -> list[Loan]:
    return list(session.scalars(
        select(Loan).where(Loan.instrument_id == instrument.id)
        .options(joinedload(Loan.pupil), joinedload(Loan.family), joinedload(Loan.school),
                 joinedload(Loan.other_borrower))
        .order_by(Loan.started_on.desc(), Loan.id.desc())
    ))


def holding_loans(session: Session, instruments: Iterable[Instrument]) -> dict[int, Loan]:
    """The loan holding each of these instruments (open, or pending its agreement), by instrument id.

    One statement for a whole page of a list, the borrowers (and a pupil's school) joined in.
    """
    ids = [instrument.id for instrument in instruments]
    if not ids:
        return {}
    loans = session.scalars(
        select(Loan).where(Loan.instrument_id.in_(ids), Loan.closed_on.is_(None))
        .options(joinedload(Loan.pupil).joinedload(Pupil.school), joinedload(Loan.family),
                 joinedload(Loan.school), joinedload(Loan.other_borrower))
    )
    return {loan.instrument_id: loan for loan in loans}


def overdue_loans(session: Session, on: date | None = None, *, limit: int = 500) -> list[Loan]:
    """Open loans past their due date, longest overdue first (a loan pending its agreement is not out)."""
    on = on or today()
    return list(session.scalars(
        select(Loan).where(Loan.closed_on.is_(None), Loan.status == LoanStatus.OPEN, Loan.due_on < on)
        .options(joinedload(Loan.instrument), joinedload(Loan.pupil).joinedload(Pupil.family),
                 joinedload(Loan.family), joinedload(Loan.school), joinedload(Loan.other_borrower))
        .order_by(Loan.due_on, Loan.id).limit(limit)
    ))


def missing_set_items(session: Session, on: date | None = None) -> list[Loan]:
    """Classroom-set items the school reported missing and not found since, whose set was due before ``on``:
    the school owes their replacement cost, so they are chased like any instrument not returned."""
    on = on or today()
    return list(session.scalars(
        # An item's loan is due when its set is.
        select(Loan).join(Loan.instrument)
        .where(Loan.set_loan_id.is_not(None), Loan.status == LoanStatus.LOST,
               Instrument.status == InstrumentStatus.MISSING, Loan.due_on < on)
        .options(joinedload(Loan.instrument), joinedload(Loan.school))
        .order_by(Loan.due_on, Loan.id)
    ))


def overdue_in_term_time(session: Session, on: date | None = None) -> list[tuple[Loan, int]]:
    """Loans overdue by at least one day of term, with those days, longest overdue first: open loans,
    and set items reported missing. A loan due at the end of a
    term is not overdue over the holiday that follows."""
    on = on or today()
    off = days_off(session)
    late = [(loan, days_of_term(loan.due_on, on, off)) for loan in overdue_loans(session, on)]
    late += [(loan, days_of_term(loan.due_on, on, off)) for loan in missing_set_items(session, on)]
    return sorted(((loan, days) for loan, days in late if days > 0), key=lambda late: -late[1])


def awaiting_agreement(session: Session) -> list[Loan]:
    """Loans waiting for their signed agreement, the longest held first."""
    return list(session.scalars(
        select(Loan).where(Loan.status == LoanStatus.PENDING)
        .options(joinedload(Loan.instrument), joinedload(Loan.pupil).joinedload(Pupil.family),
                 joinedload(Loan.family))
        .order_by(Loan.started_on, Loan.id)
    ))


def count_awaiting_agreement(session: Session) -> int:
    return session.scalar(select(func.count()).where(Loan.status == LoanStatus.PENDING))


def default_due_date(session: Session, start: date) -> date | None:
    """The end of the term that ``start`` falls in (or the next term, in a holiday)."""
    return session.scalar(
        select(AcademicTerm.ends_on).where(AcademicTerm.ends_on >= start).order_by(AcademicTerm.ends_on).limit(1)
    )


# ---------------------------------------------------------------- rules


def _why_not_lendable(instrument: Instrument) -> tuple[str, str] | None:
    why = _UNLENDABLE.get(instrument.status_enum)
    if why is None and instrument.condition_grade >= 5:
        why = _UNUSABLE
    return why


def is_lendable(instrument: Instrument) -> bool:
    """Whether its status and condition let it go out now (who else may hold it aside)."""
    return _why_not_lendable(instrument) is None


def check_lendable(instrument: Instrument) -> None:
    """Refuse, with a clear message, an instrument that cannot be lent now."""
    why = _why_not_lendable(instrument)
    if why is not None:
        raise NotLendable(why[1].format(tag=instrument.asset_tag))


def unlendable_reasons(session: Session, instruments: list[Instrument]) -> dict[Instrument, str]:
    """Why each of ``instruments`` that cannot be lent now cannot, in a few words ("is in repair"),
    naming who has those on loan or held for them: one query however many, and none if none is out."""
    reasons = {}
    for instrument in instruments:
        why = _why_not_lendable(instrument)
        if why is not None:
            reasons[instrument] = why[0]
    out = [i.id for i in reasons if i.status_enum in (S.ON_LOAN, S.RESERVED)]
    if out:
        holders = session.scalars(
            select(Loan).where(Loan.instrument_id.in_(out), Loan.closed_on.is_(None))
            .options(joinedload(Loan.pupil), joinedload(Loan.family), joinedload(Loan.school),
                     joinedload(Loan.other_borrower)))
        loans = {loan.instrument_id: loan for loan in holders}
        for instrument in reasons:
            loan = loans.get(instrument.id)
            if loan is not None:
                reasons[instrument] = (f"is held for {loan.borrower} until their loan agreement is signed"
                                       if loan.is_pending else f"is on loan to {loan.borrower}")
    return reasons


def _check_not_held(session: Session, instrument: Instrument) -> None:
    """Name the borrower an instrument is held for while their agreement waits to be signed."""
    if instrument.status_enum is S.RESERVED:
        held = current_loan_for(session, instrument)
        if held is not None and held.is_pending:
            raise NotLendable(f"{instrument.asset_tag} is held for {held.borrower} until their loan agreement is "
                              "signed.")


def check_not_in_set(session: Session, instrument: Instrument) -> None:
    """A classroom set member goes out with its set (or home from it, through the set): never on its own."""
    from ..sets.models import ClassroomSet, ClassroomSetItem

    classroom_set = session.scalar(select(ClassroomSet).join(ClassroomSetItem)
                                   .where(ClassroomSetItem.instrument_id == instrument.id))
    if classroom_set is not None:
        raise NotLendable(f"{instrument.asset_tag} belongs to {classroom_set.name}: take it out of the set first.")


def _refuse_unless_issued(loan: Loan, doing: str) -> None:
    """A loan pending its agreement, or cancelled before issue, was never handed over."""
    if loan.is_pending:
        raise NotOnLoan(f"{loan.instrument.asset_tag} has not been issued: it is waiting for a signed agreement, "
                        f"so it cannot be {doing}. Cancel the loan instead to release it.")
    if loan.status_enum is LoanStatus.CANCELLED:
        raise NotOnLoan(f"The loan of {loan.instrument.asset_tag} was cancelled before issue, so it cannot be "
                        f"{doing}.")


def needs_signed_agreement(config, borrower) -> bool:
    """Whether the hub's setting holds this loan until its agreement is signed: individual loans only.

    A pupil (through their parent or carer) or a family signs; schools sign for sets under their own
    agreement, and ensembles, teachers and partners are lent to as today.
    """
    return bool(config.get("REQUIRE_SIGNED_AGREEMENT")) and isinstance(borrower, (Pupil, Family))


def _check_dates(start: date, due: date) -> None:
    if due < start:
        raise InvalidInput("The due date is before the start date.", field="due_on")


def latest_due_date(on: date) -> date:
    """The latest a loan made or renewed on ``on`` can be due: the end of the next school year (31 August).

    Loans follow the school year and roll over each year, so staff may want a loan to run to the end
    of next year's summer term, even from early in this year; later than that is a typo (2062 for 2026).
    A date, not the calendar's terms: admins often enter only this year's terms, and the last few weeks
    of the summer holiday change nothing for a typo.
    """
    this_year_ends = on.year + 1 if on.month >= 9 else on.year  # a school year runs 1 Sep to 31 Aug
    return date(this_year_ends + 1, 8, 31)


def check_due_date_in_reach(due: date) -> None:
    """Refuse a due date past ``latest_due_date``, on the due date field (for lending and renewing)."""
    latest = latest_due_date(today())
    if due > latest:
        raise InvalidInput(f"{due:%-d %b %Y} is too far ahead: a loan can run to the end of the next school year, "
                           f"{latest:%-d %b %Y}, at the latest. Check the year.", field="due_on")


def earliest_start_date(on: date) -> date:
    """The earliest a loan recorded on ``on`` can start: the start of the previous school year (1 September).

    Staff record loans after the event (paperwork caught up at the end of a term, a loan missed in
    last year's records), so all of this school year and last stays open; earlier is a typo (2010
    for 2025).
    """
    this_year_began = on.year if on.month >= 9 else on.year - 1  # a school year runs 1 Sep to 31 Aug
    return date(this_year_began - 1, 9, 1)


def check_start_date_in_reach(start: date) -> None:
    """Refuse a start date before ``earliest_start_date``, on the start date field (for lending)."""
    earliest = earliest_start_date(today())
    if start < earliest:
        raise InvalidInput(f"{start:%-d %b %Y} is too long ago: a loan can start on {earliest:%-d %b %Y}, the start "
                           "of the previous school year, at the earliest. Check the year.", field="started_on")


def check_after_last_loans(session: Session, instruments: Sequence[Instrument], start: date) -> None:
    """Refuse a start date before an instrument's last loan ended: its history would have two loans at
    once (and the charges for those terms twice). One query for any number of instruments; none for
    a loan starting today."""
    if start >= today() or not instruments:
        return
    overlapping = session.execute(
        select(Instrument.asset_tag, func.max(Loan.closed_on)).join(Loan, Loan.instrument_id == Instrument.id)
        .where(Loan.instrument_id.in_([i.id for i in instruments]), Loan.closed_on > start,
               Loan.status != LoanStatus.CANCELLED)  # a hold cancelled was never handed over
        .group_by(Instrument.asset_tag).order_by(Instrument.asset_tag)).all()
    if overlapping:
        tag, ended = overlapping[0]
        others = f" (and {counted(len(overlapping) - 1, 'other instrument')} of these)" if len(overlapping) > 1 else ""
        raise InvalidInput(f"{tag} was on loan until {ended:%-d %b %Y}{others}: a new loan can start on that day "
                           "at the earliest.", field="started_on")


def resolve_due_date(session: Session, start: date, due: date | None) -> date:
    """The due date given, or the end of the term; never before the start."""
    if due is None:
        due = default_due_date(session, start)
        if due is None:
            raise InvalidInput(f"No academic term covers {start:%-d %b %Y}: give a due date.", field="due_on")
    _check_dates(start, due)
    return due


def _flush_loan(session: Session, instrument: Instrument) -> None:
    """Flush, turning a lost race for the instrument into the same clear message as the check."""
    tag = instrument.asset_tag  # read now: a failed flush expires the objects
    try:
        session.flush()
    except IntegrityError as error:
        if "uq_loan_open_per_instrument" in str(error.orig) or "loan.instrument_id" in str(error.orig):
            raise already_on_loan(tag) from error
        raise


@dataclass
class Charges:
    """What a loan costs: the fee, the remission that applies, and the resulting charge."""

    fee_per_term: Decimal = ZERO
    charge_per_term: Decimal | None = None  # None: free with remission, else the full fee
    deposit: Decimal = ZERO


def quote(
    session: Session, instrument: Instrument, borrower, *, fee_per_term: Decimal | None = None,
    charge_per_term: Decimal | None = None, deposit: Decimal | None = None,
) -> Charges:
    """What lending ``instrument`` to ``borrower`` costs under the hub's fees and remission rules.

    The fee and deposit come from the instrument's hire band, the charge from the pupil's remission
    rule (free when the hub has set no rule for the category); any value given overrides them.
    """
    band = session.scalar(select(FeeBand).where(FeeBand.band == instrument.type.hire_band))
    fee = fee_per_term if fee_per_term is not None else (band.fee_per_term if band else ZERO)
    if charge_per_term is None and isinstance(borrower, Pupil) and borrower.has_remission:
        rule = session.scalar(select(RemissionRule).where(RemissionRule.category == borrower.remission_category))
        charge_per_term = rule.charge(fee) if rule is not None else ZERO
    return Charges(fee_per_term=fee, charge_per_term=charge_per_term,
                   deposit=deposit if deposit is not None else (band.deposit if band else ZERO))


def _charges(borrower, charges: Charges) -> tuple[str, Decimal]:
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


# ---------------------------------------------------------------- changes


def check_out(
    session: Session,
    actor,
    instrument: Instrument,
    borrower: Pupil | Family | School | OtherBorrower,
    *,
    started_on: date | None = None,
    due_on: date | None = None,
    accessories: str | None = None,
    condition_grade: int | None = None,
    condition_note: str = "",
    charges: Charges | None = None,
    set_loan=None,
    exchanged_from: Loan | None = None,
    awaiting_agreement: bool = False,
) -> Loan:
    """Lend ``instrument`` to ``borrower``; lock the instrument row first (get_instrument(for_update=True)).

    ``awaiting_agreement`` makes the loan pending instead: the instrument is held for the borrower
    (reserved), and nothing is charged or chased until ``issue`` opens it. Use ``lend`` to follow
    the hub's setting.
    """
    if awaiting_agreement and (set_loan is not None or not isinstance(borrower, (Pupil, Family))):
        raise InvalidInput("Only a loan to a pupil or a family waits for a signed agreement.", field="borrower")
    started_on = started_on or today()
    if started_on > today():
        raise InvalidInput("A loan starts when the instrument is handed over: the start date is in the future.",
                           field="started_on")
    due_on = resolve_due_date(session, started_on, due_on)
    _check_not_held(session, instrument)
    check_lendable(instrument)
    if set_loan is None:  # lending on its own; a set's items go out in check_out_set, which checks these
        check_not_in_set(session, instrument)
        check_after_last_loans(session, [instrument], started_on)
    if charges is None:
        charges = quote(session, instrument, borrower)
    remission, charge = _charges(borrower, charges)
    if condition_grade is not None:  # checked at the counter; otherwise the last recorded grade stands
        record_condition(session, actor, instrument, condition_grade, CheckReason.ISSUE, condition_note)
    loan = Loan(
        instrument=instrument,
        status=LoanStatus.PENDING if awaiting_agreement else LoanStatus.OPEN,
        started_on=started_on,
        due_on=due_on,
        accessories=instrument.accessories if accessories is None else accessories.strip(),
        condition_at_issue=instrument.condition_grade,
        fee_per_term=charges.fee_per_term,
        remission_category=remission,
        charge_per_term=charge,
        deposit=charges.deposit,
        issued_by=actor,
        set_loan_id=set_loan.id if set_loan is not None else None,
        exchanged_from=exchanged_from,
    )
    setattr(loan, borrower_column(borrower), borrower.id)
    session.add(loan)
    _flush_loan(session, instrument)
    who = audit_name(borrower)
    terms = {"borrower": who, "due_on": due_on, "fee_per_term": charges.fee_per_term,
             "charge_per_term": charge, "remission": remission, "deposit": charges.deposit}
    if awaiting_agreement:
        change_status(session, actor, instrument, S.RESERVED, f"held for {who} until the loan agreement is signed")
        record(session, actor, "loan.pending", loan,
               f"Held for {who} until the agreement is signed (due {due_on:%-d %b %Y})", terms, instrument=instrument)
    else:
        change_status(session, actor, instrument, S.ON_LOAN, f"lent to {who}")
        record(session, actor, "loan.out", loan, f"Lent to {who} until {due_on:%-d %b %Y}", terms,
               instrument=instrument)
    return loan


def lend(session: Session, actor, instrument: Instrument, borrower, config, **details) -> Loan:
    """Check out under the hub's settings: with REQUIRE_SIGNED_AGREEMENT, a loan to a pupil or family
    waits, the instrument held, until its agreement (made here, ready to sign) is signed and issued.
    A hirer with an online account is emailed a link to sign it. A start date given is refused before
    ``earliest_start_date``, a due date past ``latest_due_date``."""
    # Here rather than in check_out, which a size exchange also goes through: it keeps the loan's due
    # date, however far a roll-over moved it. (A set's items get the set's dates, from check_out_set.)
    if details.get("started_on") is not None:
        check_start_date_in_reach(details["started_on"])
    if details.get("due_on") is not None:
        check_due_date_in_reach(details["due_on"])
    if not needs_signed_agreement(config, borrower):
        return check_out(session, actor, instrument, borrower, **details)
    from ..documents.services import Hub, ask_hirer_to_sign, prepare_agreement

    hub = Hub.from_config(config)
    loan = check_out(session, actor, instrument, borrower, awaiting_agreement=True, **details)
    prepare_agreement(session, actor, loan, hub)
    ask_hirer_to_sign(session, loan, config)
    return loan


def issue(session: Session, actor, loan: Loan) -> Loan:
    """Issue a loan that waited for its agreement: refused until the latest copy is signed; the loan opens
    today with the due date agreed, and the instrument goes on loan. Lock the instrument row first."""
    from ..documents.services import latest_agreement

    instrument = loan.instrument
    tag = instrument.asset_tag
    if loan.status_enum is LoanStatus.CANCELLED:
        raise NotPending(f"This loan was cancelled on {loan.closed_on:%-d %b %Y}, so it cannot be issued. "
                         f"Lend {tag} again if it is still wanted.")
    if not loan.is_pending:
        raise NotPending(f"{tag} was already issued on {loan.started_on:%-d %b %Y}.")
    agreement = latest_agreement(session, loan)
    if agreement is None:
        raise AgreementNotSigned(f"{tag} cannot be issued: there is no agreement for this loan yet. Make it, "
                                 "then have it signed.")
    if not agreement.is_signed:
        raise AgreementNotSigned(f"{tag} cannot be issued until the agreement is signed: the hirer signs it "
                                 "online, or signs a printed copy at the desk and you record it.")
    issued_on = today()
    if loan.due_on < issued_on:
        raise InvalidInput(f"The loan was due back on {loan.due_on:%-d %b %Y}, before today: cancel it and lend "
                           f"{tag} again with a new due date.", field="due_on")
    held_since = loan.started_on
    who = audit_name(loan.borrower)
    loan.status = LoanStatus.OPEN
    loan.started_on = issued_on
    loan.issued_by = actor
    change_status(session, actor, instrument, S.ON_LOAN, f"lent to {who}")
    record(session, actor, "loan.issued", loan,
           f"Issued to {who} until {loan.due_on:%-d %b %Y}; agreement {agreement.method_enum.label.lower()}",
           {"borrower": who, "held_since": held_since, "started_on": issued_on, "due_on": loan.due_on,
            "agreement_id": agreement.id, "agreement_sha256": agreement.sha256}, instrument=instrument)
    session.flush()
    return loan


def cancel_pending(session: Session, actor, loan: Loan, note: str = "") -> Loan:
    """Call off a loan that is waiting for its agreement: the instrument is released (to the waiting
    list first, as on a return). Lock the instrument row first."""
    tag = loan.instrument.asset_tag
    if not loan.is_pending:
        if loan.status_enum is LoanStatus.CANCELLED:
            raise NotPending(f"This loan was already cancelled on {loan.closed_on:%-d %b %Y}.")
        raise NotPending(f"{tag} was issued on {loan.started_on:%-d %b %Y}: check it in, or record it lost, "
                         "instead of cancelling.")
    instrument = loan.instrument
    note = (note or "").strip()
    loan.status = LoanStatus.CANCELLED
    loan.closed_on = max(today(), loan.started_on)
    loan.return_note = note
    loan.closed_by = actor
    who = audit_name(loan.borrower)
    change_status(session, actor, instrument, S.AVAILABLE, f"loan to {who} cancelled before issue")
    instrument_freed.send(instrument, session=session, actor=actor, batch=None)
    record(session, actor, "loan.cancelled", loan, f"Cancelled before issue, {who}", {"note": note},
           instrument=instrument)
    session.flush()
    return loan


def check_in(
    session: Session,
    actor,
    loan: Loan,
    *,
    grade: int,
    note: str = "",
    damaged: bool = False,
    returned_on: date | None = None,
    status: LoanStatus = LoanStatus.RETURNED,
    batch: Batch | None = None,
) -> Loan:
    """Take an instrument back: condition required; damaged goes to repair, otherwise available.

    ``batch``: a caller's batch to add the check-in to (it writes it, with its own parts); without
    one the check-in is written here. Either way it is the loan and instrument rows, the condition
    check, the three audit events and the look for a waiting child, in one statement on PostgreSQL
    (see loanservice.batch); repair or a waiting child's hold follows once it is written.
    """
    _refuse_unless_issued(loan, "checked in")
    if not loan.is_open:
        raise NotOnLoan(f"{loan.instrument.asset_tag} is not on loan: it was already returned.")
    returned_on = returned_on or today()
    if returned_on < loan.started_on:
        raise InvalidInput("The return date is before the loan started.", field="returned_on")
    if returned_on > today():
        raise InvalidInput("The return date is in the future.", field="returned_on")
    if damaged and not note.strip():
        raise InvalidInput("Describe the damage.", field="note")
    instrument = loan.instrument
    own = batch is None
    batch = Batch() if own else batch
    record_condition(session, actor, instrument, grade, CheckReason.RETURN, note, batch=batch)
    batch.set(loan, status=status, closed_on=returned_on, condition_at_return=grade, damaged=damaged,
              return_note=note, closed_by_id=actor.id if actor is not None else None)
    change_status(session, actor, instrument, S.AVAILABLE, batch=batch)
    record(session, actor, "loan.in", loan,
           f"Returned by {audit_name(loan.borrower)}" + (" damaged" if damaged else ""),
           {"grade": grade, "note": note, "damaged": damaged, "returned_on": returned_on}, instrument=instrument,
           batch=batch)
    if damaged:
        # Through a repair record, so that "Back from repair" brings it back into stock.
        batch.then(lambda: send_to_repair(session, actor, instrument, repairer=DAMAGE_REPAIRER, fault=note.strip()))
    else:
        instrument_freed.send(instrument, session=session, actor=actor, batch=batch)
    if own:
        batch.write(session)
    return loan


def renew(session: Session, actor, loan: Loan, due_on: date | None = None, *, seen_due_on: date | None = None) -> Loan:
    """Extend an open loan to ``due_on`` (by default the end of the next term), up to ``latest_due_date``.

    ``seen_due_on``: the due date the person renewing was shown; if the loan has moved since (renewed
    from another tab, or the same form posted again), nothing is renewed twice."""
    _refuse_unless_issued(loan, "renewed")
    if not loan.is_open:
        raise NotOnLoan(f"{loan.instrument.asset_tag} is not on loan; it cannot be renewed.")
    if seen_due_on is not None and seen_due_on != loan.due_on:
        raise NotOnLoan(f"{loan.instrument.asset_tag} was renewed meanwhile: it is now due back "
                        f"{loan.due_on:%-d %b %Y}. Renew it again only if it needs longer still.")
    if due_on is None:  # the end of the next term after the due date, or after today if that is later
        due_on = default_due_date(session, max(loan.due_on, today()) + timedelta(days=1))
        if due_on is None:
            raise InvalidInput("No later academic term is set up: give the new due date.", field="due_on")
    if due_on <= loan.due_on:
        raise InvalidInput("A renewal moves the due date later.", field="due_on")
    if due_on < today():  # an overdue loan renewed to a date already gone would still be overdue
        raise InvalidInput(f"{due_on:%-d %b %Y} is in the past: give a due date from today on.", field="due_on")
    check_due_date_in_reach(due_on)
    old = loan.due_on
    loan.due_on = due_on
    record(session, actor, "loan.renewed", loan, f"Renewed until {due_on:%-d %b %Y}",
           {"due_on": [old, due_on]}, instrument=loan.instrument)
    session.flush()
    return loan


def next_size(instrument: Instrument) -> str | None:
    sizes = instrument.type.sizes
    if instrument.size not in sizes or sizes.index(instrument.size) == len(sizes) - 1:
        return None
    return sizes[sizes.index(instrument.size) + 1]


def size_exchange(
    session: Session,
    actor,
    loan: Loan,
    new_instrument: Instrument,
    *,
    grade: int,
    note: str = "",
    damaged: bool = False,
    condition_grade: int | None = None,
) -> Loan:
    """Return one instrument and issue the next size of the same type to the same borrower."""
    old = loan.instrument
    _refuse_unless_issued(loan, "exchanged")
    if not loan.is_open:
        raise NotOnLoan(f"{old.asset_tag} is not on loan.")
    wanted = next_size(old)
    if wanted is None:
        raise InvalidInput(f"{old.asset_tag} is the largest {old.type.name.lower()} size.", field="tag")
    if new_instrument.type_id != old.type_id or new_instrument.size != wanted:
        raise InvalidInput(
            f"{new_instrument.asset_tag} is a {new_instrument.description}; the next size is a "
            f"{old.type.name} {wanted}.", field="tag")
    check_lendable(new_instrument)
    check_not_in_set(session, new_instrument)
    check_in(session, actor, loan, grade=grade, note=note, damaged=damaged, status=LoanStatus.EXCHANGED)
    due = max(loan.due_on, today())
    new_loan = check_out(
        session, actor, new_instrument, loan.borrower, started_on=today(), due_on=due,
        condition_grade=condition_grade,
        charges=Charges(fee_per_term=loan.fee_per_term, charge_per_term=loan.charge_per_term, deposit=loan.deposit),
        exchanged_from=loan,
    )
    # The copied remission category stays as it was agreed, even if the pupil's has lapsed.
    new_loan.remission_category = loan.remission_category
    session.flush()
    return new_loan


def mark_lost(session: Session, actor, loan: Loan, note: str = "", *, replacement_owed: Decimal | None = None) -> Loan:
    """Close a loan as lost or stolen: the instrument goes missing and its replacement value is owed."""
    _refuse_unless_issued(loan, "recorded as lost")
    if not loan.is_open:
        raise NotOnLoan(f"{loan.instrument.asset_tag} is not on loan.")
    instrument = loan.instrument
    owed = replacement_owed if replacement_owed is not None else instrument.replacement_value
    if owed is not None and owed < 0:
        raise InvalidInput("The amount owed cannot be negative.", field="replacement_owed")
    loan.status = LoanStatus.LOST
    loan.closed_on = max(today(), loan.started_on)
    loan.return_note = note
    loan.replacement_owed = owed
    loan.closed_by = actor
    who = audit_name(loan.borrower)
    change_status(session, actor, instrument, S.MISSING, (f"lost by {who}: {note}" if note else f"lost by {who}")[:300])
    record(session, actor, "loan.lost", loan, f"Lost or stolen, {who}",
           {"note": note, "replacement_owed": owed}, instrument=instrument)
    return loan



def roll_over(session: Session, actor, from_term: AcademicTerm, to_term: AcademicTerm) -> int:
    """Move every open loan due at the end of ``from_term`` to the end of ``to_term``; return how many.

    For the yearly roll-over (loans continue unless the hub is told). Classroom sets are left out:
    they come back for servicing, and loans not issued yet (pending their agreement) keep the due date
    the hirer is signing for. Two statements, however many loans: the audit events and the update.
    """
    if to_term.ends_on <= from_term.ends_on:
        raise InvalidInput("Roll loans over to a later term.", field="to_term")
    due = (Loan.closed_on.is_(None), Loan.status == LoanStatus.OPEN, Loan.set_loan_id.is_(None),
           Loan.due_on == from_term.ends_on)
    summary = f"Rolled over from {from_term.name} to {to_term.name}"
    session.execute(insert(AuditEvent).from_select(
        ["at", "actor_id", "action", "entity_type", "entity_id", "instrument_id", "summary", "changes"],
        select(literal(utcnow()), literal(actor.id if actor is not None else None), literal("loan.renewed"),
               literal("loan"), Loan.id, Loan.instrument_id, literal(summary),
               literal({"due_on": [str(from_term.ends_on), str(to_term.ends_on)]}, JSON))
        .where(*due),
    ))
    result = session.execute(update(Loan).where(*due).values(due_on=to_term.ends_on)
                             .execution_options(synchronize_session=False))
    session.flush()
    return result.rowcount
