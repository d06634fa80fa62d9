"""CSV in and out: import with a full error report (all or nothing), asset-register export."""
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.orm import Session, contains_eager

from ..errors import InvalidInput, LoanServiceError
from .models import CONDITION_GRADES, Instrument, InstrumentType
from .services import InstrumentDetails, _check_tag, _validate, add_instrument
from .tags import normalise_tag

IMPORT_COLUMNS = [
    "asset_tag", "type", "size", "make", "model", "serial_number", "accessories", "location",
    "condition", "purchased_on", "purchase_cost", "funding_source", "replacement_value",
    "send_adapted", "pat_due_on", "notes",
]
REQUIRED_COLUMNS = {"type"}
EXPORT_COLUMNS = IMPORT_COLUMNS[:-1] + ["status", "status_reason", "labelled_at", "notes"]
MAX_ROWS = 20000


@dataclass
class RowError:
    line: int
    column: str
    message: str


@dataclass
class ImportRow:
    line: int
    asset_tag: str
    details: InstrumentDetails
    grade: int
    type_name: str


@dataclass
class ImportPlan:
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rows)


def decode_upload(raw: bytes) -> str:
    """Decode an uploaded file as UTF-8 (with or without a BOM, as Excel writes it)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("The file is not UTF-8 text. In Excel, save it as 'CSV UTF-8'.") from None


def read_rows(text: str, errors: list[RowError], check_header: Callable[[list[str]], RowError | None],
              *, limit: int, noun: str = "rows") -> Iterator[tuple[int, dict[str, str]]]:
    """Yield each row that is not blank as (its line, its cells by normalised header, stripped).

    Every problem with the file's shape goes into ``errors``: unreadable CSV, no header, a header
    ``check_header`` refuses (nothing is read then), a row with more cells than the header, more than
    ``limit`` rows.
    """
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [normalise_header(h) for h in (reader.fieldnames or [])]
    except csv.Error as error:
        errors.append(RowError(1, "", f"Not a readable CSV file: {error}"))
        return
    if not header:
        errors.append(RowError(1, "", "The file is empty."))
        return
    problem = check_header(header)
    if problem is not None:
        errors.append(problem)
        return
    reader.fieldnames = header
    count = 0
    try:
        for record in reader:
            line = reader.line_num
            if None in record:
                errors.append(RowError(line, "", "This row has more cells than the header."))
                continue
            values = {k: (v or "").strip() for k, v in record.items() if k}
            if not any(values.values()):
                continue
            count += 1
            if count > limit:
                errors.append(RowError(line, "", f"More than {limit} {noun}; split the file."))
                return
            yield line, values
    except csv.Error as error:
        errors.append(RowError(reader.line_num, "", f"Not a readable CSV row: {error}"))


def plan_import(session: Session, text: str) -> ImportPlan:
    """Read every row and report every problem; import nothing."""
    plan = ImportPlan()
    types = {t.name.lower(): t for t in session.scalars(select(InstrumentType))}
    seen_tags: dict[str, int] = {}
    for line, values in read_rows(text, plan.errors, _check_import_header, limit=MAX_ROWS):
        row, errors = _plan_row(session, line, values, types, seen_tags)
        plan.errors.extend(errors)
        if row is not None:
            plan.rows.append(row)
    if not plan.rows and not plan.errors:
        plan.errors.append(RowError(1, "", "The file has a header but no instruments."))
    return plan


def _check_import_header(header: list[str]) -> RowError | None:
    missing = REQUIRED_COLUMNS - set(header)
    if missing:
        return RowError(1, ", ".join(sorted(missing)), f"Missing column: {', '.join(sorted(missing))}. "
                        f"Columns are: {', '.join(IMPORT_COLUMNS)}.")
    unknown = [h for h in header if h and h not in IMPORT_COLUMNS and h not in EXPORT_COLUMNS]
    if unknown:
        return RowError(1, ", ".join(unknown), f"Unknown column: {', '.join(unknown)}.")
    return None


def normalise_header(name: str) -> str:
    return (name or "").strip().lower().replace(" ", "_")


def _plan_row(session, line, values, types, seen_tags):
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
        if tag in seen_tags:
            fail("asset_tag", f"Tag {tag} is also on line {seen_tags[tag]}.")
        else:
            seen_tags[tag] = line
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


def parse_date(text: str) -> date | None:
    """Read 2024-09-01 or 01/09/2024 (UK order); reject impossible dates clearly."""
    text = text.strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a real date (use YYYY-MM-DD or DD/MM/YYYY).")


def parse_money(text: str) -> Decimal | None:
    text = text.strip().lstrip("£").replace(",", "")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount of money.") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{text!r}: an amount cannot be negative.")
    if value >= Decimal("100000000"):
        raise ValueError(f"{text!r} is too large.")
    return value.quantize(Decimal("0.01"))


def apply_import(
    session: Session, actor, plan: ImportPlan, *, tag_prefix: str, tag_digits: int = 6,
) -> list[Instrument]:
    """Add every planned row; any failure raises and the caller rolls back the lot."""
    if not plan.ok:
        raise InvalidInput("The file has errors; nothing was imported.")
    return [
        add_instrument(session, actor, row.details, asset_tag=row.asset_tag, condition_grade=row.grade,
                       condition_note="CSV import", tag_prefix=tag_prefix, tag_digits=tag_digits)
        for row in plan.rows
    ]


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


def export_asset_register(session: Session):
    """Yield the inventory as CSV lines, a few thousand rows at a time."""
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
        select(Instrument).join(Instrument.type).options(contains_eager(Instrument.type))
        .order_by(Instrument.asset_tag).execution_options(yield_per=2000)
    )
    for count, instrument in enumerate(session.scalars(query), 1):
        row = {column: getattr(instrument, column, None) for column in EXPORT_COLUMNS}
        row["type"] = instrument.type.name
        row["condition"] = instrument.condition_grade
        writer.writerow([spreadsheet_cell(row[column]) for column in EXPORT_COLUMNS])
        if count % 2000 == 0:
            yield flush()
    yield flush()


def count_instruments(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Instrument))
