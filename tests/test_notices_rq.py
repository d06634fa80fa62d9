"""Notice runs started from the web go to a real RQ worker (``flask worker``) when REDIS_URL is set.

Needs Redis on 127.0.0.1:6379 (REDIS_TEST_URL to use another); skipped when it cannot be
reached. Each test uses its own queue name, so parallel runs do not take each other's jobs.
"""
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from loanservice.documents.models import Notice

from .conftest import AS_OF, in_app, login, mail_to, send_mail

REDIS_TEST_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")
FLASK = Path(sys.executable).with_name("flask")


def _redis_or_skip():
    from redis import Redis
    from redis.exceptions import RedisError

    connection = Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1)
    try:
        connection.ping()
    except RedisError as error:
        pytest.skip(f"Redis is not reachable at {REDIS_TEST_URL} ({error}); start redis-server to run RQ tests")
    if not FLASK.exists():
        pytest.skip(f"no flask command at {FLASK}")
    return connection


@pytest.fixture
def queued(app, database_url, smtp_server):
    """The app with REDIS_URL and a queue of its own; ``queued.work()`` runs a real ``flask worker --burst``."""
    connection = _redis_or_skip()
    name = f"loanservice-test-{uuid.uuid4().hex[:12]}"
    mail_to(app, smtp_server)
    app.config.update(REDIS_URL=REDIS_TEST_URL, NOTICES_QUEUE=name)

    class Worker:
        def work(self, timeout=120):
            env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "rq-test-secret",
                   "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(smtp_server.port), "MAIL_TIMEOUT": "5",
                   "NOTICES_QUEUE": name, "REDIS_URL": REDIS_TEST_URL, "PYTHONPATH": str(Path(__file__).parent.parent)}
            done = subprocess.run([str(FLASK), "--app", "wsgi", "worker", "--burst", name],
                                  env=env, capture_output=True, text=True, timeout=timeout,
                                  cwd=Path(__file__).parent.parent)
            assert done.returncode == 0, done.stdout + done.stderr
            return done

    yield Worker()
    from rq import Queue

    Queue(name, connection=connection).delete(delete_jobs=True)
    connection.delete(f"loanservice:notices:{name}:current-job")


def test_a_web_run_goes_to_an_rq_worker_with_a_progress_page(app, client, factory, overdue, smtp_server,  # noqa: F811
                                                             queued):
    login(client, factory.user("staff"))
    response = client.post("/notices/run", data={"as_of": AS_OF.isoformat()})
    assert response.status_code == 303
    progress_url = response.headers["Location"]
    assert progress_url.startswith("/notices/runs/")
    # Nothing is sent in the request: the job waits for a worker.
    assert smtp_server.messages == []
    waiting = client.get(progress_url).get_data(as_text=True)
    assert "Waiting for a worker" in waiting and 'http-equiv="refresh"' in waiting
    assert "notices-progress.js" in waiting and "<script>" not in waiting  # no inline script (CSP)
    state = client.get(progress_url + "/progress.json").get_json()
    assert state["status"] == "queued" and state["finished"] is False
    # A second click joins the run already queued rather than queueing another.
    again = client.post("/notices/run", data={"as_of": AS_OF.isoformat()})
    assert again.headers["Location"] == progress_url
    assert "A run is going now" in client.get("/notices").get_data(as_text=True)

    queued.work()

    state = client.get(progress_url + "/progress.json").get_json()
    assert state["status"] == "finished" and state["finished"] is True, state
    assert (state["emailed"], state["printed"], state["done"], state["total"]) == (2, 1, 3, 3)
    assert sorted(str(m["To"]) for m in smtp_server.messages) == ["jones@example.org", "music@oaklane.example"]
    page = client.get(progress_url).get_data(as_text=True)
    assert "Finished:" in page and "2 emailed, 1 to print" in page and 'http-equiv="refresh"' not in page
    with in_app(app) as session:
        notices = session.scalars(select(Notice)).all()
        assert sorted((n.channel, n.status) for n in notices) == [("email", "sent"), ("email", "sent"),
                                                                   ("post", "sent")]
    assert "A run is going now" not in client.get("/notices").get_data(as_text=True)


def test_a_worker_run_reports_letters_held_back_for_want_of_an_address(app, client, factory, overdue,  # noqa: F811
                                                                        smtp_server, queued):
    from loanservice.borrowers.models import Family

    with in_app(app) as session:
        session.scalars(select(Family).where(Family.name == "Mrs Smith")).one().address = ""
        session.commit()
    login(client, factory.user("staff"))
    progress_url = client.post("/notices/run", data={"as_of": AS_OF.isoformat()}).headers["Location"]
    queued.work()
    state = client.get(progress_url + "/progress.json").get_json()
    assert (state["emailed"], state["printed"], state["held_back"], state["done"]) == (2, 0, ["Mrs Smith"], 3)
    page = client.get(progress_url).get_data(as_text=True)
    assert "1 letter by post held back (not printed): no postal address on record" in page and "Mrs Smith" in page
    assert "Download the letters to print" not in page


def test_a_refused_run_shows_why_and_unknown_jobs_are_404(app, client, factory, overdue, queued):  # noqa: F811
    login(client, factory.user("staff"))
    assert client.get(f"/notices/runs/{uuid.uuid4()}").status_code == 404
    assert client.get("/notices/runs/not-a-job/progress.json").status_code == 404
    # No hub name: the web refuses before queueing anything.
    app.config["HUB_NAME"] = ""
    refused = client.post("/notices/run", data={"as_of": AS_OF.isoformat()})
    assert refused.status_code == 409 and "HUB_NAME" in refused.get_data(as_text=True)
    app.config["HUB_NAME"] = "Test Hub"
    # A refusal in the worker (a run before the last one, queued without the page's check) is shown.
    from datetime import timedelta

    from loanservice.documents import tasks

    with in_app(app) as session:
        session.add(Notice(stage_id=1, as_of=AS_OF, days_overdue=23, channel="post", recipient_name="x",
                           recipient_email="", status="pending", loan_id=1))
        session.commit()
    with app.test_request_context():
        job = tasks.enqueue_run(AS_OF - timedelta(days=1), None)
    queued.work()
    state = client.get(f"/notices/runs/{job.id}/progress.json").get_json()
    assert state["finished"] and state["state"] == "refused" and "cannot go back" in state["error"], state
    assert "cannot go back" in client.get(f"/notices/runs/{job.id}").get_data(as_text=True)
    client.post("/logout")
    login(client, factory.user("parent"))
    assert client.get(f"/notices/runs/{uuid.uuid4()}").status_code == 403


def test_without_redis_the_run_stays_in_the_request(app, client, factory, overdue, smtp_server):  # noqa: F811
    mail_to(app, smtp_server)
    assert not app.config.get("REDIS_URL")
    login(client, factory.user("staff"))
    response = client.post("/notices/run", data={"as_of": AS_OF.isoformat()})
    assert response.status_code == 303 and "/notices?as_of=" in response.headers["Location"]
    assert smtp_server.messages == []  # the emails are queued; the mail sender delivers them
    send_mail(app)
    assert len(smtp_server.messages) == 2
    assert client.get(f"/notices/runs/{uuid.uuid4()}").status_code == 404
