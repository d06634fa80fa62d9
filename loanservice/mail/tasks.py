"""The RQ job that runs the sender: enqueued after each commit that queued mail, when REDIS_URL is set.

``flask worker`` runs it inside the app's context, on the NOTICES_QUEUE queue.
"""
from flask import current_app
from rq import get_current_job

from ..extensions import db
from . import PENDING_JOB_KEY
from .sender import send_queued


def deliver_queued() -> dict:
    """Deliver what is due in the outbox; what happened."""
    job = get_current_job()
    if job is not None:  # from now on, mail queued needs a job of its own: this one may have claimed already
        job.connection.delete(PENDING_JOB_KEY.format(queue=job.origin))
    db.engine.dispose(close=False)  # a forked work horse: never share the parent's pooled connections
    try:
        result = send_queued(db.session, current_app.config)
    finally:
        db.session.remove()
        db.engine.dispose()
    return {"sent": result.sent, "retrying": result.retrying, "failed": result.failed[:50]}
