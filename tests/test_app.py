"""The app factory, configuration and migrations."""
import os
import stat

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from loanservice import create_app
from loanservice.config import Config
from loanservice.extensions import db

from .conftest import DATABASE_URL, ON_POSTGRES, config_for, migrate


def test_secret_key_is_generated_once_and_kept_in_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    cfg = type("C", (Config,), {"SECRET_KEY": None, "SQLALCHEMY_DATABASE_URI": None})

    def build():
        app = create_app(cfg)
        return app

    monkeypatch.setattr("flask.Flask.auto_find_instance_path", lambda self: str(tmp_path / "instance"))
    first = build()
    second = build()
    key_file = tmp_path / "instance" / "secret_key"
    assert key_file.exists()
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key_file.read_text().strip()
    assert len(first.config["SECRET_KEY"]) >= 64
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert first.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'instance' / 'loanservice.sqlite3'}"


def test_secure_cookie_settings_follow_the_public_address():
    app = create_app(config_for("sqlite://", PUBLIC_BASE_URL="https://loans.hub.example",
                                SESSION_COOKIE_SECURE=True))
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_SECURE"] is True


def _assert_models_match(url: str) -> None:
    engine = create_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"
    assert version == "0005"


def test_migrations_build_an_empty_sqlite_database_that_matches_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    migrate(url)
    _assert_models_match(url)


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="runs when DATABASE_URL points at PostgreSQL")
def test_migrations_build_an_empty_postgres_database_that_matches_the_models():
    base = make_url(DATABASE_URL)
    name = f"{base.database}_migrations"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = base.set(database=name).render_as_string(hide_password=False)
        migrate(url)
        _assert_models_match(url)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_health_check_answers_without_signing_in(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_pages_send_security_headers(client):
    response = client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
