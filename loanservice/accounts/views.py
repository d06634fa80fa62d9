import secrets
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import bindparam, literal, select

from ..errors import LoanServiceError
from ..extensions import db, limiter, login_manager
from ..schools.models import School
from ..schools.services import save_school
from ..web import done, refused_page, submit_button, submit_form
from . import signin
from .forms import ConfirmForm, InviteForm, LoginForm, PasswordChangeForm, SchoolForm, SetPasswordForm, UserForm
from .models import Role, User
from .permissions import ROLE_HINT, admin_required
from .services import (
    accept_invitation,
    authenticate,
    change_password,
    check_invitation,
    create_user,
    current_session_id,
    end_session,
    end_sessions,
    forget_remember_token,
    invite_user,
    invited_user_ids,
    issue_remember_token,
    list_users,
    live_session,
    reinvite,
    session_is_live,
    sessions_of,
    set_active,
    start_session,
    tell_of_failed_sign_ins,
    update_user,
    user_for_remember_token,
)

bp = Blueprint("accounts", __name__)
SESSION_KEY = "session_key"

login_manager.login_view = "accounts.login"
login_manager.login_message = "Please sign in to see that page."
login_manager.login_message_category = "info"
login_manager.session_protection = "strong"


# Built once: every signed-in request runs it (Session.get builds and keys its statement anew each time).
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The user a session belongs to, while its session token is still theirs (see ``User.get_id``)."""
    user_id, _, token = session_id.partition(":")
    key = session.get(SESSION_KEY)
    try:
        # The user and, when the browser's session has a key, whether that session is still live: one query.
        query = _USER_BY_ID.add_columns(live_session(key)) if key else _USER_BY_ID.add_columns(literal(True))
        row = db.session.execute(query, {"user_id": int(user_id)}).one_or_none()
    except ValueError:  # a session cookie from another version of the app
        return None
    user, live = row if row is not None else (None, False)
    if user is None or not token or not secrets.compare_digest(user.session_token, token) or not live:
        # Signed out everywhere, the password changed, or this one session ended, since it began. The role
        # hint goes too: label scans are routed by it without loading the user.
        session.pop(ROLE_HINT, None)
        return None
    return user


@login_manager.request_loader
def load_user_from_remember_cookie(request) -> User | None:
    """Sign in a browser that asked to be kept signed in, while its token is unexpired and unrevoked."""
    user = user_for_remember_token(db.session, request.cookies.get(signin.REMEMBER_COOKIE, ""))
    if user is None:
        return None
    session[SESSION_KEY] = start_session(db.session, user, request.headers.get("User-Agent", ""),
                                         remember_token=request.cookies.get(signin.REMEMBER_COOKIE))
    db.session.commit()  # the new session row, before the page's own work begins
    login_user(user, fresh=False)
    session[ROLE_HINT] = user.role
    return user


def _open_session(user: User, remember_token: str | None = None) -> None:
    """Record this browser's session (listed on the Sessions page) and keep its key in the session cookie."""
    session[SESSION_KEY] = start_session(db.session, user, request.headers.get("User-Agent", ""), remember_token)


def _safe_next(target: str | None) -> str | None:
    """Only follow a ``next`` that stays on this site."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _failed_sign_in(response) -> bool:
    return response.status_code == 401


def _known_device() -> bool:
    return signin.from_known_device()


def _unknown_device() -> bool:
    return not signin.from_known_device()


@bp.route("/login", methods=["GET", "POST"])
# Only failed attempts (a wrong password: 401) count: a school or a store where everyone shares one public
# address signs in as often as it likes. Guesses use up the limits of the guesser's address and of that
# address with that account, never the owner's: a browser the owner has signed in with before counts on
# its own, and a new browser elsewhere has a fresh count (slower once the account is past its soft cap).
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"], deduct_when=_failed_sign_in,
               exempt_when=_known_device)
@limiter.limit(signin.pair_limit, methods=["POST"], key_func=signin.pair_key, deduct_when=_failed_sign_in,
               exempt_when=_known_device)
@limiter.limit(lambda: current_app.config["LOGIN_DEVICE_RATE_LIMIT"], methods=["POST"], key_func=signin.device_key,
               deduct_when=_failed_sign_in, exempt_when=_unknown_device)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = authenticate(db.session, form.email.data, form.password.data)
        if user is not None:
            return _signed_in(user, form.remember.data)
        if signin.note_failed_sign_in():
            tell_of_failed_sign_ins(db.session, current_app.config, form.email.data)
            db.session.commit()
        form.password.errors.append("That email and password do not match an active account.")
        status = 401
    elif form.is_submitted():
        status = 422
    return render_template("accounts/login.html", form=form), status


def _signed_in(user: User, remember: bool):
    """Open the session; mark the browser as known; a new "keep me signed in" token when asked for."""
    old_token = request.cookies.get(signin.REMEMBER_COOKIE)
    response = redirect(_safe_next(request.args.get("next")) or url_for("home.index"))
    remember_token = None
    if remember:
        remember_token = issue_remember_token(db.session, user, current_app.config["REMEMBER_DAYS"],
                                              replacing=old_token)
        signin.set_remember_cookie(response, remember_token)
    elif old_token:
        forget_remember_token(db.session, old_token)
        signin.clear_remember_cookie(response)
    _open_session(user, remember_token)
    db.session.commit()
    login_user(user)
    session[ROLE_HINT] = user.role
    signin.remember_device(response, user.email)
    return response


@bp.post("/logout")
@login_required
def logout():
    # Every session of the user ends, on every device, copies of the cookies included.
    end_sessions(db.session, current_user._get_current_object())
    db.session.commit()
    logout_user()
    session.pop(ROLE_HINT, None)
    flash("You are signed out.", "info")
    response = redirect(url_for("accounts.login"))
    signin.clear_remember_cookie(response)
    return response


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
# Wrong current passwords count like failed sign-ins, so a borrowed session cannot guess its way on.
@limiter.limit(lambda: current_app.config["LOGIN_DEVICE_RATE_LIMIT"], methods=["POST"],
               key_func=lambda: f"password-change:{getattr(current_user, 'id', '')}",
               deduct_when=lambda response: response.status_code == 422)
def password():
    form = PasswordChangeForm()
    user = current_user._get_current_object()
    response, status = submit_form(
        form, lambda: change_password(db.session, user, current=form.current_password.data or "",
                                      new=form.new_password.data or ""),
        _still_signed_in)
    return response or (render_template("accounts/password.html", form=form), status)


def _still_signed_in(user: User):
    """After one's own password change: this session goes on (under the new token); every other has ended."""
    _open_session(user)
    db.session.commit()
    login_user(user)
    response = done("Your password is changed. You are signed out on every other device.", url_for("home.index"))
    signin.clear_remember_cookie(response)
    return response


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
    invited = invited_user_ids(db.session, [u.id for u in page.items])
    return render_template("admin/users.html", page=page, q=q, role=role, roles=list(Role), invited=invited,
                           form=ConfirmForm())


@admin_bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def new_user():
    form = UserForm()
    form.school_id.choices = _school_choices()
    # A new account has no current password to keep.
    form.password.description = "At least 10 characters, and not one of the common passwords."
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
        lambda saved: _saved_user(saved),
    )
    if response:
        return response
    return render_template("admin/user_form.html", form=form, user=user), status


def _saved_user(user: User):
    if user.id == current_user.id and not session_is_live(db.session, user.id, session.get(SESSION_KEY, "")):
        _open_session(user)  # an admin who set their own password stays signed in here
        db.session.commit()
        login_user(user)
    return _back_to_users(f"Saved {user.email}.")


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


def _invitation_link(token: str) -> str:
    return url_for("accounts.invitation", token=token, _external=True)


@admin_bp.route("/users/invite", methods=["GET", "POST"])
@admin_required
def invite():
    form = InviteForm()
    form.school_id.choices = _school_choices()
    response, status = submit_form(
        form,
        lambda: invite_user(db.session, current_user, current_app.config, email=form.email.data,
                            name=form.name.data, role=form.role.data, school_id=form.school_id.data or None,
                            link_for=_invitation_link),
        lambda user: _back_to_users(f"Invitation sent to {user.email}: they set their own password from the "
                                    "link in it."),
    )
    if response:
        return response
    return render_template("admin/invite.html", form=form), status


@admin_bp.post("/users/<int:user_id>/reinvite")
@admin_required
def invite_again(user_id: int):
    user = db.get_or_404(User, user_id)
    return submit_button(ConfirmForm(), lambda: reinvite(db.session, current_user, current_app.config, user,
                                                           _invitation_link),
                         f"A new invitation is on its way to {user.email}; earlier links no longer work.",
                         url_for("admin.users"))


@admin_bp.route("/users/<int:user_id>/access", methods=["GET", "POST"])
@admin_required
def user_access(user_id: int):
    """Deactivate (or reactivate) a user, after a confirmation page that says what it does."""
    user = db.get_or_404(User, user_id)
    form = ConfirmForm()
    if request.method == "GET":
        return render_template("admin/user_access.html", user=user, form=form)
    return submit_button(form, lambda: set_active(db.session, current_user, user, not user.active),
                         lambda saved: (f"{saved.email} can sign in again." if saved.active else
                                        f"{saved.email} is deactivated and signed out everywhere."),
                         url_for("admin.users"))


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def invitation(token: str):
    """Set one's password from an invitation link."""
    try:
        invited = check_invitation(db.session, token)
    except LoanServiceError as error:
        return refused_page(error)
    form = SetPasswordForm()
    response, status = submit_form(
        form, lambda: accept_invitation(db.session, token, form.new_password.data or ""),
        lambda user: done(f"Your password is set. Sign in as {user.email}.", url_for("accounts.login")),
        field_map={"new_password": "new_password"},
    )
    if response:
        if current_user.is_authenticated:
            logout_user()
        return response
    return render_template("accounts/invitation.html", form=form, user=invited.user), status


@bp.get("/account/sessions")
@login_required
def sessions():
    user = current_user._get_current_object()
    rows = sessions_of(db.session, user)
    return render_template("accounts/sessions.html", rows=rows, form=ConfirmForm(),
                           this_session=current_session_id(db.session, user, session.get(SESSION_KEY)))


@bp.post("/account/sessions/<int:session_id>/end")
@login_required
def end_one_session(session_id: int):
    user = current_user._get_current_object()
    if session_id == current_session_id(db.session, user, session.get(SESSION_KEY)):
        flash("That is this browser: use Sign out to end it.", "error")
        return redirect(url_for("accounts.sessions"), 303)
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash("The page had expired: try again.", "error")
        return redirect(url_for("accounts.sessions"), 303)
    try:
        end_session(db.session, user, session_id)
        db.session.commit()
    except LoanServiceError as error:
        db.session.rollback()
        abort(error.status_code)
    flash("That session has ended: the browser is signed out.", "success")
    return redirect(url_for("accounts.sessions"), 303)
