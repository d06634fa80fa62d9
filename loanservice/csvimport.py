"""CSV imports, once for every kind: read, check every row, report every problem, then apply all or nothing.

A kind of import is a small declaration (``ImportKind``): its columns, an example row for the
template, ``prepare`` (what the rows need looked up, read once per file), ``parse_row`` (one row's
values to a plain object, or ``RowProblem``s) and ``apply`` (every planned row written in one go).
"""
import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from .errors import InvalidInput

MAX_ROWS = 20000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
YES = ("yes", "y", "true", "1")
NO = ("", "no", "n", "false", "0")


@dataclass
class RowError:
    line: int
    column: str
    message: str


class RowProblem(Exception):
    """One cell's problem; ``parse_row`` raises it, or a list of them in ``RowProblems``."""

    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column = column
        self.message = message


class RowProblems(Exception):
    def __init__(self, problems: list[RowProblem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


@dataclass
class ImportPlan:
    kind: "ImportKind"
    rows: list[Any] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    digest: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rows)


@dataclass
class ImportKind:
    """One kind of import: the columns, how a row reads, how the rows are written."""

    name: str  # in URLs: "schools"
    noun: str  # "school"
    plural: str  # "schools"
    columns: list[str]
    required: set[str]
    example: dict[str, str]
    help: str
    prepare: Callable  # (session, every row's values) -> context: what the rows name, looked up at once
    parse_row: Callable  # (context, values) -> row; raises RowProblem(s)
    apply: Callable  # (session, actor, rows) -> int
    key: Callable | None = None  # (row) -> natural key (None: none), for duplicates within the file
    key_column: str = ""
    key_label: str = ""  # how a duplicate is named: "Tag" MIX-000001 is also on line 3
    ignored_columns: frozenset[str] = frozenset()  # accepted and left unread (an export's extra columns)
    preview: list[tuple[str, str]] = field(default_factory=list)  # (heading, attribute) of a planned row

    def template_csv(self) -> str:
        """The exact columns and one example row, as a spreadsheet opens them."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(self.columns)
        writer.writerow([self.example.get(column, "") for column in self.columns])
        return buffer.getvalue()


def decode_upload(raw: bytes) -> str:
    """Decode an uploaded file as UTF-8 (with or without a BOM, as Excel writes it)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("The file is not UTF-8 text (perhaps saved as Windows or Mac text). "
                           "In Excel, save it as 'CSV UTF-8 (Comma delimited)'.", field="file") from None
    if "\x00" in text:
        raise InvalidInput("The file is not a CSV text file (it has NUL bytes): save it as 'CSV UTF-8'.",
                           field="file")
    return text


def file_digest(text: str) -> str:
    """The fingerprint by which a file imported before is recognised (line endings and a BOM aside)."""
    return hashlib.sha256(text.replace("\r\n", "\n").strip().encode()).hexdigest()


def normalise_header(name: str) -> str:
    return (name or "").strip().lower().replace(" ", "_")


def read_rows(text: str, errors: list[RowError], check_header: Callable[[list[str]], RowError | None],
              *, limit: int, noun: str = "rows") -> Iterator[tuple[int, dict[str, str]]]:
    """Yield each row that is not blank as (its line, its cells by normalised header, stripped), for a file
    that is not an ``ImportKind`` (a bank statement, whose columns vary by bank).

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


def plan_import(session, kind: ImportKind, text: str) -> ImportPlan:
    """Read every row and report every problem; write nothing."""
    plan = ImportPlan(kind, digest=file_digest(text))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [normalise_header(h) for h in next(reader, [])]
    except csv.Error as error:
        plan.errors.append(RowError(1, "", f"Not a readable CSV file: {error}"))
        return plan
    if not any(header):
        plan.errors.append(RowError(1, "", "The file is empty: download the template for the columns."))
        return plan
    missing = [c for c in kind.columns if c in kind.required and c not in header]
    unknown = [h or "(blank)" for h in header if h not in kind.columns and h not in kind.ignored_columns]
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    if missing:
        plan.errors.append(RowError(1, ", ".join(missing), f"Missing column: {', '.join(missing)}. "
                                    f"The columns are: {', '.join(kind.columns)}."))
    if unknown:
        plan.errors.append(RowError(1, ", ".join(unknown), f"Unknown column: {', '.join(unknown)}. "
                                    f"The columns are: {', '.join(kind.columns)}."))
    if repeated:
        plan.errors.append(RowError(1, ", ".join(repeated), f"Column given twice: {', '.join(repeated)}."))
    if plan.errors:
        return plan
    records: list[tuple[int, dict]] = []
    try:
        for cells in reader:
            line = reader.line_num
            if len(records) >= MAX_ROWS:
                plan.errors.append(RowError(line, "", f"More than {MAX_ROWS:,} rows: split the file."))
                return plan
            if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
                plan.errors.append(RowError(line, "", f"This row has more cells than the header: {len(cells)} cells, "
                                            f"{len(header)} columns."))
                continue
            values = {column: (cells[i] if i < len(cells) else "").strip() for i, column in enumerate(header)}
            if any(values.values()):
                records.append((line, values))
    except csv.Error as error:
        plan.errors.append(RowError(reader.line_num, "", f"Not a readable CSV row: {error}"))
        return plan
    context = kind.prepare(session, [values for _, values in records])
    seen: dict[Any, int] = {}
    for line, values in records:
        try:
            row = kind.parse_row(context, values)
        except RowProblem as problem:
            plan.errors.append(RowError(line, problem.column, problem.message))
            continue
        except RowProblems as problems:
            plan.errors.extend(RowError(line, p.column, p.message) for p in problems.problems)
            continue
        key = kind.key(row) if kind.key is not None else None
        if key is not None:
            if key in seen:
                named = f"{kind.key_label} " if kind.key_label else ""
                plan.errors.append(RowError(line, kind.key_column, f"{named}{values.get(kind.key_column) or key} "
                                                                   f"is also on line {seen[key]}."))
                continue
            seen[key] = line
        row.line = line
        plan.rows.append(row)
    if not plan.rows and not plan.errors:
        plan.errors.append(RowError(1, "", f"The file has a header but no {kind.plural}."))
    return plan


# ---------------------------------------------------------------- cells


def text(values: dict, column: str, *, required: bool = False, max_length: int = 200, label: str = "") -> str:
    value = values.get(column, "")
    if required and not value:
        raise RowProblem(column, f"{label or column.replace('_', ' ').capitalize()} is empty.")
    if len(value) > max_length:
        raise RowProblem(column, f"{column} is longer than {max_length} characters.")
    if _CONTROL.search(value):
        raise RowProblem(column, f"{column} has a line break or control character.")
    return value


def email(values: dict, column: str, *, required: bool = False) -> str:
    value = text(values, column, required=required, max_length=254).lower()
    if value and ("@" not in value or " " in value or value.startswith("@") or value.endswith("@")):
        raise RowProblem(column, f"{value!r} is not an email address.")
    return value


@lru_cache(maxsize=4096)  # a file repeats its dates (the start of term) and amounts (the fee) row after row
def parse_date(text_value: str) -> date | None:
    """Read 2024-09-01 or 01/09/2024 (UK order); reject impossible dates clearly."""
    text_value = text_value.strip()
    if not text_value:
        return None
    value = None
    try:  # read by hand rather than strptime: a 10,000-row file has tens of thousands of dates
        if len(text_value) == 10 and text_value[4] == "-" and text_value[7] == "-":
            value = date(int(text_value[:4]), int(text_value[5:7]), int(text_value[8:]))
        elif text_value.count("/") == 2:
            day, month, year = text_value.split("/")
            if len(year) == 4:
                value = date(int(year), int(month), int(day))
    except ValueError:
        value = None
    if value is not None and 1900 <= value.year <= 2199:
        return value
    raise ValueError(f"{text_value!r} is not a real date (use YYYY-MM-DD or DD/MM/YYYY).")


def a_date(values: dict, column: str, *, required: bool = False) -> date | None:
    try:
        value = parse_date(values.get(column, ""))
    except ValueError as error:
        raise RowProblem(column, str(error)) from None
    if required and value is None:
        raise RowProblem(column, f"{column} is empty.")
    return value


@lru_cache(maxsize=4096)
def parse_money(text_value: str) -> Decimal | None:
    text_value = text_value.strip().lstrip("£").replace(",", "")
    if not text_value:
        return None
    try:
        value = Decimal(text_value)
    except InvalidOperation:
        raise ValueError(f"{text_value!r} is not an amount of money.") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{text_value!r}: an amount cannot be negative.")
    if value >= Decimal("100000000"):
        raise ValueError(f"{text_value!r} is too large.")
    return value.quantize(Decimal("0.01"))


def money(values: dict, column: str) -> Decimal | None:
    try:
        return parse_money(values.get(column, ""))
    except ValueError as error:
        raise RowProblem(column, str(error)) from None


def yes_no(values: dict, column: str) -> bool:
    value = values.get(column, "").lower()
    if value in YES:
        return True
    if value in NO:
        return False
    raise RowProblem(column, f"{column} must be yes or no, not {values.get(column)!r}.")


def whole(values: dict, column: str, low: int, high: int, *, words: dict[str, int] | None = None) -> int | None:
    value = values.get(column, "")
    if not value:
        return None
    if words and value.lower() in words:
        return words[value.lower()]
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise RowProblem(column, f"{column} must be a whole number from {low} to {high}, not {value!r}.")
    return number


def collect(*checks: Callable[[], Any]) -> list:
    """Run each cell's check; raise every problem together so a row's errors are all reported at once."""
    results, problems = [], []
    for check in checks:
        try:
            results.append(check())
        except RowProblem as problem:
            problems.append(problem)
            results.append(None)
    if problems:
        raise RowProblems(problems)
    return results
