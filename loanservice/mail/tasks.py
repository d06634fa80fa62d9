"""The RQ job that runs the sender: enqueued after each commit that queued mail, when REDIS_URL is set.

``flask worker`` runs it inside the app's context, on the NOTICES_QUEUE queue.
"""
from flask import current_app

from ..extensions import db
from .sender import send_queued


def deliver_queued() -> dict:
    """Deliver what is due in the outbox; what happened."""
    db.engine.dispose(close=False)  # a forked work horse: never share the parent's pooled connections
    try:
        result = send_queued(db.session, current_app.config)
    finally:
        db.session.remove()
        db.engine.dispose()
    return {"sent": result.sent, "retrying": result.retrying, "failed": result.failed[:50]}
