"""The sender: delivers the outbox's queued messages by SMTP, retrying with backoff.

Safe to run from cron, in a loop and in several processes at once: each batch is claimed in a
short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and held by a lease, so no two senders
take the same message, and a sender that dies lets its claim lapse for another to take it up.
A message the server refuses for good (a 5xx answer) fails at once; one that fails otherwise
(server down, hanging, a 4xx answer) is tried again after 1, 2, 4... times MAIL_RETRY_SECONDS,
and fails after MAIL_MAX_ATTEMPTS tries. Each failure keeps the server's answer in ``error``.
"""
import logging
import smtplib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from ..errors import LoanServiceError
from ..signals import mail_failed, mail_sent
from ..timeutil import utcnow
from .models import MailStatus, OutboxMessage
from .smtp import Mailer

log = logging.getLogger(__name__)

BATCH = 50
LEASE = timedelta(minutes=10)  # longer than a batch can take: BATCH messages at MAIL_TIMEOUT each


class NotFailed(LoanServiceError):
    """Only a message that failed can be sent again."""


@dataclass
class SendResult:
    sent: int = 0
    retrying: int = 0
    failed: list[str] = field(default_factory=list)  # "recipient: error" for each message failed for good


def _claimable(now: datetime, ids: Iterable[int] | None, *, ignore_backoff: bool):
    conditions = [OutboxMessage.status == MailStatus.QUEUED,
                  or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now)]
    if not ignore_backoff:
        conditions.append(OutboxMessage.next_attempt_at <= now)
    if ids is not None:
        conditions.append(OutboxMessage.id.in_(list(ids)))
    return conditions


def claim(session: Session, now: datetime, *, ids: Iterable[int] | None = None, ignore_backoff: bool = False,
          limit: int = BATCH) -> list[OutboxMessage]:
    """Take up to ``limit`` messages due for sending, oldest first, for this sender alone; commits."""
    token = uuid.uuid4().hex
    conditions = _claimable(now, ids, ignore_backoff=ignore_backoff)
    # FOR UPDATE SKIP LOCKED on PostgreSQL (SQLite, which has one writer at a time, leaves it out);
    # the UPDATE checks the claim again, so two senders can never both hold a message.
    candidates = session.scalars(select(OutboxMessage.id).where(*conditions).order_by(OutboxMessage.id)
                                 .limit(limit).with_for_update(skip_locked=True)).all()
    if candidates:
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(candidates), *conditions)
                        .values(claimed_until=now + LEASE, claimed_by=token),
                        execution_options={"synchronize_session": False})
    session.commit()
    if not candidates:
        return []
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.claimed_by == token)
                                .order_by(OutboxMessage.id)))


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{to}: {code} {answer.decode(errors='replace')}"
                         for to, (code, answer) in error.recipients.items())[:2000]
    if isinstance(error, smtplib.SMTPResponseException):
        answer = error.smtp_error
        return f"{error.smtp_code} {answer.decode(errors='replace') if isinstance(answer, bytes) else answer}"[:2000]
    return f"{type(error).__name__}: {error}"[:2000]


def _permanent(error: BaseException) -> bool:
    """Whether the server refused the message for good (a 5xx answer), so that trying again is pointless."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    return isinstance(error, smtplib.SMTPResponseException) and error.smtp_code >= 500 \
        and not isinstance(error, smtplib.SMTPServerDisconnected)


def _deliver(session: Session, config, mailer: Mailer, message: OutboxMessage, result: SendResult) -> bool:
    """Try one message and record the outcome (commits); False when the server could not be reached."""
    reachable = True
    try:
        mailer.send(message_from_bytes(message.message, policy=policy.SMTP))
    except (smtplib.SMTPException, OSError) as error:
        # SMTPException is an OSError too: only a socket error or a lost connection says the server is away.
        reachable = isinstance(error, smtplib.SMTPException) and not isinstance(
            error, (smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected))
        mailer.close()
        message.attempts += 1
        message.error = _describe(error)
        message.claimed_until = message.claimed_by = None
        if _permanent(error) or message.attempts >= int(config.get("MAIL_MAX_ATTEMPTS") or 5):
            message.status = MailStatus.FAILED
            result.failed.append(f"{message.recipients}: {message.error}")
            log.warning("Mail %s to %s failed: %s", message.id, message.recipients, message.error)
            mail_failed.send(message, session=session)
        else:
            retry = float(config.get("MAIL_RETRY_SECONDS") or 0) * 2 ** (message.attempts - 1)
            message.next_attempt_at = utcnow() + timedelta(seconds=retry)
            result.retrying += 1
            log.info("Mail %s to %s not sent (try %d), trying again later: %s", message.id, message.recipients,
                     message.attempts, message.error)
    else:
        message.status, message.sent_at, message.error = MailStatus.SENT, utcnow(), ""
        message.attempts += 1
        message.claimed_until = message.claimed_by = None
        result.sent += 1
        mail_sent.send(message, session=session)
    session.commit()
    return reachable


def _release(session: Session, messages: list[OutboxMessage]) -> None:
    for message in messages:
        message.claimed_until = message.claimed_by = None
    session.commit()


def send_queued(session: Session, config, *, ids: Iterable[int] | None = None,
                ignore_backoff: bool = False) -> SendResult:
    """Deliver every message due now (or only ``ids``), once each at most; what happened.

    Without MAIL_SERVER nothing is sent: the messages stay queued, readable on the staff mail page.
    When the server cannot be reached the run stops early and leaves the rest for a later run.
    """
    result = SendResult()
    if not config.get("MAIL_SERVER"):
        return result
    ids = None if ids is None else list(ids)
    started = utcnow()  # a message retried later than this waits for the next run
    with Mailer(config) as mailer:
        while batch := claim(session, started, ids=ids, ignore_backoff=ignore_backoff):
            for index, message in enumerate(batch):
                if not _deliver(session, config, mailer, message, result):
                    _release(session, batch[index + 1:])
                    return result
    return result


def resend(session: Session, message: OutboxMessage) -> OutboxMessage:
    """Queue a failed message again, as if new: tried at once, with its full number of attempts."""
    if message.status != MailStatus.FAILED:
        raise NotFailed("Only a message that failed can be sent again.")
    message.status, message.attempts, message.next_attempt_at = MailStatus.QUEUED, 0, utcnow()
    message.claimed_until = message.claimed_by = None
    session.flush()
    return message


def oldest_queued(session: Session) -> datetime | None:
    """When the oldest message still waiting to be sent was written (for the readiness check)."""
    return session.scalar(select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == MailStatus.QUEUED))


def readiness(session: Session) -> dict:
    """What /readyz shows about mail: how many wait to be sent, and for how long the oldest has waited."""
    oldest = oldest_queued(session)
    waiting = session.scalar(select(func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.status == MailStatus.QUEUED))
    return {"queued": waiting,
            "oldest_queued_seconds": None if oldest is None else int((utcnow() - oldest).total_seconds())}


def counts(session: Session) -> dict[MailStatus, int]:
    """How many messages are in each state."""
    found = dict(session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())
    return {status: found.get(status, 0) for status in MailStatus}
