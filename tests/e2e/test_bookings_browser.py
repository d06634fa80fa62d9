"""A school books a set for next term; staff allocate it, print the run sheet, deliver it, collect it
and scan it back in: in a real browser."""
from datetime import date, timedelta

from playwright.sync_api import expect

from loanservice.bookings.services import school_year_of
from loanservice.timeutil import today

from ..conftest import pdf_text, tags_of
from .conftest import sign_in


def test_a_set_booked_allocated_delivered_collected_and_scanned_back(live_server, factory_for_server, browser):
    factory = factory_for_server
    y = school_year_of(today()) + 1
    factory.term(f"Autumn {y}", date(y, 9, 2), date(y, 12, 17))
    ukuleles = factory.instrument_type("Ukulele", sizes=())
    kit = factory.classroom_set(name="Ukulele set A", tag="SET-UKE-A",
                                instruments=[factory.instrument(ukuleles) for _ in range(3)])
    school = factory.school("Hill Primary", address="1 Hill Road\nLeeds", contact_name="Ms Rao")
    lead = factory.user("school", school=school)
    staff = factory.user("staff")

    # The school's music lead asks for a set.
    school_page = browser.new_context().new_page()
    sign_in(school_page, live_server, lead.email)
    school_page.get_by_role("link", name="Bookings").click()
    school_page.get_by_role("link", name="Book a set").first.click()
    school_page.get_by_label("Instrument").select_option(label="Ukulele")
    school_page.get_by_label("Number of pupils").fill("3")
    school_page.get_by_label("For", exact=True).select_option(index=1)
    school_page.get_by_label("Teacher").fill("Ms Rao")
    school_page.get_by_role("button", name="Ask for the set").click()
    expect(school_page.get_by_text("Asked for, waiting for the store")).to_be_visible()
    booking_url = school_page.url

    # Staff allocate the suggested set, on a delivery day, then print the run sheet.
    page = browser.new_context().new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, live_server, staff.email)
    page.goto(booking_url)
    page.get_by_label("Ukulele set A (3 instruments)").check()
    delivery = today() + timedelta(days=1)
    page.get_by_label("Delivery day").first.fill(delivery.isoformat())
    page.get_by_role("button", name="Allocate the set").click()
    expect(page.get_by_text("Allocated Ukulele set A")).to_be_visible()

    school_page.reload()
    expect(school_page.get_by_text("Accepted: set allocated")).to_be_visible()

    page.goto(f"{live_server.url}/bookings/run-sheet?from={delivery.isoformat()}&span=day")
    expect(page.get_by_role("row", name="Hill Primary")).to_contain_text("1 Hill Road")
    pdf = page.request.get(live_server.url + page.get_by_role("link", name="Print (PDF)").get_attribute("href"))
    assert pdf.headers["content-type"] == "application/pdf"
    assert "Hill Primary" in pdf_text(pdf.body())

    # Delivered: the set loan starts. Collected: the scan check-in opens.
    page.goto(booking_url)
    page.get_by_role("button", name="Mark delivered").click()
    expect(page.get_by_text("is on loan to Hill Primary")).to_be_visible()
    page.get_by_role("button", name="Mark collected").click()
    expect(page.get_by_text("scan its items back in")).to_be_visible()
    page.get_by_label("2 Good").check()
    for tag in tags_of(live_server.app, kit):
        box = page.get_by_label("Scan an item")
        box.fill(tag)
        box.press("Enter")
    expect(page.get_by_role("status").first).to_contain_text("3 of 3 back")

    school_page.reload()
    expect(school_page.locator(".badge")).to_have_text("Collected")
