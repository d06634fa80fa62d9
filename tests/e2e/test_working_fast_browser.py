"""Working fast, in a real browser: results follow the typing, many instruments move at once, a photo
taken at check-in shows in the condition history."""
import io
import re
from datetime import timedelta

from PIL import Image
from playwright.sync_api import expect

from loanservice.timeutil import today

from .conftest import sign_in


def test_instrument_results_follow_the_typing_without_a_reload(live_server, factory_for_server, page):
    staff = factory_for_server.user("staff")
    flute = factory_for_server.instrument(factory_for_server.instrument_type("Flute", family="woodwind", sizes=()),
                                          make="Yamaha")
    violin = factory_for_server.instrument(make="Stentor")
    sign_in(page, live_server, staff.email)
    page.goto(live_server.url + "/instruments")
    expect(page.get_by_role("link", name=violin.asset_tag)).to_be_visible()
    page.evaluate("window.notReloaded = true")

    page.get_by_role("searchbox", name="Search").press_sequentially("yama", delay=30)

    expect(page.get_by_role("link", name=violin.asset_tag)).to_have_count(0)
    expect(page.get_by_role("link", name=flute.asset_tag)).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="match")).to_have_text("1 instrument matches.")
    assert page.evaluate("window.notReloaded === true")
    expect(page).to_have_url(re.compile(r"q=yama"))


def test_several_ticked_instruments_move_in_bulk(live_server, factory_for_server, page):
    staff = factory_for_server.user("staff")
    kind = factory_for_server.instrument_type("Cello", sizes=("4/4",))
    a, b, c = (factory_for_server.instrument(kind, location="Store / A1") for _ in range(3))
    sign_in(page, live_server, staff.email)
    page.goto(live_server.url + "/instruments")

    page.get_by_label(f"Choose {a.asset_tag}").check()
    page.get_by_label(f"Choose {c.asset_tag}").check()
    page.get_by_label("Action").select_option(label="Move to a location")
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Move to a location: 2 instruments")
    page.get_by_label("New location").fill("Summer store")
    page.get_by_role("button", name="Move them (2 instruments)").click()

    expect(page.get_by_text("Moved 2 instruments to Summer store.")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=a.asset_tag)).to_contain_text("Summer store")
    expect(page.get_by_role("row").filter(has_text=b.asset_tag)).to_contain_text("Store / A1")


def test_every_instrument_on_the_page_is_ticked_at_once(live_server, factory_for_server, page):
    staff = factory_for_server.user("staff")
    kind = factory_for_server.instrument_type("Cello", sizes=("4/4",))
    for _ in range(3):
        factory_for_server.instrument(kind)
    sign_in(page, live_server, staff.email)
    page.goto(live_server.url + "/instruments")
    page.get_by_label("Tick every instrument on this page").check()
    expect(page.locator("input[name=tag]:checked")).to_have_count(3)


def test_a_photo_taken_at_check_in_shows_in_the_condition_history(live_server, factory_for_server, page, tmp_path):
    staff = factory_for_server.user("staff")
    violin = factory_for_server.instrument()
    loan_id = factory_for_server.loan(violin, factory_for_server.pupil(), due_on=today() + timedelta(days=60))
    photo = tmp_path / "scratch.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (2400, 1800), (150, 90, 40)).save(buffer, "JPEG")
    photo.write_bytes(buffer.getvalue())
    sign_in(page, live_server, staff.email)
    page.goto(f"{live_server.url}/loans/{loan_id}/check-in")

    page.get_by_label("3 Fair").check()
    page.get_by_label("Note").fill("Scratch on the back")
    page.get_by_label("Photos (optional)").set_input_files(str(photo))
    page.get_by_role("button", name="Check in").click()
    expect(page.get_by_text("This page is the return receipt")).to_be_visible()

    page.goto(f"{live_server.url}/instruments/{violin.asset_tag}")
    history = page.get_by_role("region", name="Condition history")
    image = history.get_by_role("img", name=re.compile("At check-in photo 1"))
    expect(image).to_be_visible()
    assert image.evaluate("img => img.naturalWidth") == 1600
