import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..dbtypes import enum_column, values_check
from ..extensions import db
from ..inventory.models import InstrumentType
from ..timeutil import utcnow


class Schedule(enum.StrEnum):
    """When a plan's service falls due."""

    EVERY_SUMMER = "every_summer"  # once each summer holiday (July and August), when sets are back
    EVERY_MONTHS = "every_months"  # every so many months after the last one (a PAT test every 12)
    AT_RETURN = "at_return"  # after every loan, before the next (a hygiene clean for wind)

    @property
    def label(self) -> str:
        return {"every_summer": "Every summer", "every_months": "Every few months",
                "at_return": "At every return"}[self.value]


class ServicePlan(db.Model):
    """A routine service an instrument type needs, set by the admin (e.g. violins: restring every summer)."""

    __tablename__ = "service_plan"
    __table_args__ = (
        values_check("schedule", Schedule, "schedule_known"),
        CheckConstraint("(schedule = 'every_months') = (interval_months IS NOT NULL)", name="interval_for_months"),
        CheckConstraint("interval_months IS NULL OR interval_months BETWEEN 1 AND 120", name="interval_range"),
        UniqueConstraint("type_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("instrument_type.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    schedule: Mapped[Schedule] = mapped_column(enum_column(Schedule, 16))
    interval_months: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    instrument_type: Mapped[InstrumentType] = relationship(lazy="joined")

    @property
    def when(self) -> str:
        if self.schedule is Schedule.EVERY_MONTHS:
            return f"Every {self.interval_months} months" if self.interval_months != 1 else "Every month"
        return self.schedule.label

    def __str__(self) -> str:
        return f"{self.name} ({self.instrument_type.name}, {self.when.lower()})"
