import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..dbtypes import enum_column, values_check
from ..extensions import db, trigram_index
from ..schools.models import School
from ..timeutil import utcnow


class RemissionCategory(enum.StrEnum):
    NONE = "none"
    FREE_SCHOOL_MEALS = "free_school_meals"
    PUPIL_PREMIUM = "pupil_premium"
    LOOKED_AFTER = "looked_after"
    PREVIOUSLY_LOOKED_AFTER = "previously_looked_after"
    BENEFITS = "benefits"

    @property
    def label(self) -> str:
        """The one name of the category, on every page, form, email and audit entry."""
        return {
            "none": "None",
            "free_school_meals": "Free school meals",
            "pupil_premium": "Pupil premium",
            "looked_after": "Looked after",
            "previously_looked_after": "Previously looked after",
            "benefits": "Household benefits",
        }[self.value]


# The categories a parent can claim and a remission rule prices: all but none.
CLAIMABLE_CATEGORIES = tuple(c for c in RemissionCategory if c is not RemissionCategory.NONE)


class Family(db.Model):
    """A parent or carer: the hirer of a pupil's instrument."""

    __tablename__ = "family"
    # Search as you type finds a part of a name or an email anywhere (ILIKE '%part%').
    __table_args__ = (trigram_index("family", "name"), trigram_index("family", "email"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), default="", index=True)
    phone: Mapped[str] = mapped_column(String(40), default="")
    # Where letters go when there is no email (overdue notices by post).
    address: Mapped[str] = mapped_column(String(500), default="")
    # The parent's sign-in, when they have one; staff create families without one too.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User | None] = relationship()
    pupils: Mapped[list["Pupil"]] = relationship(back_populates="family", order_by="Pupil.name")

    def __str__(self) -> str:
        return self.name


class Pupil(db.Model):
    """A child who plays: only what the loan needs (UK GDPR), SEND as an optional flag."""

    __tablename__ = "pupil"
    __table_args__ = (
        values_check("remission_category", RemissionCategory, "remission_known"),
        CheckConstraint("remission_category = 'none' OR remission_verified_on IS NOT NULL",
                        name="remission_verified"),
        CheckConstraint("year_group IS NULL OR year_group BETWEEN 0 AND 13", name="year_group_range"),
        trigram_index("pupil", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    family_id: Mapped[int | None] = mapped_column(ForeignKey("family.id"), index=True)
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"), index=True)
    year_group: Mapped[int | None]  # 0 is Reception
    remission_category: Mapped[RemissionCategory] = mapped_column(enum_column(RemissionCategory, 32),
                                                                  default=RemissionCategory.NONE)
    remission_verified_on: Mapped[date | None]
    send: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    family: Mapped[Family | None] = relationship(back_populates="pupils")
    school: Mapped[School | None] = relationship()


    @property
    def has_remission(self) -> bool:
        return self.remission_category is not RemissionCategory.NONE

    @property
    def year_label(self) -> str:
        if self.year_group is None:
            return ""
        return "Reception" if self.year_group == 0 else f"Year {self.year_group}"

    def __str__(self) -> str:
        return self.name


class OtherBorrower(db.Model):
    """An ensemble, a teacher or a partner organisation."""

    __tablename__ = "other_borrower"
    __table_args__ = (trigram_index("other_borrower", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(200), default="")  # e.g. "Youth orchestra", "Peripatetic teacher"
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __str__(self) -> str:
        return self.name


class RemissionClaim(db.Model):
    """The remission category a parent says their child is eligible for, until staff verify it on the pupil."""

    __tablename__ = "remission_claim"
    __table_args__ = (
        values_check("category", CLAIMABLE_CATEGORIES, "category_known"),
    )

    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupil.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(32))
    stated_at: Mapped[datetime] = mapped_column(default=utcnow)

    pupil: Mapped[Pupil] = relationship()

    @property
    def label(self) -> str:
        return RemissionCategory(self.category).label


# The borrower kinds, as they appear in URLs and forms.
BORROWER_KINDS: dict[str, type] = {"pupil": Pupil, "family": Family, "school": School, "other": OtherBorrower}


def borrower_kind(borrower) -> str:
    for kind, model in BORROWER_KINDS.items():
        if isinstance(borrower, model):
            return kind
    raise TypeError(f"{borrower!r} cannot borrow")
