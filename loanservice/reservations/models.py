import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..borrowers.models import Pupil
from ..dbtypes import enum_column, sql_values, values_check
from ..extensions import db
from ..inventory.models import Instrument, InstrumentType
from ..loans.models import Loan
from ..timeutil import utcnow


class ReservationStatus(enum.StrEnum):
    WAITING = "waiting"  # on the waiting list for the type and size
    HELD = "held"  # an instrument is held for the child; staff are preparing it
    READY = "ready"  # ready to collect by a deadline
    COLLECTED = "collected"  # handed over: it became a loan
    LAPSED = "lapsed"  # not collected in time
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {
            "waiting": "On the waiting list",
            "held": "Instrument held, being prepared",
            "ready": "Ready to collect",
            "collected": "Collected",
            "lapsed": "Lapsed (not collected in time)",
            "cancelled": "Cancelled",
        }[self.value]

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATUSES


ACTIVE_STATUSES = (ReservationStatus.WAITING, ReservationStatus.HELD, ReservationStatus.READY)
HOLDING_STATUSES = (ReservationStatus.HELD, ReservationStatus.READY)


class WaitingListOrder(enum.StrEnum):
    FIRST_COME = "first_come"
    REMISSION_FIRST = "remission_first"

    @property
    def label(self) -> str:
        return {"first_come": "First come, first served",
                "remission_first": "Pupils with verified remission first, then first come, first served"}[self.value]


class Reservation(db.Model):
    """A parent's request for an instrument type and size for one child, from the waiting list to collection."""

    __tablename__ = "reservation"
    __table_args__ = (
        values_check("status", ReservationStatus, "status_known"),
        CheckConstraint("status <> 'waiting' OR instrument_id IS NULL", name="waiting_holds_nothing"),
        CheckConstraint(f"status NOT IN ({sql_values(HOLDING_STATUSES)}, 'collected') OR instrument_id IS NOT NULL",
                        name="held_has_instrument"),
        CheckConstraint("status <> 'ready' OR collect_by IS NOT NULL", name="ready_has_deadline"),
        CheckConstraint("status <> 'collected' OR loan_id IS NOT NULL", name="collected_has_loan"),
        # A specific instrument is held for at most one reservation, whatever the concurrency.
        Index("uq_reservation_holding_instrument", "instrument_id", unique=True,
              sqlite_where=db.text(f"status IN ({sql_values(HOLDING_STATUSES)})"),
              postgresql_where=db.text(f"status IN ({sql_values(HOLDING_STATUSES)})")),
        # One active reservation per child per instrument type.
        Index("uq_reservation_active_per_pupil_type", "pupil_id", "type_id", unique=True,
              sqlite_where=db.text(f"status IN ({sql_values(ACTIVE_STATUSES)})"),
              postgresql_where=db.text(f"status IN ({sql_values(ACTIVE_STATUSES)})")),
        # The waiting list for a type and size, in the order people joined it.
        Index("ix_reservation_type_size_status", "type_id", "size", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupil.id"), index=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("instrument_type.id"))
    size: Mapped[str] = mapped_column(String(16), default="")
    preferred_start_on: Mapped[date]
    status: Mapped[ReservationStatus] = mapped_column(enum_column(ReservationStatus, 16),
                                                     default=ReservationStatus.WAITING)
    instrument_id: Mapped[int | None] = mapped_column(ForeignKey("instrument.id"), index=True)
    collect_by: Mapped[date | None]
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loan.id"), unique=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    held_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    pupil: Mapped[Pupil] = relationship()
    instrument_type: Mapped[InstrumentType] = relationship()
    instrument: Mapped[Instrument | None] = relationship()
    loan: Mapped[Loan | None] = relationship()
    requested_by: Mapped[User | None] = relationship()

    @property
    def is_active(self) -> bool:
        return self.status.is_active

    @property
    def description(self) -> str:
        return f"{self.instrument_type.name} {self.size}".strip()

    def __str__(self) -> str:
        return f"Reservation {self.id}"


class WaitingListTurn(db.Model):
    """One row per type and size anyone has reserved, made on demand: whoever changes that waiting
    list (joins it, or is offered an instrument from it) locks the row first and holds it until
    commit, so the list's changes take turns and a place told is the place the list keeps."""

    __tablename__ = "waiting_list_turn"

    type_id: Mapped[int] = mapped_column(ForeignKey("instrument_type.id"), primary_key=True)
    size: Mapped[str] = mapped_column(String(16), primary_key=True)
