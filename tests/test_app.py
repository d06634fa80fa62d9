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
from loanservice.extensions import db, include_object_on

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
        # As migrations/env.py does: PostgreSQL-only indexes are not expected on SQLite.
        context = MigrationContext.configure(connection, opts={
            "compare_type": True, "include_object": include_object_on(connection.dialect.name)})
        diff = compare_metadata(context, db.metadata)
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"
    assert version == "0012"


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


def test_upgrading_a_sqlite_hub_with_loans_to_0006_keeps_every_row_and_the_one_loan_per_instrument_index(tmp_path):
    """0006 rebuilds the loan table on SQLite, which other tables (and loans themselves) refer to."""
    from datetime import timedelta

    from flask_migrate import upgrade
    from sqlalchemy.exc import IntegrityError

    from loanservice.borrowers.models import Family, Pupil
    from loanservice.documents import services as documents
    from loanservice.inventory.models import Instrument, InstrumentType
    from loanservice.loans import lending
    from loanservice.timeutil import today

    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    app = create_app(config_for(url))
    with app.app_context():
        upgrade(revision="0005")
        session = db.session
        violin = InstrumentType(name="Violin", family="strings", sizes=["1/2", "3/4"])
        session.add(violin)
        session.flush()
        # Rows, not add_instrument: today's service also writes the tag registry, which 0010 adds.
        small, large, spare = instruments = [Instrument(asset_tag=tag, type_id=violin.id, size=size)
                                             for tag, size in (("V-1", "1/2"), ("V-2", "3/4"), ("V-3", "3/4"))]
        session.add_all(instruments)
        family = Family(name="Dana")
        session.add(family)
        session.flush()
        pupil = Pupil(name="Sam", family_id=family.id)
        session.add(pupil)
        session.flush()
        loan = lending.check_out(session, None, small, pupil, due_on=today() + timedelta(days=30))
        terms = documents.save_terms(session, None, "Look after it.")
        # In SQL: the Agreement model has columns that later revisions add.
        session.execute(text("INSERT INTO agreement (loan_id, terms_version_id, pdf, sha256, created_at, signed_name) "
                             "VALUES (:loan, :terms, :pdf, :sha, CURRENT_TIMESTAMP, '')"),
                        {"loan": loan.id, "terms": terms.id, "pdf": b"%PDF-", "sha": "0" * 64})
        lending.size_exchange(session, None, loan, large, grade=2)  # a loan that refers to another loan
        session.commit()
        before = session.execute(text("SELECT id, status, exchanged_from_id, closed_on FROM loan ORDER BY id")).all()
        spare_id, family_id = spare.id, family.id
        session.remove()

        upgrade()
        session = db.session
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0012"
        assert session.execute(text("SELECT tag, kind FROM asset_tag ORDER BY tag")).all() == [
            ("V-1", "instrument"), ("V-2", "instrument"), ("V-3", "instrument")]  # 0010 registered them
        assert session.execute(text("SELECT id, status, exchanged_from_id, closed_on FROM loan ORDER BY id")
                               ).all() == before
        assert session.execute(text("SELECT count(*) FROM agreement")).scalar() == 1
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1  # enforced again afterwards
        indexes = dict(session.execute(text("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'loan' "
                                            "AND type = 'index' AND sql IS NOT NULL")).all())
        assert indexes["uq_loan_open_per_instrument"].endswith("WHERE closed_on IS NULL")
        # A pending loan now fits the constraints, and still holds its instrument against a second loan.
        row = ("INSERT INTO loan (instrument_id, family_id, status, started_on, due_on, accessories, "
               "condition_at_issue, damaged, return_note, fee_per_term, remission_category, charge_per_term, "
               "deposit, created_at) VALUES (:instrument, :family, :status, :on, :on, '', 2, 0, '', 0, 'none', 0, 0, "
               ":on)")
        values = {"instrument": spare_id, "family": family_id, "on": today()}
        session.execute(text(row), {**values, "status": "pending"})
        with pytest.raises(IntegrityError):
            session.execute(text(row), {**values, "status": "pending"})
        session.rollback()
        with pytest.raises(IntegrityError, match="open_until_closed"):
            session.execute(text(row.replace("created_at)", "created_at, closed_on)").replace(":on)", ":on, :on)")),
                            {**values, "status": "pending"})
        session.remove()
        db.engine.dispose()


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="runs when DATABASE_URL points at PostgreSQL")
def test_a_pooled_connection_the_server_closed_while_idle_is_replaced_before_the_next_page(database_url, factory):
    app = create_app(config_for(database_url, DB_PING_AFTER_IDLE=0))
    factory_user = factory.user("staff")
    client = app.test_client()
    assert client.post("/login", data={"email": factory_user.email,
                                       "password": "correct-horse-battery"}).status_code == 302
    with app.app_context():
        pids = {row[0] for row in db.session.execute(text("SELECT pg_backend_pid()"))}
        db.session.remove()
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:  # the server ends the idle session (a restart, a timeout)
        for pid in pids:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    admin.dispose()
    page = client.get("/instruments")
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    assert "Instruments" in page.get_data(as_text=True)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_errors_are_answered_in_json_to_a_script_that_asks_and_as_pages_otherwise(database_url, factory):
    from .conftest import login

    app = create_app(config_for(database_url, PROPAGATE_EXCEPTIONS=False))

    @app.get("/test-only/broken")
    def broken():
        raise RuntimeError("a bug")

    client = app.test_client()
    login(client, factory.user("parent"))
    json, browser = {"Accept": "application/json"}, {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    expected = {
        "/no-such-page": (404, "Not found", "There is nothing at this address. "
                                            "Check the link, or search from the menu."),
        "/sets": (403, "You do not have access to this page", "Your account cannot open this page. If you need it, "
                                                              "ask a hub manager to change your role."),
        "/test-only/broken": (500, "Something went wrong", "The change was not saved. Try again; if it keeps "
                                                           "happening, tell the hub office."),
    }
    for url, (status, title, message) in expected.items():
        answer = client.get(url, headers=json)
        assert (answer.status_code, answer.json) == (status, {"ok": False, "message": f"{title}. {message}"}), url
        page = client.get(url, headers=browser)
        assert page.status_code == status and page.mimetype == "text/html", url
        text = page.get_data(as_text=True)
        assert f"<h1>{title}</h1>" in text and f"<p>{message}</p>" in text, url
