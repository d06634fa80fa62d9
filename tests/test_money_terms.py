"""The hub's billing rules: monthly instalments, deposits, schools' set hire fees, first year free, part
terms and overdue instruments, with fixed dates (Autumn 2026 invoiced on 10 Sep 2026)."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from loanservice.borrowers.models import Family
from loanservice.errors import InvalidInput
from loanservice.loans import lending, pricing
from loanservice.loans.models import AcademicTerm, ChargeStatus, Loan, LoanCharge
from loanservice.money import services as money
from loanservice.money.models import (
    DepositOutcome,
    DepositRelease,
    EntryKind,
    Instalment,
    InvoiceLine,
    LedgerEntry,
    LineKind,
    LoanDeposit,
    PayerAccount,
)
from loanservice.sets.models import ClassroomSet

from .conftest import ON_POSTGRES, in_app, login, pdf_text
from .pages import submit, submit_on

FEE = pricing.Charges(fee_per_term=Decimal("36.00"))
RUN_ON = date(2026, 9, 10)  # the invoices fall due 30 days later, on 10 Oct 2026
START = date(2026, 9, 1)
END = date(2026, 12, 18)


@pytest.fixture
def term(factory):
    return factory.term("Autumn 2026", START, END)


@pytest.fixture
def family(factory):
    return factory.family(name="Ada Lovelace", email="ada@example.org")


def lend(factory, borrower, *, started_on=START, due_on=END, charges=FEE):
    return factory.loan(factory.instrument(), borrower, started_on=started_on, due_on=due_on, charges=charges)


def run(app, name="Autumn 2026", on=RUN_ON):
    with in_app(app) as session:
        term = session.scalar(select(AcademicTerm).where(AcademicTerm.name == name))
        result = money.run_invoices(session, None, term, app.config, on=on)
        session.commit()
        return result.numbers


def invoice_of(session, holder) -> LedgerEntry:
    account = money.account_of(session, session.get(type(holder), holder.id))
    return session.scalars(select(LedgerEntry).where(LedgerEntry.account_id == account.id,
                                                     LedgerEntry.kind == EntryKind.INVOICE)
                           .order_by(LedgerEntry.id)).first()


def account_id(app, holder) -> int:
    with in_app(app) as session:
        account = money.open_account(session, session.get(type(holder), holder.id))
        session.commit()
        return account.id


def pays_by_instalments(app, holder):
    with in_app(app) as session:
        account = money.open_account(session, session.get(type(holder), holder.id))
        money.choose_instalments(session, None, account, app.config, True)
        session.commit()


# ---------------------------------------------------------------- instalments


def test_instalments_sum_to_the_total_and_the_last_takes_the_pennies():
    assert money.instalment_plan(Decimal("25.00"), date(2026, 10, 10), 3) == [
        (date(2026, 10, 10), Decimal("8.33")), (date(2026, 11, 10), Decimal("8.33")),
        (date(2026, 12, 10), Decimal("8.34"))]


def test_a_monthly_instalment_due_on_the_31st_falls_on_a_shorter_months_last_day():
    assert [due for due, _ in money.instalment_plan(Decimal("30.00"), date(2027, 1, 31), 2)] == [
        date(2027, 1, 31), date(2027, 2, 28)]


def test_an_account_paying_by_instalments_gets_its_invoice_with_monthly_due_dates(app, factory, term, family):
    lend(factory, factory.pupil(family=family))
    pays_by_instalments(app, family)
    run(app)
    with in_app(app) as session:
        plan = [(i.due_on, i.amount) for i in invoice_of(session, family).instalments]
    assert plan == [(date(2026, 10, 10), Decimal("12.00")), (date(2026, 11, 10), Decimal("12.00")),
                    (date(2026, 12, 10), Decimal("12.00"))]


def test_an_account_paying_in_one_go_gets_no_instalments(app, factory, term, family):
    lend(factory, factory.pupil(family=family))
    run(app)
    with in_app(app) as session:
        assert invoice_of(session, family).instalments == []


def test_aged_debt_ages_each_instalment_from_its_own_due_date(app, factory, term, family):
    lend(factory, factory.pupil(family=family))
    pays_by_instalments(app, family)
    run(app)
    with in_app(app) as session:
        bands = money.aged_debt(session, date(2026, 11, 20))[0].bands
    assert bands == {"current": Decimal("12.00"), "30": Decimal("12.00"), "60": Decimal("12.00"),
                     "90+": Decimal("0.00")}


def test_an_invoice_in_one_payment_ages_as_a_whole(app, factory, term, family):
    lend(factory, factory.pupil(family=family))
    run(app)
    with in_app(app) as session:
        assert money.aged_debt(session, date(2026, 11, 20))[0].bands["60"] == Decimal("36.00")


def test_the_debt_block_counts_only_instalments_past_their_own_due_date(app, factory, term, family):
    lend(factory, factory.pupil(family=family))
    pays_by_instalments(app, family)
    run(app)
    with in_app(app) as session:
        reason = money.debt_block(session, session.get(Family, family.id), {"DEBT_BLOCK_DAYS": 30},
                                  on=date(2026, 11, 15))
    assert "owes £12.00 on invoices more than 30 days past their due date" in reason


def test_paying_the_late_instalment_lifts_the_debt_block(app, factory, term, family):
    lend(factory, factory.pupil(family=family))
    pays_by_instalments(app, family)
    run(app)
    with in_app(app) as session:
        account = money.account_of(session, session.get(Family, family.id))
        money.record_payment(session, None, account, "12.00", "cash", on=date(2026, 11, 1))
        session.commit()
        assert money.debt_block(session, session.get(Family, family.id), {"DEBT_BLOCK_DAYS": 30},
                                on=date(2026, 11, 15)) is None


def test_an_invoice_paid_in_one_go_is_blocked_whole(app, factory, term, family):
    lend(factory, factory.pupil(family=family))
    run(app)
    with in_app(app) as session:
        reason = money.debt_block(session, session.get(Family, family.id), {"DEBT_BLOCK_DAYS": 30},
                                  on=date(2026, 11, 15))
    assert "owes £36.00" in reason


def test_the_database_refuses_an_instalment_numbered_twice(app, factory, term, family):
    lend(factory, factory.pupil(family=family))
    pays_by_instalments(app, family)
    run(app)
    with in_app(app) as session:
        invoice = invoice_of(session, family)
        session.add(Instalment(invoice_id=invoice.id, number=1, due_on=date(2026, 10, 10), amount=Decimal("1.00")))
        with pytest.raises(IntegrityError):
            session.flush()


def test_a_hub_without_instalments_refuses_the_choice(app, factory, family):
    app.config["INSTALMENTS_ALLOWED"] = False
    with in_app(app) as session:
        account = money.open_account(session, session.get(Family, family.id))
        with pytest.raises(money.InstalmentsRefused, match="does not offer monthly instalments"):
            money.choose_instalments(session, None, account, app.config, True)


@pytest.fixture
def staff(client, factory):
    login(client, factory.user("staff"))
    return client


def test_staff_choose_instalments_for_an_account_on_its_page(app, staff, factory, family):
    url = f"/money/accounts/{account_id(app, family)}/instalments"
    response = submit(staff, url, {"pays_by_instalments": "yes"}, follow_redirects=True)
    assert "pays each term&#39;s invoice by 3 monthly instalments" in response.get_data(as_text=True)


def test_staff_split_an_issued_invoice_and_the_pdf_shows_the_due_dates(app, staff, factory, term, family):
    lend(factory, factory.pupil(family=family))
    run(app)
    with in_app(app) as session:
        invoice_id = invoice_of(session, family).id
    submit(staff, f"/money/invoices/{invoice_id}/instalments", {"confirm": "y"})
    text = pdf_text(staff.get(f"/money/invoices/{invoice_id}.pdf").data)
    assert "Paid by monthly instalments" in text


def test_instalments_on_a_paid_invoice_are_refused_with_a_clear_message(app, staff, factory, term, family):
    lend(factory, factory.pupil(family=family))
    run(app)
    with in_app(app) as session:
        invoice = invoice_of(session, family)
        money.record_payment(session, None, invoice.account, "36.00", "cash", on=RUN_ON)
        session.commit()
        invoice_id = invoice.id
    response = submit(staff, f"/money/invoices/{invoice_id}/instalments", {"confirm": "y"})
    assert response.status_code == 409
    assert "is paid: there is nothing left to pay by instalments" in response.get_data(as_text=True)


def test_a_refused_split_writes_no_instalment(app, staff, factory, term, family):
    lend(factory, factory.pupil(family=family))
    run(app)
    with in_app(app) as session:
        invoice = invoice_of(session, family)
        money.record_payment(session, None, invoice.account, "36.00", "cash", on=RUN_ON)
        session.commit()
        invoice_id = invoice.id
    submit(staff, f"/money/invoices/{invoice_id}/instalments", {"confirm": "y"})
    with in_app(app) as session:
        assert session.scalars(select(Instalment)).all() == []


def test_the_parent_sees_the_instalment_dates_on_their_home_page(app, client, factory, term):
    parent = factory.user("parent", email="grace@example.org")
    family = factory.family(name="Grace Hopper", email="grace@example.org", user_id=parent.id)
    lend(factory, factory.pupil(family=family))
    pays_by_instalments(app, family)
    run(app)
    login(client, parent)
    assert "£12.00 by 10 Nov 2026" in client.get("/").get_data(as_text=True)


def test_the_statement_pdf_lists_the_instalments_still_to_pay(app, staff, factory, term, family):
    lend(factory, factory.pupil(family=family))
    pays_by_instalments(app, family)
    run(app)
    text = pdf_text(staff.get(f"/money/accounts/{account_id(app, family)}/statement.pdf").data)
    assert "Instalments still to pay" in text


# ---------------------------------------------------------------- deposits


@pytest.fixture
def deposits(app):
    app.config["DEPOSIT_AMOUNT"] = "25.00"
    app.config["DEPOSIT_REMISSION_CATEGORIES"] = ["looked_after"]


def lines_of(session, holder) -> list[tuple[str, Decimal]]:
    return [(line.kind.value, line.amount) for line in invoice_of(session, holder).lines]


def test_a_deposit_is_its_own_line_on_the_loans_first_invoice(app, factory, term, family, deposits):
    lend(factory, factory.pupil(family=family))
    run(app)
    with in_app(app) as session:
        assert sorted(lines_of(session, family)) == [("deposit", Decimal("25.00")), ("hire", Decimal("36.00"))]


def test_the_deposit_is_invoiced_once_not_again_next_term(app, factory, term, family, deposits):
    lend(factory, factory.pupil(family=family), due_on=date(2027, 3, 31))
    run(app)
    factory.term("Spring 2027", date(2027, 1, 4), date(2027, 3, 31))
    run(app, "Spring 2027", on=date(2027, 1, 4))
    with in_app(app) as session:
        kinds = [line.kind.value for line in session.scalars(select(LedgerEntry).where(
            LedgerEntry.kind == EntryKind.INVOICE).order_by(LedgerEntry.id)).all()[-1].lines]
    assert kinds == ["hire"]


def test_a_remission_category_the_hub_excuses_pays_no_deposit(app, factory, term, family, deposits):
    pupil = factory.pupil(family=family, remission_category="free_school_meals",
                          remission_verified_on=date(2026, 9, 1))
    lend(factory, pupil, charges=pricing.Charges(fee_per_term=Decimal("36.00"), charge_per_term=Decimal("18.00")))
    run(app)
    with in_app(app) as session:
        assert lines_of(session, family) == [("hire", Decimal("18.00"))]


def test_a_free_loan_still_pays_the_deposit_where_the_hub_says_so(app, factory, term, family, deposits):
    pupil = factory.pupil(family=family, remission_category="looked_after", remission_verified_on=date(2026, 9, 1))
    lend(factory, pupil, charges=pricing.Charges(fee_per_term=Decimal("36.00"), charge_per_term=Decimal("0.00")))
    run(app)
    with in_app(app) as session:
        assert lines_of(session, family) == [("deposit", Decimal("25.00"))]


def test_the_invoice_pdf_shows_the_deposit_as_its_own_line(app, staff, factory, term, family, deposits):
    pupil = factory.pupil(name="Ada Junior", family=family, remission_category="looked_after",
                          remission_verified_on=date(2026, 9, 1))
    lend(factory, pupil, charges=pricing.Charges(fee_per_term=Decimal("36.00"), charge_per_term=Decimal("0.00")))
    run(app)
    with in_app(app) as session:
        invoice_id = invoice_of(session, family).id
    text = pdf_text(staff.get(f"/money/invoices/{invoice_id}.pdf").data)
    assert "for Ada Junior £25.00 None £25.00" in text


def _deposit_back(app, factory, family, *, paid=True):
    """A loan invoiced with its deposit (the invoice paid), then checked in; the deposit's id."""
    loan_id = lend(factory, factory.pupil(family=family))
    run(app)
    with in_app(app) as session:
        invoice = invoice_of(session, family)
        if paid:
            money.record_payment(session, None, invoice.account, "61.00", "cash", on=RUN_ON)
        lending.check_in(session, None, session.get(Loan, loan_id), grade=4, returned_on=date(2026, 11, 2))
        session.commit()
        return session.scalar(select(LoanDeposit.id).where(LoanDeposit.loan_id == loan_id))


def test_a_deposit_refunded_at_return_becomes_credit_on_a_paid_account(app, factory, term, family, deposits):
    deposit_id = _deposit_back(app, factory, family)
    with in_app(app) as session:
        deposit = session.get(LoanDeposit, deposit_id)
        money.refund_deposit(session, None, deposit, on=date(2026, 11, 2))
        session.commit()
        assert money.balance(session, deposit.account) == Decimal("-25.00")


def test_a_deposit_refunded_on_an_unpaid_invoice_takes_it_off_what_is_owed(app, factory, term, family, deposits):
    deposit_id = _deposit_back(app, factory, family, paid=False)
    with in_app(app) as session:
        deposit = session.get(LoanDeposit, deposit_id)
        money.refund_deposit(session, None, deposit, on=date(2026, 11, 2))
        session.commit()
        assert money.balance(session, deposit.account) == Decimal("36.00")


def test_a_deposit_paid_back_by_bank_transfer_leaves_the_account_square(app, factory, term, family, deposits):
    deposit_id = _deposit_back(app, factory, family)
    with in_app(app) as session:
        deposit = session.get(LoanDeposit, deposit_id)
        money.refund_deposit(session, None, deposit, method="bank_transfer", on=date(2026, 11, 2))
        session.commit()
        kinds = [line.entry.kind for line in money.statement(session, deposit.account)]
        assert (kinds[-1], money.balance(session, deposit.account)) == (EntryKind.REFUND, Decimal("0.00"))


def test_refunding_a_deposit_already_refunded_is_refused(app, factory, term, family, deposits):
    deposit_id = _deposit_back(app, factory, family)
    with in_app(app) as session:
        money.refund_deposit(session, None, session.get(LoanDeposit, deposit_id), on=date(2026, 11, 2))
        session.commit()
        with pytest.raises(money.DepositReleased, match="already refunded on 2 Nov 2026"):
            money.refund_deposit(session, None, session.get(LoanDeposit, deposit_id))


def test_refunding_a_deposit_already_kept_is_refused(app, factory, term, family, deposits):
    deposit_id = _deposit_back(app, factory, family)
    with in_app(app) as session:
        money.keep_deposit(session, None, session.get(LoanDeposit, deposit_id), "Scroll cracked",
                           on=date(2026, 11, 2))
        session.commit()
        with pytest.raises(money.DepositReleased, match="already kept"):
            money.refund_deposit(session, None, session.get(LoanDeposit, deposit_id))


def test_the_database_refuses_a_second_release_of_a_deposit(app, factory, term, family, deposits):
    deposit_id = _deposit_back(app, factory, family)
    with in_app(app) as session:
        money.keep_deposit(session, None, session.get(LoanDeposit, deposit_id), "Lost bow", on=date(2026, 11, 2))
        session.commit()
        session.add(DepositRelease(deposit_id=deposit_id, outcome=DepositOutcome.KEPT, reason="again",
                                   released_on=date(2026, 11, 3)))
        with pytest.raises(IntegrityError):
            session.flush()


def test_a_deposit_is_held_while_the_instrument_is_out(app, factory, term, family, deposits):
    lend(factory, factory.pupil(family=family))
    run(app)
    with in_app(app) as session:
        deposit = session.scalars(select(LoanDeposit)).one()
        with pytest.raises(money.DepositReleased, match="still on loan"):
            money.refund_deposit(session, None, deposit)


def test_keeping_a_deposit_needs_a_reason(app, factory, term, family, deposits):
    deposit_id = _deposit_back(app, factory, family)
    with in_app(app) as session:
        with pytest.raises(InvalidInput, match="Say why the deposit is kept"):
            money.keep_deposit(session, None, session.get(LoanDeposit, deposit_id), "  ")


def test_the_account_page_shows_the_deposits_held(app, staff, factory, term, family, deposits):
    lend(factory, factory.pupil(family=family))
    run(app)
    page = staff.get(f"/money/accounts/{account_id(app, family)}").get_data(as_text=True)
    assert "Deposits held: £25.00" in page


def test_staff_refund_a_deposit_from_its_page(app, staff, factory, term, family, deposits):
    deposit_id = _deposit_back(app, factory, family)
    response = submit(staff, f"/money/deposits/{deposit_id}", {"outcome": "refunded"}, follow_redirects=True)
    assert "The account holds £25.00 in credit" in response.get_data(as_text=True)


def test_a_second_refund_from_the_page_is_refused_with_a_clear_message(app, staff, factory, term, family, deposits):
    deposit_id = _deposit_back(app, factory, family)
    page = staff.get(f"/money/deposits/{deposit_id}")
    submit(staff, f"/money/deposits/{deposit_id}", {"outcome": "refunded"})
    response = submit_on(staff, page, f"/money/deposits/{deposit_id}", {"outcome": "refunded"})
    assert (response.status_code, "already refunded" in response.get_data(as_text=True)) == (409, True)


def test_a_refused_second_refund_issues_no_second_credit_note(app, staff, factory, term, family, deposits):
    deposit_id = _deposit_back(app, factory, family)
    page = staff.get(f"/money/deposits/{deposit_id}")
    submit(staff, f"/money/deposits/{deposit_id}", {"outcome": "refunded"})
    submit_on(staff, page, f"/money/deposits/{deposit_id}", {"outcome": "refunded"})
    with in_app(app) as session:
        notes = session.scalars(select(LedgerEntry).where(LedgerEntry.kind == EntryKind.CREDIT_NOTE)).all()
    assert len(notes) == 1


# ---------------------------------------------------------------- schools' set hire


@pytest.fixture
def admin(client, factory):
    login(client, factory.user("admin"))
    return client


def _set_on_loan(app, factory, basis, fee, size=3):
    school = factory.school("Hillside Primary", contact_email="music@hillside.example")
    classroom_set = factory.classroom_set(size=size, name="Ukuleles A")
    with in_app(app) as session:
        money.save_set_fee(session, None, session.get(ClassroomSet, classroom_set.id), basis, fee)
        session.commit()
    factory.check_out_set(classroom_set, school, started_on=START, due_on=END)
    return school


def test_a_school_is_invoiced_per_instrument_in_its_set_on_one_line(app, factory, term):
    school = _set_on_loan(app, factory, "instrument", "10.00")
    run(app)
    with in_app(app) as session:
        lines = [(line.description, line.amount) for line in invoice_of(session, school).lines]
    assert lines == [("Classroom set Ukuleles A (3 instruments at £10.00 each), Autumn 2026", Decimal("30.00"))]


def test_a_school_is_invoiced_a_fee_per_set(app, factory, term):
    school = _set_on_loan(app, factory, "set", "100.00")
    run(app)
    with in_app(app) as session:
        assert invoice_of(session, school).amount == Decimal("100.00")


def test_a_set_is_invoiced_once_a_term_whatever_reruns(app, factory, term):
    _set_on_loan(app, factory, "set", "100.00")
    run(app)
    assert run(app) == []


def test_a_negative_set_fee_is_refused(app, factory):
    classroom_set = factory.classroom_set(size=2)
    with in_app(app) as session:
        with pytest.raises(InvalidInput, match="cannot be negative"):
            money.save_set_fee(session, None, session.get(ClassroomSet, classroom_set.id), "set", "-5")


def test_the_admin_sets_a_fee_on_the_set_fees_page(app, admin, factory):
    classroom_set = factory.classroom_set(size=2, name="Violins B")
    submit(admin, f"/money/set-fees/{classroom_set.id}", {"basis": "instrument", "fee": "12.50"})
    assert "£12.50 per instrument" in admin.get("/money/set-fees").get_data(as_text=True)


def test_a_negative_fee_on_the_page_is_a_clear_422(app, admin, factory):
    classroom_set = factory.classroom_set(size=2)
    response = submit(admin, f"/money/set-fees/{classroom_set.id}", {"basis": "set", "fee": "-5"})
    assert (response.status_code, "A hire fee cannot be negative." in response.get_data(as_text=True)) == (422, True)


def test_staff_who_are_not_admins_cannot_set_fees(app, staff, factory):
    assert staff.get("/money/set-fees").status_code == 403


# ---------------------------------------------------------------- first year free, part terms, overdue


def test_a_pupils_first_year_is_invoiced_at_nothing_saying_so(app, factory, term, family):
    app.config["FIRST_YEAR_FREE"] = True
    lend(factory, factory.pupil(name="New Pupil", family=family))
    veteran = factory.pupil(name="Old Hand", family=family)
    old = lend(factory, veteran, started_on=date(2025, 6, 2), due_on=date(2025, 7, 18))
    with in_app(app) as session:
        lending.check_in(session, None, session.get(Loan, old), grade=4, returned_on=date(2025, 7, 18))
        session.commit()
    lend(factory, veteran)
    run(app)
    with in_app(app) as session:
        lines = sorted((line.amount, line.description.split(" for ")[1]) for line in invoice_of(session, family).lines)
    assert lines == [(Decimal("0.00"), "New Pupil, Autumn 2026: first year free (to 1 Sep 2027)"),
                     (Decimal("36.00"), "Old Hand, Autumn 2026")]


def test_a_first_year_charge_is_waived_not_left_owing(app, factory, term, family):
    app.config["FIRST_YEAR_FREE"] = True
    lend(factory, factory.pupil(family=family))
    run(app)
    with in_app(app) as session:
        assert session.scalars(select(LoanCharge.status)).all() == [ChargeStatus.WAIVED]


def test_an_account_with_only_a_free_first_year_gets_no_invoice(app, factory, term, family):
    app.config["FIRST_YEAR_FREE"] = True
    lend(factory, factory.pupil(family=family))
    assert run(app) == []


def test_part_of_a_term_is_charged_in_full_by_default(app, factory, term, family):
    lend(factory, factory.pupil(family=family), started_on=date(2026, 10, 20))
    run(app, on=date(2026, 10, 21))
    with in_app(app) as session:
        assert invoice_of(session, family).amount == Decimal("36.00")


def test_part_of_a_term_is_charged_by_its_days_when_the_hub_says_so(app, factory, term, family):
    app.config["CHARGE_PART_TERM_IN_FULL"] = False
    lend(factory, factory.pupil(family=family), started_on=date(2026, 10, 20))
    run(app, on=date(2026, 10, 21))
    with in_app(app) as session:
        line = invoice_of(session, family).lines[0]
    # 60 of the term's 109 days: 36.00 x 60 / 109 = 19.816...
    assert (line.amount, line.description.endswith("part of the term, 60 of 109 days")) == (Decimal("19.82"), True)


def _overdue_from_summer(app, factory, family):
    factory.term("Summer 2026", date(2026, 4, 20), date(2026, 7, 20))
    lend(factory, factory.pupil(family=family), started_on=date(2026, 5, 1), due_on=date(2026, 7, 20))


def test_an_overdue_instrument_is_invoiced_again_by_default(app, factory, term, family):
    _overdue_from_summer(app, factory, family)
    assert len(run(app)) == 1


def test_an_overdue_instrument_is_not_invoiced_again_when_the_hub_says_so(app, factory, term, family):
    app.config["KEEP_INVOICING_OVERDUE"] = False
    _overdue_from_summer(app, factory, family)
    assert run(app) == []


def test_a_schools_set_pays_no_deposit(app, staff, factory, term, deposits):
    school = _set_on_loan(app, factory, "set", "100.00")
    run(app)
    with in_app(app) as session:
        account = session.scalar(select(PayerAccount).where(PayerAccount.school_id == school.id))
        assert money.deposits_held(session, account) == Decimal("0.00")


# ---------------------------------------------------------------- the demo hub


@pytest.fixture
def demo(app):
    result = app.test_cli_runner().invoke(args=["demo", "seed", "--instruments", "300"])
    assert result.exit_code == 0, result.output


def test_the_demo_has_a_deposit_refunded(app, demo):
    with in_app(app) as session:
        assert session.scalar(select(DepositRelease.outcome)) == DepositOutcome.REFUNDED


def test_the_demo_has_a_family_paying_by_instalments(app, demo):
    with in_app(app) as session:
        account = session.scalar(select(PayerAccount).where(PayerAccount.pays_by_instalments.is_(True)))
        assert account.family_id is not None


def test_the_demo_has_an_invoice_in_monthly_instalments(app, demo):
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Instalment)) == 3


def test_the_demo_has_a_school_invoiced_for_a_set_per_instrument(app, demo):
    with in_app(app) as session:
        line = session.scalar(select(InvoiceLine).where(InvoiceLine.kind == LineKind.SET_HIRE))
        assert "instruments at £6.00 each" in line.description


def test_after_check_in_the_loan_page_offers_to_refund_or_keep_the_deposit(app, staff, factory, term, family,
                                                                           deposits):
    deposit_id = _deposit_back(app, factory, family)
    with in_app(app) as session:
        loan_id = session.get(LoanDeposit, deposit_id).loan_id
    page = staff.get(f"/loans/{loan_id}").get_data(as_text=True)
    assert f'href="/money/deposits/{deposit_id}">Refund or keep the deposit' in page


def test_a_kept_deposit_shows_its_reason_on_the_loan_page(app, staff, factory, term, family, deposits):
    deposit_id = _deposit_back(app, factory, family)
    submit(staff, f"/money/deposits/{deposit_id}", {"outcome": "kept", "reason": "Neck snapped"})
    with in_app(app) as session:
        loan_id = session.get(LoanDeposit, deposit_id).loan_id
    assert "kept on" in staff.get(f"/loans/{loan_id}").get_data(as_text=True)


def test_keeping_a_deposit_without_a_reason_on_the_page_is_a_clear_422(app, staff, factory, term, family, deposits):
    deposit_id = _deposit_back(app, factory, family)
    response = submit(staff, f"/money/deposits/{deposit_id}", {"outcome": "kept", "reason": ""})
    assert (response.status_code, "Say why the deposit is kept" in response.get_data(as_text=True)) == (422, True)


# ---------------------------------------------------------------- at once, on PostgreSQL


@pytest.mark.skipif(not ON_POSTGRES, reason="concurrency is proved on PostgreSQL, the production database")
def test_ten_staff_refunding_one_deposit_at_once_refund_it_once(app, factory, term, family, deposits):
    import threading

    deposit_id = _deposit_back(app, factory, family)
    barrier = threading.Barrier(10)
    outcomes = [None] * 10

    def refund(i):
        barrier.wait()
        with in_app(app) as session:
            try:
                money.refund_deposit(session, None, session.get(LoanDeposit, deposit_id), on=date(2026, 11, 2))
                session.commit()
                outcomes[i] = "refunded"
            except money.DepositReleased:
                session.rollback()
                outcomes[i] = "refused"

    threads = [threading.Thread(target=refund, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with in_app(app) as session:
        notes = session.scalar(select(func.count()).where(LedgerEntry.kind == EntryKind.CREDIT_NOTE))
    assert (sorted(outcomes), notes) == (["refunded"] + ["refused"] * 9, 1)
