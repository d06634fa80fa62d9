"""Mail goes through the outbox: no page talks to the mail server; a sender delivers after the commit."""
import os
import socket
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from loanservice.accounts.models import User
from loanservice.mail import PENDING_JOB_KEY, OutboxMessage, queue_mail
from loanservice.mail.sender import LEASE, claim
from loanservice.timeutil import utcnow

from .conftest import AS_OF, in_app, login, mail_link, mail_to, send_mail
from .pages import submit

REDIS_TEST_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")
FLASK = Path(sys.executable).with_name("flask")


def closed_port() -> int:
    """A loopback port nothing listens on: a mail server that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def hanging_smtp():
    """A mail server that takes connections and never answers; ``.connections`` counts them."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()

    class Hanging:
        port = listener.getsockname()[1]
        connections = held

    yield Hanging()
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def register(client, email="alex@example.org"):
    return submit(client, "/register", {"name": "Alex Parent", "email": email, "password": "a-long-password",
                                        "confirm": "a-long-password"}, follow_redirects=True)


def outbox(app) -> list[OutboxMessage]:
    with in_app(app) as session:
        messages = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        session.expunge_all()
        return messages


def test_with_the_mail_server_down_registration_succeeds_and_the_sender_delivers_later(app, client, smtp_server):
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=closed_port(), MAIL_TIMEOUT=1, MAIL_RETRY_SECONDS=0)
    page = register(client)
    assert page.status_code == 200
    assert "An email is on its way to the address you gave" in page.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(User.role).where(User.email == "alex@example.org")) == "parent"
    [queued] = outbox(app)
    assert queued.status == "queued"
    assert send_mail(app).sent == 0  # still down: the message waits, with the reason
    [waiting] = outbox(app)
    assert waiting.status == "queued"
    assert "ConnectionRefusedError" in waiting.error
    mail_to(app, smtp_server)  # the server is back
    assert send_mail(app).sent == 1
    [message] = smtp_server.messages
    assert "confirm your email address" in message["Subject"]
    assert client.get(mail_link(message, "/confirm/")).status_code == 200
    [sent] = outbox(app)
    assert sent.status == "sent"


def test_a_hanging_mail_server_is_never_waited_for_by_a_page(app, hanging_smtp):
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=hanging_smtp.port, MAIL_TIMEOUT=1, MAIL_RETRY_SECONDS=0)
    pages = [register(app.test_client(), f"parent{n}@example.org") for n in range(4)]
    assert [p.status_code for p in pages] == [200, 200, 200, 200]
    assert hanging_smtp.connections == []  # no request opened a connection to the mail server
    assert [m.status for m in outbox(app)] == ["queued"] * 4
    assert send_mail(app).sent == 0  # the sender gives up on the first (timed out) and leaves the rest
    assert "timed out" in outbox(app)[0].error


def test_a_message_the_server_keeps_deferring_is_retried_then_failed_with_its_answer(app, client, smtp_server):
    mail_to(app, smtp_server)
    app.config.update(MAIL_RETRY_SECONDS=0, MAIL_MAX_ATTEMPTS=3)
    smtp_server.defer.add("alex@example.org")
    register(client)
    send_mail(app)
    [first] = outbox(app)
    assert (first.status, first.attempts) == ("queued", 1)
    send_mail(app)
    send_mail(app)
    [last] = outbox(app)
    assert (last.status, last.attempts) == ("failed", 3)
    assert "451 Mailbox busy, try again later" in last.error
    assert smtp_server.messages == []


def test_a_message_is_not_tried_again_before_its_backoff(app, client, smtp_server):
    mail_to(app, smtp_server)
    app.config.update(MAIL_RETRY_SECONDS=60)
    smtp_server.defer.add("alex@example.org")
    register(client)
    send_mail(app)
    send_mail(app)
    [message] = outbox(app)
    assert message.attempts == 1


def test_a_message_refused_for_good_fails_at_once(app, client, smtp_server):
    mail_to(app, smtp_server)
    smtp_server.refuse.add("alex@example.org")
    register(client)
    assert send_mail(app).failed == ["alex@example.org: alex@example.org: 550 No such mailbox"]
    [message] = outbox(app)
    assert message.status == "failed"


def test_a_change_rolled_back_sends_nothing(app, smtp_server):
    mail_to(app, smtp_server)
    with in_app(app) as session:
        queue_mail(session, app.config, to="alex@example.org", subject="Not to be sent", body="Never.")
        session.rollback()
    assert outbox(app) == []


def test_two_senders_never_take_the_same_message_and_a_dead_senders_lease_lapses(app):
    with in_app(app) as session:
        for n in range(3):
            queue_mail(session, app.config, to=f"p{n}@example.org", subject="Hello", body="Hello.")
        session.commit()
    now = utcnow()
    with in_app(app) as first, in_app(app) as second:
        taken = claim(first, now)
        assert len(taken) == 3
        assert claim(second, now) == []
        assert len(claim(second, now + LEASE + timedelta(seconds=1))) == 3


def test_flask_mail_send_delivers_once_and_says_what_it_did(app, client, smtp_server):
    mail_to(app, smtp_server)
    register(client)
    result = app.test_cli_runner().invoke(args=["mail", "send"])
    assert result.exit_code == 0, result.output
    assert "1 sent, 0 to retry, 0 failed." in result.output
    again = app.test_cli_runner().invoke(args=["mail", "send"])
    assert "0 sent" in again.output
    assert len(smtp_server.messages) == 1


def test_staff_see_failed_mail_with_the_error_and_send_it_again(app, client, factory, smtp_server):
    mail_to(app, smtp_server)
    smtp_server.refuse.add("alex@example.org")
    register(app.test_client())
    send_mail(app)
    login(client, factory.user("staff"))
    assert 'href="/mail"' in client.get("/dashboard").get_data(as_text=True)  # in the staff menu
    failed = client.get("/mail?state=failed").get_data(as_text=True)
    assert "alex@example.org" in failed
    assert "550 No such mailbox" in failed
    assert "alex@example.org" not in client.get("/mail?state=sent").get_data(as_text=True)
    smtp_server.refuse.clear()
    resent = submit(client, "/mail?state=failed", follow_redirects=True)
    assert "The message to alex@example.org is queued again." in resent.get_data(as_text=True)
    send_mail(app)
    assert [m["To"] for m in smtp_server.messages] == ["alex@example.org"]
    assert "alex@example.org" in client.get("/mail?state=sent").get_data(as_text=True)


def test_the_mail_page_is_for_staff_and_admins_only_and_pages_through_the_messages(app, client, factory):
    with in_app(app) as session:
        for n in range(app.config["PAGE_SIZE"] + 1):
            queue_mail(session, app.config, to=f"p{n}@example.org", subject=f"Message {n}", body="Hello.")
        session.commit()
    login(client, factory.user("parent"))
    assert client.get("/mail").status_code == 403
    client.post("/logout")
    login(client, factory.user("admin"))
    first = client.get("/mail").get_data(as_text=True)
    assert "page 1 of 2" in first
    assert "p0@example.org" not in first  # newest first
    assert "p0@example.org" in client.get("/mail?page=2").get_data(as_text=True)


def test_a_parent_asks_for_the_confirmation_link_again(app, client, smtp_server):
    mail_to(app, smtp_server)
    register(client)
    again = submit(client, "/register/check-your-email", {"email": "alex@example.org"}, follow_redirects=True)
    assert "a new link is on its way" in again.get_data(as_text=True)
    send_mail(app)
    assert [m["To"] for m in smtp_server.messages] == ["alex@example.org", "alex@example.org"]


def test_asking_for_the_confirmation_link_again_sends_nothing_to_an_unknown_address(app, client, smtp_server):
    mail_to(app, smtp_server)
    submit(client, "/register/check-your-email", {"email": "nobody@example.org"})
    assert outbox(app) == []


def test_asking_for_the_confirmation_link_again_is_rate_limited(app, client):
    statuses = [submit(client, "/register/check-your-email", {"email": "alex@example.org"}).status_code
                for _ in range(4)]
    assert statuses[-1] == 429


def test_the_reset_sent_page_leads_to_another_link(app, client, factory, smtp_server):
    mail_to(app, smtp_server)
    factory.parent(email="jo@example.org")
    sent = submit(client, "/reset", {"email": "jo@example.org"}, follow_redirects=True)
    assert "is on its way" in sent.get_data(as_text=True)
    assert 'href="/reset"' in sent.get_data(as_text=True)
    submit(client, "/reset", {"email": "jo@example.org"})
    send_mail(app)
    assert len(smtp_server.messages) == 2


def test_a_notices_run_with_the_mail_server_down_fails_and_a_rerun_sends_only_the_rest(app, overdue, smtp_server,
                                                                                       tmp_path):
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=closed_port(), MAIL_TIMEOUT=1)
    first = app.test_cli_runner().invoke(args=["notices", "run", "--as-of", AS_OF.isoformat(),
                                               "-o", str(tmp_path / "a.pdf")])
    assert first.exit_code != 0
    assert "2 notices could not be sent; run again to retry them." in first.output
    mail_to(app, smtp_server)
    second = app.test_cli_runner().invoke(args=["notices", "run", "--as-of", AS_OF.isoformat(),
                                                "-o", str(tmp_path / "b.pdf")])
    assert second.exit_code == 0, second.output
    assert "0 new notices; 2 emailed, 0 to print." in second.output
    assert sorted(str(m["To"]) for m in smtp_server.messages) == ["jones@example.org", "music@oaklane.example"]


def test_with_redis_down_the_mail_stays_queued_for_the_sender(app, client, smtp_server):
    mail_to(app, smtp_server)
    app.config.update(REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")
    page = register(client)
    assert "An email is on its way" in page.get_data(as_text=True)
    send_mail(app)
    assert len(smtp_server.messages) == 1


def test_with_redis_an_rq_worker_delivers_the_mail_after_the_commit(app, client, database_url, smtp_server):
    from redis import Redis
    from redis.exceptions import RedisError
    from rq import Queue

    connection = Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1)
    try:
        connection.ping()
    except RedisError as error:
        pytest.skip(f"Redis is not reachable at {REDIS_TEST_URL} ({error})")
    name = f"loanservice-test-{uuid.uuid4().hex[:12]}"
    mail_to(app, smtp_server)
    app.config.update(REDIS_URL=REDIS_TEST_URL, NOTICES_QUEUE=name)
    try:
        register(client)
        register(app.test_client(), "sam@example.org")
        assert smtp_server.messages == []  # the requests only queued them
        assert Queue(name, connection=connection).count == 1  # one sender job waiting is enough
        env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "rq-test-secret", "MAIL_SERVER": "127.0.0.1",
               "MAIL_PORT": str(smtp_server.port), "MAIL_TIMEOUT": "5", "REDIS_URL": REDIS_TEST_URL,
               "PYTHONPATH": str(Path(__file__).parent.parent)}
        done = subprocess.run([str(FLASK), "--app", "wsgi", "worker", "--burst", name], env=env,
                              capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)
        assert done.returncode == 0, done.stdout + done.stderr
        assert sorted(m["To"] for m in smtp_server.messages) == ["alex@example.org", "sam@example.org"]
    finally:
        Queue(name, connection=connection).delete(delete_jobs=True)
        connection.delete(PENDING_JOB_KEY.format(queue=name))


def test_readiness_reports_how_long_the_oldest_queued_mail_has_waited(app):
    from loanservice.mail.sender import readiness

    with in_app(app) as session:
        assert readiness(session) == {"queued": 0, "oldest_queued_seconds": None}
        message = queue_mail(session, app.config, to="p@example.org", subject="Hello", body="Hello.")
        message.created_at = utcnow() - timedelta(minutes=10)
        session.commit()
        assert readiness(session)["oldest_queued_seconds"] >= 600


def test_readyz_shows_the_oldest_queued_mail(app, client):
    with in_app(app) as session:
        message = queue_mail(session, app.config, to="p@example.org", subject="Hello", body="Hello.")
        message.created_at = utcnow() - timedelta(minutes=10)
        session.commit()
    mail = client.get("/readyz").get_json()["parts"]["mail"]
    assert mail["oldest_queued_seconds"] >= 600
