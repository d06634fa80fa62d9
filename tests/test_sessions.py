"""Sessions that end: sign-out, password changes and resets, and an admin's changes end every session of
the user, copies of the cookies included; "keep me signed in"; failed sign-ins that cannot lock anyone
out; the password rules."""
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from loanservice import create_app
from loanservice.accounts.models import RememberToken, User
from loanservice.extensions import db
from loanservice.timeutil import utcnow

from .conftest import config_for, in_app, login, mail_link, send_mail
from .pages import submit

PASSWORD = "correct-horse-battery"
# A page that needs its user signed in, for each kind of user.
PRIVATE_PAGE = {"staff": "/dashboard", "admin": "/dashboard", "parent": "/children/new", "school": "/sets"}


@pytest.fixture
def mail_app(database_url, smtp_server):
    """The app sending mail to a real SMTP server on loopback."""
    app = create_app(config_for(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def copy_of(app, client):
    """Another browser holding copies of ``client``'s cookies, as someone who copied them would."""
    other = app.test_client()
    for cookie in client._cookies.values():
        other.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
    return other


def only_cookie(app, client, name):
    """Another browser holding only ``client``'s cookie ``name`` (a remember cookie without its session)."""
    other = app.test_client()
    cookie = client.get_cookie(name)
    other.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
    return other


def signed_in(client, role="staff") -> bool:
    response = client.get(PRIVATE_PAGE[role])
    return response.status_code == 200


def sent_to_sign_in(client, role="staff") -> bool:
    response = client.get(PRIVATE_PAGE[role])
    return response.status_code == 302 and response.location.startswith("/login")


def sign_in(client, user, password=PASSWORD, remember=False):
    data = {"email": user.email, "password": password}
    if remember:
        data["remember"] = "y"
    return submit(client, "/login", data)


def sign_out(client, role="staff"):
    return submit(client, PRIVATE_PAGE[role], form="/logout")


# ---------------------------------------------------------------- ending sessions


@pytest.mark.parametrize("role", ["staff", "parent", "school"])
def test_signing_out_ends_a_copied_session_cookie(app, client, factory, role):
    user = factory.user(role)
    login(client, user)
    thief = copy_of(app, client)
    assert signed_in(thief, role)
    sign_out(client, role)
    assert sent_to_sign_in(thief, role)


def test_signing_out_ends_the_users_sessions_on_other_devices(app, factory):
    user = factory.user("staff")
    desk, tablet = app.test_client(), app.test_client()
    login(desk, user)
    login(tablet, user)
    sign_out(desk)
    assert sent_to_sign_in(tablet)


def test_signing_in_again_after_signing_out_works(client, factory):
    user = factory.user("staff")
    login(client, user)
    sign_out(client)
    login(client, user)
    assert signed_in(client)


@pytest.mark.parametrize("role", ["staff", "parent", "admin", "school"])
def test_the_menu_leads_every_user_to_change_their_password(client, factory, role):
    login(client, factory.user(role))
    page = client.get(PRIVATE_PAGE[role]).get_data(as_text=True)
    assert 'href="/account/password"' in page


@pytest.mark.parametrize("role", ["staff", "parent"])
def test_changing_ones_password_ends_other_sessions_and_keeps_this_one(app, client, factory, role):
    user = factory.user(role)
    login(client, user)
    thief = copy_of(app, client)
    other_device = app.test_client()
    login(other_device, user)
    response = submit(client, "/account/password", {"current_password": PASSWORD,
                                                      "new_password": "violas-in-the-attic",
                                                      "confirm": "violas-in-the-attic"})
    assert response.status_code == 303
    page = client.get(response.location, follow_redirects=True).get_data(as_text=True)
    assert "You are signed out on every other device" in page
    assert signed_in(client, role)
    assert sent_to_sign_in(thief, role)
    assert sent_to_sign_in(other_device, role)


def test_after_a_password_change_only_the_new_password_signs_in(app, client, factory):
    user = factory.user("staff")
    login(client, user)
    submit(client, "/account/password", {"current_password": PASSWORD, "new_password": "violas-in-the-attic",
                                         "confirm": "violas-in-the-attic"})
    fresh = app.test_client()
    assert sign_in(fresh, user).status_code == 401
    assert sign_in(fresh, user, "violas-in-the-attic").status_code == 302


def test_a_wrong_current_password_changes_nothing(app, client, factory):
    user = factory.user("staff")
    login(client, user)
    response = submit(client, "/account/password", {"current_password": "not-my-password",
                                                      "new_password": "violas-in-the-attic",
                                                      "confirm": "violas-in-the-attic"})
    assert response.status_code == 422
    assert "That is not your current password." in response.get_data(as_text=True)
    assert sign_in(app.test_client(), user).status_code == 302


@pytest.mark.parametrize("new, message", [
    ("qwertyuiop", "one of the most common"),
    ("Password123", "one of the most common"),
    ("aaaaaaaaaaaa", "one of the most common"),
    ("short", "at least 10 characters"),
])
def test_the_password_page_refuses_weak_passwords(client, factory, new, message):
    login(client, factory.user("staff"))
    response = submit(client, "/account/password", {"current_password": PASSWORD, "new_password": new,
                                                      "confirm": new})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True).lower()


def test_a_password_that_is_the_email_address_is_refused(client, factory):
    user = factory.user("staff", email="jo.bloggs.music@example.org")
    login(client, user)
    response = submit(client, "/account/password", {"current_password": PASSWORD,
                                                      "new_password": "Jo.Bloggs.Music", "confirm": "Jo.Bloggs.Music"})
    assert "cannot be your email address" in response.get_data(as_text=True)


def test_an_admin_disabling_an_account_ends_its_sessions(app, factory):
    admin, staff = factory.user("admin"), factory.user("staff")
    admin_client, staff_client = app.test_client(), app.test_client()
    login(admin_client, admin)
    login(staff_client, staff)
    submit(admin_client, f"/admin/users/{staff.id}", {"active": None})
    assert sent_to_sign_in(staff_client)


def test_an_admin_setting_a_new_password_ends_the_users_sessions(app, factory):
    admin, staff = factory.user("admin"), factory.user("staff")
    admin_client, staff_client = app.test_client(), app.test_client()
    login(admin_client, admin)
    login(staff_client, staff)
    response = submit(admin_client, f"/admin/users/{staff.id}", {"password": "a-fresh-start-for-jo"})
    assert response.status_code == 303
    assert sent_to_sign_in(staff_client)


def test_an_admin_renaming_a_user_leaves_them_signed_in(app, factory):
    admin, staff = factory.user("admin"), factory.user("staff")
    admin_client, staff_client = app.test_client(), app.test_client()
    login(admin_client, admin)
    login(staff_client, staff)
    submit(admin_client, f"/admin/users/{staff.id}", {"name": "Jo Bloggs"})
    assert signed_in(staff_client)


def test_an_admin_setting_their_own_password_stays_signed_in(client, factory):
    admin = factory.user("admin")
    login(client, admin)
    submit(client, f"/admin/users/{admin.id}", {"password": "a-fresh-start-for-me"})
    assert signed_in(client, "admin")


def test_a_parent_resetting_their_password_by_email_ends_their_sessions(mail_app, smtp_server, factory):
    parent = factory.user("parent", email="jo@example.org")
    browser = mail_app.test_client()
    login(browser, parent)
    thief = copy_of(mail_app, browser)
    anywhere = mail_app.test_client()
    submit(anywhere, "/reset", {"email": "jo@example.org"})
    send_mail(mail_app)
    link = mail_link(smtp_server.messages[-1], "/reset/")
    response = submit(anywhere, link, {"password": "violas-in-the-attic", "confirm": "violas-in-the-attic"})
    assert response.status_code == 303
    assert sent_to_sign_in(browser, "parent")
    assert sent_to_sign_in(thief, "parent")


# ---------------------------------------------------------------- keep me signed in


def test_keep_me_signed_in_brings_the_browser_back_signed_in(app, client, factory):
    login_response = sign_in(client, factory.user("staff"), remember=True)
    assert login_response.status_code == 302
    later = only_cookie(app, client, "keep_signed_in")  # the browser was closed: the session cookie is gone
    assert signed_in(later)


def test_without_keep_me_signed_in_no_remember_cookie_is_set(client, factory):
    sign_in(client, factory.user("staff"))
    assert client.get_cookie("keep_signed_in") is None


def test_the_remember_token_is_new_at_each_sign_in(app, factory):
    user = factory.user("staff")
    first, second = app.test_client(), app.test_client()
    sign_in(first, user, remember=True)
    sign_in(second, user, remember=True)
    assert first.get_cookie("keep_signed_in").value != second.get_cookie("keep_signed_in").value


def test_the_same_browser_gets_a_new_remember_token_when_it_signs_in_again(client, factory):
    user = factory.user("staff")
    sign_in(client, user, remember=True)
    first = client.get_cookie("keep_signed_in").value
    sign_out(client)
    sign_in(client, user, remember=True)
    assert client.get_cookie("keep_signed_in").value != first


def test_signing_out_revokes_a_copied_remember_cookie(app, client, factory):
    sign_in(client, factory.user("staff"), remember=True)
    thief = only_cookie(app, client, "keep_signed_in")
    sign_out(client)
    assert sent_to_sign_in(thief)


def test_a_password_change_revokes_a_copied_remember_cookie(app, client, factory):
    sign_in(client, factory.user("staff"), remember=True)
    thief = only_cookie(app, client, "keep_signed_in")
    submit(client, "/account/password", {"current_password": PASSWORD, "new_password": "violas-in-the-attic",
                                         "confirm": "violas-in-the-attic"})
    assert sent_to_sign_in(thief)


def test_an_expired_remember_token_signs_nobody_in(app, client, factory):
    sign_in(client, factory.user("staff"), remember=True)
    later = only_cookie(app, client, "keep_signed_in")
    with in_app(app) as session:
        session.execute(update(RememberToken).values(expires_at=utcnow() - timedelta(minutes=1)))
        session.commit()
    assert sent_to_sign_in(later)


def test_the_remember_cookie_lasts_as_configured(database_url, factory):
    app = create_app(config_for(database_url, REMEMBER_DAYS=7))
    client = app.test_client()
    sign_in(client, factory.user("staff"), remember=True)
    with in_app(app) as session:
        token = session.scalar(select(RememberToken))
        assert timedelta(days=6, hours=23) < token.expires_at - utcnow() <= timedelta(days=7)


def test_a_disabled_users_remember_cookie_signs_nobody_in(app, client, factory):
    user = factory.user("staff")
    sign_in(client, user, remember=True)
    later = only_cookie(app, client, "keep_signed_in")
    with in_app(app) as session:
        session.get(User, user.id).active = False
        session.commit()
    assert sent_to_sign_in(later)


# ---------------------------------------------------------------- failed sign-ins cannot lock anyone out


def from_address(client, address):
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_forty_wrong_guesses_do_not_keep_the_owner_out_of_a_browser_they_used_before(app, factory):
    user = factory.user("staff")
    owner = from_address(app.test_client(), "198.51.100.7")
    login(owner, user)
    sign_out(owner)
    attacker = from_address(app.test_client(), "203.0.113.66")
    statuses = [sign_in(attacker, user, "guess-number-x").status_code for _ in range(40)]
    assert statuses[-1] == 429  # the attacker is stopped...
    assert sign_in(owner, user).status_code == 302  # ...the owner is not


def test_a_known_browser_signs_in_even_from_the_attackers_address(app, factory):
    user = factory.user("staff")
    owner = from_address(app.test_client(), "203.0.113.66")  # e.g. one public address for a whole school
    login(owner, user)
    sign_out(owner)
    attacker = from_address(app.test_client(), "203.0.113.66")
    for _ in range(40):
        sign_in(attacker, user, "guess-number-x")
    assert sign_in(owner, user).status_code == 302


def test_forty_wrong_guesses_do_not_keep_the_owner_out_of_a_new_browser_elsewhere(app, factory):
    user = factory.user("staff")
    attacker = from_address(app.test_client(), "203.0.113.66")
    for _ in range(40):
        sign_in(attacker, user, "guess-number-x")
    new_browser = from_address(app.test_client(), "198.51.100.7")
    assert sign_in(new_browser, user).status_code == 302


def test_wrong_guesses_from_a_known_browser_still_run_out(app, factory):
    user = factory.user("staff")
    browser = app.test_client()
    login(browser, user)
    sign_out(browser)
    statuses = [sign_in(browser, user, "guess-number-x").status_code for _ in range(11)]
    assert statuses[-1] == 429


def test_guesses_from_many_addresses_slow_new_browsers_down_but_let_the_owner_in(app, factory):
    user = factory.user("staff")
    client = app.test_client()
    for n in range(25):  # past the soft cap of 20 an hour, each address under its own limits
        assert sign_in(from_address(client, f"192.0.2.{n + 1}"), user, "guess-number-x").status_code == 401
    slowed = from_address(app.test_client(), "192.0.2.201")
    statuses = [sign_in(slowed, user, "guess-number-x").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]  # three an hour per new address while the account is attacked
    assert sign_in(from_address(app.test_client(), "192.0.2.202"), user).status_code == 302


def test_the_owner_is_told_once_by_email_of_many_failed_sign_ins(mail_app, smtp_server, factory):
    user = factory.user("staff", email="jo@example.org")
    client = mail_app.test_client()
    for n in range(30):
        sign_in(from_address(client, f"192.0.2.{n + 1}"), user, "guess-number-x")
    send_mail(mail_app)
    told = [m for m in smtp_server.messages if "many failed sign-ins" in m["Subject"]]
    assert len(told) == 1
    assert told[0]["To"] == "jo@example.org"


def test_no_mail_goes_out_for_guesses_at_an_address_with_no_account(mail_app, smtp_server):
    client = mail_app.test_client()
    for n in range(30):
        submit(from_address(client, f"192.0.2.{n + 1}"), "/login",
               {"email": "nobody@example.org", "password": "guess-number-x"})
    send_mail(mail_app)
    assert smtp_server.messages == []


# ---------------------------------------------------------------- the password rules, wherever one is set


def test_registration_refuses_a_common_password(app, client):
    response = submit(client, "/register", {"name": "Alex", "email": "alex@example.org", "password": "qwertyuiop",
                                             "confirm": "qwertyuiop"})
    assert response.status_code == 422
    assert "one of the most common" in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(User).where(User.email == "alex@example.org")) is None


def test_a_reset_link_refuses_a_common_password_and_stays_usable(mail_app, smtp_server, factory):
    factory.user("parent", email="jo@example.org")
    client = mail_app.test_client()
    submit(client, "/reset", {"email": "jo@example.org"})
    send_mail(mail_app)
    link = mail_link(smtp_server.messages[-1], "/reset/")
    refused = submit(client, link, {"password": "password123", "confirm": "password123"})
    assert refused.status_code == 422
    assert "one of the most common" in refused.get_data(as_text=True)
    assert submit(client, link, {"password": "violas-in-the-attic", "confirm": "violas-in-the-attic"}
                  ).status_code == 303


def test_an_admin_cannot_create_an_account_with_a_common_password(app, client, factory):
    login(client, factory.user("admin"))
    response = submit(client, "/admin/users/new", {"email": "new@example.org", "name": "New", "role": "staff",
                                                    "school_id": "0", "password": "1234567890"})
    assert response.status_code == 422
    assert "one of the most common" in response.get_data(as_text=True)


def test_the_command_line_refuses_a_common_password(app):
    result = app.test_cli_runner().invoke(args=["users", "create", "--email", "s@x.example", "--role", "staff",
                                                "--password", "qwertyuiop"])
    assert "one of the most common" in result.output


# ---------------------------------------------------------------- a reset request gives nothing away


def test_a_reset_request_looks_and_works_the_same_whether_or_not_the_account_exists(
        mail_app, smtp_server, factory, monkeypatch):
    from loanservice.parents import services

    factory.user("parent", email="jo@example.org")
    hashed = []
    real_digest = services._digest
    monkeypatch.setattr(services, "_digest", lambda token: hashed.append(token) or real_digest(token))
    client = mail_app.test_client()

    unknown = submit(client, "/reset", {"email": "nobody@example.org"})
    send_mail(mail_app)
    assert smtp_server.messages == []  # nothing sent for an address without an account
    assert len(hashed) == 1  # a token was made and hashed all the same
    known = submit(client, "/reset", {"email": "jo@example.org"})
    assert len(hashed) == 2
    assert (unknown.status_code, unknown.location) == (known.status_code, known.location)
    assert client.get(unknown.location).get_data(as_text=True) == client.get(known.location).get_data(as_text=True)
    send_mail(mail_app)
    assert [m["To"] for m in smtp_server.messages] == ["jo@example.org"]


# ---------------------------------------------------------------- the migration


def test_upgrading_gives_every_existing_user_a_session_token_of_their_own(tmp_path):
    from flask_migrate import upgrade
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    app = create_app(config_for(url))
    with app.app_context():
        upgrade(revision="0011")
        for email in ("a@example.org", "b@example.org"):
            db.session.execute(text(
                "INSERT INTO user_account (email, name, password_hash, role, active, created_at) "
                "VALUES (:email, 'X', 'x', 'staff', true, '2026-01-01')"), {"email": email})
        db.session.commit()
        upgrade()
        tokens = db.session.execute(text("SELECT session_token FROM user_account")).scalars().all()
        db.session.remove()
        db.engine.dispose()
    assert len(set(tokens)) == 2
    assert all(len(token) >= 40 for token in tokens)
