import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..dbtypes import enum_column, values_check
from ..extensions import db
from ..inventory.models import Instrument
from ..schools.models import School
from ..timeutil import utcnow


class Place(enum.StrEnum):
    """What a stocktake counts."""

    STORE = "store"  # everything recorded in the store
    SHELF = "shelf"  # one location (e.g. "Store / Shelf B2")
    SCHOOL = "school"  # what a school holds on loan (its sets)

    @property
    def label(self) -> str:
        return {"store": "The whole store", "shelf": "A shelf or location", "school": "A school's sets"}[self.value]


class Resolution(enum.StrEnum):
    """How staff put right what a stocktake found."""

    MOVED_HERE = "moved_here"
    MARKED_MISSING = "marked_missing"
    MARKED_FOUND = "marked_found"

    @property
    def label(self) -> str:
        return {"moved_here": "Moved here", "marked_missing": "Marked missing",
                "marked_found": "Marked found"}[self.value]


class Stocktake(db.Model):
    __tablename__ = "stocktake"
    __table_args__ = (
        values_check("place", Place, "place_known"),
        CheckConstraint("(place = 'shelf') = (location <> '')", name="location_for_shelf"),
        CheckConstraint("(place = 'school') = (school_id IS NOT NULL)", name="school_for_school"),
        CheckConstraint("finished_at IS NULL OR finished_at >= started_at", name="finished_after_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    place: Mapped[Place] = mapped_column(enum_column(Place, 16))
    location: Mapped[str] = mapped_column(String(120), default="")
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"), index=True)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    finished_at: Mapped[datetime | None]

    school: Mapped[School | None] = relationship()
    started_by: Mapped[User | None] = relationship(foreign_keys=[started_by_id])
    finished_by: Mapped[User | None] = relationship(foreign_keys=[finished_by_id])

    @property
    def is_open(self) -> bool:
        return self.finished_at is None

    @property
    def place_name(self) -> str:
        if self.place is Place.SHELF:
            return self.location
        if self.place is Place.SCHOOL:
            return f"{self.school.name} (sets held)"
        return "The whole store"


class StocktakeItem(db.Model):
    """An instrument a stocktake expected (recorded there when it started) or found (scanned), or both."""

    __tablename__ = "stocktake_item"
    __table_args__ = (
        UniqueConstraint("stocktake_id", "instrument_id"),
        values_check("resolution", Resolution, "resolution_known"),
        CheckConstraint("expected OR scanned_at IS NOT NULL", name="expected_or_scanned"),
        Index("ix_stocktake_item_instrument", "instrument_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    stocktake_id: Mapped[int] = mapped_column(ForeignKey("stocktake.id"))
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instrument.id"))
    expected: Mapped[bool] = mapped_column(default=False)
    scanned_at: Mapped[datetime | None]
    scanned_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    resolution: Mapped[Resolution | None] = mapped_column(enum_column(Resolution, 16))
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    instrument: Mapped[Instrument] = relationship()
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])
