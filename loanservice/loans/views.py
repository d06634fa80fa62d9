"""Staff pages for loans. Thin: load, validate, call a service, commit, redirect."""
import re
from dataclasses import dataclass

from flask import (
    Blueprint,
    Response,
    current_app,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..accounts.permissions import admin_required, staff_required
from ..borrowers.models import BORROWER_KINDS, Family, Pupil, RemissionClaim, borrower_kind
from ..borrowers.services import decide_claim, find_borrowers, get_borrower, pending_claim
from ..documents.services import latest_agreement, latest_agreements
from ..errors import InvalidInput, LoanServiceError
from ..extensions import db
from ..inventory.models import Instrument, PhotoStage
from ..inventory.photos import add_uploaded_photos, latest_check, photos_of
from ..inventory.services import open_repair
from ..inventory.tags import resolve_instrument
from ..money.services import deposit_of
from ..reservations.services import free_instruments
from ..schools.models import School
from ..timeutil import today
from ..web import done, int_arg, submit_button, submit_form
from ..wording import counted
from . import calendar, lending, pricing, queries
from .forms import (
    BORROWER_PATTERN,
    CancelPendingForm,
    CheckInForm,
    CheckOutForm,
    ClosureForm,
    ExchangeForm,
    FeeBandForm,
    IssueForm,
    LostForm,
    RemissionRuleForm,
    RemoveForm,
    RenewForm,
    RollOverForm,
    TermForm,
)
from .models import AcademicTerm, ChargeStatus, Loan, LoanCharge, RemissionKind, TermClosure

bp = Blueprint("loans", __name__)

# Services name a scanned code's field "code"; these forms call it "tag".
SCANNED_CODE = {"code": "tag"}


def borrower_url(borrower) -> str:
    return url_for("borrowers.detail", kind=borrower_kind(borrower), borrower_id=borrower.id)


@bp.record_once
def _register(state):
    state.app.jinja_env.globals["borrower_url"] = borrower_url


def borrower_label(borrower) -> str:
    """How a borrower is offered on the lending form: enough to tell two Sam Smiths apart."""
    if isinstance(borrower, Pupil):
        details = [d for d in (borrower.year_label, borrower.school.name if borrower.school else "") if d]
        return f"Pupil: {borrower.name}" + (f" ({', '.join(details)})" if details else "")
    if isinstance(borrower, Family):
        return f"Family: {borrower.name}" + (f" ({borrower.email})" if borrower.email else "")
    if isinstance(borrower, School):
        return f"School: {borrower.name}"
    return f"Other: {borrower.name}"


def _borrower_choices(chosen: str, who: str) -> list[tuple[str, str]]:
    """The chosen borrower (if it exists), then those whose name matches ``who``."""
    choices = []
    if re.fullmatch(BORROWER_PATTERN, chosen or ""):
        kind, _, borrower_id = chosen.partition("-")
        model = BORROWER_KINDS[kind]
        borrower = db.session.get(model, int(borrower_id))
        if borrower is not None:
            choices.append((chosen, borrower_label(borrower)))
    for borrower in find_borrowers(db.session, who or ""):
        value = f"{borrower_kind(borrower)}-{borrower.id}"
        if value != chosen:
            choices.append((value, borrower_label(borrower)))
    return choices


def _load_loan(loan_id: int) -> Loan:
    return db.get_or_404(Loan, loan_id)


@bp.route("/loans/new", methods=["GET", "POST"])
@staff_required
def check_out():
    form = CheckOutForm()
    if request.method == "GET":
        form.tag.data = request.args.get("tag", "")[:40]
        form.borrower.data = request.args.get("borrower", "")[:40]
        form.who.data = request.args.get("who", "")[:100]
        form.started_on.data = today()
    form.borrower.choices = _borrower_choices(form.borrower.data, form.who.data)
    if form.find.data:  # "Find": list the matches, lend nothing
        return _check_out_page(form, 200)

    def perform():
        kind, _, borrower_id = form.borrower.data.partition("-")
        instrument = resolve_instrument(db.session, form.tag.data, base_url=current_app.config["PUBLIC_BASE_URL"])
        borrower = get_borrower(db.session, kind, int(borrower_id))
        decide_claim(db.session, current_user, borrower, form.remission_claim.data)
        return lending.check_out(
            db.session, current_user, instrument, borrower, current_app.config,
            started_on=form.started_on.data, due_on=form.due_on.data,
            accessories=form.accessories.data or None,
            condition_grade=form.condition_grade.data, condition_note=form.condition_note.data or "",
            charges=pricing.quote(db.session, instrument, borrower, fee_per_term=form.fee_per_term.data,
                                   charge_per_term=form.charge_per_term.data, deposit=form.deposit.data),
            override_debt=form.override_debt.data,
        )

    response, status = submit_form(
        form, perform,
        lambda loan: done(lending.held_message(loan) if loan.is_pending else
                          f"{loan.instrument.asset_tag} lent to {loan.borrower} until {loan.due_on:%-d %b %Y}.",
                          url_for(".detail", loan_id=loan.id)),
        field_map=SCANNED_CODE,
    )
    return response or _check_out_page(form, status)


@bp.get("/loans/new/borrowers")
@staff_required
def borrower_choices():
    """The lend form's borrowers found for what is typed (search as you type): the fragment alone."""
    form = CheckOutForm(formdata=None)
    form.who.data = request.args.get("who", "")[:100]
    form.borrower.data = request.args.get("borrower", "")[:40]
    form.borrower.choices = _borrower_choices(form.borrower.data, form.who.data)
    return render_template("loans/_borrower_choices.html", form=form)


@dataclass
class LendingPreview:
    """What the lend form shows once it knows the instrument and the borrower."""

    instrument: Instrument | None = None
    borrower: object = None
    claim: RemissionClaim | None = None
    charges: pricing.Charges | None = None  # at the borrower's verified remission (or none)
    if_verified: pricing.Charges | None = None  # at the remission claimed, while the claim waits


def _lending_preview(form: CheckOutForm) -> LendingPreview:
    """The instrument and borrower the form names, if it names them, and what lending would cost."""
    preview = LendingPreview()
    if form.tag.data:
        try:
            preview.instrument = resolve_instrument(db.session, form.tag.data,
                                                    base_url=current_app.config["PUBLIC_BASE_URL"])
        except LoanServiceError:
            pass  # the form says so when it is posted
    if re.fullmatch(BORROWER_PATTERN, form.borrower.data or ""):
        kind, _, borrower_id = form.borrower.data.partition("-")
        preview.borrower = db.session.get(BORROWER_KINDS[kind], int(borrower_id))
        preview.claim = pending_claim(db.session, preview.borrower)
    if preview.instrument is not None and preview.borrower is not None:
        preview.charges = pricing.quote(db.session, preview.instrument, preview.borrower)
        if preview.claim is not None:
            preview.if_verified = pricing.quote(db.session, preview.instrument, preview.borrower,
                                                 remission_category=preview.claim.category)
    return preview


def _check_out_page(form: CheckOutForm, status: int):
    # With htmx the borrowers found follow the typing (the Find button stays for a page without it).
    form.who.render_kw = dict(form.who.render_kw or {}, **{
        "hx-get": url_for(".borrower_choices"), "hx-trigger": "input changed delay:200ms, search",
        "hx-target": "#borrower-choices", "hx-swap": "outerHTML", "hx-sync": "this:replace",
        "hx-include": "[name=borrower]:checked", "aria-controls": "borrower-choices"})
    preview = _lending_preview(form)
    # The condition at issue starts from the grade last recorded: staff change it only if it changed.
    if form.condition_grade.data is None and preview.instrument is not None and not form.errors:
        form.condition_grade.data = preview.instrument.condition_grade
    return render_template("loans/check_out.html", form=form, preview=preview,
                           holds_for_agreement=current_app.config.get("REQUIRE_SIGNED_AGREEMENT")), status


def _render_detail(loan: Loan, *, issue_form=None, status: int = 200):
    exchanged_to = db.session.scalar(select(Loan).where(Loan.exchanged_from_id == loan.id))
    return render_template("loans/detail.html", loan=loan, today=today(), charges=pricing.charges_of(db.session, loan),
                           unapplied_remission=pricing.unapplied_remission(loan),
                           agreement=latest_agreement(db.session, loan), exchanged_to=exchanged_to,
                           deposit=deposit_of(db.session, loan),
                           issue_form=issue_form or IssueForm(formdata=None),
                           return_photos=photos_of(db.session, loan_id=loan.id).by_loan.get(loan.id, [])), status


@bp.get("/loans/<int:loan_id>")
@staff_required
def detail(loan_id: int):
    return _render_detail(_load_loan(loan_id))


@bp.post("/loans/<int:loan_id>/issue")
@staff_required
def issue(loan_id: int):
    """Issue a loan that waited for its agreement; a refusal shows on the loan's page."""
    loan = _load_loan(loan_id)
    form = IssueForm()
    response, status = submit_form(
        form, lambda: lending.issue(db.session, current_user, loan),
        lambda issued: done(f"{issued.instrument.asset_tag} issued to {issued.borrower}: on loan until "
                            f"{issued.due_on:%-d %b %Y}.", url_for(".detail", loan_id=issued.id)),
    )
    return response or _render_detail(loan, issue_form=form, status=status)


@bp.post("/loans/<int:loan_id>/remission")
@staff_required
def apply_remission(loan_id: int):
    """Apply the remission the pupil was verified for after lending, from the next term charged."""
    loan = _load_loan(loan_id)
    form = IssueForm()  # a bare button: its CSRF token
    response, status = submit_form(
        form, lambda: pricing.apply_remission(db.session, current_user, loan),
        lambda changed: done(f"{changed.pupil.remission_category.label} applied: "
                             f"the charge is £{changed.charge_per_term:,.2f} "
                             "a term from the next term charged.", url_for(".detail", loan_id=changed.id)),
    )
    return response or _render_detail(loan, issue_form=form, status=status)


@bp.route("/loans/<int:loan_id>/cancel", methods=["GET", "POST"])
@staff_required
def cancel(loan_id: int):
    return _loan_action(
        loan_id, CancelPendingForm(), "loans/cancel.html",
        lambda loan, f: lending.cancel_pending(db.session, current_user, loan, f.note.data or ""),
        "The loan is cancelled and {tag} is released.", applies=lambda loan: loan.is_pending,
    )


def _loan_action(loan_id: int, form, template: str, perform_on, message: str, *,
                 applies=lambda loan: loan.is_open, refresh=None):
    """Show an action's form for a loan, or, when it no longer applies (``applies``: by default to a loan
    on loan), what became of the loan instead; on a valid post, run it in one transaction (the service
    refuses what does not apply)."""
    loan = _load_loan(loan_id)

    def perform():
        return perform_on(loan, form) or loan

    response, status = submit_form(
        form, perform,
        lambda result: done(message.format(tag=loan.instrument.asset_tag, loan=result),
                            url_for(".detail", loan_id=result.id)),
        field_map=SCANNED_CODE,
    )
    if response:
        return response
    if refresh is not None:  # what the form shows of the loan, as it is now
        refresh(loan, form)
    return render_template(template, form=form, loan=loan, applies=applies(loan)), status


@bp.route("/loans/<int:loan_id>/check-in", methods=["GET", "POST"])
@staff_required
def check_in(loan_id: int):
    form = CheckInForm()
    if request.method == "GET":
        form.returned_on.data = today()

    def perform(loan, f):
        lending.check_in(db.session, current_user, loan, grade=f.grade.data, note=f.note.data or "",
                         damaged=f.damaged.data, returned_on=f.returned_on.data)
        instrument = loan.instrument
        repair = open_repair(db.session, instrument) if f.damaged.data else None  # the damage note's repair
        add_uploaded_photos(db.session, current_user, instrument, f.photos.data, PhotoStage.CHECK_IN,
                            limit=current_app.config["PHOTO_MAX_BYTES"], loan_id=loan.id,
                            condition_check_id=latest_check(db.session, instrument).id,
                            repair_id=repair.id if repair else None)
        return loan

    return _loan_action(loan_id, form, "loans/check_in.html", perform,
                        "{tag} is back. This page is the return receipt.")


@bp.route("/loans/<int:loan_id>/renew", methods=["GET", "POST"])
@staff_required
def renew(loan_id: int):
    def shown(loan, form):  # the due date this page shows: after "renewed meanwhile", Renew works again
        form.was_due_on.data, form.was_due_on.raw_data = loan.due_on, None  # not the date posted

    return _loan_action(
        loan_id, RenewForm(), "loans/renew.html",
        lambda loan, f: lending.renew(db.session, current_user, loan, f.due_on.data,
                                       seen_due_on=f.was_due_on.data),
        "{tag} renewed: due back {loan.due_on:%-d %b %Y}.", refresh=shown,
    )


def _offer_next_size(loan: Loan, form: ExchangeForm) -> None:
    """The free instruments of the next size, as choices to pick (best condition first)."""
    old = loan.instrument
    size = lending.next_size(old)
    free = free_instruments(db.session, old.type_id, size) if size else []
    form.pick.choices = [(i.asset_tag, " · ".join(filter(None, (
        i.asset_tag, i.description, i.make, f"condition {i.condition_grade} ({i.condition_label})")))) for i in free]
    if size is None:
        form.pick.description = (f"{old.type.name} comes in one size: there is no next size to exchange it for."
                                 if not old.type.sizes
                                 else f"{old.asset_tag} is the largest {old.type.name.lower()} size.")
    elif not free:
        form.pick.description = f"None free now: scan a {old.type.name.lower()} {size} when one is back."
    else:
        form.pick.description = "Free in the store now, best condition first."


@bp.route("/loans/<int:loan_id>/exchange", methods=["GET", "POST"])
@staff_required
def exchange(loan_id: int):
    form = ExchangeForm()

    def perform(loan, f):
        return lending.size_exchange(db.session, current_user, loan,
                                      resolve_instrument(db.session, f.chosen_code,
                                                         base_url=current_app.config["PUBLIC_BASE_URL"]),
                                      grade=f.grade.data, note=f.note.data or "")

    return _loan_action(loan_id, form, "loans/exchange.html", perform,
                        "{tag} exchanged for the next size.", refresh=_offer_next_size)


@bp.route("/loans/<int:loan_id>/lost", methods=["GET", "POST"])
@staff_required
def lost(loan_id: int):
    return _loan_action(
        loan_id, LostForm(), "loans/lost.html",
        lambda loan, f: lending.mark_lost(db.session, current_user, loan, f.note.data,
                                           replacement_owed=f.replacement_owed.data),
        "{tag} is recorded as lost; its replacement cost is owed.",
    )


def _list_filters() -> dict:
    status = request.args.get("status", "")
    kind = request.args.get("kind", "")
    return {"status": status if status in queries.LIST_STATUSES else "",
            "kind": kind if kind in queries.LIST_KINDS else "", "q": request.args.get("q", "")[:100].strip()}


@bp.get("/loans")
@staff_required
def loan_list():
    filters = _list_filters()
    page = db.paginate(queries.loans_query(**filters), per_page=current_app.config["PAGE_SIZE"], error_out=False)
    return render_template("loans/list.html", page=page, filters=filters, statuses=queries.LIST_STATUSES,
                           kinds=queries.LIST_KINDS, set_filters={k: v for k, v in filters.items() if v})


@bp.get("/loans/export.csv")
@staff_required
def loan_export():
    """The loans list as CSV, with the filters set on it."""
    filters = _list_filters()
    name = "-".join(["loans", *[v for v in (filters["status"], filters["kind"]) if v], today().isoformat()]) + ".csv"
    return Response(stream_with_context(queries.export_loans(db.session, queries.loans_query(**filters))),
                    mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/loans/awaiting-agreement")
@staff_required
def awaiting_agreement():
    loans = queries.awaiting_agreement(db.session)
    agreements = latest_agreements(db.session, loans)
    # Signed first: those are ready to hand over.
    loans.sort(key=lambda loan: not (agreements.get(loan.id) and agreements[loan.id].is_signed))
    return render_template("loans/awaiting.html", loans=loans, agreements=agreements,
                           required=current_app.config.get("REQUIRE_SIGNED_AGREEMENT"))


@bp.get("/loans/overdue")
@staff_required
def overdue():
    return render_template("loans/overdue.html", late=queries.overdue_in_term_time(db.session), today=today())


@bp.route("/terms", methods=["GET", "POST"])
@admin_required
def terms():
    form = TermForm()
    response, status = submit_form(
        form,
        lambda: calendar.add_term(db.session, current_user, form.name.data, form.starts_on.data, form.ends_on.data),
        lambda term: done(f"Added {term.name}.", url_for(".terms")),
    )
    if response:
        return response
    return _render_terms(form, status=status)


def _render_terms(form=None, roll_form=None, closure_form=None, status=200):
    all_terms = db.session.scalars(select(AcademicTerm).options(selectinload(AcademicTerm.closures))
                                   .order_by(AcademicTerm.starts_on)).all()
    roll_form = roll_form or RollOverForm(formdata=None)
    roll_form.from_term.choices = roll_form.to_term.choices = [(0, "Choose a term")] + [
        (t.id, t.name) for t in all_terms]
    closure_form = closure_form or ClosureForm(formdata=None, prefix="closure")
    closure_form.term.choices = [(0, "Choose a term")] + [(t.id, t.name) for t in all_terms]
    return render_template("loans/terms.html", form=form or TermForm(formdata=None), roll_form=roll_form,
                           closure_form=closure_form, remove_form=RemoveForm(formdata=None),
                           terms=all_terms), status


@bp.route("/terms/<int:term_id>/edit", methods=["GET", "POST"])
@admin_required
def term_edit(term_id: int):
    term = db.get_or_404(AcademicTerm, term_id)
    form = TermForm(obj=term)
    form.submit.label.text = "Save changes"
    response, status = submit_form(
        form,
        lambda: calendar.change_term(db.session, current_user, term, form.name.data, form.starts_on.data,
                                     form.ends_on.data),
        lambda changed: done(f"Saved {changed.name}.", url_for(".terms")))
    if response:
        return response
    return render_template("loans/term_form.html", form=form, term=term, remove_form=RemoveForm(formdata=None)), status


@bp.post("/terms/<int:term_id>/remove")
@admin_required
def term_remove(term_id: int):
    term = db.get_or_404(AcademicTerm, term_id)
    name = term.name
    return submit_button(RemoveForm(), lambda: calendar.remove_term(db.session, current_user, term),
                         f"Removed {name}.", url_for(".terms"),
                         refused_location=url_for(".term_edit", term_id=term_id),
                         invalid="The term could not be removed.")


@bp.post("/terms/closures")
@admin_required
def closure_add():
    form = ClosureForm(prefix="closure")  # its fields' ids differ from the term form's on the same page

    def perform():
        term = db.session.get(AcademicTerm, form.term.data)
        if term is None:
            raise InvalidInput("Choose a term.", field="term")
        return calendar.add_closure(db.session, current_user, term, form.name.data, form.starts_on.data,
                                    form.ends_on.data)

    response, status = submit_form(
        form, perform,
        lambda closure: done(f"Added {closure.name} to {closure.term.name}: those days are not counted as overdue.",
                             url_for(".terms")))
    return response or _render_terms(closure_form=form, status=status)


@bp.post("/terms/closures/<int:closure_id>/remove")
@admin_required
def closure_remove(closure_id: int):
    closure = db.get_or_404(TermClosure, closure_id)
    name, term_name = closure.name, closure.term.name
    return submit_button(RemoveForm(), lambda: calendar.remove_closure(db.session, current_user, closure),
                         f"Removed {name} from {term_name}.", url_for(".terms"),
                         invalid="The closure could not be removed: try again.")


@bp.post("/terms/roll-over")
@admin_required
def roll_over():
    form = RollOverForm()

    def perform():
        from_term = db.session.get(AcademicTerm, form.from_term.data)
        to_term = db.session.get(AcademicTerm, form.to_term.data)
        if from_term is None or to_term is None:
            raise InvalidInput("Choose both terms.")
        return lending.roll_over(db.session, current_user, from_term, to_term), to_term

    response, status = submit_form(form, perform, lambda rolled: done(
        f"Rolled {counted(rolled[0], 'loan')} over to {rolled[1].name}.", url_for(".terms")))
    return response or _render_terms(roll_form=form, status=status)


# ------------------------------------------------------------------ charges


@bp.get("/charges")
@admin_required
def charge_list():
    return render_template("loans/charges.html", totals=pricing.term_totals(db.session))


@bp.post("/charges/raise/<int:term_id>")
@admin_required
def charge_raise(term_id: int):
    term = db.get_or_404(AcademicTerm, term_id)
    return submit_button(None, lambda: pricing.raise_term_charges(
        db.session, current_user, term,
        keep_invoicing_overdue=bool(current_app.config.get("KEEP_INVOICING_OVERDUE", True))),
                         lambda count: f"Raised {counted(count, 'charge')} for {term.name}." if count
                         else f"Every loan in {term.name} is already charged.",
                         url_for(".charge_list"))


@bp.post("/charges/<int:charge_id>/<any(paid, waived):status>")
@admin_required
def charge_settle(charge_id: int, status: str):
    charge = db.get_or_404(LoanCharge, charge_id)
    # No form of its own: the app's CSRF check guards the button.
    return submit_button(None, lambda: pricing.settle(db.session, current_user, charge, ChargeStatus(status)),
                         lambda _: f"{charge.term.name} charge marked {status}.",
                         url_for(".detail", loan_id=charge.loan_id))


@bp.get("/charges.csv")
@admin_required
def charge_export():
    term_id = int_arg("term")
    term = db.get_or_404(AcademicTerm, term_id) if term_id else None
    name = f"charges-{term.name.lower().replace(' ', '-') if term else 'all'}-{today().isoformat()}.csv"
    return Response(stream_with_context(pricing.export_charges(db.session, term)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# ------------------------------------------------------------------ fees and remission


def _render_fees(band_form=None, rule_form=None, status=200):
    bands, rules = pricing.fee_schedule(db.session)
    return render_template("loans/fees.html", bands=bands, rules=rules,
                           band_form=band_form or FeeBandForm(formdata=None, prefix="band"),
                           rule_form=rule_form or RemissionRuleForm(formdata=None, prefix="rule")), status


@bp.get("/fees")
@admin_required
def fees():
    return _render_fees()


@bp.post("/fees/band")
@admin_required
def fee_band_save():
    form = FeeBandForm(prefix="band")
    response, status = submit_form(
        form, lambda: pricing.save_fee_band(db.session, current_user, form.band.data, form.fee_per_term.data,
                                            form.deposit.data or 0),
        lambda band: done(f"Band {band.band} saved. Loans already lent keep the fee they were lent at.",
                          url_for(".fees")))
    return response or _render_fees(band_form=form, status=status)


@bp.post("/fees/remission")
@admin_required
def remission_rule_save():
    form = RemissionRuleForm(prefix="rule")
    response, status = submit_form(
        form, lambda: pricing.save_remission_rule(db.session, current_user, form.category.data,
                                                  RemissionKind(form.kind.data), form.value.data or 0),
        lambda _: done("Remission rule saved. Loans already lent keep the charge they were lent at.",
                       url_for(".fees")))
    return response or _render_fees(rule_form=form, status=status)
