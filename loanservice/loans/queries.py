"""Finding loans: the one holding an instrument, a borrower's, the overdue, those awaiting an agreement;
locking one."""
import csv
import io
from collections.abc import Iterable
from datetime import date

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session, joinedload

from ..borrowers.models import Family, OtherBorrower, Pupil, borrower_kind
from ..inventory.csvio import spreadsheet_cell
from ..inventory.models import Instrument, InstrumentStatus
from ..locks import lock
from ..schools.models import School
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


LIST_STATUSES = {"out": "Out on loan", "overdue": "Overdue", "pending": "Waiting for a signed agreement",
                 "closed": "Returned or closed"}
LIST_KINDS = {"pupil": "Pupils", "family": "Families", "school": "Schools", "other": "Ensembles, teachers, partners"}


def loans_query(status: str = "", kind: str = "", q: str = "", *, on: date | None = None):
    """The select of loans the loans list shows for its filters, newest first: ``status`` (a key of
    LIST_STATUSES, or every loan), ``kind`` of borrower (a key of LIST_KINDS), ``q`` part of the
    instrument's tag or of the borrower's name."""
    on = on or today()
    query = (select(Loan).join(Loan.instrument)
             .options(joinedload(Loan.instrument), joinedload(Loan.pupil).joinedload(Pupil.family),
                      joinedload(Loan.family), joinedload(Loan.school), joinedload(Loan.other_borrower))
             .order_by(Loan.started_on.desc(), Loan.id.desc()))
    if status == "out":
        query = query.where(Loan.status == LoanStatus.OPEN)
    elif status == "overdue":
        query = query.where(Loan.status == LoanStatus.OPEN, Loan.due_on < on)
    elif status == "pending":
        query = query.where(Loan.status == LoanStatus.PENDING)
    elif status == "closed":
        query = query.where(Loan.closed_on.is_not(None))
    if kind in LIST_KINDS:
        query = query.where(getattr(Loan, borrower_column_of_kind(kind)).is_not(None))
    q = q.strip()
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        names = or_(
            Instrument.asset_tag.ilike(like, escape="\\"),
            Loan.pupil_id.in_(select(Pupil.id).where(Pupil.name.ilike(like, escape="\\"))),
            Loan.family_id.in_(select(Family.id).where(Family.name.ilike(like, escape="\\"))),
            Loan.school_id.in_(select(School.id).where(School.name.ilike(like, escape="\\"))),
            Loan.other_borrower_id.in_(select(OtherBorrower.id).where(OtherBorrower.name.ilike(like, escape="\\"))),
        )
        query = query.where(names)
    return query


def borrower_column_of_kind(kind: str) -> str:
    return {"pupil": "pupil_id", "family": "family_id", "school": "school_id", "other": "other_borrower_id"}[kind]


LOAN_EXPORT_COLUMNS = ["loan", "asset_tag", "instrument", "borrower", "borrower_kind", "hirer", "status",
                       "started_on", "due_on", "closed_on", "fee_per_term", "remission", "charge_per_term", "deposit"]


def export_loans(session: Session, query) -> Iterable[str]:
    """The loans of ``query`` (the list's filters) as CSV, a thousand rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        data = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return data

    writer.writerow(LOAN_EXPORT_COLUMNS)
    yield flush()
    for count, loan in enumerate(session.scalars(query.execution_options(yield_per=1000)), 1):
        hirer = loan.pupil.family if loan.pupil is not None and loan.pupil.family is not None else loan.borrower
        writer.writerow([spreadsheet_cell(value) for value in (
            loan.id, loan.instrument.asset_tag, loan.instrument.description, loan.borrower,
            borrower_kind(loan.borrower), hirer, loan.status.label, loan.started_on, loan.due_on, loan.closed_on,
            loan.fee_per_term, loan.remission_category, loan.charge_per_term, loan.deposit)])
        if count % 1000 == 0:
            yield flush()
    yield flush()
