"""Accounts: sign-in, roles and the admin pages that manage users."""
from flask import Blueprint

bp = Blueprint("accounts", __name__)

from . import views  # noqa: E402,F401
