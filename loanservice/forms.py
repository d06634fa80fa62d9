"""What input the app accepts, checked once for every form and URL rather than field by field.

Input the database cannot hold, or that the rules were never written for, is refused with a
message for people (a 4xx), never passed on to become a 500:

- a NUL byte anywhere in a request's text (PostgreSQL cannot store one): 400, before any view;
- a whole number beyond the database's integer range, in a URL (the ``int`` converter) or a form;
- a date outside ``EARLIEST_DATE``..``LATEST_DATE`` (year 1 or 9999 overflow date arithmetic);
- a line break in a single-line field (a ``StringField`` that is not a ``TextAreaField``).

Every form subclasses ``Form``; its ``Meta`` adds the checks to each field as it is bound.
"""
from datetime import date

from flask import abort, request
from flask_wtf import FlaskForm
from werkzeug.routing import IntegerConverter
from wtforms import DateField, IntegerField, RadioField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import StopValidation

# PostgreSQL's integer (SQLite's is wider): every id and count column is one.
DB_INT_MIN, DB_INT_MAX = -(2**31), 2**31 - 1
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(2199, 12, 31)


class DatabaseIntConverter(IntegerConverter):
    """The ``int`` URL converter, bounded to the database's integer range: a larger id is a 404, not a 500."""

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):  # noqa: A002  (werkzeug's names)
        super().__init__(map, fixed_digits=fixed_digits, min=DB_INT_MIN if min is None else min,
                         max=DB_INT_MAX if max is None else max, signed=signed)


def refuse_nul_bytes() -> None:
    """Refuse (400) a request with a NUL byte in its path, query or form: no text field may hold one."""
    texts = [request.path, *request.args.keys(), *request.args.values()]
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        texts += [*request.form.keys(), *request.form.values()]
    if any("\x00" in text for text in texts):
        abort(400, "Something typed in contains a NUL character (\\0), which no field can hold. "
                   "Remove it and try again.")


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


def _one_line(form, field) -> None:
    if isinstance(field.data, str) and ("\n" in field.data or "\r" in field.data):
        raise StopValidation("This must be on one line: remove the line break.")


def checks_for(field) -> list:
    """The app-wide checks for a bound field, by its kind."""
    if is_whole_number_field(field):
        return [_within_database_range]
    if isinstance(field, DateField):
        return [_sane_date]
    if isinstance(field, StringField) and not isinstance(field, TextAreaField):
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
