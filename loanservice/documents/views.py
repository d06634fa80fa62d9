"""Document pages: agreements to sign, receipts and notes to download, notices.

Everyone but staff and the people a document concerns gets a 404, so that not even a
document's existence shows.
"""
from datetime import date

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import undefer

from ..accounts.permissions import admin_required, may_see, staff_required
from ..errors import LoanServiceError
from ..extensions import db
from ..loans.models import Loan
from ..sets.models import SetLoan
from ..timeutil import today
from ..web import date_arg, done, field_error, pdf_response, run_change, submit_button, submit_form
from . import notices as notice_service
from . import services, tasks
from .forms import ButtonForm, DeskSignatureForm, HireConditionsForm, PreviewForm, RunForm, SignForm, StageForm
from .models import Agreement, Notice, NoticeKind, NoticeLetter, NoticeStage

bp = Blueprint("documents", __name__)


def _hub() -> services.Hub:
    return services.Hub.from_config(current_app.config)


def _visible_loan(loan_id: int) -> Loan:
    loan = db.session.get(Loan, loan_id)
    if loan is None or not may_see(current_user, loan):
        abort(404)
    return loan


def _visible_set_loan(set_loan_id: int) -> SetLoan:
    set_loan = db.session.get(SetLoan, set_loan_id)
    if set_loan is None or not may_see(current_user, set_loan):
        abort(404)
    return set_loan


def _visible_agreement(agreement_id: int, *, for_update: bool = False) -> Agreement:
    query = select(Agreement).where(Agreement.id == agreement_id)
    if for_update:
        query = query.with_for_update()
    agreement = db.session.scalars(query).first()
    if agreement is None or not may_see(current_user, agreement.loan):
        abort(404)
    return agreement


def _is_hirer(loan: Loan) -> bool:
    family = services.hirer_family(loan)
    return family is not None and family.user_id is not None and family.user_id == current_user.id


# ---------------------------------------------------------------- agreements


def _render_agreement_page(loan: Loan, *, sign_form=None, desk_form=None, status=200):
    agreements = db.session.scalars(select(Agreement).where(Agreement.loan_id == loan.id)
                                    .order_by(Agreement.id.desc())).all()
    latest = agreements[0] if agreements else None
    if sign_form is None:
        sign_form = SignForm(formdata=None)
    if latest is not None:
        sign_form.sha256.data = latest.sha256
    return render_template("documents/agreement_page.html", loan=loan, agreements=agreements, latest=latest,
                           sign_form=sign_form, desk_form=desk_form or DeskSignatureForm(formdata=None),
                           button=ButtonForm(formdata=None), is_hirer=_is_hirer(loan),
                           hirer_name=services.hirer_of(loan)[0]), status


@bp.get("/loans/<int:loan_id>/agreement")
@login_required
def agreement_page(loan_id: int):
    return _render_agreement_page(_visible_loan(loan_id))


@bp.post("/loans/<int:loan_id>/agreement")
@staff_required
def agreement_prepare(loan_id: int):
    loan = _visible_loan(loan_id)

    def perform():
        before = services.latest_agreement(db.session, loan)
        made = services.prepare_agreement(db.session, current_user, loan, _hub(),
                                          fresh=request.form.get("fresh") == "1")
        if made is not before:  # a new copy to sign: the hirer is told, as at lending
            services.ask_hirer_to_sign(db.session, loan, current_app.config)

    return submit_button(ButtonForm(), perform,
                         "The agreement is ready to print or to sign online; an email with a link to sign it is on "
                         "its way to the hirer, if they have an email address.",
                         url_for(".agreement_page", loan_id=loan_id))


@bp.get("/agreements/<int:agreement_id>.pdf")
@login_required
def agreement_pdf(agreement_id: int):
    agreement = _visible_agreement(agreement_id)
    suffix = "-signed" if agreement.is_signed else ""
    return pdf_response(services.agreement_copy(db.session, agreement),
                        f"agreement-{agreement.loan_id}-{agreement.id}{suffix}.pdf")


@bp.post("/agreements/<int:agreement_id>/sign")
@login_required
def agreement_sign(agreement_id: int):
    agreement = _visible_agreement(agreement_id, for_update=True)
    loan = agreement.loan
    if not _is_hirer(loan):
        abort(404)
    form = SignForm()
    return _signature(
        agreement, form, "sign_form",
        lambda: services.sign_online(db.session, current_user, agreement, full_name=form.full_name.data,
                                     agreed=form.agreed.data, sha256=form.sha256.data, hub=_hub()),
        "Thank you: the agreement is signed. You can download your copy below.",
    )


def _signature(agreement: Agreement, form, form_name: str, perform, message: str):
    """Record a signature in one transaction; on a refusal, show the agreement page with the form."""
    loan_id = agreement.loan_id
    response, status = submit_form(form, perform,
                                   lambda _: done(message, url_for(".agreement_page", loan_id=loan_id)))
    return response or _render_agreement_page(db.session.get(Loan, loan_id), status=status, **{form_name: form})


@bp.post("/agreements/<int:agreement_id>/desk-signature")
@staff_required
def agreement_desk_signature(agreement_id: int):
    agreement = _visible_agreement(agreement_id, for_update=True)
    form = DeskSignatureForm()
    return _signature(
        agreement, form, "desk_form",
        lambda: services.record_desk_signature(db.session, current_user, agreement,
                                               signer_name=form.signer_name.data, hub=_hub()),
        "Signature recorded.",
    )


@bp.post("/agreements/<int:agreement_id>/countersign")
@staff_required
def agreement_countersign(agreement_id: int):
    agreement = _visible_agreement(agreement_id, for_update=True)
    loan_id = agreement.loan_id
    return submit_button(ButtonForm(), lambda: services.countersign(db.session, current_user, agreement, _hub()),
                         "Countersigned.", url_for(".agreement_page", loan_id=loan_id))


# ---------------------------------------------------------------- receipts and delivery notes


def _pdf_or_message(make, filename: str):
    try:
        return pdf_response(make(), filename)
    except LoanServiceError as error:
        abort(error.status_code, description=error.message)


@bp.get("/loans/<int:loan_id>/receipt.pdf")
@login_required
def loan_receipt(loan_id: int):
    loan = _visible_loan(loan_id)
    return _pdf_or_message(lambda: services.loan_receipt_pdf(loan, _hub()), f"receipt-loan-{loan.id}.pdf")


@bp.get("/set-loans/<int:set_loan_id>/delivery-note.pdf")
@login_required
def set_delivery_note(set_loan_id: int):
    set_loan = _visible_set_loan(set_loan_id)
    return _pdf_or_message(lambda: services.set_delivery_note_pdf(db.session, set_loan, _hub()),
                           f"delivery-note-{set_loan.id}.pdf")


@bp.get("/set-loans/<int:set_loan_id>/receipt.pdf")
@login_required
def set_receipt(set_loan_id: int):
    set_loan = _visible_set_loan(set_loan_id)
    return _pdf_or_message(lambda: services.set_receipt_pdf(db.session, set_loan, _hub()),
                           f"receipt-set-{set_loan.id}.pdf")


# ---------------------------------------------------------------- terms and conditions


@bp.route("/admin/terms-and-conditions", methods=["GET", "POST"])
@admin_required
def hire_conditions():
    history = services.hire_conditions_history(db.session)
    form = HireConditionsForm()
    if request.method == "GET" and history:
        form.text.data = history[0].text
    response, status = submit_form(
        form, lambda: services.save_hire_conditions(db.session, current_user, form.text.data),
        lambda version: done(f"Published version {version.version} of the terms and conditions.",
                             url_for(".hire_conditions")))
    if response:
        return response
    return render_template("documents/hire_conditions.html", form=form, history=history), status


@bp.get("/terms-and-conditions/<int:version>")
def hire_conditions_version(version: int):
    """A version of the terms and conditions, as agreements made under it cite it: public, like the catalogue."""
    conditions = services.hire_conditions_version(db.session, version)
    if conditions is None:
        abort(404)
    return render_template("documents/hire_conditions_version.html", conditions=conditions,
                           current=services.current_hire_conditions(db.session))


# ---------------------------------------------------------------- notices


def _render_notices(run_form=None, status=200, preview_form=None):
    as_of = (run_form.as_of.data if run_form is not None and run_form.as_of.data else None) or today()
    if run_form is None:
        run_form = RunForm(formdata=None)
        run_form.as_of.data = as_of
    if preview_form is None:
        preview_form = PreviewForm(formdata=None)
        preview_form.as_of.data = as_of
    return render_template(
        "notices/index.html", run_form=run_form, preview_form=preview_form, as_of=as_of, today=today(),
        due=notice_service.due_notices(db.session, as_of), stages=notice_service.stages(db.session),
        invoice_stages=notice_service.stages(db.session, NoticeKind.INVOICE),
        history=notice_service.notice_history(db.session),
        unsent=notice_service.unsent_notices(db.session), uncertain=notice_service.uncertain_notices(db.session),
        last_run=notice_service.last_run_date(db.session), queued=_queued_run(),
        on_queue=bool(current_app.config.get("REDIS_URL")), big_run=BIG_RUN), status


# Without a job queue, a run this large is better started from the command line.
BIG_RUN = 200


def _queued_run():
    """The notices job queued or running now (None without Redis, or when Redis cannot be reached)."""
    if not current_app.config.get("REDIS_URL"):
        return None
    from redis.exceptions import RedisError

    try:
        return tasks.current_run(tasks.redis_connection())
    except RedisError:
        return None


@bp.get("/notices")
@staff_required
def notices():
    preview = PreviewForm(request.args)
    if "as_of" not in request.args:
        return _render_notices()
    if not preview.validate():
        return _render_notices(preview_form=preview, status=422)
    form = RunForm(formdata=None)
    form.as_of.data = preview.as_of.data
    return _render_notices(form, preview_form=preview)


@bp.get("/notices/preview/<any(loan, set, invoice):kind>/<int:subject_id>.pdf")
@staff_required
def notice_preview(kind: str, subject_id: int):
    """The letter a run on the day shown would send about one loan, set loan or invoice: read before sending."""
    as_of = date_arg("as_of") or today()
    subject = {"loan": "loan_id", "set": "set_loan_id", "invoice": "invoice_id"}[kind]
    due = notice_service.due_notice_about(db.session, as_of, **{subject: subject_id})
    if due is None:
        abort(404, description=f"No notice about this is due as of {as_of:%-d %b %Y}.")
    pdf = notice_service.preview_letter(db.session, due, as_of, _hub())
    db.session.rollback()
    return pdf_response(pdf, f"preview-{due.stage.letter}-{kind}-{subject_id}-{as_of.isoformat()}.pdf")


@bp.post("/notices/run")
@staff_required
def notices_run():
    form = RunForm()
    if not form.validate_on_submit():
        return _render_notices(form, 422)
    if current_app.config.get("REDIS_URL"):
        return _enqueue_run(form)

    def perform():
        # In the request: no worker processes (forking a threaded server is unsafe), and no mail server:
        # the emails are queued, and the sender delivers them.
        return notice_service.send_notices(db.session, current_user, form.as_of.data, _hub(), current_app.config,
                                           deliver=False, processes=1)

    def queued(result):
        if current_app.config.get("MAIL_SERVER"):
            message = f"{result.queued} emails on their way, {result.printed} to print."
        else:
            message = (f"{result.queued} emails queued, {result.printed} to print. No mail server is set, so the "
                       "emails wait on the Mail page.")
        if result.held_back:
            message += " " + notice_service.held_back_summary(len(result.held_back))
        flash(message, "error" if result.held_back else "success")
        return redirect(url_for(".notices", as_of=form.as_of.data.isoformat()), 303)

    def refused(error: LoanServiceError):
        field_error(form, error)
        return _render_notices(form, error.status_code)

    return run_change(perform, queued, refused)


def _enqueue_run(form):
    """Hand the run to an RQ worker and show its progress page (or the run already going)."""
    from redis.exceptions import RedisError

    try:
        notice_service.check_run_date(db.session, form.as_of.data)
        _hub()
        running = tasks.current_run(tasks.redis_connection())
        job = running or tasks.enqueue_run(form.as_of.data, current_user.id)
    except LoanServiceError as error:
        field_error(form, error)
        return _render_notices(form, error.status_code)
    except RedisError:
        form.form_errors.append(tasks.QUEUE_UNREACHABLE)
        return _render_notices(form, 503)
    if running is not None:
        flash("A run is already going; here is its progress.", "error")
    return redirect(url_for(".notices_progress", job_id=job.id), 303)


def _job_or_404(job_id: str):
    from redis.exceptions import RedisError

    if not current_app.config.get("REDIS_URL"):
        abort(404)
    try:
        job = tasks.fetch(tasks.redis_connection(), job_id)
        state = tasks.job_state(job) if job is not None else None
    except RedisError:
        abort(503, description="The job queue (Redis) cannot be reached.")
    if state is None:
        abort(404)
    return state


@bp.get("/notices/runs/<job_id>")
@staff_required
def notices_progress(job_id: str):
    state = _job_or_404(job_id)
    return render_template("notices/run.html", run=state,
                           poll_url=url_for(".notices_progress_json", job_id=job_id))


@bp.get("/notices/runs/<job_id>/progress.json")
@staff_required
def notices_progress_json(job_id: str):
    response = jsonify(_job_or_404(job_id))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/notices/<int:notice_id>.pdf")
@login_required
def notice_pdf(notice_id: int):
    notice = db.session.scalars(select(Notice).where(Notice.id == notice_id).options(undefer(Notice.pdf))).first()
    if notice is None:
        abort(404)
    about = (notice.loan if notice.loan is not None else notice.set_loan if notice.set_loan is not None
             else notice.invoice.account)
    if not may_see(current_user, about) or notice.pdf is None:
        abort(404)
    return pdf_response(notice.pdf, f"notice-{notice.id}.pdf")


@bp.get("/notices/letters-<as_of>.pdf")
@staff_required
def notices_print_file(as_of: str):
    try:
        day = date.fromisoformat(as_of)
    except ValueError:
        abort(404)
    pdf = notice_service.print_file_for(db.session, day, _hub())
    if pdf is None:
        abort(404, description="No letters were printed on that day.")
    return pdf_response(pdf, notice_service.print_file_name(day))


@bp.route("/notices/stages", methods=["GET", "POST"])
@admin_required
def notice_stages():
    form = StageForm()
    response, status = submit_form(form, lambda: _save_stage(form),
                                   lambda stage: done(f"Added the stage {stage.name}.", url_for(".notice_stages")))
    return response or (render_template("notices/stages.html", form=form, stages=notice_service.stages(db.session),
                                        invoice_stages=notice_service.stages(db.session, NoticeKind.INVOICE),
                                        button=ButtonForm(formdata=None)), status)


def _save_stage(form: StageForm, stage: NoticeStage | None = None) -> NoticeStage:
    return notice_service.save_stage(
        db.session, current_user, name=form.name.data, days_overdue=form.days_overdue.data,
        letter=NoticeLetter(form.letter.data), return_within_days=form.return_within_days.data, stage=stage,
        kind=NoticeKind(form.kind.data))


@bp.route("/notices/stages/<int:stage_id>/edit", methods=["GET", "POST"])
@admin_required
def notice_stage_edit(stage_id: int):
    stage = db.get_or_404(NoticeStage, stage_id)
    form = StageForm(obj=stage)
    form.submit.label.text = "Save changes"
    response, status = submit_form(
        form,
        lambda: _save_stage(form, stage),
        lambda stage: done(f"Saved the stage {stage.name}.", url_for(".notice_stages")))
    return response or (render_template("notices/stage_form.html", form=form, stage=stage,
                                        button=ButtonForm(formdata=None)), status)


@bp.post("/notices/stages/<int:stage_id>/remove")
@admin_required
def notice_stage_remove(stage_id: int):
    stage = db.get_or_404(NoticeStage, stage_id)
    return submit_button(ButtonForm(), lambda: notice_service.remove_stage(db.session, current_user, stage),
                         "The stage is removed.", url_for(".notice_stages"),
                         refused_location=url_for(".notice_stage_edit", stage_id=stage_id),
                         invalid="The stage could not be removed.")


@bp.post("/notices/stages/usual")
@admin_required
def notice_stages_usual():
    return submit_button(ButtonForm(), lambda: notice_service.add_usual_stages(db.session, current_user),
                         "Added the usual stages: 7, 21 and 42 days overdue, not counting school holidays.",
                         url_for(".notice_stages"))


@bp.post("/notices/stages/usual/invoices")
@admin_required
def notice_stages_usual_invoices():
    return submit_button(ButtonForm(),
                         lambda: notice_service.add_usual_stages(db.session, current_user, NoticeKind.INVOICE),
                         "Added the usual stages for unpaid invoices: reminders 7 and 21 days after the due date, "
                         "a final notice at 35.", url_for(".notice_stages"))
