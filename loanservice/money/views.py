"""Money pages: staff see accounts, statements and aged debt, record payments and corrections and run
the termly invoices; families and schools download their own invoices and statements.

Everyone but staff and the account's own family or school gets a 404 for an invoice or a statement,
so that not even its existence shows.
"""
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select

from .. import jobs as job_queue
from ..accounts.permissions import admin_required, may_see, staff_required
from ..documents import invoices as invoice_documents
from ..documents.services import Hub
from ..errors import LoanServiceError
from ..extensions import DB_INT_MAX, DB_INT_MIN, db
from ..loans.models import AcademicTerm
from ..sets.models import ClassroomSet
from ..timeutil import today
from ..web import done, field_error, form_page, int_arg, pdf_response, submit_button, submit_form
from ..wording import counted
from . import jobs, services
from .forms import (
    ButtonForm,
    CreditForm,
    DepositForm,
    InstalmentChoiceForm,
    PayerForm,
    PaymentForm,
    RefundForm,
    RunConfirmForm,
    RunPreviewForm,
    SetFeeForm,
    SplitInvoiceForm,
    WriteOffForm,
)
from .models import EntryKind, LedgerEntry, LoanDeposit, PayerAccount, SetHireFee

bp = Blueprint("money", __name__, url_prefix="/money")


def _account(account_id: int) -> PayerAccount:
    return db.get_or_404(PayerAccount, account_id)


def _invoice(invoice_id: int) -> LedgerEntry:
    entry = db.session.get(LedgerEntry, invoice_id)
    if entry is None or entry.kind != EntryKind.INVOICE:
        abort(404)
    return entry


def _account_url(account: PayerAccount) -> str:
    return url_for(".account", account_id=account.id)


# ---------------------------------------------------------------- accounts


@bp.get("/accounts")
@staff_required
def accounts():
    q = request.args.get("q", "")[:100].strip()
    page = db.paginate(services.accounts_query(q), per_page=current_app.config["PAGE_SIZE"], max_per_page=200,
                       error_out=False)
    return render_template("money/accounts.html", q=q, page=page,
                           balances=services.balances(db.session, page.items))


@bp.get("/accounts/<int:account_id>")
@staff_required
def account(account_id: int):
    account = _account(account_id)
    aged = services.aged_debt(db.session, today(), account)
    open_invoices = services.open_invoices(db.session, account)
    return render_template(
        "money/account.html", account=account, balance=services.balance(db.session, account),
        statement=services.statement(db.session, account), open_invoices=open_invoices,
        parts_due={invoice.id: services.due_parts(invoice, left) if invoice.instalments else []
                   for invoice, left in open_invoices},
        bands=aged[0].bands if aged else None, age_bands=services.AGE_BANDS,
        credit=services.credit_held(db.session, account), button=ButtonForm(formdata=None),
        deposits=services.deposits_of(db.session, account), held=services.deposits_held(db.session, account))


def _payment_choices(form: PaymentForm, account: PayerAccount) -> list:
    open_invoices = services.open_invoices(db.session, account)
    form.invoices.choices = [(invoice.id, f"{invoice.number} of {invoice.posted_on:%-d %b %Y}: £{left:,.2f} left")
                             for invoice, left in open_invoices]
    return open_invoices


def _paid_message(account: PayerAccount, posted: services.Posted) -> str:
    said = f"Recorded £{posted.entry.size:,.2f} from {account.name} ({account.reference})."
    if posted.credit > 0:
        return (f"{said} It is more than was owed: the account now holds £{posted.credit:,.2f} in credit, which "
                "settles the next invoice, or can be refunded.")
    owed = services.balance(db.session, account)
    return f"{said} {'Nothing more is owed.' if owed <= 0 else f'£{owed:,.2f} is still owed.'}"


@bp.route("/accounts/<int:account_id>/payment", methods=["GET", "POST"])
@staff_required
def payment(account_id: int):
    account = _account(account_id)
    form = PaymentForm()
    _payment_choices(form, account)

    def perform():
        chosen = [invoice for invoice_id in form.invoices.data or []
                  if (invoice := db.session.get(LedgerEntry, invoice_id)) is not None]
        return services.record_payment(db.session, current_user, account, form.amount.data, form.method.data,
                                       on=form.paid_on.data, reference=form.reference.data or "",
                                       note=form.note.data or "", invoices=chosen)

    return form_page(form, perform, lambda posted: done(_paid_message(account, posted), _account_url(account)),
                     "money/payment.html", field_map={"on": "paid_on"}, account=account,
                     balance=services.balance(db.session, account))


@bp.route("/accounts/<int:account_id>/refund", methods=["GET", "POST"])
@staff_required
def refund(account_id: int):
    account = _account(account_id)
    form = RefundForm()
    return form_page(
        form, lambda: services.refund(db.session, current_user, account, form.amount.data, form.method.data,
                                      form.reason.data or ""),
        lambda entry: done(f"Recorded a refund of £{entry.size:,.2f} to {account.name}.", _account_url(account)),
        "money/refund.html", account=account, credit=services.credit_held(db.session, account))


@bp.route("/accounts/<int:account_id>/payer", methods=["GET", "POST"])
@staff_required
def payer(account_id: int):
    account = _account(account_id)
    form = PayerForm()
    if request.method == "GET":
        form.name.data, form.email.data, form.address.data = (account.payer_name, account.payer_email,
                                                              account.payer_address)
    return form_page(
        form, lambda: services.set_payer(db.session, current_user, account, name=form.name.data or "",
                                         email=form.email.data or "", address=form.address.data or ""),
        lambda saved: done(f"Invoices for {saved.reference} go to {saved.name}.", _account_url(saved)),
        "money/payer.html", account=account, button=ButtonForm(formdata=None))


@bp.post("/accounts/<int:account_id>/payer/clear")
@staff_required
def payer_clear(account_id: int):
    account = _account(account_id)
    return submit_button(ButtonForm(), lambda: services.set_payer(db.session, current_user, account, name=""),
                         lambda saved: f"Invoices for {saved.reference} go to the hirer, {saved.name}, again.",
                         _account_url(account))


# ---------------------------------------------------------------- invoices


@bp.get("/invoices/<int:invoice_id>")
@staff_required
def invoice(invoice_id: int):
    invoice = _invoice(invoice_id)
    left = services.invoice_left(db.session, invoice)
    return render_template("money/invoice.html", invoice=invoice, account=invoice.account, left=left,
                           parts=services.due_parts(invoice, left) if left > 0 else [],
                           settled_by=services.settled_by(db.session, invoice),
                           creditable=services.creditable(db.session, invoice))


@bp.route("/invoices/<int:invoice_id>/credit", methods=["GET", "POST"])
@staff_required
def credit(invoice_id: int):
    invoice = _invoice(invoice_id)
    form = CreditForm()

    def message(posted: services.Posted) -> str:
        said = f"Issued credit note {posted.entry.number} for £{posted.entry.size:,.2f} against {invoice.number}."
        if posted.credit > 0:
            said += f" The account now holds £{posted.credit:,.2f} in credit."
        return said

    return form_page(
        form, lambda: services.credit_invoice(db.session, current_user, invoice, form.amount.data, form.reason.data),
        lambda posted: done(message(posted), url_for(".invoice", invoice_id=invoice.id)),
        "money/credit.html", invoice=invoice, creditable=services.creditable(db.session, invoice))


@bp.route("/invoices/<int:invoice_id>/write-off", methods=["GET", "POST"])
@admin_required
def write_off(invoice_id: int):
    invoice = _invoice(invoice_id)
    form = WriteOffForm()
    return form_page(
        form, lambda: services.write_off(db.session, current_user, invoice, form.reason.data),
        lambda entry: done(f"Wrote off £{entry.size:,.2f} of {invoice.number}.",
                           url_for(".invoice", invoice_id=invoice.id)),
        "money/write_off.html", invoice=invoice, left=services.invoice_left(db.session, invoice))


# ---------------------------------------------------------------- PDFs: staff, and the account's own people


def _visible_account(account: PayerAccount) -> PayerAccount:
    if not may_see(current_user, account):
        abort(404)
    return account


def _pdf(make, filename: str):
    try:
        return pdf_response(make(Hub.from_config(current_app.config)), filename)
    except LoanServiceError as error:
        abort(error.status_code, description=error.message)


@bp.get("/invoices/<int:invoice_id>.pdf")
@login_required
def invoice_pdf(invoice_id: int):
    invoice = _invoice(invoice_id)
    _visible_account(invoice.account)
    return _pdf(lambda hub: invoice_documents.invoice_pdf(invoice, hub, current_app.config),
                f"invoice-{invoice.number}.pdf")


@bp.get("/accounts/<int:account_id>/statement.pdf")
@login_required
def statement_pdf(account_id: int):
    account = db.session.get(PayerAccount, account_id)
    if account is None:
        abort(404)
    _visible_account(account)
    return _pdf(lambda hub: invoice_documents.statement_pdf(db.session, account, hub, current_app.config),
                f"statement-{account.reference}-{today().isoformat()}.pdf")


# ---------------------------------------------------------------- aged debt


def _aged_filter() -> tuple[str, int | None]:
    kind = request.args.get("kind", "")
    older_than = int_arg("older_than")
    return (kind if kind in services.HOLDER_KINDS else ""), (older_than if older_than in (30, 60, 90) else None)


@bp.get("/aged-debt")
@staff_required
def aged_debt():
    kind, older_than = _aged_filter()
    rows = services.aged_debt_report(db.session, today(), kind=kind, older_than=older_than)
    return render_template("money/aged_debt.html", rows=rows, kind=kind, older_than=older_than,
                           kinds=services.HOLDER_KINDS, age_bands=services.AGE_BANDS, today=today(),
                           total=sum((row.total for row in rows), services.ZERO))


@bp.get("/aged-debt.csv")
@staff_required
def aged_debt_csv():
    kind, older_than = _aged_filter()
    rows = services.aged_debt_report(db.session, today(), kind=kind, older_than=older_than)
    name = f"aged-debt-{kind or 'all'}{f'-over-{older_than}' if older_than else ''}-{today().isoformat()}.csv"
    # Written whole, one row per account in debt: the rows are loaded already.
    return Response("".join(services.export_aged_debt(rows)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# ---------------------------------------------------------------- the invoice run (in the request: it is fast)


def _terms() -> list[AcademicTerm]:
    """The terms that can be invoiced now, the latest first: none starting beyond INVOICE_AHEAD_DAYS."""
    latest = today() + timedelta(days=int(current_app.config.get("INVOICE_AHEAD_DAYS", 45)))
    return list(db.session.scalars(select(AcademicTerm).where(AcademicTerm.starts_on <= latest)
                                   .order_by(AcademicTerm.starts_on.desc())))


def _dry_run(term: AcademicTerm) -> dict:
    """What a run for ``term`` would issue, worked out in a transaction that is then rolled back."""
    try:
        run = services.run_invoices(db.session, current_user, term, current_app.config)
        preview = {"term": term, "count": run.count, "total": run.total, "remission": run.remission,
                   "no_payer": list(run.no_payer),
                   "invoices": [(invoice.account.name, invoice.account.reference, invoice.amount)
                                for invoice in run.invoices[:10]]}
    finally:
        db.session.rollback()
    return preview


def _run_going(term: AcademicTerm):
    """The invoice run for ``term`` on the job queue now (None without Redis, or when it cannot be reached)."""
    if not current_app.config.get("REDIS_URL"):
        return None
    from redis.exceptions import RedisError

    try:
        return jobs.run_going(job_queue.redis_connection(), term)
    except RedisError:
        return None


def _render_run(preview_form: RunPreviewForm, confirm_form: RunConfirmForm | None = None, status: int = 200,
                going=None):
    preview = None
    term = db.session.get(AcademicTerm, preview_form.term.data) if preview_form.term.data else None
    going = going or (_run_going(term) if term is not None else None)
    if going is not None:
        # No dry run while the run goes: it would wait for the run's lock on the invoice numbers.
        return render_template("money/invoice_run.html", preview_form=preview_form, confirm_form=None,
                               preview=None, going=going, going_term=term), max(status, 409 if confirm_form else 200)
    if term is not None:
        try:
            preview = _dry_run(term)
        except LoanServiceError as error:
            field_error(preview_form, error)
            status = max(status, error.status_code)
    if preview and preview["count"] and confirm_form is None:
        confirm_form = RunConfirmForm(formdata=None)
    if preview and confirm_form is not None:
        confirm_form.term.data, confirm_form.count.data, confirm_form.total.data = (
            term.id, preview["count"], f"{preview['total']:.2f}")
        confirm_form.submit.label.text = f"Issue {counted(preview['count'], 'invoice')}"
    return render_template("money/invoice_run.html", preview_form=preview_form, confirm_form=confirm_form,
                           preview=preview, on_queue=bool(current_app.config.get("REDIS_URL")),
                           invoiced_terms=_invoiced_terms()), status


def _invoiced_terms() -> list[AcademicTerm]:
    """The terms with invoices issued, the latest first: each has a page to send them."""
    invoiced = select(LedgerEntry.id).where(LedgerEntry.term_id == AcademicTerm.id,
                                            LedgerEntry.kind == EntryKind.INVOICE).exists()
    return list(db.session.scalars(select(AcademicTerm).where(invoiced).order_by(AcademicTerm.starts_on.desc())
                                   .limit(6)))


@bp.get("/invoice-run")
@staff_required
def invoice_run():
    form = RunPreviewForm(request.args)
    form.term.choices = [(term.id, term.name) for term in _terms()]
    if "term" not in request.args:
        form = RunPreviewForm(formdata=None)
        form.term.choices = [(term.id, term.name) for term in _terms()]
        return _render_run(form)
    if not form.validate():
        return render_template("money/invoice_run.html", preview_form=form, confirm_form=None, preview=None), 422
    return _render_run(form)


@bp.post("/invoice-run")
@staff_required
def invoice_run_confirm():
    form = RunConfirmForm()
    term_id = _int(form.term.data)
    term = db.session.get(AcademicTerm, term_id) if term_id is not None else None
    if term is None:
        abort(404)

    def expected():
        try:
            return int(form.count.data), Decimal(form.total.data)
        except (TypeError, ValueError, InvalidOperation):
            return None

    def perform():
        return services.issue_invoices(db.session, current_user, term, current_app.config, expected=expected())

    def issued(run: services.InvoiceRun) -> Response:
        return done(f"Issued {counted(run.count, 'invoice')} for {term.name} ({run.invoices[0].number} to "
                    f"{run.invoices[-1].number}), £{run.total:,.2f} in all; remission given £{run.remission:,.2f}. "
                    "Send them from this page.", url_for("invoice_runs.term_invoices", term_id=term.id))

    going, status = None, 200
    if current_app.config.get("REDIS_URL") and form.validate_on_submit():
        # A worker runs it, with a progress page; one run per term at a time.
        from redis.exceptions import RedisError

        try:
            job = jobs.start_run(term, current_user.id, expected())
        except jobs.RunGoing as error:
            form.form_errors.append(error.message)
            going, status = error.job, error.status_code
        except RedisError:
            form.form_errors.append(job_queue.QUEUE_UNREACHABLE)
            status = 503
        else:
            return redirect(url_for("invoice_runs.progress", job_id=job.id), 303)
    else:
        response, status = submit_form(form, perform, issued)
        if response:
            return response
    preview_form = RunPreviewForm(formdata=None)
    preview_form.term.choices = [(t.id, t.name) for t in _terms()]
    preview_form.term.data = term.id
    return _render_run(preview_form, form, status, going=going)


def _int(text) -> int | None:
    """A whole number the database can hold, from a hidden field; None for anything else."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        return None
    return value if DB_INT_MIN <= value <= DB_INT_MAX else None


# ---------------------------------------------------------------- instalments


@bp.route("/accounts/<int:account_id>/instalments", methods=["GET", "POST"])
@staff_required
def instalments(account_id: int):
    account = _account(account_id)
    form = InstalmentChoiceForm()
    if request.method == "GET":
        form.pays_by_instalments.data = "yes" if account.pays_by_instalments else "no"

    def said(saved: PayerAccount) -> str:
        if saved.pays_by_instalments:
            return (f"{saved.reference} pays each term's invoice by {current_app.config['INSTALMENTS_PER_TERM']} "
                    "monthly instalments, from the next invoice run.")
        return f"{saved.reference} pays each invoice in one payment, from the next invoice run."

    response, status = submit_form(
        form, lambda: services.choose_instalments(db.session, current_user, account, current_app.config,
                                                  form.pays_by_instalments.data == "yes"),
        lambda saved: done(said(saved), _account_url(saved)))
    if response:
        return response
    return render_template("money/instalments.html", account=account, form=form,
                           allowed=current_app.config.get("INSTALMENTS_ALLOWED"),
                           count=current_app.config.get("INSTALMENTS_PER_TERM")), status


@bp.route("/invoices/<int:invoice_id>/instalments", methods=["GET", "POST"])
@staff_required
def split_invoice(invoice_id: int):
    invoice = _invoice(invoice_id)
    form = SplitInvoiceForm()
    response, status = submit_form(
        form, lambda: services.split_into_instalments(db.session, current_user, invoice, current_app.config),
        lambda rows: done(f"{invoice.number} is paid in {len(rows)} instalments: " + ", ".join(
            f"£{row.amount:,.2f} by {row.due_on:%-d %b %Y}" for row in rows) + ".",
            url_for(".invoice", invoice_id=invoice.id)))
    if response:
        return response
    left = services.invoice_left(db.session, invoice)
    count = int(current_app.config.get("INSTALMENTS_PER_TERM") or 1)
    plan = (services.instalment_plan(left, max(invoice.due_on or today(), today()), count)
            if left > 0 and count > 1 else [])
    return render_template("money/split_invoice.html", invoice=invoice, form=form, left=left, plan=plan), status


# ---------------------------------------------------------------- deposits


@bp.route("/deposits/<int:deposit_id>", methods=["GET", "POST"])
@staff_required
def deposit(deposit_id: int):
    deposit = db.get_or_404(LoanDeposit, deposit_id)
    form = DepositForm()

    def perform():
        if form.outcome.data == "kept":
            return services.keep_deposit(db.session, current_user, deposit, form.reason.data or "")
        return services.refund_deposit(db.session, current_user, deposit, method=form.method.data or "")

    def said(release) -> str:
        tag = deposit.loan.instrument.asset_tag
        if release.outcome == "kept":
            return f"The deposit of £{deposit.amount:,.2f} for {tag} is kept: {release.reason}"
        credit = services.credit_held(db.session, deposit.account)
        return (f"The deposit of £{deposit.amount:,.2f} for {tag} is refunded (credit note "
                f"{release.credit_note.number})." + (f" The account holds £{credit:,.2f} in credit." if credit else ""))

    response, status = submit_form(form, perform, lambda release: done(said(release), _account_url(deposit.account)))
    if response:
        return response
    return render_template("money/deposit.html", deposit=deposit, account=deposit.account, form=form), status


# ---------------------------------------------------------------- schools' set hire fees


@bp.get("/set-fees")
@admin_required
def set_fees():
    return render_template("money/set_fees.html", rows=services.set_fees(db.session))


@bp.route("/set-fees/<int:set_id>", methods=["GET", "POST"])
@admin_required
def set_fee(set_id: int):
    classroom_set = db.get_or_404(ClassroomSet, set_id)
    form = SetFeeForm()
    if request.method == "GET":
        fee = db.session.scalar(select(SetHireFee).where(SetHireFee.set_id == set_id))
        form.basis.data, form.fee.data = (fee.basis.value, fee.fee) if fee else ("set", None)
    response, status = submit_form(
        form, lambda: services.save_set_fee(db.session, current_user, classroom_set, form.basis.data, form.fee.data),
        lambda fee: done(f"{classroom_set.name}: £{fee.fee:,.2f} a term {fee.basis.label}, from the next invoice run.",
                         url_for(".set_fees")))
    if response:
        return response
    return render_template("money/set_fee.html", classroom_set=classroom_set, form=form), status
