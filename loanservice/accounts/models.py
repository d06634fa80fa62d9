import enum
import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..dbtypes import enum_column, values_check
from ..extensions import db
from ..schools.models import School
from ..timeutil import utcnow


class Role(enum.StrEnum):
    ADMIN = "admin"  # hub managers
    STAFF = "staff"  # the instrument store
    SCHOOL = "school"  # a school's music lead
    PARENT = "parent"  # a parent or carer

    @property
    def label(self) -> str:
        return {
            "admin": "Hub manager",
            "staff": "Store staff",
            "school": "School music lead",
            "parent": "Parent or carer",
        }[self.value]

    @property
    def is_staff(self) -> bool:
        return self in (Role.ADMIN, Role.STAFF)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


class User(UserMixin, db.Model):
    __tablename__ = "user_account"
    __table_args__ = (
        values_check("role", Role, "role_known"),
        CheckConstraint("role <> 'school' OR school_id IS NOT NULL", name="school_user_has_school"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(enum_column(Role, 16))
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # Part of every session's id (``get_id``): a new one ends every session and copy of a session cookie.
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)

    school: Mapped[School | None] = relationship()

    @property
    def is_staff(self) -> bool:
        return self.role.is_staff

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive accounts
        return self.active

    def get_id(self) -> str:
        """The id kept in the session: the user's id and their current session token."""
        return f"{self.id}:{self.session_token}"

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def __str__(self) -> str:
        return self.name or self.email


class RememberToken(db.Model):
    """A "keep me signed in" token for one browser; only its SHA-256 is kept. Each sign-in makes a new one."""

    __tablename__ = "remember_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class UserSession(db.Model):
    """One signed-in browser, listed on its owner's Sessions page to be ended there; only its key's SHA-256 is kept."""

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # The "keep me signed in" token this browser holds, so that ending the session ends that too.
    remember_sha256: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Invitation(db.Model):
    """A single-use, expiring link inviting a new staff or school user to set their own password."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(foreign_keys=[user_id])
