"""Finding loans: the one holding an instrument, a borrower's, the overdue, those awaiting an agreement;
locking one."""
from collections.abc import Iterable
from datetime import date

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session, joinedload

from ..borrowers.models import Family, Pupil
from ..inventory.models import Instrument, InstrumentStatus
from ..locks import lock
from ..timeutil import today
from .calendar import days_of_term, days_off
from .models import Loan, LoanStatus, borrower_column


def current_loan_for(session: Session, instrument: Instrument) -> Loan | None:
    """The loan holding the instrument: open, or pending its signed agreement (at most one, by an index)."""
    return session.scalars(select(Loan).where(Loan.instrument_id == instrument.id, Loan.closed_on.is_(None))).first()


def lock_loan(session: Session, loan: Loan) -> None:
    """Lock the loan's instrument and read the loan again, so that two people acting on one loan take turns."""
    lock(session, loan.instrument, read_again=(loan,))


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


_LOANS_OF_INSTRUMENT = (select(Loan).where(Loan.instrument_id == bindparam("instrument_id"))
                        .options(joinedload(Loan.pupil), joinedload(Loan.family), joinedload(Loan.school),
                                 joinedload(Loan.other_borrower))
                        .order_by(Loan.started_on.desc(), Loan.id.desc()))


def loans_of_instrument(session: Session, instrument: Instrument) -> list[Loan]:
    """Every loan of the instrument, the latest first, with its borrower (a prebuilt statement: the
    instrument page runs it on every scan)."""
    return list(session.scalars(_LOANS_OF_INSTRUMENT, {"instrument_id": instrument.id}))


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
