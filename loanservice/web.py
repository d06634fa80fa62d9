"""Small helpers shared by the views."""
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from flask import Response, flash, redirect, render_template, request

from .errors import LoanServiceError
from .extensions import DB_INT_MAX, DB_INT_MIN, db
from .timeutil import EARLIEST_DATE, LATEST_DATE

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


def wants_fragment() -> bool:
    """Whether htmx asked for a page's results alone (search as you type), not the page.

    A back-button restore asks for the whole page, as does every request without htmx.
    """
    return request.headers.get("HX-Request") == "true" and not request.headers.get("HX-History-Restore-Request")


def int_arg(name: str) -> int | None:
    """An integer query argument, or None when it is missing, not a number or beyond the database's integers."""
    try:
        value = int(request.args.get(name, ""))
    except ValueError:
        return None
    return value if DB_INT_MIN <= value <= DB_INT_MAX else None


def date_arg(name: str) -> date | None:
    """A date query argument (YYYY-MM-DD), or None when it is missing, not a date or out of the app's range."""
    try:
        value = date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None
    return value if EARLIEST_DATE <= value <= LATEST_DATE else None


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


def form_page(form, perform: Callable[[], T], success: Callable[[T], Response], template: str, *,
              field_map: dict[str, str] | None = None, **context) -> Response | tuple[str, int]:
    """A page with one form: run its change (``submit_form``) and redirect, or render ``template`` with the
    form (and its errors), ``context`` and the status."""
    response, status = submit_form(form, perform, success, field_map)
    if response:
        return response
    return render_template(template, form=form, **context), status


def submit_button(
    form, perform: Callable[[], T], message: str | Callable[[T], str], location: str, *,
    refused_location: str | None = None, invalid: str | None = None,
) -> Response:
    """Run a button post's change: flash ``message`` and go to ``location`` (303).

    A refusal is flashed and goes to ``refused_location`` (by default ``location``); so does a post
    that is not valid (an expired form), with ``invalid`` as its message when one is given.
    """
    if form is not None and not form.validate_on_submit():
        if invalid:
            flash(invalid, "error")
        return redirect(refused_location or location, 303)

    def refused(error: LoanServiceError) -> Response:
        flash(error.message, "error")
        return redirect(refused_location or location, 303)

    return run_change(perform,
                      lambda result: done(message(result) if callable(message) else message, location),
                      refused)


def refused_page(error: LoanServiceError) -> tuple[str, int]:
    """A refused change that has no form to show it beside: a page with its message, and its 4xx."""
    return render_template("errors/error.html", status=error.status_code, title="That could not be done",
                           message=error.message), error.status_code


def done(message: str, location: str) -> Response:
    """After a change: say what happened and go to the page that shows it (303)."""
    flash(message, "success")
    return redirect(location, 303)


def pdf_response(data: bytes, filename: str) -> Response:
    """A PDF shown in the browser, never kept in a shared cache."""
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "private, no-store"})
