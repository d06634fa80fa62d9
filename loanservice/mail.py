"""Send mail by SMTP; without a mail server, log it and keep it in the development outbox.

A message is never silently dropped: with MAIL_SERVER unset every message is written to the
log and stored in the ``outbox_message`` table, which staff can read at /dev/outbox.
"""
import logging
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import LargeBinary, String, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from .extensions import db
from .timeutil import utcnow

log = logging.getLogger(__name__)


class OutboxMessage(db.Model):
    """A message that would have been sent, kept because no mail server is configured."""

    __tablename__ = "outbox_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    recipients: Mapped[str] = mapped_column(String(1000))
    subject: Mapped[str] = mapped_column(String(300))
    message: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # the whole message, as .eml


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mimetype: str = "application/pdf"


def build_message(
    *, sender: str, to: str, subject: str, body: str, attachments: Iterable[Attachment] = (),
    reply_to: str | None = None,
) -> EmailMessage:
    """A plain-text message with its attachments."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    if reply_to:
        message["Reply-To"] = reply_to
    message.set_content(body)
    for attachment in attachments:
        maintype, _, subtype = attachment.mimetype.partition("/")
        message.add_attachment(attachment.content, maintype=maintype, subtype=subtype,
                               filename=attachment.filename)
    return message


class Mailer:
    """Sends messages over one SMTP connection (or into the outbox); use it as a context manager."""

    def __init__(self, config, session: Session | None = None):
        self.server = config.get("MAIL_SERVER")
        self.port = int(config.get("MAIL_PORT") or 25)
        self.use_tls = bool(config.get("MAIL_USE_TLS"))
        self.username = config.get("MAIL_USERNAME")
        self.password = config.get("MAIL_PASSWORD")
        self.timeout = float(config.get("MAIL_TIMEOUT") or 10)
        self.sender = config.get("MAIL_DEFAULT_SENDER") or "loans@hub.example"
        self.session = session
        self._smtp: smtplib.SMTP | None = None

    @property
    def uses_outbox(self) -> bool:
        return not self.server

    def __enter__(self) -> "Mailer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except smtplib.SMTPException:
                pass
            except OSError:
                pass
            self._smtp = None

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            smtp = smtplib.SMTP(self.server, self.port, timeout=self.timeout)
            if self.use_tls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            self._smtp = smtp
        return self._smtp

    def send(self, message: EmailMessage) -> None:
        """Send one message; raises smtplib.SMTPException or OSError when it cannot go."""
        if message["From"] is None:
            message["From"] = self.sender
        if self.uses_outbox:
            self._keep_in_outbox(message)
            return
        try:
            self._connection().send_message(message)
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPSenderRefused):
            # A long batch can outlive the server's idle timeout: reconnect once.
            self.close()
            self._connection().send_message(message)

    def _keep_in_outbox(self, message: EmailMessage) -> None:
        if self.session is None:
            raise RuntimeError("No MAIL_SERVER is set and there is no session for the outbox.")
        log.warning("MAIL_SERVER is not set; kept in the outbox instead of sending: to %s, %r",
                    message["To"], message["Subject"])
        self.session.add(OutboxMessage(recipients=str(message["To"]), subject=str(message["Subject"])[:300],
                                       message=message.as_bytes()))
        self.session.flush()


# ---------------------------------------------------------------- mail that leaves on commit
# Mail telling of a change leaves only when the change is committed. Without a mail server the
# message goes into the development outbox, inside the same transaction; with one, it is sent just
# after the commit (and dropped on a rollback), so nobody is told of a change that did not happen.
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
