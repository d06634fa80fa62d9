"""Parents: registration with a confirmed email, password reset, children, home page and privacy."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from loanservice.accounts.models import User
from loanservice.borrowers.models import Family, Pupil, RemissionClaim
from loanservice.parents.models import AccountToken, ParentAccount, ParentRequest

from .conftest import ON_POSTGRES, config_for, in_app, login, mail_link, send_mail, statements_run


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


def register(client, email="alex@example.org", password="a-long-password", name="Alex Parent"):
    return client.post("/register", data={"name": name, "email": email, "password": password, "confirm": password})


def counts(app):
    with in_app(app) as session:
        return tuple(session.scalar(select(func.count()).select_from(model))
                     for model in (User, Family, ParentAccount, AccountToken))


def test_registering_makes_a_parent_and_family_and_mails_a_link_that_confirms_once(mail_app, smtp_server):
    client = mail_app.test_client()
    response = register(client)
    assert response.status_code == 303 and response.location.endswith("/register/check-your-email")
    with in_app(mail_app) as session:
        user = session.scalar(select(User).where(User.email == "alex@example.org"))
        assert user.role == "parent" and user.password_hash != "a-long-password"
        assert session.scalar(select(Family).where(Family.user_id == user.id)).email == "alex@example.org"
        assert session.get(ParentAccount, user.id).email_confirmed_at is None
    send_mail(mail_app)
    [message] = smtp_server.messages
    assert message["To"] == "alex@example.org" and "confirm your email" in message["Subject"]
    link = mail_link(message, "/confirm/")
    assert mail_app.config["PUBLIC_BASE_URL"] in message.get_body(("plain",)).get_content()

    assert client.get(link).status_code == 200
    response = client.post(link)
    assert response.status_code == 303
    with in_app(mail_app) as session:
        assert session.get(ParentAccount, user.id).email_confirmed_at is not None
    # Used once: the same link again is refused, clearly.
    again = client.get(link)
    assert again.status_code == 410 and "already been used" in again.get_data(as_text=True)
    assert client.post(link).status_code == 410


def test_registering_an_address_that_has_an_account_looks_the_same_and_tells_its_owner(mail_app, smtp_server, factory):
    factory.user("parent", email="taken@example.org")
    before = counts(mail_app)
    client = mail_app.test_client()
    new = register(client, email="fresh@example.org")
    taken = register(client, email="Taken@Example.org")
    assert (new.status_code, new.location) == (taken.status_code, taken.location)
    page_new = client.get(new.location).get_data(as_text=True)
    assert page_new == client.get(taken.location).get_data(as_text=True)
    after = counts(mail_app)
    assert after[0] == before[0] + 1  # only the fresh address got an account
    send_mail(mail_app)
    subjects = {m["To"]: m["Subject"] for m in smtp_server.messages}
    assert "someone tried to register" in subjects["taken@example.org"]
    assert "/reset" in smtp_server.messages[-1].get_body(("plain",)).get_content()


def test_an_expired_confirmation_link_is_refused_and_changes_nothing(mail_app, smtp_server):
    client = mail_app.test_client()
    register(client)
    send_mail(mail_app)
    link = mail_link(smtp_server.messages[0], "/confirm/")
    with in_app(mail_app) as session:
        token = session.scalar(select(AccountToken))
        token.expires_at = token.created_at - timedelta(minutes=1)
        session.commit()
    response = client.post(link)
    assert response.status_code == 410 and "expired" in response.get_data(as_text=True)
    with in_app(mail_app) as session:
        assert session.scalar(select(ParentAccount)).email_confirmed_at is None
    assert client.get("/confirm/not-a-token").status_code == 410


def test_registration_refuses_a_short_password_and_is_rate_limited(client):
    response = register(client, password="short")
    assert response.status_code == 422 and "At least 10 characters" in response.get_data(as_text=True)
    statuses = [register(client, email=f"p{n}@example.org").status_code for n in range(8)]
    assert statuses[-1] == 429


def test_password_reset_by_email_link_works_once(mail_app, smtp_server, factory):
    parent = factory.parent(email="jo@example.org", password="old-password-1")
    client = mail_app.test_client()
    unknown = client.post("/reset", data={"email": "nobody@example.org"})
    known = client.post("/reset", data={"email": "jo@example.org"})
    assert (unknown.status_code, unknown.location) == (known.status_code, known.location) == (303, "/reset/sent")
    send_mail(mail_app)
    [message] = smtp_server.messages  # nothing is sent to an address without an account
    link = mail_link(message, "/reset/")
    assert client.get(link).status_code == 200
    response = client.post(link, data={"password": "new-password-22", "confirm": "new-password-22"})
    assert response.status_code == 303
    assert client.post(link, data={"password": "another-pass-33", "confirm": "another-pass-33"}).status_code == 410
    login(client, parent, "new-password-22")


def test_reset_requests_are_rate_limited_per_address(client, factory):
    factory.parent(email="jo@example.org")
    statuses = [client.post("/reset", data={"email": "jo@example.org"}).status_code for _ in range(4)]
    assert statuses == [303, 303, 303, 429]


def test_a_parent_adds_edits_and_removes_a_child_with_a_stated_remission(client, factory):
    parent = factory.parent()
    school = factory.school("Riverside Primary")
    login(client, parent)
    response = client.post("/children/new", data={"name": "Sam", "school_id": str(school.id), "year_group": "4",
                                                  "claimed_remission": "free_school_meals"})
    assert response.status_code == 303
    with in_app(client.application) as session:
        pupil = session.scalar(select(Pupil).where(Pupil.name == "Sam"))
        assert (pupil.year_group, pupil.school_id, pupil.remission_category) == (4, school.id, "none")
        assert session.get(RemissionClaim, pupil.id).category == "free_school_meals"
        pupil_id = pupil.id
    home = client.get("/").get_data(as_text=True)
    assert "Sam" in home and "Free school meals (the hub will check this with you)" in home
    response = client.post(f"/children/{pupil_id}", data={"name": "Samira", "school_id": "0", "year_group": "",
                                                           "claimed_remission": "none"})
    assert response.status_code == 303
    with in_app(client.application) as session:
        assert session.get(Pupil, pupil_id).name == "Samira"
        assert session.get(RemissionClaim, pupil_id) is None
    assert client.post(f"/children/{pupil_id}/remove").status_code == 303
    with in_app(client.application) as session:
        assert session.get(Pupil, pupil_id) is None


def test_a_child_with_an_open_loan_cannot_be_changed_or_removed(client, factory, app):
    from datetime import date

    from loanservice.loans.lending import open_loan

    parent = factory.parent()
    child = factory.child(parent, "Kit")
    instrument = factory.instrument()
    with in_app(app) as session:
        open_loan(session, None, session.get(type(instrument), instrument.id), session.get(Pupil, child.id),
                  due_on=date(2031, 7, 20))
        session.commit()
    login(client, parent)
    response = client.post(f"/children/{child.id}/remove")
    assert response.status_code == 409 and "has an instrument on loan" in response.get_data(as_text=True)
    response = client.post(f"/children/{child.id}",
                           data={"name": "Other", "school_id": "0", "claimed_remission": "none"})
    assert response.status_code == 409
    with in_app(app) as session:
        assert session.get(Pupil, child.id).name == "Kit"


def test_the_parent_home_shows_loans_with_due_dates_documents_and_takes_requests(client, factory, app):
    from datetime import date

    from loanservice.loans.lending import open_loan

    parent = factory.parent()
    child = factory.child(parent, "Robin")
    instrument = factory.instrument(factory.instrument_type("Cello", sizes=("1/2", "3/4")), size="1/2")
    with in_app(app) as session:
        loan = open_loan(session, None, session.get(type(instrument), instrument.id), session.get(Pupil, child.id),
                         due_on=date(2031, 7, 20))
        session.commit()
        loan_id = loan.id
    login(client, parent)
    home = client.get("/").get_data(as_text=True)
    assert "Cello 1/2" in home and "20 Jul 2031" in home
    assert f"/loans/{loan_id}/agreement" in home
    assert f"/loans/{loan_id}/receipt.pdf" not in home  # still out: no receipt yet (it would be a 409 page)
    assert client.get(f"/loans/{loan_id}/agreement").status_code == 200
    response = client.post(f"/my-loans/{loan_id}/ask", data={"kind": "next_size", "note": "Grown a lot"})
    assert response.status_code == 303
    assert client.post(f"/my-loans/{loan_id}/ask", data={"kind": "next_size"}).status_code == 409
    with in_app(app) as session:
        assert session.scalar(select(ParentRequest.note)) == "Grown a lot"
    assert "Asked: Exchange for the next size" in client.get("/").get_data(as_text=True)


def test_a_parent_cannot_reach_another_familys_child_loan_or_documents(client, factory, app):
    from datetime import date

    from loanservice.loans.lending import open_loan

    mine, theirs = factory.parent(), factory.parent()
    their_child = factory.child(theirs, "Not Yours")
    instrument = factory.instrument()
    with in_app(app) as session:
        loan = open_loan(session, None, session.get(type(instrument), instrument.id),
                         session.get(Pupil, their_child.id), due_on=date(2031, 7, 20))
        session.commit()
        loan_id = loan.id
    login(client, mine)
    for method, url, data in [
        ("get", f"/children/{their_child.id}", None),
        ("post", f"/children/{their_child.id}", {"name": "Mine now", "school_id": "0", "claimed_remission": "none"}),
        ("post", f"/children/{their_child.id}/remove", {}),
        ("get", f"/my-loans/{loan_id}/ask", None),
        ("post", f"/my-loans/{loan_id}/ask", {"kind": "return"}),
        ("get", f"/loans/{loan_id}/agreement", None),
        ("get", f"/loans/{loan_id}/receipt.pdf", None),
    ]:
        response = getattr(client, method)(url, data=data)
        assert response.status_code == 404, (url, response.status_code)
    with in_app(app) as session:
        assert session.get(Pupil, their_child.id).name == "Not Yours"
        assert session.scalar(select(func.count()).select_from(ParentRequest)) == 0
    assert "Not Yours" not in client.get("/").get_data(as_text=True)


def test_parent_pages_are_for_parents(client, factory):
    login(client, factory.user("staff"))
    assert client.get("/children/new").status_code == 403
    assert client.get("/reserve").status_code == 403


# ---------------------------------------------------------------- the home page's reservations


def reserve(client, child, kind, size="1/2"):
    from loanservice.timeutil import today

    response = client.post("/reserve", data={"pupil_id": str(child.id), "item": f"{kind.id}|{size}",
                                             "preferred_start_on": today().isoformat()})
    assert response.status_code == 303, response.get_data(as_text=True)


def reservation_id(app, child, kind, status):
    from loanservice.reservations.models import Reservation

    with in_app(app) as session:
        return session.scalar(select(Reservation.id).where(Reservation.pupil_id == child.id,
                                                           Reservation.type_id == kind.id,
                                                           Reservation.status == status))


RESERVATION_ROW = re.compile(r'<th scope="row">(.*?)</th>\s*<td data-label="Status"><span class="badge">(.*?)</span>'
                             r'</td>\s*<td data-label="Details">(.*?)(?:<br>|</td>)', re.S)


def reservations_shown(home: str, child) -> list[tuple[str, str, str]]:
    """(instrument, status, details) for each reservation row in the child's panel of the home page."""
    import html

    start = home.index(f'aria-labelledby="child-{child.id}"')
    panel = home[start:home.index("</section>", start)]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", panel, re.S):
        cells = RESERVATION_ROW.search(row)  # a loan's row has no status cell
        if cells:
            rows.append(tuple(html.unescape(" ".join(cell.split())) for cell in cells.groups()))
    return rows


@pytest.fixture
def busy_family(client, factory, app):
    """Four children with reservations in different states, on waiting lists shared with another family.

    Ana: a violin held, a cello (second in the queue). Ben: a violin ready to collect. Cai: a violin
    (first in the queue, the two violins being held) and a cello (third). Dee: four cancelled.
    """
    violin = factory.instrument_type("Violin", sizes=("1/2", "3/4"))
    cello = factory.instrument_type("Cello", sizes=("1/2",))
    for _ in range(2):
        factory.instrument(violin, size="1/2")
    factory.instrument(violin, size="3/4")  # free, but not the size anyone waits for
    other_parent = factory.parent()
    zed, yan = factory.child(other_parent, "Zed"), factory.child(other_parent, "Yan")
    parent = factory.parent()
    ana, ben, cai, dee = (factory.child(parent, name) for name in ("Ana", "Ben", "Cai", "Dee"))
    other = app.test_client()
    login(other, other_parent)
    reserve(other, zed, cello)
    login(client, parent)
    for child, kind in ((ana, violin), (ana, cello), (ben, violin), (cai, violin), (cai, cello)):
        reserve(client, child, kind)
    reserve(other, yan, violin)  # behind Cai
    for _ in range(4):
        reserve(client, dee, cello)
        assert client.post(f"/reservations/{reservation_id(app, dee, cello, 'waiting')}/cancel").status_code == 303
    staff = app.test_client()
    login(staff, factory.user("staff"))
    assert staff.post(f"/reservations/{reservation_id(app, ben, violin, 'held')}/ready").status_code == 303
    return {"parent": parent, "violin": violin, "cello": cello, "ana": ana, "ben": ben, "cai": cai, "dee": dee,
            "zed": zed, "other": other}


def test_the_home_page_shows_each_childs_places_and_states(client, app, busy_family):
    from loanservice.reservations.services import add_working_days
    from loanservice.timeutil import today

    f = busy_family
    home = client.get("/").get_data(as_text=True)
    held = ("Violin 1/2", "Instrument held, being prepared", "We will email you when it is ready to collect")
    collect_by = add_working_days(today(), 5)
    assert reservations_shown(home, f["ana"]) == [("Cello 1/2", "On the waiting list", "Number 2 on the waiting list"),
                                                 held]
    assert reservations_shown(home, f["ben"]) == [
        ("Violin 1/2", "Ready to collect", f"Collect from the store by {collect_by:%-d %b %Y}")]
    assert reservations_shown(home, f["cai"]) == [("Cello 1/2", "On the waiting list", "Number 3 on the waiting list"),
                                                 ("Violin 1/2", "On the waiting list", "Number 1 on the waiting list")]
    # Only the last three closed reservations.
    assert [row[1] for row in reservations_shown(home, f["dee"])] == ["Cancelled"] * 3

    # Zed, first for a cello, drops out; Ana gives her violin up, and it goes to Cai, first in its queue.
    zed_cello = reservation_id(app, f["zed"], f["cello"], "waiting")
    assert f["other"].post(f"/reservations/{zed_cello}/cancel").status_code == 303
    ana_violin = reservation_id(app, f["ana"], f["violin"], "held")
    assert client.post(f"/reservations/{ana_violin}/cancel").status_code == 303
    home = client.get("/").get_data(as_text=True)
    assert reservations_shown(home, f["ana"])[0] == ("Cello 1/2", "On the waiting list", "Number 1 on the waiting list")
    assert reservations_shown(home, f["cai"]) == [("Cello 1/2", "On the waiting list", "Number 2 on the waiting list"),
                                                 held]


def test_the_home_page_places_are_the_waiting_lists_own(client, app, busy_family):
    """The page's places are those of the waiting list itself (as the staff queue and the mails number it)."""
    from loanservice.reservations.models import Reservation
    from loanservice.reservations.services import waiting_list

    f = busy_family
    home = client.get("/").get_data(as_text=True)
    with in_app(app) as session:
        for kind in (f["violin"], f["cello"]):
            for place, reservation in enumerate(waiting_list(session, kind.id, "1/2", app.config), 1):
                if reservation.pupil_id in (f["ana"].id, f["cai"].id):
                    row = (f"{kind.name} 1/2", "On the waiting list", f"Number {place} on the waiting list")
                    assert row in reservations_shown(home, session.get(Reservation, reservation.id).pupil)


def add_stock(app, kind, count):
    """``count`` more instruments of a type, free to lend, with their intake checks."""
    from loanservice.inventory.services import InstrumentDetails, add_instrument

    with in_app(app) as session:
        sizes = kind.sizes or [""]
        for n in range(count):
            add_instrument(session, None,
                           InstrumentDetails(type_id=kind.id, size=sizes[n % len(sizes)], make="Stentor"))
        session.commit()


def lend_to(app, child, kind):
    from datetime import date

    from loanservice.inventory.models import Instrument
    from loanservice.loans.lending import open_loan

    with in_app(app) as session:
        instrument = session.scalar(select(Instrument).where(Instrument.type_id == kind.id,
                                                             Instrument.status == "available").limit(1))
        open_loan(session, None, instrument, session.get(Pupil, child.id), due_on=date(2031, 7, 20))
        session.commit()


def test_the_home_page_costs_the_same_statements_whatever_the_stock_and_the_children(client, factory, app,
                                                                                     busy_family):
    """A constant number of statements: the user, the family and its account, the children with their
    schools, claims, loans, reservations, waiting-list places, agreements, requests."""
    f = busy_family

    def home_statements():
        with statements_run(app) as statements:
            response = client.get("/")
        assert response.status_code == 200
        return statements

    lend_to(app, f["dee"], f["violin"])
    first = home_statements()
    add_stock(app, f["violin"], 40)
    add_stock(app, factory.instrument_type("Flute", sizes=()), 10)
    more_stock = home_statements()
    assert len(more_stock) == len(first)
    # More children, with reservations and loans of their own, cost no more statements either.
    for name in ("Eve", "Fin", "Gus"):
        child = factory.child(f["parent"], name)
        reserve(client, child, f["cello"])
        lend_to(app, child, f["violin"])
    gus = reservations_shown(client.get("/").get_data(as_text=True), child)
    assert gus == [("Cello 1/2", "On the waiting list", "Number 6 on the waiting list")]
    assert len(home_statements()) == len(first)


@pytest.mark.skipif(ON_POSTGRES, reason="the plan of SQLite, which nested the instrument join")
def test_the_home_page_reads_no_instrument_but_the_familys(client, app, busy_family):
    """No statement of the page reads the instrument table through (its cost would grow with the stock)."""
    from loanservice.extensions import db

    lend_to(app, busy_family["dee"], busy_family["violin"])
    with statements_run(app) as statements:
        assert client.get("/").status_code == 200
    with app.app_context(), db.engine.connect() as connection:
        plans = {statement: [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                                                          parameters).all()]
                 for statement, parameters in statements}
    reads_instruments = [s for s in plans if " instrument" in s]
    assert reads_instruments  # the loan's instrument is on the page
    whole_stock = re.compile(r"SCAN instrument(_\d+)?( |$)")  # instrument, not instrument_type
    for statement, plan in plans.items():
        assert not [step for step in plan if whole_stock.match(step)], (statement, plan)
