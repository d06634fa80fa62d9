"""People: invitations by email (one or from a CSV file), each person's sessions, deactivating a user."""
import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from loanservice.accounts.models import Invitation, User, UserSession
from loanservice.timeutil import utcnow

from .conftest import config_for, in_app, login, mail_link, send_mail
from .pages import submit, submit_on


@pytest.fixture
def mail_app(database_url, smtp_server):
    """The app sending mail to a real SMTP server on loopback."""
    from loanservice import create_app
    from loanservice.extensions import db

    app = create_app(config_for(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def admin(mail_app):
    from .conftest import Factory

    return Factory(mail_app).user("admin", email="boss@hub.example")


def admin_client_of(app, admin):
    client = app.test_client()
    login(client, admin)
    return client


def invite(client, email="new.staff@hub.example", name="Nia Store", role="staff"):
    return submit(client, "/admin/users/invite", {"email": email, "name": name, "role": role})


def page_of(response) -> str:
    return response.get_data(as_text=True)


def test_an_invited_person_sets_their_password_from_the_emailed_link_and_signs_in(mail_app, smtp_server, admin):
    client = admin_client_of(mail_app, admin)
    response = invite(client)
    assert response.status_code == 303
    assert "Invitation sent to new.staff@hub.example" in page_of(client.get(response.location))
    send_mail(mail_app)
    [message] = smtp_server.messages
    assert message["To"] == "new.staff@hub.example"
    link = mail_link(message, "/invitation/")
    newcomer = mail_app.test_client()
    form_page = newcomer.get(link)
    assert "Set your password" in page_of(form_page)
    response = submit(newcomer, link, {"new_password": "violins-and-violas", "confirm": "violins-and-violas"})
    assert response.status_code == 303
    signed_in = submit(newcomer, "/login", {"email": "new.staff@hub.example", "password": "violins-and-violas"})
    assert signed_in.status_code == 302
    assert "Sign out <span class=\"muted\">(new.staff@hub.example)" in page_of(newcomer.get("/instruments"))


def test_an_invitation_link_works_once(mail_app, smtp_server, admin):
    invite(admin_client_of(mail_app, admin))
    send_mail(mail_app)
    link = mail_link(smtp_server.messages[0], "/invitation/")
    newcomer = mail_app.test_client()
    submit(newcomer, link, {"new_password": "violins-and-violas", "confirm": "violins-and-violas"})
    again = newcomer.get(link)
    assert again.status_code == 410
    assert "already been used" in page_of(again)


def test_an_expired_invitation_is_refused(mail_app, smtp_server, admin):
    invite(admin_client_of(mail_app, admin))
    send_mail(mail_app)
    link = mail_link(smtp_server.messages[0], "/invitation/")
    with in_app(mail_app) as session:
        session.execute(update(Invitation).values(expires_at=utcnow() - timedelta(minutes=1)))
        session.commit()
    response = mail_app.test_client().get(link)
    assert response.status_code == 410
    assert "has expired" in page_of(response)


def test_the_users_list_shows_who_is_invited_and_not_yet_signed_up(mail_app, admin):
    client = admin_client_of(mail_app, admin)
    invite(client)
    assert '<td data-label="Access">Invited</td>' in page_of(client.get("/admin/users"))


def test_an_invitation_to_an_address_in_use_is_refused_clearly(mail_app, smtp_server, admin):
    client = admin_client_of(mail_app, admin)
    response = invite(client, email="BOSS@hub.example")
    assert response.status_code == 422
    assert "boss@hub.example already has an account" in page_of(response)
    send_mail(mail_app)
    assert smtp_server.messages == []


def test_a_weak_password_from_the_link_is_refused_and_the_link_still_works(mail_app, smtp_server, admin):
    invite(admin_client_of(mail_app, admin))
    send_mail(mail_app)
    link = mail_link(smtp_server.messages[0], "/invitation/")
    newcomer = mail_app.test_client()
    response = submit(newcomer, link, {"new_password": "password123", "confirm": "password123"})
    assert response.status_code == 422
    assert newcomer.get(link).status_code == 200


def test_people_are_invited_in_bulk_from_a_csv_file(mail_app, smtp_server, admin):
    from .conftest import Factory

    Factory(mail_app).school("Hillside", urn="123456")
    client = admin_client_of(mail_app, admin)
    text = ("email,name,role,school_urn\n"
            "one@hub.example,One Person,staff,\n"
            "lead@hillside.example,Lead Teacher,school,123456\n")
    preview = submit(client, "/moving-in/people", {"file": (io.BytesIO(text.encode()), "people.csv")}, form="file")
    assert "Ready to import 2 invitations" in page_of(preview)
    response = submit_on(client, preview, "/moving-in/people", form="csv_text")
    assert response.status_code == 303
    send_mail(mail_app)
    assert sorted(m["To"] for m in smtp_server.messages) == ["lead@hillside.example", "one@hub.example"]


def test_a_bulk_invitation_file_with_an_address_in_use_invites_nobody(mail_app, smtp_server, admin):
    client = admin_client_of(mail_app, admin)
    text = ("email,name,role,school_urn\n"
            "one@hub.example,One Person,staff,\n"
            "boss@hub.example,The Boss,admin,\n"
            "two@hub.example,Two,parent,\n"
            "three@hub.example,Three,school,\n")
    response = submit(client, "/moving-in/people", {"file": (io.BytesIO(text.encode()), "people.csv")}, form="file")
    page = page_of(response)
    assert response.status_code == 422
    assert "boss@hub.example already has an account" in page
    assert "role must be staff, school or admin" in page
    assert "needs their school&#39;s URN" in page
    with in_app(mail_app) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 1


# ---------------------------------------------------------------- sessions


def test_a_person_sees_their_sessions_and_ends_another_one(app, factory):
    user = factory.user("staff")
    phone = app.test_client()
    login(phone, user)
    desk = app.test_client()
    login(desk, user)
    listing = desk.get("/account/sessions")
    page = page_of(listing)
    assert "This browser" in page
    assert page.count("End<span") == 1
    response = submit_on(desk, listing, "/account/sessions", form=0)
    assert response.status_code == 303
    assert phone.get("/instruments").status_code == 302  # signed out: sent to the sign-in page
    assert desk.get("/instruments").status_code == 200


def test_someone_elses_session_cannot_be_ended(app, factory):
    from .pages import read_form

    other = factory.user("staff")
    login(app.test_client(), other)
    with in_app(app) as session:
        theirs = session.scalar(select(UserSession.id).where(UserSession.user_id == other.id))
    me = factory.user("staff")
    login(app.test_client(), me)  # a second session of mine, so the page offers an End button
    client = app.test_client()
    login(client, me)
    form = read_form(page_of(client.get("/account/sessions")), "/account/sessions", 0)
    response = client.post(f"/account/sessions/{theirs}/end", data=dict(form.pairs))
    assert response.status_code == 404
    with in_app(app) as session:
        assert session.get(UserSession, theirs) is not None


# ---------------------------------------------------------------- deactivation


def test_deactivating_a_user_is_confirmed_and_signs_them_out(app, factory):
    worker = factory.user("staff", email="worker@hub.example")
    their_browser = app.test_client()
    login(their_browser, worker)
    admin = app.test_client()
    login(admin, factory.user("admin"))
    users = page_of(admin.get("/admin/users"))
    assert f'href="/admin/users/{worker.id}/access"' in users
    confirm = admin.get(f"/admin/users/{worker.id}/access")
    assert "Deactivate Staff" in page_of(confirm) or "Deactivate" in page_of(confirm)
    assert "signed out on every device" in page_of(confirm)
    response = submit_on(admin, confirm, f"/admin/users/{worker.id}/access")
    assert response.status_code == 303
    assert "worker@hub.example is deactivated" in page_of(admin.get(response.location))
    assert their_browser.get("/instruments").status_code == 302
    refused = submit(app.test_client(), "/login", {"email": "worker@hub.example",
                                                   "password": "correct-horse-battery"})
    assert refused.status_code == 401


def test_an_admin_cannot_deactivate_themselves(app, factory):
    me = factory.user("admin")
    client = app.test_client()
    login(client, me)
    confirm = client.get(f"/admin/users/{me.id}/access")
    response = submit_on(client, confirm, f"/admin/users/{me.id}/access")
    assert "cannot deactivate your own account" in page_of(client.get(response.location))
    with in_app(app) as session:
        assert session.get(User, me.id).active is True
