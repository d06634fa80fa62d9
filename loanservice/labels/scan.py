"""Where a scanned label leads: the short page ``/i/<TAG>``, the scan station and the camera page."""
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import select

from ..accounts.models import Role
from ..accounts.permissions import ROLE_HINT, looks_like_staff, staff_required
from ..errors import LoanServiceError
from ..extensions import db, limiter
from ..inventory.actions import scan_station_actions
from ..inventory.tags import UnknownTag, normalise_tag, resolve
from ..loans.queries import current_loan_for
from ..reservations.services import set_of
from ..sets.actions import set_scan_actions
from ..sets.models import ClassroomSet, ClassroomSetItem, SetLoan
from . import services

bp = Blueprint("scan", __name__)


@bp.get("/i/<tag>")
@bp.get("/I/<tag>")
@limiter.exempt  # a read-only lookup that staff make all day; it reveals only that a tag exists
def short_page(tag: str):
    """A label's QR code lands here, an instrument's or a classroom set's (their tags never clash).

    Staff go to the instrument or the set; a school's own user scanning its set, or an item of it,
    goes to the set's check-in page; anyone else sees whose it is and how to return it.
    """
    # Where to send the scan is decided from the session alone (no user query): the
    # instrument page checks the real user again, so a stale hint only costs a redirect.
    staff = looks_like_staff()
    try:
        found = resolve(db.session, tag)
    except LoanServiceError as problem:  # nothing has the tag, or it is no tag at all
        shown = problem.tag if isinstance(problem, UnknownTag) else normalise_tag(tag)[:40]
        return render_template("scan/unknown.html", tag=shown, staff=staff), 404
    if isinstance(found, ClassroomSet):
        if staff:
            return redirect(url_for("sets.detail", set_id=found.id))
        set_loan_id = _schools_set_loan(SetLoan.set_id == found.id)
        if set_loan_id is not None:
            return redirect(url_for("sets.check_in", set_loan_id=set_loan_id))
        return render_template("scan/public.html", tag=found.tag, classroom_set=True,
                               contact=current_app.config["HUB_CONTACT"])
    if staff:
        return redirect(url_for("inventory.instrument_detail", tag=found.asset_tag))
    # An item of a set out at the school (still out, or already checked back in): the set's page.
    set_loan_id = _schools_set_loan(SetLoan.set_id.in_(
        select(ClassroomSetItem.set_id).where(ClassroomSetItem.instrument_id == found.id)))
    if set_loan_id is not None:
        return redirect(url_for("sets.check_in", set_loan_id=set_loan_id, code=found.asset_tag))
    return render_template("scan/public.html", tag=found.asset_tag, classroom_set=False,
                           contact=current_app.config["HUB_CONTACT"])


def _schools_set_loan(which) -> int | None:
    """For a school's own user: the open set loan to their school that ``which`` picks, if any.

    The role kept at sign-in only decides whether to ask; the school comes from the real user, and
    the check-in page checks again."""
    if session.get(ROLE_HINT) != Role.SCHOOL or not current_user.is_authenticated or current_user.school_id is None:
        return None
    return db.session.scalar(select(SetLoan.id).where(
        which, SetLoan.school_id == current_user.school_id, SetLoan.closed_on.is_(None)))


@bp.get("/scan")
@staff_required
def station():
    """The scan station: a handheld scanner types a label's URL or tag and presses Enter."""
    code = request.args.get("code", "")[:500]
    jump = request.args.get("then") == "open"
    found = error = None
    status = 200
    if code.strip():
        try:
            found = resolve(db.session, code, base_url=current_app.config["PUBLIC_BASE_URL"])
        except LoanServiceError as problem:
            error, status = problem, problem.status_code
    if isinstance(found, ClassroomSet):
        if jump:
            return redirect(url_for("sets.detail", set_id=found.id), 303)
        set_loan = db.session.scalar(select(SetLoan).where(SetLoan.set_id == found.id, SetLoan.closed_on.is_(None)))
        return render_template("scan/station.html", code=code.strip(), jump=jump, scanned_set=found,
                               set_loan=set_loan, actions=set_scan_actions(found, set_loan)), status
    if found is not None:
        if jump:
            return redirect(url_for("inventory.instrument_detail", tag=found.asset_tag), 303)
        current_loan, classroom_set = current_loan_for(db.session, found), set_of(db.session, found)
        actions = scan_station_actions(found, current_loan=current_loan, in_set=classroom_set is not None)
        return render_template("scan/station.html", code=code.strip(), jump=jump, instrument=found,
                               current_loan=current_loan, classroom_set=classroom_set, actions=actions), status
    return render_template("scan/station.html", code=code.strip(), jump=jump, error=error,
                           unknown_tag=error.tag if isinstance(error, UnknownTag) else None), status


@bp.get("/scan/camera")
@staff_required
def camera():
    """Continuous scanning with the device's camera, for many at once, such as a classroom set coming back."""
    return render_template("scan/camera.html")


@bp.post("/scan/frame")
@staff_required
def decode_frame():
    """Read the QR codes in one camera frame (a JPEG or PNG) and say which instruments they are."""
    try:
        codes = services.read_frame(request.get_data(cache=False))
    except services.UnreadableFrame as error:
        return {"error": error.message}, error.status_code
    base_url = current_app.config["PUBLIC_BASE_URL"]
    results = []
    for code in codes:
        try:
            found = resolve(db.session, code, base_url=base_url)
        except LoanServiceError as problem:
            results.append({"code": code, "found": False, "message": problem.message})
        else:
            results.append({"code": code, "found": True, **_what_was_scanned(found)})
    return {"results": results}


def _what_was_scanned(found) -> dict:
    """How the camera page lists an instrument or a set it has read."""
    if isinstance(found, ClassroomSet):
        return {"tag": found.tag, "description": found.name, "status": "Classroom set",
                "url": url_for("sets.detail", set_id=found.id)}
    return {"tag": found.asset_tag, "description": found.description, "status": found.status.label,
            "url": url_for("inventory.instrument_detail", tag=found.asset_tag)}
