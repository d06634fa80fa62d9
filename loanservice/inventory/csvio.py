"""CSV in and out: the instrument import (a kind of ``csvimport`` import: a full error report, all or nothing),
asset-register export."""
import csv
import io
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, contains_eager

from .. import csvimport
from ..csvimport import (  # noqa: F401  (decode_upload, normalise_header and RowError are this module's API too)
    ImportKind,
    ImportPlan,
    RowError,
    RowProblem,
    RowProblems,
    decode_upload,
    normalise_header,
    parse_date,
    parse_money,
)
from ..errors import InvalidInput, LoanServiceError
from .models import CONDITION_GRADES, Instrument, InstrumentCount, InstrumentType
from .services import InstrumentDetails, _check_tag, _validate, add_instrument
from .tags import normalise_tag

IMPORT_COLUMNS = [
    "asset_tag", "type", "size", "make", "model", "serial_number", "accessories", "location",
    "condition", "purchased_on", "purchase_cost", "funding_source", "replacement_value",
    "send_adapted", "pat_due_on", "notes",
]
REQUIRED_COLUMNS = {"type"}
EXPORT_COLUMNS = IMPORT_COLUMNS[:-1] + ["status", "status_reason", "labelled_at", "last_counted_on", "notes"]


@dataclass
class ImportRow:
    line: int
    asset_tag: str
    details: InstrumentDetails
    grade: int
    type_name: str


def _prepare(session: Session, records: list[dict]) -> dict:
    return {"session": session, "types": {t.name.lower(): t for t in session.scalars(select(InstrumentType))}}


def _parse_row(context: dict, values: dict) -> ImportRow:
    row, errors = _plan_row(context["session"], 0, values, context["types"])
    if errors:
        raise RowProblems([RowProblem(e.column, e.message) for e in errors])
    return row


def _add_all(session: Session, actor, rows: list[ImportRow], *, tag_prefix: str, tag_digits: int = 6,
             ) -> list[Instrument]:
    return [add_instrument(session, actor, row.details, asset_tag=row.asset_tag, condition_grade=row.grade,
                           condition_note="CSV import", tag_prefix=tag_prefix, tag_digits=tag_digits)
            for row in rows]


def _apply(session: Session, actor, rows: list[ImportRow], **tags) -> int:
    return len(_add_all(session, actor, rows, **tags))


INSTRUMENTS = ImportKind(
    name="instruments", noun="instrument", plural="instruments",
    columns=IMPORT_COLUMNS, required=REQUIRED_COLUMNS,
    example={"asset_tag": "VN-000001", "type": "Violin", "size": "1/2", "make": "Stentor", "model": "Student I",
             "serial_number": "S1234", "accessories": "Case, bow, rosin", "location": "Store / A1", "condition": "2",
             "purchased_on": "2024-09-01", "purchase_cost": "89.99", "funding_source": "DfE capital grant 2024",
             "replacement_value": "120.00", "send_adapted": "no", "pat_due_on": "", "notes": ""},
    help="One instrument a row; type is required. Leave asset_tag empty to issue the next free tag.",
    prepare=_prepare, parse_row=_parse_row, apply=_apply,
    key=lambda row: row.asset_tag or None, key_column="asset_tag", key_label="Tag",
    ignored_columns=frozenset(EXPORT_COLUMNS) - frozenset(IMPORT_COLUMNS),
)


def plan_import(session: Session, text: str) -> ImportPlan:
    """Read every row and report every problem; import nothing."""
    return csvimport.plan_import(session, INSTRUMENTS, text)


def _plan_row(session, line, values, types):
    errors: list[RowError] = []

    def fail(column, message):
        errors.append(RowError(line, column, message))

    instrument_type = types.get(values.get("type", "").lower())
    if instrument_type is None:
        fail("type", f"Unknown type {values.get('type', '')!r}." if values.get("type") else "Type is empty.")
    parsed = {}
    for column in ("purchased_on", "pat_due_on"):
        try:
            parsed[column] = parse_date(values.get(column, ""))
        except ValueError as error:
            fail(column, str(error))
    for column in ("purchase_cost", "replacement_value"):
        try:
            parsed[column] = parse_money(values.get(column, ""))
        except ValueError as error:
            fail(column, str(error))
    grade = 2
    if values.get("condition"):
        try:
            grade = int(values["condition"])
            if grade not in CONDITION_GRADES:
                raise ValueError
        except ValueError:
            fail("condition", f"Condition must be 1 to 5, not {values['condition']!r}.")
    adapted = values.get("send_adapted", "").lower()
    if adapted not in ("", "yes", "no", "y", "n", "true", "false", "1", "0"):
        fail("send_adapted", f"send_adapted must be yes or no, not {values['send_adapted']!r}.")
    tag = normalise_tag(values.get("asset_tag", ""))
    if tag:
        try:
            _check_tag(session, tag)
        except LoanServiceError as error:
            fail("asset_tag", error.message)
    if errors:
        return None, errors
    details = InstrumentDetails(
        type_id=instrument_type.id,
        size=values.get("size", ""),
        make=values.get("make", ""),
        model=values.get("model", ""),
        serial_number=values.get("serial_number", ""),
        accessories=values.get("accessories", "") or instrument_type.default_accessories,
        location=values.get("location", "") or "Store",
        purchased_on=parsed["purchased_on"],
        purchase_cost=parsed["purchase_cost"],
        funding_source=values.get("funding_source", ""),
        replacement_value=parsed["replacement_value"],
        send_adapted=adapted in ("yes", "y", "true", "1"),
        pat_due_on=parsed["pat_due_on"],
        notes=values.get("notes", ""),
    )
    try:
        _validate(session, details)
    except LoanServiceError as error:
        fail(error.field or "", error.message)
        return None, errors
    return ImportRow(line, tag, details, grade, instrument_type.name), errors


def apply_import(
    session: Session, actor, plan: ImportPlan, *, tag_prefix: str, tag_digits: int = 6,
) -> list[Instrument]:
    """Add every planned row; any failure raises and the caller rolls back the lot."""
    if not plan.ok:
        raise InvalidInput("The file has errors; nothing was imported.")
    return _add_all(session, actor, plan.rows, tag_prefix=tag_prefix, tag_digits=tag_digits)


def spreadsheet_cell(value) -> str:
    """Format a cell; neutralise text a spreadsheet would run as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def export_asset_register(session: Session, chosen=None):
    """Yield the inventory as CSV lines, a few thousand rows at a time: every instrument, or those whose
    id ``chosen`` (a select of instrument ids: the list's filters, a selection) returns."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush():
        data = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return data

    writer.writerow(EXPORT_COLUMNS)
    yield flush()
    query = (
        select(Instrument, InstrumentCount.last_counted_on).join(Instrument.type)
        .outerjoin(InstrumentCount, InstrumentCount.instrument_id == Instrument.id)
        .options(contains_eager(Instrument.type))
        .order_by(Instrument.asset_tag).execution_options(yield_per=2000)
    )
    if chosen is not None:
        query = query.where(Instrument.id.in_(chosen))
    for count, (instrument, last_counted_on) in enumerate(session.execute(query), 1):
        row = {column: getattr(instrument, column, None) for column in EXPORT_COLUMNS}
        row["last_counted_on"] = last_counted_on
        row["type"] = instrument.type.name
        row["condition"] = instrument.condition_grade
        writer.writerow([spreadsheet_cell(row[column]) for column in EXPORT_COLUMNS])
        if count % 2000 == 0:
            yield flush()
    yield flush()


def count_instruments(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Instrument))
