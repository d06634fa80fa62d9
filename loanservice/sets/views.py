"""Classroom set pages: staff build and lend sets; staff and the school's own users check them in."""
from flask import Blueprint, abort, current_app, jsonify, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..accounts.models import Role
from ..accounts.permissions import may_see, roles_required, staff_required
from ..borrowers.models import Pupil
from ..errors import InvalidInput, LoanServiceError
from ..extensions import db
from ..inventory.models import CONDITION_GRADES
from ..inventory.tags import normalise_tag
from ..labels.services import UnreadableFrame
from ..labels.services import read_frame as read_frame_codes
from ..loans.availability import unlendable_reasons
from ..schools.models import School
from ..timeutil import today
from ..web import done, field_error, run_change, submit_form, wants_json
from ..wording import counted
from . import services
from .forms import BackToSetForm, DeleteSetForm, MissingItemForm, ScanInForm, SetCheckOutForm, SetForm, TakeHomeForm
from .models import ClassroomSet, SetLoan

bp = Blueprint("sets", __name__)

staff_or_school = roles_required(Role.ADMIN, Role.STAFF, Role.SCHOOL)


@bp.get("/sets")
@staff_or_school
def index():
    if current_user.role == Role.SCHOOL:
        set_loans = services.set_loans_for_school(db.session, current_user.school_id)
        return render_template("sets/school.html", school=current_user.school, set_loans=set_loans,
                               lost_counts=services.missing_counts(db.session, set_loans))
    return render_template("sets/list.html", sets=services.list_sets(db.session))


@bp.route("/sets/new", methods=["GET", "POST"], defaults={"set_id": None})
@bp.route("/sets/<int:set_id>/edit", methods=["GET", "POST"])
@staff_required
def edit(set_id: int | None):
    classroom_set = db.get_or_404(ClassroomSet, set_id) if set_id else None
    form = SetForm(obj=classroom_set)
    if request.method == "GET" and classroom_set is not None:
        form.tags.data = "\n".join(i.asset_tag for i in services.set_instruments(db.session, classroom_set))
    response, status = submit_form(
        form, lambda: services.save_set(db.session, current_user, name=form.name.data, tag=form.tag.data,
                                        tags=form.tags.data.replace(",", " ").split(),
                                        notes=form.notes.data or "", classroom_set=classroom_set),
        lambda saved: done(f"Saved {saved.name}.", url_for(".detail", set_id=saved.id)))
    if response:
        return response
    return render_template("sets/form.html", form=form, classroom_set=classroom_set), status


def _check_out_form() -> SetCheckOutForm:
    form = SetCheckOutForm()
    form.school_id.choices = [(0, "Choose a school")] + [
        (s.id, s.name) for s in db.session.scalars(select(School).order_by(School.name))]
    return form


def _render_detail(classroom_set: ClassroomSet, form: SetCheckOutForm, status: int = 200, *, say_blocked: bool = True):
    """The set's page. ``say_blocked``: list what stops it going out (not when a refused lending already says)."""
    history = db.session.scalars(select(SetLoan).where(SetLoan.set_id == classroom_set.id)
                                 .order_by(SetLoan.id.desc())).all()
    instruments = services.set_instruments(db.session, classroom_set)
    open_loan = next((h for h in history if h.is_open), None)
    return render_template(
        "sets/detail.html", classroom_set=classroom_set, form=form, history=history, instruments=instruments,
        open_loan=open_loan,
        blocked=unlendable_reasons(db.session, instruments) if say_blocked and not open_loan else {},
    ), status


@bp.get("/sets/<int:set_id>")
@staff_required
def detail(set_id: int):
    form = _check_out_form()
    form.started_on.data = today()
    return _render_detail(db.get_or_404(ClassroomSet, set_id), form)


@bp.post("/sets/<int:set_id>/delete")
@staff_required
def delete(set_id: int):
    classroom_set = db.get_or_404(ClassroomSet, set_id)
    form = DeleteSetForm()
    if not form.validate_on_submit():
        abort(422, description="The form had expired: open the set and try again.")

    def refused(error: LoanServiceError):
        check_out_form = _check_out_form()
        check_out_form.started_on.data = today()
        check_out_form.form_errors.append(error.message)
        return _render_detail(classroom_set, check_out_form, error.status_code)

    return run_change(lambda: services.delete_set(db.session, current_user, classroom_set),
                      lambda name: done(f"Deleted {name}; its instruments are free for another set.",
                                        url_for(".index")),
                      refused)


@bp.post("/sets/<int:set_id>/check-out")
@staff_required
def check_out(set_id: int):
    classroom_set = db.get_or_404(ClassroomSet, set_id)
    form = _check_out_form()
    if not form.validate_on_submit():
        return _render_detail(classroom_set, form, 422)
    school = db.session.get(School, form.school_id.data)
    if school is None:
        form.school_id.errors = ["Choose the school."]
        return _render_detail(classroom_set, form, 422)

    def refused(error: LoanServiceError):
        field_error(form, error)
        return _render_detail(classroom_set, form, error.status_code, say_blocked=False)

    return run_change(
        lambda: services.check_out_set(db.session, current_user, classroom_set, school,
                                       started_on=form.started_on.data, due_on=form.due_on.data,
                                       pupils=form.pupils.data, year_group=form.year_group.data),
        lambda set_loan: done(f"{classroom_set.name} ({counted(set_loan.item_count, 'instrument')}) lent to "
                              f"{school.name}.", url_for(".check_in", set_loan_id=set_loan.id)),
        refused)


def _load_set_loan(set_loan_id: int) -> SetLoan:
    """The set loan, if the signed-in user may see it: staff, or a user of the borrowing school."""
    try:
        set_loan = services.get_set_loan(db.session, set_loan_id)
    except LoanServiceError:
        abort(404)
    return _visible(set_loan)


def _visible(set_loan: SetLoan) -> SetLoan:
    if not may_see(current_user, set_loan):
        abort(404)  # another school's set: not even its existence is shown
    return set_loan


def _take_home_form(set_loan: SetLoan, formdata=True) -> TakeHomeForm:
    # A prefix keeps its fields apart from the scan form's on the same page.
    form = TakeHomeForm(prefix="home") if formdata else TakeHomeForm(prefix="home", formdata=None)
    form.pupil_id.choices = [(0, "Choose a pupil")] + [
        (p.id, f"{p.name}" + (f" ({p.year_label})" if p.year_group is not None else ""))
        for p in services.pupils_of(db.session, set_loan.school_id)]
    return form


def _render_check_in(set_loan: SetLoan, form: ScanInForm, status: int = 200, take_home_form=None):
    returned, missing = services.closed_items(db.session, set_loan)
    return render_template(
        "sets/check_in.html", set_loan=set_loan, form=form,
        progress=services.progress(db.session, set_loan, with_items=True),
        at_home=services.open_take_homes(db.session, set_loan),
        returned=returned[:50], missing=missing,
        take_home_form=take_home_form or _take_home_form(set_loan, formdata=False),
    ), status


@bp.get("/set-loans/<int:set_loan_id>/check-in")
@staff_or_school
def check_in(set_loan_id: int):
    set_loan = _load_set_loan(set_loan_id)
    form = ScanInForm()
    # An item's label opened on a phone leads here with its tag: ready to check it in.
    form.code.data = normalise_tag(request.args.get("code", ""))[:32]
    return _render_check_in(set_loan, form)


@bp.post("/set-loans/<int:set_loan_id>/check-in")
@staff_or_school
def scan_in(set_loan_id: int):
    """One scanned item back in. The page's scan queue asks for JSON, so a scan costs no page
    render and no session write; the form without JavaScript gets the page, as ever."""
    form = ScanInForm()
    if not form.validate_on_submit():
        return _scan_refused(set_loan_id, form, 422)
    base_url = current_app.config["PUBLIC_BASE_URL"]
    # One query finds and locks the set loan and the scanned item's loan; a wrong scan takes the
    # longer way (the set loan, then the service finds out what is wrong with the code).
    found = services.locate_scan(db.session, set_loan_id, form.code.data, base_url=base_url)
    set_loan, loan = (_visible(found[0]), found[1]) if found else (_load_set_loan(set_loan_id), None)

    def perform():
        loan_in, progress = services.check_in_set_item(
            # The user itself, not the request-local proxy that looks it up on every attribute read.
            db.session, current_user._get_current_object(), set_loan, form.code.data, grade=form.grade.data,
            note=form.note.data or "", damaged=form.damaged.data, base_url=base_url, loan=loan)
        return loan_in.instrument.asset_tag, loan_in.condition_at_return, progress  # read before the commit

    def checked_in(result):
        tag, grade, progress = result
        damaged = " (damaged, sent to repair)" if form.damaged.data else ""
        message = f"{tag} back in {grade} {CONDITION_GRADES[grade]}{damaged}: {progress.summary}."
        # A grade chosen was for this item alone: the page comes back to "As it went out" for the next.
        page = url_for(".check_in", set_loan_id=set_loan_id)
        if wants_json():
            return _scan_answer(message, tag, progress, page)
        return done(message, page)

    def refused(error: LoanServiceError):
        field_error(form, error)
        form.code.data = ""
        return _scan_refused(set_loan_id, form, error.status_code)

    return run_change(perform, checked_in, refused)


@bp.post("/set-loans/<int:set_loan_id>/frame")
@staff_or_school
def read_frame(set_loan_id: int):
    """The codes in one frame of the check-in page's camera; its scan queue then checks each one in,
    as if typed. Only the codes: what they are is the check-in's to say, for this set."""
    _load_set_loan(set_loan_id)
    try:
        codes = read_frame_codes(request.get_data(cache=False))
    except UnreadableFrame as error:
        return {"error": error.message}, error.status_code
    return {"results": [{"code": code} for code in codes]}


def _scan_answer(message: str, tag: str, progress: services.Progress, page: str):
    """A good scan, for the scan queue: what to announce, and the progress for the badge and bar."""
    return jsonify(ok=True, message=message, tag=tag, back=progress.back, lost=progress.lost,
                   total=progress.total, outstanding=progress.outstanding, summary=progress.summary,
                   complete=progress.outstanding == 0, page=page)


def _scan_refused(set_loan_id: int, form: ScanInForm, status: int):
    """A refused scan: the page with the form's errors, or for the scan queue just what was wrong."""
    set_loan = _load_set_loan(set_loan_id)  # another school's set is not found, whoever asks
    if not wants_json():
        return _render_check_in(set_loan, form, status)
    errors = [(name, message) for name, messages in form.errors.items() for message in messages]
    return jsonify(ok=False, message=" ".join(message for _, message in errors),
                   field=next((name for name, _ in errors if name), None)), status


@bp.post("/set-loans/<int:set_loan_id>/missing")
@staff_or_school
def report_missing(set_loan_id: int):
    set_loan = _load_set_loan(set_loan_id)
    form = MissingItemForm()
    if not form.validate_on_submit():
        abort(422, description="Say which item is missing.")

    def perform():
        loan, progress = services.mark_set_item_missing(
            db.session, current_user, set_loan, form.code.data, form.note.data or "",
            base_url=current_app.config["PUBLIC_BASE_URL"])
        return f"{loan.instrument.asset_tag} reported missing: {progress.summary}."

    return _item_action(set_loan_id, perform)


def _item_action(set_loan_id: int, perform):
    """Run a change to one item of a set loan; ``perform`` returns what to tell the user."""

    def refused(error: LoanServiceError):
        scan_form = ScanInForm(formdata=None)
        scan_form.form_errors.append(error.message)
        return _render_check_in(_load_set_loan(set_loan_id), scan_form, error.status_code)

    return run_change(perform, lambda message: done(message, url_for(".check_in", set_loan_id=set_loan_id)),
                      refused)


@bp.post("/set-loans/<int:set_loan_id>/take-home")
@staff_or_school
def take_home(set_loan_id: int):
    """Lend a set item on to a pupil of the school, with the parent's signed agreement."""
    set_loan = _load_set_loan(set_loan_id)
    form = _take_home_form(set_loan)

    def perform():
        pupil = db.session.get(Pupil, form.pupil_id.data)
        if pupil is None or pupil.school_id != set_loan.school_id:
            # The same words for no such pupil and another school's: ids tell a school nothing.
            raise InvalidInput(f"Choose a pupil of {set_loan.school.name}.", field="pupil_id")
        return services.take_home(
            db.session, current_user, set_loan, form.code.data, pupil,
            agreement_signed_on=form.agreement_signed_on.data, due_on=form.due_on.data,
            base_url=current_app.config["PUBLIC_BASE_URL"])

    response, status = submit_form(form, perform, lambda take: done(
        f"{take.instrument.asset_tag} is lent home to {take.pupil.name} until {take.due_on:%-d %b %Y}.",
        url_for(".check_in", set_loan_id=set_loan_id)))
    if response:
        return response
    set_loan = _load_set_loan(set_loan_id)
    return _render_check_in(set_loan, ScanInForm(formdata=None), status, take_home_form=form)


@bp.post("/set-loans/<int:set_loan_id>/back-to-set")
@staff_or_school
def back_to_set(set_loan_id: int):
    set_loan = _load_set_loan(set_loan_id)
    form = BackToSetForm()
    if not form.validate_on_submit():
        abort(422, description="Say which item is back.")

    def perform():
        take = services.back_to_set(db.session, current_user, set_loan, form.code.data,
                                    base_url=current_app.config["PUBLIC_BASE_URL"])
        return f"{take.instrument.asset_tag} is back in the set."

    return _item_action(set_loan_id, perform)
