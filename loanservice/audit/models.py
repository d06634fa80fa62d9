from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow

if TYPE_CHECKING:  # the audit trail sits below accounts: it names the user's table, never imports it
    from ..accounts.models import User


class AuditEvent(db.Model):
    """One change. Rows are never updated or deleted (the database refuses it too)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_instrument_at", "instrument_id", "id"),
        # The events about one thing (a family, a pupil, a loan): what privacy redacts and exports.
        Index("ix_audit_event_entity", "entity_type", "entity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[int | None]
    instrument_id: Mapped[int | None] = mapped_column(ForeignKey("instrument.id"))
    summary: Mapped[str] = mapped_column(String(500), default="")
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    actor: Mapped["User | None"] = relationship("User")
