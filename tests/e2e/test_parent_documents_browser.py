"""A parent's documents in a real browser: past loans and their receipts, signing the agreement on a phone."""
from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from loanservice.documents import services as documents
from loanservice.inventory.tags import resolve_instrument
from loanservice.loans import lending
from loanservice.timeutil import today

from ..conftest import in_app
from .conftest import assert_accessible, sign_in


def lend_and_return(app, child, tag: str, *, returned: bool):
    from loanservice.borrowers.models import Pupil

    with in_app(app) as session:
        loan = lending.check_out(session, None, resolve_instrument(session, tag), session.get(Pupil, child.id),
                                 app.config)
        session.flush()
        if returned:
            lending.check_in(session, None, loan, grade=2, returned_on=today())
        session.commit()
        return loan.id


def test_a_parent_sees_past_loans_and_opens_a_return_receipt(live_server, factory_for_server, page):
    factory = factory_for_server
    factory.term("This term", today() - timedelta(days=20), today() + timedelta(days=70))
    parent = factory.parent(email="robin@example.org", name="Robin Parent")
    child = factory.child(parent, "Alex")
    factory.instrument(asset_tag="VLN-OLD")
    factory.instrument(asset_tag="VLN-NEW")
    old_id = lend_and_return(live_server.app, child, "VLN-OLD", returned=True)
    lend_and_return(live_server.app, child, "VLN-NEW", returned=False)

    sign_in(page, live_server, "robin@example.org")
    assert_accessible(page)
    returned = page.get_by_role("table").filter(has_text="VLN-OLD")
    expect(returned).to_contain_text(f"Returned {today():%-d %b %Y}")
    expect(page.get_by_role("table").filter(has_text="VLN-NEW")).not_to_contain_text("Return receipt")
    receipt = returned.get_by_role("link", name="Return receipt (PDF)")
    with page.expect_response(lambda r: r.url.endswith(f"/loans/{old_id}/receipt.pdf")) as answer:
        receipt.click()
    response = answer.value
    assert response.status == 200
    assert response.header_value("content-type") == "application/pdf"
    # The browser shows it in its PDF viewer; the file itself, fetched with the parent's session:
    assert page.context.request.get(response.url).body().startswith(b"%PDF")


def test_on_a_phone_the_consent_label_reads_as_one_sentence_beside_its_box(live_server, factory_for_server, phone):
    factory = factory_for_server
    factory.term("This term", today() - timedelta(days=20), today() + timedelta(days=70))
    with in_app(live_server.app) as session:
        documents.save_hire_conditions(session, None, "Look after the instrument.")
        session.commit()
    parent = factory.parent(email="robin@example.org", name="Robin Parent")
    child = factory.child(parent, "Alex")
    factory.instrument(asset_tag="VLN-1")
    loan_id = lend_and_return(live_server.app, child, "VLN-1", returned=False)

    sign_in(phone, live_server, "robin@example.org")
    phone.goto(f"{live_server.url}/loans/{loan_id}/agreement")
    assert_accessible(phone)
    label = phone.locator("label.check").filter(has_text="I have read the")
    # One block of text beside the box, wrapping across the screen's width: the link starts on the
    # same line as "I have read the", and the sentence takes a few lines, not three narrow columns.
    lines = label.evaluate("""label => {
        const range = document.createRange(); range.selectNodeContents(label);
        const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        return tops.size; }""")
    line_height = label.evaluate("l => parseFloat(getComputedStyle(l).lineHeight) || 24")
    height = label.bounding_box()["height"]
    assert height <= 4 * line_height, f"{height}px tall for {lines} line boxes"
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    phone.get_by_label("Your full name").fill("Robin Parent")
    label.click()
    phone.get_by_role("button", name="Sign the agreement").click()
    expect(phone.get_by_text("the agreement is signed")).to_be_visible()
    with in_app(live_server.app) as session:
        from loanservice.documents.models import Agreement

        assert session.scalar(select(Agreement.signed_name)) == "Robin Parent"


def test_staff_verify_a_claimed_remission_while_lending_and_the_loan_takes_it(live_server, factory_for_server, page):
    from decimal import Decimal

    from loanservice.borrowers.models import RemissionClaim
    from loanservice.loans.models import FeeBand, RemissionRule

    factory = factory_for_server
    factory.term("This term", today() - timedelta(days=20), today() + timedelta(days=70))
    with in_app(live_server.app) as session:
        session.add(FeeBand(band="A", fee_per_term=Decimal("30.00")))
        session.add(RemissionRule(category="free_school_meals", kind="free"))
        session.commit()
    parent = factory.parent(email="robin@example.org", name="Robin Parent")
    child = factory.child(parent, "Alex")
    with in_app(live_server.app) as session:
        session.add(RemissionClaim(pupil_id=child.id, category="free_school_meals"))
        session.commit()
    factory.instrument(factory.instrument_type("Cello", hire_band="A"), asset_tag="VC-1")
    factory.user("staff", email="sam@hub.example")

    sign_in(page, live_server, "sam@hub.example")
    page.goto(f"{live_server.url}/loans/new?tag=VC-1&borrower=pupil-{child.id}")
    assert_accessible(page)
    expect(page.locator("#lending-cost")).to_contain_text("£0.00 if the claim is verified")
    page.get_by_label("Verified today: the loan takes the remission").check()
    page.get_by_role("button", name="Lend", exact=True).click()
    expect(page.get_by_text("VC-1 lent to Alex")).to_be_visible()
    details = page.locator("dl.details")
    expect(details).to_contain_text("Free school meals")
    expect(details).to_contain_text("£0.00")
