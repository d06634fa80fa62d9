import enum
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

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def __str__(self) -> str:
        return self.name or self.email
