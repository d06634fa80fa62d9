"""The academic calendar: terms, closures within them (half-terms, INSET days), counting days of term,
and the dates a loan may start and be due.

``days_of_term`` is the one count of days that matter for chasing a loan: the overdue list, the
days a notice says a loan is overdue, and the time between one overdue letter and the next all
use it, so that a school holiday or a half-term is never "overdue".
"""
from collections.abc import Iterable
from datetime import date, timedelta
from itertools import pairwise

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from ..audit.services import record
from ..errors import InvalidInput, LoanServiceError
from ..signals import term_removing
from ..timeutil import today
from .models import AcademicTerm, LoanCharge, TermClosure

DaysOff = list[tuple[date, date]]


class TermInUse(LoanServiceError):
    """A term that charges or notices rely on cannot be removed."""

    status_code = 409


def holidays(terms: Iterable[AcademicTerm], closures: Iterable[TermClosure] = ()) -> DaysOff:
    """The days that are not days of term, as (first, last) spans in date order: the school holidays
    (the gaps between consecutive terms) and the closures within terms."""
    ordered = sorted(terms, key=lambda t: t.starts_on)
    spans = [(a.ends_on + timedelta(days=1), b.starts_on - timedelta(days=1))
             for a, b in pairwise(ordered) if b.starts_on - a.ends_on > timedelta(days=1)]
    spans += [(c.starts_on, c.ends_on) for c in closures]
    merged: DaysOff = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + timedelta(days=1):
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def days_off(session: Session) -> DaysOff:
    """The school holidays and closures of the whole calendar (see ``holidays``)."""
    terms = session.scalars(select(AcademicTerm).options(selectinload(AcademicTerm.closures))).all()
    return holidays(terms, [c for t in terms for c in t.closures])


def days_of_term(after: date, until: date, off: DaysOff) -> int:
    """Days after ``after`` up to and including ``until``, leaving out the days ``off`` (holidays and
    closures): how many days a loan due on ``after`` is overdue on ``until``, or how long since a letter."""
    if until <= after:
        return 0
    first, last = after + timedelta(days=1), until
    total = (last - first).days + 1
    for start, end in off:
        overlap = (min(end, last) - max(start, first)).days + 1
        if overlap > 0:
            total -= overlap
    return total


def after_days_of_term(start: date, days: int, off: DaysOff) -> date:
    """The day by which ``days`` days of term have passed after ``start`` (the inverse of ``days_of_term``):
    a date to return something by that gives the days asked for without counting a holiday or half-term."""
    end = start + timedelta(days=days)
    while days_of_term(start, end, off) < days:
        end += timedelta(days=days - days_of_term(start, end, off))
    return end


# ---------------------------------------------------------------- terms


def _check_term(session: Session, name: str, starts_on: date, ends_on: date, term: AcademicTerm | None) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("Name the term.", field="name")
    if ends_on <= starts_on:
        raise InvalidInput("A term ends after it starts.", field="ends_on")
    others = (AcademicTerm.id != term.id,) if term is not None else ()
    if session.scalar(select(AcademicTerm.id).where(func.lower(AcademicTerm.name) == name.lower(), *others)):
        raise InvalidInput(f"There is already a term called {name}.", field="name")
    overlap = session.scalar(select(AcademicTerm.name).where(
        AcademicTerm.starts_on <= ends_on, AcademicTerm.ends_on >= starts_on, *others))
    if overlap:
        raise InvalidInput(f"The dates overlap {overlap}.", field="starts_on")
    if term is not None:
        outside = [c for c in term.closures if c.starts_on < starts_on or c.ends_on > ends_on]
        if outside:
            raise InvalidInput(f"The closure {outside[0].name} ({outside[0].starts_on:%-d %b} to "
                               f"{outside[0].ends_on:%-d %b %Y}) would fall outside the term: remove it first.",
                               field="starts_on")
    return name


def add_term(session: Session, actor, name: str, starts_on: date, ends_on: date) -> AcademicTerm:
    """Add a term to the academic calendar."""
    term = AcademicTerm(name=_check_term(session, name, starts_on, ends_on, None), starts_on=starts_on,
                        ends_on=ends_on)
    session.add(term)
    session.flush()
    record(session, actor, "term.added", term, f"Added term {term.name}")
    return term


def change_term(session: Session, actor, term: AcademicTerm, name: str, starts_on: date,
                ends_on: date) -> AcademicTerm:
    """Rename a term or move its dates (loans keep the due dates they were given)."""
    name = _check_term(session, name, starts_on, ends_on, term)
    before = {"name": term.name, "starts_on": term.starts_on, "ends_on": term.ends_on}
    term.name, term.starts_on, term.ends_on = name, starts_on, ends_on
    session.flush()
    changes = {k: [v, getattr(term, k)] for k, v in before.items() if v != getattr(term, k)}
    record(session, actor, "term.changed", term, f"Changed term {term.name}", changes)
    return term


def remove_term(session: Session, actor, term: AcademicTerm) -> None:
    """Remove a term (and its closures) that no charge or overdue letter relies on yet."""
    charged = session.scalar(select(func.count()).select_from(LoanCharge).where(LoanCharge.term_id == term.id))
    if charged:
        raise TermInUse(f"{term.name} cannot be removed: {charged} {'charge was' if charged == 1 else 'charges were'} "
                        "raised for it. Change its name or dates instead.")
    term_removing.send(term, session=session)
    record(session, actor, "term.removed", term, f"Removed term {term.name}",
           {"starts_on": term.starts_on, "ends_on": term.ends_on})
    session.delete(term)
    session.flush()


# ---------------------------------------------------------------- closures within terms


def add_closure(session: Session, actor, term: AcademicTerm, name: str, starts_on: date,
                ends_on: date) -> TermClosure:
    """Close schools for some days of a term (a half-term, an INSET day): those days are not counted."""
    name = name.strip()
    if not name:
        raise InvalidInput("Name the closure, e.g. Half-term.", field="name")
    if ends_on < starts_on:
        raise InvalidInput("A closure ends on or after the day it starts.", field="ends_on")
    if starts_on < term.starts_on or ends_on > term.ends_on:
        raise InvalidInput(f"{term.name} runs from {term.starts_on:%-d %b} to {term.ends_on:%-d %b %Y}: "
                           "a closure falls within it.", field="starts_on")
    clash = next((c for c in term.closures if c.starts_on <= ends_on and c.ends_on >= starts_on), None)
    if clash is not None:
        raise InvalidInput(f"The dates overlap {clash.name} ({clash.starts_on:%-d %b} to {clash.ends_on:%-d %b}).",
                           field="starts_on")
    closure = TermClosure(term=term, name=name[:60], starts_on=starts_on, ends_on=ends_on)
    session.add(closure)
    session.flush()
    record(session, actor, "term.closure_added", term,
           f"{name} in {term.name}: {starts_on:%-d %b} to {ends_on:%-d %b %Y}",
           {"starts_on": starts_on, "ends_on": ends_on})
    return closure


def remove_closure(session: Session, actor, closure: TermClosure) -> None:
    """Take a closure out of the calendar: its days count as days of term again."""
    term = closure.term
    record(session, actor, "term.closure_removed", term, f"Removed {closure.name} from {term.name}",
           {"starts_on": closure.starts_on, "ends_on": closure.ends_on})
    term.closures.remove(closure)
    session.flush()


# ---------------------------------------------------------------- dates of a loan


def default_due_date(session: Session, start: date) -> date | None:
    """The end of the term that ``start`` falls in (or the next term, in a holiday)."""
    return session.scalar(
        select(AcademicTerm.ends_on).where(AcademicTerm.ends_on >= start).order_by(AcademicTerm.ends_on).limit(1)
    )


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


def resolve_due_date(session: Session, start: date, due: date | None) -> date:
    """The due date given, or the end of the term; never before the start."""
    if due is None:
        due = default_due_date(session, start)
        if due is None:
            raise InvalidInput(f"No academic term covers {start:%-d %b %Y}: give a due date.", field="due_on")
    _check_dates(start, due)
    return due
