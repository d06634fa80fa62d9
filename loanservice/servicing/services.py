"""Servicing: plans per instrument type, what is due, sending instruments and sets to servicing.

A servicing is a Repair of kind service (inventory): one record and one history with repairs, and
the instrument's status "in servicing" is what keeps it from being lent (loans.availability).
Every function takes the session first, flushes and returns; the caller owns the transaction.
"""
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..audit.services import record
from ..errors import InvalidInput, NotFound
from ..inventory.models import Instrument, InstrumentStatus, InstrumentType, Repair, RepairKind
from ..inventory.services import InvalidTransition, open_repair, return_from_repair, send_to_repair
from ..loans.models import Loan, LoanStatus
from ..locks import lock
from ..sets.models import ClassroomSet
from ..sets.services import open_set_loan, set_instruments
from ..signals import booking_checked
from ..timeutil import today
from ..wording import counted
from .models import Schedule, ServicePlan

S = InstrumentStatus

# How soon a service counts as due (shown in the queue before it is overdue).
DUE_SOON = timedelta(days=30)
# When a servicing with no expected date is taken to be done, for bookings (``ready_by``).
DEFAULT_SERVICE_DAYS = 14
# The summer service is done in the holiday, when the sets are back: due by its end.
SUMMER_STARTS = (7, 1)
SUMMER_ENDS = (8, 31)
# Instruments no longer in use are not serviced.
_OUT_OF_USE = (S.MISSING, S.WRITTEN_OFF)


# ---------------------------------------------------------------- plans


def list_plans(session: Session) -> list[ServicePlan]:
    return list(session.scalars(select(ServicePlan).join(ServicePlan.instrument_type)
                                .order_by(InstrumentType.name, ServicePlan.name)))


def save_plan(session: Session, actor, *, type_id: int, name: str, schedule: Schedule,
              interval_months: int | None = None, plan: ServicePlan | None = None) -> ServicePlan:
    """Add or change a service plan for an instrument type."""
    instrument_type = session.get(InstrumentType, type_id) if type_id else None
    if instrument_type is None:
        raise InvalidInput("Choose the instrument type.", field="type_id")
    name = name.strip()
    if not name:
        raise InvalidInput("Name the service, e.g. Restring or PAT test.", field="name")
    if schedule is Schedule.EVERY_MONTHS:
        if interval_months is None or not 1 <= interval_months <= 120:
            raise InvalidInput("Say every how many months, from 1 to 120.", field="interval_months")
    else:
        interval_months = None
    clash = session.scalar(select(ServicePlan.id).where(
        ServicePlan.type_id == type_id, func.lower(ServicePlan.name) == name.lower(),
        ServicePlan.id != (plan.id if plan is not None else -1)))
    if clash is not None:
        raise InvalidInput(f"{instrument_type.name} already has a plan called {name}.", field="name")
    is_new = plan is None
    if is_new:
        plan = ServicePlan()
        session.add(plan)
    plan.type_id, plan.name, plan.schedule, plan.interval_months = type_id, name, schedule, interval_months
    plan.instrument_type = instrument_type
    session.flush()
    record(session, actor, "service_plan.saved", plan, f"{'Added' if is_new else 'Changed'} service plan {plan}",
           {"schedule": schedule, "interval_months": interval_months})
    return plan


def delete_plan(session: Session, actor, plan: ServicePlan) -> str:
    """Remove a plan; the servicings done under it stay in each instrument's history."""
    shown = str(plan)
    record(session, actor, "service_plan.deleted", plan, f"Removed service plan {shown}", {})
    session.delete(plan)
    session.flush()
    return shown


# ---------------------------------------------------------------- what is due


@dataclass
class Due:
    """One service an instrument needs: under which plan, by when, and whether that has passed."""

    instrument: Instrument
    plan: ServicePlan
    due_on: date
    last_done: date | None

    @property
    def overdue(self) -> bool:
        return self.due_on < today()


def _summer_due(last_done: date | None, on: date) -> date:
    """The end of the summer the next summer service falls in."""
    if last_done is None:
        year = on.year if on >= date(on.year, *SUMMER_STARTS) else on.year - 1
    else:
        year = last_done.year + (last_done >= date(last_done.year, *SUMMER_STARTS))
    return date(year, *SUMMER_ENDS)


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise ValueError(day)


def due_services(session: Session, *, within: timedelta = DUE_SOON, type_id: int | None = None) -> list[Due]:
    """Every service due within ``within`` or overdue, most overdue first: instruments in use of a type
    with a plan, and not in servicing now. A few queries whatever the number of instruments."""
    on = today()
    plans = [p for p in list_plans(session) if type_id is None or p.type_id == type_id]
    if not plans:
        return []
    plans_by_type: dict[int, list[ServicePlan]] = {}
    for plan in plans:
        plans_by_type.setdefault(plan.type_id, []).append(plan)
    instruments = list(session.scalars(
        select(Instrument).where(Instrument.type_id.in_(plans_by_type), Instrument.status.not_in(_OUT_OF_USE))
        .order_by(Instrument.asset_tag)))
    if not instruments:
        return []
    last_done = {(i, p): d for i, p, d in session.execute(
        select(Repair.instrument_id, Repair.plan_id, func.max(Repair.returned_on))
        .where(Repair.kind == RepairKind.SERVICE, Repair.plan_id.in_([p.id for p in plans]),
               Repair.returned_on.is_not(None))
        .group_by(Repair.instrument_id, Repair.plan_id))}
    returns_needed = any(p.schedule is Schedule.AT_RETURN for p in plans)
    last_back = dict(session.execute(
        select(Loan.instrument_id, func.max(Loan.closed_on))
        .where(Loan.status == LoanStatus.RETURNED, Loan.instrument_id.in_([i.id for i in instruments]))
        .group_by(Loan.instrument_id)).all()) if returns_needed else {}
    horizon = on + within
    due = []
    for instrument in instruments:
        if instrument.status in (S.IN_SERVICE, S.IN_REPAIR):
            continue  # being seen to: the queue lists it as in servicing (or at the repairer)
        for plan in plans_by_type[instrument.type_id]:
            done = last_done.get((instrument.id, plan.id))
            if plan.schedule is Schedule.EVERY_SUMMER:
                due_on = _summer_due(done, on)
            elif plan.schedule is Schedule.EVERY_MONTHS:
                start = done or instrument.purchased_on
                due_on = _add_months(start, plan.interval_months) if start else on
            else:
                back = last_back.get(instrument.id)
                if back is None or (done is not None and done >= back):
                    continue
                due_on = back
            if due_on <= horizon:
                due.append(Due(instrument, plan, due_on, done))
    due.sort(key=lambda d: (d.due_on, d.instrument.asset_tag))
    return due


def in_service(session: Session) -> list[Repair]:
    """The servicings under way, oldest first."""
    return list(session.scalars(
        select(Repair).join(Repair.instrument)
        .where(Repair.kind == RepairKind.SERVICE, Repair.returned_on.is_(None))
        .order_by(Repair.sent_on, Instrument.asset_tag)))


def plans_for(session: Session, instrument: Instrument) -> list[ServicePlan]:
    return list(session.scalars(select(ServicePlan).where(ServicePlan.type_id == instrument.type_id)
                                .order_by(ServicePlan.name)))


def plan_named(session: Session, plan_id: int | None) -> ServicePlan | None:
    if not plan_id:
        return None
    plan = session.get(ServicePlan, plan_id)
    if plan is None:
        raise InvalidInput("That service plan no longer exists: choose another.", field="plan_id")
    return plan


# ---------------------------------------------------------------- sending and taking back


def send_to_servicing(session: Session, actor, instrument: Instrument, *, technician: str,
                      plan: ServicePlan | None = None, work: str = "", expected_back_on: date | None = None,
                      ) -> Repair:
    """Take one instrument out of use for servicing (under ``plan``, or a general service)."""
    if plan is not None and plan.type_id != instrument.type_id:
        raise InvalidInput(f"{plan} is not a plan for {instrument.type.name}.", field="plan_id")
    if instrument.status is S.ON_LOAN:
        raise InvalidTransition(f"{instrument.asset_tag} is on loan: check it in before servicing it.")
    return send_to_repair(session, actor, instrument, repairer=technician or "Store", fault=work or (
        plan.name if plan is not None else "General service"), expected_back_on=expected_back_on,
        kind=RepairKind.SERVICE, plan_id=plan.id if plan is not None else None)


def send_set_to_servicing(session: Session, actor, classroom_set: ClassroomSet, *, technician: str,
                          work: str = "", expected_back_on: date | None = None) -> list[Repair]:
    """A set back from a school goes to servicing in one action: each of its instruments in the store,
    under its type's plans that are due (or a general service). All or nothing."""
    lock(session, classroom_set)
    instruments = set_instruments(session, classroom_set, for_update=True)
    current = open_set_loan(session, classroom_set)
    if current is not None:
        raise InvalidTransition(f"{classroom_set.name} is out at {current.school.name}: check it in first.")
    if expected_back_on is not None and expected_back_on < today():
        raise InvalidInput("The expected date is in the past.", field="expected_back_on")
    ready = [i for i in instruments if i.status is S.AVAILABLE]
    if not ready:
        raise InvalidTransition(f"None of {classroom_set.name}'s instruments is in the store to service "
                                "(each is in servicing, at a repairer, missing or written off).")
    due = {d.instrument.id: d for d in due_services(session, within=timedelta(days=366))}
    repairs = []
    for instrument in ready:
        need = due.get(instrument.id)
        repairs.append(send_to_servicing(session, actor, instrument, technician=technician, work=work,
                                         plan=need.plan if need else None, expected_back_on=expected_back_on))
    record(session, actor, "set.servicing", classroom_set,
           f"{classroom_set.name}: {counted(len(repairs), 'instrument')} sent to servicing", {})
    return repairs


def back_from_servicing(session: Session, actor, instrument: Instrument, *, work_done: str = "",
                        cost: Decimal | None = None, grade: int | None = None) -> Repair:
    """One instrument serviced and back in use (its condition kept unless graded anew)."""
    repair = open_repair(session, instrument)
    if repair is None or repair.kind is not RepairKind.SERVICE:
        raise InvalidTransition(f"{instrument.asset_tag} is not in servicing.")
    return return_from_repair(session, actor, instrument, grade=grade or instrument.condition_grade,
                              actual_cost=cost, work_done=work_done)


def set_back_from_servicing(session: Session, actor, classroom_set: ClassroomSet, *, work_done: str = "",
                            cost_each: Decimal | None = None) -> list[Repair]:
    """Every instrument of a set in servicing is serviced and back, in one action."""
    lock(session, classroom_set)
    instruments = [i for i in set_instruments(session, classroom_set, for_update=True) if i.status is S.IN_SERVICE]
    if not instruments:
        raise InvalidTransition(f"None of {classroom_set.name}'s instruments is in servicing.")
    if cost_each is not None and cost_each < 0:
        raise InvalidInput("The cost cannot be negative.", field="cost_each")
    repairs = [back_from_servicing(session, actor, i, work_done=work_done, cost=cost_each) for i in instruments]
    record(session, actor, "set.serviced", classroom_set,
           f"{classroom_set.name}: {counted(len(repairs), 'instrument')} serviced and back", {})
    return repairs


def set_servicing_state(session: Session, classroom_set: ClassroomSet) -> tuple[int, int]:
    """How many of a set's instruments are in servicing, and how many are in the store ready to go."""
    instruments = set_instruments(session, classroom_set)
    return (sum(i.status is S.IN_SERVICE for i in instruments), sum(i.status is S.AVAILABLE for i in instruments))


# ---------------------------------------------------------------- for bookings


def ready_by(session: Session, set_or_instrument) -> date | None:
    """The day a set or instrument in servicing is expected back in use; None when none of it is in
    servicing (ready now). A servicing with no expected date counts DEFAULT_SERVICE_DAYS from when it started."""
    if isinstance(set_or_instrument, ClassroomSet):
        ids = [i.id for i in set_instruments(session, set_or_instrument)]
    elif isinstance(set_or_instrument, Instrument):
        ids = [set_or_instrument.id]
    else:
        raise NotFound("Only a classroom set or an instrument is serviced.")
    if not ids:
        return None
    rows = session.execute(select(Repair.sent_on, Repair.expected_back_on).where(
        Repair.instrument_id.in_(ids), Repair.kind == RepairKind.SERVICE, Repair.returned_on.is_(None))).all()
    if not rows:
        return None
    return max(back or sent + timedelta(days=DEFAULT_SERVICE_DAYS) for sent, back in rows)


@booking_checked.connect
def _refuse_booking_before_ready(classroom_set, *, session: Session, starts_on: date, **_) -> str | None:
    """A set in servicing cannot be booked for dates it will not be ready by."""
    ready = ready_by(session, classroom_set)
    if ready is not None and starts_on < ready:
        return (f"{classroom_set.name} is in servicing until {ready:%-d %b %Y}: book it from that day, "
                "or choose another set.")
    return None



