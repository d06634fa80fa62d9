"""What input the app accepts, checked once for every form and URL rather than field by field.

Input the database cannot hold, or that the rules were never written for, is refused with a
message for people (a 4xx), never passed on to become a 500:

- a NUL byte anywhere in a request's text (PostgreSQL cannot store one): 400, before any view, and a
  pager's page beyond the database's integers: 404;
- a whole number beyond the database's integer range, in a URL (the ``int`` converter) or a form;
- a date outside ``EARLIEST_DATE``..``LATEST_DATE`` (year 1 or 9999 overflow date arithmetic);
- a line break or other control character in a single-line field (a ``StringField`` that is not a
  ``TextAreaField`` or a ``HiddenField``).

Every form subclasses ``Form``; its ``Meta`` adds the checks to each field as it is bound.
"""
import re
from datetime import date

from flask import abort, request
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from werkzeug.routing import IntegerConverter
from wtforms import (
    DateField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import StopValidation

from .extensions import DB_INT_MAX, DB_INT_MIN
from .timeutil import EARLIEST_DATE, LATEST_DATE


class DatabaseIntConverter(IntegerConverter):
    """The ``int`` URL converter, bounded to the database's integer range: a larger id is a 404, not a 500."""

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):  # noqa: A002  (werkzeug's names)
        super().__init__(map, fixed_digits=fixed_digits, min=DB_INT_MIN if min is None else min,
                         max=DB_INT_MAX if max is None else max, signed=signed)


# The pager's arguments, which Flask-SQLAlchemy's paginate() reads from the request itself.
PAGER_ARGS = ("page", "per_page")


def refuse_bad_request_input() -> None:
    """Before any view: refuse (400) a NUL byte in the path, query or form, which no field can hold,
    and (404) a pager's page beyond the database's integers, which would overflow its OFFSET."""
    texts = [request.path, *request.args.keys(), *request.args.values()]
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        texts += [*request.form.keys(), *request.form.values()]
    if any("\x00" in text for text in texts):
        abort(400, "Something typed in contains a NUL character (\\0), which no field can hold. "
                   "Remove it and try again.")
    for name in PAGER_ARGS:
        page = request.args.get(name, "").strip()
        if page.lstrip("+-").isdigit() and not DB_INT_MIN <= int(page) <= DB_INT_MAX:
            abort(404, "There is no such page: go back to the first page.")


def is_whole_number_field(field) -> bool:
    """Whether the field's value is a whole number: an IntegerField, or a choice coerced with ``int``."""
    return isinstance(field, IntegerField) or (
        isinstance(field, SelectField | RadioField | SelectMultipleField) and getattr(field, "coerce", None) is int)


def _within_database_range(form, field) -> None:
    values = field.data if isinstance(field.data, list) else [field.data]
    if any(isinstance(v, int) and not DB_INT_MIN <= v <= DB_INT_MAX for v in values):
        raise StopValidation(f"Enter a number between {DB_INT_MIN:,} and {DB_INT_MAX:,}.")


def _sane_date(form, field) -> None:
    if isinstance(field.data, date) and not EARLIEST_DATE <= field.data <= LATEST_DATE:
        raise StopValidation(f"Enter a date between {EARLIEST_DATE.year} and {LATEST_DATE.year}: check the year.")


# Line breaks and the other control characters (a tab is allowed): a single line of plain text.
_NOT_ONE_LINE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _one_line(form, field) -> None:
    if isinstance(field.data, str) and _NOT_ONE_LINE.search(field.data):
        raise StopValidation("This must be one line of plain text: remove the line break or control character.")


def checks_for(field) -> list:
    """The app-wide checks for a bound field, by its kind."""
    if is_whole_number_field(field):
        return [_within_database_range]
    if isinstance(field, DateField):
        return [_sane_date]
    # A hidden field is carried by the page, not typed: the CSV import's holds the whole file.
    if isinstance(field, StringField) and not isinstance(field, TextAreaField | HiddenField):
        return [_one_line]
    return []


class Form(FlaskForm):
    """Every form of the app: a FlaskForm whose fields also refuse what the database cannot hold."""

    class Meta(FlaskForm.Meta):
        def bind_field(self, form, unbound_field, options):
            field = super().bind_field(form, unbound_field, options)
            # Checked first, so that a field's own validators never see the out-of-range value.
            field.validators = [*checks_for(field), *field.validators]
            return field


def csv_file_field(label: str, missing: str) -> FileField:
    """An upload of a CSV file (or .txt, as some banks name theirs); ``missing`` says what to choose."""
    return FileField(label, validators=[FileRequired(message=missing),
                                        FileAllowed(["csv", "txt"], "Upload a .csv file.")])
