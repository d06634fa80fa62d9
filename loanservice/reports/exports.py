"""The reports as files: a workbook with a sheet per section and the definitions first, and CSV."""
import csv
import io
from collections.abc import Iterable, Iterator
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy.orm import Session

from ..timeutil import today
from .figures import (
    DEFINITIONS,
    REGISTER_COLUMNS,
    DataReturn,
    RegisterFilters,
    register_batches,
    register_rows,
    register_totals,
)

BOLD = Font(bold=True)


def _sheet(book: Workbook, title: str, rows: Iterable[list], *, first: bool = False, counts: bool = False):
    sheet = book.active if first else book.create_sheet()
    sheet.title = title[:31]
    widths: dict[int, int] = {}
    for number, row in enumerate(rows, start=1):
        sheet.append([_count(value) if counts else _cell(value) for value in row])
        for column, value in enumerate(row, start=1):
            widths[column] = min(60, max(widths.get(column, 8), len(str(value or "")) + 2))
        if number == 1:
            for cell in sheet[1]:
                cell.font = BOLD
    for column, width in widths.items():
        sheet.column_dimensions[get_column_letter(column)].width = width
    return sheet


def _count(value):
    """A published count stays a number where shown; a hidden one is the text "<5"."""
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _cell(value):
    """Money is a number of pounds in a workbook."""
    if isinstance(value, Decimal):
        return float(value)
    return value


def _saved(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def data_return_workbook(report: DataReturn, hub: str) -> bytes:
    book = Workbook()
    _sheet(book, "Definitions", [
        ["Data return", f"{hub}, school year {report.year.label}"],
        ["Smallest count shown", report.threshold],
        *[[term, meaning] for term, meaning in DEFINITIONS]], first=True)
    _sheet(book, "Schools", [["Schools", "Number"], *[[label, count] for label, count in report.schools]])
    for table in report.tables:
        _sheet(book, _short_title(table.title), [[table.title], *table.as_rows()], counts=True)
    return _saved(book)


def _short_title(title: str) -> str:
    for long, short in (("Pupils with individual loans, by year group and instrument family", "Individual loans"),
                        ("Pupils with individual loans, by circumstances", "Circumstances"),
                        ("Pupils with individual loans, by SEND", "SEND"),
                        ("WCET pupils by year group", "WCET pupils"),
                        ("Continuation after WCET", "Continuation")):
        if title == long:
            return short
    return title


def data_return_csv(report: DataReturn) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Section", "Row", "Column", "Value"])
    for label, count in report.schools:
        writer.writerow(["Schools", label, "Number", count])
    for table in report.tables:
        heading, *rows = table.as_rows()
        for row in rows:
            for column, value in zip(heading[1:], row[1:], strict=True):
                writer.writerow([table.title, row[0], column, value])
    return out.getvalue()


def _register_lines(session: Session, filters: RegisterFilters, capitalisation: Decimal) -> Iterator[list]:
    for batch in register_batches(session, filters):
        yield from register_rows(session, batch, capitalisation)


def asset_register_workbook(session: Session, filters: RegisterFilters, capitalisation: Decimal, hub: str) -> bytes:
    book = Workbook(write_only=False)
    totals = register_totals(session, filters, capitalisation)
    _sheet(book, "About", [
        ["Capital-grant asset register", hub],
        ["Funding source", filters.funding or "All"],
        ["Purchased in school year", filters.year.label if filters.year else "Any"],
        ["Capitalisation threshold (net cost)", capitalisation],
        ["Produced on", today()]], first=True)
    _sheet(book, "Totals", [["Funding source", "Purchased in", "Instruments", "Net cost", "Disposed of",
                             "Disposal proceeds", "Below threshold"],
                            *[[t.funding, t.year, t.instruments, t.cost, t.disposed, t.proceeds, t.below_threshold]
                              for t in totals]])
    sheet = _sheet(book, "Register", [REGISTER_COLUMNS])
    for row in _register_lines(session, filters, capitalisation):
        sheet.append([_cell(value) for value in row])
    return _saved(book)


def asset_register_csv(session: Session, filters: RegisterFilters, capitalisation: Decimal) -> Iterator[str]:
    """The register as CSV, streamed a batch at a time."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REGISTER_COLUMNS)
    for row in _register_lines(session, filters, capitalisation):
        writer.writerow(["" if value is None else value for value in row])
        if out.tell() > 64_000:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()
