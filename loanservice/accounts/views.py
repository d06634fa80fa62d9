from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import bindparam, select

from ..extensions import db, limiter, login_manager
from ..schools.models import School
from ..schools.services import save_school
from ..web import done, submit_form
from .forms import LoginForm, SchoolForm, UserForm
from .models import Role, User
from .permissions import ROLE_HINT, admin_required
from .services import authenticate, create_user, list_users, update_user

bp = Blueprint("accounts", __name__)

login_manager.login_view = "accounts.login"
login_manager.login_message = "Please sign in to see that page."
login_manager.login_message_category = "info"
login_manager.session_protection = "strong"


# Built once: every signed-in request runs it (Session.get builds and keys its statement anew each time).
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    try:
        return db.session.execute(_USER_BY_ID, {"user_id": int(user_id)}).scalar_one_or_none()
    except ValueError:  # a session cookie from another version of the app
        return None


def _safe_next(target: str | None) -> str | None:
    """Only follow a ``next`` that stays on this site."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _login_email() -> str:
    return "login-account:" + (request.form.get("email") or "").strip().lower()


def _failed_sign_in(response) -> bool:
    return response.status_code == 401


@bp.route("/login", methods=["GET", "POST"])
# Per address, and per account too, so that guesses spread over many addresses still run out. Only
# failed attempts (a wrong password: 401) count: a school or a store where everyone shares one
# public address signs in as often as it likes, and signing in often never locks anyone out.
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"], deduct_when=_failed_sign_in)
@limiter.limit(lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"], methods=["POST"], key_func=_login_email,
               deduct_when=_failed_sign_in)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = authenticate(db.session, form.email.data, form.password.data)
        if user is not None:
            db.session.commit()
            login_user(user, remember=form.remember.data)
            session[ROLE_HINT] = user.role
            return redirect(_safe_next(request.args.get("next")) or url_for("home.index"))
        form.password.errors.append("That email and password do not match an active account.")
        status = 401
    elif form.is_submitted():
        status = 422
    return render_template("accounts/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    session.pop(ROLE_HINT, None)
    flash("You are signed out.", "info")
    return redirect(url_for("accounts.login"))


# ------------------------------------------------------------------ admin

admin_bp = Blueprint("admin", __name__, url_prefix="/admin")


def _school_choices():
    schools = db.session.scalars(select(School).order_by(School.name))
    return [(0, "(none)")] + [(s.id, s.name) for s in schools]


def _back_to_users(message: str):
    return done(message, url_for("admin.users"))


@admin_bp.get("/users")
@admin_required
def users():
    q = request.args.get("q", "")
    role = request.args.get("role", "")
    page = db.paginate(list_users(db.session, [role] if role in list(Role) else None, q),
                       per_page=current_app.config["PAGE_SIZE"], error_out=False)
    return render_template("admin/users.html", page=page, q=q, role=role, roles=list(Role))


@admin_bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def new_user():
    form = UserForm()
    form.school_id.choices = _school_choices()
    form.password.description = "At least 10 characters."  # a new account has no current password to keep
    response, status = submit_form(
        form,
        lambda: create_user(
            db.session, current_user, email=form.email.data, name=form.name.data, role=form.role.data,
            password=form.password.data or "", school_id=form.school_id.data or None),
        lambda user: _back_to_users(f"Account created for {user.email}."),
    )
    if response:
        return response
    return render_template("admin/user_form.html", form=form, user=None), status


@admin_bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@admin_required
def edit_user(user_id: int):
    user = db.get_or_404(User, user_id)
    form = UserForm(obj=user)
    form.school_id.choices = _school_choices()
    del form.email
    if request.method == "GET":
        form.school_id.data = user.school_id or 0
    response, status = submit_form(
        form,
        lambda: update_user(
            db.session, current_user, user, name=form.name.data, role=form.role.data,
            school_id=form.school_id.data or None, active=form.active.data, password=form.password.data or ""),
        lambda saved: _back_to_users(f"Saved {saved.email}."),
    )
    if response:
        return response
    return render_template("admin/user_form.html", form=form, user=user), status


@admin_bp.get("/schools")
@admin_required
def schools():
    rows = db.session.scalars(select(School).order_by(School.name)).all()
    return render_template("admin/schools.html", schools=rows, form=SchoolForm())


def _school_fields(form: SchoolForm) -> dict:
    return dict(name=form.name.data or "", urn=form.urn.data or "", address=form.address.data or "",
                contact_name=form.contact_name.data or "", contact_email=form.contact_email.data or "")


@admin_bp.post("/schools")
@admin_required
def add_school():
    form = SchoolForm()
    response, status = submit_form(
        form, lambda: save_school(db.session, current_user, None, **_school_fields(form)),
        lambda school: done(f"Added {school.name}.", url_for("admin.schools")))
    rows = db.session.scalars(select(School).order_by(School.name)).all()
    return response or (render_template("admin/schools.html", schools=rows, form=form), status)


@admin_bp.route("/schools/<int:school_id>/edit", methods=["GET", "POST"])
@admin_required
def edit_school(school_id: int):
    school = db.get_or_404(School, school_id)
    form = SchoolForm(obj=school)
    response, status = submit_form(
        form, lambda: save_school(db.session, current_user, school, **_school_fields(form)),
        lambda school: done(f"Saved {school.name}.", url_for("admin.schools")))
    return response or (render_template("admin/school_form.html", form=form, school=school), status)
