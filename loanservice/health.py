"""Health checks for a load balancer: ``/healthz`` (the process answers) and ``/readyz`` (the parts it
needs answer too).

``/readyz`` runs every readiness check registered on the app and answers 200 when all are up, 503
when one is down, with JSON naming each part and its state::

    {"ready": false, "parts": {"database": {"state": "up"}, "redis": {"state": "down", "error": "ConnectionError"}}}

The database is always checked, Redis when ``REDIS_URL`` is set. Another part registers its own
check with ``add_readiness_check(app, name, check)``: ``check()`` returns a dict of details to
show (or None) when the part is up, ``{"state": "down", ...}`` when it is down, and may raise, which
counts as down. The error's type is shown; its message, which may name hosts, goes to the log only.
"""
import logging
from collections.abc import Callable

from flask import Blueprint, Flask, current_app, jsonify
from redis import Redis
from sqlalchemy import text

from .extensions import db, limiter

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], dict | None]

# Seconds a check waits for Redis: a load balancer's probe must not hang on a dead host.
REDIS_CHECK_TIMEOUT = 2.0
_CHECKS_KEY = "loanservice.readiness_checks"

bp = Blueprint("health", __name__)


def add_readiness_check(app: Flask, name: str, check: ReadinessCheck) -> None:
    """Have ``/readyz`` report the part ``name`` by calling ``check()`` (see the module's docstring)."""
    app.extensions.setdefault(_CHECKS_KEY, {})[name] = check


def check_database() -> dict | None:
    """Up when the database answers a query on a connection of its own (not the request's session)."""
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return None


def check_redis() -> dict | None:
    """Up when the Redis at ``REDIS_URL`` answers a ping."""
    connection = Redis.from_url(current_app.config["REDIS_URL"], socket_connect_timeout=REDIS_CHECK_TIMEOUT,
                                socket_timeout=REDIS_CHECK_TIMEOUT)
    try:
        connection.ping()
    finally:
        connection.close()
    return None


def readiness() -> dict[str, dict]:
    """Each registered part and its state (``up`` or ``down``), with the details its check gave."""
    parts = {}
    for name, check in current_app.extensions.get(_CHECKS_KEY, {}).items():
        try:
            details = check() or {}
        except Exception as error:  # any failure means the part is down; the log says why
            log.warning("readiness: %s is down: %s: %s", name, type(error).__name__, error)
            details = {"state": "down", "error": type(error).__name__}
        parts[name] = {"state": "up", **details}
    return parts


@bp.get("/healthz")
@limiter.exempt
def healthz():
    """Liveness: the process answers; nothing else is touched."""
    return {"status": "ok"}


@bp.get("/readyz")
@limiter.exempt
def readyz():
    parts = readiness()
    ready = all(part["state"] == "up" for part in parts.values())
    return jsonify(ready=ready, parts=parts), 200 if ready else 503


def init_health(app: Flask) -> None:
    """Serve the health checks, checking the database and, when ``REDIS_URL`` is set, Redis."""
    app.register_blueprint(bp)
    add_readiness_check(app, "database", check_database)
    if app.config.get("REDIS_URL"):
        add_readiness_check(app, "redis", check_redis)
