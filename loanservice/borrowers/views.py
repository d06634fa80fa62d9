"""Staff pages for borrowers: who holds what now, and what they held before."""
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from ..accounts.permissions import staff_required
from ..borrowers.models import BORROWER_KINDS
from ..extensions import db
from ..loans.queries import loans_of
from ..money import services as money
from ..schools.models import School
from ..timeutil import today
from ..web import done, submit_form, wants_fragment
from . import services
from .forms import ClaimForm, FamilyForm, OtherBorrowerForm, PupilForm
from .models import Family, Pupil

bp = Blueprint("borrowers", __name__)


@bp.get("/borrowers")
@staff_required
def index():
    q = request.args.get("q", "")[:100].strip()
    families = db.paginate(services.families_query(q), per_page=current_app.config["PAGE_SIZE"],
                           max_per_page=200, error_out=False)
    return render_template(
        "borrowers/_results.html" if wants_fragment() else "borrowers/list.html", q=q, families=families,
        schools=services.find_schools(db.session, q), others=services.find_other_borrowers(db.session, q),
    )


@bp.get("/borrowers/export.csv")
@staff_required
def export():
    """The list as CSV, for the search typed on it."""
    q = request.args.get("q", "")[:100].strip()
    name = f"borrowers{'-matching' if q else ''}-{today().isoformat()}.csv"
    return Response(stream_with_context(services.export_borrowers(db.session, q)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/borrowers/<kind>/<int:borrower_id>")
@staff_required
def detail(kind: str, borrower_id: int):
    if kind not in BORROWER_KINDS:
        abort(404)
    borrower = db.get_or_404(BORROWER_KINDS[kind], borrower_id)
    now, before = loans_of(db.session, borrower)
    claim = services.pending_claim(db.session, borrower)
    claim_forms = {d.value: ClaimForm(formdata=None, decision=d.value) for d in services.ClaimDecision}
    account = money.account_of(db.session, money.payer_of(borrower))
    return render_template("borrowers/detail.html", borrower=borrower, kind=kind, now=now, before=before,
                           today=today(), claim=claim, claim_forms=claim_forms, account=account,
                           account_balance=money.balance(db.session, account) if account else None)


@bp.post("/borrowers/pupil/<int:pupil_id>/remission-claim")
@staff_required
def remission_claim(pupil_id: int):
    """Verify (today) or refuse the remission a parent claimed; loans already made keep theirs."""
    pupil = db.get_or_404(Pupil, pupil_id)
    back = url_for(".detail", kind="pupil", borrower_id=pupil.id)
    form = ClaimForm()

    def message(pupil: Pupil) -> str:
        if not pupil.has_remission or form.decision.data != services.ClaimDecision.VERIFY:
            return f"Refused the claim for {pupil.name}: loans are at the full fee."
        return (f"Verified {pupil.remission_category.label.lower()} for {pupil.name}. Loans made from now take it; "
                "a loan made before keeps its charge until you apply the remission on its page.")

    response, status = submit_form(
        form, lambda: services.decide_claim(db.session, current_user, pupil, form.decision.data) or pupil,
        lambda pupil: done(message(pupil), back))
    if response is None:
        flash(" ".join(e for errors in form.errors.values() for e in errors) or "Nothing changed.", "error")
    return response or redirect(back, 303)


def _school_choices(form: PupilForm) -> None:
    form.school_id.choices = [(0, "No school")] + [
        (s.id, s.name) for s in db.session.scalars(select(School).order_by(School.name))]


def _family_fields(form: FamilyForm) -> dict:
    return dict(name=form.name.data, email=form.email.data or "", phone=form.phone.data or "",
                address=form.address.data or "")


def _pupil_fields(form: PupilForm) -> dict:
    return dict(name=form.name.data, school_id=form.school_id.data, year_group=form.year_group.data,
                remission_category=form.remission_category.data,
                remission_verified_on=form.remission_verified_on.data, send=form.send.data)


def _form_page(form, heading: str, back: str, status: int):
    return render_template("borrowers/form.html", form=form, heading=heading, back=back), status


@bp.route("/borrowers/family/new", methods=["GET", "POST"])
@staff_required
def family_new():
    form = FamilyForm()
    response, status = submit_form(
        form,
        lambda: services.add_family(db.session, current_user, **_family_fields(form)),
        lambda family: done(f"Added {family.name}.", url_for(".detail", kind="family", borrower_id=family.id)),
    )
    return response or _form_page(form, "Add a family", url_for(".index"), status)


@bp.route("/borrowers/other/new", methods=["GET", "POST"])
@staff_required
def other_new():
    form = OtherBorrowerForm()
    response, status = submit_form(
        form,
        lambda: services.add_other_borrower(db.session, current_user, name=form.name.data or "",
                                            description=form.description.data or "", email=form.email.data or "",
                                            phone=form.phone.data or ""),
        lambda other: done(f"Added {other.name}.", url_for(".detail", kind="other", borrower_id=other.id)),
    )
    return response or _form_page(form, "Add an ensemble, teacher or partner", url_for(".index"), status)


@bp.route("/borrowers/family/<int:family_id>/edit", methods=["GET", "POST"])
@staff_required
def family_edit(family_id: int):
    family = db.get_or_404(Family, family_id)
    form = FamilyForm(obj=family)
    form.submit.label.text = "Save changes"
    back = url_for(".detail", kind="family", borrower_id=family.id)
    response, status = submit_form(
        form,
        lambda: services.update_family(db.session, current_user, family, **_family_fields(form)),
        lambda family: done(f"Saved {family.name}.", back),
    )
    return response or _form_page(form, f"Change {family.name}", back, status)


@bp.route("/borrowers/family/<int:family_id>/pupils/new", methods=["GET", "POST"])
@staff_required
def pupil_new(family_id: int):
    family = db.get_or_404(Family, family_id)
    form = PupilForm()
    _school_choices(form)
    back = url_for(".detail", kind="family", borrower_id=family.id)
    response, status = submit_form(
        form,
        lambda: services.add_pupil(db.session, current_user, family, **_pupil_fields(form)),
        lambda pupil: done(f"Added {pupil.name} to {family.name}.", back),
    )
    return response or _form_page(form, f"Add a pupil to {family.name}", back, status)


@bp.route("/borrowers/pupil/<int:pupil_id>/edit", methods=["GET", "POST"])
@staff_required
def pupil_edit(pupil_id: int):
    pupil = db.get_or_404(Pupil, pupil_id)
    form = PupilForm(obj=pupil, school_id=pupil.school_id or 0)
    form.submit.label.text = "Save changes"
    _school_choices(form)
    back = url_for(".detail", kind="pupil", borrower_id=pupil.id)
    response, status = submit_form(
        form,
        lambda: services.update_pupil(db.session, current_user, pupil, **_pupil_fields(form)),
        lambda pupil: done(f"Saved {pupil.name}. Loans already made keep their fee and remission.", back),
    )
    return response or _form_page(form, f"Change {pupil.name}", back, status)
