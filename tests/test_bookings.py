"""Bookings of classroom sets: asking, allocating, declining, delivering, collecting, the run sheet,
calendar feeds, roll-over and reminders; the pages as they render, and who sees what."""
import re
from datetime import date, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from loanservice.bookings import services
from loanservice.bookings.models import Booking, BookingStatus
from loanservice.errors import LoanServiceError
from loanservice.mail import OutboxMessage
from loanservice.sets.models import ClassroomSet, SetLoan
from loanservice.signals import booking_checked
from loanservice.timeutil import today

from .conftest import in_app, login, mail_to, pdf_text, send_mail, tags_of
from .pages import submit

Y = services.school_year_of(today())
THIS_YEAR = [(f"Autumn {Y}", date(Y, 9, 1), date(Y, 12, 18)),
             (f"Spring {Y + 1}", date(Y + 1, 1, 5), date(Y + 1, 3, 26)),
             (f"Summer {Y + 1}", date(Y + 1, 4, 12), date(Y + 1, 7, 21))]
NEXT_YEAR = [(f"Autumn {Y + 1}", date(Y + 1, 9, 2), date(Y + 1, 12, 17)),
             (f"Spring {Y + 2}", date(Y + 2, 1, 4), date(Y + 2, 3, 25)),
             (f"Summer {Y + 2}", date(Y + 2, 4, 12), date(Y + 2, 7, 20))]


@pytest.fixture
def calendar(factory):
    """Two school years of terms: this one (begun) and the next; their ids by name."""
    return {name: factory.term(name, start, end).id for name, start, end in THIS_YEAR + NEXT_YEAR}


@pytest.fixture
def ukuleles(factory):
    return factory.instrument_type("Ukulele", family="strings", sizes=())


def make_set(factory, kind, size, name):
    return factory.classroom_set(name=name, tag=f"SET-{name.upper().replace(' ', '-')}",
                                 instruments=[factory.instrument(kind) for _ in range(size)])


def ask(app, school, kind, term_id, pupils=30, **kw):
    """A booking requested by ``school``, committed; its id."""
    with in_app(app) as session:
        booking = services.request_booking(session, None, session.merge(school),
                                           instrument_type=session.merge(kind), pupils=pupils,
                                           period_key=f"term-{term_id}", **kw)
        session.commit()
        return booking.id


def allocate(app, booking_id, classroom_set, **kw):
    with in_app(app) as session:
        booking = services.get_booking(session, booking_id)
        services.allocate(session, None, booking, session.get(ClassroomSet, classroom_set.id), **kw)
        session.commit()


def status_of(app, booking_id):
    with in_app(app) as session:
        return session.get(Booking, booking_id).status


def school_client(app, factory, school):
    client = app.test_client()
    login(client, factory.user("school", school=school))
    return client


# ---------------------------------------------------------------- asking and allocating


def test_a_school_asks_for_a_set_on_the_page_and_sees_it_waiting(app, factory, calendar, ukuleles):
    school = factory.school("Hill Primary")
    client = school_client(app, factory, school)
    response = submit(client, "/bookings/new", {
        "type_id": str(ukuleles.id), "pupils": "28", "period": f"term-{calendar[f'Autumn {Y + 1}']}",
        "teacher": "Ms Rao", "notes": "Ring the bell at the side gate."}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Asked for a Ukulele set for Autumn " + str(Y + 1) in page
    assert "Asked for, waiting for the store" in client.get("/bookings").get_data(as_text=True)


def test_a_schools_home_page_shows_its_bookings(app, factory, calendar, ukuleles):
    school = factory.school("Hill Primary")
    ask(app, school, ukuleles, calendar[f"Autumn {Y + 1}"], pupils=28)
    page = school_client(app, factory, school).get("/").get_data(as_text=True)
    assert f"Ukulele set, Autumn {Y + 1}</a>:\n      asked for, waiting for the store" in page


def test_the_booking_form_offers_only_terms_to_come(app, factory, calendar, ukuleles):
    client = school_client(app, factory, factory.school())
    page = client.get("/bookings/new").get_data(as_text=True)
    assert f"Autumn {Y + 1}" in page
    assert f'value="term-{calendar[f"Autumn {Y}"]}"' not in page


def test_a_booking_for_a_term_that_has_begun_is_refused_with_a_message(app, factory, calendar, ukuleles):
    school = factory.school()
    client = school_client(app, factory, school)
    # The page no longer offers the term: a page opened before it began, or a hand-made post.
    response = client.post("/bookings/new", data={"type_id": str(ukuleles.id), "pupils": "30",
                                                  "period": f"term-{calendar[f'Autumn {Y}']}"})
    assert response.status_code == 422
    assert "has already begun" in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Booking)) == 0


def test_staff_are_offered_only_sets_that_fit_type_size_and_dates(app, factory, calendar, ukuleles):
    violins = factory.instrument_type("Violin", sizes=("1/2",))
    fits = make_set(factory, ukuleles, 30, "Ukulele set A")
    make_set(factory, ukuleles, 12, "Ukulele set small")
    taken = make_set(factory, ukuleles, 32, "Ukulele set B")
    make_set(factory, violins, 30, "Violin set A")
    autumn = calendar[f"Autumn {Y + 1}"]
    allocate(app, ask(app, factory.school(), ukuleles, autumn), taken)
    booking_id = ask(app, factory.school(), ukuleles, autumn, pupils=30)
    with in_app(app) as session:
        offered = [s.name for s in services.suggested_sets(session, services.get_booking(session, booking_id))]
    assert offered == [fits.name]


def test_which_ukulele_sets_are_free_for_a_term_is_one_search(app, factory, calendar, ukuleles, staff_client):
    make_set(factory, ukuleles, 30, "Ukulele set A")
    booked = make_set(factory, ukuleles, 30, "Ukulele set B")
    allocate(app, ask(app, factory.school(), ukuleles, calendar[f"Spring {Y + 2}"]), booked)
    page = staff_client.get(f"/bookings/free-sets?type_id={ukuleles.id}&period=term-{calendar[f'Spring {Y + 2}']}")
    text = page.get_data(as_text=True)
    assert "1 free Ukulele set for Spring" in text
    assert "Ukulele set B" not in text


def test_the_free_set_search_without_a_term_says_what_to_choose(app, factory, calendar, ukuleles, staff_client):
    page = staff_client.get(f"/bookings/free-sets?type_id={ukuleles.id}&period=term-99999")
    assert page.status_code == 422
    assert "Choose an instrument and a term or school year." in page.get_data(as_text=True)


def test_staff_allocate_a_suggested_set_on_the_page_and_the_school_sees_it(app, factory, calendar, ukuleles,
                                                                          staff_client):
    kit = make_set(factory, ukuleles, 30, "Ukulele set A")
    school = factory.school("Hill Primary")
    booking_id = ask(app, school, ukuleles, calendar[f"Autumn {Y + 1}"])
    response = submit(staff_client, f"/bookings/{booking_id}", {"set_id": str(kit.id)},
                      form=f"/bookings/{booking_id}/allocate")
    assert response.status_code == 303
    page = school_client(app, factory, school).get(f"/bookings/{booking_id}").get_data(as_text=True)
    assert "Accepted: set allocated" in page
    assert "Ukulele set A" in page


def test_a_set_already_booked_for_overlapping_dates_is_refused_with_who_has_it(app, factory, calendar, ukuleles):
    kit = make_set(factory, ukuleles, 30, "Ukulele set A")
    first = ask(app, factory.school("Hill Primary"), ukuleles, calendar[f"Autumn {Y + 1}"])
    allocate(app, first, kit)
    second = ask(app, factory.school("Vale School"), ukuleles, calendar[f"Autumn {Y + 1}"])
    with pytest.raises(LoanServiceError, match="already booked by Hill Primary for Autumn"):
        allocate(app, second, kit)
    assert status_of(app, second) is BookingStatus.REQUESTED


def test_a_whole_year_booking_overlaps_each_of_its_terms(app, factory, calendar, ukuleles):
    kit = make_set(factory, ukuleles, 30, "Ukulele set A")
    with in_app(app) as session:
        year = services.request_booking(session, None, session.merge(factory.school()),
                                        instrument_type=session.merge(ukuleles), pupils=30,
                                        period_key=f"year-{Y + 1}")
        session.commit()
        year_id = year.id
    allocate(app, year_id, kit)
    spring = ask(app, factory.school(), ukuleles, calendar[f"Spring {Y + 2}"])
    with pytest.raises(LoanServiceError, match="already booked"):
        allocate(app, spring, kit)


def test_the_next_term_is_free_once_the_first_booking_ends(app, factory, calendar, ukuleles):
    kit = make_set(factory, ukuleles, 30, "Ukulele set A")
    allocate(app, ask(app, factory.school(), ukuleles, calendar[f"Autumn {Y + 1}"]), kit)
    spring = ask(app, factory.school(), ukuleles, calendar[f"Spring {Y + 2}"])
    allocate(app, spring, kit)
    assert status_of(app, spring) is BookingStatus.ALLOCATED


def test_a_set_of_another_type_is_refused(app, factory, calendar, ukuleles, staff_client):
    violins = make_set(factory, factory.instrument_type("Violin", sizes=("1/2",)), 30, "Violin set A")
    booking_id = ask(app, factory.school(), ukuleles, calendar[f"Autumn {Y + 1}"])
    make_set(factory, ukuleles, 30, "Ukulele set A")  # so that the page has an allocation form
    response = submit(staff_client, f"/bookings/{booking_id}", {"set_id": str(violins.id)},
                      form=f"/bookings/{booking_id}/allocate")
    assert response.status_code == 409
    assert "Violin set A is not a Ukulele set" in response.get_data(as_text=True)
    assert status_of(app, booking_id) is BookingStatus.REQUESTED


def test_a_set_with_too_few_instruments_for_the_pupils_is_refused(app, factory, calendar, ukuleles):
    small = make_set(factory, ukuleles, 12, "Ukulele set small")
    booking_id = ask(app, factory.school(), ukuleles, calendar[f"Autumn {Y + 1}"], pupils=30)
    with pytest.raises(LoanServiceError, match="has 12 instruments, too few for 30 pupils"):
        allocate(app, booking_id, small)


def test_a_receiver_of_booking_checked_can_refuse_dates_a_set_will_not_be_ready_by(app, factory, calendar, ukuleles):
    kit = make_set(factory, ukuleles, 30, "Ukulele set A")
    booking_id = ask(app, factory.school(), ukuleles, calendar[f"Autumn {Y + 1}"])

    def servicing(classroom_set, *, session, starts_on, ends_on):
        return f"{classroom_set.name} is being restrung until after {starts_on:%-d %b}."

    with booking_checked.connected_to(servicing):
        with pytest.raises(LoanServiceError, match="is being restrung"):
            allocate(app, booking_id, kit)
    assert status_of(app, booking_id) is BookingStatus.REQUESTED


def test_staff_decline_with_a_reason_the_school_sees(app, factory, calendar, ukuleles, staff_client):
    school = factory.school()
    booking_id = ask(app, school, ukuleles, calendar[f"Autumn {Y + 1}"])
    response = submit(staff_client, f"/bookings/{booking_id}",
                      {"reason": "All ukulele sets are out that term."},
                      form=f"/bookings/{booking_id}/decline")
    assert response.status_code == 303
    page = school_client(app, factory, school).get(f"/bookings/{booking_id}").get_data(as_text=True)
    assert "All ukulele sets are out that term." in page


def test_declining_without_a_reason_is_refused(app, factory, calendar, ukuleles, staff_client):
    booking_id = ask(app, factory.school(), ukuleles, calendar[f"Autumn {Y + 1}"])
    response = submit(staff_client, f"/bookings/{booking_id}", {"reason": ""}, form=f"/bookings/{booking_id}/decline")
    assert response.status_code == 422
    assert status_of(app, booking_id) is BookingStatus.REQUESTED


def test_another_schools_booking_is_not_found(app, factory, calendar, ukuleles):
    booking_id = ask(app, factory.school(), ukuleles, calendar[f"Autumn {Y + 1}"])
    client = school_client(app, factory, factory.school())
    assert client.get(f"/bookings/{booking_id}").status_code == 404


def test_a_school_cannot_allocate(app, factory, calendar, ukuleles):
    kit = make_set(factory, ukuleles, 30, "Ukulele set A")
    school = factory.school()
    booking_id = ask(app, school, ukuleles, calendar[f"Autumn {Y + 1}"])
    client = school_client(app, factory, school)
    assert client.post(f"/bookings/{booking_id}/allocate", data={"set_id": str(kit.id)}).status_code == 403


# ---------------------------------------------------------------- delivery and collection


def allocated(app, factory, calendar, ukuleles, school=None, term=None):
    kit = make_set(factory, ukuleles, 4, "Ukulele set A")
    school = school or factory.school("Hill Primary", address="1 Hill Road\nLeeds LS1 1AA",
                                      contact_name="Ms Rao", contact_email="music@hill.example")
    booking_id = ask(app, school, ukuleles, term or calendar[f"Autumn {Y + 1}"], pupils=4)
    allocate(app, booking_id, kit, delivery_on=today() + timedelta(days=2))
    return kit, school, booking_id


def test_delivery_makes_the_set_loan_due_at_the_bookings_end(app, factory, calendar, ukuleles, staff_client):
    kit, school, booking_id = allocated(app, factory, calendar, ukuleles)
    response = submit(staff_client, f"/bookings/{booking_id}", form=f"/bookings/{booking_id}/deliver")
    assert response.status_code == 303
    with in_app(app) as session:
        set_loan = session.scalar(select(SetLoan).where(SetLoan.set_id == kit.id))
        assert set_loan.due_on == NEXT_YEAR[0][2]
        assert set_loan.school_id == school.id
        assert session.get(Booking, booking_id).set_loan_id == set_loan.id


def test_a_collection_before_its_delivery_is_refused(app, factory, calendar, ukuleles, staff_client):
    _, _, booking_id = allocated(app, factory, calendar, ukuleles)
    response = staff_client.post(f"/bookings/{booking_id}/collect")
    assert response.status_code == 409
    assert "a collection comes after its delivery" in response.get_data(as_text=True)
    assert status_of(app, booking_id) is BookingStatus.ALLOCATED


def test_a_collection_day_before_the_delivery_day_is_refused(app, factory, calendar, ukuleles, staff_client):
    _, _, booking_id = allocated(app, factory, calendar, ukuleles)
    day = today() + timedelta(days=5)
    response = submit(staff_client, f"/bookings/{booking_id}", {
        "delivery_on": day.isoformat(), "collection_on": (day - timedelta(days=1)).isoformat()},
                      form=f"/bookings/{booking_id}/schedule")
    assert response.status_code == 422
    assert "is before the delivery" in response.get_data(as_text=True)


def test_collecting_leads_to_the_sets_scan_check_in_and_scans_close_the_loan(app, factory, calendar, ukuleles,
                                                                              staff_client):
    kit, _, booking_id = allocated(app, factory, calendar, ukuleles)
    staff_client.post(f"/bookings/{booking_id}/deliver")
    response = staff_client.post(f"/bookings/{booking_id}/collect")
    assert response.status_code == 303
    assert "/check-in" in response.headers["Location"]
    for tag in tags_of(app, kit):
        staff_client.post(response.headers["Location"], data={"code": tag, "grade": ""})
    with in_app(app) as session:
        assert session.scalar(select(SetLoan).where(SetLoan.set_id == kit.id)).closed_on == today()


def test_the_run_sheet_lists_the_weeks_deliveries_with_address_contact_and_count(app, factory, calendar, ukuleles,
                                                                                  staff_client):
    allocated(app, factory, calendar, ukuleles)
    page = staff_client.get(f"/bookings/run-sheet?from={(today() + timedelta(days=2)).isoformat()}&span=day")
    text = page.get_data(as_text=True)
    assert "Hill Primary" in text
    assert "1 Hill Road" in text
    assert "Ms Rao" in text
    assert re.search(r"Instruments\">4", text)


def test_the_run_sheet_pdf_names_the_school_and_its_set(app, factory, calendar, ukuleles, staff_client):
    allocated(app, factory, calendar, ukuleles)
    response = staff_client.get(f"/bookings/run-sheet.pdf?from={(today() + timedelta(days=2)).isoformat()}")
    assert response.mimetype == "application/pdf"
    text = pdf_text(response.data)
    assert "Hill Primary" in text
    assert "Ukulele set A" in text


def _booked_with_notes(app, factory, calendar, ukuleles):
    kit = make_set(factory, ukuleles, 4, "Ukulele set A")
    school = factory.school("Hill Primary", address="1 Hill Road")
    booking_id = ask(app, school, ukuleles, calendar[f"Autumn {Y + 1}"], pupils=4, teacher="Mr Singh",
                     notes="Please deliver to the hall.")
    allocate(app, booking_id, kit, delivery_on=today() + timedelta(days=2))


def test_the_run_sheet_gives_the_driver_the_schools_notes(app, factory, calendar, ukuleles, staff_client):
    _booked_with_notes(app, factory, calendar, ukuleles)
    page = staff_client.get(f"/bookings/run-sheet?from={(today() + timedelta(days=2)).isoformat()}&span=day")
    assert "Please deliver to the hall." in page.get_data(as_text=True)


def test_the_run_sheet_pdf_names_the_teacher(app, factory, calendar, ukuleles, staff_client):
    _booked_with_notes(app, factory, calendar, ukuleles)
    response = staff_client.get(f"/bookings/run-sheet.pdf?from={(today() + timedelta(days=2)).isoformat()}")
    assert "Mr Singh" in pdf_text(response.data)


def test_an_empty_run_sheet_says_so(app, factory, staff_client):
    page = staff_client.get("/bookings/run-sheet?span=day").get_data(as_text=True)
    assert "Nothing to deliver or collect that day." in page


# ---------------------------------------------------------------- the set's year


def test_the_sets_year_shows_each_term_out_booked_or_free(app, factory, calendar, ukuleles, staff_client):
    kit, _, booking_id = allocated(app, factory, calendar, ukuleles, term=calendar[f"Spring {Y + 2}"])
    page = staff_client.get(f"/sets/{kit.id}/year?year={Y + 1}").get_data(as_text=True)
    rows = dict(re.findall(r'<th scope="row">(\w+ \d{4})</th>.*?data-label="State">(\w+)<', page, re.S))
    assert rows == {f"Autumn {Y + 1}": "Free", f"Spring {Y + 2}": "Booked", f"Summer {Y + 2}": "Free"}


def test_a_delivered_set_shows_out_this_year(app, factory, calendar, ukuleles, staff_client):
    kit, _, booking_id = allocated(app, factory, calendar, ukuleles)
    staff_client.post(f"/bookings/{booking_id}/deliver")
    page = staff_client.get(f"/sets/{kit.id}/year?year={Y + 1}").get_data(as_text=True)
    assert re.search(rf"Autumn {Y + 1}</th>.*?data-label=\"State\">Out<", page, re.S)


# ---------------------------------------------------------------- calendar feeds


def feed_url(client, path):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'value="http://[^/"]+(/calendar/[^"]+\.ics)"', page).group(1)


def test_a_schools_calendar_feed_parses_and_holds_only_its_own_dates(app, factory, calendar, ukuleles):
    kit, school, booking_id = allocated(app, factory, calendar, ukuleles)
    other = make_set(factory, ukuleles, 4, "Ukulele set B")
    allocate(app, ask(app, factory.school("Vale School"), ukuleles, calendar[f"Autumn {Y + 1}"], pupils=4), other)
    client = school_client(app, factory, school)
    submit(client, "/bookings", button="Make a calendar link", form="/bookings/calendar-link")
    response = client.get(feed_url(client, "/bookings"))
    events = Calendar.from_ical(response.data).walk("VEVENT")
    summaries = sorted(str(e["SUMMARY"]) for e in events)
    assert summaries == ["Collection: Ukulele set A from Hill Primary", "Delivery: Ukulele set A to Hill Primary",
                         "Due back: Ukulele set A (Hill Primary)"]


def test_the_store_feed_has_every_schools_delivery_on_its_day(app, factory, calendar, ukuleles, staff_client):
    allocated(app, factory, calendar, ukuleles)
    submit(staff_client, "/bookings/store-calendar", button="Make a calendar link")
    response = staff_client.get(feed_url(staff_client, "/bookings/store-calendar"))
    deliveries = [e for e in Calendar.from_ical(response.data).walk("VEVENT")
                  if str(e["SUMMARY"]).startswith("Delivery")]
    assert [e.decoded("DTSTART") for e in deliveries] == [today() + timedelta(days=2)]


def test_a_feed_with_a_wrong_token_is_not_found(app, client):
    assert client.get("/calendar/not-the-token.ics").status_code == 404


def test_a_new_link_stops_the_old_one(app, factory, calendar, staff_client):
    submit(staff_client, "/bookings/store-calendar", button="Make a calendar link")
    old = feed_url(staff_client, "/bookings/store-calendar")
    submit(staff_client, "/bookings/store-calendar", button="Make a new link")
    assert staff_client.get(old).status_code == 404


# ---------------------------------------------------------------- roll-over


def rollover_setup(app, factory, calendar, ukuleles, schools=1):
    """Sets held by schools to the end of next year; as of June that year, they can be rolled over."""
    ids = []
    for n in range(schools):
        kit = make_set(factory, ukuleles, 4, f"Ukulele set {n}")
        booking_id = ask(app, factory.school(f"School {n}"), ukuleles, calendar[f"Summer {Y + 2}"], pupils=4)
        allocate(app, booking_id, kit)
        ids.append(booking_id)
    return ids, date(Y + 2, 6, 1)


def test_a_school_confirms_its_set_for_next_year_once(app, factory, calendar, ukuleles):
    factory.term(f"Autumn {Y + 2}", date(Y + 2, 9, 2), date(Y + 2, 12, 17))
    factory.term(f"Summer {Y + 3}", date(Y + 3, 4, 12), date(Y + 3, 7, 20))
    (booking_id,), june = rollover_setup(app, factory, calendar, ukuleles)
    with in_app(app) as session:
        again = services.roll_over(session, None, app.config, services.get_booking(session, booking_id), june)
        session.commit()
        assert (again.starts_on, again.ends_on, again.status) == (
            date(Y + 2, 9, 2), date(Y + 3, 7, 20), BookingStatus.ALLOCATED)
    with in_app(app) as session, pytest.raises(LoanServiceError, match="cannot be rolled over"):
        services.roll_over(session, None, app.config, services.get_booking(session, booking_id), june)


def test_after_the_hubs_date_a_set_lapses_and_cannot_be_rolled_over(app, factory, calendar, ukuleles):
    factory.term(f"Autumn {Y + 2}", date(Y + 2, 9, 2), date(Y + 2, 12, 17))
    (booking_id,), _ = rollover_setup(app, factory, calendar, ukuleles)
    with in_app(app) as session:
        assert services.rollover_candidates(session, app.config, on=date(Y + 2, 7, 2)) == []


def test_staff_roll_over_in_bulk_what_they_confirmed(app, factory, calendar, ukuleles):
    factory.term(f"Autumn {Y + 2}", date(Y + 2, 9, 2), date(Y + 2, 12, 17))
    ids, june = rollover_setup(app, factory, calendar, ukuleles, schools=3)
    with in_app(app) as session:
        rolled = services.roll_over_all(session, None, app.config, ids, june)
        session.commit()
        assert len(rolled) == 3
        assert session.scalar(select(func.count()).select_from(Booking).where(
            Booking.rolled_from_id.in_(ids))) == 3


def test_the_roll_over_page_names_how_many_sets(app, factory, calendar, ukuleles, staff_client):
    if today() >= THIS_YEAR[2][1]:
        pytest.skip("this year's summer term has begun: it can no longer be booked")
    for n in range(2):
        kit = make_set(factory, ukuleles, 4, f"Ukulele set {n}")
        allocate(app, ask(app, factory.school(), ukuleles, calendar[f"Summer {Y + 1}"], pupils=4), kit)
    page = staff_client.get("/bookings/roll-over").get_data(as_text=True)
    assert "Roll over all 2 sets" in page
    response = submit(staff_client, "/bookings/roll-over", button="Roll over all 2 sets", follow_redirects=True)
    assert "Rolled over 2 sets for next school year." in response.get_data(as_text=True)


# ---------------------------------------------------------------- reminders


def test_a_school_is_reminded_a_week_before_a_collection_once(app, factory, calendar, ukuleles, smtp_server):
    mail_to(app, smtp_server)
    kit, _, booking_id = allocated(app, factory, calendar, ukuleles)
    with in_app(app) as session:
        booking = services.get_booking(session, booking_id)
        services.deliver(session, None, booking)
        services.schedule(session, None, booking, delivery_on=None, collection_on=today() + timedelta(days=6))
        session.commit()
    runner = app.test_cli_runner()
    assert "1 collection reminder queued." in runner.invoke(args=["bookings", "remind"]).output
    assert "0 collection reminders queued." in runner.invoke(args=["bookings", "remind"]).output
    send_mail(app)
    assert [m["To"] for m in smtp_server.messages] == ["music@hill.example"]
    assert "is collected on" in smtp_server.messages[0]["Subject"]


def test_no_reminder_for_a_collection_more_than_a_week_away(app, factory, calendar, ukuleles):
    _, _, booking_id = allocated(app, factory, calendar, ukuleles)
    with in_app(app) as session:
        services.deliver(session, None, services.get_booking(session, booking_id))
        session.commit()
        assert services.remind_collections(session, app.config) == 0
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_the_bookings_list_is_empty_with_a_way_to_start(app, factory):
    client = school_client(app, factory, factory.school())
    assert "No bookings yet." in client.get("/bookings").get_data(as_text=True)


def test_a_set_out_at_a_school_past_the_bookings_start_is_refused(app, factory, calendar, ukuleles):
    kit = make_set(factory, ukuleles, 30, "Ukulele set A")
    factory.check_out_set(kit, factory.school("Vale School"), due_on=NEXT_YEAR[0][1] + timedelta(days=10))
    booking_id = ask(app, factory.school(), ukuleles, calendar[f"Autumn {Y + 1}"])
    with pytest.raises(LoanServiceError, match="Ukulele set A is out at Vale School until"):
        allocate(app, booking_id, kit)
    with in_app(app) as session:
        assert services.suggested_sets(session, services.get_booking(session, booking_id)) == []


def test_a_school_keeps_its_set_for_next_year_in_one_click(app, factory, calendar, ukuleles):
    if today() >= THIS_YEAR[2][1]:
        pytest.skip("this year's summer term has begun: it can no longer be booked")
    kit = make_set(factory, ukuleles, 4, "Ukulele set A")
    school = factory.school("Hill Primary")
    allocate(app, ask(app, school, ukuleles, calendar[f"Summer {Y + 1}"], pupils=4), kit)
    client = school_client(app, factory, school)
    response = submit(client, "/bookings/roll-over", button="Keep Ukulele set A next year", follow_redirects=True)
    assert "Rolled over 1 set for next school year." in response.get_data(as_text=True)
    with in_app(app) as session:
        kept = session.scalar(select(Booking).where(Booking.rolled_from_id.is_not(None)))
        assert (kept.school_id, kept.starts_on, kept.ends_on) == (school.id, NEXT_YEAR[0][1], NEXT_YEAR[2][2])


def test_a_school_cannot_roll_over_another_schools_set(app, factory, calendar, ukuleles):
    if today() >= THIS_YEAR[2][1]:
        pytest.skip("this year's summer term has begun: it can no longer be booked")
    kit = make_set(factory, ukuleles, 4, "Ukulele set A")
    booking_id = ask(app, factory.school("Hill Primary"), ukuleles, calendar[f"Summer {Y + 1}"], pupils=4)
    allocate(app, booking_id, kit)
    client = school_client(app, factory, factory.school("Vale School"))
    assert client.post("/bookings/roll-over", data={"booking_id": str(booking_id)}).status_code == 404
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Booking)) == 1
