"""Demo bookings: sets asked for next term (one waiting, one allocated, one declined), and a run
sheet for next week with a delivery and a collection, so that each part can be tried."""
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..accounts.models import User
from ..bookings import services
from ..bookings.models import Booking, BookingStatus
from ..inventory.models import Instrument, InstrumentType
from ..loans.models import AcademicTerm
from ..schools.models import School
from ..sets.models import ClassroomSet, ClassroomSetItem, SetLoan
from ..timeutil import today


def seed_bookings(session: Session, schools: list[School], users: dict[str, User]) -> None:
    if session.scalar(select(func.count()).select_from(Booking)) or len(schools) < 2:
        return
    staff = users["staff@demo.hub"]
    next_term = session.scalar(select(AcademicTerm).where(AcademicTerm.starts_on > today())
                               .order_by(AcademicTerm.starts_on).limit(1))
    if next_term is None:
        return
    out = set(session.scalars(select(SetLoan.set_id).where(SetLoan.closed_on.is_(None))))
    in_store = [s for s in session.scalars(select(ClassroomSet).order_by(ClassroomSet.name)) if s.id not in out]
    if not in_store:
        return
    kit, spare = in_store[0], in_store[-1]  # one to allocate now, one left for the user to allocate
    kind, size = _type_and_size(session, kit)
    spare_kind, spare_size = _type_and_size(session, spare)
    monday = today() + timedelta(days=7 - today().weekday())  # next week
    key = f"term-{next_term.id}"

    # Waiting for an answer (a set fits): the school user's own school, so that the demo school sees it.
    services.request_booking(session, users["school@demo.hub"], schools[0], instrument_type=spare_kind,
                             pupils=spare_size, period_key=key, teacher="Mr Bell",
                             notes="Please deliver to the hall.")
    # Allocated, delivered next Tuesday: on next week's run sheet.
    booked = services.request_booking(session, staff, schools[1], instrument_type=kind, pupils=min(size, 30),
                                      period_key=key, teacher="Ms Patel")
    services.allocate(session, staff, booked, kit, delivery_on=monday + timedelta(days=1))
    # Declined, with the reason the school sees.
    declined = services.request_booking(session, users["school@demo.hub"], schools[0], instrument_type=kind,
                                        pupils=min(size, 60), period_key=key)
    services.decline(session, staff, declined, "Every set of this kind is booked that term; we can offer one "
                                               "from the summer term.")
    # A set out at a school now, collected next Thursday: the run sheet's collection.
    set_loan = session.scalar(select(SetLoan).where(SetLoan.closed_on.is_(None)).order_by(SetLoan.id.desc()))
    if set_loan is not None:
        out_kind = session.scalar(select(Instrument.type_id).join(
            ClassroomSetItem, ClassroomSetItem.instrument_id == Instrument.id)
            .where(ClassroomSetItem.set_id == set_loan.set_id).limit(1))
        session.add(Booking(
            school_id=set_loan.school_id, type_id=out_kind, pupils=set_loan.item_count, period="This term",
            starts_on=set_loan.started_on, ends_on=set_loan.due_on, status=BookingStatus.DELIVERED,
            set_id=set_loan.set_id, delivery_on=set_loan.started_on, delivered_on=set_loan.started_on,
            collection_on=max(monday + timedelta(days=3), set_loan.started_on), set_loan_id=set_loan.id,
            requested_by=staff))
    session.flush()


def _type_and_size(session: Session, classroom_set: ClassroomSet) -> tuple[InstrumentType, int]:
    kind = session.scalar(select(InstrumentType).join(Instrument).join(
        ClassroomSetItem, ClassroomSetItem.instrument_id == Instrument.id)
        .where(ClassroomSetItem.set_id == classroom_set.id).limit(1))
    return kind, session.scalar(select(func.count()).where(ClassroomSetItem.set_id == classroom_set.id))
