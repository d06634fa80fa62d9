"""Staff pages for money coming in and going out to finance: the bank statement import and the CSV exports."""
from flask import Blueprint, Response, current_app, flash, render_template, request, stream_with_context, url_for
from flask_login import current_user

from ..accounts.permissions import staff_required
from ..errors import LoanServiceError
from ..extensions import db
from ..inventory.csvio import decode_upload
from ..timeutil import today
from ..web import done, field_error, run_change
from ..wording import counted
from .bank import apply_bank_import, plan_bank_import
from .bank_forms import BankConfirmForm, BankUploadForm, PeriodForm
from .export import (
    AGED_DEBT_COLUMNS,
    FINANCE_COLUMNS,
    REMISSION_COLUMNS,
    aged_debt_rows,
    as_csv,
    finance_rows,
    remission_rows,
)

bp = Blueprint("money_bank", __name__)


@bp.route("/money/bank-import", methods=["GET", "POST"])
@staff_required
def bank_import():
    form = BankUploadForm()
    confirm = BankConfirmForm()
    plan, status = None, 200
    if form.validate_on_submit():
        try:
            text = decode_upload(form.file.data.read())
        except LoanServiceError as error:
            form.file.errors = list(form.file.errors) + [error.message]
            status = error.status_code
        else:
            plan = plan_bank_import(db.session, text)
            confirm.csv_text.data = text
            confirm.filename.data = (form.file.data.filename or "")[:200]
            status = 409 if plan.imported_before else 200 if plan.may_confirm else 422
    elif request.method == "POST" and "csv_text" in request.form and confirm.validate():
        # Checked again: the hub may have changed since the preview, and staff may have ticked duplicates.
        plan = plan_bank_import(db.session, confirm.csv_text.data, confirm.separate.data or ())
        if confirm.check_again.data:
            return _render(form, confirm, plan, 409 if plan.imported_before else 200 if plan.may_confirm else 422)

        def imported(bank_import):
            return done(f"Imported {counted(bank_import.payments, 'payment')}, £{bank_import.total:,.2f}.",
                        url_for(".bank_import"))

        def refused(error: LoanServiceError):
            flash(f"Nothing was imported: {error.message}", "error")
            return _render(form, confirm, plan, error.status_code)

        return run_change(lambda: apply_bank_import(db.session, current_user, plan, confirm.filename.data or ""),
                          imported, refused)
    elif form.is_submitted():
        status = 422
    return _render(form, confirm, plan, status)


def _render(form, confirm, plan, status: int):
    return render_template("money/bank/import.html", form=form, confirm=confirm, plan=plan), status


@bp.get("/money/exports")
@staff_required
def exports():
    form = PeriodForm(request.args)
    if request.args and form.validate():
        try:
            rows = finance_rows(db.session, current_app.config, form.start.data, form.end.data)
        except LoanServiceError as error:
            field_error(form, error)
            return render_template("money/bank/exports.html", form=form), error.status_code
        return _csv(FINANCE_COLUMNS, rows, f"finance-{form.start.data}-to-{form.end.data}.csv")
    return render_template("money/bank/exports.html", form=form), 422 if request.args else 200


@bp.get("/money/exports/aged-debt.csv")
@staff_required
def aged_debt_csv():
    on = today()
    return _csv(AGED_DEBT_COLUMNS, aged_debt_rows(db.session, on), f"aged-debt-{on}.csv")


@bp.get("/money/exports/remission.csv")
@staff_required
def remission_csv():
    return _csv(REMISSION_COLUMNS, remission_rows(db.session), f"remission-given-{today()}.csv")


def _csv(header, rows, filename: str) -> Response:
    return Response(stream_with_context(as_csv(header, rows)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
