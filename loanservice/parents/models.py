import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..borrowers.models import Family
from ..dbtypes import enum_column, values_check
from ..extensions import db
from ..loans.models import Loan
from ..timeutil import utcnow


class ParentAccount(db.Model):
    """A parent's self-registered sign-in: whether its email address has been confirmed.

    Parents that staff set up have no row here; staff vouched for their address.
    """

    __tablename__ = "parent_account"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), primary_key=True)
    email_confirmed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()


class TokenPurpose(enum.StrEnum):
    CONFIRM = "confirm"
    RESET = "reset"


class AccountToken(db.Model):
    """A single-use, expiring link sent by email. Only the token's SHA-256 is kept."""

    __tablename__ = "account_token"
    __table_args__ = (values_check("purpose", TokenPurpose, "purpose_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    purpose: Mapped[TokenPurpose] = mapped_column(enum_column(TokenPurpose, 16))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class RequestKind(enum.StrEnum):
    RETURN = "return"
    NEXT_SIZE = "next_size"

    @property
    def label(self) -> str:
        return {"return": "Return the instrument", "next_size": "Exchange for the next size"}[self.value]


class ParentRequest(db.Model):
    """A parent's request about a loan (return it, or exchange it for the next size), for staff to act on."""

    __tablename__ = "parent_request"
    __table_args__ = (values_check("kind", RequestKind, "kind_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"), index=True)
    kind: Mapped[RequestKind] = mapped_column(enum_column(RequestKind, 16))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    handled_at: Mapped[datetime | None]
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    family: Mapped[Family] = relationship()
    loan: Mapped[Loan] = relationship()
