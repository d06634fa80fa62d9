"""The retention policy, holds, anonymisation records, removed documents and subject access requests."""
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..borrowers.models import Family
from ..extensions import db
from ..timeutil import utcnow


class RetentionPolicy(db.Model):
    """How long the hub keeps personal data (one row, edited by admins); defaults follow school practice."""

    __tablename__ = "retention_policy"
    __table_args__ = (
        CheckConstraint("id = 1", name="one_row"),
        CheckConstraint("family_years BETWEEN 1 AND 100", name="family_years_range"),
        CheckConstraint("reservation_years BETWEEN 1 AND 100", name="reservation_years_range"),
        CheckConstraint("account_years BETWEEN 1 AND 100", name="account_years_range"),
        CheckConstraint("outbox_days BETWEEN 1 AND 3650", name="outbox_days_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    # Families, pupils, agreements, invoices and payments: years after the last loan ended and the account settled.
    family_years: Mapped[int] = mapped_column(default=6)
    # Reservations that never became loans.
    reservation_years: Mapped[int] = mapped_column(default=1)
    # Parent accounts with nothing else: years after the last sign-in.
    account_years: Mapped[int] = mapped_column(default=2)
    # Email bodies in the outbox.
    outbox_days: Mapped[int] = mapped_column(default=90)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class PrivacyHold(db.Model):
    """"Do not anonymise": a family kept whole for a reason (debt recovery, an insurance claim)."""

    __tablename__ = "privacy_hold"
    __table_args__ = (CheckConstraint("length(trim(reason)) > 0", name="reason_given"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    family: Mapped[Family] = relationship()
    created_by: Mapped[User | None] = relationship()


class FamilyAnonymisation(db.Model):
    """That a family's personal data was replaced, when, and why (retention or erasure on request)."""

    __tablename__ = "family_anonymisation"
    __table_args__ = (CheckConstraint("cause IN ('retention', 'erasure')", name="cause_known"),)

    family_id: Mapped[int] = mapped_column(ForeignKey("family.id"), primary_key=True)
    cause: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class RemovedDocument(db.Model):
    """A stored PDF deleted because it named an anonymised family: its date, kind and hash remain."""

    __tablename__ = "removed_document"
    __table_args__ = (CheckConstraint("length(sha256) = 64", name="sha256_length"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # agreement, signed agreement, notice
    document_id: Mapped[int]
    dated: Mapped[date]
    sha256: Mapped[str] = mapped_column(String(64))
    removed_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccessRequest(db.Model):
    """A subject access request: who asked about which family, when, and the deadline to answer."""

    __tablename__ = "access_request"
    __table_args__ = (
        CheckConstraint("due_on > received_on", name="due_after_received"),
        CheckConstraint("extended_to IS NULL OR (extended_to > due_on AND length(trim(extension_reason)) > 0)",
                        name="extension_with_reason"),
        CheckConstraint("answered_on IS NULL OR answered_on >= received_on", name="answered_after_received"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id"), index=True)
    requester_name: Mapped[str] = mapped_column(String(200))
    relationship_to_child: Mapped[str] = mapped_column(String(100))
    received_on: Mapped[date]
    due_on: Mapped[date]
    extended_to: Mapped[date | None]
    extension_reason: Mapped[str] = mapped_column(Text, default="")
    answered_on: Mapped[date | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    family: Mapped[Family] = relationship()

    @property
    def deadline(self) -> date:
        return self.extended_to or self.due_on


class PrivacyNotice(db.Model):
    """One version of the hub's privacy notice; an edit makes the next version (like the hire conditions)."""

    __tablename__ = "privacy_notice"
    __table_args__ = (CheckConstraint("version > 0", name="version_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    @property
    def paragraphs(self) -> list[str]:
        return [p.strip() for p in self.text.replace("\r\n", "\n").split("\n\n") if p.strip()]


class PrivacyNoticeAcceptance(db.Model):
    """The version of the privacy notice a parent accepted, and when."""

    __tablename__ = "privacy_notice_acceptance"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("privacy_notice.id"), primary_key=True)
    accepted_at: Mapped[datetime] = mapped_column(default=utcnow)

    notice: Mapped[PrivacyNotice] = relationship()
