"""The error pages: every HTTP error and every uncaught domain error becomes a page people can read."""
import logging
import math
import time

from flask import Flask, jsonify, render_template
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from .errors import LoanServiceError
from .extensions import db, limiter
from .request_log import request_id
from .web import wants_json

log = logging.getLogger(__name__)

# The database cannot be reached or cannot serve now (down, restarting, refusing, no pooled connection free).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)
RETRY_AFTER_UNAVAILABLE = 30  # seconds


def _roll_back_quietly() -> None:
    """Roll back the request's session; on a connection already lost, rolling back can fail too."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001  (the error being shown matters, not this one)
        log.debug("rollback after an error failed", exc_info=True)


def _seconds_until_reset() -> float | None:
    """How long until the rate limit this request broke lets it through again (its window's reset)."""
    try:
        breached = [lim for lim in limiter.current_limits if lim.breached] or [limiter.current_limit]
        resets = [lim.reset_at for lim in breached if lim is not None]
    except Exception:  # the storage is unreachable: say nothing precise rather than fail the page
        return None
    return max(0.0, max(resets) - time.time()) if resets else None


def register_error_handlers(app: Flask) -> None:
    def page(status: int, title: str, message: str, **context):
        """The error page; or, for a script that asked for JSON (the set check-in's scan queue), the
        page's words in the shape its own refusals have, so that it can show them instead of a page."""
        if wants_json():  # the request id is in the response's X-Request-ID header
            return jsonify(ok=False, message=f"{title}. {message}"), status
        return render_template("errors/error.html", status=status, title=title, message=message, **context), status

    def plain_page(status: int, title: str, message: str):
        """The error page drawn without the context processors (Flask-Login's loads the signed-in user
        from the database): what can be shown when the database cannot be reached."""
        if wants_json():
            return jsonify(ok=False, message=f"{title}. {message}"), status
        return app.jinja_env.get_template("errors/plain.html").render(
            status=status, title=title, message=message, request_id=request_id()), status

    def database_unavailable(error: Exception):
        """A plain 503 page that needs no database (the usual page asks who is signed in)."""
        log.error("the database is unavailable: %s: %s", type(error).__name__, error)
        _roll_back_quietly()
        body, status = plain_page(503, "The service is unavailable", "It cannot reach its database just now. "
                                  "Try again in a few minutes; if it keeps happening, tell the hub office.")
        return body, status, {"Retry-After": str(RETRY_AFTER_UNAVAILABLE)}

    for error_class in DATABASE_UNAVAILABLE:
        app.register_error_handler(error_class, database_unavailable)

    @app.errorhandler(400)
    def bad_request(error):
        return page(400, "Bad request", getattr(error, "description", "") or "The request was not understood.")

    @app.errorhandler(422)
    def unprocessable(error):
        return page(422, "That could not be done",
                    getattr(error, "description", "") or "Something in the form is missing or not valid.")

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return page(
            400,
            "This form has expired",
            "The page was open too long or came from elsewhere. Go back, reload it and try again.",
        )

    @app.errorhandler(403)
    def forbidden(error):
        return page(
            403,
            "You do not have access to this page",
            "Your account cannot open this page. If you need it, ask a hub manager to change your role.",
        )

    @app.errorhandler(404)
    def not_found(error):
        description = getattr(error, "description", None)
        if not description or description.startswith("The requested URL"):
            description = "There is nothing at this address. Check the link, or search from the menu."
        return page(404, "Not found", description)

    @app.errorhandler(405)
    def method_not_allowed(error):
        return page(405, "Not allowed", "That action cannot be done this way.")

    @app.errorhandler(413)
    def too_large(error):
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        return page(413, "File too large",
                    f"What you sent is larger than this service accepts ({limit / 1_000_000:g} MB at most). "
                    "Go back and choose a smaller file, or fewer photos at a time: a phone's usual photo is "
                    "2-5 MB.")

    @app.errorhandler(429)
    def too_many(error):
        seconds = _seconds_until_reset()
        if seconds is None:
            wait = "Try again later."
        elif seconds <= 90:  # a minute's window, give or take the moment it was counted from
            wait = "Wait a minute and try again."
        else:
            minutes = math.ceil(seconds / 60)
            wait = f"Try again in {minutes} minutes." if minutes < 90 else \
                f"Try again in about {round(minutes / 60)} hours."
        body, status = page(429, "Too many attempts", wait)
        headers = {"Retry-After": str(max(1, int(seconds)))} if seconds is not None else {}
        return body, status, headers

    @app.errorhandler(503)
    def unavailable(error):
        description = getattr(error, "description", "") or "Try again in a few minutes."
        return page(503, "The service is unavailable", description, request_id=request_id())

    @app.errorhandler(LoanServiceError)
    def domain_error(error: LoanServiceError):
        # A service refused a change that a view did not catch itself.
        db.session.rollback()
        return page(error.status_code, "That could not be done", error.message)

    @app.errorhandler(500)
    def server_error(error):
        original = getattr(error, "original_exception", None)
        if isinstance(original, DATABASE_UNAVAILABLE):  # raised by another error page, which read the user
            return database_unavailable(original)
        # The failed transaction must not break the error page itself (which reads the user).
        _roll_back_quietly()
        title = "Something went wrong"
        message = "The change was not saved. Try again; if it keeps happening, tell the hub office."
        try:
            return page(500, title, message, request_id=request_id())
        except Exception:  # noqa: BLE001  (the page's menu could not be drawn: show the page without it)
            log.exception("the error page failed; showing the plain one")
            return plain_page(500, title, message)
