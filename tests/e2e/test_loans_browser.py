"""Store staff renew a loan in a real browser: the form as Chromium posts it."""
from datetime import timedelta

from playwright.sync_api import expect

from loanservice.loans.models import Loan
from loanservice.timeutil import today

from ..conftest import in_app
from .conftest import sign_in


def test_staff_renew_a_loan_from_its_page(live_server, factory_for_server, page):
    staff = factory_for_server.user("staff")
    instrument = factory_for_server.instrument()
    loan_id = factory_for_server.loan(instrument, factory_for_server.family("Jo Carer"),
                   due_on=today() + timedelta(days=5))
    new_due = today() + timedelta(days=40)
    sign_in(page, live_server, staff.email)
    page.goto(f"{live_server.url}/loans/{loan_id}")
    page.get_by_role("link", name="Renew").click()
    page.get_by_label("New due date").fill(new_due.isoformat())
    page.get_by_role("button", name="Renew").click()
    expect(page.get_by_text(f"renewed: due back {new_due:%-d %b %Y}.")).to_be_visible()
    with in_app(live_server.app) as session:
        assert session.get(Loan, loan_id).due_on == new_due
