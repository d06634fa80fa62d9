"""Who may open what: one decorator, used by every blueprint, and one rule for who may see an object."""
from functools import wraps

from flask import abort, session
from flask_login import current_user, login_required

from .models import Role


def roles_required(*roles: Role):
    """Let signed-in users with one of ``roles`` through; others get a 403 page."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


# The role as it was at sign-in, kept in the signed session cookie. Only for choosing where a
# request goes (never for granting access): the page it leads to still checks the real user,
# so a changed role or a disabled account is caught there.
ROLE_HINT = "role_hint"


def looks_like_staff() -> bool:
    """Whether the session was opened by staff, without loading the user from the database."""
    return "_user_id" in session and session.get(ROLE_HINT) in (Role.ADMIN, Role.STAFF)


staff_required = roles_required(Role.ADMIN, Role.STAFF)
admin_required = roles_required(Role.ADMIN)


def _family_of(obj):
    """The family answerable for ``obj``: its pupil's family, its own family, or ``obj`` itself (a family)."""
    pupil = getattr(obj, "pupil", None)
    holder = pupil if pupil is not None else obj
    return getattr(holder, "family", holder)


def may_see(user, obj) -> bool:
    """Whether ``user`` may see ``obj`` (a loan, set loan, pupil, family): staff all, a school its, a parent theirs."""
    if user is None or not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    # By duck typing, not by model: the loans, sets and borrowers sit above accounts and may not be imported.
    family_user_id = getattr(_family_of(obj), "user_id", None)
    if family_user_id is not None and family_user_id == user.id:
        return True
    school_id = getattr(obj, "school_id", None)
    return user.role == Role.SCHOOL and school_id is not None and school_id == user.school_id
