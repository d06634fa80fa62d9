"""Staff pages for the inventory. Thin: load, validate, call a service, commit, redirect."""
import hashlib

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy import bindparam, select

from ..accounts.permissions import staff_required
from ..audit.models import AuditEvent
from ..errors import LoanServiceError
from ..extensions import db
from ..loans.queries import count_awaiting_agreement, holding_loans, loans_of_instrument
from ..reservations.services import set_of
from ..timeutil import today
from ..web import done, field_error, int_arg, run_change, submit_form, wants_fragment
from ..wording import counted
from . import bulk, services
from .actions import available_actions
from .bulk import BulkAction
from .csvio import IMPORT_COLUMNS, apply_import, decode_upload, export_asset_register, plan_import
from .forms import (
    BulkGradeForm,
    BulkMoveForm,
    BulkRepairForm,
    ConditionForm,
    FoundForm,
    ImportConfirmForm,
    ImportForm,
    InstrumentForm,
    MissingForm,
    RepairForm,
    RepairReturnForm,
    TypeForm,
    WriteOffForm,
)
from .models import (
    CheckReason,
    ConditionCheck,
    Instrument,
    InstrumentCount,
    InstrumentFamily,
    InstrumentStatus,
    InstrumentType,
    PhotoStage,
    Repair,
)
from .photos import add_uploaded_photos, photo_bytes, photos_of
from .tags import TAG_PATTERN, normalise_tag, resolve_instrument

bp = Blueprint("inventory", __name__)


@bp.get("/dashboard")
@staff_required
def dashboard():
    counts = services.count_by_status(db.session)
    return render_template("inventory/dashboard.html", counts=counts, statuses=list(InstrumentStatus),
                           total=sum(counts.values()), awaiting_agreement=count_awaiting_agreement(db.session))


def _filters() -> services.InstrumentFilters:
    """The instrument list's search and filters, from the query string (the list, its export, a bulk action)."""
    return services.InstrumentFilters(
        q=request.args.get("q", "")[:100],
        type_id=int_arg("type"),
        size=request.args.get("size", "")[:16],
        status=request.args.get("status", "") if request.args.get("status") in list(InstrumentStatus) else "",
        location=request.args.get("location", "")[:120],
        condition=int_arg("condition"),
        sort=request.args.get("sort", "tag"),
    )


def _filter_args(filters: services.InstrumentFilters) -> dict:
    """The filters set, as query arguments (for links that keep them)."""
    args = {"q": filters.q, "type": filters.type_id, "size": filters.size, "status": filters.status,
            "location": filters.location, "condition": filters.condition}
    return {name: value for name, value in args.items() if value}


@bp.get("/instruments")
@staff_required
def instrument_list():
    filters = _filters()
    exact = normalise_tag(filters.q)
    if exact and TAG_PATTERN.match(exact) and not request.args.get("page") and not wants_fragment():
        # A whole tag typed or scanned into a search box: go straight to the instrument.
        found = db.session.scalar(select(Instrument.asset_tag).where(Instrument.asset_tag == exact))
        if found:
            return redirect(url_for(".instrument_detail", tag=found))
    prefix = current_app.config["ASSET_TAG_PREFIX"]
    page = db.paginate(services.search_instruments_query(db.session, filters, prefix),
                       per_page=current_app.config["PAGE_SIZE"], max_per_page=200, error_out=False)
    context = dict(page=page, filters=filters, filter_args=_filter_args(filters),
                   holding=holding_loans(db.session, page.items), bulk_actions=list(BulkAction))
    if wants_fragment():
        response = current_app.make_response(render_template("inventory/_results.html", **context))
        response.headers["Vary"] = "HX-Request"
        return response
    types = services.list_types(db.session)
    sizes = sorted({size for t in types for size in t.sizes if not filters.type_id or t.id == filters.type_id},
                   key=_size_key)
    return render_template("inventory/list.html", types=types, sizes=sizes,
                           locations=services.list_locations(db.session), statuses=list(InstrumentStatus), **context)


def _size_key(size: str):
    try:
        top, _, bottom = size.partition("/")
        return (0, float(top) / float(bottom or 1), size)
    except ValueError:
        return (1, 0.0, size)


def _instrument_form(form: InstrumentForm) -> InstrumentForm:
    types = services.list_types(db.session)
    form.type_id.choices = [(0, "Choose a type")] + [(t.id, t.name) for t in types]
    form.size.choices = [("", "(one size)")] + [
        (size, size) for size in sorted({s for t in types for s in t.sizes}, key=_size_key)
    ]
    form.type_sizes = {t.id: t.sizes for t in types}
    return form


def _details(form: InstrumentForm) -> services.InstrumentDetails:
    return services.InstrumentDetails(
        type_id=form.type_id.data,
        size=form.size.data or "",
        make=(form.make.data or "").strip(),
        model=(form.model.data or "").strip(),
        serial_number=(form.serial_number.data or "").strip(),
        accessories=(form.accessories.data or "").strip(),
        location=(form.location.data or "").strip(),
        purchased_on=form.purchased_on.data,
        purchase_cost=form.purchase_cost.data,
        funding_source=(form.funding_source.data or "").strip(),
        replacement_value=form.replacement_value.data,
        send_adapted=form.send_adapted.data,
        pat_due_on=form.pat_due_on.data,
        notes=form.notes.data or "",
    )


@bp.route("/instruments/new", methods=["GET", "POST"])
@staff_required
def instrument_new():
    form = _instrument_form(InstrumentForm())
    if request.method == "GET" and request.args.get("tag"):
        form.asset_tag.data = normalise_tag(request.args["tag"])[:32]  # from an unknown scan
    response, status = submit_form(
        form,
        lambda: services.add_instrument(
            db.session, current_user, _details(form), asset_tag=form.asset_tag.data or "",
            condition_grade=form.condition_grade.data, tag_prefix=current_app.config["ASSET_TAG_PREFIX"],
            tag_digits=current_app.config["ASSET_TAG_DIGITS"]),
        lambda instrument: _done(f"Added {instrument.asset_tag}.", instrument),
    )
    if response:
        return response
    return render_template("inventory/form.html", form=form, instrument=None), status


def _done(message: str, instrument):
    """After a change to an instrument: say what happened, show its page."""
    return done(message, url_for(".instrument_detail", tag=instrument.asset_tag))


def _load(tag: str, *, for_update: bool = False):
    try:
        return resolve_instrument(db.session, tag, for_update=for_update)
    except LoanServiceError as error:
        abort(404, description=error.message)


# The instrument page's histories, built once (the page is where every scan of a label lands).
_CHECKS = (select(ConditionCheck).where(ConditionCheck.instrument_id == bindparam("instrument_id"))
           .order_by(ConditionCheck.checked_at.desc(), ConditionCheck.id.desc()).limit(50))
_REPAIRS = (select(Repair).where(Repair.instrument_id == bindparam("instrument_id"))
            .order_by(Repair.sent_on.desc(), Repair.id.desc()))
_HISTORY = (select(AuditEvent).where(AuditEvent.instrument_id == bindparam("instrument_id"))
            .order_by(AuditEvent.id.desc()).limit(200))


@bp.get("/instruments/<tag>")
@staff_required
def instrument_detail(tag: str):
    instrument = _load(tag)
    if tag != instrument.asset_tag:
        return redirect(url_for(".instrument_detail", tag=instrument.asset_tag), 301)
    which = {"instrument_id": instrument.id}
    checks = db.session.scalars(_CHECKS, which).all()
    repairs = db.session.scalars(_REPAIRS, which).all()
    history = db.session.scalars(_HISTORY, which).all()
    loans = loans_of_instrument(db.session, instrument)
    classroom_set = set_of(db.session, instrument)
    # Open, or pending its agreement: the loan holding the instrument now.
    current_loan = next((loan for loan in loans if not loan.is_closed), None)
    actions = available_actions(instrument, current_loan=current_loan, in_set=classroom_set is not None,
                                open_repair=next((r for r in repairs if r.is_open), None))
    return render_template(
        "inventory/detail.html", instrument=instrument, checks=checks, repairs=repairs, history=history,
        photos=photos_of(db.session, instrument_id=instrument.id),
        classroom_set=classroom_set, actions=actions, loans=loans, today=today(), current_loan=current_loan,
        last_counted_on=db.session.scalar(select(InstrumentCount.last_counted_on)
                                          .where(InstrumentCount.instrument_id == instrument.id)),
        condition_form=ConditionForm() if any(action.name == "condition" for action in actions) else None,
    )


@bp.route("/instruments/<tag>/edit", methods=["GET", "POST"])
@staff_required
def instrument_edit(tag: str):
    instrument = _load(tag, for_update=request.method == "POST")
    form = _instrument_form(InstrumentForm(obj=instrument))
    del form.condition_grade
    response, status = submit_form(
        form,
        lambda: services.update_instrument(db.session, current_user, instrument, _details(form),
                                           asset_tag=form.asset_tag.data or instrument.asset_tag),
        lambda saved: _done(f"Saved {saved.asset_tag}.", saved),
    )
    if response:
        return response
    return render_template("inventory/form.html", form=form, instrument=instrument), status


def _instrument_action(tag: str, form, template: str, perform, done: str):
    """Show an action's form for an instrument; on a valid post, run it in one transaction."""
    instrument = _load(tag, for_update=request.method == "POST")
    response, status = submit_form(
        form, lambda: perform(instrument, form),
        lambda _: _done(done.format(tag=instrument.asset_tag), instrument),
    )
    if response:
        return response
    return render_template(template, form=form, instrument=instrument), status


def attach_photos(form, instrument: Instrument, stage: PhotoStage, **belongs_to) -> None:
    """Keep the photos chosen in ``form.photos`` (if any) with what they belong to; refused as a whole."""
    add_uploaded_photos(db.session, current_user, instrument, form.photos.data, stage,
                        limit=current_app.config["PHOTO_MAX_BYTES"], **belongs_to)


@bp.get("/photos/<int:photo_id>.jpg")
@staff_required
def photo(photo_id: int):
    found = photo_bytes(db.session, photo_id)
    if found is None:
        abort(404)
    return Response(found[1], mimetype=found[0].content_type,
                    headers={"Cache-Control": "private, max-age=86400", "Content-Disposition": "inline"})


@bp.route("/instruments/<tag>/condition", methods=["GET", "POST"])
@staff_required
def instrument_condition(tag: str):
    def perform(instrument, form):
        check = services.record_condition(db.session, current_user, instrument, form.grade.data,
                                          CheckReason(form.reason.data), form.note.data or "")
        db.session.flush()
        attach_photos(form, instrument, PhotoStage.INSPECTION, condition_check_id=check.id)
        return check

    return _instrument_action(tag, ConditionForm(), "inventory/condition.html", perform,
                              "Condition recorded for {tag}.")


@bp.route("/instruments/<tag>/repair", methods=["GET", "POST"])
@staff_required
def instrument_repair(tag: str):
    form = RepairForm()
    if request.method == "GET":
        form.sent_on.data = today()

    def perform(instrument, f):
        repair = services.send_to_repair(
            db.session, current_user, instrument, repairer=f.repairer.data, fault=f.fault.data or "",
            sent_on=f.sent_on.data, expected_back_on=f.expected_back_on.data, expected_cost=f.expected_cost.data)
        attach_photos(f, instrument, PhotoStage.REPAIR_SENT, repair_id=repair.id)
        return repair

    return _instrument_action(tag, form, "inventory/repair.html", perform, "{tag} sent to repair.")


@bp.route("/instruments/<tag>/repair/return", methods=["GET", "POST"])
@staff_required
def instrument_repair_return(tag: str):
    form = RepairReturnForm()
    if request.method == "GET":
        form.returned_on.data = today()

    def perform(instrument, f):
        repair = services.return_from_repair(
            db.session, current_user, instrument, grade=f.grade.data, returned_on=f.returned_on.data,
            actual_cost=f.actual_cost.data, work_done=f.work_done.data or "")
        db.session.flush()
        attach_photos(f, instrument, PhotoStage.REPAIR_BACK, repair_id=repair.id)
        return repair

    return _instrument_action(tag, form, "inventory/repair_return.html", perform, "{tag} is back from repair.")


@bp.route("/instruments/<tag>/write-off", methods=["GET", "POST"])
@staff_required
def instrument_write_off(tag: str):
    return _instrument_action(
        tag, WriteOffForm(), "inventory/write_off.html",
        lambda i, f: services.write_off(db.session, current_user, i, f.reason.data),
        "{tag} has been written off.",
    )


@bp.route("/instruments/<tag>/missing", methods=["GET", "POST"])
@staff_required
def instrument_missing(tag: str):
    return _instrument_action(
        tag, MissingForm(), "inventory/missing.html",
        lambda i, f: services.mark_missing(db.session, current_user, i, f.note.data or ""),
        "{tag} is marked missing.",
    )


@bp.route("/instruments/<tag>/found", methods=["GET", "POST"])
@staff_required
def instrument_found(tag: str):
    return _instrument_action(
        tag, FoundForm(), "inventory/found.html",
        lambda i, f: services.mark_found(db.session, current_user, i, f.grade.data, f.note.data or ""),
        "{tag} is found and available again.",
    )


# ------------------------------------------------------------------ CSV


@bp.route("/instruments/import", methods=["GET", "POST"])
@staff_required
def instrument_import():
    form = ImportForm()
    confirm = ImportConfirmForm()
    plan, status = None, 200
    if form.validate_on_submit():
        try:
            text = decode_upload(form.file.data.read())
        except LoanServiceError as error:
            field_error(form, error)
            form.file.errors = list(form.file.errors) + [error.message]
            status = 422
        else:
            plan = plan_import(db.session, text)
            confirm.csv_text.data = text
            status = 200 if plan.ok else 422
    elif request.method == "POST" and "csv_text" in request.form and confirm.validate():
        digest = hashlib.sha256(confirm.csv_text.data.encode()).hexdigest()
        if digest in session.get("imported_csv", []):
            # A refresh or a second click on "Import" would add every instrument again.
            flash("This file has already been imported; nothing was added again.", "error")
            return redirect(url_for(".instrument_list", sort="updated"), 303)
        plan = plan_import(db.session, confirm.csv_text.data)
        if plan.ok:

            def imported(added):
                session["imported_csv"] = session.get("imported_csv", [])[-9:] + [digest]
                return done(f"Imported {counted(len(added), 'instrument')}.",
                            url_for(".instrument_list", sort="updated"))

            def refused(error: LoanServiceError):
                flash(f"Nothing was imported: {error.message}", "error")
                return _render_import(form, confirm, plan, error.status_code)

            return run_change(lambda: apply_import(db.session, current_user, plan,
                                                   tag_prefix=current_app.config["ASSET_TAG_PREFIX"],
                                                   tag_digits=current_app.config["ASSET_TAG_DIGITS"]),
                              imported, refused)
        status = 422
    elif form.is_submitted():
        status = 422
    return _render_import(form, confirm, plan, status)


def _render_import(form, confirm, plan, status: int):
    return render_template("inventory/import.html", form=form, confirm=confirm, plan=plan,
                           columns=IMPORT_COLUMNS), status


@bp.get("/instruments/export.csv")
@staff_required
def instrument_export():
    """The asset register as CSV: every instrument, those matching the list's filters, or those ticked."""
    filters = _filters()
    chosen = None
    if request.args.getlist("tag") or _filter_args(filters):
        selection = bulk.Selection(
            [normalise_tag(tag) for tag in request.args.getlist("tag")][:500], filters,
            matching=not request.args.getlist("tag"))
        chosen = selection.ids(db.session, current_app.config["ASSET_TAG_PREFIX"])
    filename = f"asset-register-{today().isoformat()}{'-selection' if chosen is not None else ''}.csv"
    return Response(
        stream_with_context(export_asset_register(db.session, chosen)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# ------------------------------------------------------------------ bulk actions

_BULK_FORMS = {BulkAction.MOVE: BulkMoveForm, BulkAction.REPAIR: BulkRepairForm, BulkAction.GRADE: BulkGradeForm}


@bp.route("/instruments/bulk", methods=["GET", "POST"])
@staff_required
def bulk_action():
    """Confirm an action on the instruments chosen on the list (naming how many), then do it in one transaction.

    The choice travels in the query string (tags ticked, or the filters with scope=matching), so the
    confirmation posts back to the same address and chooses the same instruments again.
    """
    try:
        action = BulkAction(request.args.get("action", ""))
    except ValueError:
        action = None
    filters = _filters()
    prefix = current_app.config["ASSET_TAG_PREFIX"]
    form = _BULK_FORMS[action]() if action in _BULK_FORMS else None
    if form is not None and request.method == "GET" and action is BulkAction.REPAIR:
        form.sent_on.data = today()
    back = url_for(".instrument_list", **_filter_args(filters))

    def page(status: int, *, count: int = 0, instruments=(), message: str = ""):
        return render_template("inventory/bulk.html", action=action, form=form, count=count,
                               instruments=instruments[:20], message=message, back=back,
                               tags=[i.asset_tag for i in instruments],
                               export_args=dict(_filter_args(filters), **({} if matching else {"tag": selection.tags})),
                               ), status

    if action is None:
        abort(404, description="There is no such action: choose one on the instrument list.")
    matching = request.args.get("scope") == "matching"
    try:
        selection = bulk.selection_of(request.args.getlist("tag"), filters, matching)
        instruments = bulk.load_selected(db.session, selection, action, prefix,
                                         for_update=request.method == "POST")
    except LoanServiceError as error:
        selection = bulk.Selection([], filters, matching)
        return page(error.status_code, message=error.message)
    if request.method == "GET" or form is None:
        if form is not None:
            form.count.data = len(instruments)
        return page(200, count=len(instruments), instruments=instruments)

    def perform():
        bulk.check_count(instruments, form.count.data)
        if action is BulkAction.MOVE:
            return bulk.move_instruments(db.session, current_user, instruments, form.location.data or "")
        if action is BulkAction.GRADE:
            return bulk.grade_instruments(db.session, current_user, instruments, form.grade.data, form.note.data or "")
        return bulk.send_instruments_to_repair(
            db.session, current_user, instruments, repairer=form.repairer.data or "", fault=form.fault.data or "",
            sent_on=form.sent_on.data, expected_back_on=form.expected_back_on.data)

    def finished(changed: int) -> Response:
        if action is BulkAction.MOVE:
            where = (form.location.data or "").strip()
            message = f"Moved {counted(changed, 'instrument')} to {where}." + (
                f" {len(instruments) - changed:,} of them were there already." if changed < len(instruments) else "")
        elif action is BulkAction.GRADE:
            message = f"Recorded grade {form.grade.data} for {counted(changed, 'instrument')}."
        else:
            message = f"Sent {counted(changed, 'instrument')} to {(form.repairer.data or '').strip()}."
        return done(message, back)

    response, status = submit_form(form, perform, finished)
    if response:
        return response
    return page(status, count=len(instruments), instruments=instruments)


# ------------------------------------------------------------------ types


@bp.get("/types")
@staff_required
def type_list():
    return render_template("inventory/types.html", types=services.list_types(db.session))


@bp.route("/types/new", methods=["GET", "POST"], defaults={"type_id": None})
@bp.route("/types/<int:type_id>", methods=["GET", "POST"])
@staff_required
def type_edit(type_id: int | None):
    instrument_type = db.get_or_404(InstrumentType, type_id) if type_id else None
    form = TypeForm(obj=instrument_type)
    if request.method == "GET" and instrument_type is not None:
        form.sizes.data = ", ".join(instrument_type.sizes)
    response, status = submit_form(
        form,
        lambda: services.save_type(db.session, current_user, services.TypeDetails(
            name=form.name.data, family=InstrumentFamily(form.family.data), sizes=(form.sizes.data or "").split(","),
            hire_band=form.hire_band.data, default_accessories=form.default_accessories.data or ""),
            instrument_type),
        lambda saved: done(f"Saved type {saved.name}.", url_for(".type_list")),
    )
    if response:
        return response
    return render_template("inventory/type_form.html", form=form, instrument_type=instrument_type), status
