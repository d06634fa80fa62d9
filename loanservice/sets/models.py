from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..borrowers.models import Family, Pupil
from ..extensions import db
from ..inventory.models import Instrument, TagKind, registered_tag
from ..schools.models import School
from ..timeutil import utcnow


class ClassroomSet(db.Model):
    """A named group of specific instruments, e.g. "Ukulele set A", with its own label tag."""

    __tablename__ = "classroom_set"
    __table_args__ = registered_tag("tag", TagKind.SET)
    __mapper_args__ = {"exclude_properties": ["tag_kind"]}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    tag: Mapped[str] = mapped_column(String(32), unique=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    items: Mapped[list["ClassroomSetItem"]] = relationship(
        back_populates="classroom_set", cascade="all, delete-orphan", order_by="ClassroomSetItem.id"
    )

    def __str__(self) -> str:
        return f"{self.name} ({self.tag})"


class ClassroomSetItem(db.Model):
    __tablename__ = "classroom_set_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("classroom_set.id"), index=True)
    # An instrument belongs to at most one set.
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instrument.id"), unique=True)

    classroom_set: Mapped[ClassroomSet] = relationship(back_populates="items")
    instrument: Mapped[Instrument] = relationship()


class SetLoan(db.Model):
    """A whole set lent to a school; each item has its own Loan pointing here."""

    __tablename__ = "set_loan"
    __table_args__ = (
        CheckConstraint("due_on >= started_on", name="due_after_start"),
        CheckConstraint("closed_on IS NULL OR closed_on >= started_on", name="closed_after_start"),
        CheckConstraint("item_count > 0", name="has_items"),
        CheckConstraint("pupils IS NULL OR pupils > 0", name="pupils_positive"),
        CheckConstraint("year_group IS NULL OR year_group BETWEEN 0 AND 13", name="year_group_range"),
        # A set is out to one school at a time.
        Index(
            "uq_set_loan_open_per_set",
            "set_id",
            unique=True,
            sqlite_where=db.text("closed_on IS NULL"),
            postgresql_where=db.text("closed_on IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("classroom_set.id"), index=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"), index=True)
    started_on: Mapped[date]
    due_on: Mapped[date]
    # Closed when every item is back or accounted for (lost).
    closed_on: Mapped[date | None]
    item_count: Mapped[int]
    # The class taught with it (whole-class ensemble teaching), when the school says: the pupils counted
    # in the funders' data return (the number of instruments when not given) and their year group.
    pupils: Mapped[int | None]
    year_group: Mapped[int | None]
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    classroom_set: Mapped[ClassroomSet] = relationship()
    school: Mapped[School] = relationship()
    issued_by: Mapped[User | None] = relationship()

    @property
    def is_open(self) -> bool:
        return self.closed_on is None

    def __str__(self) -> str:
        return f"{self.classroom_set.name} at {self.school.name}"


class TakeHome(db.Model):
    """A set instrument lent on to a pupil of the school: the family is responsible until it is back."""

    __tablename__ = "take_home"
    __table_args__ = (
        CheckConstraint("due_on >= started_on", name="due_after_start"),
        CheckConstraint("returned_on IS NULL OR returned_on >= started_on", name="returned_after_start"),
        CheckConstraint("agreement_signed_on <= started_on", name="agreement_before_start"),
        # An instrument is at one pupil's home at a time.
        Index(
            "uq_take_home_open_per_instrument",
            "instrument_id",
            unique=True,
            sqlite_where=db.text("returned_on IS NULL"),
            postgresql_where=db.text("returned_on IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    set_loan_id: Mapped[int] = mapped_column(ForeignKey("set_loan.id"), index=True)
    # The school's loan of the item, which stays open: to the hub, the school still holds it.
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"), index=True)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instrument.id"))
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupil.id"), index=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id"), index=True)  # the hirer who signed
    agreement_signed_on: Mapped[date]
    started_on: Mapped[date]
    due_on: Mapped[date]
    returned_on: Mapped[date | None]
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    instrument: Mapped[Instrument] = relationship()
    pupil: Mapped[Pupil] = relationship()
    family: Mapped[Family] = relationship()
    issued_by: Mapped[User | None] = relationship()

    @property
    def is_open(self) -> bool:
        return self.returned_on is None
