"""Booking pages: schools ask for sets and see their bookings; staff allocate, plan runs and deliver."""
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..accounts.models import Role
from ..accounts.permissions import may_see, roles_required, staff_required
from ..documents.render import render_pdf
from ..documents.services import Hub
from ..errors import InvalidInput, LoanServiceError
from ..extensions import db
from ..inventory.models import InstrumentType
from ..schools.models import School
from ..sets.models import ClassroomSet
from ..timeutil import today, utcnow
from ..web import date_arg, done, int_arg, pdf_response, refused_page, run_change, submit_button, submit_form
from ..wording import counted
from . import services
from .forms import AllocateForm, BookingForm, ButtonForm, DeclineForm, ScheduleForm
from .ics import calendar_text
from .models import BookingStatus, CalendarFeed

bp = Blueprint("bookings", __name__)

staff_or_school = roles_required(Role.ADMIN, Role.STAFF, Role.SCHOOL)


def _is_school() -> bool:
    return current_user.role == Role.SCHOOL


def _types():
    return db.session.scalars(select(InstrumentType).order_by(InstrumentType.name)).all()


@bp.get("/bookings")
@staff_or_school
def index():
    status = request.args.get("status", "")
    chosen = BookingStatus(status) if status in list(BookingStatus) else None
    query = services.bookings_for(db.session, school_id=current_user.school_id if _is_school() else None,
                                  status=chosen)
    page = db.paginate(query, per_page=current_app.config["PAGE_SIZE"], error_out=False)
    feed = None
    if _is_school():
        feed = db.session.scalar(select(CalendarFeed).where(
            CalendarFeed.key == f"school-{current_user.school_id}"))
    return render_template("bookings/index.html", page=page, status=chosen, statuses=list(BookingStatus),
                           feed=feed, feed_form=ButtonForm(formdata=None),
                           candidates=services.rollover_candidates(
                               db.session, current_app.config,
                               school_id=current_user.school_id if _is_school() else None))


@bp.route("/bookings/new", methods=["GET", "POST"])
@staff_or_school
def new():
    form = BookingForm()
    if _is_school():
        del form.school_id
    else:
        form.school_id.choices = [(0, "Choose a school")] + [
            (s.id, s.name) for s in db.session.scalars(select(School).order_by(School.name))]
    form.type_id.choices = [(0, "Choose the instrument")] + [(t.id, t.name) for t in _types()]
    periods = services.bookable_periods(db.session)
    form.period.choices = [("", "Choose a term or school year")] + [
        (p.key, f"{p.label} ({p.starts_on:%-d %b %Y} to {p.ends_on:%-d %b %Y})") for p in periods]

    def perform():
        school = current_user.school if _is_school() else db.session.get(School, form.school_id.data)
        if school is None:
            raise InvalidInput("Choose the school.", field="school_id")
        return services.request_booking(
            db.session, current_user, school, instrument_type=db.session.get(InstrumentType, form.type_id.data),
            pupils=form.pupils.data, period_key=form.period.data, sizes=form.sizes.data or "",
            teacher=form.teacher.data or "", preferred_week=form.preferred_week.data, notes=form.notes.data or "")

    response, status = submit_form(form, perform, lambda booking: done(
        f"Asked for a {booking.instrument_type.name} set for {booking.period}: the store will answer here.",
        url_for(".detail", booking_id=booking.id)))
    if response:
        return response
    return render_template("bookings/new.html", form=form, periods=periods), status


def _visible(booking_id: int):
    try:
        booking = services.get_booking(db.session, booking_id)
    except LoanServiceError:
        abort(404)
    if not may_see(current_user, booking):
        abort(404)  # another school's booking: not even its existence is shown
    return booking


def _render_detail(booking, status=200, **forms):
    staff = not _is_school()
    allocate_form = forms.get("allocate") or AllocateForm(formdata=None)
    suggestions = []
    if staff and booking.status in (BookingStatus.REQUESTED, BookingStatus.ALLOCATED):
        suggestions = services.suggested_sets(db.session, booking)
        allocate_form.set_id.choices = [(s.id, f"{s.name} ({counted(s.size, 'instrument')})") for s in suggestions]
    schedule_form = forms.get("schedule") or ScheduleForm(formdata=None)
    if "schedule" not in forms:
        schedule_form.delivery_on.data, schedule_form.collection_on.data = booking.delivery_on, booking.collection_on
    return render_template(
        "bookings/detail.html", booking=booking, staff=staff, suggestions=suggestions,
        allocate_form=allocate_form, decline_form=forms.get("decline") or DeclineForm(formdata=None),
        schedule_form=schedule_form, button_form=ButtonForm(formdata=None)), status


@bp.get("/bookings/<int:booking_id>")
@staff_or_school
def detail(booking_id: int):
    return _render_detail(_visible(booking_id))


def _form_change(booking_id: int, name: str, form, perform, message):
    booking = _visible(booking_id)
    response, status = submit_form(form, lambda: perform(booking), lambda result: done(
        message(result), url_for(".detail", booking_id=booking_id)))
    if response:
        return response
    return _render_detail(_visible(booking_id), status, **{name: form})


@bp.post("/bookings/<int:booking_id>/allocate")
@staff_required
def allocate(booking_id: int):
    form = AllocateForm()
    form.set_id.choices = []
    return _form_change(booking_id, "allocate", form, lambda booking: services.allocate(
        db.session, current_user, booking, db.session.get(ClassroomSet, form.set_id.data),
        delivery_on=form.delivery_on.data, collection_on=form.collection_on.data),
        lambda b: f"Allocated {b.classroom_set.name}: delivery {b.delivery_on:%-d %b %Y}.")


@bp.post("/bookings/<int:booking_id>/decline")
@staff_required
def decline(booking_id: int):
    form = DeclineForm()
    return _form_change(booking_id, "decline", form,
                        lambda booking: services.decline(db.session, current_user, booking, form.reason.data),
                        lambda b: "Declined: the school sees the reason.")


@bp.post("/bookings/<int:booking_id>/schedule")
@staff_required
def schedule(booking_id: int):
    form = ScheduleForm()
    return _form_change(booking_id, "schedule", form, lambda booking: services.schedule(
        db.session, current_user, booking, delivery_on=form.delivery_on.data, collection_on=form.collection_on.data),
        lambda b: f"Delivery {b.delivery_on:%-d %b %Y}, collection {b.collection_on:%-d %b %Y}.")


def _button(booking_id: int, perform, message, location=None):
    booking = _visible(booking_id)
    page = url_for(".detail", booking_id=booking_id)
    form = ButtonForm()
    if not form.validate_on_submit():
        abort(422, description="The form had expired: open the booking and try again.")
    return run_change(lambda: perform(booking), lambda result: done(message(result), location(result)
                                                                    if location else page), refused_page)


@bp.post("/bookings/<int:booking_id>/deliver")
@staff_required
def deliver(booking_id: int):
    return _button(booking_id, lambda b: services.deliver(db.session, current_user, b),
                   lambda set_loan: f"Delivered: {set_loan.classroom_set.name} is on loan to {set_loan.school.name} "
                                    f"until {set_loan.due_on:%-d %b %Y}.")


@bp.post("/bookings/<int:booking_id>/collect")
@staff_required
def collect(booking_id: int):
    return _button(booking_id, lambda b: services.collect(db.session, current_user, b),
                   lambda b: f"Collected {b.classroom_set.name}: scan its items back in.",
                   lambda b: url_for("sets.check_in", set_loan_id=b.set_loan_id))


@bp.post("/bookings/<int:booking_id>/cancel")
@staff_or_school
def cancel(booking_id: int):
    return _button(booking_id, lambda b: services.cancel_booking(db.session, current_user, b),
                   lambda b: "Booking cancelled.")


# ---------------------------------------------------------------- free sets and a set's year


@bp.get("/bookings/free-sets")
@staff_required
def free_sets():
    types = _types()
    periods = services.bookable_periods(db.session, today() - timedelta(days=366))
    type_id, key = int_arg("type_id"), request.args.get("period", "")
    chosen_type = next((t for t in types if t.id == type_id), None)
    period = next((p for p in periods if p.key == key), None)
    results, message = None, ""
    if request.args and (chosen_type is None or period is None):
        message = "Choose an instrument and a term or school year."
    elif chosen_type and period:
        results = services.free_sets(db.session, chosen_type.id, period.starts_on, period.ends_on)
    return render_template("bookings/free_sets.html", types=types, periods=periods, chosen_type=chosen_type,
                           period=period, results=results, message=message), 422 if message else 200


@bp.get("/sets/<int:set_id>/year")
@staff_required
def set_year(set_id: int):
    classroom_set = db.get_or_404(ClassroomSet, set_id)
    this_year = services.school_year_of(today())
    year = int_arg("year") or this_year
    if not this_year - 5 <= year <= this_year + 5:
        abort(404, description="Choose a school year within five years of this one.")
    return render_template("bookings/set_year.html", classroom_set=classroom_set, year=year,
                           year_label=services.year_label(year),
                           cells=services.set_timeline(db.session, classroom_set, year))


# ---------------------------------------------------------------- the run sheet


def _run_span():
    first = date_arg("from") or today()
    span = request.args.get("span", "week")
    if span == "day":
        return first, first, "day"
    first -= timedelta(days=first.weekday())
    return first, first + timedelta(days=6), "week"


@bp.get("/bookings/run-sheet")
@staff_required
def run_sheet():
    first, last, span = _run_span()
    return render_template("bookings/run_sheet.html", stops=services.run_sheet(db.session, first, last),
                           first=first, last=last, span=span, button_form=ButtonForm(formdata=None),
                           step=timedelta(days=1 if span == "day" else 7))


@bp.get("/bookings/run-sheet.pdf")
@staff_required
def run_sheet_pdf():
    first, last, span = _run_span()
    try:
        hub = Hub.from_config(current_app.config)
    except LoanServiceError as error:
        abort(error.status_code, description=error.message)
    data = render_pdf("bookings/run_sheet_pdf.html", stops=services.run_sheet(db.session, first, last),
                      first=first, last=last, hub=hub, made_on=today())
    return pdf_response(data, f"run-sheet-{first:%Y-%m-%d}.pdf")


# ---------------------------------------------------------------- roll-over


@bp.route("/bookings/roll-over", methods=["GET", "POST"])
@staff_or_school
def roll_over():
    school_id = current_user.school_id if _is_school() else None
    candidates = services.rollover_candidates(db.session, current_app.config, school_id=school_id)
    deadline = services.rollover_deadline(current_app.config, services.school_year_of(today()))
    form = ButtonForm()
    if request.method == "POST":
        wanted = [int(v) for v in request.form.getlist("booking_id") if v.isdigit() and len(v) < 10]
        if _is_school() and any(i not in {b.id for b in candidates} for i in wanted):
            abort(404)
        if not form.validate_on_submit():
            abort(422, description="The form had expired: open the page and try again.")
        return run_change(
            lambda: services.roll_over_all(db.session, current_user, current_app.config, wanted),
            lambda done_: done(f"Rolled over {counted(len(done_), 'set')} for next school year.",
                               url_for(".index")),
            refused_page)
    return render_template("bookings/roll_over.html", candidates=candidates, deadline=deadline,
                           form=ButtonForm(formdata=None))


# ---------------------------------------------------------------- calendar feeds


@bp.post("/bookings/calendar-link")
@staff_or_school
def calendar_link():
    school = current_user.school if _is_school() else None
    return submit_button(ButtonForm(), lambda: services.feed_for(db.session, school, renew=True),
                         "A new calendar link is ready: any old link no longer works.",
                         url_for(".index") if school else url_for(".store_calendar"))


@bp.get("/bookings/store-calendar")
@staff_required
def store_calendar():
    feed = db.session.scalar(select(CalendarFeed).where(CalendarFeed.key == "store"))
    return render_template("bookings/store_calendar.html", feed=feed, feed_form=ButtonForm(formdata=None))


@bp.get("/calendar/<token>.ics")
def feed(token: str):
    """A calendar app's subscription: no sign-in, the secret token is the key; a wrong one is a 404."""
    if len(token) > 64:
        abort(404)
    try:
        calendar_feed = services.feed_by_token(db.session, token)
    except LoanServiceError:
        abort(404)
    name = (f"{db.session.get(School, calendar_feed.school_id).name}: instrument sets"
            if calendar_feed.school_id else "Instrument store: deliveries and collections")
    domain = urlsplit(current_app.config.get("PUBLIC_BASE_URL") or "http://loanservice").hostname or "loanservice"
    body = calendar_text(services.feed_events(db.session, calendar_feed), name=name, domain=domain,
                         stamp=utcnow())
    return Response(body, mimetype="text/calendar", headers={"Cache-Control": "private, no-store"})
