"""Terms and conditions, agreements and the notices sent about overdue loans."""
import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.orm.attributes import get_history

from ..accounts.models import User
from ..dbtypes import enum_column, sql_values, values_check
from ..extensions import db
from ..loans.models import Loan
from ..money.models import LedgerEntry
from ..sets.models import SetLoan
from ..timeutil import utcnow


class HireConditions(db.Model):
    """One version of the hub's terms and conditions; an edit makes the next version."""

    __tablename__ = "terms_version"  # the table keeps its first name
    __table_args__ = (CheckConstraint("version > 0", name="version_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    created_by: Mapped[User | None] = relationship()

    @property
    def paragraphs(self) -> list[str]:
        return [p.strip() for p in self.text.replace("\r\n", "\n").split("\n\n") if p.strip()]


class SignatureMethod(enum.StrEnum):
    ONLINE = "online"  # the parent typed their name and ticked the box
    DESK = "desk"  # signed on paper at the store; staff recorded it

    @property
    def label(self) -> str:
        return {"online": "Signed online", "desk": "Signed at the desk"}[self.value]


class Agreement(db.Model):
    """A loan agreement as a PDF: a draft until signed, then kept byte for byte as it was signed."""

    __tablename__ = "agreement"
    __table_args__ = (
        CheckConstraint("length(sha256) = 64", name="sha256_length"),
        CheckConstraint(f"signature_method IS NULL OR signature_method IN ({sql_values(SignatureMethod)})",
                        name="signature_method_known"),
        CheckConstraint("(signed_at IS NULL) = (signature_method IS NULL)", name="signed_with_method"),
        CheckConstraint("signed_at IS NULL OR signed_name <> ''", name="signed_with_name"),
        CheckConstraint("signature_method <> 'online' OR signed_by_id IS NOT NULL", name="online_has_user"),
        CheckConstraint("countersigned_at IS NULL OR signed_at IS NOT NULL", name="countersigned_after_signing"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"), index=True)
    hire_conditions_id: Mapped[int] = mapped_column("terms_version_id", ForeignKey("terms_version.id"), index=True)
    # The PDF exactly as shown to the signer, and its SHA-256 (hex); frozen once signed.
    pdf: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    sha256: Mapped[str] = mapped_column(String(64))
    # The copy the hirer keeps: the same agreement with who signed, how and when in its signature boxes
    # (and the countersignature, once made). ``pdf`` and its hash stay the proof of what was read.
    signed_pdf: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    signed_at: Mapped[datetime | None]
    signed_name: Mapped[str] = mapped_column(String(200), default="")
    signature_method: Mapped[SignatureMethod | None] = mapped_column(enum_column(SignatureMethod, 8))
    signed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))  # the parent, online
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))  # staff, at the desk
    countersigned_at: Mapped[datetime | None]
    countersigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    loan: Mapped[Loan] = relationship()
    hire_conditions: Mapped[HireConditions] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    signed_by: Mapped[User | None] = relationship(foreign_keys=[signed_by_id])
    recorded_by: Mapped[User | None] = relationship(foreign_keys=[recorded_by_id])
    countersigned_by: Mapped[User | None] = relationship(foreign_keys=[countersigned_by_id])

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None


FROZEN_AGREEMENT_FIELDS = ("pdf", "sha256", "loan_id", "hire_conditions_id", "signed_at", "signed_name",
                           "signature_method", "signed_by_id", "recorded_by_id")


@event.listens_for(Agreement, "before_update")
def _signed_agreements_never_change(mapper, connection, agreement: Agreement) -> None:
    """Refuse any change to what was signed: a change makes a new agreement."""
    if get_history(agreement, "signed_at").deleted not in ([], [None], ()):
        raise ValueError("A signed agreement never changes.")
    if get_history(agreement, "signed_at").unchanged and agreement.signed_at is not None:
        for name in FROZEN_AGREEMENT_FIELDS:
            if get_history(agreement, name).has_changes():
                raise ValueError("A signed agreement never changes.")


class NoticeLetter(enum.StrEnum):
    REMINDER = "reminder"
    FINAL = "final"
    REPLACEMENT = "replacement"

    @property
    def label(self) -> str:
        return {"reminder": "Reminder", "final": "Final notice", "replacement": "Replacement cost"}[self.value]


class NoticeKind(enum.StrEnum):
    """What a notice chases: an instrument not returned, or an invoice not paid. Each has its own stages."""

    LOAN = "loan"
    INVOICE = "invoice"

    @property
    def label(self) -> str:
        return {"loan": "Overdue instruments", "invoice": "Unpaid invoices"}[self.value]


class NoticeStage(db.Model):
    """A stage of chasing an overdue loan (days after the due date, not counting school holidays) or an
    unpaid invoice (calendar days after it fell due): which letter goes when."""

    __tablename__ = "notice_stage"
    __table_args__ = (
        CheckConstraint("days_overdue > 0", name="days_positive"),
        values_check("letter", NoticeLetter, "letter_known"),
        values_check("kind", NoticeKind, "kind_known"),
        CheckConstraint("return_within_days IS NULL OR return_within_days > 0", name="return_within_positive"),
        # An invoice is never asked to be replaced: its stages are reminders and final notices.
        CheckConstraint("kind <> 'invoice' OR letter <> 'replacement'", name="invoice_letters"),
        UniqueConstraint("kind", "days_overdue", name="uq_notice_stage_kind_days"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[NoticeKind] = mapped_column(enum_column(NoticeKind, 8), default=NoticeKind.LOAN)
    name: Mapped[str] = mapped_column(String(60))
    days_overdue: Mapped[int]
    letter: Mapped[NoticeLetter] = mapped_column(enum_column(NoticeLetter, 16))
    return_within_days: Mapped[int | None]

    def __str__(self) -> str:
        return self.name


class NoticeChannel(enum.StrEnum):
    EMAIL = "email"
    POST = "post"  # printed with the day's letters


class NoticeStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # its email is in the outbox (mail_id); without one, a run stopped while sending it
    SENT = "sent"
    FAILED = "failed"


class Notice(db.Model):
    """One overdue letter about an individual loan or a set loan: its stage, date, channel and PDF."""

    __tablename__ = "notice"
    __table_args__ = (
        # One subject: a loan, a set loan or an invoice.
        CheckConstraint("(CASE WHEN loan_id IS NULL THEN 0 ELSE 1 END)"
                        " + (CASE WHEN set_loan_id IS NULL THEN 0 ELSE 1 END)"
                        " + (CASE WHEN invoice_id IS NULL THEN 0 ELSE 1 END) = 1", name="one_subject"),
        values_check("channel", NoticeChannel, "channel_known"),
        values_check("status", NoticeStatus, "status_known"),
        CheckConstraint("(status = 'sent') = (sent_at IS NOT NULL)", name="sent_when_sent"),
        # The same stage is never sent twice about the same loan.
        UniqueConstraint("loan_id", "stage_id", name="uq_notice_loan_stage"),
        UniqueConstraint("set_loan_id", "stage_id", name="uq_notice_set_loan_stage"),
        UniqueConstraint("invoice_id", "stage_id", name="uq_notice_invoice_stage"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loan.id"), index=True)
    set_loan_id: Mapped[int | None] = mapped_column(ForeignKey("set_loan.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"), index=True)  # an unpaid invoice
    stage_id: Mapped[int] = mapped_column(ForeignKey("notice_stage.id"), index=True)
    as_of: Mapped[date] = mapped_column(index=True)
    days_overdue: Mapped[int]
    channel: Mapped[NoticeChannel] = mapped_column(enum_column(NoticeChannel, 8))
    recipient_name: Mapped[str] = mapped_column(String(200))
    recipient_email: Mapped[str] = mapped_column(String(254), default="")
    status: Mapped[NoticeStatus] = mapped_column(enum_column(NoticeStatus, 8), default=NoticeStatus.PENDING)
    error: Mapped[str] = mapped_column(Text, default="")
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # The email that carries it (status "sending" while that mail waits in the outbox).
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_message.id"), index=True)

    loan: Mapped[Loan | None] = relationship()
    set_loan: Mapped[SetLoan | None] = relationship()
    invoice: Mapped[LedgerEntry | None] = relationship()
    stage: Mapped[NoticeStage] = relationship(lazy="joined")

    @property
    def subject_label(self) -> str:
        if self.invoice is not None:
            return f"Invoice {self.invoice.number}"
        if self.set_loan is not None:
            return str(self.set_loan)
        return f"{self.loan.instrument.asset_tag} {self.loan.instrument.description}"


class InvoiceDelivery(db.Model):
    """How an invoice reached its payer: emailed with its PDF, or printed with the term's letters.

    One row per invoice (unique), claimed before anything is sent, so an invoice is never sent
    twice however the sending overlaps; it moves pending -> sending (its email in the outbox) -> sent
    (or failed), as a notice does.
    """

    __tablename__ = "invoice_delivery"
    __table_args__ = (
        values_check("channel", NoticeChannel, "channel_known"),
        values_check("status", NoticeStatus, "status_known"),
        CheckConstraint("(status = 'sent') = (sent_at IS NOT NULL)", name="sent_when_sent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("ledger_entry.id"), unique=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("academic_term.id"), index=True)
    channel: Mapped[NoticeChannel] = mapped_column(enum_column(NoticeChannel, 8))
    recipient_email: Mapped[str] = mapped_column(String(254), default="")
    status: Mapped[NoticeStatus] = mapped_column(enum_column(NoticeStatus, 8), default=NoticeStatus.PENDING)
    error: Mapped[str] = mapped_column(Text, default="")
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_message.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]

    invoice: Mapped[LedgerEntry] = relationship()
