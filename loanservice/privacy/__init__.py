"""Children's data: retention, holds, anonymisation, subject access requests and the family export."""
from flask import Blueprint

bp = Blueprint("privacy", __name__, url_prefix="/privacy")
