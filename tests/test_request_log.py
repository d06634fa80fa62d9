"""One log line per request, with a request id the error page shows; no names, emails or tokens."""
import logging
import re

import pytest

from loanservice import create_app

from .conftest import config_for, login


@pytest.fixture
def request_lines(caplog):
    """The request log's lines, as the requests made in the test wrote them."""
    caplog.set_level(logging.INFO, logger="loanservice.requests")

    def lines():
        return [r.getMessage() for r in caplog.records if r.name == "loanservice.requests"]

    return lines


def test_each_request_writes_one_line(client, request_lines):
    client.get("/login")
    assert len(request_lines()) == 1


def test_the_line_has_the_method_path_and_status(client, request_lines):
    client.get("/login")
    assert request_lines()[0].startswith("GET /login 200 ")


def test_the_line_has_the_time_taken_in_milliseconds(client, request_lines):
    client.get("/login")
    assert re.search(r" \d+\.\dms ", request_lines()[0])


def test_the_proxy_s_request_id_is_logged(client, request_lines):
    client.get("/login", headers={"X-Request-ID": "edge-42-abc"})
    assert "request_id=edge-42-abc" in request_lines()[0]


def test_the_proxy_s_request_id_is_sent_back(client):
    assert client.get("/login", headers={"X-Request-ID": "edge-42-abc"}).headers["X-Request-ID"] == "edge-42-abc"


def test_a_request_id_is_made_when_the_proxy_sends_none(client):
    assert re.fullmatch(r"[0-9a-f]{32}", client.get("/login").headers["X-Request-ID"])


def test_a_request_id_that_could_forge_log_lines_is_replaced(client):
    sent = "x\nGET /admin 200 user_id=1"
    assert client.get("/login", headers={"X-Request-ID": sent.replace("\n", " ")}).headers["X-Request-ID"] != sent


def test_the_line_has_the_same_id_as_the_response(client, request_lines):
    response = client.get("/login")
    assert f"request_id={response.headers['X-Request-ID']} " in request_lines()[0]


def test_a_signed_in_request_logs_the_user_s_id(client, factory, request_lines):
    user = factory.user("staff")
    login(client, user)
    client.get("/instruments")
    assert request_lines()[-1].endswith(f"user_id={user.id}")


def test_a_signed_in_request_never_logs_the_user_s_email(client, factory, request_lines):
    user = factory.user("staff", email="ann.smith@example.org")
    login(client, user)
    client.get("/instruments")
    assert "ann.smith" not in request_lines()[-1]


def test_a_signed_out_request_logs_no_user(client, request_lines):
    client.get("/login")
    assert request_lines()[0].endswith("user_id=-")


def test_the_query_string_is_never_logged(client, request_lines):
    client.get("/catalogue?token=s3cr3t-value")
    assert "s3cr3t-value" not in request_lines()[0]


def test_a_token_in_the_path_is_logged_as_its_name(client, request_lines):
    client.get("/reset/s3cr3t-value")
    assert request_lines()[0].startswith("GET /reset/<token> ")


def test_a_line_break_in_the_path_stays_on_one_line(client, request_lines):
    client.get("/instruments%0AGET%20/admin")
    assert "\n" not in request_lines()[0]


@pytest.fixture
def failing_client(database_url):
    """A client of an app with a page that fails, shown as a server would (not raised into the test)."""
    app = create_app(config_for(database_url, PROPAGATE_EXCEPTIONS=False))

    @app.get("/fails")
    def fails():
        raise RuntimeError("a bug")

    return app.test_client()


def test_the_500_page_shows_the_request_id(failing_client):
    response = failing_client.get("/fails", headers={"X-Request-ID": "edge-500-abc"})
    assert "edge-500-abc" in response.get_data(as_text=True)


def test_a_failed_request_is_logged_with_its_500(failing_client, request_lines):
    failing_client.get("/fails", headers={"X-Request-ID": "edge-500-abc"})
    assert request_lines()[-1].startswith("GET /fails 500 ")
