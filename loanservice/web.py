"""Small helpers shared by the views."""
from flask import request

from .errors import LoanServiceError


def field_error(form, error: LoanServiceError) -> None:
    """Show a domain error beside its field, or at the top of the form."""
    target = getattr(form, error.field, None) if error.field else None
    if target is not None:
        target.errors = list(target.errors) + [error.message]
    else:
        form.form_errors.append(error.message)


def int_arg(name: str) -> int | None:
    """An integer query argument, or None when it is missing or not a number."""
    try:
        return int(request.args.get(name, ""))
    except ValueError:
        return None
