"""Stocktake pages: start one, scan what is there (the scan queue), see and put right the result."""
from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..accounts.permissions import staff_required
from ..documents.services import Hub
from ..errors import InvalidInput, LoanServiceError
from ..extensions import db
from ..inventory.services import list_locations
from ..labels.services import UnreadableFrame
from ..labels.services import read_frame as read_frame_codes
from ..schools.models import School
from ..web import done, field_error, pdf_response, refused_page, run_change, submit_form, wants_json
from ..wording import counted
from . import services
from .forms import FinishForm, ResolveAllForm, ResolveOneForm, ScanForm, StartForm
from .models import Place, Stocktake
from .services import ACTION_FOR, ACTION_WORDS, Outcome

bp = Blueprint("stocktake", __name__)


def _start_form() -> StartForm:
    form = StartForm()
    form.location.choices = [("", "Choose a shelf")] + [(loc, loc) for loc in list_locations(db.session)]
    form.school_id.choices = [(0, "Choose a school")] + [
        (s.id, s.name) for s in db.session.scalars(select(School).order_by(School.name))]
    return form


@bp.route("/stocktakes", methods=["GET", "POST"])
@staff_required
def index():
    form = _start_form()
    response, status = submit_form(form, lambda: services.start_stocktake(
        db.session, current_user, place=Place(form.place.data), location=form.location.data or "",
        school_id=form.school_id.data or None), lambda stocktake: done(
        f"Stocktake of {stocktake.place_name} started: scan everything you find there.",
        url_for(".detail", stocktake_id=stocktake.id)))
    if response:
        return response
    page = db.paginate(services.list_stocktakes_query(), per_page=25, error_out=False)
    return render_template("stocktake/index.html", form=form, page=page), status


def _load(stocktake_id: int) -> Stocktake:
    return db.get_or_404(Stocktake, stocktake_id)


def _render(stocktake: Stocktake, form: ScanForm | None = None, status: int = 200, errors: list[str] = ()):
    result = services.results(db.session, stocktake)
    return render_template(
        "stocktake/detail.html", stocktake=stocktake, form=form or ScanForm(formdata=None), result=result,
        outcomes=list(Outcome), expected=services.expected_count(db.session, stocktake),
        progress=services.progress(db.session, stocktake),
        action_for=ACTION_FOR, action_words=ACTION_WORDS, finish_form=FinishForm(formdata=None),
        resolve_form=ResolveOneForm(formdata=None), errors=list(errors)), status


@bp.get("/stocktakes/<int:stocktake_id>")
@staff_required
def detail(stocktake_id: int):
    return _render(_load(stocktake_id))


@bp.post("/stocktakes/<int:stocktake_id>/scan")
@staff_required
def scan(stocktake_id: int):
    """One scanned instrument counted. The page's scan queue asks for JSON; without JavaScript, the page."""
    stocktake = services.load_for_scan(db.session, stocktake_id)
    if stocktake is None:
        abort(404)
    form = ScanForm()
    if not form.validate_on_submit():
        return _scan_refused(stocktake, form, 422)

    def counted_it(result: services.Counted):
        page = url_for(".detail", stocktake_id=stocktake_id)
        if wants_json():
            return jsonify(ok=True, message=result.message, tag=result.tag, back=result.found, lost=0,
                           total=result.expected, outstanding=result.expected - result.found,
                           summary=result.summary, complete=False, page=page)
        return done(result.message, page)

    def refused(error: LoanServiceError):
        field_error(form, error)
        form.code.data = ""
        return _scan_refused(stocktake, form, error.status_code)

    return run_change(lambda: services.scan(db.session, current_user._get_current_object(), stocktake,
                                            form.code.data, base_url=current_app.config["PUBLIC_BASE_URL"]),
                      counted_it, refused)


def _scan_refused(stocktake: Stocktake, form: ScanForm, status: int):
    if not wants_json():
        return _render(stocktake, form, status)
    errors = [(name, message) for name, messages in form.errors.items() for message in messages]
    return jsonify(ok=False, message=" ".join(message for _, message in errors),
                   field=next((name for name, _ in errors if name), None)), status


@bp.post("/stocktakes/<int:stocktake_id>/frame")
@staff_required
def read_frame(stocktake_id: int):
    """The codes in one camera frame; the page's scan queue counts each one, as if typed."""
    _load(stocktake_id)
    try:
        codes = read_frame_codes(request.get_data(cache=False))
    except UnreadableFrame as error:
        return {"error": error.message}, error.status_code
    return {"results": [{"code": code} for code in codes]}


@bp.post("/stocktakes/<int:stocktake_id>/finish")
@staff_required
def finish(stocktake_id: int):
    stocktake = _load(stocktake_id)
    form = FinishForm()
    if not form.validate_on_submit():
        abort(422, description="The form had expired: open the stocktake and try again.")
    return run_change(lambda: services.finish(db.session, current_user, stocktake),
                      lambda finished: done(f"Stocktake of {finished.place_name} finished: put right what it found.",
                                            url_for(".detail", stocktake_id=stocktake_id)),
                      refused_page)


@bp.post("/stocktakes/<int:stocktake_id>/resolve")
@staff_required
def resolve_one(stocktake_id: int):
    stocktake = _load(stocktake_id)
    form = ResolveOneForm()
    back = url_for(".detail", stocktake_id=stocktake_id)

    def perform():
        action = form.resolution()
        if action is None or not (form.item_id.data or "").isdigit() or len(form.item_id.data) > 9:
            raise InvalidInput("Choose what to do about which instrument.")
        return services.resolve_one(db.session, current_user, stocktake, int(form.item_id.data), action)

    if not form.validate_on_submit():
        return refused_page(InvalidInput("The form had expired: open the stocktake and try again."))
    return run_change(perform, lambda line: done(
        f"{line.instrument.asset_tag}: {line.item.resolution.label.lower()}.", back), refused_page)


@bp.route("/stocktakes/<int:stocktake_id>/resolve-all", methods=["GET", "POST"])
@staff_required
def resolve_all(stocktake_id: int):
    """Put right every instrument of one outcome: a page that names how many, then the change."""
    stocktake = _load(stocktake_id)
    form = ResolveAllForm()
    outcome = form.chosen_outcome() if request.method == "POST" else _outcome_arg()
    if outcome is None or outcome not in ACTION_FOR:
        abort(404)
    action = ACTION_FOR[outcome]
    status = 200
    if request.method == "POST":
        def perform():
            shown = form.shown_count()
            if shown is None:
                raise InvalidInput("Open the list again, then confirm.")
            return services.resolve_all(db.session, current_user, stocktake, outcome, expected_count=shown)

        def refused(error: LoanServiceError) -> int:
            form.form_errors.append(error.message)
            return error.status_code

        if not form.validate_on_submit():
            status = 422
        else:
            answer = run_change(perform, lambda n: done(f"{counted(n, 'instrument')}: {action.label.lower()}.",
                                                        url_for(".detail", stocktake_id=stocktake_id)), refused)
            if not isinstance(answer, int):
                return answer
            status = answer
    lines = services.results(db.session, stocktake).open_actions(outcome)
    form.outcome.data, form.count.data = outcome.value, str(len(lines))
    return render_template("stocktake/confirm.html", stocktake=stocktake, form=form, outcome=outcome, lines=lines,
                           action=action, action_words=ACTION_WORDS), status


def _outcome_arg() -> Outcome | None:
    try:
        return Outcome(request.args.get("outcome", ""))
    except ValueError:
        return None


@bp.get("/stocktakes/<int:stocktake_id>/report.pdf")
@staff_required
def report_pdf(stocktake_id: int):
    stocktake = _load(stocktake_id)
    try:
        data = services.report_pdf(db.session, stocktake, Hub.from_config(current_app.config))
    except LoanServiceError as error:
        abort(error.status_code, description=error.message)
    return pdf_response(data, f"stocktake-{stocktake.id}.pdf")


@bp.get("/stocktakes/<int:stocktake_id>/report.csv")
@staff_required
def report_csv(stocktake_id: int):
    stocktake = _load(stocktake_id)
    return Response(services.report_csv(db.session, stocktake), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="stocktake-{stocktake.id}.csv"',
        "Cache-Control": "private, no-store"})

