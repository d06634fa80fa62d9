"""Lending: check an instrument out to a borrower and back in, issue a loan held for its agreement,
cancel, renew, exchange, lose, roll over.

Every function takes the session first, changes state, flushes and returns; the caller
(view, CLI command, later the API) owns the transaction and rolls back on a LoanServiceError.
"""
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import JSON, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..audit.models import AuditEvent
from ..audit.services import record
from ..batch import Batch
from ..borrowers.models import Family, OtherBorrower, Pupil
from ..borrowers.services import RemissionUnverified, audit_name, pending_claim, unverified_message
from ..errors import InvalidInput, LoanServiceError
from ..inventory.models import CheckReason, Instrument, InstrumentStatus
from ..inventory.services import change_status, record_condition, send_to_repair
from ..locks import lock
from ..schools.models import School
from ..signals import borrowing, instrument_freed, loan_held_for_agreement, loan_issuing, loan_lent_to_hirer, loan_lost
from ..timeutil import today, utcnow
from .availability import already_on_loan, check_after_last_loans, check_lendable, check_not_held, check_not_in_set
from .calendar import check_due_date_in_reach, check_start_date_in_reach, default_due_date, resolve_due_date
from .models import AcademicTerm, Loan, LoanStatus, borrower_column
from .pricing import Charges, quote, remission_and_charge
from .queries import lock_loan

S = InstrumentStatus
DAMAGE_REPAIRER = "Store workshop (damaged on return)"


class NotOnLoan(LoanServiceError):
    status_code = 409


class NotPending(LoanServiceError):
    """The loan is not waiting to be issued (already issued, or cancelled)."""

    status_code = 409


class AgreementNotSigned(LoanServiceError):
    status_code = 409


# ---------------------------------------------------------------- rules


def _refuse_unless_issued(loan: Loan, doing: str) -> None:
    """A loan pending its agreement, or cancelled before issue, was never handed over."""
    if loan.is_pending:
        raise NotOnLoan(f"{loan.instrument.asset_tag} has not been issued: it is waiting for a signed agreement, "
                        f"so it cannot be {doing}. Cancel the loan instead to release it.")
    if loan.status is LoanStatus.CANCELLED:
        raise NotOnLoan(f"The loan of {loan.instrument.asset_tag} was cancelled before issue, so it cannot be "
                        f"{doing}.")


def needs_signed_agreement(config, borrower) -> bool:
    """Whether the hub's setting holds this loan until its agreement is signed: individual loans only.

    A pupil (through their parent or carer) or a family signs; schools sign for sets under their own
    agreement, and ensembles, teachers and partners are lent to as today.
    """
    return bool(config.get("REQUIRE_SIGNED_AGREEMENT")) and isinstance(borrower, (Pupil, Family))


def _flush_loan(session: Session, instrument: Instrument) -> None:
    """Flush, turning a lost race for the instrument into the same clear message as the check."""
    tag = instrument.asset_tag  # read now: a failed flush expires the objects
    try:
        session.flush()
    except IntegrityError as error:
        if "uq_loan_open_per_instrument" in str(error.orig) or "loan.instrument_id" in str(error.orig):
            raise already_on_loan(tag) from error
        raise


# ---------------------------------------------------------------- changes


def open_loan(
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
    """Open the loan of ``instrument`` to ``borrower`` (its row locked first): the step every check-out,
    set item and size exchange shares.

    ``awaiting_agreement`` makes the loan pending instead: the instrument is held for the borrower
    (awaiting its agreement), and nothing is charged or chased until ``issue`` opens it. Use ``check_out``
    to follow the hub's setting.
    """
    lock(session, instrument)
    if awaiting_agreement and (set_loan is not None or not isinstance(borrower, (Pupil, Family))):
        raise InvalidInput("Only a loan to a pupil or a family waits for a signed agreement.", field="borrower")
    started_on = started_on or today()
    if started_on > today():
        raise InvalidInput("A loan starts when the instrument is handed over: the start date is in the future.",
                           field="started_on")
    due_on = resolve_due_date(session, started_on, due_on)
    check_not_held(session, instrument)
    check_lendable(instrument)
    if set_loan is None:  # lending on its own; a set's items go out in check_out_set, which checks these
        check_not_in_set(session, instrument)
        check_after_last_loans(session, [instrument], started_on)
    if charges is None:
        charges = quote(session, instrument, borrower)
    remission, charge = remission_and_charge(borrower, charges)
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
    if isinstance(borrower, Pupil):
        loan.pupil_year_group, loan.pupil_send = borrower.year_group, borrower.send
    session.add(loan)
    _flush_loan(session, instrument)
    who = audit_name(borrower)
    particulars = {"borrower": who, "due_on": due_on, "fee_per_term": charges.fee_per_term,
                   "charge_per_term": charge, "remission": remission, "deposit": charges.deposit}
    if awaiting_agreement:
        change_status(session, actor, instrument, S.AWAITING_AGREEMENT,
                      f"held for {who} until the loan agreement is signed")
        record(session, actor, "loan.pending", loan,
               f"Held for {who} until the agreement is signed (due {due_on:%-d %b %Y})", particulars,
               instrument=instrument)
    else:
        change_status(session, actor, instrument, S.ON_LOAN, f"lent to {who}")
        record(session, actor, "loan.out", loan, f"Lent to {who} until {due_on:%-d %b %Y}", particulars,
               instrument=instrument)
    return loan


def check_out(session: Session, actor, instrument: Instrument, borrower, config, *, override_debt: bool = False,
              **details) -> Loan:
    """Check out under the hub's settings, refused while a pupil's remission claim waits for staff
    (``decide_claim``); with REQUIRE_SIGNED_AGREEMENT, a loan to a pupil or family
    waits, the instrument held, until its agreement (made here, ready to sign) is signed and issued.
    A hirer with an online account is emailed a link to sign it. A start date given is refused before
    ``earliest_start_date``, a due date past ``latest_due_date``. Without the setting, a loan to a
    pupil or family still gets its agreement, made at lending, and the hirer a link to sign it."""
    # Here rather than in open_loan, which a size exchange also goes through: it keeps the loan's due
    # date, however far a roll-over moved it. (A set's items get the set's dates, from check_out_set.)
    if details.get("started_on") is not None:
        check_start_date_in_reach(details["started_on"])
    if details.get("due_on") is not None:
        check_due_date_in_reach(details["due_on"])
    claim = pending_claim(session, borrower)
    if claim is not None:  # decide_claim first: the loan copies the remission that is verified
        raise RemissionUnverified(unverified_message(borrower, claim), field="remission_claim")
    # money refuses (InDebt) an account in debt beyond the hub's limit, unless staff override it (audited).
    borrowing.send(borrower, session=session, config=config, actor=actor, override=override_debt)
    if not needs_signed_agreement(config, borrower):
        loan = open_loan(session, actor, instrument, borrower, **details)
        if isinstance(borrower, (Pupil, Family)):  # the hirer signs after the handover, from a link
            loan_lent_to_hirer.send(loan, session=session, actor=actor, config=config)  # documents
        return loan
    loan = open_loan(session, actor, instrument, borrower, awaiting_agreement=True, **details)
    loan_held_for_agreement.send(loan, session=session, actor=actor, config=config)  # documents: the agreement
    return loan


def held_message(loan: Loan) -> str:
    """What staff are told when a check-out waits for the agreement to be signed."""
    return (f"{loan.instrument.asset_tag} is held for {loan.borrower} until the loan agreement is signed. "
            "Nothing is charged until you issue it from this page.")


def issue(session: Session, actor, loan: Loan) -> Loan:
    """Issue a loan that waited for its agreement: refused until the latest copy is signed; the loan opens
    today with the due date agreed, and the instrument goes on loan."""
    lock_loan(session, loan)
    instrument = loan.instrument
    tag = instrument.asset_tag
    if loan.status is LoanStatus.CANCELLED:
        raise NotPending(f"This loan was cancelled on {loan.closed_on:%-d %b %Y}, so it cannot be issued. "
                         f"Lend {tag} again if it is still wanted.")
    if not loan.is_pending:
        raise NotPending(f"{tag} was already issued on {loan.started_on:%-d %b %Y}.")
    agreement = _signed_agreement(session, loan)
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
           f"Issued to {who} until {loan.due_on:%-d %b %Y}; agreement {agreement.signature_method.label.lower()}",
           {"borrower": who, "held_since": held_since, "started_on": issued_on, "due_on": loan.due_on,
            "agreement_id": agreement.id, "agreement_sha256": agreement.sha256}, instrument=instrument)
    session.flush()
    return loan


def _signed_agreement(session: Session, loan: Loan):
    """The loan's signed agreement, from documents (which refuses one not signed yet), or AgreementNotSigned."""
    signed = [agreement for _, agreement in loan_issuing.send(loan, session=session) if agreement is not None]
    if not signed:
        raise AgreementNotSigned(f"{loan.instrument.asset_tag} cannot be issued: there is no agreement for this "
                                 "loan yet. Make it, then have it signed.")
    return signed[0]


def cancel_pending(session: Session, actor, loan: Loan, note: str = "") -> Loan:
    """Call off a loan that is waiting for its agreement: the instrument is released (to the waiting
    list first, as on a return)."""
    lock_loan(session, loan)
    tag = loan.instrument.asset_tag
    if not loan.is_pending:
        if loan.status is LoanStatus.CANCELLED:
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
    lock_loan(session, loan)
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
    lock_loan(session, loan)
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
    lock_loan(session, loan)
    lock(session, new_instrument)
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
    new_loan = open_loan(
        session, actor, new_instrument, loan.borrower, started_on=today(), due_on=due,
        condition_grade=condition_grade,
        charges=Charges(fee_per_term=loan.fee_per_term, charge_per_term=loan.charge_per_term, deposit=loan.deposit),
        exchanged_from=loan,
    )
    # The copied remission category stays as it was agreed, even if the pupil's has lapsed.
    new_loan.remission_category = loan.remission_category
    new_loan.pupil_year_group, new_loan.pupil_send = loan.pupil_year_group, loan.pupil_send
    session.flush()
    return new_loan


def mark_lost(session: Session, actor, loan: Loan, note: str = "", *, replacement_owed: Decimal | None = None) -> Loan:
    """Close a loan as lost or stolen: the instrument goes missing and its replacement value is owed."""
    lock_loan(session, loan)
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
    loan_lost.send(loan, session=session, actor=actor, amount=owed)
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
