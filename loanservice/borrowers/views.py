"""Staff pages for borrowers: who holds what now, and what they held before."""
from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..accounts.permissions import staff_required
from ..extensions import db
from ..loans.models import BORROWER_KINDS
from ..loans.services import loans_of
from ..schools.models import School
from ..timeutil import today
from ..web import done, submit_form
from . import services
from .forms import FamilyForm, PupilForm
from .models import Family, OtherBorrower

bp = Blueprint("borrowers", __name__)


@bp.get("/borrowers")
@staff_required
def index():
    q = request.args.get("q", "")[:100]
    return render_template(
        "borrowers/list.html", q=q, families=services.search_families(db.session, q),
        schools=db.session.scalars(select(School).order_by(School.name)).all(),
        others=db.session.scalars(select(OtherBorrower).order_by(OtherBorrower.name)).all(),
    )


@bp.get("/borrowers/<kind>/<int:borrower_id>")
@staff_required
def detail(kind: str, borrower_id: int):
    if kind not in BORROWER_KINDS:
        abort(404)
    borrower = db.get_or_404(BORROWER_KINDS[kind], borrower_id)
    now, before = loans_of(db.session, borrower)
    return render_template("borrowers/detail.html", borrower=borrower, kind=kind, now=now, before=before,
                           today=today())


@bp.route("/borrowers/family/new", methods=["GET", "POST"])
@staff_required
def family_new():
    form = FamilyForm()
    response, status = submit_form(
        form,
        lambda: services.add_family(db.session, current_user, name=form.name.data,
                                    email=form.email.data or "", phone=form.phone.data or ""),
        lambda family: done(f"Added {family.name}.", url_for(".detail", kind="family", borrower_id=family.id)),
    )
    if response:
        return response
    return render_template("borrowers/form.html", form=form, heading="Add a family"), status


@bp.route("/borrowers/family/<int:family_id>/pupils/new", methods=["GET", "POST"])
@staff_required
def pupil_new(family_id: int):
    family = db.get_or_404(Family, family_id)
    form = PupilForm()
    form.school_id.choices = [(0, "No school")] + [
        (s.id, s.name) for s in db.session.scalars(select(School).order_by(School.name))]
    response, status = submit_form(
        form,
        lambda: services.add_pupil(
            db.session, current_user, family, name=form.name.data, school_id=form.school_id.data,
            year_group=form.year_group.data, remission_category=form.remission_category.data,
            remission_verified_on=form.remission_verified_on.data, send=form.send.data),
        lambda pupil: done(f"Added {pupil.name} to {family.name}.",
                           url_for(".detail", kind="family", borrower_id=family.id)),
    )
    if response:
        return response
    return render_template("borrowers/form.html", form=form, heading=f"Add a pupil to {family.name}"), status
