"""Reservations: the catalogue, reserving, the waiting list, the store's queue, collection and lapsing."""
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from loanservice.inventory.models import Instrument, InstrumentStatus
from loanservice.loans.models import Loan
from loanservice.reservations.models import Reservation
from loanservice.reservations.services import add_working_days
from loanservice.timeutil import today

from .conftest import config_for, in_app, login, send_mail
from .pages import submit, submit_on


@pytest.fixture
def violins(factory):
    kind = factory.instrument_type("Violin", sizes=("1/4", "1/2", "3/4"))
    return kind, [factory.instrument(kind, size="1/2") for _ in range(2)]


def reserve(client, child, kind, size="1/2", start=None):
    return client.post("/reserve", data={"pupil_id": str(child.id), "item": f"{kind.id}|{size}",
                                         "preferred_start_on": (start or today()).isoformat()})


def reservation_rows(app):
    with in_app(app) as session:
        return [(r.pupil_id, r.status, r.instrument_id) for r in
                session.scalars(select(Reservation).order_by(Reservation.id))]


def status_of(app, instrument):
    with in_app(app) as session:
        return session.get(Instrument, instrument.id).status


def test_the_public_catalogue_shows_live_availability_sizes_and_fees_but_no_people(client, factory, app, violins):
    from decimal import Decimal

    from loanservice.loans.models import FeeBand, RemissionRule

    kind, _ = violins
    with in_app(app) as session:
        session.add(FeeBand(band="A", fee_per_term=Decimal("30.00"), deposit=Decimal("25.00")))
        session.add(RemissionRule(category="free_school_meals", kind="free"))
        session.add(RemissionRule(category="pupil_premium", kind="percent_off", value=Decimal("60")))
        session.commit()
    parent = factory.parent()
    factory.child(parent, "Secret Name")
    login(client, parent)
    for _ in range(3):  # two held, the third waits
        other = factory.child(parent)
        assert reserve(client, other, kind).status_code == 303
    page = app.test_client().get("/catalogue")  # anyone, signed in or not
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Waiting list: 1 child" in text
    assert "£30.00 a term" in text and "deposit of £25.00" in text
    assert "Free school meals: no fee" in text and "Pupil premium: 60% off" in text
    assert "Size guide" in text and "7 to 9" in text
    assert "Secret Name" not in text and parent.email not in text and not re.search(r"Pupil \d", text)
    assert "1/4" in text  # a size with no stock still shows


def test_reserving_holds_a_free_instrument_then_waitlists_and_staff_are_told(client, factory, app, violins):
    kind, (first, second) = violins
    parent = factory.parent()
    children = [factory.child(parent, f"Child {n}") for n in range(3)]
    login(client, parent)
    response = reserve(client, children[0], kind)
    assert response.status_code == 303
    assert "is held for Child 0" in client.get("/").get_data(as_text=True)
    reserve(client, children[1], kind)
    response = reserve(client, children[2], kind)
    assert response.status_code == 303
    home = client.get("/").get_data(as_text=True)
    assert "number 1" in home.lower() and "Number 1 on the waiting list" in home
    rows = reservation_rows(app)
    assert [row[1] for row in rows] == ["held", "held", "waiting"]
    assert {rows[0][2], rows[1][2]} == {first.id, second.id}
    assert status_of(app, first) == status_of(app, second) == "reserved"
    client.post("/logout")
    login(client, factory.user("staff"))
    queue = client.get("/reservations/queue").get_data(as_text=True)
    assert "Child 0" in queue and "Child 2" in queue and "Waiting lists" in queue


def test_the_whole_life_of_a_reservation_mails_the_parent_at_each_step(database_url, smtp_server, factory):
    from loanservice import create_app

    app = create_app(config_for(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port))
    factory.app = app
    kind = factory.instrument_type("Cello", sizes=("1/2",))
    instrument = factory.instrument(kind, size="1/2")
    factory.term("Summer", today() - timedelta(days=10), today() + timedelta(days=60))
    parent = factory.parent(email="pat@example.org")
    child = factory.child(parent, "Rowan")
    parent_client, staff_client = app.test_client(), app.test_client()
    login(parent_client, parent)
    login(staff_client, factory.user("staff"))
    assert reserve(parent_client, child, kind).status_code == 303
    reservation_id = reservation_rows(app)[0]
    with in_app(app) as session:
        reservation_id = session.scalar(select(Reservation.id))
    assert staff_client.post(f"/reservations/{reservation_id}/ready").status_code == 303
    home = parent_client.get("/").get_data(as_text=True)
    deadline = add_working_days(today(), 5)
    assert "Ready to collect" in home and f"{deadline:%-d %b %Y}" in home
    response = staff_client.post(f"/reservations/{reservation_id}/collect", data={"due_on": ""})
    assert response.status_code == 303
    with in_app(app) as session:
        reservation = session.get(Reservation, reservation_id)
        loan = session.get(Loan, reservation.loan_id)
        assert reservation.status == "collected" and loan.pupil_id == child.id and loan.is_open
        assert loan.instrument_id == instrument.id
    assert status_of(app, instrument) == "on_loan"
    home = parent_client.get("/").get_data(as_text=True)
    assert "On loan" in home and f"{loan.due_on:%-d %b %Y}" in home
    send_mail(app)
    subjects = [m["Subject"] for m in smtp_server.messages if m["To"] == "pat@example.org"]
    assert any("held for Rowan" in s for s in subjects)
    assert any("ready to collect" in s for s in subjects)
    assert any("is on loan" in s for s in subjects)


def test_cancelling_a_held_reservation_offers_the_instrument_to_the_next_child(client, factory, app):
    kind = factory.instrument_type("Flute", family="woodwind", sizes=())
    flute = factory.instrument(kind, size="")
    parent = factory.parent()
    first, second = factory.child(parent, "First"), factory.child(parent, "Second")
    login(client, parent)
    reserve(client, first, kind, size="")
    reserve(client, second, kind, size="")
    with in_app(app) as session:
        held_id = session.scalar(select(Reservation.id).where(Reservation.status == "held"))
    assert client.post(f"/reservations/{held_id}/cancel").status_code == 303
    rows = reservation_rows(app)
    assert [(row[1], row[2]) for row in rows] == [("cancelled", flute.id), ("held", flute.id)]
    assert status_of(app, flute) == "reserved"


def test_a_returned_instrument_goes_to_the_next_child_waiting(client, factory, app):
    from loanservice.borrowers.models import Pupil
    from loanservice.loans.lending import check_in, open_loan

    kind = factory.instrument_type("Trumpet", family="brass", sizes=())
    trumpet = factory.instrument(kind, size="")
    someone = factory.pupil()
    with in_app(app) as session:
        loan = open_loan(session, None, session.get(Instrument, trumpet.id), session.get(Pupil, someone.id),
                         due_on=date(2031, 7, 1))
        session.commit()
        loan_id = loan.id
    parent = factory.parent()
    child = factory.child(parent)
    login(client, parent)
    reserve(client, child, kind, size="")
    assert reservation_rows(app)[0][1] == "waiting"
    with in_app(app) as session:
        check_in(session, None, session.get(Loan, loan_id), grade=2)
        session.commit()
    assert reservation_rows(app)[0][1:] == ("held", trumpet.id)
    assert status_of(app, trumpet) == "reserved"


def test_staff_allocate_another_instrument_and_the_first_goes_back(client, factory, app, violins):
    kind, (first, second) = violins
    parent = factory.parent()
    child = factory.child(parent)
    login(client, parent)
    reserve(client, child, kind)
    held = reservation_rows(app)[0][2]
    other = second if held == first.id else first
    client.post("/logout")
    login(client, factory.user("staff"))
    with in_app(app) as session:
        reservation_id = session.scalar(select(Reservation.id))
    response = client.post(f"/reservations/{reservation_id}/allocate", data={"tag": other.asset_tag.lower()})
    assert response.status_code == 303
    assert reservation_rows(app)[0][2] == other.id
    assert status_of(app, other) == "reserved"
    assert {status_of(app, first), status_of(app, second)} == {"reserved", "available"}
    wrong = factory.instrument(kind, size="3/4")
    response = client.post(f"/reservations/{reservation_id}/allocate", data={"tag": wrong.asset_tag})
    assert response.status_code == 422 and "this reservation is for a Violin 1/2" in response.get_data(as_text=True)
    assert reservation_rows(app)[0][2] == other.id


def test_expire_lapses_uncollected_reservations_once_and_offers_the_next_child(client, factory, app):
    kind = factory.instrument_type("Clarinet", family="woodwind", sizes=())
    clarinet = factory.instrument(kind, size="")
    parent = factory.parent()
    slow, next_child = factory.child(parent, "Slow"), factory.child(parent, "Next")
    login(client, parent)
    reserve(client, slow, kind, size="")
    reserve(client, next_child, kind, size="")
    with in_app(app) as session:
        reservation = session.scalar(select(Reservation).where(Reservation.status == "held"))
        reservation.status, reservation.collect_by = "ready", today() - timedelta(days=1)
        session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["reservations", "expire"])
    assert result.exit_code == 0 and "1 reservation lapsed." in result.output
    assert [(r[1], r[2]) for r in reservation_rows(app)] == [("lapsed", clarinet.id), ("held", clarinet.id)]
    result = runner.invoke(args=["reservations", "expire"])
    assert "0 reservations lapsed." in result.output
    assert [r[1] for r in reservation_rows(app)] == ["lapsed", "held"]


def test_offer_command_holds_instruments_back_in_stock_for_waiting_children(client, factory, app):
    from loanservice.inventory.services import change_status

    kind = factory.instrument_type("Djembe", family="percussion", sizes=('10"',))
    drum = factory.instrument(kind, size='10"')
    with in_app(app) as session:
        change_status(session, None, session.get(Instrument, drum.id), InstrumentStatus.IN_REPAIR, "split skin")
        session.commit()
    parent = factory.parent()
    login(client, parent)
    reserve(client, factory.child(parent), kind, size='10"')
    with in_app(app) as session:
        change_status(session, None, session.get(Instrument, drum.id), InstrumentStatus.AVAILABLE, "repaired")
        session.commit()
    result = app.test_cli_runner().invoke(args=["reservations", "offer"])
    assert "1 instrument held" in result.output
    assert reservation_rows(app)[0][1:] == ("held", drum.id)


def test_waiting_list_order_can_put_verified_remission_first(database_url, factory):
    from loanservice import create_app

    app = create_app(config_for(database_url, WAITING_LIST_ORDER="remission_first"))
    factory.app = app
    kind = factory.instrument_type("Viola", sizes=('14"',))
    parent = factory.parent()
    early = factory.child(parent, "Early")
    eligible = factory.child(parent, "Eligible", remission_category="pupil_premium", remission_verified_on=today())
    client = app.test_client()
    login(client, parent)
    reserve(client, early, kind, size='14"')
    reserve(client, eligible, kind, size='14"')
    from loanservice.reservations.services import waiting_list, waiting_place

    with in_app(app) as session:
        queue = waiting_list(session, kind.id, '14"', app.config)
        assert [r.pupil_id for r in queue] == [eligible.id, early.id]
        assert [waiting_place(session, r, app.config) for r in queue] == [1, 2]
    home = client.get("/").get_data(as_text=True)
    # Children are listed by name: Early (second in the queue) comes first on the page.
    assert home.index(">Early</h2>") < home.index("Number 2 on the waiting list") < home.index(">Eligible</h2>") \
        < home.index("Number 1 on the waiting list")


# ---------------------------------------------------------------- bad input and privacy


def test_bad_reservations_are_refused_clearly_and_change_nothing(client, factory, app, violins):
    kind, _ = violins
    parent, stranger = factory.parent(), factory.parent()
    child, their_child = factory.child(parent, "Mine"), factory.child(stranger, "Theirs")
    login(client, parent)
    cases = [
        (reserve(client, their_child, kind), 404, "no such child in your family"),
        (reserve(client, child, kind, size="7/8"), 422, "does not come in size 7/8"),
        (reserve(client, child, kind, start=today() - timedelta(days=1)), 422, "preferred start date is in the past"),
        (reserve(client, child, kind, start=today() + timedelta(days=365 * 73)), 422, "is too far ahead"),
    ]
    for response, status, message in cases:
        assert response.status_code == status, response.get_data(as_text=True)
        assert message in response.get_data(as_text=True)
    assert reservation_rows(app) == []
    assert reserve(client, child, kind).status_code == 303
    duplicate = reserve(client, child, kind, size="3/4")
    assert duplicate.status_code == 409
    assert "Mine already has a reservation for a violin" in duplicate.get_data(as_text=True)
    assert len(reservation_rows(app)) == 1


def test_a_child_has_a_limited_number_of_open_reservations(client, factory, app):
    parent = factory.parent()
    child = factory.child(parent, "Keen")
    login(client, parent)
    kinds = [factory.instrument_type(f"Kind {n}", sizes=()) for n in range(3)]
    assert [reserve(client, child, k, size="").status_code for k in kinds] == [303, 303, 409]
    assert len(reservation_rows(app)) == 2


def test_an_unconfirmed_parent_cannot_reserve(client, factory, app, violins):
    kind, _ = violins
    parent = factory.parent(confirmed=False)
    child = factory.child(parent)
    login(client, parent)
    response = reserve(client, child, kind)
    assert response.status_code == 403 and "Confirm your email address first" in response.get_data(as_text=True)
    assert reservation_rows(app) == []


def test_a_parent_cannot_cancel_or_see_another_familys_reservation(client, factory, app, violins):
    kind, _ = violins
    mine, theirs = factory.parent(), factory.parent()
    their_child = factory.child(theirs, "Their Child")
    other = app.test_client()
    login(other, theirs)
    reserve(other, their_child, kind)
    with in_app(app) as session:
        reservation_id = session.scalar(select(Reservation.id))
    login(client, mine)
    assert client.post(f"/reservations/{reservation_id}/cancel").status_code == 404
    assert reservation_rows(app)[0][1] == "held"
    assert "Their Child" not in client.get("/").get_data(as_text=True)
    for url in ("/reservations/queue", f"/reservations/{reservation_id}/ready"):
        assert (client.get if url.endswith("queue") else client.post)(url).status_code == 403


def test_the_database_holds_one_instrument_for_one_reservation(app, factory, violins):
    from sqlalchemy.exc import IntegrityError

    kind, (first, _) = violins
    a, b = factory.child(factory.parent()), factory.child(factory.parent())
    with in_app(app) as session:
        session.add(Reservation(pupil_id=a.id, type_id=kind.id, size="1/2", status="held", instrument_id=first.id,
                                preferred_start_on=today()))
        session.commit()
        session.add(Reservation(pupil_id=b.id, type_id=kind.id, size="1/2", status="ready", instrument_id=first.id,
                                collect_by=today(), preferred_start_on=today()))
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        session.add(Reservation(pupil_id=a.id, type_id=kind.id, size="3/4", status="waiting",
                                preferred_start_on=today()))
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        assert session.scalar(select(func.count()).select_from(Reservation)) == 1


def test_the_demo_has_parents_with_a_reservation_in_each_state_and_a_waiting_list(app, client):
    result = app.test_cli_runner().invoke(args=["demo", "seed", "--instruments", "300"])
    assert result.exit_code == 0, result.output
    assert "parent2@demo.hub" in result.output and "demo-parent2-pass" in result.output
    with in_app(app) as session:
        statuses = set(session.scalars(select(Reservation.status)))
    assert statuses == {"waiting", "held", "ready", "collected", "lapsed", "cancelled"}
    response = client.post("/login", data={"email": "parent@demo.hub", "password": "demo-parent-pass"})
    assert response.status_code == 302
    home = client.get("/").get_data(as_text=True)
    assert "Number 2 on the waiting list" in home and "Ready to collect" in home and "Collected" in home
    client.post("/logout")
    login(client, type("U", (), {"email": "parent2@demo.hub"}), "demo-parent2-pass")
    assert "Number 1 on the waiting list" in client.get("/").get_data(as_text=True)


def test_staff_see_parents_requests_and_mark_them_dealt_with(client, factory, app):
    from loanservice.borrowers.models import Pupil
    from loanservice.loans.lending import open_loan
    from loanservice.parents.models import ParentRequest

    parent = factory.parent()
    child = factory.child(parent, "Grown")
    instrument = factory.instrument()
    with in_app(app) as session:
        loan = open_loan(session, None, session.get(Instrument, instrument.id), session.get(Pupil, child.id),
                         due_on=date(2031, 7, 1))
        session.commit()
        loan_id = loan.id
    login(client, parent)
    client.post(f"/my-loans/{loan_id}/ask", data={"kind": "return", "note": "Stopped lessons"})
    client.post("/logout")
    login(client, factory.user("staff"))
    queue = client.get("/reservations/queue").get_data(as_text=True)
    assert "Return the instrument" in queue and "Stopped lessons" in queue
    with in_app(app) as session:
        request_id = session.scalar(select(ParentRequest.id))
    assert client.post(f"/parent-requests/{request_id}/done").status_code == 303
    assert client.post(f"/parent-requests/{request_id}/done").status_code == 409
    assert "Stopped lessons" not in client.get("/reservations/queue").get_data(as_text=True)


def test_reservations_never_hold_classroom_set_members_or_unusable_instruments(client, factory, app):
    from loanservice.sets import services as sets

    kind = factory.instrument_type("Violin", sizes=("1/2",))
    members = [factory.instrument(kind, size="1/2", asset_tag=f"SETV-{n}") for n in range(2)]
    kit = factory.classroom_set(name="Violin set A", instruments=members)
    factory.instrument(kind, size="1/2", asset_tag="BROKEN-1", condition_grade=5)
    free = factory.instrument(kind, size="1/2", asset_tag="FREE-1", condition_grade=3)
    catalogue = client.get("/catalogue").get_data(as_text=True)
    assert "1 available now" in catalogue  # not 4: the set's two and the unusable one are not on offer
    parent = factory.parent()
    first, second = factory.child(parent), factory.child(parent)
    login(client, parent)
    reserve(client, first, kind)
    reserve(client, second, kind)
    assert [(r[1], r[2]) for r in reservation_rows(app)] == [("held", free.id), ("waiting", None)]
    assert app.test_cli_runner().invoke(args=["reservations", "offer"]).exit_code == 0
    assert reservation_rows(app)[1][1] == "waiting"
    client.post("/logout")
    login(client, factory.user("staff"))
    with in_app(app) as session:
        waiting_id = session.scalar(select(Reservation.id).where(Reservation.status == "waiting"))
    for tag, message in (("SETV-0", "SETV-0 belongs to Violin set A: take it out of the set first."),
                         ("BROKEN-1", "BROKEN-1 is graded 5 (unusable)")):
        response = client.post(f"/reservations/{waiting_id}/allocate", data={"tag": tag})
        assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert {status_of(app, m) for m in members} == {"available"}
    with in_app(app) as session:  # so the whole set still goes out to a school
        set_loan = sets.check_out_set(session, None, session.get(sets.ClassroomSet, kit.id),
                                      session.get(sets.School, factory.school().id),
                                      due_on=today() + timedelta(days=30))
        assert set_loan.item_count == 2


def test_the_demo_reserves_no_classroom_set_member(app):
    from loanservice.sets.models import ClassroomSetItem

    result = app.test_cli_runner().invoke(args=["demo", "seed", "--instruments", "400"])
    assert result.exit_code == 0, result.output
    with in_app(app) as session:
        held = set(session.scalars(select(Reservation.instrument_id).where(Reservation.instrument_id.isnot(None))))
        assert held
        assert not held & set(session.scalars(select(ClassroomSetItem.instrument_id)))
        assert all(session.get(Instrument, i).condition_grade < 5 for i in held)


def test_one_click_cancellations_and_removals_ask_first_and_say_what_is_lost(client, factory, app, violins):
    import html

    kind, _ = violins
    parent = factory.parent()
    children = [factory.child(parent, f"Child {n}") for n in range(3)]
    login(client, parent)
    for child in children:  # two held, the third waits
        reserve(client, child, kind)
    home = html.unescape(client.get("/").get_data(as_text=True))
    assert ('data-confirm="Cancel the reservation of a Violin 1/2 for Child 2? Child 2 loses their place '
            '(number 1) on the waiting list; reserving again puts them at the end."') in home
    assert "for Child 0? The instrument held for Child 0 is released for the next child waiting" in home
    form = html.unescape(client.get(f"/children/{children[2].id}").get_data(as_text=True))
    assert 'data-confirm="Remove Child 2? Their open reservations are cancelled' in form
    client.post("/logout")
    admin = factory.user("admin")
    login(client, admin)
    queue = html.unescape(client.get("/reservations/queue").get_data(as_text=True))
    assert queue.count('data-confirm="Cancel the reservation of a Violin 1/2 for Child') == 2
    factory.term("Autumn 2025", date(2025, 9, 1), date(2025, 12, 19))
    charges = html.unescape(client.get("/charges").get_data(as_text=True))
    assert 'data-confirm="Raise charges for Autumn 2025?' in charges


def test_the_staff_queue_pages_the_held_instruments(client, factory, app, violins, monkeypatch):
    from loanservice.reservations import services

    monkeypatch.setattr(services, "HELD_PER_PAGE", 1)
    kind, _ = violins
    parent = factory.parent()
    children = [factory.child(parent, f"Child {n}") for n in range(2)]
    login(client, parent)
    for child in children:
        assert reserve(client, child, kind).status_code == 303
    staff = app.test_client()
    login(staff, factory.user("staff"))
    first = staff.get("/reservations/queue").get_data(as_text=True)
    assert "instruments held, to prepare (2)" in first and "2 held instruments · page 1 of 2" in first
    assert "Child 0" in first and "Child 1" not in first
    second = staff.get("/reservations/queue?page=2").get_data(as_text=True)
    assert "Child 1" in second and "Child 0" not in second
    beyond = staff.get("/reservations/queue?page=9").get_data(as_text=True)
    assert "No more on this page" in beyond and "Nothing new." not in beyond


def test_a_request_marked_dealt_with_twice_shows_the_queue_with_why_and_a_409(client, factory, app):
    from loanservice.borrowers.models import Pupil
    from loanservice.loans.lending import open_loan
    from loanservice.parents.models import ParentRequest

    parent = factory.parent()
    child = factory.child(parent, "Grown")
    with in_app(app) as session:
        loan = open_loan(session, None, session.get(Instrument, factory.instrument().id), session.get(Pupil, child.id),
                         due_on=date(2031, 7, 1))
        session.commit()
        loan_id = loan.id
    login(client, parent)
    submit(client, f"/my-loans/{loan_id}/ask", {"kind": "return", "note": "Stopped lessons"})
    client.post("/logout")
    login(client, factory.user("staff"))
    with in_app(app) as session:
        request_id = session.scalar(select(ParentRequest.id))
    queue = client.get("/reservations/queue")  # two people with the queue open both press "Done"
    submit_on(client, queue, "/reservations/queue", form=f"/parent-requests/{request_id}/done")
    again = submit_on(client, queue, "/reservations/queue", form=f"/parent-requests/{request_id}/done")
    assert again.status_code == 409
    assert "That request was already dealt with." in again.get_data(as_text=True)
    assert "<h1>Reservations</h1>" in again.get_data(as_text=True)
