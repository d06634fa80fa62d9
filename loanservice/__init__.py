"""loanservice: instrument loans and inventory for music education hubs."""
import os
import secrets
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .config import Config
from .extensions import csrf, db, limiter, login_manager, migrate

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: type | None = None) -> Flask:
    """Build the application: config, extensions, blueprints, CLI and error pages."""
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        instance_relative_config=True,
    )
    app.config.from_object(config or Config)
    _fill_instance_defaults(app)

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
    from .borrowers.views import bp as borrowers_bp
    from .documents.views import bp as documents_bp
    from .home import bp as home_bp
    from .inventory.views import bp as inventory_bp
    from .labels.scan import bp as scan_bp
    from .labels.views import bp as labels_bp
    from .loans.views import bp as loans_bp
    from .money.import_views import bp as money_bank_bp
    from .parents.views import bp as parents_bp
    from .reservations.views import bp as reservations_bp
    from .sets.views import bp as sets_bp

    app.register_blueprint(home_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(inventory_bp)
    app.register_blueprint(labels_bp)
    app.register_blueprint(scan_bp)
    app.register_blueprint(borrowers_bp)
    app.register_blueprint(loans_bp)
    app.register_blueprint(sets_bp)
    app.register_blueprint(documents_bp)
    app.register_blueprint(parents_bp)
    app.register_blueprint(reservations_bp)
    app.register_blueprint(money_bank_bp)

    from .error_pages import register_error_handlers
    from .templating import register_template_helpers

    register_error_handlers(app)
    register_template_helpers(app)

    from .cli import register_cli

    register_cli(app)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
            "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        )
        return response

    return app


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
