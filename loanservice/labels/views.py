"""Staff pages for printing labels: one instrument, a selection, every unlabelled one, a reprint."""
from flask import Blueprint, Response, current_app, render_template, request
from flask_login import current_user

from ..accounts.permissions import staff_required
from ..errors import LoanServiceError
from ..extensions import db
from ..sets.models import ClassroomSet
from ..sets.services import set_instruments
from ..web import submit_form
from . import services
from .forms import LabelPrintForm, SetLabelPrintForm
from .stocks import get_stock, load_stocks

bp = Blueprint("labels", __name__, url_prefix="/labels")

DEFAULT_STOCK = "L7160"
# The page lists the chosen tags; past this many it only counts them.
SHOWN_TAGS = 60


def _form(form_class: type[LabelPrintForm] = LabelPrintForm) -> LabelPrintForm:
    # The form arrives in the query string when coming from a link, in the body when posted.
    form = form_class(request.args) if request.method == "GET" else form_class()
    stocks = load_stocks()
    form.stock.choices = [(s.name, s.title) for s in stocks.values()]
    if not form.stock.data or request.method == "GET" and "stock" not in request.values:
        form.stock.data = DEFAULT_STOCK if DEFAULT_STOCK in stocks else next(iter(stocks), "")
    if request.method == "GET" and "start" not in request.values:
        form.start.data = 1
    form.stock_sizes = {s.name: {"columns": s.columns, "rows": s.rows} for s in stocks.values()}
    return form


def _chosen_tags() -> list[str]:
    """The tags asked for: repeated ``tag`` fields, or one field of tags separated by spaces or commas."""
    tags = []
    for value in request.values.getlist("tag"):
        tags.extend(part for part in value.replace(",", " ").split() if part)
    return tags


@bp.route("/print", methods=["GET", "POST"])
@staff_required
def print_labels():
    form = _form()
    tags = _chosen_tags()
    scope = form.scope.data or ""
    status = 200
    instruments = []
    # A selection posted from the instrument list counts even when nothing was ticked.
    chosen = bool(tags or scope or request.values.get("selection"))
    try:
        instruments = services.select_for_labels(db.session, tags=tags, scope=scope) if chosen else []
    except LoanServiceError as error:
        form.form_errors.append(error.message)
        status = error.status_code
    if request.method == "POST" and status == 200:
        if not instruments:
            form.form_errors.append("Choose the instruments to label first.")
            status = 422
        else:
            name = instruments[0].asset_tag if len(instruments) == 1 else f"{len(instruments)}"
            response, status = submit_form(form, lambda: services.print_labels(
                db.session, current_user, instruments, get_stock(form.stock.data), start=form.start.data,
                base_url=current_app.config["PUBLIC_BASE_URL"], hub_name=current_app.config["HUB_NAME"],
            ), lambda pdf: _pdf(pdf, f"labels-{name}-{get_stock(form.stock.data).name}.pdf"))
            if response is not None:
                return response
    counts = services.count_for_labels(db.session)
    return render_template(
        "labels/print.html", form=form, instruments=instruments[:SHOWN_TAGS], total=len(instruments),
        tags=[i.asset_tag for i in instruments] if tags else [], scope=scope if not tags else "",
        counts=counts, stocks=load_stocks(),
    ), status


def _pdf(pdf: bytes, filename: str) -> Response:
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "no-store"})


@bp.route("/set/<int:set_id>", methods=["GET", "POST"])
@staff_required
def print_set_label(set_id: int):
    """A classroom set's own label (for its box or case), and its instruments' labels if wanted."""
    classroom_set = db.get_or_404(ClassroomSet, set_id)
    items = set_instruments(db.session, classroom_set)
    form = _form(SetLabelPrintForm)
    response, status = submit_form(form, lambda: services.print_set_labels(
        db.session, current_user, classroom_set, items, get_stock(form.stock.data), with_items=form.with_items.data,
        start=form.start.data, base_url=current_app.config["PUBLIC_BASE_URL"], hub_name=current_app.config["HUB_NAME"],
    ), lambda pdf: _pdf(pdf, f"label-{classroom_set.tag}-{get_stock(form.stock.data).name}.pdf"))
    if response is not None:
        return response
    return render_template("labels/print_set.html", form=form, classroom_set=classroom_set, items=items), status
