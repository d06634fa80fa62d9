"""The home page: each role lands where its work is."""
from flask import Blueprint, current_app, redirect, render_template, url_for
from flask_login import current_user

from .accounts.models import Role
from .bookings.services import bookings_for
from .extensions import db
from .money.services import holder_money
from .parents.forms import ButtonForm
from .parents.services import parent_overview
from .sets.services import missing_counts, set_loans_for_school

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    if not current_user.is_authenticated:
        # Someone who typed the site's address: the sign-in page, without "Please sign in to see
        # that page" (kept for real deep links) and without a ?next= back to the root.
        return redirect(url_for("accounts.login"))
    if current_user.is_staff:
        return redirect(url_for("inventory.dashboard"))
    school_set_loans = []
    lost_counts = {}
    overview = None
    money = None
    bookings = []
    if current_user.role == Role.SCHOOL:
        bookings = db.session.scalars(bookings_for(db.session, school_id=current_user.school_id).limit(5)).all()
        school_set_loans = set_loans_for_school(db.session, current_user.school_id)
        lost_counts = missing_counts(db.session, school_set_loans)
        money = holder_money(db.session, current_user.school, current_app.config)
    elif current_user.role == Role.PARENT:
        overview = parent_overview(db.session, current_user, current_app.config)
        money = holder_money(db.session, overview.family, current_app.config) if overview.family else None
        return render_template("home/index.html", overview=overview, button=ButtonForm(formdata=None), money=money)
    return render_template("home/index.html", school_set_loans=school_set_loans, lost_counts=lost_counts,
                           overview=overview, money=money, bookings=bookings)
