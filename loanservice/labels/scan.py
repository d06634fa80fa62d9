"""Where a scanned label leads: the short page ``/i/<TAG>``, the scan station and the camera page."""
import io

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from sqlalchemy import bindparam, select

from ..accounts.permissions import looks_like_staff, staff_required
from ..errors import LoanServiceError
from ..extensions import db, limiter
from ..inventory.models import Instrument
from ..inventory.services import normalise_tag
from ..loans.services import current_loan_for
from . import services

bp = Blueprint("scan", __name__)

# A camera frame is a JPEG of a few tens of kilobytes; refuse anything far larger.
MAX_FRAME_BYTES = 2 * 1024 * 1024


_TAG_LOOKUP = select(Instrument.asset_tag).where(Instrument.asset_tag == bindparam("tag"))


@bp.get("/i/<tag>")
@bp.get("/I/<tag>")
@limiter.exempt  # a read-only lookup that staff make all day; it reveals only that a tag exists
def short_page(tag: str):
    """A label's QR code lands here: staff go to the instrument, anyone else sees whose it is."""
    tag = normalise_tag(tag)
    # One indexed lookup of the tag alone, on the session's connection (no ORM loading):
    # staff scan all day and the page must feel instant.
    found = db.session.connection().execute(_TAG_LOOKUP, {"tag": tag}).scalar() if tag else None
    # Where to send the scan is decided from the session alone (no user query): the
    # instrument page checks the real user again, so a stale hint only costs a redirect.
    staff = looks_like_staff()
    if found is None:
        return render_template("scan/unknown.html", tag=tag, staff=staff), 404
    if staff:
        return redirect(url_for("inventory.instrument_detail", tag=found))
    return render_template("scan/public.html", tag=found,
                           contact=current_app.config["HUB_CONTACT"])


@bp.get("/scan")
@staff_required
def station():
    """The scan station: a handheld scanner types a label's URL or tag and presses Enter."""
    code = request.args.get("code", "")[:500]
    jump = request.args.get("then") == "open"
    instrument = error = None
    status = 200
    if code.strip():
        try:
            instrument = services.find_by_code(db.session, code, current_app.config["PUBLIC_BASE_URL"])
        except LoanServiceError as problem:
            error = problem.message
            status = problem.status_code
        else:
            if jump:
                return redirect(url_for("inventory.instrument_detail", tag=instrument.asset_tag), 303)
    from ..reservations.services import set_of  # (here: reservations imports inventory's services)

    current_loan = current_loan_for(db.session, instrument) if instrument is not None else None
    return render_template("scan/station.html", instrument=instrument, error=error, code=code.strip(),
                           jump=jump, current_loan=current_loan,
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
    data = request.get_data(cache=False)
    if not data:
        return {"error": "No image was sent."}, 400
    if len(data) > MAX_FRAME_BYTES:
        return {"error": "The image is too large."}, 413
    try:
        codes = read_qr_codes(data)
    except ValueError:
        return {"error": "The image could not be read."}, 400
    base_url = current_app.config["PUBLIC_BASE_URL"]
    results = []
    for code in codes:
        try:
            instrument = services.find_by_code(db.session, code, base_url)
        except LoanServiceError as problem:
            results.append({"code": code, "found": False, "message": problem.message})
        else:
            results.append({
                "code": code, "found": True, "tag": instrument.asset_tag,
                "description": instrument.description, "status": instrument.status_enum.label,
                "url": url_for("inventory.instrument_detail", tag=instrument.asset_tag),
            })
    return {"results": results}


def read_qr_codes(image_bytes: bytes) -> list[str]:
    """The text of every QR code in an image; ValueError when it is not an image."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            if image.width * image.height > 4096 * 4096:
                raise ValueError("image too large")
            grey = image.convert("L")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError("not an image") from error
    return [barcode.text for barcode in zxingcpp.read_barcodes(grey, formats=zxingcpp.BarcodeFormat.QRCode)
            if barcode.valid and barcode.text]
