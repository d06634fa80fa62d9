"""Invariants the database keeps under concurrent requests (real threads, real connections)."""
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from loanservice.inventory.models import Instrument
from loanservice.timeutil import today

from .conftest import ON_POSTGRES, in_app, login

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES, reason="concurrency is proved on PostgreSQL, the production database"
)
WORKERS = 20
# Well ahead, but within what lending allows (the end of the next school year).
DUE = (today() + timedelta(days=120)).isoformat()


def run_together(work, n=WORKERS):
    """Start ``n`` threads at the same moment and collect what each returned."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def target(i):
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def signed_in_clients(app, factory, n=WORKERS):
    clients = []
    for i in range(n):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"192.0.2.{i + 1}"  # one store PC each
        login(client, factory.user("staff"))
        clients.append(client)
    return clients


def test_twenty_people_adding_the_same_tag_at_once_get_one_instrument(app, factory):
    violin = factory.instrument_type("Violin", sizes=("1/2",))
    clients = signed_in_clients(app, factory)
    data = {"type_id": str(violin.id), "size": "1/2", "location": "Store", "condition_grade": "2",
            "asset_tag": "RACE-1"}
    statuses = run_together(lambda i: clients[i].post("/instruments/new", data=data).status_code)
    assert sorted(statuses) == [303] + [409] * (WORKERS - 1)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Instrument)) == 1


def test_twenty_instruments_added_at_once_get_twenty_different_tags(app, factory):
    violin = factory.instrument_type("Violin", sizes=("1/2",))
    clients = signed_in_clients(app, factory)
    data = {"type_id": str(violin.id), "size": "1/2", "location": "Store", "condition_grade": "2"}
    statuses = run_together(lambda i: clients[i].post("/instruments/new", data=data).status_code)
    assert statuses == [303] * WORKERS
    with in_app(app) as session:
        tags = session.scalars(select(Instrument.asset_tag)).all()
    assert sorted(tags) == [f"MIX-{n:06d}" for n in range(1, WORKERS + 1)]


def test_concurrent_repairs_of_one_instrument_open_one_repair(app, factory):
    instrument = factory.instrument()
    clients = signed_in_clients(app, factory)
    data = {"repairer": "Hubbard Strings", "sent_on": "2025-01-06"}
    statuses = run_together(lambda i: clients[i].post(f"/instruments/{instrument.asset_tag}/repair",
                                                      data=data).status_code)
    assert sorted(statuses) == [303] + [409] * (WORKERS - 1)


def test_twenty_concurrent_check_outs_of_one_instrument_lend_it_once(app, factory):
    from loanservice.loans.models import Loan

    instrument = factory.instrument()
    families = [factory.family() for _ in range(WORKERS)]
    clients = signed_in_clients(app, factory)

    def check_out(i):
        response = clients[i].post("/loans/new", data={
            "tag": instrument.asset_tag, "borrower": f"family-{families[i].id}", "started_on": today().isoformat(),
            "due_on": DUE, "condition_grade": "2"})
        return response.status_code, response.get_data(as_text=True)

    results = run_together(check_out)
    statuses = sorted(status for status, _ in results)
    assert statuses == [303] + [409] * (WORKERS - 1)
    for status, page in results:
        if status == 409:
            assert f"{instrument.asset_tag} is already on loan." in page
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 1
        assert session.scalar(select(Instrument.status).where(Instrument.id == instrument.id)) == "on_loan"


def test_a_set_scanned_in_by_many_hands_at_once_closes_exactly_once(app, factory):
    from loanservice.audit.models import AuditEvent
    from loanservice.schools.models import School
    from loanservice.sets.models import ClassroomSet, SetLoan
    from loanservice.sets.services import check_out_set, set_instruments

    kit, school = factory.classroom_set(size=WORKERS), factory.school()
    with in_app(app) as session:
        set_loan = check_out_set(session, None, session.get(ClassroomSet, kit.id), session.get(School, school.id),
                                 due_on=today() + timedelta(days=120))
        session.commit()
        set_loan_id = set_loan.id
        tags = [i.asset_tag for i in set_instruments(session, session.get(ClassroomSet, kit.id))]
    clients = signed_in_clients(app, factory)
    # Each item scanned twice at once, as when two people work through one box.
    statuses = run_together(lambda i: clients[i].post(
        f"/set-loans/{set_loan_id}/check-in", data={"code": tags[i // 2], "grade": "2"}).status_code)
    statuses += run_together(lambda i: clients[i].post(
        f"/set-loans/{set_loan_id}/check-in", data={"code": tags[WORKERS // 2 + i // 2], "grade": "2"}).status_code)
    assert sorted(statuses) == [303] * WORKERS + [409] * WORKERS
    with in_app(app) as session:
        assert session.get(SetLoan, set_loan_id).closed_on is not None
        assert session.scalar(select(func.count()).where(AuditEvent.action == "set.in")) == 1


def test_one_set_lent_twice_at_once_goes_out_once(app, factory):
    from loanservice.sets.models import SetLoan

    kit = factory.classroom_set(size=5)
    schools = [factory.school() for _ in range(WORKERS)]
    clients = signed_in_clients(app, factory)
    results = run_together(lambda i: clients[i].post(f"/sets/{kit.id}/check-out", data={
        "school_id": str(schools[i].id), "started_on": today().isoformat(), "due_on": DUE}))
    assert sorted(r.status_code for r in results) == [303] + [409] * (WORKERS - 1)
    assert all("is already out at" in r.get_data(as_text=True) for r in results if r.status_code == 409)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(SetLoan)) == 1


def test_twenty_parents_reserving_the_last_instrument_at_once_one_gets_it_the_rest_wait_in_order(app, factory):
    from loanservice.reservations.models import Reservation
    from loanservice.reservations.services import waiting_place
    from loanservice.timeutil import today

    violin = factory.instrument_type("Violin", sizes=("1/2", "3/4"))
    last = factory.instrument(violin, size="1/2")
    factory.instrument(violin, size="3/4")  # another size: not to be touched
    parents = [factory.parent() for _ in range(WORKERS)]
    children = [factory.child(parent) for parent in parents]
    clients = []
    for i, parent in enumerate(parents):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{i + 1}"
        login(client, parent)
        clients.append(client)

    def reserve(i):
        return clients[i].post("/reserve", data={"pupil_id": str(children[i].id), "item": f"{violin.id}|1/2",
                                                 "preferred_start_on": today().isoformat()}).status_code

    assert run_together(reserve) == [303] * WORKERS
    with in_app(app) as session:
        reservations = session.scalars(select(Reservation).order_by(Reservation.id)).all()
        assert sorted(r.pupil_id for r in reservations) == sorted(c.id for c in children)  # nothing lost
        held = [r for r in reservations if r.status == "held"]
        assert len(held) == 1 and held[0].instrument_id == last.id
        waiting = [r for r in reservations if r.status == "waiting"]
        assert len(waiting) == WORKERS - 1
        in_order = sorted(waiting, key=lambda r: (r.created_at, r.id))
        assert [waiting_place(session, r, app.config) for r in in_order] == list(range(1, WORKERS))
        assert session.scalar(select(Instrument.status).where(Instrument.id == last.id)) == "reserved"
        assert session.scalar(select(func.count()).where(Instrument.status == "available")) == 1


def _text_of(eml: bytes) -> str:
    from email import message_from_bytes, policy

    return message_from_bytes(eml, policy=policy.default).get_body(("plain",)).get_content()


def test_twenty_parents_reserving_at_once_are_each_told_the_place_the_list_holds(app, factory):
    """The place on the page after reserving and in the email is the child's place in the final list."""
    import re

    from loanservice.mail import OutboxMessage
    from loanservice.reservations.models import Reservation
    from loanservice.timeutil import today

    from .pages import submit_on

    violin = factory.instrument_type("Violin", sizes=("1/2",))
    factory.instrument(violin, size="1/2")  # the last one: one child gets it, the rest wait
    parents = [factory.parent() for _ in range(WORKERS)]
    children = [factory.child(parent) for parent in parents]
    clients, pages = [], []
    for i, parent in enumerate(parents):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{i + 1}"
        login(client, parent)
        clients.append(client)
        pages.append(client.get("/reserve"))

    def reserve(i):
        response = submit_on(clients[i], pages[i], "/reserve",
                             {"pupil_id": str(children[i].id), "item": f"{violin.id}|1/2",
                              "preferred_start_on": today().isoformat()}, follow_redirects=True)
        told = re.search(r"on the waiting list for a Violin 1/2: number (\d+)\.", response.get_data(as_text=True))
        return int(told.group(1)) if told else None

    told_on_page = run_together(reserve)
    with in_app(app) as session:
        waiting = session.scalars(select(Reservation).where(Reservation.status == "waiting")
                                  .order_by(Reservation.created_at, Reservation.id)).all()
        final_place = {r.pupil_id: n for n, r in enumerate(waiting, start=1)}
        mails = session.scalars(select(OutboxMessage).where(OutboxMessage.subject.contains("on the waiting list")))
        told_by_email = {m.recipients: int(re.search(r"number (\d+)\.", _text_of(m.message)).group(1)) for m in mails}
    page_place = {children[i].id: told_on_page[i] for i in range(WORKERS) if told_on_page[i] is not None}
    email_place = {children[i].id: told_by_email.get(parents[i].email) for i in range(WORKERS)
                   if parents[i].email in told_by_email}
    assert sorted(final_place.values()) == list(range(1, WORKERS))
    assert page_place == final_place
    assert email_place == final_place


# ---------------------------------------------------------------- loans awaiting a signed agreement


def _pending_loan(app, factory, *, signed: bool):
    """A loan held for a family until its agreement is signed (signed at the desk if ``signed``)."""
    from datetime import date

    from loanservice.borrowers.models import Family
    from loanservice.documents.services import latest_agreement, record_desk_signature, save_hire_conditions
    from loanservice.loans.lending import check_out

    instrument, family = factory.instrument(), factory.family()
    with in_app(app) as session:
        save_hire_conditions(session, None, "Look after the instrument.")
        loan = check_out(session, None, session.get(Instrument, instrument.id), session.get(Family, family.id),
                         {**app.config, "REQUIRE_SIGNED_AGREEMENT": True}, due_on=date.fromisoformat(DUE))
        if signed:
            record_desk_signature(session, None, latest_agreement(session, loan), signer_name="Jo Carer")
        session.commit()
        return loan.id, instrument


def test_twenty_check_outs_at_once_with_agreements_required_hold_the_instrument_once(app, factory):
    from loanservice.documents.models import Agreement
    from loanservice.documents.services import save_hire_conditions
    from loanservice.loans.models import Loan

    app.config["REQUIRE_SIGNED_AGREEMENT"] = True
    with in_app(app) as session:
        save_hire_conditions(session, None, "Look after the instrument.")
        session.commit()
    instrument = factory.instrument()
    # Half wait for an agreement (pupils), half would be lent at once (schools): one loan, whoever wins.
    borrowers = [f"pupil-{factory.pupil().id}" if i % 2 else f"school-{factory.school().id}" for i in range(WORKERS)]
    clients = signed_in_clients(app, factory)

    def check_out(i):
        response = clients[i].post("/loans/new", data={
            "tag": instrument.asset_tag, "borrower": borrowers[i], "started_on": today().isoformat(),
            "due_on": DUE, "condition_grade": "2"})
        return response.status_code, response.get_data(as_text=True)

    results = run_together(check_out)
    assert sorted(status for status, _ in results) == [303] + [409] * (WORKERS - 1)
    with in_app(app) as session:
        loan = session.scalars(select(Loan)).one()
        instrument_status = session.scalar(select(Instrument.status).where(Instrument.id == instrument.id))
        assert (loan.status, instrument_status) in (("pending", "awaiting_signing"), ("open", "on_loan"))
        assert session.scalar(select(func.count()).select_from(Agreement)) == (1 if loan.is_pending else 0)
    # Each loser waited for the winner's row lock and read what it left: "held for" someone when the
    # winner waits for an agreement, "already on loan" when it was lent at once.
    refusal = "is held for" if loan.is_pending else "is already on loan."
    assert [refusal in page for status, page in results if status == 409] == [True] * (WORKERS - 1)


def test_a_row_lock_reads_what_the_transaction_it_waited_for_left(app, factory):
    """The check after a lock sees the winner's change, not the row as it was read before the wait."""
    from loanservice.inventory.models import InstrumentStatus
    from loanservice.locks import lock

    instrument = factory.instrument()
    locked_first, waiting = threading.Event(), threading.Event()

    def winner():
        with in_app(app) as session:
            row = session.get(Instrument, instrument.id)
            lock(session, row)
            locked_first.set()
            waiting.wait(10)
            time.sleep(0.3)  # the other is blocked on the lock by now
            row.status = InstrumentStatus.IN_REPAIR
            session.commit()

    thread = threading.Thread(target=winner)
    thread.start()
    with in_app(app) as session:
        row = session.get(Instrument, instrument.id)  # read as available, before the winner commits
        locked_first.wait(10)
        waiting.set()
        lock(session, row)
        seen = row.status
        session.rollback()
    thread.join(10)
    assert seen is InstrumentStatus.IN_REPAIR


def test_a_lock_taken_in_a_savepoint_rolled_back_is_taken_again(app, factory):
    """Rolling back to a savepoint releases the row locks taken in it: the next lock asks again."""
    from loanservice.locks import lock

    instrument = factory.instrument()
    with in_app(app) as session:
        row = session.get(Instrument, instrument.id)
        savepoint = session.begin_nested()
        lock(session, row)
        savepoint.rollback()
        lock(session, row)
        with session.get_bind().connect() as other:  # another connection cannot take the row now
            other.execute(text("SET lock_timeout = '200ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                other.execute(text("SELECT id FROM instrument WHERE id = :id FOR UPDATE"), {"id": instrument.id})
        session.rollback()


def test_the_database_holds_one_loan_per_instrument_for_pending_loans_without_the_row_lock(
        app, factory, monkeypatch):
    """Even callers that forget to lock the instrument cannot hold it twice: the partial unique index."""
    from datetime import date

    from loanservice.borrowers.models import Pupil
    from loanservice.loans import lending
    from loanservice.loans.availability import NotLendable
    from loanservice.loans.lending import open_loan
    from loanservice.loans.models import Loan

    monkeypatch.setattr(lending, "lock", lambda session, obj, **kw: None)  # the caller that forgot the lock

    holders = 10  # each keeps its connection while it waits, so stay within the pool (5 + 10 overflow)
    instrument = factory.instrument()
    pupils = [factory.pupil() for _ in range(holders)]
    all_read = threading.Barrier(holders)

    def hold(i):
        with in_app(app) as session:
            unlocked = session.get(Instrument, instrument.id)  # everyone sees it available...
            pupil = session.get(Pupil, pupils[i].id)
            all_read.wait(30)  # ...before anyone holds it
            try:
                open_loan(session, None, unlocked, pupil, due_on=date(2030, 7, 20), awaiting_agreement=True)
                session.commit()
                return "held"
            except NotLendable as error:
                session.rollback()
                return error.message

    results = run_together(hold, holders)
    assert sorted(results) == [f"{instrument.asset_tag} is already on loan."] * (holders - 1) + ["held"]
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 1


def test_issue_pressed_twenty_times_at_once_issues_once(app, factory):
    from loanservice.audit.models import AuditEvent
    from loanservice.loans.models import Loan

    loan_id, instrument = _pending_loan(app, factory, signed=True)
    clients = signed_in_clients(app, factory)
    results = run_together(lambda i: clients[i].post(f"/loans/{loan_id}/issue"))
    assert sorted(r.status_code for r in results) == [303] + [409] * (WORKERS - 1)
    assert all("was already issued on" in r.get_data(as_text=True) for r in results if r.status_code == 409)
    with in_app(app) as session:
        assert session.get(Loan, loan_id).status == "open"
        assert session.scalar(select(Instrument.status).where(Instrument.id == instrument.id)) == "on_loan"
        assert session.scalar(select(func.count()).where(AuditEvent.action == "loan.issued")) == 1


def test_issue_and_cancel_at_once_one_of_them_happens(app, factory):
    from loanservice.loans.models import Loan

    loan_id, instrument = _pending_loan(app, factory, signed=True)
    clients = signed_in_clients(app, factory)
    results = run_together(lambda i: (clients[i].post(f"/loans/{loan_id}/issue") if i % 2 else
                                      clients[i].post(f"/loans/{loan_id}/cancel", data={})).status_code)
    assert sorted(results) == [303] + [409] * (WORKERS - 1)
    with in_app(app) as session:
        loan = session.get(Loan, loan_id)
        status = session.scalar(select(Instrument.status).where(Instrument.id == instrument.id))
        assert (loan.status, status) in (("open", "on_loan"), ("cancelled", "available"))


def _add_instrument_or_set(app, tag, i, violin_id, member_tags):
    """Even ``i``: add an instrument tagged ``tag``; odd: build a set of one (its own member) tagged ``tag``.
    Returns "instrument" or "set" for the one made, or the error it met."""
    from loanservice.errors import LoanServiceError
    from loanservice.inventory.services import InstrumentDetails, add_instrument
    from loanservice.sets.services import save_set

    with in_app(app) as session:
        try:
            if i % 2 == 0:
                add_instrument(session, None, InstrumentDetails(type_id=violin_id, size="1/2"), asset_tag=tag)
            else:
                save_set(session, None, name=f"Race set {i}", tag=tag, tags=[member_tags[i // 2]])
            session.commit()
            return "set" if i % 2 else "instrument"
        except LoanServiceError as error:
            session.rollback()
            return error


def test_an_instrument_and_a_set_given_one_tag_at_once_one_gets_it_the_others_are_told_why(app, factory):
    from loanservice.inventory.models import AssetTag
    from loanservice.sets.models import ClassroomSet

    holders = 10  # waiting requests keep their connections: stay within the pool (5 + 10 overflow)
    violin = factory.instrument_type("Violin", sizes=("1/2",))
    member_tags = [factory.instrument(violin).asset_tag for _ in range(holders // 2)]
    results = run_together(lambda i: _add_instrument_or_set(app, "RACE-1", i, violin.id, member_tags), holders)
    winners = [r for r in results if isinstance(r, str)]
    assert len(winners) == 1, results
    clear = {"Asset tag RACE-1 is already in use.", "Asset tag RACE-1 is already in use: it is a classroom set's tag.",
             "RACE-1 is an instrument's tag; a set needs its own.", "Another set already has the tag RACE-1."}
    for error in (r for r in results if not isinstance(r, str)):
        assert error.status_code in (409, 422) and (error.message in clear or error.message.endswith(
            " already has the tag RACE-1.")), error.message
    with in_app(app) as session:
        instruments = session.scalar(select(func.count()).where(Instrument.asset_tag == "RACE-1"))
        sets = session.scalar(select(func.count()).where(ClassroomSet.tag == "RACE-1"))
        assert (instruments, sets) == ((1, 0) if winners == ["instrument"] else (0, 1))
        assert session.scalar(select(AssetTag.kind).where(AssetTag.tag == "RACE-1")) == winners[0]


def test_a_set_given_a_tag_an_instrument_is_taking_waits_for_it_and_is_told_why(app, factory):
    """The race itself, step by step: the set's checks pass while the instrument is uncommitted, and its
    claim of the tag in the registry waits for the instrument's transaction, then refuses clearly (409)."""
    from loanservice.inventory.services import InstrumentDetails, add_instrument

    violin = factory.instrument_type("Violin", sizes=("1/2",))
    member_tags = [factory.instrument(violin).asset_tag]
    outcome = []
    with in_app(app) as first:
        add_instrument(first, None, InstrumentDetails(type_id=violin.id, size="1/2"), asset_tag="RACE-2")
        second = threading.Thread(target=lambda: outcome.append(
            _add_instrument_or_set(app, "RACE-2", 1, violin.id, member_tags)))
        second.start()
        waiting = False
        with first.get_bind().connect() as watcher:
            for _ in range(300):  # until the set's request waits on the instrument's claim (30 s at most)
                waiting = bool(watcher.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%asset_tag%'"
                )).scalar())
                watcher.rollback()  # the next look sees the activity afresh
                if waiting or not second.is_alive():
                    break
                time.sleep(0.1)
        first.commit()
        second.join(30)
    assert waiting
    [error] = outcome
    assert (error.status_code, error.message) == (409, "RACE-2 is an instrument's tag; a set needs its own.")


def _invoice_hub(app, factory, families=5):
    from decimal import Decimal

    from loanservice.loans.pricing import Charges

    start = today() - timedelta(days=10)
    term = factory.term("Spring 2027", start, start + timedelta(days=80))
    for _ in range(families):
        factory.loan(factory.instrument(), factory.pupil(), due_on=term.ends_on,
                     charges=Charges(fee_per_term=Decimal("36.00")))
    return term


def test_twenty_invoice_runs_at_once_invoice_each_charge_once_with_gapless_numbers(app, factory):
    from loanservice.loans.models import AcademicTerm
    from loanservice.money import services as money
    from loanservice.money.models import InvoiceLine, LedgerEntry

    term = _invoice_hub(app, factory)

    def run(i):
        with in_app(app) as session:
            done = money.run_invoices(session, None, session.get(AcademicTerm, term.id), app.config)
            session.commit()
            return done.count

    counts = run_together(run)
    assert sorted(counts) == [0] * (WORKERS - 1) + [5]
    with in_app(app) as session:
        numbers = sorted(session.scalars(select(LedgerEntry.number)))
        lines = session.scalar(select(func.count()).select_from(InvoiceLine))
    assert numbers == [f"INV-{n:06d}" for n in range(1, 6)]
    assert lines == 5


def test_twenty_payments_at_once_on_one_account_settle_it_exactly(app, factory):
    from decimal import Decimal

    from loanservice.loans.models import AcademicTerm
    from loanservice.money import services as money
    from loanservice.money.models import Allocation, PayerAccount

    term = _invoice_hub(app, factory, families=1)
    with in_app(app) as session:
        money.run_invoices(session, None, session.get(AcademicTerm, term.id), app.config)
        session.commit()
        account_id = session.scalar(select(PayerAccount.id))

    def pay(i):
        with in_app(app) as session:
            money.record_payment(session, None, session.get(PayerAccount, account_id), "2.00", "cash")
            session.commit()

    run_together(pay)
    with in_app(app) as session:
        account = session.get(PayerAccount, account_id)
        allocated = session.scalar(select(func.sum(Allocation.amount)))
        assert money.balance(session, account) == Decimal("-4.00")
    assert allocated == Decimal("36.00")


# ---------------------------------------------------------------- bank statements confirmed at once


def _bank_previews(app, factory, texts):
    """Staff each open a preview of a statement (``texts[i]``), ready to confirm; two invoiced accounts."""
    import io

    from loanservice.loans.models import AcademicTerm
    from loanservice.money import services as money

    from .pages import submit

    term = _invoice_hub(app, factory, families=2)
    with in_app(app) as session:
        money.run_invoices(session, None, session.get(AcademicTerm, term.id), app.config)
        session.commit()
    clients = signed_in_clients(app, factory, len(texts))
    previews = [submit(client, "/money/bank-import", {"file": (io.BytesIO(text.encode()), f"statement-{i}.csv")},
                       form="file") for i, (client, text) in enumerate(zip(clients, texts, strict=True))]
    assert [preview.status_code for preview in previews] == [200] * len(texts)
    return clients, previews


def _bank_payments(app):
    from loanservice.money.models import BankLine, LedgerEntry

    with in_app(app) as session:
        return (session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "payment")),
                session.scalar(select(func.count()).select_from(BankLine)))


def _confirm_together(clients, previews):
    from .pages import submit_on

    def confirm(i):
        response = submit_on(clients[i], previews[i], "/money/bank-import", form="csv_text")
        return response.status_code, " ".join(response.get_data(as_text=True).split())

    return run_together(confirm, len(clients))


def test_ten_staff_confirming_one_statement_at_once_import_it_once(app, factory):
    day = (today() - timedelta(days=1)).strftime("%d/%m/%Y")
    text = f"date,amount,reference\n{day},10.00,A00001\n{day},7.50,INV-000002\n"
    clients, previews = _bank_previews(app, factory, [text] * 10)
    results = _confirm_together(clients, previews)
    assert sorted(status for status, _ in results) == [303] + [409] * 9
    refused = [page for status, page in results if status == 409]
    # Told whichever way the race went: the file seen as imported, or refused by its unique hash.
    assert all("nothing was imported again." in page for page in refused)
    assert _bank_payments(app) == (2, 2)


def test_two_overlapping_statements_confirmed_at_once_record_each_line_once(app, factory):
    yesterday, before = ((today() - timedelta(days=n)).strftime("%d/%m/%Y") for n in (1, 2))
    shared = f"{yesterday},10.00,A00001 HIRE\n"
    first = f"date,amount,reference\n{before},3.00,A00002\n{shared}"
    second = f"Date,Amount,Reference\n{shared}{yesterday},4.00,A00002\n"
    clients, previews = _bank_previews(app, factory, [first, second])
    results = _confirm_together(clients, previews)
    statuses = sorted(status for status, _ in results)
    # Racing, the second is refused whole by the line's unique fingerprint; a moment later, its check
    # would have left the shared line out as a duplicate and imported the rest.
    assert statuses in ([303, 409], [303, 303])
    assert _bank_payments(app) == ((2, 2) if statuses == [303, 409] else (3, 3))
    with in_app(app) as session:
        from loanservice.money.models import BankLine
        assert session.scalar(select(func.count()).select_from(BankLine)
                              .where(BankLine.reference == "A00001 HIRE")) == 1
    assert all("Some of these statement lines were imported from another statement a moment ago" in page
               for status, page in results if status == 409)
