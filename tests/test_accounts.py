"""Sign-in, roles, rate limits, CSRF and the admin user pages."""
import re

import pytest
from sqlalchemy import func, select

from loanservice import create_app
from loanservice.accounts.models import User

from .conftest import config_for, in_app, login
from .pages import submit


def test_staff_signs_in_and_out(client, factory):
    user = factory.user("staff")
    response = submit(client, "/login", {"email": user.email.upper(), "password": "correct-horse-battery"})
    assert response.status_code == 302
    assert "Instrument store" in client.get("/dashboard").get_data(as_text=True)
    submit(client, "/dashboard", form="/logout")
    assert client.get("/dashboard").status_code == 302


def test_wrong_password_is_refused_with_a_clear_message(client, factory):
    user = factory.user("staff")
    response = client.post("/login", data={"email": user.email, "password": "wrong-password"})
    assert response.status_code == 401
    assert "do not match an active account" in response.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302


def test_disabled_account_cannot_sign_in(client, factory):
    user = factory.user("staff", active=False)
    response = client.post("/login", data={"email": user.email, "password": "correct-horse-battery"})
    assert response.status_code == 401


def test_passwords_are_stored_hashed(app, factory):
    user = factory.user("staff", password="a-very-secret-password")
    with in_app(app) as session:
        stored = session.get(User, user.id).password_hash
    assert "a-very-secret-password" not in stored
    assert stored.startswith(("scrypt:", "pbkdf2:"))


def test_login_is_rate_limited(client, factory):
    user = factory.user("staff")
    statuses = [client.post("/login", data={"email": user.email, "password": "nope-nope"}).status_code
                for _ in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[-1] == 429
    response = client.post("/login", data={"email": user.email, "password": "correct-horse-battery"})
    assert response.status_code == 429
    assert "Too many attempts" in response.get_data(as_text=True)


def test_forms_reject_a_post_without_csrf_token(database_url, factory):
    app = create_app(config_for(database_url, WTF_CSRF_ENABLED=True))
    client = app.test_client()
    user = factory.user("staff")
    response = client.post("/login", data={"email": user.email, "password": "correct-horse-battery"})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"email": user.email, "password": "correct-horse-battery",
                                           "csrf_token": token})
    assert response.status_code == 302


def test_next_only_follows_local_addresses(client, factory):
    user = factory.user("staff")
    response = client.post("/login?next=https://evil.example/x",
                           data={"email": user.email, "password": "correct-horse-battery"})
    assert response.location == "/"
    client.post("/logout")
    response = client.post("/login?next=/instruments",
                           data={"email": user.email, "password": "correct-horse-battery"})
    assert response.location == "/instruments"


@pytest.mark.parametrize("role", ["school", "parent"])
@pytest.mark.parametrize("url", ["/dashboard", "/instruments", "/instruments/new", "/types",
                                 "/instruments/import", "/instruments/export.csv", "/admin/users"])
def test_school_and_parent_users_cannot_reach_staff_pages(client, factory, role, url):
    login(client, factory.user(role))
    response = client.get(url)
    assert response.status_code == 403
    assert "You do not have access to this page" in response.get_data(as_text=True)


def test_staff_cannot_reach_admin_pages(client, factory):
    login(client, factory.user("staff"))
    assert client.get("/admin/users").status_code == 403
    assert client.post("/admin/users/new", data={}).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/instruments")
    assert response.status_code == 302
    assert response.location.startswith("/login")


def test_the_site_root_shows_the_sign_in_page_without_asking_to_sign_in_to_see_it(client):
    response = client.get("/", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.request.path == "/login"
    assert "<h1>Sign in</h1>" in page
    assert "Please sign in to see that page" not in page


def test_a_deep_link_still_says_why_the_sign_in_page_is_shown(client):
    page = client.get("/instruments", follow_redirects=True).get_data(as_text=True)
    assert "Please sign in to see that page" in page


def test_the_menu_marks_the_page_shown_as_the_current_one(staff_client):
    page = staff_client.get("/borrowers").get_data(as_text=True)
    assert '<a href="/borrowers" aria-current="page">Borrowers</a>' in page


def test_school_user_lands_on_their_school(client, factory):
    school = factory.school("Riverside Primary")
    login(client, factory.user("school", school=school))
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "Riverside Primary" in page


def test_admin_creates_a_school_user(app, client, factory):
    school = factory.school("Hillcrest Academy")
    login(client, factory.user("admin"))
    form = client.get("/admin/users/new").get_data(as_text=True)
    assert "At least 10 characters, and not one of the common passwords." in form
    assert "keep the current password" not in form  # nothing to keep
    response = submit(client, "/admin/users/new", {
        "email": "Lead@Hillcrest.example", "name": "Priya Shah", "role": "school",
        "school_id": str(school.id), "password": "long-enough-password", "active": "y"})
    assert response.status_code == 303
    assert "lead@hillcrest.example" in client.get("/admin/users").get_data(as_text=True)
    with in_app(app) as session:
        user = session.scalar(select(User).where(User.email == "lead@hillcrest.example"))
        assert user.role == "school"
        assert user.school_id == school.id


def test_a_school_user_needs_a_school(app, client, factory):
    login(client, factory.user("admin"))
    response = submit(client, "/admin/users/new", {
        "email": "x@example.org", "name": "X", "role": "school", "school_id": "0",
        "password": "long-enough-password"})
    assert response.status_code == 422
    assert "must belong to a school" in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(User).where(User.email == "x@example.org")) is None


def test_only_school_users_belong_to_a_school(app, client, factory):
    school = factory.school("Hillcrest Academy")
    lead = factory.user("school", school=school)
    login(client, factory.user("admin"))
    only_leads = "Only a school music lead belongs to a school: choose (none), or change the role to School music lead."
    for role in ("staff", "admin", "parent"):
        response = submit(client, "/admin/users/new", {
            "email": f"{role}@example.org", "name": "X", "role": role, "school_id": str(school.id),
            "password": "long-enough-password"})
        page = response.get_data(as_text=True)
        assert response.status_code == 422
        assert f'<p class="error" id="school_id-error">{only_leads} </p>' in page  # beside the school field
    # A school lead made store staff while the school is still chosen: refused, nothing changed.
    response = submit(client, f"/admin/users/{lead.id}", {"role": "staff"})
    assert response.status_code == 422
    assert only_leads in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 2  # the admin and the lead: no one added
        assert (session.get(User, lead.id).role, session.get(User, lead.id).school_id) == ("school", school.id)
    # And back to a school lead, the school is still needed.
    assert submit(client, f"/admin/users/{lead.id}", {"role": "staff", "school_id": "0"}).status_code == 303
    response = submit(client, f"/admin/users/{lead.id}", {"role": "school", "school_id": "0"})
    assert response.status_code == 422
    assert "A school user must belong to a school." in response.get_data(as_text=True)
    with in_app(app) as session:
        assert (session.get(User, lead.id).role, session.get(User, lead.id).school_id) == ("staff", None)
    result = app.test_cli_runner().invoke(args=["users", "create", "--email", "s@x.example", "--role", "staff",
                                                "--school", "Hillcrest Academy", "--password", "long-enough-password"])
    assert result.exit_code != 0 and only_leads in result.output


def test_admin_cannot_take_away_their_own_admin_role(client, factory):
    admin = factory.user("admin")
    login(client, admin)
    response = submit(client, f"/admin/users/{admin.id}", {"role": "staff"})
    assert response.status_code == 422
    assert "cannot remove your own admin access" in response.get_data(as_text=True)


def test_admin_disables_a_user_who_then_cannot_sign_in(app, factory):
    admin, staff = factory.user("admin"), factory.user("staff")
    admin_client, staff_client = app.test_client(), app.test_client()
    login(admin_client, admin)
    response = submit(admin_client, f"/admin/users/{staff.id}", {"active": None})  # untick Active
    assert response.status_code == 303
    assert staff_client.post("/login", data={"email": staff.email,
                                             "password": "correct-horse-battery"}).status_code == 401


def test_cli_creates_users(app, factory):
    school = factory.school("Castle Park Primary", urn="100005")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "--email", "lead@castle.example", "--role", "school",
                                 "--school", "100005", "--password", "long-enough-password"])
    assert result.exit_code == 0, result.output
    assert "Created school lead@castle.example" in result.output
    result = runner.invoke(args=["users", "create", "--email", "lead@castle.example", "--role", "staff",
                                 "--password", "long-enough-password"])
    assert result.exit_code != 0
    assert "already an account" in result.output
    result = runner.invoke(args=["users", "create", "--email", "s@x.example", "--role", "staff",
                                 "--password", "short"])
    assert "at least 10 characters" in result.output
    with in_app(app) as session:
        assert session.scalar(select(User).where(User.email == "lead@castle.example")).school_id == school.id


def test_guesses_at_one_account_from_many_addresses_slow_new_addresses_down(client, factory):
    user = factory.user("staff")
    for n in range(20):  # the soft cap: 20 failures an hour to one account, from anywhere
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{n + 1}"
        assert submit(client, "/login", {"email": user.email, "password": "guess"}).status_code == 401
    client.environ_base["REMOTE_ADDR"] = "192.0.2.200"
    statuses = [submit(client, "/login", {"email": user.email, "password": "guess"}).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    response = submit(client, "/login", {"email": user.email, "password": "guess"})
    text = response.get_data(as_text=True)
    # An hourly limit: the page says how long, not "a minute" (to the minute, as the window's end rounds).
    assert "Wait a minute" not in text
    assert re.search(r"Try again in (59|60|61) minutes\.", text)
    assert int(response.headers["Retry-After"]) >= 3500
    # Another account from a fresh address is not affected.
    other = factory.user("staff")
    client.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert submit(client, "/login", {"email": other.email, "password": "correct-horse-battery"}).status_code == 302


def test_only_failed_sign_ins_count_towards_the_per_account_soft_cap(client, factory):
    user = factory.user("staff")
    for n in range(25):  # more than the 20 an hour, each from its own address (under the per-address limit)
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{n + 1}"
        response = client.post("/login", data={"email": user.email, "password": "correct-horse-battery"})
        assert response.status_code == 302, n
        client.post("/logout")
    client.environ_base["REMOTE_ADDR"] = "192.0.2.1"
    statuses = [client.post("/login", data={"email": user.email, "password": "guess"}).status_code for _ in range(5)]
    assert statuses == [401] * 5  # not slowed to three an hour: the account is not past its soft cap


def test_many_people_signing_in_from_one_address_are_not_limited(client, factory):
    users = [factory.user("staff") for _ in range(3)]
    for n in range(15):  # more than the 10 a minute the address may get wrong
        response = client.post("/login", data={"email": users[n % 3].email, "password": "correct-horse-battery"})
        assert response.status_code == 302, n
        client.post("/logout")


def test_the_per_address_limit_page_asks_for_a_minute(client, factory):
    user = factory.user("staff")
    statuses = [client.post("/login", data={"email": user.email, "password": "nope"}).status_code for _ in range(11)]
    assert statuses[-1] == 429
    response = client.post("/login", data={"email": user.email, "password": "nope"})
    assert "Wait a minute and try again." in response.get_data(as_text=True)


def _redis_available() -> bool:
    try:
        import redis

        return redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=0.5).ping()
    except Exception:
        return False


@pytest.mark.skipif(not _redis_available(), reason="needs Redis on 127.0.0.1:6379")
def test_rate_limits_are_kept_in_redis_when_configured(database_url, factory):
    import uuid

    import redis

    prefix = f"ls-test-{uuid.uuid4().hex}"
    app = create_app(config_for(database_url, RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0",
                                RATELIMIT_KEY_PREFIX=prefix))
    client = app.test_client()
    user = factory.user("staff")
    statuses = [client.post("/login", data={"email": user.email, "password": "x"}).status_code for _ in range(11)]
    assert statuses[-1] == 429
    store = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    keys = store.keys(f"*{prefix}*")
    assert keys, "no rate-limit counters were written to Redis"
    store.delete(*keys)


def test_the_sign_in_page_leads_parents_to_register_and_to_reset(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/register"' in page and 'href="/reset"' in page
    assert client.get("/register").status_code == 200 and client.get("/reset").status_code == 200
