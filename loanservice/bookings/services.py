"""Bookings: a school asks for a set for a coming period, the store allocates one (or declines),
delivers it (it becomes the set loan) and collects it; roll-over to next year; collection reminders.

Every function takes the session first, flushes and returns; the caller owns the transaction.
"""
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from ..audit.services import record
from ..errors import InvalidInput, LoanServiceError, NotFound
from ..inventory.models import Instrument, InstrumentType
from ..loans.models import AcademicTerm
from ..mail import send_when_committed
from ..schools.models import School
from ..sets.models import ClassroomSet, ClassroomSetItem, SetLoan
from ..sets.services import check_out_set
from ..signals import booking_checked
from ..timeutil import today
from ..wording import counted
from .models import HOLDING, Booking, BookingStatus, CalendarFeed


class BookingError(LoanServiceError):
    """A booking change that does not fit (a clash, a wrong set, a step out of order)."""

    status_code = 409


# ---------------------------------------------------------------- the calendar's periods


def school_year_of(day: date) -> int:
    """The year a school year starts in (it runs 1 September to 31 August)."""
    return day.year if day.month >= 9 else day.year - 1


def year_label(year: int) -> str:
    return f"School year {year}/{str(year + 1)[2:]}"


def terms_of_year(session: Session, year: int) -> list[AcademicTerm]:
    """The academic terms of the school year starting in September ``year``, in date order."""
    return list(session.scalars(select(AcademicTerm).where(
        AcademicTerm.starts_on >= date(year, 9, 1), AcademicTerm.starts_on <= date(year + 1, 8, 31))
        .order_by(AcademicTerm.starts_on)))


@dataclass(frozen=True)
class Period:
    """What a booking can be for: one term, or a whole school year (its first term's start to its last's end)."""

    key: str  # "term-<id>" or "year-<yyyy>"
    label: str
    starts_on: date
    ends_on: date


def bookable_periods(session: Session, on: date | None = None) -> list[Period]:
    """The terms and school years that start after ``on`` (today): a booking is for the future. One query."""
    on = on or today()
    terms = session.execute(select(AcademicTerm.id, AcademicTerm.name, AcademicTerm.starts_on, AcademicTerm.ends_on)
                            .where(AcademicTerm.starts_on >= date(school_year_of(on), 9, 1))
                            .order_by(AcademicTerm.starts_on)).all()
    periods = [Period(f"term-{t.id}", t.name, t.starts_on, t.ends_on) for t in terms if t.starts_on > on]
    years: dict[int, list] = {}
    for term in terms:
        years.setdefault(school_year_of(term.starts_on), []).append(term)
    for year, its_terms in sorted(years.items()):
        if its_terms[0].starts_on > on:  # a whole year only when none of its terms has begun yet
            periods.append(Period(f"year-{year}", year_label(year), its_terms[0].starts_on, its_terms[-1].ends_on))
    return periods


def resolve_period(session: Session, key: str, on: date | None = None) -> Period:
    """The period a form chose, refused when it is not a coming term or school year."""
    on = on or today()
    kind, _, number = (key or "").partition("-")
    if kind == "term" and number.isdigit():
        term = session.get(AcademicTerm, int(number))
        if term is not None:
            if term.starts_on <= on:
                raise InvalidInput(f"{term.name} has already begun: book a set for a term still to come.",
                                   field="period")
            return Period(key, term.name, term.starts_on, term.ends_on)
    if kind == "year" and number.isdigit() and len(number) == 4:
        terms = terms_of_year(session, int(number))
        if terms:
            if terms[0].starts_on <= on:
                raise InvalidInput(f"{year_label(int(number))} has already begun: book a set for a term still "
                                   "to come.", field="period")
            return Period(key, year_label(int(number)), terms[0].starts_on, terms[-1].ends_on)
    raise InvalidInput("Choose a term or school year from the list.", field="period")


# ---------------------------------------------------------------- asking


def request_booking(
    session: Session, actor, school: School, *, instrument_type: InstrumentType | None, pupils: int | None,
    period_key: str, sizes: str = "", teacher: str = "", preferred_week: date | None = None, notes: str = "",
) -> Booking:
    """A school asks for a set of one instrument type for a coming term or school year."""
    if instrument_type is None:
        raise InvalidInput("Choose the instrument.", field="type_id")
    if pupils is None or pupils < 1:
        raise InvalidInput("Say how many pupils will play (at least 1).", field="pupils")
    if pupils > 200:
        raise InvalidInput("A class set is for up to 200 pupils: check the number.", field="pupils")
    period = resolve_period(session, period_key)
    if preferred_week is not None:
        preferred_week = preferred_week - timedelta(days=preferred_week.weekday())  # its Monday
        if preferred_week < today():
            raise InvalidInput("The preferred delivery week has passed: choose a week to come.",
                               field="preferred_week")
        if preferred_week > period.ends_on:
            raise InvalidInput(f"The delivery week is after {period.label} ends ({period.ends_on:%-d %b %Y}).",
                               field="preferred_week")
    booking = Booking(school=school, instrument_type=instrument_type, pupils=pupils, sizes=sizes.strip()[:200],
                      teacher=teacher.strip()[:200], period=period.label, starts_on=period.starts_on,
                      ends_on=period.ends_on, preferred_week=preferred_week, notes=notes.strip(),
                      status=BookingStatus.REQUESTED, requested_by=actor)
    session.add(booking)
    session.flush()
    record(session, actor, "booking.requested", booking,
           f"{school.name} asked for a {instrument_type.name} set for {period.label} ({counted(pupils, 'pupil')})")
    return booking


def get_booking(session: Session, booking_id: int) -> Booking:
    booking = session.scalars(select(Booking).where(Booking.id == booking_id).options(
        joinedload(Booking.school), joinedload(Booking.instrument_type), joinedload(Booking.classroom_set))).first()
    if booking is None:
        raise NotFound("There is no such booking.")
    return booking


def bookings_for(session: Session, *, school_id: int | None = None, status: BookingStatus | None = None):
    """The bookings (of one school, or all), newest period first: a select for a pager."""
    query = (select(Booking).options(joinedload(Booking.school), joinedload(Booking.instrument_type),
                                     joinedload(Booking.classroom_set))
             .order_by(Booking.starts_on.desc(), Booking.id.desc()))
    if school_id is not None:
        query = query.where(Booking.school_id == school_id)
    if status is not None:
        query = query.where(Booking.status == status)
    return query


def cancel_booking(session: Session, actor, booking: Booking) -> Booking:
    """The school (or staff) no longer needs it: only before delivery."""
    if booking.status not in (BookingStatus.REQUESTED, BookingStatus.ALLOCATED):
        raise BookingError(f"A booking that is {booking.status.label.lower()} cannot be cancelled.")
    booking.status = BookingStatus.CANCELLED
    session.flush()
    record(session, actor, "booking.cancelled", booking, f"Cancelled: {booking}")
    return booking


# ---------------------------------------------------------------- which sets fit


# How many instruments a set has, and how many of them are of another type than the one asked for.
def _set_sizes(type_id):
    return (select(ClassroomSetItem.set_id.label("set_id"), func.count().label("size"),
                   func.sum(case((Instrument.type_id == type_id, 0), else_=1)).label("others"))
            .join(Instrument, Instrument.id == ClassroomSetItem.instrument_id)
            .group_by(ClassroomSetItem.set_id).subquery())


def _clashing_booking(starts_on, ends_on, exclude_id=None):
    """A holding booking of the set (correlated) overlapping the dates."""
    clauses = [Booking.set_id == ClassroomSet.id, Booking.status.in_(HOLDING),
               Booking.starts_on <= ends_on, Booking.ends_on >= starts_on]
    if exclude_id is not None:
        clauses.append(Booking.id != exclude_id)
    return exists().where(*clauses)


def _out_over(starts_on):
    """The set is out at a school and not due back before the dates start."""
    return exists().where(SetLoan.set_id == ClassroomSet.id, SetLoan.closed_on.is_(None),
                          SetLoan.due_on >= starts_on)


def free_sets_query(type_id: int, starts_on: date, ends_on: date, *, pupils: int = 0, exclude_booking=None):
    """One query: the sets all of ``type_id``, with at least ``pupils`` instruments, neither booked nor
    out over the dates; rows of (id, name, size): plain rows, as a long answer loads faster than objects."""
    sizes = _set_sizes(type_id)
    return (select(ClassroomSet.id, ClassroomSet.name, sizes.c.size).join(sizes, sizes.c.set_id == ClassroomSet.id)
            .where(sizes.c.others == 0, sizes.c.size >= pupils,
                   ~_clashing_booking(starts_on, ends_on, exclude_booking), ~_out_over(starts_on))
            .order_by(sizes.c.size, ClassroomSet.name))


def free_sets(session: Session, type_id: int, starts_on: date, ends_on: date, *, pupils: int = 0,
              exclude_booking: int | None = None) -> list:
    """Which sets of a type are free for the dates ("which ukulele sets are free for Spring 2027?"):
    rows with ``id``, ``name`` and ``size``."""
    return list(session.execute(
        free_sets_query(type_id, starts_on, ends_on, pupils=pupils, exclude_booking=exclude_booking)))


def suggested_sets(session: Session, booking: Booking) -> list:
    """The sets that fit a booking: its type, enough instruments for its pupils, free for its dates."""
    return free_sets(session, booking.type_id, booking.starts_on, booking.ends_on, pupils=booking.pupils,
                     exclude_booking=booking.id)


def check_set_for(session: Session, classroom_set: ClassroomSet, *, type_id: int, type_name: str, pupils: int,
                  starts_on: date, ends_on: date, booking_id: int | None = None) -> None:
    """Refuse a set that does not fit these dates and pupils, with the reason (the rule the constraint holds)."""
    size, others = session.execute(
        select(func.count(), func.coalesce(func.sum(case((Instrument.type_id == type_id, 0), else_=1)), 0))
        .select_from(ClassroomSetItem).join(Instrument, Instrument.id == ClassroomSetItem.instrument_id)
        .where(ClassroomSetItem.set_id == classroom_set.id)).one()
    if size == 0:
        raise BookingError(f"{classroom_set.name} has no instruments.", field="set_id")
    if others:
        raise BookingError(f"{classroom_set.name} is not a {type_name} set: "
                           f"{counted(others, 'instrument')} of it {'is' if others == 1 else 'are'} of another type.",
                           field="set_id")
    if size < pupils:
        raise BookingError(f"{classroom_set.name} has {counted(size, 'instrument')}, too few for "
                           f"{counted(pupils, 'pupil')}.", field="set_id")
    clash = session.scalars(select(Booking).where(
        Booking.set_id == classroom_set.id, Booking.status.in_(HOLDING), Booking.starts_on <= ends_on,
        Booking.ends_on >= starts_on, Booking.id != (booking_id or -1)).options(joinedload(Booking.school))).first()
    if clash is not None:
        raise BookingError(_clash_message(classroom_set, clash), field="set_id")
    out = session.scalars(select(SetLoan).where(SetLoan.set_id == classroom_set.id, SetLoan.closed_on.is_(None),
                                                SetLoan.due_on >= starts_on)).first()
    if out is not None and out.id != _set_loan_of(session, booking_id):
        raise BookingError(f"{classroom_set.name} is out at {out.school.name} until {out.due_on:%-d %b %Y}.",
                           field="set_id")
    for _receiver, refusal in booking_checked.send(classroom_set, session=session, starts_on=starts_on,
                                                   ends_on=ends_on):
        if refusal:
            raise BookingError(str(refusal), field="set_id")


def _set_loan_of(session: Session, booking_id: int | None) -> int | None:
    return session.scalar(select(Booking.set_loan_id).where(Booking.id == booking_id)) if booking_id else None


def _clash_message(classroom_set: ClassroomSet, clash: Booking) -> str:
    return (f"{classroom_set.name} is already booked by {clash.school.name} for {clash.period} "
            f"({clash.starts_on:%-d %b %Y} to {clash.ends_on:%-d %b %Y}): choose another set.")


def _flush_holding(session: Session, booking: Booking, classroom_set: ClassroomSet) -> None:
    """Write a booking that now holds its set; the exclusion constraint refuses a clash that won a race."""
    name = classroom_set.name  # read now: after a failed flush nothing can be loaded
    try:
        session.flush()
    except IntegrityError as error:  # the caller rolls the transaction back
        raise BookingError(f"{name} was booked for overlapping dates a moment ago: "
                           "choose another set.", field="set_id") from error


# ---------------------------------------------------------------- answering


def allocate(session: Session, actor, booking: Booking, classroom_set: ClassroomSet | None, *,
             delivery_on: date | None = None, collection_on: date | None = None) -> Booking:
    """Accept a requested booking with a specific set (or change the set of an allocated one)."""
    if classroom_set is None:
        raise InvalidInput("Choose the set to allocate.", field="set_id")
    if booking.status not in (BookingStatus.REQUESTED, BookingStatus.ALLOCATED):
        raise BookingError(f"This booking is {booking.status.label.lower()}: it cannot take another set.")
    if booking.starts_on <= today() and booking.status is BookingStatus.REQUESTED:
        raise BookingError(f"{booking.period} has already begun: the booking is in the past.")
    check_set_for(session, classroom_set, type_id=booking.type_id, type_name=booking.instrument_type.name,
                  pupils=booking.pupils, starts_on=booking.starts_on, ends_on=booking.ends_on, booking_id=booking.id)
    booking.classroom_set = classroom_set
    booking.status = BookingStatus.ALLOCATED
    booking.delivery_on = delivery_on or booking.delivery_on or booking.preferred_week or booking.starts_on
    booking.collection_on = collection_on or booking.collection_on or booking.ends_on
    _check_schedule(booking.delivery_on, booking.collection_on)
    _flush_holding(session, booking, classroom_set)
    record(session, actor, "booking.allocated", booking, f"Allocated {classroom_set.name} to {booking}")
    return booking


def decline(session: Session, actor, booking: Booking, reason: str) -> Booking:
    """Refuse a requested booking, with a reason the school sees."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why, for the school.", field="reason")
    if booking.status is not BookingStatus.REQUESTED:
        raise BookingError(f"This booking is {booking.status.label.lower()}: only one waiting for an answer "
                           "can be declined.")
    booking.status, booking.decline_reason = BookingStatus.DECLINED, reason[:500]
    session.flush()
    record(session, actor, "booking.declined", booking, f"Declined: {booking}", {"reason": reason})
    return booking


def _check_schedule(delivery_on: date | None, collection_on: date | None) -> None:
    if delivery_on and collection_on and collection_on < delivery_on:
        raise InvalidInput(f"The collection ({collection_on:%-d %b %Y}) is before the delivery "
                           f"({delivery_on:%-d %b %Y}).", field="collection_on")


def schedule(session: Session, actor, booking: Booking, *, delivery_on: date | None,
             collection_on: date | None) -> Booking:
    """Plan the day of delivery and of collection."""
    if booking.status not in (BookingStatus.ALLOCATED, BookingStatus.DELIVERED):
        raise BookingError("Allocate a set before planning its delivery.")
    if booking.status is BookingStatus.DELIVERED:
        delivery_on = booking.delivered_on  # done: only the collection moves
    if delivery_on is None:
        raise InvalidInput("Give the delivery day.", field="delivery_on")
    collection_on = collection_on or booking.ends_on
    _check_schedule(delivery_on, collection_on)
    if booking.status is BookingStatus.ALLOCATED and delivery_on < today():
        raise InvalidInput("The delivery day has passed: choose a day to come.", field="delivery_on")
    booking.delivery_on, booking.collection_on = delivery_on, collection_on
    if booking.collection_reminded_on and collection_on > today() + timedelta(days=7):
        booking.collection_reminded_on = None  # moved later: remind again before the new day
    session.flush()
    record(session, actor, "booking.scheduled", booking,
           f"Delivery {delivery_on:%-d %b %Y}, collection {collection_on:%-d %b %Y}")
    return booking


# ---------------------------------------------------------------- delivering and collecting


def deliver(session: Session, actor, booking: Booking) -> SetLoan:
    """The set is delivered: the booking becomes the set loan, due at the booking's end."""
    if booking.status is not BookingStatus.ALLOCATED:
        raise BookingError(f"Only an allocated booking can be delivered; this one is "
                           f"{booking.status.label.lower()}.")
    classroom_set = booking.classroom_set
    set_loan = check_out_set(session, actor, classroom_set, booking.school, started_on=today(),
                             due_on=booking.ends_on)
    booking.status, booking.delivered_on, booking.set_loan = BookingStatus.DELIVERED, today(), set_loan
    booking.delivery_on = today()
    if booking.collection_on is None or booking.collection_on < today():
        booking.collection_on = booking.ends_on
    session.flush()
    record(session, actor, "booking.delivered", booking, f"Delivered {classroom_set.name} to {booking.school.name}")
    return set_loan


def collect(session: Session, actor, booking: Booking) -> Booking:
    """The store has collected the set: its items are then checked in by scan at the store."""
    if booking.status is not BookingStatus.DELIVERED:
        if booking.status in (BookingStatus.REQUESTED, BookingStatus.ALLOCATED):
            raise BookingError("The set has not been delivered yet: a collection comes after its delivery.")
        raise BookingError(f"This booking is {booking.status.label.lower()}: there is nothing to collect.")
    booking.status, booking.collected_on = BookingStatus.COLLECTED, max(today(), booking.delivered_on)
    session.flush()
    record(session, actor, "booking.collected", booking,
           f"Collected {booking.classroom_set.name} from {booking.school.name}")
    return booking


# ---------------------------------------------------------------- the run sheet


@dataclass
class Stop:
    """One delivery or collection on a run sheet."""

    kind: str  # "Delivery" or "Collection"
    day: date
    booking: Booking
    instruments: int
    sizes: str  # e.g. "10 x 1/2, 20 x 3/4"


def run_sheet(session: Session, first: date, last: date) -> list[Stop]:
    """The deliveries (allocated) and collections (delivered) planned from ``first`` to ``last``, by day."""
    bookings = session.scalars(select(Booking).where(or_(
        and_(Booking.status == BookingStatus.ALLOCATED, Booking.delivery_on.between(first, last)),
        and_(Booking.status == BookingStatus.DELIVERED, Booking.collection_on.between(first, last))))
        .options(joinedload(Booking.school), joinedload(Booking.classroom_set),
                 joinedload(Booking.instrument_type))).all()
    sizes = _sizes_of(session, {b.set_id for b in bookings})

    def described(counts: dict[str, int]) -> str:
        return ", ".join(f"{n} x {size}" if size else f"{n} (one size)" for size, n in sorted(counts.items()))

    stops = [Stop("Delivery" if b.status is BookingStatus.ALLOCATED else "Collection",
                  b.delivery_on if b.status is BookingStatus.ALLOCATED else b.collection_on, b,
                  sum(sizes.get(b.set_id, {}).values()),
                  described(sizes.get(b.set_id, {})))
             for b in bookings]
    return sorted(stops, key=lambda s: (s.day, s.kind, s.booking.school.name))


def _sizes_of(session: Session, set_ids: set[int]) -> dict[int, dict[str, int]]:
    result: dict[int, dict[str, int]] = {}
    if not set_ids:
        return result
    for set_id, size, n in session.execute(
            select(ClassroomSetItem.set_id, Instrument.size, func.count())
            .join(Instrument, Instrument.id == ClassroomSetItem.instrument_id)
            .where(ClassroomSetItem.set_id.in_(set_ids)).group_by(ClassroomSetItem.set_id, Instrument.size)):
        result.setdefault(set_id, {})[size] = n
    return result


# ---------------------------------------------------------------- the set's year


@dataclass
class TimelineCell:
    term: AcademicTerm
    state: str  # "free", "booked", "out"
    booking_id: int | None = None
    school_name: str = ""


def set_timeline(session: Session, classroom_set: ClassroomSet, year: int) -> list[TimelineCell]:
    """The set across the terms of one school year: free, booked (by whom) or out (at whom).

    Three small queries of plain rows: the year's terms, the set's bookings and its loans that touch them."""
    terms = terms_of_year(session, year)
    if not terms:
        return []
    first, last = terms[0].starts_on, terms[-1].ends_on
    bookings = session.execute(
        select(Booking.id, Booking.starts_on, Booking.ends_on, Booking.status, Booking.set_loan_id, School.name)
        .join(School, School.id == Booking.school_id)
        .where(Booking.set_id == classroom_set.id, Booking.status.in_((*HOLDING, BookingStatus.COLLECTED)),
               Booking.starts_on <= last, Booking.ends_on >= first)).all()
    loans = session.execute(
        select(SetLoan.id, SetLoan.started_on, SetLoan.due_on, SetLoan.closed_on, School.name)
        .join(School, School.id == SetLoan.school_id)
        .where(SetLoan.set_id == classroom_set.id, SetLoan.started_on <= last,
               or_(SetLoan.closed_on.is_(None), SetLoan.closed_on >= first))).all()
    cells = []
    for term in terms:
        loan = next((sl for sl in loans if sl.started_on <= term.ends_on
                     and (sl.closed_on or max(sl.due_on, today())) >= term.starts_on), None)
        booking = next((b for b in bookings if b.starts_on <= term.ends_on and b.ends_on >= term.starts_on
                        and b.status is not BookingStatus.COLLECTED), None)
        if loan is not None:
            of_loan = next((b for b in bookings if b.set_loan_id == loan.id), booking)
            cells.append(TimelineCell(term, "out", of_loan.id if of_loan else None, loan.name))
        elif booking is not None:
            cells.append(TimelineCell(term, "booked", booking.id, booking.name))
        else:
            cells.append(TimelineCell(term, "free"))
    return cells


# ---------------------------------------------------------------- roll-over


def rollover_deadline(config, year: int) -> date:
    """The day by which a school confirms its set for the school year after ``year`` (setting
    BOOKING_ROLLOVER_BY, "MM-DD", in the summer of that year; 1 July by default)."""
    month, _, day = (config.get("BOOKING_ROLLOVER_BY") or "07-01").partition("-")
    return date(year + 1, int(month), int(day))


def rollover_candidates(session: Session, config, *, school_id: int | None = None,
                        on: date | None = None) -> list[Booking]:
    """This year's bookings that hold a set to the end of the year and are not rolled over yet, while
    next year's terms are in the calendar and the deadline has not passed."""
    on = on or today()
    year = school_year_of(on)
    if on > rollover_deadline(config, year) or not terms_of_year(session, year + 1):
        return []
    this_year = terms_of_year(session, year)
    if not this_year:
        return []
    rolled = select(Booking.rolled_from_id).where(Booking.rolled_from_id.is_not(None))
    query = (select(Booking).where(Booking.status.in_(HOLDING), Booking.ends_on == this_year[-1].ends_on,
                                   Booking.id.not_in(rolled))
             .options(joinedload(Booking.school), joinedload(Booking.classroom_set),
                      joinedload(Booking.instrument_type)).order_by(Booking.id))
    if school_id is not None:
        query = query.where(Booking.school_id == school_id)
    return list(session.scalars(query))


def roll_over(session: Session, actor, config, booking: Booking, on: date | None = None) -> Booking:
    """Confirm a school's set for next school year: the same set, booked for all of next year's terms."""
    on = on or today()
    if booking not in rollover_candidates(session, config, school_id=booking.school_id, on=on):
        raise BookingError(f"{booking} cannot be rolled over: it is not held to the end of this year, it is "
                           "rolled over already, or the date to confirm has passed.")
    terms = terms_of_year(session, school_year_of(on) + 1)
    starts_on, ends_on = terms[0].starts_on, terms[-1].ends_on
    classroom_set = booking.classroom_set
    check_set_for(session, classroom_set, type_id=booking.type_id, type_name=booking.instrument_type.name,
                  pupils=booking.pupils, starts_on=starts_on, ends_on=ends_on)
    again = Booking(school=booking.school, instrument_type=booking.instrument_type, pupils=booking.pupils,
                    sizes=booking.sizes, teacher=booking.teacher,
                    period=year_label(school_year_of(starts_on)), starts_on=starts_on, ends_on=ends_on,
                    notes=booking.notes, status=BookingStatus.ALLOCATED, classroom_set=classroom_set,
                    delivery_on=starts_on, collection_on=ends_on, rolled_from_id=booking.id, requested_by=actor)
    session.add(again)
    _flush_holding(session, again, classroom_set)
    record(session, actor, "booking.rolled_over", again, f"Rolled over {classroom_set.name} for {again.period}")
    return again


def roll_over_all(session: Session, actor, config, booking_ids: Sequence[int],
                  on: date | None = None) -> list[Booking]:
    """Roll over, in one transaction, the bookings confirmed on the page (each still a candidate)."""
    candidates = {b.id: b for b in rollover_candidates(session, config, on=on)}
    missing = [i for i in booking_ids if i not in candidates]
    if missing or not booking_ids:
        raise BookingError("The list of bookings to roll over has changed since the page was opened: "
                           "look again and confirm.")
    return [roll_over(session, actor, config, candidates[i], on) for i in booking_ids]


# ---------------------------------------------------------------- reminders


def remind_collections(session: Session, config, on: date | None = None) -> int:
    """Email each school a week before a collection, once: safe to run from cron at any frequency."""
    on = on or today()
    due = session.scalars(select(Booking).where(
        Booking.status == BookingStatus.DELIVERED, Booking.collection_reminded_on.is_(None),
        Booking.collection_on.between(on, on + timedelta(days=7)))
        .options(joinedload(Booking.school), joinedload(Booking.classroom_set))).all()
    sent = 0
    for booking in due:
        # Claimed by one conditional update, so that two runs at once send one reminder.
        claimed = session.execute(update(Booking).where(
            Booking.id == booking.id, Booking.collection_reminded_on.is_(None))
            .values(collection_reminded_on=on)).rowcount
        if not claimed:
            continue
        school = booking.school
        send_when_committed(session, config, to=school.contact_email,
                            subject=f"{booking.classroom_set.name} is collected on {booking.collection_on:%A %-d %B}",
                            body=_reminder_text(booking, config))
        sent += 1
    session.flush()
    return sent


def _reminder_text(booking: Booking, config) -> str:
    return (f"Dear {booking.school.contact_name or booking.school.name},\n\n"
            f"We will collect {booking.classroom_set.name} ({booking.instrument_type.name}) from "
            f"{booking.school.name} on {booking.collection_on:%A %-d %B %Y}.\n\n"
            "Please gather every instrument of the set, with its case and accessories, so that it is ready "
            "to go. Tell us straight away if any item is missing or damaged.\n\n"
            f"{config.get('HUB_NAME') or 'The instrument store'}\n")


# ---------------------------------------------------------------- calendar feeds


def feed_for(session: Session, school: School | None, *, renew: bool = False) -> CalendarFeed:
    """The calendar feed of a school (or the store's, ``school`` None), made on first use; ``renew``
    gives it a new secret, so that the old URL stops working."""
    key = f"school-{school.id}" if school is not None else "store"
    feed = session.scalar(select(CalendarFeed).where(CalendarFeed.key == key))
    if feed is None:
        feed = CalendarFeed(key=key, school_id=school.id if school is not None else None,
                            token=secrets.token_urlsafe(32))
        session.add(feed)
    elif renew:
        feed.token = secrets.token_urlsafe(32)
    session.flush()
    return feed


def feed_by_token(session: Session, token: str) -> CalendarFeed:
    feed = session.scalar(select(CalendarFeed).where(CalendarFeed.token == token)) if token else None
    if feed is None:
        raise NotFound("There is no such calendar.")
    return feed


@dataclass
class CalendarEvent:
    uid: str
    day: date
    summary: str
    description: str


def feed_events(session: Session, feed: CalendarFeed) -> list[CalendarEvent]:
    """The deliveries, collections and due dates of the feed's bookings (a school's own, or all)."""
    query = (select(Booking).where(Booking.status.in_((*HOLDING, BookingStatus.COLLECTED)))
             .options(joinedload(Booking.school), joinedload(Booking.classroom_set)))
    if feed.school_id is not None:
        query = query.where(Booking.school_id == feed.school_id)
    events = []
    for b in session.scalars(query):
        name, school = b.classroom_set.name, b.school.name
        if b.delivery_on:
            done = " (delivered)" if b.delivered_on else ""
            events.append(CalendarEvent(f"booking-{b.id}-delivery", b.delivered_on or b.delivery_on,
                                        f"Delivery: {name} to {school}{done}", f"{b.period}, {b.pupils} pupils"))
        if b.collection_on:
            done = " (collected)" if b.collected_on else ""
            events.append(CalendarEvent(f"booking-{b.id}-collection", b.collected_on or b.collection_on,
                                        f"Collection: {name} from {school}{done}", b.period))
        events.append(CalendarEvent(f"booking-{b.id}-due", b.ends_on, f"Due back: {name} ({school})", b.period))
    return events
