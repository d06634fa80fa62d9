"""When a part around the app fails: the database or Redis cannot be reached."""
import logging

import pytest

from loanservice import create_app
from loanservice.extensions import db, limiter

from .conftest import AS_OF, UNREACHABLE_DATABASE_URL, UNREACHABLE_REDIS_URL, config_for, login

DATABASE_DOWN = "It cannot reach its database just now."


# ---------------------------------------------------------------- the database is down


@pytest.fixture
def app_without_database():
    app = create_app(config_for(UNREACHABLE_DATABASE_URL))
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def signed_in_without_database(app_without_database, client, factory):
    """A client signed in as staff (on the working database) whose next requests find the database down."""
    login(client, factory.user("staff"))
    down = app_without_database.test_client()
    down.set_cookie("session", client.get_cookie("session").value)
    return down


def test_a_page_that_reads_the_database_answers_503(app_without_database):
    assert app_without_database.test_client().get("/catalogue").status_code == 503


def test_the_503_page_says_the_database_cannot_be_reached(app_without_database):
    page = app_without_database.test_client().get("/catalogue").get_data(as_text=True)
    assert DATABASE_DOWN in page


def test_the_503_page_asks_to_come_back_later(app_without_database):
    assert app_without_database.test_client().get("/catalogue").headers["Retry-After"] == "30"


def test_a_signed_in_page_answers_503(signed_in_without_database):
    assert signed_in_without_database.get("/instruments").status_code == 503


def test_the_signed_in_503_page_is_the_plain_one(signed_in_without_database):
    assert DATABASE_DOWN in signed_in_without_database.get("/instruments").get_data(as_text=True)


def test_a_signed_in_post_answers_503(signed_in_without_database):
    assert signed_in_without_database.post("/types/new", data={"name": "Cello"}).status_code == 503


def test_an_address_with_nothing_there_answers_503_for_a_signed_in_user(database_url, factory):
    """The 404 page's menu asks who is signed in, so it fails too: the plain page is shown instead."""
    working = create_app(config_for(database_url))
    client = working.test_client()
    login(client, factory.user("staff"))
    app = create_app(config_for(UNREACHABLE_DATABASE_URL, PROPAGATE_EXCEPTIONS=False))
    down = app.test_client()
    down.set_cookie("session", client.get_cookie("session").value)
    assert down.get("/no-such-page").status_code == 503


def test_a_script_asking_for_json_gets_json(app_without_database):
    response = app_without_database.test_client().get("/catalogue", headers={"Accept": "application/json"})
    assert response.get_json()["ok"] is False


def test_the_503_page_quotes_the_request_id(app_without_database):
    response = app_without_database.test_client().get("/catalogue", headers={"X-Request-ID": "req-1234abcd"})
    assert "req-1234abcd" in response.get_data(as_text=True)


# ---------------------------------------------------------------- Redis is down


@pytest.fixture
def app_without_redis(database_url, factory):
    # Flask-Limiter has one Limiter, which every app the tests build shares (a server has one app per
    # process): it counts in the storage of the app built last, so this one is built after the
    # factory's; and it keeps "the storage is down" on itself: start and leave it as a fresh process.
    limiter._storage_dead = False
    yield create_app(config_for(database_url, REDIS_URL=UNREACHABLE_REDIS_URL,
                                RATELIMIT_STORAGE_URI=UNREACHABLE_REDIS_URL))
    limiter._storage_dead = False


def test_signing_in_works_without_redis(app_without_redis, factory):
    user = factory.user("staff")
    client = app_without_redis.test_client()
    assert client.post("/login", data={"email": user.email, "password": "correct-horse-battery"}).status_code == 302


def test_a_wrong_password_is_refused_as_usual_without_redis(app_without_redis, factory):
    user = factory.user("staff")
    client = app_without_redis.test_client()
    assert client.post("/login", data={"email": user.email, "password": "wrong"}).status_code == 401


def test_failed_sign_ins_are_still_limited_without_redis(app_without_redis, factory):
    user = factory.user("staff")
    client = app_without_redis.test_client()
    statuses = [client.post("/login", data={"email": user.email, "password": "wrong"}).status_code
                for _ in range(11)]
    assert statuses == [401] * 10 + [429]


def test_the_log_warns_that_limits_are_counted_in_memory(app_without_redis, factory, caplog):
    user = factory.user("staff")
    with caplog.at_level(logging.WARNING, logger="flask-limiter"):
        app_without_redis.test_client().post("/login", data={"email": user.email, "password": "wrong"})
    assert any("falling back to in-memory" in record.getMessage() for record in caplog.records)


def test_registering_works_without_redis(app_without_redis):
    client = app_without_redis.test_client()
    response = client.post("/register", data={"name": "Alex Parent", "email": "alex@example.org",
                                              "password": "a-long-password", "confirm": "a-long-password"})
    assert response.status_code == 303


def test_asking_for_a_password_reset_works_without_redis(app_without_redis, factory):
    factory.parent(email="jo@example.org")
    client = app_without_redis.test_client()
    assert client.post("/reset", data={"email": "jo@example.org"}).status_code == 303


def test_a_notice_run_that_cannot_reach_the_job_queue_answers_503(app_without_redis, factory, overdue):
    client = app_without_redis.test_client()
    login(client, factory.user("staff"))
    assert client.post("/notices/run", data={"as_of": AS_OF.isoformat()}).status_code == 503


def test_a_notice_run_that_cannot_reach_the_job_queue_says_it_cannot_start(app_without_redis, factory, overdue):
    client = app_without_redis.test_client()
    login(client, factory.user("staff"))
    page = client.post("/notices/run", data={"as_of": AS_OF.isoformat()}).get_data(as_text=True)
    assert "The run cannot start: nothing was done" in page


def test_a_notice_run_that_cannot_start_sends_nothing(app_without_redis, factory, overdue):
    from sqlalchemy import func, select

    from loanservice.documents.models import Notice

    from .conftest import in_app

    client = app_without_redis.test_client()
    login(client, factory.user("staff"))
    client.post("/notices/run", data={"as_of": AS_OF.isoformat()})
    with in_app(app_without_redis) as session:
        assert session.scalar(select(func.count()).select_from(Notice)) == 0


def test_a_run_s_progress_page_says_the_job_queue_cannot_be_reached(app_without_redis, factory):
    client = app_without_redis.test_client()
    login(client, factory.user("staff"))
    response = client.get("/notices/runs/0a1b2c")
    assert (response.status_code, "The job queue (Redis) cannot be reached." in response.get_data(as_text=True)) \
        == (503, True)
