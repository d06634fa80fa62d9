from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..timeutil import utcnow


class ImportedFile(db.Model):
    """A CSV file imported on the Moving in page: the same file (by its fingerprint) is refused a second time."""

    __tablename__ = "imported_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    file_hash: Mapped[str] = mapped_column(String(64), unique=True)
    rows: Mapped[int]
    imported_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
