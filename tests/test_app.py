"""The app factory, configuration and migrations."""
import os
import stat
from datetime import date, datetime
from functools import partial

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, Boolean, Date, DateTime, Integer, MetaData, Numeric, Table, create_engine, text
from sqlalchemy.engine import make_url

from loanservice import PROJECT_ROOT, create_app
from loanservice.config import Config
from loanservice.extensions import db, include_object_on

from .conftest import DATABASE_URL, ON_POSTGRES, config_for, migrate


def migrations_head() -> str:
    """The one head of the migrations (Alembic refuses to name one when they have forked)."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


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
    assert version == migrations_head()


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


def _insert_as_at(session, table_name: str, /, **values):
    """Insert a row into table ``table_name`` as the database has it now (an older revision's schema): every
    required column not given takes a plain value of its type. The new row's id."""
    table = Table(table_name, MetaData(), autoload_with=session.connection())
    for column in table.columns:
        if column.name in values or column.nullable or column.primary_key or column.server_default is not None:
            continue
        kind = column.type
        values[column.name] = (datetime.now() if isinstance(kind, DateTime) else date.today()
                               if isinstance(kind, Date) else "[]" if isinstance(kind, JSON)
                               else 0 if isinstance(kind, Integer | Boolean | Numeric) else "")
    return session.execute(table.insert().values(**values)).inserted_primary_key[0]


def test_upgrading_a_sqlite_hub_with_loans_to_0006_keeps_every_row_and_the_one_loan_per_instrument_index(tmp_path):
    """0006 rebuilds the loan table on SQLite, which other tables (and loans themselves) refer to."""
    from datetime import timedelta

    from flask_migrate import upgrade
    from sqlalchemy.exc import IntegrityError

    from loanservice.timeutil import today

    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    app = create_app(config_for(url))
    with app.app_context():
        upgrade(revision="0005")
        session = db.session
        # Rows in SQL, as the schema was at 0005: today's models have columns that later revisions add.
        add = partial(_insert_as_at, session)
        violin = add("instrument_type", name="Violin", family="strings", sizes='["1/2", "3/4"]')
        small, large, spare = (add("instrument", asset_tag=tag, type_id=violin, size=size, status=status,
                                   condition_grade=2)
                               for tag, size, status in (("V-1", "1/2", "available"), ("V-2", "3/4", "on_loan"),
                                                         ("V-3", "3/4", "available")))
        family_id = add("family", name="Dana")
        pupil = add("pupil", name="Sam", family_id=family_id, remission_category="none")
        first = add("loan", instrument_id=small, pupil_id=pupil, status="exchanged", started_on=today(),
                    due_on=today() + timedelta(days=30), closed_on=today(), condition_at_issue=2,
                    condition_at_return=2)
        add("loan", instrument_id=large, pupil_id=pupil, status="open", started_on=today(),
            due_on=today() + timedelta(days=30), condition_at_issue=2, exchanged_from_id=first)  # refers to a loan
        terms = add("terms_version", text="Look after it.", version=1)
        add("agreement", loan_id=first, terms_version_id=terms, pdf=b"%PDF-", sha256="0" * 64, signed_name="")
        session.commit()
        before = session.execute(text("SELECT id, status, exchanged_from_id, closed_on FROM loan ORDER BY id")).all()
        spare_id = spare
        session.remove()

        upgrade()
        session = db.session
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() == migrations_head()
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


def _hub_at_0010_with_held_instruments(url: str):
    """A hub at revision 0010: V-1 held ("reserved") for a loan pending its agreement, V-2 held for a
    reservation, V-3 on loan. Returns the app."""
    from flask_migrate import upgrade

    from loanservice.timeutil import today

    app = create_app(config_for(url))
    with app.app_context():
        upgrade(revision="0010")
        session = db.session
        session.execute(text("INSERT INTO instrument_type (id, name, family, sizes, hire_band, default_accessories) "
                             "VALUES (1, 'Violin', 'strings', '[]', 'A', '')"))
        session.execute(text("INSERT INTO family (id, name, email, phone, address, created_at) "
                             "VALUES (1, 'Dana', '', '', '', CURRENT_TIMESTAMP)"))
        for number, status in ((1, "reserved"), (2, "reserved"), (3, "on_loan")):
            session.execute(text("INSERT INTO asset_tag (tag, kind) VALUES (:tag, 'instrument')"),
                            {"tag": f"V-{number}"})
            session.execute(text(
                "INSERT INTO instrument (id, asset_tag, type_id, size, make, model, serial_number, accessories, "
                "location, status, status_reason, condition_grade, funding_source, send_adapted, notes, "
                "created_at, updated_at) VALUES (:id, :tag, 1, '', '', '', '', '', 'Store', :status, '', 2, '', "
                "false, '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                {"id": number, "tag": f"V-{number}", "status": status})
        for instrument, status in ((1, "pending"), (3, "open")):
            session.execute(text(
                "INSERT INTO loan (instrument_id, family_id, status, started_on, due_on, accessories, "
                "condition_at_issue, damaged, return_note, fee_per_term, remission_category, charge_per_term, "
                "deposit, created_at) VALUES (:instrument, 1, :status, :on, :on, '', 2, false, '', 0, 'none', 0, 0, "
                ":on)"), {"instrument": instrument, "status": status, "on": today()})
        session.commit()
        session.remove()
    return app


def _instrument_statuses() -> dict[str, str]:
    return dict(db.session.execute(text("SELECT asset_tag, status FROM instrument")).all())


def test_0011_moves_the_instruments_held_for_a_pending_loan_to_their_own_status_and_back(tmp_path):
    from flask_migrate import downgrade, upgrade
    from sqlalchemy.exc import IntegrityError

    app = _hub_at_0010_with_held_instruments(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    with app.app_context():
        upgrade(revision="0011")
        assert _instrument_statuses()["V-1"] == "awaiting_signing"
        assert _instrument_statuses()["V-2"] == "reserved"  # a reservation's hold stays reserved
        assert _instrument_statuses()["V-3"] == "on_loan"
        db.session.remove()
        downgrade(revision="0010")
        assert _instrument_statuses()["V-1"] == "reserved"
        assert _instrument_statuses()["V-3"] == "on_loan"
        with pytest.raises(IntegrityError, match="status_known"):  # the old CHECK is back
            db.session.execute(text("UPDATE instrument SET status = 'awaiting_signing' WHERE asset_tag = 'V-2'"))
        db.session.remove()
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
