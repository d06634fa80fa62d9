"""The desk's return pages: what to check at a check-in, and the next size to pick at an exchange."""
from datetime import timedelta

from sqlalchemy import select

from loanservice.loans.models import Loan
from loanservice.timeutil import today

from .conftest import in_app
from .pages import submit


def lend(factory, instrument, borrower, **kw):
    return factory.loan(instrument, borrower, due_on=today() + timedelta(days=60), **kw)


def test_the_check_in_page_shows_the_condition_at_issue_and_the_accessories_to_check(app, factory, staff_client):
    violin = factory.instrument(accessories="case, bow, shoulder rest")
    loan_id = lend(factory, violin, factory.pupil(), condition_grade=2)
    page = staff_client.get(f"/loans/{loan_id}/check-in").get_data(as_text=True)
    issued = page.split('id="issued-h"')[1].split("</section>")[0]
    assert "Condition at issue" in issued and "2 (Good)" in issued
    assert "<li>case</li>" in issued and "<li>bow</li>" in issued and "<li>shoulder rest</li>" in issued
    back = submit(staff_client, f"/loans/{loan_id}/check-in", {"grade": "2", "note": "Bow missing"})
    assert back.status_code == 303


def test_the_exchange_page_lists_the_free_instruments_of_the_next_size_to_pick(app, factory, staff_client):
    violin = factory.instrument_type("Violin", sizes=("1/4", "1/2", "3/4"))
    small = factory.instrument(violin, size="1/4")
    free = factory.instrument(violin, size="1/2", asset_tag="VN-HALF-1")
    factory.instrument(violin, size="3/4", asset_tag="VN-34-1")  # not the next size
    lend(factory, factory.instrument(violin, size="1/2", asset_tag="VN-HALF-OUT"), factory.pupil())  # on loan
    factory.classroom_set(instruments=[factory.instrument(violin, size="1/2", asset_tag="VN-HALF-SET")])
    loan_id = lend(factory, small, factory.pupil())
    page = staff_client.get(f"/loans/{loan_id}/exchange").get_data(as_text=True)
    assert 'value="VN-HALF-1"' in page
    assert "VN-34-1" not in page and "VN-HALF-OUT" not in page and "VN-HALF-SET" not in page
    exchanged = submit(staff_client, f"/loans/{loan_id}/exchange", {"pick": "VN-HALF-1", "grade": "2"})
    assert exchanged.status_code == 303
    with in_app(app) as session:
        new = session.scalar(select(Loan).where(Loan.exchanged_from_id == loan_id))
        assert new.instrument.asset_tag == free.asset_tag


def test_an_exchange_with_nothing_scanned_or_picked_says_so(app, factory, staff_client):
    violin = factory.instrument_type("Viola", sizes=("13", "14"))
    loan_id = lend(factory, factory.instrument(violin, size="13"), factory.pupil())
    page = staff_client.get(f"/loans/{loan_id}/exchange").get_data(as_text=True)
    assert "None free now: scan a viola 14 when one is back." in page
    refused = submit(staff_client, f"/loans/{loan_id}/exchange", {"grade": "2"})
    assert refused.status_code == 422
    assert "Scan or type the tag of the next-size instrument, or pick one." in refused.get_data(as_text=True)
