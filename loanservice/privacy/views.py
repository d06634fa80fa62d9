"""Data and privacy pages: the coming anonymisations and holds, the retention policy, a family's data
(its export, erasure), and the register of subject access requests."""
from datetime import timedelta

from flask import Response, abort, current_app, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from ..accounts.permissions import admin_required, may_see, staff_required
from ..borrowers.models import Family
from ..errors import InvalidInput
from ..extensions import db
from ..timeutil import today
from ..web import done, int_arg, submit_button, submit_form
from . import bp, services
from .export import build_family_export
from .forms import AccessRequestForm, ButtonForm, EraseForm, ExtendForm, HoldForm, NoticeForm, PolicyForm
from .models import AccessRequest, FamilyAnonymisation, PrivacyHold, RemovedDocument


def _index_page(policy_form=None, status=200):
    policy = services.retention_policy(db.session)
    coming = services.coming_families(db.session, policy)
    holds = db.session.scalars(select(PrivacyHold).order_by(PrivacyHold.created_at.desc())).all()
    return render_template(
        "privacy/index.html", coming=coming, holds=holds, policy=policy, days=services.LOOKAHEAD_DAYS,
        policy_form=policy_form or PolicyForm(obj=policy), hold_form=HoldForm(formdata=None),
        button=ButtonForm(formdata=None), old_mail=services.old_mail_count(db.session, policy, today()),
        open_requests=len(services.open_access_requests(db.session)),
        until=today() + timedelta(days=services.LOOKAHEAD_DAYS), today=today()), status


@bp.get("/")
@admin_required
def index():
    return _index_page()


@bp.post("/policy")
@admin_required
def policy():
    form = PolicyForm()
    response, status = submit_form(
        form, lambda: services.save_retention_policy(
            db.session, current_user, family_years=form.family_years.data,
            reservation_years=form.reservation_years.data, account_years=form.account_years.data,
            outbox_days=form.outbox_days.data),
        lambda _: done("Saved the retention policy.", url_for("privacy.index")))
    return response or _index_page(form, status)


def _family_or_404(family_id: int) -> Family:
    return db.get_or_404(Family, family_id)


@bp.route("/families/<int:family_id>/hold", methods=["GET", "POST"])
@admin_required
def hold(family_id: int):
    family = _family_or_404(family_id)
    form = HoldForm()
    back = request.args.get("back") == "family"
    location = url_for("privacy.family", family_id=family.id) if back else url_for("privacy.index")
    response, status = submit_form(
        form, lambda: services.hold_family(db.session, current_user, family, form.reason.data),
        lambda _: done(f"{family.name} is on hold: it will not be anonymised until the hold is released.", location))
    return response or (render_template("privacy/hold.html", form=form, family=family), status)


@bp.post("/holds/<int:hold_id>/release")
@admin_required
def release(hold_id: int):
    held = db.get_or_404(PrivacyHold, hold_id)
    name = held.family.name
    return submit_button(ButtonForm(), lambda: services.release_hold(db.session, current_user, held),
                         f"Released the hold on {name}.", url_for("privacy.index"))


@bp.get("/families/<int:family_id>")
@staff_required
def family(family_id: int):
    family = _family_or_404(family_id)
    facts = services.facts_of(db.session, family)
    due_on, reason = facts.due(services.retention_policy(db.session))
    return render_template(
        "privacy/family.html", family=family, facts=facts, due_on=due_on, reason=reason,
        hold=db.session.scalar(select(PrivacyHold).where(PrivacyHold.family_id == family.id)),
        anonymised=db.session.get(FamilyAnonymisation, family.id),
        requests=db.session.scalars(select(AccessRequest).where(AccessRequest.family_id == family.id)
                                    .order_by(AccessRequest.received_on.desc())).all(),
        removed=db.session.scalars(select(RemovedDocument).where(RemovedDocument.family_id == family.id)
                                   .order_by(RemovedDocument.id)).all(),
        hold_form=HoldForm(formdata=None), today=today())


@bp.get("/families/<int:family_id>/export")
@login_required
def export(family_id: int):
    family = db.session.get(Family, family_id)
    if family is None or not may_see(current_user, family) or current_user.role == "school":
        abort(404)  # another family's data: as if it did not exist
    if db.session.get(FamilyAnonymisation, family.id) is not None:
        abort(404)
    zipped = build_family_export(db.session, current_user, family, current_app.config)
    db.session.commit()
    return Response(zipped.data, mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{zipped.filename}"', "Cache-Control": "private, no-store"})


@bp.route("/families/<int:family_id>/erase", methods=["GET", "POST"])
@staff_required
def erase(family_id: int):
    family = _family_or_404(family_id)
    form = EraseForm()
    blockers = services.facts_of(db.session, family).blockers
    name = family.name
    response, status = submit_form(
        form, lambda: services.erase_family(db.session, current_user, family),
        lambda _: done(f"Erased {name}'s personal data: the family is now Family {family_id}.",
                       url_for("privacy.family", family_id=family_id)))
    return response or (render_template("privacy/erase.html", form=form, family=family, blockers=blockers), status)


def _requests_page(form=None, status=200):
    if form is None:
        form = AccessRequestForm(formdata=None, family_id=int_arg("family_id"), received_on=today())
    return render_template("privacy/requests.html", form=form,
                           open_requests=services.open_access_requests(db.session),
                           answered=services.answered_access_requests(db.session),
                           button=ButtonForm(formdata=None), today=today()), status


@bp.get("/requests")
@staff_required
def requests():
    return _requests_page()


@bp.post("/requests")
@staff_required
def record_request():
    form = AccessRequestForm()
    response, status = submit_form(
        form, lambda: services.record_access_request(
            db.session, current_user, family_id=form.family_id.data, requester_name=form.requester_name.data,
            relationship_to_child=form.relationship_to_child.data, received_on=form.received_on.data),
        lambda saved: done(f"Recorded {saved.requester_name}'s request about {saved.family.name} (family "
                           f"{saved.family_id}): answer by {saved.due_on:%-d %B %Y}.", url_for("privacy.requests")))
    return response or _requests_page(form, status)


@bp.route("/requests/<int:request_id>/extend", methods=["GET", "POST"])
@staff_required
def extend(request_id: int):
    access = db.get_or_404(AccessRequest, request_id)
    form = ExtendForm()

    def perform():
        if form.months.data not in ("1", "2"):
            raise InvalidInput("A request can be extended by one or two months.", field="months")
        return services.extend_access_request(db.session, current_user, access, months=int(form.months.data),
                                              reason=form.reason.data)

    response, status = submit_form(
        form, perform, lambda saved: done(f"Extended: answer by {saved.extended_to:%-d %B %Y}.",
                                          url_for("privacy.requests")))
    return response or (render_template("privacy/extend.html", form=form, access=access), status)


@bp.post("/requests/<int:request_id>/answer")
@staff_required
def answer(request_id: int):
    access = db.get_or_404(AccessRequest, request_id)
    return submit_button(ButtonForm(), lambda: services.answer_access_request(db.session, current_user, access),
                         "Marked as answered.", url_for("privacy.requests"))


@bp.get("/notice")
def notice():
    """The privacy notice, for anyone (linked from registration, the parent's home and every page's foot)."""
    accepted = None
    if current_user.is_authenticated and current_user.role == "parent":
        accepted = services.accepted_notice(db.session, current_user)
    return render_template("privacy/notice.html", notice=services.current_notice(db.session), accepted=accepted)


@bp.route("/notice/edit", methods=["GET", "POST"])
@admin_required
def edit_notice():
    current = services.current_notice(db.session)
    form = NoticeForm(obj=current)
    response, status = submit_form(
        form, lambda: services.save_notice(db.session, current_user, form.text.data),
        lambda saved: done(f"Published version {saved.version} of the privacy notice.", url_for("privacy.notice")))
    return response or (render_template("privacy/notice_form.html", form=form, current=current), status)
