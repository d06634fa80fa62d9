"""One log line per request, each with a request id that the error page shows and the proxy can pass in.

    GET /loans/12 200 14.2ms request_id=3f2a... user_id=7

The id comes from the proxy's ``X-Request-ID`` header when it sends a sensible one, otherwise it is
made here; it goes back in the response's ``X-Request-ID`` header. The user is logged by id only
(never a name or an email), and only when the request has loaded them: the log never queries the
database. The query string is never logged, and a path that carries a secret (an emailed link's
token) is logged as its route, ``/reset/<token>``.
"""
import logging
import re
import time
import uuid
from urllib.parse import quote

from flask import Flask, Response, g, has_request_context, request
from sqlalchemy import inspect

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy's id may look like (uuids, hex, base64, nginx's $request_id); anything else is replaced.
_SENSIBLE_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
# Route arguments that are secrets: the path is logged with the argument's name in their place.
SECRET_ROUTE_ARGUMENTS = frozenset({"token"})

log = logging.getLogger("loanservice.requests")


def request_id() -> str | None:
    """The current request's id (None outside a request)."""
    if not has_request_context():
        return None
    if "request_id" not in g:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SENSIBLE_ID.fullmatch(incoming) else uuid.uuid4().hex
    return g.request_id


def signed_in_user_id() -> int | None:
    """The id of the user this request has signed in as, if it has loaded them.

    Read from the row's identity, not its attributes: after a commit those are expired, and reading
    one would query the database again.
    """
    user = g.get("_login_user")  # where Flask-Login keeps the user once something has asked for it
    state = inspect(user, raiseerr=False) if user is not None else None  # None for the anonymous user
    return state.identity[0] if state is not None and state.identity else None


def loggable_path() -> str:
    """The request's path for the log: no query string, secrets replaced, no control characters."""
    rule, arguments = request.url_rule, request.view_args or {}
    if rule is not None and SECRET_ROUTE_ARGUMENTS & arguments.keys():
        return rule.rule
    return quote(request.path, safe="/:@!$&'()*+,;=-._~")


class RequestIdFilter(logging.Filter):
    """Gives every log record a ``request_id`` (``-`` outside a request), for a format that shows it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id() or "-"
        return True


def init_request_log(app: Flask) -> None:
    """Time each request and log it when it is answered. Call first, so that it times the rest."""
    if log.level == logging.NOTSET:  # the request lines are INFO; the root logger's default shows WARNING up
        log.setLevel(logging.INFO)

    @app.before_request
    def start_timing() -> None:
        g.request_started = time.perf_counter()
        request_id()

    @app.after_request
    def log_request(response: Response) -> Response:
        started = g.get("request_started")
        elapsed_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        response.headers[REQUEST_ID_HEADER] = request_id()
        user_id = signed_in_user_id()
        log.info("%s %s %s %.1fms request_id=%s user_id=%s", request.method, loggable_path(),
                 response.status_code, elapsed_ms, request_id(), user_id if user_id is not None else "-")
        return response
