"""Running an import: the plan checked again, the same file refused twice, every row written or none."""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..audit.services import record
from ..csvimport import ImportKind, ImportPlan, RowError, plan_import
from ..errors import InvalidInput
from .models import ImportedFile


def already_imported(session: Session, digest: str) -> ImportedFile | None:
    return session.scalar(select(ImportedFile).where(ImportedFile.file_hash == digest))


def check_file(session: Session, kind: ImportKind, text: str) -> ImportPlan:
    """Every problem in the file, or the rows ready to import; a file imported before is refused."""
    plan = plan_import(session, kind, text)
    earlier = already_imported(session, plan.digest)
    if earlier is not None:
        plan.rows = []
        plan.errors[:0] = [_repeat_error(earlier)]
    return plan


def _repeat_error(earlier: ImportedFile):
    return RowError(1, "", f"This file was already imported on {earlier.imported_at:%-d %b %Y at %H:%M} "
                           f"({earlier.rows} rows): nothing was imported again.")


def run_import(session: Session, actor, kind: ImportKind, text: str, **options) -> int:
    """Import every row of ``text`` or none (the caller rolls back on any error); return how many."""
    plan = check_file(session, kind, text)
    if not plan.ok:
        raise InvalidInput(plan.errors[0].message if plan.errors else "The file has no rows.")
    count = kind.apply(session, actor, plan.rows, **options)
    imported = ImportedFile(kind=kind.name, file_hash=plan.digest, rows=count,
                            imported_by_id=getattr(actor, "id", None))
    session.add(imported)
    try:
        session.flush()
    except IntegrityError as error:  # the same file, imported at the same moment from another browser
        raise InvalidInput("This file was already imported: nothing was imported again.") from error
    record(session, actor, "import.done", imported, f"Imported {count} {kind.plural if count != 1 else kind.noun}")
    return count
