"""/healthz and /readyz, as a load balancer sees them."""
import pytest

from loanservice import create_app
from loanservice.extensions import limiter
from loanservice.health import add_readiness_check

from .conftest import UNREACHABLE_DATABASE_URL, UNREACHABLE_REDIS_URL, config_for, redis_or_skip


@pytest.fixture
def app_without_database():
    return create_app(config_for(UNREACHABLE_DATABASE_URL))


def test_liveness_answers_without_a_database(app_without_database):
    assert app_without_database.test_client().get("/healthz").status_code == 200


def test_readiness_answers_200_when_the_database_answers(client):
    assert client.get("/readyz").status_code == 200


def test_readiness_names_the_database_and_its_state(client):
    assert client.get("/readyz").get_json()["parts"]["database"] == {"state": "up"}


def test_readiness_leaves_redis_out_when_it_is_not_configured(client):
    assert "redis" not in client.get("/readyz").get_json()["parts"]


def test_readiness_answers_503_when_the_database_is_down(app_without_database):
    assert app_without_database.test_client().get("/readyz").status_code == 503


def test_readiness_says_the_database_is_down(app_without_database):
    part = app_without_database.test_client().get("/readyz").get_json()["parts"]["database"]
    assert part["state"] == "down"


def test_readiness_answers_503_when_redis_is_down(database_url):
    app = create_app(config_for(database_url, REDIS_URL=UNREACHABLE_REDIS_URL))
    assert app.test_client().get("/readyz").status_code == 503


def test_readiness_says_redis_is_down_and_the_database_up(database_url):
    app = create_app(config_for(database_url, REDIS_URL=UNREACHABLE_REDIS_URL))
    parts = app.test_client().get("/readyz").get_json()["parts"]
    assert (parts["database"]["state"], parts["redis"]["state"]) == ("up", "down")


def test_readiness_says_redis_is_up_when_it_answers(database_url):
    app = create_app(config_for(database_url, REDIS_URL=redis_or_skip()))
    assert app.test_client().get("/readyz").get_json()["parts"]["redis"] == {"state": "up"}


def test_a_registered_check_is_reported_with_its_details(app, client):
    add_readiness_check(app, "mail", lambda: {"oldest_queued_seconds": 42})
    assert client.get("/readyz").get_json()["parts"]["mail"] == {"state": "up", "oldest_queued_seconds": 42}


def test_a_registered_check_that_fails_makes_the_app_not_ready(app, client):
    def mail_down():
        raise TimeoutError("smtp.example: timed out")

    add_readiness_check(app, "mail", mail_down)
    assert client.get("/readyz").status_code == 503


def test_the_error_shown_is_its_type_not_its_message(app, client):
    def mail_down():
        raise TimeoutError("smtp.internal.example: timed out")

    add_readiness_check(app, "mail", mail_down)
    assert client.get("/readyz").get_json()["parts"]["mail"] == {"state": "down", "error": "TimeoutError"}


@pytest.fixture
def limited_app(database_url):
    """An app with a default limit of one request an hour on every page."""
    app = create_app(config_for(database_url, RATELIMIT_DEFAULT="1 per hour"))
    yield app
    # Flask-Limiter keeps the default limits on its one Limiter, shared by every app the tests build.
    limiter.limit_manager.set_default_limits([])


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_checks_are_never_rate_limited(limited_app, path):
    client = limited_app.test_client()
    statuses = [client.get(path).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]


def test_a_page_is_rate_limited_under_the_same_default(limited_app):
    """The control for the test above: the default limit does apply to other pages."""
    client = limited_app.test_client()
    statuses = [client.get("/login").status_code for _ in range(2)]
    assert statuses == [200, 429]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_checks_need_no_sign_in(client, path):
    assert client.get(path).status_code == 200
