"""Small helpers shared by the views."""
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, flash, redirect, request

from .errors import LoanServiceError
from .extensions import db

T = TypeVar("T")


def field_error(form, error: LoanServiceError, field_map: dict[str, str] | None = None) -> None:
    """Show a domain error beside its field (renamed by ``field_map``), or at the top of the form."""
    name = (field_map or {}).get(error.field, error.field) if error.field else None
    target = getattr(form, name, None) if name else None
    if target is not None:
        target.errors = list(target.errors) + [error.message]
    else:
        form.form_errors.append(error.message)


def wants_json() -> bool:
    """Whether the client asked for JSON rather than a page (a script's fetch, not a browser's form).

    A browser's own navigation accepts */* as well, so only an Accept header that ranks
    application/json above text/html counts; no header at all means a page.
    """
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def int_arg(name: str) -> int | None:
    """An integer query argument, or None when it is missing or not a number."""
    try:
        return int(request.args.get(name, ""))
    except ValueError:
        return None


def run_change(
    perform: Callable[[], T], success: Callable[[T], Any], failure: Callable[[LoanServiceError], Any],
) -> Any:
    """Commit ``perform()`` and return ``success(result)``, or roll back a refusal and return ``failure(error)``."""
    try:
        result = perform()
        db.session.commit()
    except LoanServiceError as error:
        db.session.rollback()
        return failure(error)
    return success(result)


def submit_form(
    form, perform: Callable[[], T], success: Callable[[T], Response], field_map: dict[str, str] | None = None,
) -> tuple[Response | None, int]:
    """Run a form's change as one transaction.

    On a valid post, call ``perform`` (which calls the services) and commit, then return
    ``success(result)`` (a redirect) and 303. On a refused change, roll back, show the
    message beside its field and return the error's 4xx; on invalid input, 422.
    The view re-renders its form whenever the response is None.
    """
    if not form.validate_on_submit():
        return None, 422 if form.is_submitted() else 200

    def refused(error: LoanServiceError) -> tuple[None, int]:
        field_error(form, error, field_map)
        return None, error.status_code

    return run_change(perform, lambda result: (success(result), 303), refused)


def submit_button(form, perform: Callable[[], T], message: str | Callable[[T], str], location: str) -> Response:
    """Run a button post's change: flash ``message`` or the refusal, then go to ``location`` (303)."""
    if form is None or form.validate_on_submit():
        run_change(perform,
                   lambda result: flash(message(result) if callable(message) else message, "success"),
                   lambda error: flash(error.message, "error"))
    return redirect(location, 303)


def done(message: str, location: str) -> Response:
    """After a change: say what happened and go to the page that shows it (303)."""
    flash(message, "success")
    return redirect(location, 303)


def pdf_response(data: bytes, filename: str) -> Response:
    """A PDF shown in the browser, never kept in a shared cache."""
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "private, no-store"})
