"""Servicing pages: the queue, the admin's plans, a set sent to servicing and back."""
from flask import Blueprint, render_template, request, url_for
from flask_login import current_user

from ..accounts.permissions import admin_required, staff_required
from ..errors import InvalidInput
from ..extensions import db
from ..inventory.models import Instrument
from ..inventory.services import list_types
from ..sets.models import ClassroomSet
from ..sets.services import open_set_loan, set_instruments
from ..web import done, int_arg, submit_button, submit_form
from ..wording import counted
from . import services
from .forms import DeletePlanForm, PlanForm, SendDueForm, SendSetForm, SetServicedForm
from .models import Schedule, ServicePlan

bp = Blueprint("servicing", __name__)


@bp.route("/servicing", methods=["GET", "POST"])
@staff_required
def queue():
    """What is in servicing, overdue and due soon; the ticked ones go to servicing in one action."""
    type_id = int_arg("type")
    form = SendDueForm()

    def perform():
        chosen = request.form.getlist("due")
        if not chosen:
            raise InvalidInput("Tick the instruments to send.", field="due")
        sent = 0
        for value in chosen:
            try:
                instrument_id, plan_id = (int(part) for part in value.split(":"))
            except ValueError:
                raise InvalidInput("Tick the instruments to send.", field="due") from None
            instrument = db.session.get(Instrument, instrument_id)
            if instrument is None:
                raise InvalidInput("An instrument ticked no longer exists: reload the page.", field="due")
            services.send_to_servicing(db.session, current_user, instrument, technician=form.technician.data,
                                       plan=services.plan_named(db.session, plan_id),
                                       expected_back_on=form.expected_back_on.data)
            sent += 1
        return sent

    response, status = submit_form(form, perform, lambda sent: done(
        f"{counted(sent, 'instrument')} sent to servicing.", url_for(".queue", type=type_id)))
    if response:
        return response
    due = services.due_services(db.session, type_id=type_id)
    return render_template("servicing/queue.html", form=form, types=list_types(db.session), type_id=type_id,
                           in_service=services.in_service(db.session),
                           overdue=[d for d in due if d.overdue], due=[d for d in due if not d.overdue],
                           has_plans=bool(services.list_plans(db.session))), status


def _plan_form(plan: ServicePlan | None = None) -> PlanForm:
    form = PlanForm(obj=plan)
    form.type_id.choices = [(0, "Choose a type")] + [(t.id, t.name) for t in list_types(db.session)]
    return form


@bp.route("/servicing/plans", methods=["GET", "POST"], defaults={"plan_id": None})
@bp.route("/servicing/plans/<int:plan_id>", methods=["GET", "POST"])
@admin_required
def plans(plan_id: int | None):
    plan = db.get_or_404(ServicePlan, plan_id) if plan_id else None
    form = _plan_form(plan)
    response, status = submit_form(form, lambda: services.save_plan(
        db.session, current_user, type_id=form.type_id.data, name=form.name.data,
        schedule=Schedule(form.schedule.data), interval_months=form.interval_months.data, plan=plan),
        lambda saved: done(f"Saved the plan {saved}.", url_for(".plans")))
    if response:
        return response
    return render_template("servicing/plans.html", form=form, plan=plan, plans=services.list_plans(db.session),
                           delete_form=DeletePlanForm()), status


@bp.post("/servicing/plans/<int:plan_id>/delete")
@admin_required
def delete_plan(plan_id: int):
    plan = db.get_or_404(ServicePlan, plan_id)
    return submit_button(DeletePlanForm(), lambda: services.delete_plan(db.session, current_user, plan),
                         lambda shown: f"Removed the plan {shown}; servicings done under it stay in the history.",
                         url_for(".plans"), invalid="The form had expired: try again.")


@bp.route("/servicing/sets/<int:set_id>", methods=["GET"])
@staff_required
def set_page(set_id: int):
    classroom_set = db.get_or_404(ClassroomSet, set_id)
    return _render_set(classroom_set, SendSetForm(prefix="send", formdata=None),
                       SetServicedForm(prefix="back", formdata=None))


def _render_set(classroom_set: ClassroomSet, send_form, serviced_form, status: int = 200):
    in_servicing, in_store = services.set_servicing_state(db.session, classroom_set)
    return render_template(
        "servicing/set.html", classroom_set=classroom_set, send_form=send_form, serviced_form=serviced_form,
        instruments=set_instruments(db.session, classroom_set), open_loan=open_set_loan(db.session, classroom_set),
        in_servicing=in_servicing, in_store=in_store, ready_by=services.ready_by(db.session, classroom_set),
    ), status


@bp.post("/servicing/sets/<int:set_id>/send")
@staff_required
def send_set(set_id: int):
    classroom_set = db.get_or_404(ClassroomSet, set_id)
    form = SendSetForm(prefix="send")
    response, status = submit_form(form, lambda: services.send_set_to_servicing(
        db.session, current_user, classroom_set, technician=form.technician.data, work=form.work.data or "",
        expected_back_on=form.expected_back_on.data), lambda repairs: done(
        f"{classroom_set.name}: {counted(len(repairs), 'instrument')} sent to servicing.",
        url_for(".set_page", set_id=set_id)))
    if response:
        return response
    return _render_set(classroom_set, form, SetServicedForm(prefix="back", formdata=None), status)


@bp.post("/servicing/sets/<int:set_id>/back")
@staff_required
def set_back(set_id: int):
    classroom_set = db.get_or_404(ClassroomSet, set_id)
    form = SetServicedForm(prefix="back")
    response, status = submit_form(form, lambda: services.set_back_from_servicing(
        db.session, current_user, classroom_set, work_done=form.work_done.data or "", cost_each=form.cost_each.data),
        lambda repairs: done(f"{classroom_set.name}: {counted(len(repairs), 'instrument')} serviced and back in use.",
                             url_for(".set_page", set_id=set_id)))
    if response:
        return response
    return _render_set(classroom_set, SendSetForm(prefix="send", formdata=None), form, status)


