import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..dbtypes import enum_column, values_check
from ..extensions import db, postgresql_only
from ..timeutil import utcnow


class InstrumentFamily(enum.StrEnum):
    """The instrument family a type belongs to (strings, brass...); not a household (borrowers.Family)."""

    STRINGS = "strings"
    WOODWIND = "woodwind"
    BRASS = "brass"
    PERCUSSION = "percussion"
    KEYBOARD = "keyboard"
    ELECTRIC = "electric"
    ADAPTIVE = "adaptive"

    @property
    def label(self) -> str:
        return "Adaptive / SEND" if self is InstrumentFamily.ADAPTIVE else self.value.capitalize()


class InstrumentStatus(enum.StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"  # held in the store for a child's reservation
    # Held in the store for a loan waiting for its signed agreement (REQUIRE_SIGNED_AGREEMENT).
    AWAITING_AGREEMENT = "awaiting_signing"
    ON_LOAN = "on_loan"
    IN_REPAIR = "in_repair"
    # Being serviced (restrung, cleaned, PAT-tested) by the store or its technician: a Repair of kind service.
    IN_SERVICE = "in_service"
    MISSING = "missing"
    WRITTEN_OFF = "written_off"

    @property
    def label(self) -> str:
        if self is InstrumentStatus.AWAITING_AGREEMENT:
            return "Held for signed agreement"
        if self is InstrumentStatus.IN_SERVICE:
            return "In servicing"
        return self.value.replace("_", " ").capitalize()


class RepairKind(enum.StrEnum):
    """What took an instrument out of use: a repair of a fault, or routine servicing under a plan.

    Both are the same record (who took it, what was done, the cost, when it was back): one history.
    """

    REPAIR = "repair"
    SERVICE = "service"

    @property
    def label(self) -> str:
        return "Servicing" if self is RepairKind.SERVICE else "Repair"


class CheckReason(enum.StrEnum):
    INTAKE = "intake"
    ISSUE = "issue"
    RETURN = "return"
    INSPECTION = "inspection"
    REPAIR = "repair"

    @property
    def label(self) -> str:
        return {"repair": "Back from repair"}.get(self.value, self.value.capitalize())


class TagKind(enum.StrEnum):
    """What a label's tag names: an instrument or a classroom set (``/i/<TAG>`` leads to either)."""

    INSTRUMENT = "instrument"
    SET = "set"


# The fixed condition scale, shown everywhere the grade is.
CONDITION_GRADES = {
    1: "Excellent",
    2: "Good",
    3: "Fair",
    4: "Poor",
    5: "Unusable",
}


TAG_TYPE = String(32).with_variant(String(32, collation="C"), "postgresql")


class InstrumentType(db.Model):
    __tablename__ = "instrument_type"
    __table_args__ = (
        values_check("family", InstrumentFamily, "family_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    family: Mapped[InstrumentFamily] = mapped_column(enum_column(InstrumentFamily, 16))
    # The sizes it comes in, smallest first, e.g. ["1/16", ..., "4/4"]; empty for one size.
    sizes: Mapped[list[str]] = mapped_column(JSON, default=list)
    hire_band: Mapped[str] = mapped_column(String(8), default="A")
    default_accessories: Mapped[str] = mapped_column(String(300), default="")

    def __str__(self) -> str:
        return self.name


class AssetTag(db.Model):
    """Every tag a label carries, once: an instrument's or a classroom set's.

    Instruments and sets share one namespace, so the tag is the primary key here, and each holder
    refers to (tag, kind) with its own kind fixed by a CHECK: a set cannot take an instrument's tag,
    nor an instrument a set's, whatever the concurrency. The services claim the row (inventory.services.claim_tag).
    """

    __tablename__ = "asset_tag"
    __table_args__ = (
        values_check("kind", TagKind, "kind_known"),
        # The target of the holders' (tag, kind) foreign keys; the primary key alone keeps tags apart.
        UniqueConstraint("tag", "kind"),
    )

    tag: Mapped[str] = mapped_column(TAG_TYPE, primary_key=True)
    kind: Mapped[TagKind] = mapped_column(enum_column(TagKind, 16))


def registered_tag(column: str, kind: TagKind) -> tuple:
    """Table arguments that make ``column`` a tag registered in asset_tag as ``kind``'s: the foreign key
    (column, tag_kind) -> asset_tag (tag, kind), with tag_kind a constant the database fills and checks.
    Leave tag_kind out of the mapper (exclude_properties): there is nothing in it for Python to read or set.
    """
    return (
        Column("tag_kind", String(16), nullable=False, server_default=kind.value),
        CheckConstraint(f"tag_kind = '{kind}'", name=f"tag_kind_{kind}"),
        ForeignKeyConstraint([column, "tag_kind"], ["asset_tag.tag", "asset_tag.kind"]),
    )


class AssetTagCounter(db.Model):
    """The last number issued for a tag prefix; its row lock serialises tag generation."""

    __tablename__ = "asset_tag_counter"

    prefix: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_value: Mapped[int] = mapped_column(default=0)


# The columns a free-text search matches anywhere inside, in any case (ILIKE '%word%').
SUBSTRING_SEARCHED = ("serial_number", "make", "model", "location")


def _search_indexes() -> list[Index]:
    """PostgreSQL indexes that answer every alternative of a free-text search word.

    A trigram GIN index serves ILIKE '%word%' on the plain column (the query's own
    expression); with one on each column searched, and a B-tree for the size, PostgreSQL
    combines them (BitmapOr) instead of reading every row for the page's COUNT. The tag's
    prefix and the type are served by the unique tag index and ix_instrument_type_size.
    SQLite has no such index and keeps scanning (see bench/README.md).
    """
    trigram = [
        Index(f"ix_instrument_{column}_trgm", column,
              postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})
        for column in SUBSTRING_SEARCHED
    ]
    return [postgresql_only(index) for index in [*trigram, Index("ix_instrument_size", "size")]]


class Instrument(db.Model):
    __tablename__ = "instrument"
    __mapper_args__ = {"exclude_properties": ["tag_kind"]}
    __table_args__ = (
        values_check("status", InstrumentStatus, "status_known"),
        CheckConstraint("condition_grade BETWEEN 1 AND 5", name="condition_grade_range"),
        CheckConstraint("purchase_cost IS NULL OR purchase_cost >= 0", name="purchase_cost_positive"),
        CheckConstraint(
            "replacement_value IS NULL OR replacement_value >= 0", name="replacement_value_positive"
        ),
        CheckConstraint(
            "status <> 'written_off' OR status_reason <> ''", name="write_off_has_reason"
        ),
        CheckConstraint("disposal_proceeds IS NULL OR disposal_proceeds >= 0", name="disposal_proceeds_positive"),
        *registered_tag("asset_tag", TagKind.INSTRUMENT),
        Index("ix_instrument_type_size", "type_id", "size"),
        # Each serves a filter or sort of the list page with its tie-break on the tag,
        # so a page of 100,000 instruments is read from the index, not sorted.
        Index("ix_instrument_status_tag", "status", "asset_tag"),
        Index("ix_instrument_location_tag", "location", "asset_tag"),
        Index("ix_instrument_condition_tag", "condition_grade", "asset_tag"),
        *_search_indexes(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Tags are codes: byte order ("C" collation on PostgreSQL, SQLite's default) lets a
    # prefix search be an index range whatever the database's locale.
    asset_tag: Mapped[str] = mapped_column(TAG_TYPE, unique=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("instrument_type.id"))
    size: Mapped[str] = mapped_column(String(16), default="")
    make: Mapped[str] = mapped_column(String(100), default="", index=True)
    model: Mapped[str] = mapped_column(String(100), default="")
    serial_number: Mapped[str] = mapped_column(String(100), default="", index=True)
    accessories: Mapped[str] = mapped_column(String(300), default="")
    location: Mapped[str] = mapped_column(String(120), default="Store")
    status: Mapped[InstrumentStatus] = mapped_column(enum_column(InstrumentStatus, 16),
                                                     default=InstrumentStatus.AVAILABLE)
    status_reason: Mapped[str] = mapped_column(String(300), default="")
    condition_grade: Mapped[int] = mapped_column(default=2)
    purchased_on: Mapped[date | None]
    purchase_cost: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    funding_source: Mapped[str] = mapped_column(String(100), default="")
    replacement_value: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    send_adapted: Mapped[bool] = mapped_column(default=False)
    pat_due_on: Mapped[date | None]
    # Disposal, for the capital-grant asset register: the day it was written off and what it fetched.
    disposed_on: Mapped[date | None]
    disposal_proceeds: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    notes: Mapped[str] = mapped_column(Text, default="")
    labelled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # Inner join on its own; chained after an outer join (a reservation's held instrument, a loan's
    # instrument loaded with it) a flat LEFT JOIN instead of a nested "a LEFT JOIN (b JOIN c)", which
    # SQLite answers by building the whole instrument table each time (0.4 s at 100,000 instruments).
    type: Mapped[InstrumentType] = relationship(lazy="joined", innerjoin="unnested")

    @property
    def condition_label(self) -> str:
        return CONDITION_GRADES[self.condition_grade]

    @property
    def accessory_list(self) -> list[str]:
        return [item.strip() for item in self.accessories.split(",") if item.strip()]

    @property
    def description(self) -> str:
        return f"{self.type.name} {self.size}".strip()

    def __str__(self) -> str:
        return f"{self.asset_tag} ({self.description})"


class InstrumentCount(db.Model):
    """The day a stocktake last found an instrument (scanned it), for its page and the asset register."""

    __tablename__ = "instrument_count"

    instrument_id: Mapped[int] = mapped_column(ForeignKey("instrument.id"), primary_key=True)
    last_counted_on: Mapped[date]


class ConditionCheck(db.Model):
    __tablename__ = "condition_check"
    __table_args__ = (
        CheckConstraint("grade BETWEEN 1 AND 5", name="grade_range"),
        values_check("reason", CheckReason, "reason_known"),
        Index("ix_condition_check_instrument_at", "instrument_id", "checked_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instrument.id"))
    grade: Mapped[int]
    reason: Mapped[CheckReason] = mapped_column(enum_column(CheckReason, 16))
    note: Mapped[str] = mapped_column(Text, default="")
    checked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)

    checked_by: Mapped[User | None] = relationship()

    @property
    def grade_label(self) -> str:
        return CONDITION_GRADES[self.grade]


class Repair(db.Model):
    __tablename__ = "repair"
    __table_args__ = (
        CheckConstraint("expected_cost IS NULL OR expected_cost >= 0", name="expected_cost_positive"),
        CheckConstraint("actual_cost IS NULL OR actual_cost >= 0", name="actual_cost_positive"),
        CheckConstraint("returned_on IS NULL OR returned_on >= sent_on", name="returned_after_sent"),
        values_check("kind", RepairKind, "kind_known"),
        # At most one open repair (or servicing) per instrument, whatever the concurrency.
        Index(
            "uq_repair_open_per_instrument",
            "instrument_id",
            unique=True,
            sqlite_where=db.text("returned_on IS NULL"),
            postgresql_where=db.text("returned_on IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instrument.id"), index=True)
    kind: Mapped[RepairKind] = mapped_column(enum_column(RepairKind, 16), default=RepairKind.REPAIR,
                                             server_default=RepairKind.REPAIR.value)
    # The service plan a servicing was done under (servicing.models.ServicePlan); none for a repair.
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("service_plan.id", ondelete="SET NULL"), index=True)
    repairer: Mapped[str] = mapped_column(String(200))
    fault: Mapped[str] = mapped_column(Text, default="")
    sent_on: Mapped[date]
    expected_back_on: Mapped[date | None]
    expected_cost: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    returned_on: Mapped[date | None]
    actual_cost: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    work_done: Mapped[str] = mapped_column(Text, default="")
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    returned_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    instrument: Mapped[Instrument] = relationship()
    sent_by: Mapped[User | None] = relationship(foreign_keys=[sent_by_id])
    returned_by: Mapped[User | None] = relationship(foreign_keys=[returned_by_id])

    @property
    def is_open(self) -> bool:
        return self.returned_on is None


class PhotoStage(enum.StrEnum):
    """When a condition photo was taken."""

    CHECK_IN = "check_in"
    INSPECTION = "inspection"
    REPAIR_SENT = "repair_sent"
    REPAIR_BACK = "repair_back"

    @property
    def label(self) -> str:
        return {"check_in": "At check-in", "inspection": "At inspection", "repair_sent": "Sent to repair",
                "repair_back": "Back from repair"}[self.value]


class ConditionPhoto(db.Model):
    """A photo of an instrument's condition, with what it belongs to; its bytes are in ``PhotoData``.

    In the database, so that any app server can serve it and a backup holds it; the bytes in a table
    of their own, so that listing photos never reads them.
    """

    __tablename__ = "condition_photo"
    __table_args__ = (
        values_check("stage", PhotoStage, "stage_known"),
        CheckConstraint("byte_size > 0", name="byte_size_positive"),
        CheckConstraint("width > 0 AND height > 0", name="dimensions_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instrument.id"), index=True)
    stage: Mapped[PhotoStage] = mapped_column(enum_column(PhotoStage, 16))
    condition_check_id: Mapped[int | None] = mapped_column(ForeignKey("condition_check.id"), index=True)
    repair_id: Mapped[int | None] = mapped_column(ForeignKey("repair.id"), index=True)
    # The loan it came back from (a check-in): its damage note shows the photos. Named, not imported:
    # loans sit above the inventory.
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loan.id"), index=True)
    content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int]
    height: Mapped[int]
    byte_size: Mapped[int]
    taken_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)

    taken_by: Mapped[User | None] = relationship()


class PhotoData(db.Model):
    """A condition photo's bytes (resized, metadata stripped)."""

    __tablename__ = "photo_data"

    photo_id: Mapped[int] = mapped_column(ForeignKey("condition_photo.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
