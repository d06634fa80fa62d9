"""Report pages: the dashboard, the data return and the asset register with their exports, and the
reports saved as given to funders. Staff read them; the hub's admins save them and record disposals."""
from decimal import Decimal

from flask import Blueprint, Response, current_app, render_template, request, stream_with_context, url_for
from flask_login import current_user

from ..accounts.permissions import admin_required, staff_required
from ..errors import InvalidInput
from ..extensions import db
from ..inventory.models import Instrument, InstrumentStatus
from ..web import done, submit_form
from . import exports, figures, services
from .forms import DisposalForm, SaveDataReturnForm, SaveRegisterForm
from .models import ReportSnapshot

bp = Blueprint("reports", __name__, url_prefix="/reports")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _download(content, mimetype: str, filename: str) -> Response:
    return Response(content, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "private, no-store"})


def _capitalisation() -> Decimal:
    return Decimal(current_app.config["CAPITALISATION_THRESHOLD"])


@bp.get("/")
@staff_required
def dashboard():
    return render_template("reports/dashboard.html", board=figures.dashboard(db.session))


# ---------------------------------------------------------------- the data return


def _data_return_args() -> tuple[figures.SchoolYear, int]:
    """The year and threshold asked for (this school year and the hub's threshold by default)."""
    year_text = request.values.get("year", "").strip()
    year = figures.SchoolYear.parse(year_text) if year_text else figures.SchoolYear.containing(figures.today())
    threshold_text = request.values.get("threshold", "").strip()
    threshold = figures.check_threshold(threshold_text or current_app.config["REPORT_MIN_COUNT"])
    return year, threshold


@bp.get("/data-return")
@staff_required
def data_return():
    years = figures.years_with_data(db.session)
    try:
        year, threshold = _data_return_args()
    except InvalidInput as error:
        return render_template("reports/data_return.html", definitions=figures.DEFINITIONS,
                               report=None, years=years, error=error,
                               year_text=request.args.get("year", ""),
                               threshold=request.args.get("threshold", "")), 400
    report = figures.data_return(db.session, year, threshold)
    form = SaveDataReturnForm(year=year.label, threshold=threshold)
    return render_template("reports/data_return.html", definitions=figures.DEFINITIONS,
                               report=report, years=years, form=form,
                           year_text=year.label, threshold=threshold, error=None)


@bp.get("/data-return.<any(xlsx, csv):fmt>")
@staff_required
def data_return_file(fmt: str):
    try:
        year, threshold = _data_return_args()
    except InvalidInput as error:
        return error.message, 400
    report = figures.data_return(db.session, year, threshold)
    if fmt == "csv":
        return _download(exports.data_return_csv(report), "text/csv", f"data-return-{year.label}.csv")
    return _download(exports.data_return_workbook(report, current_app.config["HUB_NAME"]), XLSX,
                     f"data-return-{year.label}.xlsx")


@bp.post("/data-return/save")
@admin_required
def save_data_return():
    form = SaveDataReturnForm()
    try:
        year, threshold = _data_return_args()
    except InvalidInput as error:
        return error.message, 400
    report = figures.data_return(db.session, year, threshold)
    response, status = submit_form(
        form, lambda: services.save_data_return(db.session, current_user, report, current_app.config["HUB_NAME"],
                                                form.note.data or ""),
        lambda snapshot: done(f"Saved: {snapshot.title}. It can be downloaded again unchanged below.",
                              url_for(".snapshots")))
    if response is not None:
        return response
    return render_template("reports/data_return.html", definitions=figures.DEFINITIONS,
                               report=report, years=figures.years_with_data(db.session),
                           form=form, year_text=year.label, threshold=threshold, error=None), status


# ---------------------------------------------------------------- the asset register


def _register_filters() -> figures.RegisterFilters:
    funding = request.values.get("funding", "").strip()[:100]
    year_text = request.values.get("year", "").strip()
    filters = figures.RegisterFilters(funding=funding, year=figures.SchoolYear.parse(year_text) if year_text else None)
    if funding and funding not in figures.funding_sources(db.session):
        raise InvalidInput(f"No instrument has the funding source “{funding}”.", field="funding")
    return filters


def _register_page(filters, form, error=None, status=200):
    sources = figures.funding_sources(db.session)
    if error is not None:
        return render_template("reports/asset_register.html", error=error, sources=sources, filters=None,
                               years=figures.years_with_data(db.session), funding=request.values.get("funding", ""),
                               capitalisation=_capitalisation(),
                               year_text=request.values.get("year", "")), status
    page = db.paginate(figures.register_query(filters), per_page=current_app.config["PAGE_SIZE"], max_per_page=200,
                       error_out=False)
    capitalisation = _capitalisation()
    return render_template(
        "reports/asset_register.html", error=None, sources=sources, filters=filters, page=page,
        rows=[dict(zip(figures.REGISTER_COLUMNS, row, strict=True))
              for row in figures.register_rows(db.session, page.items, capitalisation)],
        totals=figures.register_totals(db.session, filters, capitalisation), capitalisation=capitalisation,
        years=figures.years_with_data(db.session), funding=filters.funding,
        year_text=filters.year.label if filters.year else "", form=form), status


@bp.get("/asset-register")
@staff_required
def asset_register():
    try:
        filters = _register_filters()
    except InvalidInput as error:
        return _register_page(None, None, error, 400)
    form = SaveRegisterForm(funding=filters.funding, year=filters.year.label if filters.year else "")
    return _register_page(filters, form)


@bp.get("/asset-register.<any(xlsx, csv):fmt>")
@staff_required
def asset_register_file(fmt: str):
    try:
        filters = _register_filters()
    except InvalidInput as error:
        return error.message, 400
    name = "asset-register" + (f"-{filters.year.label}" if filters.year else "")
    if fmt == "csv":
        return _download(stream_with_context(exports.asset_register_csv(db.session, filters, _capitalisation())),
                         "text/csv", f"{name}.csv")
    return _download(exports.asset_register_workbook(db.session, filters, _capitalisation(),
                                                     current_app.config["HUB_NAME"]), XLSX, f"{name}.xlsx")


@bp.post("/asset-register/save")
@admin_required
def save_asset_register():
    try:
        filters = _register_filters()
    except InvalidInput as error:
        return error.message, 400
    form = SaveRegisterForm()
    response, status = submit_form(
        form, lambda: services.save_asset_register(db.session, current_user, filters, _capitalisation(),
                                                   current_app.config["HUB_NAME"], form.note.data or ""),
        lambda snapshot: done(f"Saved: {snapshot.title}. It can be downloaded again unchanged below.",
                              url_for(".snapshots")))
    return response if response is not None else _register_page(filters, form, status=status)


@bp.route("/asset-register/<tag>/disposal", methods=["GET", "POST"])
@admin_required
def disposal(tag: str):
    instrument = db.first_or_404(db.select(Instrument).where(Instrument.asset_tag == tag[:32]))
    if instrument.status is not InstrumentStatus.WRITTEN_OFF:
        return render_template("errors/error.html", status=409, title="Not written off",
                               message=f"{instrument.asset_tag} is {instrument.status.label.lower()}: write it off "
                                       "on its page first, then record its disposal here."), 409
    form = DisposalForm(obj=None, disposed_on=instrument.disposed_on, proceeds=instrument.disposal_proceeds)

    response, status = submit_form(form, lambda: services.record_disposal(
        db.session, current_user, instrument, form.disposed_on.data, form.proceeds.data), lambda i: done(
        f"Disposal of {i.asset_tag} recorded.", url_for(".asset_register", funding=i.funding_source or None)))
    if response is not None:
        return response
    return render_template("reports/disposal.html", form=form, instrument=instrument), status


# ---------------------------------------------------------------- saved reports


@bp.get("/saved")
@staff_required
def snapshots():
    page = db.paginate(db.select(ReportSnapshot).order_by(ReportSnapshot.created_at.desc(), ReportSnapshot.id.desc()),
                       per_page=current_app.config["PAGE_SIZE"], error_out=False)
    return render_template("reports/snapshots.html", page=page)


@bp.get("/saved/<int:snapshot_id>.xlsx")
@staff_required
def snapshot_file(snapshot_id: int):
    snapshot = db.get_or_404(ReportSnapshot, snapshot_id)
    return _download(snapshot.workbook, XLSX, snapshot.filename)


