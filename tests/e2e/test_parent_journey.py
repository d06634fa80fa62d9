"""A parent's whole journey in a real browser, the store's side of it, and the parent pages' accessibility."""
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from loanservice.timeutil import today

from ..conftest import mail_link, send_mail
from .conftest import assert_accessible, sign_in


@pytest.fixture
def mail_server(live_server, smtp_server):
    """The live server mailing a real SMTP server on loopback, with links to its own address."""
    live_server.app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port,
                                  PUBLIC_BASE_URL=live_server.url)
    return live_server


def test_a_parent_registers_reserves_and_collects_an_instrument(mail_server, smtp_server, factory_for_server,
                                                                 browser, page):
    factory = factory_for_server
    violin = factory.instrument_type("Violin", sizes=("1/4", "1/2", "3/4"))
    first, second = factory.instrument(violin, size="1/2"), factory.instrument(violin, size="1/2")
    factory.term("This term", today() - timedelta(days=20), today() + timedelta(days=70))
    factory.school("Riverside Primary")
    staff = factory.user("staff", name="Sam Storekeeper")
    server = mail_server

    # Register.
    page.goto(server.url + "/catalogue")
    assert_accessible(page)
    page.get_by_role("link", name="Create an account").first.click()
    assert_accessible(page)
    page.get_by_label("Your name").fill("Robin Parent")
    page.get_by_label("Email").fill("robin@example.org")
    page.get_by_label("Password", exact=True).fill("a-long-password")
    page.get_by_label("Password again").fill("a-long-password")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    # Confirm the address from the mail the SMTP server received from the sender.
    send_mail(server.app)
    [message] = smtp_server.messages
    assert message["To"] == "robin@example.org"
    page.goto(server.url + mail_link(message, "/confirm/"))
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.get_by_text("your email address is confirmed")).to_be_visible()
    sign_in(page, server, "robin@example.org", "a-long-password")
    expect(page.get_by_role("heading", name="Welcome, Robin Parent")).to_be_visible()
    assert_accessible(page)

    # Add a child.
    page.get_by_role("link", name="Add a child").click()
    assert_accessible(page)
    page.get_by_label("Child's name").fill("Alex")
    page.get_by_label("School").select_option(label="Riverside Primary")
    page.get_by_label("Year group").select_option(label="Year 4")
    page.get_by_role("button", name="Add child").click()
    expect(page.get_by_text("Added Alex.")).to_be_visible()

    # Reserve a violin 1/2.
    page.get_by_role("link", name="Reserve an instrument").first.click()
    assert_accessible(page)
    page.get_by_label("Child").select_option(label="Alex")
    page.get_by_label("Instrument and size").select_option(label="Violin 1/2")
    page.get_by_role("button", name="Reserve").click()
    expect(page.get_by_text("A Violin 1/2 is held for Alex.")).to_be_visible()
    alex = page.get_by_role("region", name="Alex")
    expect(alex).to_contain_text("Instrument held, being prepared")
    assert_accessible(page)

    # The store allocates a specific instrument and makes it ready.
    store = browser.new_context().new_page()
    sign_in(store, server, staff.email)
    store.get_by_role("link", name="Reservations").click()
    new = store.get_by_role("region", name=re.compile("New: instruments held"))
    expect(new).to_contain_text("Alex")
    held_tag = first.asset_tag if first.asset_tag in new.inner_text() else second.asset_tag
    other_tag = second.asset_tag if held_tag == first.asset_tag else first.asset_tag
    new.get_by_label("Asset tag").fill(other_tag)
    new.get_by_role("button", name="Allocate").click()
    expect(store.get_by_text(f"{other_tag} is held for Alex.")).to_be_visible()
    store.get_by_role("button", name="Ready to collect: Alex").click()
    expect(store.get_by_text("is ready to collect by")).to_be_visible()

    # The parent sees it is ready, and by when.
    page.reload()
    expect(alex).to_contain_text("Ready to collect")
    expect(alex).to_contain_text("Collect from the store by")

    # The store hands it over: a loan.
    store.get_by_role("button", name="Handed over to Alex").click()
    expect(store.get_by_text(f"{other_tag} is on loan to Alex")).to_be_visible()
    store.context.close()

    page.reload()
    expect(alex).to_contain_text("Collected")
    expect(alex.get_by_role("row").filter(has_text="Violin 1/2")).to_have_count(2)  # the reservation and the loan
    expect(alex).to_contain_text(other_tag)
    expect(alex.get_by_role("link", name=re.compile("Loan agreement"))).to_be_visible()
    assert_accessible(page)
    send_mail(server.app)
    subjects = [m["Subject"] for m in smtp_server.messages]
    assert any("held for Alex" in s for s in subjects) and any("ready to collect" in s for s in subjects)
    assert any("is on loan" in s for s in subjects)


def test_the_parent_pages_work_on_a_phone(live_server, factory_for_server, phone):
    factory = factory_for_server
    violin = factory.instrument_type("Violin", sizes=("1/2",))
    factory.instrument(violin, size="1/2")
    parent = factory.parent(email="phone@example.org")
    factory.child(parent, "Jamie")
    sign_in(phone, live_server, parent.email)
    for path in ("/", "/reserve", "/children/new", "/catalogue"):
        phone.goto(live_server.url + path)
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
        assert_accessible(phone)
    phone.goto(live_server.url + "/reserve")
    phone.get_by_label("Instrument and size").select_option(label="Violin 1/2")
    phone.get_by_role("button", name="Reserve").click()
    expect(phone.get_by_text("A Violin 1/2 is held for Jamie.")).to_be_visible()
    expect(phone.get_by_role("button", name="Cancel reservation of Violin 1/2")).to_be_visible()
    assert_accessible(phone)
