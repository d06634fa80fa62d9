"""What may be lent: an instrument's status and condition, a set it belongs to, its loan history.

Checks raise NotLendable (or InvalidInput on a date field) with words for the person at the counter.
"""
from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from ..errors import InvalidInput, LoanServiceError
from ..inventory.models import Instrument, InstrumentStatus
from ..inventory.services import InvalidTransition
from ..signals import held_instrument_withdrawing, lending_alone
from ..timeutil import today
from ..wording import counted
from .models import Loan, LoanStatus
from .queries import current_loan_for

S = InstrumentStatus


class NotLendable(LoanServiceError):
    """The instrument cannot be lent now (on loan, in repair, missing, written off...)."""

    status_code = 409


# Why an instrument in each status cannot be lent, in words for the person at the counter: in a few
# words (for a list of several, as a set's), and as the whole sentence for one instrument.
_UNLENDABLE = {
    S.ON_LOAN: ("is on loan", "{tag} is already on loan."),
    S.IN_REPAIR: ("is in repair", "{tag} is in repair; it cannot be lent until it is back."),
    S.IN_SERVICE: ("is in servicing", "{tag} is in servicing; it cannot be lent until it is serviced and back."),
    S.MISSING: ("is missing", "{tag} is missing; mark it found before lending it."),
    S.WRITTEN_OFF: ("has been written off", "{tag} has been written off and cannot be lent."),
    S.RESERVED: ("is reserved for someone else", "{tag} is reserved for someone else."),
    S.AWAITING_AGREEMENT: ("is held for someone else until their agreement is signed",
                           "{tag} is held for someone else until their loan agreement is signed."),
}


_UNUSABLE = ("is graded 5 (unusable)", "{tag} is graded 5 (unusable): send it to repair, or record a new condition "
                                       "check, before lending it.")


def already_on_loan(instrument_or_tag) -> NotLendable:
    tag = getattr(instrument_or_tag, "asset_tag", instrument_or_tag)
    return NotLendable(_UNLENDABLE[S.ON_LOAN][1].format(tag=tag))


def _why_not_lendable(instrument: Instrument) -> tuple[str, str] | None:
    why = _UNLENDABLE.get(instrument.status)
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
    out = [i.id for i in reasons if i.status in (S.ON_LOAN, S.AWAITING_AGREEMENT)]
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


def check_not_held(session: Session, instrument: Instrument) -> None:
    """Name the borrower an instrument is held for while their agreement waits to be signed."""
    if instrument.status is S.AWAITING_AGREEMENT:
        held = current_loan_for(session, instrument)
        if held is not None and held.is_pending:
            raise NotLendable(f"{instrument.asset_tag} is held for {held.borrower} until their loan agreement is "
                              "signed.")


def check_not_in_set(session: Session, instrument: Instrument) -> None:
    """A classroom set member goes out with its set (or home from it, through the set): never on its own.
    Sets refuse one of theirs (NotLendable) through the signal."""
    lending_alone.send(instrument, session=session)


@held_instrument_withdrawing.connect
def _refuse_while_held_for_agreement(instrument: Instrument, *, session: Session) -> None:
    """Changes that would strand a loan pending its agreement go through the loan instead."""
    if session.scalar(select(Loan.id).where(Loan.instrument_id == instrument.id,
                                            Loan.status == LoanStatus.PENDING)) is not None:
        raise InvalidTransition(
            f"{instrument.asset_tag} is held for a loan waiting for its signed agreement: cancel that loan "
            "first."
        )


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
