"""Servicing: plans, the queue, sets sent to servicing and back, lending refused while in servicing."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from loanservice.errors import LoanServiceError
from loanservice.inventory.models import Instrument, Repair, RepairKind
from loanservice.inventory.tags import resolve_instrument
from loanservice.loans.models import Loan
from loanservice.servicing import services
from loanservice.servicing.models import Schedule, ServicePlan
from loanservice.sets.models import ClassroomSet, SetLoan
from loanservice.signals import booking_checked
from loanservice.timeutil import today

from .conftest import in_app, login, tags_of
from .pages import submit


def add_plan(app, instrument_type, name="Restring", schedule=Schedule.EVERY_SUMMER, interval_months=None):
    with in_app(app) as session:
        plan = services.save_plan(session, None, type_id=instrument_type.id, name=name, schedule=schedule,
                                  interval_months=interval_months)
        session.commit()
        return plan.id


def send_set(app, kit, **kw):
    with in_app(app) as session:
        repairs = services.send_set_to_servicing(session, None, session.get(ClassroomSet, kit.id),
                                                 technician="Store workshop", **kw)
        session.commit()
        return len(repairs)


def status_of(app, tag):
    with in_app(app) as session:
        return resolve_instrument(session, tag).status.value


def kit_type(app, kit):
    with in_app(app) as session:
        return session.get(ClassroomSet, kit.id).items[0].instrument.type


# ---------------------------------------------------------------- lending refused


def test_a_set_in_servicing_cannot_be_lent_and_says_why(app, factory):
    kit, school = factory.classroom_set(size=3), factory.school()
    send_set(app, kit)
    first = tags_of(app, kit)[0]
    with pytest.raises(LoanServiceError, match=f"{first} is in servicing"):
        factory.check_out_set(kit, school)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(SetLoan)) == 0


def test_lending_a_set_in_servicing_from_its_page_is_a_409_and_nothing_is_lent(app, factory, client):
    kit, school = factory.classroom_set(size=2), factory.school(name="Oak Primary")
    send_set(app, kit)
    login(client, factory.user("staff"))
    response = submit(client, f"/sets/{kit.id}", {"school_id": school.id,
                                                  "due_on": (today() + timedelta(days=60)).isoformat()},
                      form=f"/sets/{kit.id}/check-out")
    assert response.status_code == 409
    assert "is in servicing" in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 0


def test_an_instrument_in_servicing_cannot_be_lent_on_its_own(app, factory):
    instrument, family = factory.instrument(), factory.family()
    with in_app(app) as session:
        services.send_to_servicing(session, None, resolve_instrument(session, instrument.asset_tag),
                                   technician="Store workshop")
        session.commit()
    with pytest.raises(LoanServiceError, match="in servicing; it cannot be lent"):
        factory.loan(instrument, family, due_on=today() + timedelta(days=30))


def test_a_set_out_at_a_school_is_not_sent_to_servicing(app, factory):
    kit, school = factory.classroom_set(size=2), factory.school(name="Elm School")
    factory.check_out_set(kit, school)
    with pytest.raises(LoanServiceError, match="out at Elm School"):
        send_set(app, kit)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Repair)) == 0


# ---------------------------------------------------------------- one history with repairs


def test_servicing_is_kept_in_the_repair_history_with_who_what_and_cost(app, factory):
    kit = factory.classroom_set(size=2)
    plan_id = add_plan(app, kit_type(app, kit))
    send_set(app, kit)
    with in_app(app) as session:
        services.set_back_from_servicing(session, None, session.get(ClassroomSet, kit.id),
                                         work_done="New strings", cost_each=Decimal("4.50"))
        session.commit()
    with in_app(app) as session:
        records = session.scalars(select(Repair)).all()
        assert [r.kind for r in records] == [RepairKind.SERVICE, RepairKind.SERVICE]
        assert {r.plan_id for r in records} == {plan_id}
        assert {r.actual_cost for r in records} == {Decimal("4.50")}
        assert {r.work_done for r in records} == {"New strings"}
        assert {r.repairer for r in records} == {"Store workshop"}
    assert status_of(app, tags_of(app, kit)[0]) == "available"


def test_serviced_set_can_be_lent_again(app, factory):
    kit, school = factory.classroom_set(size=2), factory.school()
    send_set(app, kit)
    with in_app(app) as session:
        services.set_back_from_servicing(session, None, session.get(ClassroomSet, kit.id))
        session.commit()
    assert factory.check_out_set(kit, school) > 0


def test_a_repair_and_a_servicing_cannot_be_open_at_once(app, factory):
    instrument = factory.instrument()
    with in_app(app) as session:
        found = resolve_instrument(session, instrument.asset_tag)
        services.send_to_servicing(session, None, found, technician="Store workshop")
        session.commit()
    with in_app(app) as session, pytest.raises(LoanServiceError, match="already in servicing"):
        services.send_to_servicing(session, None, resolve_instrument(session, instrument.asset_tag),
                                   technician="Store workshop")


# ---------------------------------------------------------------- the queue


def test_the_queue_lists_overdue_due_and_in_servicing(app, factory):
    keyboard_type = factory.instrument_type("Keyboard", family="electric", sizes=())
    add_plan(app, keyboard_type, "PAT test", Schedule.EVERY_MONTHS, 12)
    overdue = factory.instrument(keyboard_type, purchased_on=today() - timedelta(days=400))
    due_soon = factory.instrument(keyboard_type, purchased_on=_months_ago(12) + timedelta(days=10))
    not_due = factory.instrument(keyboard_type, purchased_on=today() - timedelta(days=30))
    being_done = factory.instrument(keyboard_type, purchased_on=today() - timedelta(days=500))
    with in_app(app) as session:
        services.send_to_servicing(session, None, resolve_instrument(session, being_done.asset_tag),
                                   technician="PAT Ltd")
        session.commit()
    with in_app(app) as session:
        due = services.due_services(session)
        assert [(d.instrument.asset_tag, d.overdue) for d in due] == [(overdue.asset_tag, True),
                                                                       (due_soon.asset_tag, False)]
        assert not_due.asset_tag not in {d.instrument.asset_tag for d in due}
        assert [r.instrument.asset_tag for r in services.in_service(session)] == [being_done.asset_tag]


def _months_ago(months):
    return services._add_months(today(), -months)


def test_a_hygiene_clean_falls_due_at_each_return_and_not_after_it_is_done(app, factory):
    clarinet = factory.instrument_type("Clarinet", family="woodwind", sizes=())
    plan_id = add_plan(app, clarinet, "Hygiene clean", Schedule.AT_RETURN)
    instrument, family = factory.instrument(clarinet), factory.family()
    loan_id = factory.loan(instrument, family, due_on=today() + timedelta(days=30))
    from loanservice.loans import lending
    with in_app(app) as session:
        lending.check_in(session, None, session.get(Loan, loan_id), grade=2)
        session.commit()
    with in_app(app) as session:
        assert [d.plan.id for d in services.due_services(session)] == [plan_id]
        plan = session.get(ServicePlan, plan_id)
        services.send_to_servicing(session, None, resolve_instrument(session, instrument.asset_tag),
                                   technician="Store", plan=plan)
        services.back_from_servicing(session, None, resolve_instrument(session, instrument.asset_tag))
        session.commit()
    with in_app(app) as session:
        assert services.due_services(session) == []


def test_the_summer_service_is_due_by_the_end_of_august():
    assert services._summer_due(date(2026, 7, 20), date(2026, 12, 1)) == date(2027, 8, 31)
    assert services._summer_due(date(2026, 3, 1), date(2026, 5, 1)) == date(2026, 8, 31)


def test_the_queue_page_sends_the_ticked_instruments(app, factory, client):
    keyboard_type = factory.instrument_type("Keyboard", family="electric", sizes=())
    add_plan(app, keyboard_type, "PAT test", Schedule.EVERY_MONTHS, 12)
    overdue = factory.instrument(keyboard_type, purchased_on=today() - timedelta(days=400))
    login(client, factory.user("staff"))
    page = client.get("/servicing").get_data(as_text=True)
    assert "Overdue (1)" in page
    with in_app(app) as session:
        value = f"{resolve_instrument(session, overdue.asset_tag).id}:{session.scalar(select(ServicePlan.id))}"
    response = submit(client, "/servicing", {"due": value, "technician": "PAT Ltd"})
    assert response.status_code == 303
    assert status_of(app, overdue.asset_tag) == "in_service"
    assert "In servicing (1)" in client.get("/servicing").get_data(as_text=True)


def test_the_queue_page_with_nothing_ticked_says_so_and_sends_nothing(app, factory, client):
    keyboard_type = factory.instrument_type("Keyboard", family="electric", sizes=())
    add_plan(app, keyboard_type, "PAT test", Schedule.EVERY_MONTHS, 12)
    factory.instrument(keyboard_type, purchased_on=today() - timedelta(days=400))
    login(client, factory.user("staff"))
    response = submit(client, "/servicing", {"technician": "PAT Ltd"})
    assert response.status_code == 422
    assert "Tick the instruments to send." in response.get_data(as_text=True)


# ---------------------------------------------------------------- pages


def test_the_admin_adds_a_plan_from_its_page(app, factory, client):
    violin = factory.instrument_type("Violin")
    login(client, factory.user("admin"))
    response = submit(client, "/servicing/plans", {"type_id": violin.id, "name": "Restring",
                                                   "schedule": "every_summer"})
    assert response.status_code == 303
    assert "Restring" in client.get("/servicing/plans").get_data(as_text=True)


def test_a_plan_every_few_months_needs_the_months(app, factory, client):
    violin = factory.instrument_type("Violin")
    login(client, factory.user("admin"))
    response = submit(client, "/servicing/plans", {"type_id": violin.id, "name": "PAT test",
                                                   "schedule": "every_months"})
    assert response.status_code == 422
    assert "Say every how many months" in response.get_data(as_text=True)


def test_staff_send_a_set_and_take_it_back_from_its_servicing_page(app, factory, client):
    kit = factory.classroom_set(size=3)
    login(client, factory.user("staff"))
    response = submit(client, f"/servicing/sets/{kit.id}", {"send-technician": "Hubbard Strings"},
                      form=f"/servicing/sets/{kit.id}/send")
    assert response.status_code == 303
    page = client.get(f"/servicing/sets/{kit.id}").get_data(as_text=True)
    assert "3 instruments in servicing" in page
    response = submit(client, f"/servicing/sets/{kit.id}", {"back-work_done": "Cleaned", "back-cost_each": "2.00"},
                      form=f"/servicing/sets/{kit.id}/back")
    assert response.status_code == 303
    assert "In the store: 3 instruments ready to lend" in client.get(f"/servicing/sets/{kit.id}").get_data(as_text=True)


def test_schools_and_parents_do_not_see_servicing(app, factory, client):
    login(client, factory.user("school"))
    assert client.get("/servicing").status_code == 403


# ---------------------------------------------------------------- for bookings


def test_ready_by_is_none_for_a_set_not_in_servicing(app, factory):
    kit = factory.classroom_set(size=2)
    with in_app(app) as session:
        assert services.ready_by(session, session.get(ClassroomSet, kit.id)) is None


def test_ready_by_is_the_latest_expected_day(app, factory):
    kit = factory.classroom_set(size=2)
    back = today() + timedelta(days=20)
    send_set(app, kit, expected_back_on=back)
    with in_app(app) as session:
        assert services.ready_by(session, session.get(ClassroomSet, kit.id)) == back


def test_a_booking_before_the_set_is_ready_is_refused_through_the_signal(app, factory):
    kit = factory.classroom_set(size=2)
    back = today() + timedelta(days=20)
    send_set(app, kit, expected_back_on=back)
    with in_app(app) as session:
        classroom_set = session.get(ClassroomSet, kit.id)
        early = [answer for _, answer in booking_checked.send(classroom_set, session=session,
                                                              starts_on=back - timedelta(days=1),
                                                              ends_on=back + timedelta(days=90)) if answer]
        late = [answer for _, answer in booking_checked.send(classroom_set, session=session, starts_on=back,
                                                             ends_on=back + timedelta(days=90)) if answer]
    assert early == [f"{kit.name} is in servicing until {back:%-d %b %Y}: book it from that day, or choose "
                     "another set."]
    assert late == []


def test_instruments_in_servicing_are_counted_as_such(app, factory):
    kit = factory.classroom_set(size=2)
    send_set(app, kit)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).where(Instrument.status == "in_service")) == 2
