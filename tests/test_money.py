"""Money: the invoice run, the append-only ledger, payments, credit notes, refunds and aged debt."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from loanservice.borrowers.models import Family, Pupil
from loanservice.errors import InvalidInput
from loanservice.loans import pricing
from loanservice.loans.models import AcademicTerm, Loan
from loanservice.money import services as money
from loanservice.money.models import InvoiceLine, LedgerEntry, PayerAccount
from loanservice.timeutil import today

from .conftest import in_app

FEE = pricing.Charges(fee_per_term=Decimal("36.00"))


@pytest.fixture
def term(factory):
    start = today() - timedelta(days=20)
    return factory.term("Spring 2027", start, start + timedelta(days=80))


@pytest.fixture
def hub(app, factory, term):
    """A family with two children on loan (one with half-price remission), and a family in care of an agency."""
    family = factory.family(name="Ada Lovelace", email="ada@example.org")
    half = factory.pupil(name="Byron Lovelace", family=family, remission_category="pupil_premium",
                         remission_verified_on=date(2026, 9, 1))
    full = factory.pupil(name="Anne Lovelace", family=family)
    other = factory.family(name="Charles Babbage")
    due = term.ends_on
    loans = [factory.loan(factory.instrument(), full, due_on=due, charges=FEE),
             factory.loan(factory.instrument(), half, due_on=due,
                          charges=pricing.Charges(fee_per_term=Decimal("36.00"), charge_per_term=Decimal("18.00"))),
             factory.loan(factory.instrument(), other, due_on=due, charges=FEE)]
    return {"family": family, "other": other, "loans": loans}


def _run(app, on=None):
    with in_app(app) as session:
        term = session.scalar(select(AcademicTerm).where(AcademicTerm.name == "Spring 2027"))
        run = money.run_invoices(session, None, term, app.config, on=on)
        session.commit()
        return [(invoice.number, invoice.amount, invoice.account.reference) for invoice in run.invoices]


def _account(session, family):
    return money.account_of(session, session.get(Family, family.id))


def test_one_invoice_per_family_for_the_term_numbered_in_order(app, hub):
    assert [number for number, _, _ in _run(app)] == ["INV-000001", "INV-000002"]


def test_a_familys_invoice_has_a_line_per_loan_with_the_remission_named(app, hub):
    _run(app)
    with in_app(app) as session:
        account = _account(session, hub["family"])
        invoice = session.scalar(select(LedgerEntry).where(LedgerEntry.account_id == account.id))
        lines = sorted((line.full_fee, line.remission_category, line.amount) for line in invoice.lines)
    assert lines == [(Decimal("36.00"), "none", Decimal("36.00")),
                     (Decimal("36.00"), "pupil_premium", Decimal("18.00"))]


def test_the_invoice_total_is_the_sum_of_its_lines(app, hub):
    _run(app)
    with in_app(app) as session:
        account = _account(session, hub["family"])
        assert money.balance(session, account) == Decimal("54.00")


def test_running_the_term_again_invoices_nothing_more(app, hub):
    _run(app)
    assert _run(app) == []


def test_a_loan_made_after_the_run_is_invoiced_by_the_next_run_alone(app, factory, hub, term):
    _run(app)
    factory.loan(factory.instrument(), factory.pupil(family=hub["other"]), due_on=term.ends_on, charges=FEE)
    assert [(number, amount) for number, amount, _ in _run(app)] == [("INV-000003", Decimal("36.00"))]


def test_the_database_refuses_a_charge_on_two_invoices(app, hub):
    _run(app)
    with in_app(app) as session:
        line = session.scalars(select(InvoiceLine)).first()
        session.add(InvoiceLine(invoice_id=line.invoice_id, kind="hire", charge_id=line.charge_id, loan_id=line.loan_id,
                                description="again", full_fee=line.full_fee, amount=line.amount))
        with pytest.raises(IntegrityError):
            session.flush()


@pytest.mark.parametrize("statement", ["UPDATE ledger_entry SET amount = 1", "DELETE FROM ledger_entry",
                                       "UPDATE invoice_line SET amount = 0", "DELETE FROM allocation"])
def test_the_ledger_is_append_only(app, hub, statement):
    _run(app)
    with in_app(app) as session:
        account = _account(session, hub["family"])
        money.record_payment(session, None, account, "10.00", "cash")
        session.commit()
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))


def test_a_payment_settles_the_oldest_invoice_first(app, factory, hub, term):
    _run(app, on=today() - timedelta(days=10))
    factory.loan(factory.instrument(), factory.pupil(family=hub["family"]), due_on=term.ends_on, charges=FEE)
    _run(app)
    with in_app(app) as session:
        account = _account(session, hub["family"])
        money.record_payment(session, None, account, "60.00", "bank_transfer", reference="A00001")
        session.commit()
        left = [(invoice.number, amount) for invoice, amount in money.open_debits(session, account)]
    assert left == [("INV-000003", Decimal("30.00"))]


def test_paying_more_than_is_owed_leaves_credit_which_settles_the_next_invoice(app, factory, hub, term):
    _run(app)
    with in_app(app) as session:
        account = _account(session, hub["family"])
        posted = money.record_payment(session, None, account, "100.00", "cheque")
        session.commit()
        assert posted.credit == Decimal("46.00")
    factory.loan(factory.instrument(), factory.pupil(family=hub["family"]), due_on=term.ends_on, charges=FEE)
    _run(app)
    with in_app(app) as session:
        account = _account(session, hub["family"])
        assert money.open_debits(session, account) == []
        assert money.balance(session, account) == Decimal("-10.00")


@pytest.mark.parametrize("amount", ["0", "-5", "abc", "100000000"])
def test_a_payment_must_be_a_positive_amount(app, hub, amount):
    _run(app)
    with in_app(app) as session, pytest.raises(InvalidInput):
        money.record_payment(session, None, _account(session, hub["family"]), amount, "cash")


def test_a_credit_note_reduces_the_balance_and_is_numbered(app, hub):
    _run(app)
    with in_app(app) as session:
        account = _account(session, hub["family"])
        invoice = money.open_debits(session, account)[0][0]
        posted = money.credit_invoice(session, None, invoice, "18.00", "Remission backdated")
        session.commit()
        assert posted.entry.number == "CN-000001"
        assert money.balance(session, account) == Decimal("36.00")


def test_a_credit_note_larger_than_its_invoice_is_refused(app, hub):
    _run(app)
    with in_app(app) as session:
        invoice = money.open_debits(session, _account(session, hub["family"]))[0][0]
        with pytest.raises(InvalidInput, match="cannot be larger"):
            money.credit_invoice(session, None, invoice, "54.01", "Too much")


def test_a_refund_is_limited_to_the_credit_held(app, hub):
    _run(app)
    with in_app(app) as session:
        account = _account(session, hub["family"])
        money.record_payment(session, None, account, "60.00", "cash")
        with pytest.raises(InvalidInput, match="£6.00 in credit"):
            money.refund(session, None, account, "6.01", "bank_transfer", "Overpaid")


def test_a_refund_of_the_credit_brings_the_balance_to_nothing(app, hub):
    _run(app)
    with in_app(app) as session:
        account = _account(session, hub["family"])
        money.record_payment(session, None, account, "60.00", "cash")
        money.refund(session, None, account, "6.00", "bank_transfer", "Overpaid")
        session.commit()
        assert money.balance(session, account) == Decimal("0.00")


def test_aged_debt_bands_invoices_by_age(app, factory, hub, term):
    on = today()
    _run(app, on=on - timedelta(days=65))
    factory.loan(factory.instrument(), factory.pupil(family=hub["family"]), due_on=term.ends_on, charges=FEE)
    _run(app, on=on - timedelta(days=5))
    with in_app(app) as session:
        rows = {row.account.reference: row.bands for row in money.aged_debt(session, on)}
        family = _account(session, hub["family"]).reference
    assert rows[family] == {"current": Decimal("36.00"), "30": Decimal("0.00"), "60": Decimal("54.00"),
                            "90+": Decimal("0.00")}


def test_a_written_off_invoice_leaves_nothing_owed(app, hub):
    _run(app)
    with in_app(app) as session:
        account = _account(session, hub["other"])
        invoice = money.open_debits(session, account)[0][0]
        money.write_off(session, None, invoice, "Family moved abroad")
        session.commit()
        assert money.balance(session, account) == Decimal("0.00")


def test_a_pupil_with_no_family_is_named_and_not_invoiced(app, factory, term):
    orphan = factory.pupil(name="Lone Pupil")
    with in_app(app) as session:
        session.get(Pupil, orphan.id).family_id = None
        session.commit()
    factory.loan(factory.instrument(), orphan, due_on=term.ends_on, charges=FEE)
    with in_app(app) as session:
        run = money.run_invoices(session, None, session.get(AcademicTerm, term.id), app.config)
    assert run.no_payer[0].endswith("Lone Pupil): no family to invoice")


def test_the_debt_block_names_what_is_owed(app, hub):
    _run(app, on=today() - timedelta(days=50))  # due 30 days later: 20 days late
    app.config["DEBT_BLOCK_DAYS"] = 10
    with in_app(app) as session:
        reason = money.debt_block(session, session.get(Family, hub["family"].id), app.config)
    assert reason.startswith("Ada Lovelace owes £54.00 on invoices more than 10 days past their due date")


def test_a_term_starting_beyond_the_hubs_reach_is_not_invoiced(app, factory, hub):
    factory.term("Summer 2028", today() + timedelta(days=300), today() + timedelta(days=380))
    result = app.test_cli_runner().invoke(args=["invoices", "run", "--term", "Summer 2028"])
    assert "its invoices can be run from" in result.output


def test_no_debt_block_when_the_hub_sets_none(app, hub):
    _run(app, on=today() - timedelta(days=40))  # 10 days late, and no limit set
    with in_app(app) as session:
        assert money.debt_block(session, session.get(Family, hub["family"].id), app.config) is None


def test_remission_given_is_the_full_fee_less_what_was_charged(app, hub):
    _run(app)
    with in_app(app) as session:
        assert money.remission_given(session) == [("Spring 2027", "pupil_premium", Decimal("18.00"))]


# ---------------------------------------------------------------- the command line


def test_flask_invoices_run_reports_the_invoices_issued(app, hub):
    result = app.test_cli_runner().invoke(args=["invoices", "run", "--term", "Spring 2027"])
    assert "Issued 2 invoices (INV-000001 to INV-000002), £90.00 in all; remission given £18.00." in result.output


def test_a_dry_run_writes_nothing(app, hub):
    app.test_cli_runner().invoke(args=["invoices", "run", "--term", "Spring 2027", "--dry-run"])
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 0


def test_a_dry_run_says_what_it_would_issue(app, hub):
    result = app.test_cli_runner().invoke(args=["invoices", "run", "--term", "Spring 2027", "--dry-run"])
    assert "Dry run, nothing written: would issue 2 invoices" in result.output


def test_a_second_run_says_there_is_nothing_new(app, hub):
    runner = app.test_cli_runner()
    runner.invoke(args=["invoices", "run", "--term", "Spring 2027"])
    assert "Nothing new to invoice for Spring 2027." in runner.invoke(args=["invoices", "run", "--term",
                                                                            "Spring 2027"]).output


def test_a_term_not_in_the_calendar_is_refused_with_the_terms_named(app, hub):
    result = app.test_cli_runner().invoke(args=["invoices", "run", "--term", "Summer 2031"])
    assert result.exit_code == 1
    assert "No term called 'Summer 2031' in the calendar (terms: Spring 2027)" in result.output


def test_each_account_gets_a_reference_people_quote(app, hub):
    _run(app)
    with in_app(app) as session:
        assert sorted(session.scalars(select(PayerAccount.reference))) == ["A00001", "A00002"]


def test_a_lost_instrument_is_invoiced_to_the_hirer_at_replacement_cost(app, hub):
    from loanservice.loans import lending

    with in_app(app) as session:
        loan = session.get(Loan, hub["loans"][2])
        lending.mark_lost(session, None, loan, "Left on a bus", replacement_owed=Decimal("250.00"))
        session.commit()
        account = _account(session, hub["other"])
        assert money.balance(session, account) == Decimal("250.00")
