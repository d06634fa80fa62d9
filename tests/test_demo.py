"""The demo hub: a living inventory for a new user, and fast enough for benchmarks."""
from sqlalchemy import func, select

from loanservice.accounts.models import User
from loanservice.documents.models import HireConditions
from loanservice.inventory.models import ConditionCheck, Instrument, Repair

from .conftest import in_app


def test_demo_seed_builds_a_hub_and_prints_the_logins(app):
    result = app.test_cli_runner().invoke(args=["demo", "seed", "--instruments", "300"])
    assert result.exit_code == 0, result.output
    assert "staff@demo.hub" in result.output and "demo-staff-pass" in result.output
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Instrument)) == 300
        # Each instrument's intake check, and the return checks of the set part checked in.
        assert session.scalar(select(func.count()).where(ConditionCheck.reason == "intake")) == 300
        statuses = set(session.scalars(select(Instrument.status).distinct()))
        assert {"available", "in_repair"} <= statuses
        in_repair = session.scalar(select(func.count()).where(Instrument.status == "in_repair"))
        assert session.scalar(select(func.count()).where(Repair.kind == "repair")) == in_repair
        # Servicing shares the repair record: the few in servicing have one open each.
        in_service = session.scalar(select(func.count()).where(Instrument.status == "in_service"))
        assert session.scalar(select(func.count()).where(Repair.kind == "service",
                                                         Repair.returned_on.is_(None))) == in_service
        assert set(session.scalars(select(User.role))) == {"admin", "staff", "school", "parent"}
        # Terms and conditions, so that agreements can be made and signed in the demo.
        assert session.scalar(select(HireConditions.version)) == 1


def test_demo_logins_work(app, client):
    app.test_cli_runner().invoke(args=["demo", "seed", "--instruments", "20"])
    response = client.post("/login", data={"email": "staff@demo.hub", "password": "demo-staff-pass"})
    assert response.status_code == 302
    assert "20</span> instruments in all" in client.get("/dashboard").get_data(as_text=True)


def test_seed_if_empty_leaves_an_existing_hub_alone(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["demo", "seed", "--instruments", "10"])
    result = runner.invoke(args=["demo", "seed", "--if-empty", "--instruments", "10"])
    assert "already has data" in result.output
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Instrument)) == 10


def test_tags_issued_after_the_demo_continue_the_sequence(app, staff_client):
    app.test_cli_runner().invoke(args=["demo", "seed", "--instruments", "5"])
    with in_app(app) as session:
        type_id = session.scalar(select(Instrument.type_id).where(Instrument.size == ""))
    response = staff_client.post("/instruments/new", data={"type_id": str(type_id), "location": "Store",
                                                           "condition_grade": "1"})
    assert response.location.endswith("/instruments/MIX-000006")


def test_the_demo_hub_is_ready_for_agreements_and_notices(app, staff_client):
    """Terms and notice stages are set, and the overdue loans' letters can be sent or posted."""
    app.test_cli_runner().invoke(args=["demo", "seed", "--instruments", "300"])
    preview = staff_client.get("/notices").get_data(as_text=True)
    assert "No notice stages are set" not in preview and "Reminder at 7 days overdue" in preview
    with in_app(app) as session:
        from loanservice.borrowers.models import Family
        from loanservice.documents.services import current_hire_conditions

        assert "replacement cost" in current_hire_conditions(session).text
        by_post = session.scalars(select(Family).where(Family.email == "")).all()
        assert by_post and all(family.address for family in by_post)
    result = app.test_cli_runner().invoke(args=["notices", "run", "--dry-run"])
    assert result.exit_code == 0, result.output
    due = int(result.output.split(": ", 1)[1].split(" notices due")[0])
    # However late the demo's loans (and last term's unpaid invoices) are, each gets the first stage first.
    assert due >= 1 and result.output.count("Reminder") + result.output.count("Payment reminder") == due
    assert "Payment reminder" in result.output
    assert "no postal address" not in preview


def test_the_demo_sets_in_the_store_can_be_lent_straight_away(app):
    from loanservice.sets.services import list_sets

    assert app.test_cli_runner().invoke(args=["demo", "seed", "--instruments", "1500"]).exit_code == 0
    with in_app(app) as session:
        sets = list_sets(session)
        in_store = [(s.name, blocked) for s, _, out, blocked in sets if out is None]
        assert in_store and len(in_store) < len(sets)  # some out at schools, some in the store
        assert all(blocked == 0 for _, blocked in in_store), in_store


def test_the_demo_sets_items_came_back_in_the_condition_their_instruments_show(app):
    from loanservice.loans.models import Loan

    assert app.test_cli_runner().invoke(args=["demo", "seed", "--instruments", "1500"]).exit_code == 0
    with in_app(app) as session:
        back = session.execute(select(Loan.condition_at_return, Instrument.condition_grade).join(Loan.instrument)
                               .where(Loan.set_loan_id.is_not(None), Loan.status == "returned")).all()
        assert back and all(returned == now for returned, now in back), back


def test_the_demo_sets_items_came_back_each_in_its_own_grade_one_chosen_worse(app):
    from loanservice.loans.models import Loan

    assert app.test_cli_runner().invoke(args=["demo", "seed", "--instruments", "1500"]).exit_code == 0
    with in_app(app) as session:
        back = session.execute(select(Loan.condition_at_issue, Loan.condition_at_return, Loan.instrument_id)
                               .where(Loan.set_loan_id.is_not(None), Loan.status == "returned")).all()
        assert len({returned for _, returned, _ in back}) > 1  # not one grade for every item
        changed = [(out, returned) for out, returned, _ in back if out != returned]
        assert changed and all(returned == out + 1 for out, returned in changed) and len(changed) == 1
        # The sets' return checks (the demo also takes back a pupil's instrument, to refund its deposit).
        checked = dict(session.execute(select(ConditionCheck.instrument_id, ConditionCheck.grade)
                                       .where(ConditionCheck.reason == "return",
                                              ConditionCheck.instrument_id.in_([i for _, _, i in back]))).all())
        assert checked == {instrument: returned for _, returned, instrument in back}
