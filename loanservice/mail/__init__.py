"""Mail: every email is written to the outbox in the transaction of the change it tells of.

``queue_mail`` adds the message to the session; nothing touches the mail server inside a request.
After the commit a sender delivers it (``sender.send_queued``): an RQ job enqueued at once when
REDIS_URL is set, else ``flask mail send`` (one-shot, from cron, or ``--loop``). A rollback drops
the message with the change, so nobody is told of a change that did not happen.
"""
import logging
from collections.abc import Iterable

from redis import Redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from .models import MailStatus, OutboxMessage
from .smtp import Attachment, Mailer, build_message

__all__ = ["Attachment", "MailStatus", "Mailer", "OutboxMessage", "build_message", "queue_mail",
           "send_when_committed", "wake_sender_after_commit"]

log = logging.getLogger(__name__)

_KICK = "loanservice.mail.kick"  # session.info: (REDIS_URL, queue) to wake an RQ sender after commit
REDIS_TIMEOUT = 0.5  # seconds: a Redis that hangs must not hold the request either
PENDING_JOB_KEY = "loanservice:mail:{queue}:job-waiting"  # set while a sender job waits for a worker


def queue_mail(session: Session, config, *, to: str, subject: str, body: str,
               attachments: Iterable[Attachment] = (), reply_to: str | None = None) -> OutboxMessage:
    """Write a message to the outbox in this transaction; it is delivered after the commit."""
    message = build_message(sender=config.get("MAIL_DEFAULT_SENDER") or "loans@hub.example", to=to,
                            subject=subject, body=body, attachments=attachments, reply_to=reply_to)
    row = OutboxMessage(recipients=str(message["To"])[:1000], subject=str(message["Subject"])[:300],
                        message=message.as_bytes(), status=MailStatus.QUEUED)
    session.add(row)
    session.flush()
    wake_sender_after_commit(session, config)
    return row


def wake_sender_after_commit(session: Session, config) -> None:
    """With REDIS_URL set, enqueue an RQ job to run the sender once this transaction commits."""
    if config.get("REDIS_URL"):
        session.info[_KICK] = (config["REDIS_URL"], config.get("NOTICES_QUEUE") or "loanservice")


def send_when_committed(session: Session, config, *, to: str, subject: str, body: str) -> None:
    """Queue a plain-text message to ``to`` (nothing when it is empty); it leaves once this transaction commits."""
    if to:
        queue_mail(session, config, to=to, subject=subject, body=body)


def enqueue_delivery(redis_url: str, queue_name: str) -> bool:
    """Ask an RQ worker to run the sender now; False (logged) when Redis cannot take the job."""
    from rq import Queue

    try:
        connection = Redis.from_url(redis_url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
        # One job waiting is enough: it sends everything queued before it starts (and clears the flag).
        if connection.set(PENDING_JOB_KEY.format(queue=queue_name), "1", nx=True, ex=60):
            Queue(queue_name, connection=connection).enqueue("loanservice.mail.tasks.deliver_queued",
                                                             job_timeout=15 * 60, result_ttl=0)
    except Exception as error:  # noqa: BLE001  (the mail is safe in the outbox; cron or the loop sends it)
        log.warning("Mail is queued but Redis could not take the job to send it (%s); "
                    "`flask mail send` will deliver it.", error)
        return False
    return True


@event.listens_for(Session, "after_commit")
def _wake_sender(session: Session) -> None:
    kick = session.info.pop(_KICK, None)
    if kick is not None:
        enqueue_delivery(*kick)


@event.listens_for(Session, "after_rollback")
def _forget_kick(session: Session) -> None:
    session.info.pop(_KICK, None)
