"""Reservations: a parent asks for a type and size for a child; an instrument is held, or the child waits.

The life of a reservation: waiting -> held (an instrument is set aside; staff are told) ->
ready (to collect by a deadline) -> collected (a loan, through the loans services), or lapsed
or cancelled. Every change of status mails the parent. Functions take the session first,
flush and never commit.
"""
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, bindparam, case, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from ..audit.services import record
from ..batch import Batch
from ..borrowers.models import Family, Pupil
from ..borrowers.services import child_of, decide_claim
from ..errors import InvalidInput, LoanServiceError, NotFound
from ..extensions import db
from ..inventory.models import Instrument, InstrumentStatus, InstrumentType
from ..inventory.services import change_status, dialect_insert
from ..loans.calendar import latest_due_date
from ..loans.lending import check_out
from ..loans.models import FeeBand, Loan
from ..locks import lock
from ..mail import send_when_committed
from ..sets.models import ClassroomSet, ClassroomSetItem
from ..signals import borrowing, instrument_freed, reserving
from ..timeutil import today, utcnow
from .models import (
    ACTIVE_STATUSES,
    HOLDING_STATUSES,
    Reservation,
    ReservationStatus,
    WaitingListOrder,
    WaitingListTurn,
)

R = ReservationStatus
S = InstrumentStatus


class ReservationConflict(LoanServiceError):
    status_code = 409


# ---------------------------------------------------------------- settings and look-ups


def waiting_list_order(config) -> WaitingListOrder:
    try:
        return WaitingListOrder(config.get("WAITING_LIST_ORDER") or WaitingListOrder.FIRST_COME)
    except ValueError:
        return WaitingListOrder.FIRST_COME


def _order(config):
    """How a waiting list is sorted under the hub's setting (the query joins Pupil)."""
    first_come = (Reservation.created_at, Reservation.id)
    if waiting_list_order(config) is WaitingListOrder.REMISSION_FIRST:
        return (case((Pupil.remission_category != "none", 0), else_=1), *first_come)
    return first_come


def add_working_days(start: date, days: int) -> date:
    """The date ``days`` working days (Monday to Friday) after ``start``."""
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def take_turn(session: Session, type_id: int, size: str) -> None:
    """Wait for the waiting list of a type and size to be ours until commit (its row made on demand).

    Joining a list and offering instruments from it take turns, so each sees the list as the one
    before it left it: the places told are the list's order, and nobody is told the same place.
    """
    session.execute(dialect_insert(session)(WaitingListTurn).values(type_id=type_id, size=size)
                    .on_conflict_do_nothing())
    session.execute(select(WaitingListTurn.type_id)
                    .where(WaitingListTurn.type_id == type_id, WaitingListTurn.size == size).with_for_update())


def waiting_list(session: Session, type_id: int, size: str, config, *, lock: bool = False) -> list[Reservation]:
    """The children waiting for a type and size, in the hub's order."""
    query = (select(Reservation).join(Pupil, Reservation.pupil_id == Pupil.id)
             .where(Reservation.type_id == type_id, Reservation.size == size, Reservation.status == R.WAITING)
             .order_by(*_order(config)))
    if lock:
        query = query.with_for_update(of=Reservation, skip_locked=True)
    return list(session.scalars(query))


# Instruments in a classroom set go out with their set, never on their own.
IN_A_SET = exists().where(ClassroomSetItem.instrument_id == Instrument.id)
# Graded 5 (unusable): not lendable until repaired or re-graded.
UNUSABLE_GRADE = 5


def reservable():
    """What a reservation may hold: available, usable, and not a member of a classroom set."""
    return (Instrument.status == S.AVAILABLE, Instrument.condition_grade < UNUSABLE_GRADE, ~IN_A_SET)


_SET_OF = select(ClassroomSet).join(ClassroomSetItem).where(ClassroomSetItem.instrument_id == bindparam("item"))


def set_of(session: Session, instrument: Instrument) -> ClassroomSet | None:
    return session.scalar(_SET_OF, {"item": instrument.id})


def free_instruments(session: Session, type_id: int, size: str, *, limit: int = 20,
                     lock: bool = False) -> list[Instrument]:
    """Available instruments of a type and size that a reservation may hold, best condition first.

    Classroom set members and unusable (grade 5) instruments are never offered.
    """
    query = (select(Instrument).where(Instrument.type_id == type_id, Instrument.size == size, *reservable())
             .order_by(Instrument.condition_grade, Instrument.asset_tag).limit(limit))
    if lock:
        # Another transaction holding one of them is skipped, not waited for: it is being taken.
        query = query.with_for_update(of=Instrument, skip_locked=True)
    return list(session.scalars(query))


def get_reservation(session: Session, reservation_id: int) -> Reservation:
    reservation = session.get(Reservation, reservation_id)
    if reservation is None:
        raise NotFound("There is no such reservation.")
    return reservation


def reservation_of(session: Session, user, reservation_id: int) -> Reservation:
    """One of the parent's own reservations, or NotFound."""
    reservation = session.get(Reservation, reservation_id)
    if reservation is None:
        raise NotFound("There is no such reservation in your family.")
    child_of(session, user, reservation.pupil_id)  # NotFound for another family's
    return reservation


# ---------------------------------------------------------------- the catalogue


@dataclass
class SizeAvailability:
    size: str
    available: int = 0
    waiting: int = 0
    stocked: int = 0


@dataclass
class CatalogueEntry:
    instrument_type: InstrumentType
    sizes: list[SizeAvailability] = field(default_factory=list)
    fee: FeeBand | None = None


def catalogue(session: Session) -> list[CatalogueEntry]:
    """Every instrument type the hub lends, each size with how many are free now and how many children wait.

    Counts only: nothing about who holds or waits.
    """
    stock = {}
    # Classroom set members are never lent on their own, so they are not the catalogue's stock;
    # an unusable instrument is stock (it may be repaired) but not available now.
    usable = case((Instrument.condition_grade < UNUSABLE_GRADE, 1), else_=0)
    for type_id, size, status, is_usable, count in session.execute(
            select(Instrument.type_id, Instrument.size, Instrument.status, usable, func.count())
            .where(Instrument.status.notin_([S.WRITTEN_OFF, S.MISSING]), ~IN_A_SET)
            .group_by(Instrument.type_id, Instrument.size, Instrument.status, usable)):
        entry = stock.setdefault((type_id, size), SizeAvailability(size))
        entry.stocked += count
        if status == S.AVAILABLE and is_usable:
            entry.available += count
    for type_id, size, count in session.execute(
            select(Reservation.type_id, Reservation.size, func.count()).where(Reservation.status == R.WAITING)
            .group_by(Reservation.type_id, Reservation.size)):
        stock.setdefault((type_id, size), SizeAvailability(size)).waiting = count
    bands = {band.band: band for band in session.scalars(select(FeeBand))}
    entries = []
    for instrument_type in session.scalars(select(InstrumentType).order_by(InstrumentType.name)):
        sizes = [stock.get((instrument_type.id, size), SizeAvailability(size)) for size in
                 (instrument_type.sizes or [""])]
        if not any(s.stocked for s in sizes):
            continue
        entries.append(CatalogueEntry(instrument_type, sizes, bands.get(instrument_type.hire_band)))
    return entries


# ---------------------------------------------------------------- mail


def _tell_parent(session: Session, config, reservation: Reservation, subject: str, text: str) -> None:
    pupil = reservation.pupil
    family = session.get(Family, pupil.family_id) if pupil.family_id else None
    if family is None:
        return
    to = family.user.email if family.user is not None else family.email
    hub = config.get("HUB_NAME", "The music hub")
    body = (f"Hello {family.name},\n\n{text}\n\nYou can see your reservations at any time when you sign in:\n"
            f"{config.get('PUBLIC_BASE_URL', '')}/\n\n{hub}\n{config.get('HUB_CONTACT', '')}\n")
    send_when_committed(session, config, to=to, subject=f"{hub}: {subject}", body=body)


def _held_text(reservation: Reservation) -> str:
    return (f"A {reservation.description} is now held for {reservation.pupil.name}. The store is getting it "
            "ready; we will email you again when it is ready to collect.")


# ---------------------------------------------------------------- changes


def reserve(session: Session, user, config, *, pupil_id: int, type_id: int, size: str,
            preferred_start_on: date) -> Reservation:
    """Reserve a type and size for one of the parent's children: held now if one is free, else waitlisted."""
    reserving.send(user, session=session)  # parents refuse one whose email is not confirmed yet
    # Locking the child serialises two requests for them, so the limits below hold.
    pupil = child_of(session, user, pupil_id, for_update=True)
    borrowing.send(pupil, session=session, config=config, actor=user, override=False)  # money: refused in debt
    instrument_type = session.get(InstrumentType, type_id) if type_id else None
    if instrument_type is None:
        raise InvalidInput("Choose an instrument from the list.", field="item")
    size = (size or "").strip()
    if size not in (instrument_type.sizes or [""]):
        raise InvalidInput(f"The {instrument_type.name.lower()} does not come in size {size or '(none)'}. "
                           f"Sizes: {', '.join(instrument_type.sizes) or 'one size only'}.", field="item")
    if preferred_start_on < today():
        raise InvalidInput("The preferred start date is in the past.", field="preferred_start_on")
    latest = latest_due_date(today())  # the same reach as a loan's: a year typed wrong (2099) holds stock for nothing
    if preferred_start_on > latest:
        raise InvalidInput(f"{preferred_start_on:%-d %b %Y} is too far ahead: choose a start by {latest:%-d %b %Y}. "
                           "Check the year.", field="preferred_start_on")
    active = list(session.scalars(select(Reservation).where(Reservation.pupil_id == pupil.id,
                                                            Reservation.status.in_(ACTIVE_STATUSES))))
    if any(r.type_id == instrument_type.id for r in active):
        raise ReservationConflict(f"{pupil.name} already has a reservation for a {instrument_type.name.lower()}.",
                                  field="item")
    limit = int(config.get("RESERVATIONS_PER_CHILD", 2))
    if len(active) >= limit:
        raise ReservationConflict(f"{pupil.name} already has {len(active)} open reservations, the most a child "
                                  "can have. Cancel one first.", field="item")
    # Our turn on the list before joining it: created_at (the list's order) is taken after those before us.
    take_turn(session, instrument_type.id, size)
    reservation = Reservation(pupil=pupil, type_id=instrument_type.id, size=size, status=R.WAITING,
                              preferred_start_on=preferred_start_on, requested_by_id=user.id)
    try:
        with session.begin_nested():
            session.add(reservation)
            session.flush()
    except IntegrityError as error:
        raise ReservationConflict(f"{pupil.name} already has a reservation for a {instrument_type.name.lower()}.",
                                  field="item") from error
    record(session, user, "reservation.made", reservation, f"Reserved a {reservation.description}",
           {"pupil": f"pupil #{pupil.id}", "preferred_start_on": preferred_start_on})
    offered = offer_next(session, user, config, instrument_type.id, size)
    if reservation not in offered:
        place = waiting_place(session, reservation, config)
        _tell_parent(session, config, reservation, "on the waiting list",
                     f"No {reservation.description} is free just now, so {pupil.name} is on the waiting list: "
                     f"number {place}. We will email you as soon as one is held for them.")
    return reservation


def _hold(session: Session, actor, config, reservation: Reservation, instrument: Instrument) -> None:
    """Set ``instrument`` aside for ``reservation``; the caller has locked both rows."""
    change_status(session, actor, instrument, S.RESERVED, f"held for reservation #{reservation.id}")
    reservation.status, reservation.instrument, reservation.held_at = R.HELD, instrument, utcnow()
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:
        raise ReservationConflict(f"{instrument.asset_tag} is already held for another reservation.") from error
    record(session, actor, "reservation.held", reservation, f"Held {instrument.asset_tag}", instrument=instrument)
    _tell_parent(session, config, reservation, f"a {reservation.description} is held for {reservation.pupil.name}",
                 _held_text(reservation))


def offer_next(session: Session, actor, config, type_id: int, size: str) -> list[Reservation]:
    """Hold free instruments of a type and size for the children waiting longest (in the hub's order)."""
    offered = []
    take_turn(session, type_id, size)
    waiting = waiting_list(session, type_id, size, config, lock=True)
    if not waiting:
        return offered
    # strict=False: there may be fewer free instruments than children waiting.
    for reservation, instrument in zip(waiting, free_instruments(session, type_id, size, limit=len(waiting),
                                                                 lock=True), strict=False):
        _hold(session, actor, config, reservation, instrument)
        offered.append(reservation)
    return offered


def offer_all(session: Session, actor, config) -> int:
    """Offer every free instrument to the waiting lists (for `flask reservations offer`); return how many."""
    pairs = session.execute(select(Reservation.type_id, Reservation.size).where(Reservation.status == R.WAITING)
                            .distinct().order_by(Reservation.type_id, Reservation.size)).all()
    return sum(len(offer_next(session, actor, config, type_id, size)) for type_id, size in pairs)


# Whether anyone waits for a type and size: one index probe, no rows loaded, nothing locked.
_reservation = Reservation.__table__
_SOMEONE_WAITING = (select(_reservation.c.id)
                    .where(_reservation.c.type_id == bindparam("type_id"), _reservation.c.size == bindparam("size"),
                           _reservation.c.status == R.WAITING.value)
                    .limit(1))


def offer_returned_instrument(
    session: Session, actor, instrument: Instrument, config, *, batch: Batch | None = None,
) -> Reservation | None:
    """An instrument is free again: hold it for the next child waiting for its type and size, if any.

    ``batch``: the return's batch; the look for a waiting child is one of its questions, and the hold
    (if anyone waits) follows once it is written. Returns the reservation only without a batch."""
    if instrument.status is not S.AVAILABLE:
        return None
    # Most returns find nobody waiting: a cheap look first, the locking query only when someone is.
    look = {"type_id": instrument.type_id, "size": instrument.size}
    if batch is not None:
        waiting = batch.ask(_SOMEONE_WAITING, look)
        batch.then(lambda: waiting.value is not None and _offer_to_next(session, actor, instrument, config))
        return None
    if session.execute(_SOMEONE_WAITING, look).first() is None:
        return None
    return _offer_to_next(session, actor, instrument, config)


@instrument_freed.connect
def _offer_freed_instrument(instrument: Instrument, *, session: Session, actor, batch: Batch | None) -> None:
    """A loan gave an instrument back: hold it for the next child on its type and size's waiting list."""
    offer_returned_instrument(session, actor, instrument, current_app.config, batch=batch)


def _offer_to_next(session: Session, actor, instrument: Instrument, config) -> Reservation | None:
    session.flush()
    offered = offer_next(session, actor, config, instrument.type_id, instrument.size)
    return offered[0] if offered else None


def _release(session: Session, actor, reservation: Reservation, why: str) -> None:
    instrument = reservation.instrument
    if instrument is not None and instrument.status is S.RESERVED:
        change_status(session, actor, instrument, S.AVAILABLE, why)


def allocate(session: Session, actor, config, reservation: Reservation, instrument: Instrument) -> Reservation:
    """Staff choose the instrument for a reservation (a waiting one too); the one held before goes back."""
    lock(session, reservation)
    lock(session, instrument)
    if reservation.status not in (R.WAITING, R.HELD):
        raise ReservationConflict(f"This reservation is {reservation.status.label.lower()}; "
                                  "it cannot be given another instrument.")
    if instrument.type_id != reservation.type_id or instrument.size != reservation.size:
        raise InvalidInput(f"{instrument.asset_tag} is a {instrument.description}; this reservation is for a "
                           f"{reservation.description}.", field="tag")
    if instrument.id == reservation.instrument_id:
        return reservation
    if instrument.status is not S.AVAILABLE:
        raise ReservationConflict(f"{instrument.asset_tag} is {instrument.status.label.lower()}, not available.",
                                  field="tag")
    if instrument.condition_grade >= UNUSABLE_GRADE:
        raise InvalidInput(f"{instrument.asset_tag} is graded 5 (unusable): send it to repair, or record a new "
                           "condition check, before it is held for anyone.", field="tag")
    classroom_set = set_of(session, instrument)
    if classroom_set is not None:
        raise InvalidInput(f"{instrument.asset_tag} belongs to {classroom_set.name}: take it out of the set first.",
                           field="tag")
    previous = reservation.instrument
    was_waiting = reservation.status is R.WAITING
    _release(session, actor, reservation, f"swapped out of reservation #{reservation.id}")
    reservation.status, reservation.instrument = R.WAITING, None
    session.flush()
    if was_waiting:
        _hold(session, actor, config, reservation, instrument)
    else:  # the parent was already told it is held; the swap is the store's business
        change_status(session, actor, instrument, S.RESERVED, f"held for reservation #{reservation.id}")
        reservation.status, reservation.instrument = R.HELD, instrument
        session.flush()
        record(session, actor, "reservation.allocated", reservation, f"Allocated {instrument.asset_tag}",
               {"instrument": [previous.asset_tag if previous else None, instrument.asset_tag]},
               instrument=instrument)
    if previous is not None:
        offer_returned_instrument(session, actor, previous, config)
    return reservation


def mark_ready(session: Session, actor, config, reservation: Reservation) -> Reservation:
    """The held instrument is ready: the parent has a number of working days to collect it."""
    lock(session, reservation)
    if reservation.status is not R.HELD:
        raise ReservationConflict(f"Only a held reservation can be made ready; this one is "
                                  f"{reservation.status.label.lower()}.")
    days = int(config.get("RESERVATION_COLLECT_WORKING_DAYS", 5))
    reservation.status, reservation.collect_by = R.READY, add_working_days(today(), days)
    session.flush()
    record(session, actor, "reservation.ready", reservation, f"Ready to collect by {reservation.collect_by:%-d %b %Y}",
           instrument=reservation.instrument)
    _tell_parent(session, config, reservation, f"ready to collect for {reservation.pupil.name}",
                 f"The {reservation.description} for {reservation.pupil.name} is ready to collect from the store. "
                 f"Please collect it by {reservation.collect_by:%A %-d %B %Y}; after that it goes to the next "
                 f"child waiting.\n\nWhere:\n{config.get('HUB_ADDRESS', '')}\n\n"
                 f"Opening hours:\n{config.get('HUB_OPENING_HOURS', '')}")
    return reservation


def collect(session: Session, actor, config, reservation: Reservation, *, due_on: date | None = None,
            condition_grade: int | None = None, remission_claim: str | None = None) -> Loan:
    """Hand the held instrument over: it becomes a loan to the child, in the same transaction.

    A remission the parent claimed is verified or refused first, as ``remission_claim`` says (refused
    without it), so the loan takes the remission verified. Under REQUIRE_SIGNED_AGREEMENT the loan
    waits, the instrument still held, until the agreement is signed and staff issue it.
    """
    lock(session, reservation)
    if reservation.status not in HOLDING_STATUSES:
        raise ReservationConflict(f"This reservation is {reservation.status.label.lower()}; "
                                  "there is nothing to hand over.")
    instrument = reservation.instrument
    lock(session, instrument)
    if instrument.status is not S.RESERVED:
        raise ReservationConflict(f"{instrument.asset_tag} is {instrument.status.label.lower()}; "
                                  "allocate another instrument.")
    decide_claim(session, actor, reservation.pupil, remission_claim)
    change_status(session, actor, instrument, S.AVAILABLE, f"collected for reservation #{reservation.id}")
    loan = check_out(session, actor, instrument, reservation.pupil, config, due_on=due_on,
                     condition_grade=condition_grade)
    reservation.status, reservation.loan, reservation.closed_at = R.COLLECTED, loan, utcnow()
    session.flush()
    record(session, actor, "reservation.collected", reservation, f"Collected: loan {loan.id}", instrument=instrument)
    if not loan.is_pending:  # a pending loan's hirer was asked to sign the agreement instead
        _tell_parent(session, config, reservation, f"{reservation.pupil.name}'s {reservation.description} is on loan",
                     f"{reservation.pupil.name} now has {instrument.asset_tag}, a {instrument.description}, "
                     f"on loan until {loan.due_on:%-d %B %Y}.")
    return loan


def cancel_reservation(session: Session, actor, reservation: Reservation, config, *,
                       notify: bool = True) -> Reservation:
    """Cancel an open reservation; a held instrument goes to the next child waiting."""
    lock(session, reservation)
    if not reservation.is_active:
        raise ReservationConflict(f"This reservation is already {reservation.status.label.lower()}.")
    instrument = reservation.instrument
    _release(session, actor, reservation, f"reservation #{reservation.id} cancelled")
    reservation.status, reservation.closed_at = R.CANCELLED, utcnow()
    session.flush()
    record(session, actor, "reservation.cancelled", reservation, "Cancelled", instrument=instrument)
    if notify:
        _tell_parent(session, config, reservation, f"reservation cancelled for {reservation.pupil.name}",
                     f"The reservation of a {reservation.description} for {reservation.pupil.name} is cancelled.")
    if instrument is not None:
        offer_returned_instrument(session, actor, instrument, config)
    return reservation


def expire_reservations(session: Session, actor, config, on: date | None = None) -> int:
    """Lapse ready reservations not collected by their deadline; free their instruments. Safe to repeat."""
    on = on or today()
    due = list(session.scalars(select(Reservation).where(Reservation.status == R.READY, Reservation.collect_by < on)
                               .order_by(Reservation.id).with_for_update(skip_locked=True)))
    for reservation in due:
        instrument = reservation.instrument
        _release(session, actor, reservation, f"reservation #{reservation.id} not collected in time")
        reservation.status, reservation.closed_at = R.LAPSED, utcnow()
        session.flush()
        record(session, actor, "reservation.lapsed", reservation,
               f"Lapsed: not collected by {reservation.collect_by:%-d %b %Y}", instrument=instrument)
        _tell_parent(session, config, reservation, f"reservation lapsed for {reservation.pupil.name}",
                     f"The {reservation.description} for {reservation.pupil.name} was not collected by "
                     f"{reservation.collect_by:%-d %B %Y}, so the reservation has lapsed and the instrument has "
                     "gone to the next child waiting. You are welcome to reserve again.")
        offer_returned_instrument(session, actor, instrument, config)
    return len(due)


# ---------------------------------------------------------------- what people see


def waiting_place(session: Session, reservation: Reservation, config) -> int | None:
    """The child's place on the waiting list (1 is next), or None when not waiting."""
    if reservation.status is not R.WAITING:
        return None
    return waiting_places(session, [reservation], config).get(reservation.id)


def waiting_places(session: Session, reservations: list[Reservation], config) -> dict[int, int]:
    """Places on their waiting lists (1 is next) of the waiting ones among ``reservations``, by id.

    One statement whatever the number of reservations, read through the waiting-list index for
    just the types and sizes asked about.
    """
    ids = [r.id for r in reservations if r.status is R.WAITING]
    if not ids:
        return {}
    return dict(session.execute(_PLACES[waiting_list_order(config)], {"ids": ids}).all())


def _places_statement(order: WaitingListOrder):
    """The statement of ``waiting_places`` under a hub's order, built once (as the page is often read).

    Each waiting list that one of ``:ids`` is on is numbered in the ORDER BY of ``waiting_list``,
    so the places are the same as the list's own.
    """
    ids = bindparam("ids", expanding=True)
    # The lists asked about, once each: two children of a family may wait on the same one.
    asked = select(Reservation.type_id, Reservation.size).where(Reservation.id.in_(ids)).distinct().subquery("asked")
    numbered = (select(Reservation.id, func.row_number().over(
                    partition_by=(Reservation.type_id, Reservation.size),
                    order_by=_order({"WAITING_LIST_ORDER": order})).label("place"))
                .join(asked, and_(Reservation.type_id == asked.c.type_id, Reservation.size == asked.c.size))
                .join(Pupil, Reservation.pupil_id == Pupil.id)
                .where(Reservation.status == R.WAITING)
                .subquery("numbered"))
    return select(numbered.c.id, numbered.c.place).where(numbered.c.id.in_(ids))


_PLACES = {order: _places_statement(order) for order in WaitingListOrder}


def reservations_with_places(session: Session, pupils: list[Pupil], config, *,
                             closed: int = 3) -> dict[int, list[tuple[Reservation, int | None]]]:
    """Each child's open reservations with their waiting-list places, then their last few closed ones.

    By pupil id, for a family's home page: two statements for all the children together. Only the
    reservation and its type are loaded; the page needs the held instrument's id, not the instrument
    (joining instrument here made SQLite build the whole instrument table on every call).
    """
    if not pupils:
        return {}
    rows = list(session.scalars(select(Reservation).where(Reservation.pupil_id.in_([p.id for p in pupils]))
                                .options(joinedload(Reservation.instrument_type, innerjoin=True))
                                .order_by(Reservation.created_at.desc(), Reservation.id.desc())))
    places = waiting_places(session, [r for r in rows if r.is_active], config)
    result = {}
    for pupil in pupils:
        mine = [r for r in rows if r.pupil_id == pupil.id]
        result[pupil.id] = ([(r, places.get(r.id)) for r in mine if r.is_active]
                            + [(r, None) for r in mine if not r.is_active][:closed])
    return result


@dataclass
class Queue:
    held: list[tuple[Reservation, list[Instrument]]]  # this page of them
    held_page: Any  # Flask-SQLAlchemy's Pagination of the held reservations: total, pages, links
    ready: list[Reservation]
    waiting: list[tuple[str, list[tuple[Reservation, int]], int]]  # (type and size, children in order, free now)
    overdue: list[Reservation]


HELD_PER_PAGE = 25


def staff_queue(session: Session, config, *, page: int = 1) -> Queue:
    """The store's work: new holds to prepare (with other instruments that would do), a page at a time,
    ready ones, waiting lists."""
    options = (joinedload(Reservation.pupil), joinedload(Reservation.instrument_type),
               joinedload(Reservation.instrument))
    held_page = db.paginate(select(Reservation).where(Reservation.status == R.HELD).options(*options)
                            .order_by(Reservation.held_at, Reservation.id),
                            page=max(page, 1), per_page=HELD_PER_PAGE, error_out=False)
    held = list(held_page.items)
    ready = list(session.scalars(select(Reservation).where(Reservation.status == R.READY).options(*options)
                                 .order_by(Reservation.collect_by, Reservation.id)))
    waiting = []
    for type_id, size in session.execute(select(Reservation.type_id, Reservation.size)
                                         .where(Reservation.status == R.WAITING).distinct()).all():
        people = waiting_list(session, type_id, size, config)
        free = len(free_instruments(session, type_id, size))
        waiting.append((people[0].description, [(r, n + 1) for n, r in enumerate(people)], free))
    waiting.sort(key=lambda item: item[0])
    return Queue(
        held=[(r, free_instruments(session, r.type_id, r.size, limit=10)) for r in held], held_page=held_page,
        ready=ready, waiting=waiting, overdue=[r for r in ready if r.collect_by < today()])
