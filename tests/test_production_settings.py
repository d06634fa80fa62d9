"""What the app insists on when it is run for real: SECRET_KEY, and a word on shared rate limits."""
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loanservice import create_app
from loanservice.config import MissingSecretKey

from .conftest import config_for

ROOT = Path(__file__).parent.parent


def test_several_workers_without_a_secret_key_refuse_to_start(database_url):
    with pytest.raises(MissingSecretKey):
        create_app(config_for(database_url, SECRET_KEY=None, WEB_CONCURRENCY=2))


def test_production_without_a_secret_key_refuses_to_start(database_url):
    with pytest.raises(MissingSecretKey):
        create_app(config_for(database_url, SECRET_KEY=None, PRODUCTION=True))


def test_the_refusal_says_what_to_set(database_url):
    with pytest.raises(MissingSecretKey, match="set SECRET_KEY"):
        create_app(config_for(database_url, SECRET_KEY=None, WEB_CONCURRENCY=4))


def test_several_workers_with_a_secret_key_start(database_url):
    assert create_app(config_for(database_url, WEB_CONCURRENCY=4, PRODUCTION=True)).test_client() \
        .get("/healthz").status_code == 200


def test_several_workers_without_redis_are_warned_that_each_counts_alone(database_url, caplog):
    with caplog.at_level(logging.WARNING, logger="loanservice"):
        create_app(config_for(database_url, WEB_CONCURRENCY=3))
    assert any("each of the 3 workers counts rate limits" in r.getMessage() for r in caplog.records)


def test_several_workers_with_redis_are_not_warned(database_url, caplog):
    with caplog.at_level(logging.WARNING, logger="loanservice"):
        create_app(config_for(database_url, WEB_CONCURRENCY=3, REDIS_URL="redis://127.0.0.1:6379/0"))
    assert not any("counts rate limits" in r.getMessage() for r in caplog.records)


def test_one_worker_without_redis_is_not_warned(database_url, caplog):
    with caplog.at_level(logging.WARNING, logger="loanservice"):
        create_app(config_for(database_url))
    assert not any("counts rate limits" in r.getMessage() for r in caplog.records)


def _gunicorn_setting(name: str, **env) -> str:
    """A setting as gunicorn reads it from gunicorn.conf.py in the checkout, with ``env`` set."""
    done = subprocess.run([str(Path(sys.executable).with_name("gunicorn")), "--print-config", "wsgi:app"],
                          cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    return next(line.split("=", 1)[1].strip() for line in done.stdout.splitlines()
                if line.split("=", 1)[0].strip() == name)


def test_gunicorn_takes_its_workers_from_web_concurrency():
    assert _gunicorn_setting("workers", WEB_CONCURRENCY="5") == "5"


def test_gunicorn_has_no_access_log_of_its_own():
    """The app's request line is the access log: gunicorn's would show query strings and tokens."""
    assert _gunicorn_setting("accesslog") == "None"



def _address_rate_limits_count_by(database_url, forwarded_for: str, **settings) -> str:
    """The client address that rate limits are counted by, for a request the proxy forwarded."""
    from flask_limiter.util import get_remote_address

    app = create_app(config_for(database_url, **settings))
    app.add_url_rule("/address", "address", get_remote_address)
    return app.test_client().get("/address", headers={"X-Forwarded-For": forwarded_for}).get_data(as_text=True)


def test_behind_a_trusted_proxy_rate_limits_count_by_the_client_s_address(database_url):
    assert _address_rate_limits_count_by(database_url, "203.0.113.7", TRUSTED_PROXIES=1) == "203.0.113.7"


def test_behind_a_trusted_proxy_only_the_address_it_added_is_believed(database_url):
    """A client's own X-Forwarded-For comes first; the proxy appends the address it saw."""
    assert _address_rate_limits_count_by(database_url, "10.9.9.9, 203.0.113.7", TRUSTED_PROXIES=1) == "203.0.113.7"


def test_without_a_trusted_proxy_a_forwarded_address_is_not_believed(database_url):
    assert _address_rate_limits_count_by(database_url, "203.0.113.7") == "127.0.0.1"

def test_behind_a_trusted_proxy_https_is_read_from_the_proxy(database_url):
    client = create_app(config_for(database_url, TRUSTED_PROXIES=1)).test_client()
    assert "Strict-Transport-Security" in client.get("/login", headers={"X-Forwarded-Proto": "https"}).headers
