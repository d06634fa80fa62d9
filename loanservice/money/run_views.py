"""Staff pages after the invoice run: its progress when a worker runs it, and a term's invoices sent in one
action (emailed with their PDF, or one print file for accounts without email)."""
from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import jobs as job_queue
from ..accounts.permissions import staff_required
from ..documents import invoice_delivery as delivery
from ..documents import notices as notice_service
from ..documents.services import Hub
from ..errors import LoanServiceError
from ..extensions import db
from ..loans.models import AcademicTerm
from ..money.models import EntryKind, LedgerEntry
from ..web import pdf_response, run_change
from ..wording import counted
from . import jobs
from .forms import ButtonForm

bp = Blueprint("invoice_runs", __name__, url_prefix="/money")


def _job_or_404(job_id: str) -> dict:
    from redis.exceptions import RedisError

    if not current_app.config.get("REDIS_URL"):
        abort(404)
    try:
        job = jobs.fetch(job_queue.redis_connection(), job_id)
        state = jobs.job_state(job) if job is not None else None
    except RedisError:
        abort(503, description="The job queue (Redis) cannot be reached.")
    if state is None:
        abort(404)
    return state


@bp.get("/invoice-runs/<job_id>")
@staff_required
def progress(job_id: str):
    run = _job_or_404(job_id)
    return render_template("money/invoice_run_progress.html", run=run,
                           poll_url=url_for(".progress_json", job_id=job_id))


@bp.get("/invoice-runs/<job_id>/progress.json")
@staff_required
def progress_json(job_id: str):
    response = jsonify(_job_or_404(job_id))
    response.headers["Cache-Control"] = "no-store"
    return response


def _term(term_id: int) -> AcademicTerm:
    return db.get_or_404(AcademicTerm, term_id)


@bp.get("/terms/<int:term_id>/invoices")
@staff_required
def term_invoices(term_id: int):
    term = _term(term_id)
    invoices = list(db.session.scalars(
        select(LedgerEntry).where(LedgerEntry.kind == EntryKind.INVOICE, LedgerEntry.term_id == term.id)
        .order_by(LedgerEntry.number).limit(50)))
    return render_template("money/term_invoices.html", term=term, counts=delivery.term_delivery(db.session, term),
                           invoices=invoices, button=ButtonForm(formdata=None))


@bp.post("/terms/<int:term_id>/invoices/send")
@staff_required
def send(term_id: int):
    term = _term(term_id)
    form = ButtonForm()
    location = url_for(".term_invoices", term_id=term.id)
    if not form.validate_on_submit():
        flash("The invoices were not sent: the page had expired. Send them again.", "error")
        return redirect(location, 303)

    def perform():
        # In the request: no worker processes (forking a threaded server is unsafe), and no mail server:
        # the emails are queued, and the sender delivers them.
        return delivery.send_invoices(db.session, current_user, term, Hub.from_config(current_app.config),
                                      current_app.config, processes=1)

    def sent(result: delivery.Delivery):
        waiting = ("" if current_app.config.get("MAIL_SERVER")
                   else " No mail server is set, so the emails wait on the Mail page.")
        held = (f" {notice_service.held_back_summary(len(result.held_back))} ({', '.join(result.held_back[:10])})"
                if result.held_back else "")
        flash(f"{term.name}: {counted(result.emailed, 'invoice')} emailed with the PDF attached, "
              f"{result.printed} to print.{waiting}{held}", "error" if held else "success")
        return redirect(location, 303)

    def refused(error: LoanServiceError):
        flash(error.message, "error")
        return redirect(location, 303)

    return run_change(perform, sent, refused)


@bp.get("/terms/<int:term_id>/invoices-to-print.pdf")
@staff_required
def print_file(term_id: int):
    term = _term(term_id)
    try:
        pdf = delivery.print_file_for(db.session, term, Hub.from_config(current_app.config), current_app.config)
    except LoanServiceError as error:
        abort(error.status_code, description=error.message)
    if pdf is None:
        abort(404, description=f"No invoices for {term.name} were sent by post.")
    return pdf_response(pdf, delivery.print_file_name(term))
