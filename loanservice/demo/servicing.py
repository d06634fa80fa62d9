"""The demo hub's servicing and stocktakes: service plans with work due and overdue, a few instruments
in servicing, and a finished stocktake of a shelf that found one instrument missing and one unexpected."""
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..accounts.models import User
from ..inventory.models import Instrument, InstrumentStatus, InstrumentType, Repair, RepairKind
from ..servicing import services as servicing
from ..servicing.models import Schedule
from ..sets.models import ClassroomSetItem
from ..stocktake import services as stocktake
from ..stocktake.models import Place
from ..timeutil import today

PLANS = [
    ("Violin", "Restring and adjust", Schedule.EVERY_SUMMER, None),
    ("Ukulele", "Restring", Schedule.EVERY_SUMMER, None),
    ("Keyboard", "PAT test", Schedule.EVERY_MONTHS, 12),
    ("Electric guitar", "PAT test (amp and lead)", Schedule.EVERY_MONTHS, 12),
    ("Clarinet", "Hygiene clean", Schedule.AT_RETURN, None),
    ("Flute", "Hygiene clean", Schedule.AT_RETURN, None),
]


def seed_servicing(session: Session, admin: User, staff: User) -> None:
    for type_name, name, schedule, months in PLANS:
        type_id = session.scalar(select(InstrumentType.id).where(InstrumentType.name == type_name))
        if type_id is not None:
            servicing.save_plan(session, admin, type_id=type_id, name=name, schedule=schedule,
                                interval_months=months)
    # A few tested eleven months ago: due again within the month.
    for due in [d for d in servicing.due_services(session) if d.overdue and d.plan.name == "PAT test"
                and d.instrument.status is InstrumentStatus.AVAILABLE][3:7]:
        tested_on = today() - timedelta(days=340)
        session.add(Repair(kind=RepairKind.SERVICE, plan_id=due.plan.id, instrument_id=due.instrument.id,
                           repairer="Northshire PAT Testing", fault="PAT test", sent_on=tested_on,
                           returned_on=tested_on, actual_cost=Decimal("3.50"), work_done="Passed",
                           sent_by_id=staff.id, returned_by_id=staff.id))
    session.flush()
    # A few overdue for their PAT test are being tested (sets in the store stay ready to lend).
    for due in [d for d in servicing.due_services(session) if d.overdue and d.plan.name == "PAT test"
                and d.instrument.status is InstrumentStatus.AVAILABLE][:3]:
        servicing.send_to_servicing(session, staff, due.instrument, technician="Northshire PAT Testing",
                                    plan=due.plan, expected_back_on=today() + timedelta(days=7))
    _seed_stocktake(session, staff)


def _seed_stocktake(session: Session, staff: User) -> None:
    """A shelf counted: all found but one, and one from another shelf turned up on it."""
    in_sets = select(ClassroomSetItem.instrument_id)
    shelf = session.execute(
        select(Instrument.location, func.count()).where(
            Instrument.status == InstrumentStatus.AVAILABLE, Instrument.location.like("Store / Shelf%"),
            Instrument.id.not_in(in_sets))
        .group_by(Instrument.location).order_by(func.count().desc(), Instrument.location)).first()
    if shelf is None or shelf[1] < 3:
        return
    location = shelf[0]
    count = stocktake.start_stocktake(session, staff, place=Place.SHELF, location=location)
    expected = list(session.scalars(select(Instrument.asset_tag).where(
        Instrument.location == location, Instrument.status.in_(stocktake.IN_STORE)).order_by(Instrument.asset_tag)))
    stray = session.scalar(select(Instrument.asset_tag).where(
        Instrument.location != location, Instrument.location.like("Store / Shelf%"),
        Instrument.status == InstrumentStatus.AVAILABLE, Instrument.id.not_in(in_sets))
        .order_by(Instrument.asset_tag).limit(1))
    for tag in expected[1:] + ([stray] if stray else []):
        stocktake.scan(session, staff, count, tag)
    stocktake.finish(session, staff, count)
