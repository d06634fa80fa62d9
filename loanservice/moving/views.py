"""The Moving in pages: the imports in the order to run them, each with its template, check and import."""
from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from flask_login import current_user

from ..accounts.permissions import admin_required
from ..csvimport import decode_upload
from ..errors import LoanServiceError
from ..extensions import db
from ..inventory.csvio import INSTRUMENTS
from ..inventory.forms import ImportConfirmForm, ImportForm
from ..web import done, run_change
from ..wording import counted
from . import examples
from .kinds import KINDS
from .services import check_file, run_import

bp = Blueprint("moving", __name__, url_prefix="/moving-in")


def _kind(name: str):
    kind = KINDS.get(name)
    if kind is None:
        abort(404)
    return kind


@bp.get("")
@admin_required
def index():
    return render_template("moving/index.html", kinds=list(KINDS.values()), instruments=INSTRUMENTS)


@bp.get("/<name>/template.csv")
@admin_required
def template(name: str):
    kind = INSTRUMENTS if name == INSTRUMENTS.name else _kind(name)
    return _csv(kind.template_csv(), f"{kind.name}-template.csv")


@bp.get("/<name>/example.csv")
@admin_required
def example(name: str):
    kind = _kind(name)
    return _csv(examples.example_csv(db.session, kind), f"{kind.name}-example.csv")


def _csv(text: str, filename: str) -> Response:
    # A BOM, so that Excel opens the file as UTF-8 (names with accents stay right).
    return Response("\ufeff" + text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/<name>", methods=["GET", "POST"])
@admin_required
def import_kind(name: str):
    kind = _kind(name)
    form = ImportForm()
    confirm = ImportConfirmForm()
    plan, status = None, 200
    if form.validate_on_submit():
        try:
            text = decode_upload(form.file.data.read())
        except LoanServiceError as error:
            form.file.errors = list(form.file.errors) + [error.message]
            status = 422
        else:
            plan = check_file(db.session, kind, text)
            confirm.csv_text.data = text
            status = 200 if plan.ok else 422
    elif request.method == "POST" and "csv_text" in request.form and confirm.validate():
        text = confirm.csv_text.data

        def refused(error: LoanServiceError):
            return _render(kind, form, confirm, check_file(db.session, kind, text), error.status_code)

        options = {"config": current_app.config, "link_for": _invitation_link} if kind.name == "people" else {}
        return run_change(lambda: run_import(db.session, current_user, kind, text, **options),
                          lambda count: done(f"Imported {counted(count, kind.noun)}.", url_for(".index")),
                          refused)
    elif form.is_submitted():
        status = 422
    return _render(kind, form, confirm, plan, status)


def _invitation_link(token: str) -> str:
    return url_for("accounts.invitation", token=token, _external=True)


def _render(kind, form, confirm, plan, status: int):
    names = list(KINDS)
    following = KINDS[names[names.index(kind.name) + 1]] if kind.name != names[-1] else None
    return render_template("moving/import.html", kind=kind, form=form, confirm=confirm, plan=plan,
                           following=following, max_rows=current_app.config.get("IMPORT_MAX_ROWS")), status
