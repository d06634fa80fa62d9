"""Parent pages: register, confirm, reset a password, children, requests about a loan.

A parent reaches only their own family: every look-up goes through the services' ``child_of``
and ``loan_of``, which answer 404 for anything else.
"""
from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from ..accounts.models import Role
from ..accounts.permissions import roles_required
from ..borrowers.services import child_of, claims_for
from ..extensions import db, limiter
from ..schools.models import School
from ..web import done, refused_page, run_change, submit_form
from . import services
from .forms import AskForm, ButtonForm, ChildForm, RegisterForm, ResetForm, ResetRequestForm
from .models import TokenPurpose

bp = Blueprint("parents", __name__)
parent_required = roles_required(Role.PARENT)


def _absolute(endpoint: str, **values) -> str:
    # From the configured address, never the request's Host header (which a sender can forge).
    return current_app.config["PUBLIC_BASE_URL"] + url_for(endpoint, **values)


def _confirm_link(token: str) -> str:
    return _absolute("parents.confirm", token=token)


def _email_key() -> str:
    return "parent-email:" + (request.form.get("email") or "").strip().lower()


# ---------------------------------------------------------------- registration


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["REGISTER_RATE_LIMIT"], methods=["POST"])
@limiter.limit(lambda: current_app.config["RESET_ACCOUNT_RATE_LIMIT"], methods=["POST"], key_func=_email_key)
def register():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = RegisterForm()
    response, status = submit_form(
        form,
        lambda: services.register_parent(
            db.session, current_app.config, name=form.name.data, email=form.email.data, password=form.password.data,
            confirm_link=_confirm_link, reset_page=_absolute("parents.reset_request")),
        lambda _: redirect(url_for("parents.check_email"), 303),
    )
    if response:
        return response
    return render_template("parents/register.html", form=form), status


@bp.route("/register/check-your-email", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RESET_RATE_LIMIT"], methods=["POST"])
@limiter.limit(lambda: current_app.config["RESET_ACCOUNT_RATE_LIMIT"], methods=["POST"], key_func=_email_key)
def check_email():
    """Says the confirmation email is on its way, and sends the link again to an address that asks."""
    form = ResetRequestForm()
    form.submit.label.text = "Send the link again"
    response, status = submit_form(
        form,
        lambda: services.resend_confirmation_to(db.session, current_app.config, form.email.data, _confirm_link),
        lambda _: done("If that address is waiting to be confirmed, a new link is on its way to it.",
                       url_for("parents.check_email")),
    )
    if response:
        return response
    return render_template("parents/check_email.html", form=form), status


@bp.get("/confirm/<token>")
def confirm(token: str):
    services.check_token(db.session, token, TokenPurpose.CONFIRM)
    return render_template("parents/confirm.html", form=ButtonForm())


@bp.post("/confirm/<token>")
def confirm_post(token: str):
    form = ButtonForm()
    if not form.validate_on_submit():
        return render_template("parents/confirm.html", form=form), 400
    return run_change(
        lambda: services.confirm_email(db.session, token),
        lambda _: done("Thank you: your email address is confirmed. You can now reserve instruments.",
                       url_for("home.index" if current_user.is_authenticated else "accounts.login")),
        refused_page)


@bp.post("/confirm/resend")
@parent_required
@limiter.limit(lambda: current_app.config["RESET_ACCOUNT_RATE_LIMIT"])
def resend_confirmation():
    return run_change(
        lambda: services.resend_confirmation(db.session, current_app.config, current_user, _confirm_link),
        lambda _: done(f"A new link is on its way to {current_user.email}.", url_for("home.index")),
        refused_page)


# ---------------------------------------------------------------- password reset


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RESET_RATE_LIMIT"], methods=["POST"])
@limiter.limit(lambda: current_app.config["RESET_ACCOUNT_RATE_LIMIT"], methods=["POST"], key_func=_email_key)
def reset_request():
    form = ResetRequestForm()
    response, status = submit_form(
        form,
        lambda: services.request_password_reset(
            db.session, current_app.config, form.email.data,
            lambda token: _absolute("parents.reset", token=token)),
        lambda _: redirect(url_for("parents.reset_sent"), 303),
    )
    if response:
        return response
    return render_template("parents/reset_request.html", form=form), status


@bp.get("/reset/sent")
def reset_sent():
    return render_template("parents/reset_sent.html")


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    services.check_token(db.session, token, TokenPurpose.RESET)
    form = ResetForm()
    response, status = submit_form(
        form,
        lambda: services.reset_password(db.session, token, form.password.data),
        lambda _: done("Your password is changed. Sign in with it now.", url_for("accounts.login")),
    )
    if response:
        return response
    return render_template("parents/reset.html", form=form), status


# ---------------------------------------------------------------- children


def _school_choices():
    from sqlalchemy import select

    return [(0, "Not listed")] + [(s.id, s.name) for s in db.session.scalars(select(School).order_by(School.name))]


def _details(form: ChildForm) -> services.ChildDetails:
    return services.ChildDetails(name=form.name.data, school_id=form.school_id.data or None,
                                 year_group=int(form.year_group.data) if form.year_group.data else None,
                                 claimed_remission=form.claimed_remission.data)


@bp.route("/children/new", methods=["GET", "POST"])
@parent_required
def add_child():
    form = ChildForm()
    form.school_id.choices = _school_choices()
    response, status = submit_form(
        form, lambda: services.add_child(db.session, current_user, _details(form)),
        lambda pupil: done(f"Added {pupil.name}.", url_for("home.index")))
    if response:
        return response
    return render_template("parents/child_form.html", form=form, pupil=None), status


@bp.route("/children/<int:pupil_id>", methods=["GET", "POST"])
@parent_required
def edit_child(pupil_id: int):
    pupil = child_of(db.session, current_user, pupil_id)
    claim = claims_for(db.session, [pupil]).get(pupil.id)
    form = ChildForm(obj=pupil)
    form.school_id.choices = _school_choices()
    if request.method == "GET":
        form.school_id.data = pupil.school_id or 0
        form.year_group.data = "" if pupil.year_group is None else str(pupil.year_group)
        form.claimed_remission.data = claim.category if claim else "none"
    response, status = submit_form(
        form, lambda: services.update_child(db.session, current_user, pupil, _details(form)),
        lambda saved: done(f"Saved {saved.name}'s details.", url_for("home.index")))
    if response:
        return response
    return render_template("parents/child_form.html", form=form, pupil=pupil, remove=ButtonForm(formdata=None),
                           verified=pupil.remission_category if pupil.has_remission else None), status


@bp.post("/children/<int:pupil_id>/remove")
@parent_required
def remove_child(pupil_id: int):
    form = ButtonForm()
    pupil = child_of(db.session, current_user, pupil_id)
    if not form.validate_on_submit():
        return redirect(url_for("parents.edit_child", pupil_id=pupil_id))
    name = pupil.name
    return run_change(lambda: services.remove_child(db.session, current_user, pupil, current_app.config),
                      lambda _: done(f"{name} is no longer on your account.", url_for("home.index")),
                      refused_page)


# ---------------------------------------------------------------- loans


@bp.route("/my-loans/<int:loan_id>/ask", methods=["GET", "POST"])
@parent_required
def ask(loan_id: int):
    loan = services.loan_of(db.session, current_user, loan_id)
    form = AskForm()
    if request.method == "GET" and request.args.get("kind") in ("return", "next_size"):
        form.kind.data = request.args["kind"]
    response, status = submit_form(
        form, lambda: services.ask_about_loan(db.session, current_user, loan, form.kind.data, form.note.data or ""),
        lambda req: done("Sent to the store: they will be in touch about "
                         f"{'returning' if req.kind == 'return' else 'the next size of'} the "
                         f"{loan.instrument.description}.", url_for("home.index")))
    if response:
        return response
    return render_template("parents/ask.html", form=form, loan=loan), status
