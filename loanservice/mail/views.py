"""The staff Mail page: every email the hub wrote, queued, sent or failed, and sending a failed one again."""
from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from sqlalchemy import select

from ..accounts.permissions import staff_required
from ..documents.forms import ButtonForm
from ..extensions import db
from ..web import submit_button
from . import MailStatus, OutboxMessage, wake_sender_after_commit
from .sender import counts, resend

bp = Blueprint("mail", __name__)


@bp.get("/mail")
@staff_required
def index():
    """Every email the hub wrote, newest first, filtered by state; failed ones with the server's answer."""
    state = request.args.get("state", "")
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc())
    if state in list(MailStatus):
        query = query.where(OutboxMessage.status == state)
    page = db.paginate(query, per_page=current_app.config["PAGE_SIZE"], error_out=False)
    return render_template("mail/index.html", page=page, state=state, states=list(MailStatus),
                           counts=counts(db.session), form=ButtonForm(),
                           mail_server=current_app.config.get("MAIL_SERVER"))


@bp.post("/mail/<int:message_id>/resend")
@staff_required
def resend_message(message_id: int):
    message = db.get_or_404(OutboxMessage, message_id)

    def perform():
        resend(db.session, message)
        wake_sender_after_commit(db.session, current_app.config)

    return submit_button(ButtonForm(), perform, f"The message to {message.recipients} is queued again.",
                         url_for(".index", state=request.args.get("state", "")))


@bp.get("/mail/<int:message_id>.eml")
@staff_required
def download(message_id: int):
    message = db.get_or_404(OutboxMessage, message_id)
    return Response(message.message, mimetype="message/rfc822",
                    headers={"Content-Disposition": f'attachment; filename="message-{message.id}.eml"'})


@bp.get("/dev/outbox")
@staff_required
def old_outbox():
    """Where the development outbox was."""
    return redirect(url_for(".index"), 301)
