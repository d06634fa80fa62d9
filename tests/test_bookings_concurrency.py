"""No set is booked twice for overlapping dates, whatever the concurrency: the exclusion constraint on
PostgreSQL (real threads, real connections) decides, and the losers get the clear message."""
from datetime import date

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from loanservice.bookings.models import Booking, BookingStatus

from . import test_bookings
from .conftest import ON_POSTGRES, in_app
from .test_bookings import NEXT_YEAR, Y, make_set
from .test_concurrency import WORKERS, run_together, signed_in_clients

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES, reason="concurrency is proved on PostgreSQL, the production database"
)
# The terms and the instrument type of the booking tests.
calendar, ukuleles = test_bookings.calendar, test_bookings.ukuleles


def test_twenty_allocations_of_one_set_for_overlapping_terms_book_it_once(app, factory, calendar, ukuleles):
    kit = make_set(factory, ukuleles, 30, "Ukulele set A")
    # Overlapping periods: the whole of next school year for half, its autumn term for the others.
    with in_app(app) as session:
        from loanservice.bookings import services

        booking_ids = []
        for i in range(WORKERS):
            key = f"year-{Y + 1}" if i % 2 else f"term-{calendar[f'Autumn {Y + 1}']}"
            booking = services.request_booking(session, None, session.merge(factory.school(f"School {i}")),
                                               instrument_type=session.merge(ukuleles), pupils=30, period_key=key)
            booking_ids.append(booking.id)
        session.commit()
    clients = signed_in_clients(app, factory)

    def allocate(i):
        response = clients[i].post(f"/bookings/{booking_ids[i]}/allocate", data={"set_id": str(kit.id)})
        return response.status_code, response.get_data(as_text=True)

    results = run_together(allocate)
    assert sorted(status for status, _ in results) == [303] + [409] * (WORKERS - 1)
    for status, page in results:
        if status == 409:
            assert ("Ukulele set A is already booked by" in page
                    or "Ukulele set A was booked for overlapping dates a moment ago" in page)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Booking).where(
            Booking.status == BookingStatus.ALLOCATED)) == 1


def test_the_database_refuses_overlapping_bookings_of_a_set_written_without_the_service(app, factory, calendar,
                                                                                       ukuleles):
    kit = make_set(factory, ukuleles, 30, "Ukulele set A")
    school = factory.school()
    row = ("INSERT INTO booking (school_id, type_id, pupils, sizes, teacher, period, starts_on, ends_on, notes, "
           "status, decline_reason, set_id, created_at) VALUES (:school, :type, 30, '', '', 'p', :start, :end, '', "
           "'allocated', '', :set, now())")
    with in_app(app) as session:
        session.execute(text(row), {"school": school.id, "type": ukuleles.id, "set": kit.id,
                                    "start": NEXT_YEAR[0][1], "end": NEXT_YEAR[0][2]})
        session.commit()
        with pytest.raises(IntegrityError, match="ex_booking_set_dates"):
            session.execute(text(row), {"school": school.id, "type": ukuleles.id, "set": kit.id,
                                        "start": NEXT_YEAR[0][2], "end": date(Y + 2, 1, 31)})
        session.rollback()
        # The day after the last day is free: the range is half-open, [starts_on, ends_on + 1).
        session.execute(text(row), {"school": school.id, "type": ukuleles.id, "set": kit.id,
                                    "start": date.fromordinal(NEXT_YEAR[0][2].toordinal() + 1),
                                    "end": date(Y + 2, 1, 31)})
        session.commit()
        assert session.scalar(select(func.count()).select_from(Booking)) == 2
