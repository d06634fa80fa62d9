"""The home page: each role lands where its work is."""
from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index():
    if current_user.is_staff:
        return redirect(url_for("inventory.dashboard"))
    return render_template("home/index.html")


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}
