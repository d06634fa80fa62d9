"""Mail to parents that leaves only when the change it tells of is committed.

Without a mail server the message goes into the development outbox, inside the same
transaction; with one, it is sent just after the commit (and dropped on a rollback), so
nobody is told of a change that did not happen.
"""
import logging
import smtplib

from sqlalchemy import event
from sqlalchemy.orm import Session

from ..mail import Mailer, build_message

log = logging.getLogger(__name__)
_PENDING = "loanservice.mail_after_commit"
_MAIL_KEYS = ("MAIL_SERVER", "MAIL_PORT", "MAIL_USE_TLS", "MAIL_USERNAME", "MAIL_PASSWORD", "MAIL_TIMEOUT",
              "MAIL_DEFAULT_SENDER")


def send_when_committed(session: Session, config, *, to: str, subject: str, body: str) -> None:
    """Send a plain-text message once this transaction commits."""
    if not to:
        return
    settings = {key: config.get(key) for key in _MAIL_KEYS}
    mailer = Mailer(settings, session)
    message = build_message(sender=mailer.sender, to=to, subject=subject, body=body)
    if mailer.uses_outbox:
        mailer.send(message)
        return
    session.info.setdefault(_PENDING, []).append((settings, message))


@event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    for settings, message in pending:
        try:
            with Mailer(settings) as mailer:
                mailer.send(message)
        except (smtplib.SMTPException, OSError):
            # The change is saved; a lost email must not undo it, but it must be seen.
            log.exception("Could not send %r to %s", message["Subject"], message["To"])


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
