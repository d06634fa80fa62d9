"""The public catalogue, parents reserving, and the store's reservation queue."""
from flask import Blueprint, current_app, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..accounts.models import Role
from ..accounts.permissions import roles_required, staff_required
from ..borrowers.models import Pupil, RemissionCategory
from ..borrowers.services import claims_for, family_of
from ..errors import InvalidInput
from ..extensions import db
from ..inventory.models import InstrumentType
from ..inventory.tags import resolve_instrument
from ..loans.forms import CLAIM_DECISIONS
from ..loans.lending import held_message
from ..loans.pricing import fee_schedule
from ..parents import services as parents
from ..parents.models import ParentRequest
from ..timeutil import today
from ..web import done, int_arg, submit_form
from . import services
from .forms import AllocateForm, ButtonForm, CollectForm, ReserveForm
from .models import ReservationStatus

bp = Blueprint("reservations", __name__)
parent_required = roles_required(Role.PARENT)

# A rough guide; the teacher measures the child. Ages are typical, not rules.
SIZE_GUIDE = [
    ("Violin", [("1/16", "about 3 to 4"), ("1/10", "4 to 5"), ("1/8", "5 to 6"), ("1/4", "6 to 7"),
                ("1/2", "7 to 9"), ("3/4", "9 to 11"), ("4/4", "11 and over")]),
    ("Viola", [('13"', "about 9 to 10"), ('14"', "10 to 11"), ('15"', "11 to 12"), ('15.5"', "12 and over"),
               ('16" and 16.5"', "adults and tall teenagers")]),
    ("Cello", [("1/4", "about 6 to 8"), ("1/2", "8 to 10"), ("3/4", "10 to 14"), ("4/4", "14 and over")]),
    ("Double bass", [("1/4", "about 9 to 11"), ("1/2", "11 to 13"), ("3/4", "13 and over")]),
    ("Classical guitar", [("1/2", "about 5 to 8"), ("3/4", "8 to 11"), ("4/4", "11 and over")]),
]


@bp.get("/catalogue")
def catalogue():
    bands, rules = fee_schedule(db.session)
    return render_template("reservations/catalogue.html", entries=services.catalogue(db.session), bands=bands,
                           rules=[(RemissionCategory(rule.category).label, rule) for rule in rules],
                           size_guide=SIZE_GUIDE,
                           order=services.waiting_list_order(current_app.config),
                           collect_days=current_app.config["RESERVATION_COLLECT_WORKING_DAYS"],
                           per_child=current_app.config["RESERVATIONS_PER_CHILD"])


# ---------------------------------------------------------------- parents


def _item_choices():
    choices = [("", "Choose an instrument")]
    for instrument_type in db.session.scalars(select(InstrumentType).order_by(InstrumentType.name)):
        for size in instrument_type.sizes or [""]:
            choices.append((f"{instrument_type.id}|{size}", f"{instrument_type.name} {size}".strip()))
    return choices


def _parse_item(value: str) -> tuple[int, str]:
    type_id, _, size = (value or "").partition("|")
    try:
        return int(type_id), size
    except ValueError:
        raise InvalidInput("Choose an instrument from the list.", field="item") from None


def _reserve(form: ReserveForm):
    type_id, size = _parse_item(form.item.data)
    return services.reserve(db.session, current_user, current_app.config, pupil_id=form.pupil_id.data,
                            type_id=type_id, size=size, preferred_start_on=form.preferred_start_on.data)


def _reserved(reservation):
    if reservation.status_enum is ReservationStatus.HELD:
        message = (f"A {reservation.description} is held for {reservation.pupil.name}. "
                   "We will email you when it is ready to collect.")
    else:
        place = services.waiting_place(db.session, reservation, current_app.config)
        message = f"{reservation.pupil.name} is on the waiting list for a {reservation.description}: number {place}."
    return done(message, url_for("home.index"))


@bp.route("/reserve", methods=["GET", "POST"])
@parent_required
def reserve():
    family = family_of(db.session, current_user)
    pupils = list(db.session.scalars(select(Pupil).where(Pupil.family_id == family.id).order_by(Pupil.name))) \
        if family else []
    form = ReserveForm()
    form.pupil_id.choices = [(p.id, p.name) for p in pupils]
    form.item.choices = _item_choices()
    if request.method == "GET":
        form.pupil_id.data = request.args.get("child", type=int)
        if request.args.get("item"):
            form.item.data = request.args["item"]
        form.preferred_start_on.data = today()
    response, status = submit_form(form, lambda: _reserve(form), _reserved)
    if response:
        return response
    return render_template("reservations/reserve.html", form=form, pupils=pupils,
                           confirmed=parents.is_confirmed(db.session, current_user)), status


@bp.post("/reservations/<int:reservation_id>/cancel")
@parent_required
def cancel(reservation_id: int):
    reservation = services.reservation_of(db.session, current_user, reservation_id, for_update=True)
    services.cancel_reservation(db.session, current_user, reservation, current_app.config)
    db.session.commit()
    return done(f"Cancelled the reservation of a {reservation.description} for {reservation.pupil.name}.",
                url_for("home.index"))


# ---------------------------------------------------------------- the store's queue


def _render_queue(status=200, **forms):
    queue = services.staff_queue(db.session, current_app.config, page=int_arg("page") or 1)
    claims = claims_for(db.session, [r.pupil for r, _ in queue.held] + [r.pupil for r in queue.ready]
                                + [r.pupil for _, people, _ in queue.waiting for r, _ in people])
    requests = parents.open_requests(db.session)
    return render_template("reservations/queue.html", queue=queue, claims=claims, requests=requests,
                           button=ButtonForm(formdata=None), allocate=forms.get("allocate"),
                           allocate_for=forms.get("allocate_for"), collect_form=forms.get("collect"),
                           collect_for=forms.get("collect_for"), collect_decisions=CLAIM_DECISIONS, today=today(),
                           order=services.waiting_list_order(current_app.config)), status


@bp.get("/reservations/queue")
@staff_required
def queue():
    return _render_queue()


def _back(message: str):
    return done(message, url_for("reservations.queue"))


@bp.post("/reservations/<int:reservation_id>/allocate")
@staff_required
def allocate(reservation_id: int):
    reservation = services.get_reservation(db.session, reservation_id, for_update=True)
    form = AllocateForm()

    def perform():
        instrument = resolve_instrument(db.session, form.tag.data, for_update=True,
                                        base_url=current_app.config["PUBLIC_BASE_URL"])
        return services.allocate(db.session, current_user, current_app.config, reservation, instrument)

    response, status = submit_form(form, perform, lambda r: _back(
        f"{r.instrument.asset_tag} is held for {r.pupil.name}."))
    return response or _render_queue(status, allocate=form, allocate_for=reservation_id)


@bp.post("/reservations/<int:reservation_id>/ready")
@staff_required
def ready(reservation_id: int):
    reservation = services.get_reservation(db.session, reservation_id, for_update=True)
    services.mark_ready(db.session, current_user, current_app.config, reservation)
    db.session.commit()
    return _back(f"{reservation.pupil.name}'s {reservation.description} is ready to collect by "
                 f"{reservation.collect_by:%-d %b %Y}; the parent has been emailed.")


@bp.post("/reservations/<int:reservation_id>/collect")
@staff_required
def collect(reservation_id: int):
    reservation = services.get_reservation(db.session, reservation_id, for_update=True)
    form = CollectForm()
    response, status = submit_form(
        form, lambda: services.collect(db.session, current_user, current_app.config, reservation,
                                       due_on=form.due_on.data, remission_claim=form.remission_claim.data),
        lambda loan: done(held_message(loan) if loan.is_pending else
                          f"{loan.instrument.asset_tag} is on loan to {loan.pupil.name} until {loan.due_on:%-d %b %Y}.",
                          url_for("loans.detail", loan_id=loan.id)))
    return response or _render_queue(status, collect=form, collect_for=reservation_id)


@bp.post("/reservations/<int:reservation_id>/release")
@staff_required
def release(reservation_id: int):
    reservation = services.get_reservation(db.session, reservation_id, for_update=True)
    services.cancel_reservation(db.session, current_user, reservation, current_app.config)
    db.session.commit()
    return _back(f"Cancelled the reservation for {reservation.pupil.name}.")


@bp.post("/reservations/offer")
@staff_required
def offer():
    count = services.offer_all(db.session, current_user, current_app.config)
    db.session.commit()
    return _back(f"Held {count} free instrument{'s' if count != 1 else ''} for children on waiting lists.")


@bp.post("/parent-requests/<int:request_id>/done")
@staff_required
def request_done(request_id: int):
    parent_request = db.get_or_404(ParentRequest, request_id)
    parents.handle_request(db.session, current_user, parent_request)
    db.session.commit()
    return _back("Marked as dealt with.")
