"""Where a scanned label leads: the short page ``/i/<TAG>``, the scan station and the camera page."""
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import bindparam, select

from ..accounts.models import Role
from ..accounts.permissions import ROLE_HINT, looks_like_staff, staff_required
from ..errors import LoanServiceError, NotFound
from ..extensions import db, limiter
from ..inventory.models import Instrument
from ..inventory.services import TAG_PATTERN, normalise_tag
from ..loans.queries import current_loan_for
from ..sets.models import ClassroomSet, ClassroomSetItem, SetLoan
from . import services

bp = Blueprint("scan", __name__)

_TAG_LOOKUP = select(Instrument.asset_tag).where(Instrument.asset_tag == bindparam("tag"))
_SET_LOOKUP = select(ClassroomSet.id).where(ClassroomSet.tag == bindparam("tag"))


@bp.get("/i/<tag>")
@bp.get("/I/<tag>")
@limiter.exempt  # a read-only lookup that staff make all day; it reveals only that a tag exists
def short_page(tag: str):
    """A label's QR code lands here, an instrument's or a classroom set's (their tags never clash).

    Staff go to the instrument or the set; a school's own user scanning its set, or an item of it,
    goes to the set's check-in page; anyone else sees whose it is and how to return it.
    """
    tag = normalise_tag(tag)
    if not TAG_PATTERN.match(tag):  # nothing to look up (and no stray bytes sent to the database)
        return render_template("scan/unknown.html", tag=tag[:40], staff=looks_like_staff()), 404
    # One indexed lookup of the tag alone, on the session's connection (no ORM loading):
    # staff scan all day and the page must feel instant.
    found = db.session.connection().execute(_TAG_LOOKUP, {"tag": tag}).scalar()
    # Where to send the scan is decided from the session alone (no user query): the
    # instrument page checks the real user again, so a stale hint only costs a redirect.
    staff = looks_like_staff()
    if found is None:
        set_id = db.session.connection().execute(_SET_LOOKUP, {"tag": tag}).scalar()
        if set_id is None:
            return render_template("scan/unknown.html", tag=tag, staff=staff), 404
        if staff:
            return redirect(url_for("sets.detail", set_id=set_id))
        set_loan_id = _schools_set_loan(SetLoan.set_id == set_id)
        if set_loan_id is not None:
            return redirect(url_for("sets.check_in", set_loan_id=set_loan_id))
        return render_template("scan/public.html", tag=tag, classroom_set=True,
                               contact=current_app.config["HUB_CONTACT"])
    if staff:
        return redirect(url_for("inventory.instrument_detail", tag=found))
    # An item of a set out at the school (still out, or already checked back in): the set's page.
    set_loan_id = _schools_set_loan(SetLoan.set_id.in_(
        select(ClassroomSetItem.set_id).join(Instrument, Instrument.id == ClassroomSetItem.instrument_id)
        .where(Instrument.asset_tag == found)))
    if set_loan_id is not None:
        return redirect(url_for("sets.check_in", set_loan_id=set_loan_id, code=found))
    return render_template("scan/public.html", tag=found, classroom_set=False,
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
    instrument = error = scanned_set = set_loan = None
    status = 200
    base_url = current_app.config["PUBLIC_BASE_URL"]
    if code.strip():
        try:
            instrument = services.find_by_code(db.session, code, base_url)
        except LoanServiceError as problem:
            # Not an instrument: perhaps a classroom set's own label.
            scanned_set = services.find_set_by_code(db.session, code, base_url) if isinstance(problem, NotFound) else None
            if scanned_set is None:
                error = problem.message
                status = problem.status_code
            elif jump:
                return redirect(url_for("sets.detail", set_id=scanned_set.id), 303)
            else:
                set_loan = db.session.scalar(select(SetLoan).where(SetLoan.set_id == scanned_set.id,
                                                                   SetLoan.closed_on.is_(None)))
        else:
            if jump:
                return redirect(url_for("inventory.instrument_detail", tag=instrument.asset_tag), 303)
    from ..reservations.services import set_of  # (here: reservations imports inventory's services)

    current_loan = current_loan_for(db.session, instrument) if instrument is not None else None
    return render_template("scan/station.html", instrument=instrument, error=error, code=code.strip(),
                           jump=jump, current_loan=current_loan, scanned_set=scanned_set, set_loan=set_loan,
                           classroom_set=set_of(db.session, instrument) if instrument is not None else None), status


@bp.get("/scan/camera")
@staff_required
def camera():
    """Continuous scanning with the device's camera, for a batch such as a classroom set coming back."""
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
            instrument = services.find_by_code(db.session, code, base_url)
        except LoanServiceError as problem:
            scanned_set = services.find_set_by_code(db.session, code, base_url) if isinstance(problem, NotFound) else None
            if scanned_set is None:
                results.append({"code": code, "found": False, "message": problem.message})
            else:
                results.append({"code": code, "found": True, "tag": scanned_set.tag, "description": scanned_set.name,
                                "status": "Classroom set", "url": url_for("sets.detail", set_id=scanned_set.id)})
        else:
            results.append({
                "code": code, "found": True, "tag": instrument.asset_tag,
                "description": instrument.description, "status": instrument.status_enum.label,
                "url": url_for("inventory.instrument_detail", tag=instrument.asset_tag),
            })
    return {"results": results}
