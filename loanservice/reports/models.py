"""A report as it was given to a funder: its figures and its workbook, kept unchanged."""
import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..dbtypes import enum_column, values_check
from ..extensions import db
from ..timeutil import utcnow


class ReportKind(enum.StrEnum):
    DATA_RETURN = "data_return"
    ASSET_REGISTER = "asset_register"

    @property
    def label(self) -> str:
        return {"data_return": "Data return", "asset_register": "Asset register"}[self.value]


class ReportSnapshot(db.Model):
    __tablename__ = "report_snapshot"
    __table_args__ = (values_check("kind", ReportKind, "kind_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ReportKind] = mapped_column(enum_column(ReportKind, 32))
    title: Mapped[str] = mapped_column(String(200))
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    figures: Mapped[dict] = mapped_column(JSON, default=dict)
    workbook: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(300), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    created_by: Mapped[User | None] = relationship()

    @property
    def filename(self) -> str:
        return f"{self.kind.value.replace('_', '-')}-{self.created_at:%Y-%m-%d}-{self.id}.xlsx"
