import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..borrowers.models import CLAIMABLE_CATEGORIES, Family, OtherBorrower, Pupil, borrower_kind
from ..dbtypes import enum_column, sql_values, values_check
from ..extensions import db
from ..inventory.models import CONDITION_GRADES, Instrument
from ..schools.models import School
from ..timeutil import utcnow


class LoanStatus(enum.StrEnum):
    OPEN = "open"
    RETURNED = "returned"
    EXCHANGED = "exchanged"  # returned as part of a size exchange; the next loan links back
    LOST = "lost"  # lost or stolen: the replacement value is owed
    # Held for the borrower until the agreement is signed (the REQUIRE_SIGNED_AGREEMENT setting);
    # nothing is charged or chased until it is issued and becomes open.
    PENDING = "pending"
    CANCELLED = "cancelled"  # a pending loan called off before issue: the instrument was released

    @property
    def label(self) -> str:
        return {"pending": "Awaiting signed agreement", "open": "On loan", "returned": "Returned",
                "exchanged": "Exchanged for next size", "lost": "Lost or stolen",
                "cancelled": "Cancelled before issue"}[self.value]


# The loans that hold their instrument: closed_on is empty exactly for these (a check constraint).
HOLDING_STATUSES = (LoanStatus.OPEN, LoanStatus.PENDING)


BORROWER_COLUMNS = ("pupil_id", "family_id", "school_id", "other_borrower_id")


class AcademicTerm(db.Model):
    """A term of the school year; loans fall due at the end of one by default."""

    __tablename__ = "academic_term"
    __table_args__ = (CheckConstraint("ends_on > starts_on", name="ends_after_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)  # e.g. "Autumn 2026"
    starts_on: Mapped[date] = mapped_column(index=True)
    ends_on: Mapped[date] = mapped_column(index=True)

    closures: Mapped[list["TermClosure"]] = relationship(
        back_populates="term", cascade="all, delete-orphan", order_by="TermClosure.starts_on")

    def __str__(self) -> str:
        return self.name


class TermClosure(db.Model):
    """Days inside a term when schools are closed (a half-term, an INSET day): not days of term,
    so not overdue."""

    __tablename__ = "term_closure"
    __table_args__ = (CheckConstraint("ends_on >= starts_on", name="ends_after_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("academic_term.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(60))  # e.g. "Half-term"
    starts_on: Mapped[date]
    ends_on: Mapped[date]

    term: Mapped[AcademicTerm] = relationship(back_populates="closures")

    def __str__(self) -> str:
        return self.name


class Loan(db.Model):
    """One instrument lent to exactly one borrower, from issue until it is back (or lost)."""

    __tablename__ = "loan"
    __table_args__ = (
        CheckConstraint(
            " + ".join(f"(CASE WHEN {column} IS NULL THEN 0 ELSE 1 END)" for column in BORROWER_COLUMNS) + " = 1",
            name="one_borrower",
        ),
        values_check("status", LoanStatus, "status_known"),
        CheckConstraint("due_on >= started_on", name="due_after_start"),
        CheckConstraint("closed_on IS NULL OR closed_on >= started_on", name="closed_after_start"),
        CheckConstraint(f"(status IN ({sql_values(HOLDING_STATUSES)})) = (closed_on IS NULL)",
                        name="open_until_closed"),
        CheckConstraint("condition_at_issue BETWEEN 1 AND 5", name="issue_grade_range"),
        CheckConstraint("condition_at_return IS NULL OR condition_at_return BETWEEN 1 AND 5",
                        name="return_grade_range"),
        CheckConstraint("status <> 'returned' OR condition_at_return IS NOT NULL", name="return_has_condition"),
        CheckConstraint("fee_per_term >= 0 AND charge_per_term >= 0 AND deposit >= 0", name="money_positive"),
        CheckConstraint("charge_per_term <= fee_per_term", name="charge_within_fee"),
        CheckConstraint("replacement_owed IS NULL OR replacement_owed >= 0", name="replacement_positive"),
        # One loan holding each instrument (open, or pending its agreement), whatever the concurrency.
        Index(
            "uq_loan_open_per_instrument",
            "instrument_id",
            unique=True,
            sqlite_where=db.text("closed_on IS NULL"),
            postgresql_where=db.text("closed_on IS NULL"),
        ),
        # The overdue list reads only open loans (this also covers the few pending ones).
        Index(
            "ix_loan_open_due",
            "due_on",
            sqlite_where=db.text("closed_on IS NULL"),
            postgresql_where=db.text("closed_on IS NULL"),
        ),
        # The reports count loans out in a period (started by its end, closed after its start).
        Index("ix_loan_started_on", "started_on"),
        Index("ix_loan_closed_on", "closed_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instrument.id"), index=True)
    pupil_id: Mapped[int | None] = mapped_column(ForeignKey("pupil.id"), index=True)
    family_id: Mapped[int | None] = mapped_column(ForeignKey("family.id"), index=True)
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"), index=True)
    other_borrower_id: Mapped[int | None] = mapped_column(ForeignKey("other_borrower.id"), index=True)
    # Set when the loan is one item of a classroom set lent to a school.
    set_loan_id: Mapped[int | None] = mapped_column(ForeignKey("set_loan.id"), index=True)
    # A size exchange closes one loan and opens the next, linked back to it.
    exchanged_from_id: Mapped[int | None] = mapped_column(ForeignKey("loan.id"), unique=True)

    status: Mapped[LoanStatus] = mapped_column(enum_column(LoanStatus, 16), default=LoanStatus.OPEN)
    started_on: Mapped[date]
    due_on: Mapped[date]
    # The day it came back, was exchanged, was declared lost, or (pending) was cancelled.
    closed_on: Mapped[date | None]

    accessories: Mapped[str] = mapped_column(String(300), default="")
    condition_at_issue: Mapped[int]
    condition_at_return: Mapped[int | None]
    damaged: Mapped[bool] = mapped_column(default=False)
    return_note: Mapped[str] = mapped_column(Text, default="")

    # Copied at issue, so a later change of price or eligibility does not rewrite history.
    fee_per_term: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.00"))
    remission_category: Mapped[str] = mapped_column(String(32), default="none")
    charge_per_term: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.00"))
    deposit: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.00"))
    replacement_owed: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    # The pupil's circumstances when the loan was made, for the funders' aggregate figures: a year group
    # moves on each September, and anonymising a family clears its children's SEND flags.
    pupil_year_group: Mapped[int | None]
    pupil_send: Mapped[bool] = mapped_column(default=False, server_default=sa_false())

    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    instrument: Mapped[Instrument] = relationship()
    pupil: Mapped[Pupil | None] = relationship()
    family: Mapped[Family | None] = relationship()
    school: Mapped[School | None] = relationship()
    other_borrower: Mapped[OtherBorrower | None] = relationship()
    exchanged_from: Mapped["Loan | None"] = relationship(remote_side=[id])
    issued_by: Mapped[User | None] = relationship(foreign_keys=[issued_by_id])
    closed_by: Mapped[User | None] = relationship(foreign_keys=[closed_by_id])

    @property
    def borrower(self) -> Pupil | Family | School | OtherBorrower:
        return self.pupil or self.family or self.school or self.other_borrower

    @property
    def contact(self) -> tuple[str, str]:
        """Who to chase, and how: (email, phone) of the hirer (a pupil's family) or the school."""
        borrower = self.borrower
        if isinstance(borrower, Pupil):
            borrower = borrower.family
        if borrower is None:
            return "", ""
        if isinstance(borrower, School):
            return borrower.contact_email, borrower.phone
        return getattr(borrower, "email", ""), getattr(borrower, "phone", "")

    @property
    def borrower_kind(self) -> str:
        return borrower_kind(self.borrower)

    @property
    def is_open(self) -> bool:
        """Issued and not yet back: the instrument is with the borrower."""
        return self.status is LoanStatus.OPEN

    @property
    def is_pending(self) -> bool:
        """Held for the borrower until the agreement is signed; not issued yet."""
        return self.status is LoanStatus.PENDING

    @property
    def is_closed(self) -> bool:
        """Ended: back, exchanged, lost, or cancelled before issue."""
        return self.closed_on is not None

    @property
    def has_remission(self) -> bool:
        return self.remission_category != "none"

    @property
    def accessory_list(self) -> list[str]:
        """The accessories issued with the instrument (case, bow, rosin...), to check at its return."""
        return [item.strip() for item in self.accessories.split(",") if item.strip()]

    @property
    def issue_condition_label(self) -> str:
        return CONDITION_GRADES[self.condition_at_issue]

    def is_overdue(self, on: date) -> bool:
        return self.is_open and self.due_on < on

    def __str__(self) -> str:
        return f"Loan {self.id}"


class ChargeStatus(enum.StrEnum):
    OWED = "owed"
    PAID = "paid"
    WAIVED = "waived"  # remission, or written off by a manager

    @property
    def label(self) -> str:
        return self.value.capitalize()


class LoanCharge(db.Model):
    """What one loan costs for one term it runs in (any part of a term counts as the whole)."""

    __tablename__ = "loan_charge"
    __table_args__ = (
        UniqueConstraint("loan_id", "term_id", name="uq_loan_charge_loan_term"),
        values_check("status", ChargeStatus, "status_known"),
        CheckConstraint("amount >= 0", name="amount_positive"),
        CheckConstraint("(status = 'owed') = (settled_on IS NULL)", name="settled_unless_owed"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"))
    term_id: Mapped[int] = mapped_column(ForeignKey("academic_term.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    status: Mapped[ChargeStatus] = mapped_column(enum_column(ChargeStatus, 8), default=ChargeStatus.OWED)
    settled_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    loan: Mapped[Loan] = relationship()
    term: Mapped[AcademicTerm] = relationship()


class FeeBand(db.Model):
    """What the hub charges per term for instruments of a hire band (A, B, C...), and the deposit."""

    __tablename__ = "fee_band"
    __table_args__ = (CheckConstraint("fee_per_term >= 0 AND deposit >= 0", name="money_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    band: Mapped[str] = mapped_column(String(8), unique=True)
    fee_per_term: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    deposit: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.00"))


class RemissionKind(enum.StrEnum):
    FREE = "free"
    PERCENT_OFF = "percent_off"
    FIXED = "fixed"  # a fixed charge per term instead of the fee

    @property
    def label(self) -> str:
        return {"free": "Free", "percent_off": "Percentage off", "fixed": "Fixed charge per term"}[self.value]


class RemissionRule(db.Model):
    """What a remission category pays: nothing, a percentage off the fee, or a fixed amount."""

    __tablename__ = "remission_rule"
    __table_args__ = (
        values_check("kind", RemissionKind, "kind_known"),
        CheckConstraint("value >= 0 AND (kind <> 'percent_off' OR value <= 100)", name="value_range"),
        values_check("category", CLAIMABLE_CATEGORIES, "category_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[RemissionKind] = mapped_column(enum_column(RemissionKind, 16))
    value: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.00"))

    def charge(self, fee: Decimal) -> Decimal:
        """The charge per term for a fee under this rule (never more than the fee)."""
        if self.kind is RemissionKind.FREE:
            return Decimal("0.00")
        if self.kind is RemissionKind.PERCENT_OFF:
            return (fee * (100 - self.value) / 100).quantize(Decimal("0.01"))
        return min(self.value, fee)

    @property
    def summary(self) -> str:
        if self.kind is RemissionKind.FREE:
            return "Free"
        if self.kind is RemissionKind.PERCENT_OFF:
            return f"{self.value.normalize():f}% off"
        return f"£{self.value:,.2f} a term"


def borrower_column(borrower) -> str:
    return {"pupil": "pupil_id", "family": "family_id", "school": "school_id",
            "other": "other_borrower_id"}[borrower_kind(borrower)]
