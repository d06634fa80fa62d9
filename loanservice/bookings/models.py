"""A school's booking of a classroom set for a future period, and the calendar feeds that show them."""
import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..dbtypes import enum_column, sql_values, values_check
from ..extensions import db
from ..inventory.models import InstrumentType
from ..schools.models import School
from ..sets.models import ClassroomSet, SetLoan
from ..timeutil import utcnow


class BookingStatus(enum.StrEnum):
    REQUESTED = "requested"  # the school asked; the store has not answered yet
    ALLOCATED = "allocated"  # accepted, with a set allocated for the dates
    DECLINED = "declined"  # refused, with a reason the school sees
    DELIVERED = "delivered"  # the set is at the school: it became a set loan
    COLLECTED = "collected"  # the store has collected it (its items are checked in by scan)
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {
            "requested": "Asked for, waiting for the store",
            "allocated": "Accepted: set allocated",
            "declined": "Declined",
            "delivered": "Delivered",
            "collected": "Collected",
            "cancelled": "Cancelled",
        }[self.value]


# The bookings that hold their set for their dates (the exclusion constraint's WHERE).
HOLDING = (BookingStatus.ALLOCATED, BookingStatus.DELIVERED)


class Booking(db.Model):
    """A school's booking of a set of one instrument type for a period (a term or a school year).

    ``ends_on`` is the last day of the period, the day the set loan falls due. On PostgreSQL an
    exclusion constraint (migration 0020) keeps two holding bookings of one set from overlapping:
    ``daterange(starts_on, ends_on + 1, '[)')``; the service checks the same for its message and SQLite.
    """

    __tablename__ = "booking"
    __table_args__ = (
        values_check("status", BookingStatus, "status_known"),
        CheckConstraint("ends_on >= starts_on", name="ends_after_start"),
        CheckConstraint("pupils > 0", name="has_pupils"),
        CheckConstraint("status <> 'declined' OR decline_reason <> ''", name="declined_has_reason"),
        CheckConstraint(f"status NOT IN ({sql_values(HOLDING)}, 'collected') OR set_id IS NOT NULL",
                        name="allocated_has_set"),
        CheckConstraint("collection_on IS NULL OR delivery_on IS NULL OR collection_on >= delivery_on",
                        name="collection_after_delivery"),
        CheckConstraint("collected_on IS NULL OR (delivered_on IS NOT NULL AND collected_on >= delivered_on)",
                        name="collected_after_delivered"),
        Index("ix_booking_set_dates", "set_id", "starts_on"),
        Index("ix_booking_status_delivery", "status", "delivery_on"),
        Index("ix_booking_status_collection", "status", "collection_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"), index=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("instrument_type.id"), index=True)
    pupils: Mapped[int]
    sizes: Mapped[str] = mapped_column(String(200), default="")  # e.g. "10 x 1/4, 20 x 1/2" for strings
    teacher: Mapped[str] = mapped_column(String(200), default="")
    period: Mapped[str] = mapped_column(String(80))  # e.g. "Spring 2027" or "School year 2027/28"
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    preferred_week: Mapped[date | None]  # the Monday of the week the school would like it delivered
    notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[BookingStatus] = mapped_column(enum_column(BookingStatus, 16), default=BookingStatus.REQUESTED)
    decline_reason: Mapped[str] = mapped_column(String(500), default="")
    set_id: Mapped[int | None] = mapped_column(ForeignKey("classroom_set.id"))
    delivery_on: Mapped[date | None]  # planned
    collection_on: Mapped[date | None]  # planned
    delivered_on: Mapped[date | None]
    collected_on: Mapped[date | None]
    set_loan_id: Mapped[int | None] = mapped_column(ForeignKey("set_loan.id"), unique=True)
    collection_reminded_on: Mapped[date | None]
    # A booking confirmed again for next year points at the one it rolls over (once only).
    rolled_from_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"), unique=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    school: Mapped[School] = relationship()
    instrument_type: Mapped[InstrumentType] = relationship()
    classroom_set: Mapped[ClassroomSet | None] = relationship()
    set_loan: Mapped[SetLoan | None] = relationship()
    requested_by: Mapped[User | None] = relationship()

    @property
    def holds_set(self) -> bool:
        return self.status in HOLDING

    def __str__(self) -> str:
        return f"{self.instrument_type.name} set for {self.school.name}, {self.period}"


class CalendarFeed(db.Model):
    """A secret calendar URL: one per school (its bookings) and one for the store (``key`` "store")."""

    __tablename__ = "calendar_feed"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)  # "store" or "school-<id>"
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
