"""Build messages and hand them to the SMTP server; only the outbox's sender calls ``Mailer.send``."""
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid


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
    """Sends messages over one SMTP connection; use it as a context manager."""

    def __init__(self, config):
        self.server = config.get("MAIL_SERVER")
        self.port = int(config.get("MAIL_PORT") or 25)
        self.use_tls = bool(config.get("MAIL_USE_TLS"))
        self.username = config.get("MAIL_USERNAME")
        self.password = config.get("MAIL_PASSWORD")
        self.timeout = float(config.get("MAIL_TIMEOUT") or 10)
        self.sender = config.get("MAIL_DEFAULT_SENDER") or "loans@hub.example"
        self._smtp: smtplib.SMTP | None = None
        self._reused = False  # whether the open connection has sent a message already

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
            self._reused = False

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
        try:
            self._connection().send_message(message)
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPSenderRefused):
            if not self._reused:
                raise
            # A long batch can outlive the server's idle timeout: reconnect once, on a connection used before.
            self.close()
            self._connection().send_message(message)
        self._reused = True
