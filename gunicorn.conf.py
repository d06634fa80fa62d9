"""gunicorn's settings for serving loanservice: ``gunicorn wsgi:app`` from the checkout reads this file.

Each setting can be changed from the environment, so one file serves every server. Set the number
of workers with WEB_CONCURRENCY (the app reads it too: more than one worker needs SECRET_KEY set,
and REDIS_URL for rate-limit counters that all workers share). Restart gracefully with
``kill -HUP <master pid>``: new workers start with the new code, the old ones finish their requests.
"""
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers, one request at a time each: (2 x cores) + 1 is gunicorn's usual starting point.
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = "sync"

# A worker silent this long is killed and replaced. PDFs of many labels and, without REDIS_URL, a run
# of overdue notices are made in the request and can take a minute.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
# On SIGTERM or SIGHUP, workers finish the requests they have for up to this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5  # seconds; the proxy in front reuses its connections
# Replace each worker after this many requests (jittered, so they do not all restart at once).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 10
# Load the app in each worker, not in the master: SIGHUP then reloads the code.
preload_app = False

# Logs go to stdout, one line per record. The access log is the app's own line per request
# (logger loanservice.requests: method, path, status, ms, request id, user id), which never shows a
# query string or an emailed link's token; gunicorn's access log would show both, so it is off.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"format": "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "line"},
    },
    "root": {"level": os.environ.get("LOG_LEVEL", "INFO").upper(), "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        # With a logging config gunicorn writes its access log whatever accesslog says: silence it here.
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        # Chatty at INFO: WeasyPrint reports each step of each PDF, Alembic its plugins at each start.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        "alembic": {"level": "WARNING"},
    },
}


def on_starting(server):
    """Tell the app how many workers serve it (they are forked after this, and read it at start)."""
    os.environ["WEB_CONCURRENCY"] = str(server.cfg.workers)
