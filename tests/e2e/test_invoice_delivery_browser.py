"""The invoice run from the web on a real worker: staff start it, watch its progress, send the term's invoices;
a parent then sees the invoice on their home page and downloads its PDF."""
import os
import subprocess
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import expect

from loanservice.loans import pricing
from loanservice.timeutil import today

from ..conftest import attachment_text, pdf_text
from ..test_notices_rq import FLASK, REDIS_TEST_URL, _redis_or_skip
from .conftest import assert_accessible, sign_in

ROOT = Path(__file__).parent.parent.parent


def test_staff_run_and_send_the_invoices_and_a_parent_downloads_theirs(live_server, factory_for_server, browser,
                                                                       database_url, smtp_server):
    connection = _redis_or_skip()
    queue = f"loanservice-e2e-{uuid.uuid4().hex[:12]}"
    live_server.app.config.update(REDIS_URL=REDIS_TEST_URL, NOTICES_QUEUE=queue)
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "e2e-worker", "REDIS_URL": REDIS_TEST_URL,
           "NOTICES_QUEUE": queue, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(smtp_server.port),
           "MAIL_TIMEOUT": "5", "PYTHONPATH": str(ROOT)}

    def work():
        done = subprocess.run([str(FLASK), "--app", "wsgi", "worker", "--burst", queue], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr

    factory = factory_for_server
    start = today() - timedelta(days=20)
    factory.term("Spring 2027", start, start + timedelta(days=80))
    parent = factory.parent(email="robin@example.org", name="Robin Parent")
    child = factory.child(parent, "Alex")
    factory.loan(factory.instrument(asset_tag="VLN-001"), child, due_on=start + timedelta(days=80),
                 charges=pricing.Charges(fee_per_term=Decimal("36.00")))
    by_post = factory.family("Mrs Smith", address="4 Elm Road\nExampleton EX2 3CD")
    factory.loan(factory.instrument(asset_tag="VLN-002"), factory.pupil("Sam Smith", family=by_post),
                 due_on=start + timedelta(days=80), charges=pricing.Charges(fee_per_term=Decimal("36.00")))
    staff = factory.user("staff", email="store@example.org")

    try:
        desk = browser.new_context().new_page()
        desk.on("dialog", lambda dialog: dialog.accept())
        sign_in(desk, live_server, staff.email)
        desk.get_by_role("link", name="Money").click()
        desk.get_by_role("link", name="Run invoices for a term").click()
        desk.get_by_label("Term to invoice").select_option(label="Spring 2027")
        desk.get_by_role("button", name="Preview").click()
        desk.get_by_role("button", name="Issue 2 invoices for Spring 2027").click()
        expect(desk.locator("#run-status")).to_contain_text("Waiting for a worker")
        assert_accessible(desk)

        work()

        expect(desk.locator("#run-status")).to_contain_text("Finished: 2 invoices issued (INV-000001 to INV-000002)",
                                                            timeout=15_000)
        desk.get_by_role("link", name="Send the invoices for Spring 2027").click()
        expect(desk.locator("#term-delivery dd").nth(3)).to_have_text("2")  # not sent yet
        assert_accessible(desk)
        desk.get_by_role("button", name="Send 2 invoices").click()
        expect(desk.locator(".flash-success")).to_contain_text(
            "Spring 2027: 1 invoice emailed with the PDF attached, 1 to print.")
        with desk.expect_response(lambda r: r.url.endswith(".pdf")) as answer:
            desk.get_by_role("link", name="Download the invoices to print (PDF)").click()
        printed = pdf_text(desk.context.request.get(answer.value.url).body())
        assert "INV-000002" in printed and "4 Elm Road" in printed and "INV-000001" not in printed
        desk.context.close()

        work()  # the sender's job: the email leaves with its PDF
        [email] = smtp_server.messages
        assert str(email["To"]) == "robin@example.org"
        assert "Invoice INV-000001" in attachment_text(email)

        page = browser.new_context().new_page()
        sign_in(page, live_server, "robin@example.org")
        money = page.get_by_role("region", name="Invoices and payments")
        expect(money).to_contain_text("£36.00 owed on account A00001")
        link = money.get_by_role("link", name="INV-000001 (PDF)")
        with page.expect_response(lambda r: r.url.endswith(".pdf")) as answer:
            link.click()
        response = answer.value
        assert response.status == 200 and response.header_value("content-type") == "application/pdf"
        words = pdf_text(page.context.request.get(response.url).body())
        assert "Invoice INV-000001" in words
        assert "VLN-001 for Alex, Spring 2027" in words
        assert "Total due £36.00" in words
        assert "Account reference A00001" in words
        page.context.close()
    finally:
        from rq import Queue

        Queue(queue, connection=connection).delete(delete_jobs=True)
