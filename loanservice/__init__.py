"""loanservice: instrument loans and inventory for music education hubs."""
import os
import secrets
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Config, check_secret_key
from .extensions import csrf, db, limiter, login_manager, migrate
from .forms import DatabaseIntConverter, refuse_bad_request_input
from .request_log import init_request_log

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: type | None = None) -> Flask:
    """Build the application: config, extensions, blueprints, CLI and error pages."""
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        instance_relative_config=True,
    )
    app.config.from_object(config or Config)
    check_secret_key(app.config.get("SECRET_KEY"), app.config["PRODUCTION"], app.config["WEB_CONCURRENCY"])
    _fill_instance_defaults(app)
    init_request_log(app)  # first, so that it times everything else the request runs
    if app.config["TRUSTED_PROXIES"]:
        # The client's address (which rate limits count by) and scheme (https) as the proxies saw them.
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)

    # Before any rule is added: every <int:...> in a URL is bounded to the database's integers.
    app.url_map.converters["int"] = DatabaseIntConverter
    app.before_request(refuse_bad_request_input)

    db.init_app(app)
    from .dbping import ping_when_idle

    with app.app_context():
        ping_when_idle(db.engine, app.config["DB_PING_AFTER_IDLE"])
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True, compare_type=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)

    from . import models  # noqa: F401  (every model registered on the metadata)
    from .accounts.views import admin_bp
    from .accounts.views import bp as accounts_bp
    from .bookings.views import bp as bookings_bp
    from .borrowers.views import bp as borrowers_bp
    from .documents.views import bp as documents_bp
    from .home import bp as home_bp
    from .inventory.views import bp as inventory_bp
    from .labels.scan import bp as scan_bp
    from .labels.views import bp as labels_bp
    from .loans.views import bp as loans_bp
    from .mail.views import bp as mail_bp
    from .money.import_views import bp as money_bank_bp
    from .money.run_views import bp as invoice_runs_bp
    from .money.views import bp as money_bp
    from .moving.views import bp as moving_bp
    from .parents.views import bp as parents_bp
    from .privacy.views import bp as privacy_bp
    from .reports.views import bp as reports_bp
    from .reservations.views import bp as reservations_bp
    from .servicing.views import bp as servicing_bp
    from .sets.views import bp as sets_bp
    from .stocktake.views import bp as stocktake_bp

    app.register_blueprint(home_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(inventory_bp)
    app.register_blueprint(labels_bp)
    app.register_blueprint(scan_bp)
    app.register_blueprint(borrowers_bp)
    app.register_blueprint(loans_bp)
    app.register_blueprint(sets_bp)
    app.register_blueprint(bookings_bp)
    app.register_blueprint(documents_bp)
    app.register_blueprint(mail_bp)
    app.register_blueprint(money_bp)
    app.register_blueprint(parents_bp)
    app.register_blueprint(reservations_bp)
    app.register_blueprint(money_bank_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(invoice_runs_bp)
    app.register_blueprint(privacy_bp)
    app.register_blueprint(moving_bp)
    app.register_blueprint(servicing_bp)
    app.register_blueprint(stocktake_bp)

    from .error_pages import register_error_handlers
    from .health import add_readiness_check, init_health
    from .mail.sender import readiness as mail_readiness
    from .security_headers import init_security_headers
    from .templating import register_template_helpers

    init_health(app)
    add_readiness_check(app, "mail", lambda: mail_readiness(db.session))  # queued mail and the oldest's wait
    init_security_headers(app)
    register_error_handlers(app)
    register_template_helpers(app)

    from .cli import register_cli

    register_cli(app)

    _warn_of_counters_per_worker(app)
    return app


def _warn_of_counters_per_worker(app: Flask) -> None:
    """Without Redis each worker counts rate limits in its own memory: say so when there are several."""
    workers = app.config["WEB_CONCURRENCY"]
    if workers > 1 and not app.config.get("REDIS_URL"):
        app.logger.warning(
            "REDIS_URL is not set: each of the %d workers counts rate limits (sign-in, registration, resets) on "
            "its own, so each limit lets %d times as many attempts through. Set REDIS_URL to share them.",
            workers, workers)


def _fill_instance_defaults(app: Flask) -> None:
    """Default to a SQLite file and a generated secret key, both kept in the instance folder."""
    instance = Path(app.instance_path)
    needs_instance = not app.config.get("SQLALCHEMY_DATABASE_URI") or not app.config.get("SECRET_KEY")
    if needs_instance:
        instance.mkdir(parents=True, exist_ok=True)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'loanservice.sqlite3'}"
    if not app.config.get("SECRET_KEY"):
        key_file = instance / "secret_key"
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        app.config["SECRET_KEY"] = key_file.read_text().strip()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """Make SQLite enforce foreign keys and wait, rather than fail, on a busy database."""
    module = type(dbapi_connection).__module__
    if module.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()
