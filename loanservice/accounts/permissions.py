"""Who may open what: one decorator, used by every blueprint."""
from functools import wraps

from flask import abort
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


staff_required = roles_required(Role.ADMIN, Role.STAFF)
admin_required = roles_required(Role.ADMIN)
