"""The instrument inventory: types, instruments, condition, repairs, import and export."""
from flask import Blueprint

bp = Blueprint("inventory", __name__)

from . import views  # noqa: E402,F401
