"""Headers on every response: the content security policy, HSTS over https, no caching of pages."""
from datetime import timedelta

import pytest

from loanservice import create_app
from loanservice.loans.models import Loan
from loanservice.timeutil import today

from .conftest import config_for, in_app, login


def test_the_content_security_policy_forbids_plugins(client):
    assert "object-src 'none'" in client.get("/login").headers["Content-Security-Policy"]


def test_the_content_security_policy_forbids_changing_the_base_address(client):
    assert "base-uri 'none'" in client.get("/login").headers["Content-Security-Policy"]


def test_the_content_security_policy_keeps_scripts_to_the_site(client):
    assert "script-src 'self'" in client.get("/login").headers["Content-Security-Policy"]


def test_hsts_is_sent_when_the_public_address_is_https(database_url):
    client = create_app(config_for(database_url, PUBLIC_BASE_URL="https://loans.hub.example")).test_client()
    assert client.get("/login").headers["Strict-Transport-Security"] == "max-age=31536000"


def test_hsts_is_sent_when_the_request_came_over_https(client):
    assert "Strict-Transport-Security" in client.get("/login", base_url="https://hub.test").headers


def test_hsts_is_not_sent_over_plain_http(client):
    assert "Strict-Transport-Security" not in client.get("/login").headers


@pytest.mark.parametrize("role, path", [("staff", "/instruments"), ("parent", "/"), ("admin", "/admin/users")])
def test_a_signed_in_page_is_never_stored(client, factory, role, path):
    login(client, factory.user(role))
    assert client.get(path).headers["Cache-Control"] == "no-store"


def test_a_signed_out_page_is_never_stored(client):
    """It carries the form's token, or an emailed link's."""
    assert client.get("/login").headers["Cache-Control"] == "no-store"


def test_an_error_page_is_never_stored(client):
    assert client.get("/no-such-page").headers["Cache-Control"] == "no-store"


def test_a_pdf_is_never_stored(app, client, factory):
    from loanservice.loans import lending

    instrument = factory.instrument()
    loan_id = factory.loan(instrument, factory.other_borrower(), due_on=today() + timedelta(days=30))
    with in_app(app) as session:
        lending.check_in(session, None, session.get(Loan, loan_id), grade=2)
        session.commit()
    login(client, factory.user("staff"))
    response = client.get(f"/loans/{loan_id}/receipt.pdf")
    assert (response.mimetype, response.cache_control.no_store) == ("application/pdf", True)


def test_static_files_keep_their_caching(client):
    assert client.get("/static/app.css").cache_control.no_store is False
