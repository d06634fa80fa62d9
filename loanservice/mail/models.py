"""The outbox: every email, written in the transaction of the change it tells of, then delivered."""
import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Enum, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..timeutil import utcnow


class MailStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for the sender (again, after a failure that may pass)
    SENT = "sent"  # accepted by the mail server
    FAILED = "failed"  # refused for good, or still failing after MAIL_MAX_ATTEMPTS tries


class OutboxMessage(db.Model):
    """One email and how its delivery went; ``message`` is the whole message, attachments included."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(m.value) for m in MailStatus)})", name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        CheckConstraint("(status = 'sent') = (sent_at IS NOT NULL)", name="sent_when_sent"),
        Index("ix_outbox_message_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    recipients: Mapped[str] = mapped_column(String(1000))
    subject: Mapped[str] = mapped_column(String(300))
    message: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # the whole message, as .eml
    status: Mapped[MailStatus] = mapped_column(
        Enum(MailStatus, native_enum=False, length=10, values_callable=lambda e: [m.value for m in e],
             validate_strings=True),
        default=MailStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A sender holds a message it is sending until then; after, another may take it (the first died).
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(40))
    sent_at: Mapped[datetime | None]
    error: Mapped[str] = mapped_column(Text, default="")
