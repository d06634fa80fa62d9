"""A school's music lead checks a classroom set back in, in a real browser."""
import re

from playwright.sync_api import expect

from ..conftest import tags_of
from .conftest import CAMERA_TIMEOUT_MS, camera_frame, label_image, sign_in, write_y4m


def test_a_music_lead_scans_their_set_back_in_item_by_item(live_server, factory_for_server, page):
    school = factory_for_server.school("Riverside Primary")
    kit = factory_for_server.classroom_set(size=3, name="Ukulele set A")
    other = factory_for_server.classroom_set(size=1, name="Ukulele set B")
    set_loan = factory_for_server.check_out_set(kit, school)
    factory_for_server.check_out_set(other, factory_for_server.school("Hillcrest"))
    first, second, third = tags_of(live_server.app, kit)
    foreign = tags_of(live_server.app, other)[0]
    lead = factory_for_server.user("school", school=school)

    sign_in(page, live_server, lead.email)
    page.get_by_role("link", name="Our sets").click()
    expect(page.get_by_role("link", name="Ukulele set B")).to_have_count(0)  # another school's
    page.get_by_role("link", name="With you: check items in").click()
    assert page.url.endswith(f"/set-loans/{set_loan}/check-in")
    expect(page.get_by_role("status").first).to_contain_text("0 of 3 back")

    box = page.get_by_label("Scan an item")
    page.get_by_label("2 Good").check()
    box.fill(first.lower())  # a scanner types, whatever the case
    box.press("Enter")
    expect(page.get_by_role("status").first).to_contain_text("1 of 3 back")
    expect(page.get_by_role("region", name="Still out (2)")).to_be_visible()

    box = page.get_by_label("Scan an item")
    expect(box).to_be_focused()
    box.fill(foreign)
    box.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text(f"{foreign} belongs to Ukulele set B")
    expect(page.get_by_role("status").first).to_contain_text("1 of 3 back")

    for tag in (second, third):
        box = page.get_by_label("Scan an item")
        box.fill(tag)
        box.press("Enter")
    # All back, but a stray instrument was scanned: the page stays, with the refused scan listed.
    expect(page.locator("#scan-queue-status")).to_contain_text("Everything is back.")
    expect(page.get_by_role("alert")).to_contain_text(f"{foreign} belongs to Ukulele set B")
    expect(page.get_by_role("region", name="Still out (0)")).to_be_visible()  # the lists caught up too
    expect(page.get_by_role("region", name="Back", exact=True)).to_contain_text(third)
    page.get_by_role("link", name="Open the finished set").click()
    expect(page.get_by_text(re.compile(r"All \d+ back: checked in by"))).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text("3 of 3 back")


def test_a_set_scanned_in_without_a_hitch_shows_the_finished_set(live_server, factory_for_server, page):
    school = factory_for_server.school("Riverside Primary")
    kit = factory_for_server.classroom_set(size=2, name="Ukulele set E")
    set_loan = factory_for_server.check_out_set(kit, school)
    lead = factory_for_server.user("school", school=school)
    sign_in(page, live_server, lead.email)
    page.goto(f"{live_server.url}/set-loans/{set_loan}/check-in")
    page.get_by_label("2 Good").check()
    for tag in tags_of(live_server.app, kit):
        box = page.get_by_label("Scan an item")
        box.fill(tag)
        box.press("Enter")
    expect(page.get_by_text(re.compile(r"All \d+ back: checked in by"))).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text("2 of 2 back")


def test_a_handheld_scanner_faster_than_the_page_loses_no_scan(live_server, factory_for_server, page):
    """Codes typed back to back, Enter after each, without waiting: every one is checked in, in order."""
    school = factory_for_server.school("Riverside Primary")
    kit = factory_for_server.classroom_set(size=6, name="Violin set C")
    other = factory_for_server.classroom_set(size=1, name="Violin set D")
    set_loan = factory_for_server.check_out_set(kit, school)
    factory_for_server.check_out_set(other, factory_for_server.school("Hillcrest"))
    tags = tags_of(live_server.app, kit)
    foreign = tags_of(live_server.app, other)[0]
    lead = factory_for_server.user("school", school=school)

    sign_in(page, live_server, lead.email)
    page.goto(f"{live_server.url}/set-loans/{set_loan}/check-in")
    scans = []  # each scan's answer: JSON, not the page again
    page.on("response", lambda response: scans.append(response.headers.get("content-type"))
            if response.request.method == "POST" else None)
    page.get_by_label("2 Good").check()
    box = page.get_by_label("Scan an item")
    box.focus()
    # A keyboard-wedge scanner: characters and Enter as fast as it can, one label after another.
    for code in [*tags[:3], foreign, *tags[3:5]]:
        page.keyboard.type(code + "\n", delay=2)
    expect(page.locator("#progress")).to_have_text("5 of 6 back")
    expect(page.locator("progress")).to_have_attribute("value", "5")
    expect(page.get_by_role("alert")).to_contain_text(f"{foreign} belongs to Violin set D")
    # The lists, fetched once the queue is empty: the five scanned are back, one is still out.
    expect(page.get_by_role("region", name="Still out (1)")).to_contain_text(tags[5])
    back = page.get_by_role("region", name="Back", exact=True)
    for tag in tags[:5]:
        expect(back).to_contain_text(tag)
    expect(back).not_to_contain_text(foreign)
    expect(page.locator("#scan-queue-status")).to_contain_text(f"{tags[4]} back in 2 Good: 5 of 6 back.")
    assert scans == ["application/json"] * 6
    expect(box).to_be_focused()
    expect(box).to_have_value("")

    page.keyboard.type(tags[5] + "\n")
    # The stray scan stays listed; the finished set is a link away.
    expect(page.locator("#scan-queue-status")).to_contain_text("Everything is back.")
    expect(page.get_by_role("alert")).to_contain_text(f"{foreign} belongs to Violin set D")
    page.get_by_role("link", name="Open the finished set").click()
    expect(page.get_by_text(re.compile(r"All \d+ back: checked in by"))).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text("6 of 6 back")


def test_a_scan_answered_by_an_error_page_is_reported_and_the_queue_goes_on(live_server, factory_for_server, page):
    """Not JSON back (a proxy's error page, the sign-in page): the scan is listed to do again, the rest go on."""
    school = factory_for_server.school("Riverside Primary")
    kit = factory_for_server.classroom_set(size=3, name="Cello set E")
    set_loan = factory_for_server.check_out_set(kit, school)
    first, second, third = tags_of(live_server.app, kit)
    lead = factory_for_server.user("school", school=school)

    sign_in(page, live_server, lead.email)
    page.goto(f"{live_server.url}/set-loans/{set_loan}/check-in")
    failed = []

    def gateway_down_once(route):
        if route.request.method == "POST" and not failed:
            failed.append(route.request.url)
            route.fulfill(status=502, content_type="text/html", body="<h1>502 Bad Gateway</h1>")
        else:
            route.continue_()

    page.route("**/check-in*", gateway_down_once)
    page.get_by_label("2 Good").check()
    page.get_by_label("Scan an item").focus()
    for code in (first, second):
        page.keyboard.type(code + "\n", delay=2)
    expect(page.get_by_role("alert")).to_contain_text(
        f"{first}: not checked in: the server had a problem (502). Scan it again.")
    expect(page.locator("#progress")).to_have_text("1 of 3 back")
    expect(page.get_by_role("region", name="Back", exact=True)).to_contain_text(second)
    expect(page.get_by_role("region", name="Still out (2)")).to_contain_text(first)


def test_a_scan_from_an_expired_form_is_listed_with_the_reason_and_changes_nothing(live_server, factory_for_server,
                                                                                    page):
    """The form's token no longer matches (the page was open too long): the app's error, in JSON, is listed."""
    school = factory_for_server.school("Riverside Primary")
    kit = factory_for_server.classroom_set(size=2, name="Flute set F")
    set_loan = factory_for_server.check_out_set(kit, school)
    first = tags_of(live_server.app, kit)[0]
    lead = factory_for_server.user("school", school=school)

    sign_in(page, live_server, lead.email)
    page.goto(f"{live_server.url}/set-loans/{set_loan}/check-in")
    page.locator("form[data-scan-queue] input[name=csrf_token]").evaluate("input => { input.value = 'expired'; }")
    page.get_by_label("2 Good").check()
    box = page.get_by_label("Scan an item")
    box.fill(first)
    box.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text(
        f"{first}: not checked in: This form has expired. The page was open too long or came from elsewhere.")
    expect(page.locator("#progress")).to_have_text("0 of 2 back")


def test_a_music_lead_scans_their_sets_own_label_with_a_phone_signs_in_and_checks_items_in(
        scan_server, factory_for_server, phone):
    from loanservice.labels.render import label_url

    school = factory_for_server.school("Riverside Primary")
    kit = factory_for_server.classroom_set(size=2, name="Ukulele set A", tag="SET-UKE-A")
    set_loan = factory_for_server.check_out_set(kit, school)
    first, second = tags_of(scan_server.app, kit)
    lead = factory_for_server.user("school", school=school)

    # The phone's camera app opens the URL in the set's QR code; not signed in yet.
    phone.goto(label_url(scan_server.app.config["PUBLIC_BASE_URL"], "SET-UKE-A"))
    expect(phone.get_by_role("heading", level=1)).to_contain_text("This classroom set belongs to")
    expect(phone.locator("main")).not_to_contain_text("Riverside Primary")
    phone.locator("main").get_by_role("link", name="sign in").click()
    phone.get_by_label("Email").fill(lead.email)
    phone.get_by_label("Password").fill("correct-horse-battery")
    phone.get_by_role("button", name="Sign in").click()

    expect(phone).to_have_url(f"{scan_server.url}/set-loans/{set_loan}/check-in")
    expect(phone.get_by_role("status").first).to_contain_text("0 of 2 back")
    phone.get_by_label("2 Good").check()
    box = phone.get_by_label("Scan an item")
    box.fill(label_url(scan_server.app.config["PUBLIC_BASE_URL"], "SET-UKE-A"))  # the box's label by mistake
    box.press("Enter")
    expect(phone.get_by_role("alert")).to_contain_text("SET-UKE-A is Ukulele set A's own label")
    box = phone.get_by_label("Scan an item")
    box.fill(first)
    box.press("Enter")
    expect(phone.get_by_role("status").first).to_contain_text("1 of 2 back")

    # Opening an item's label later, signed in, goes straight to the set's check-in page, that item ready.
    phone.goto(label_url(scan_server.app.config["PUBLIC_BASE_URL"], second))
    expect(phone).to_have_url(f"{scan_server.url}/set-loans/{set_loan}/check-in?code={second}")
    expect(phone.get_by_label("Scan an item")).to_have_value(second)
    phone.get_by_label("2 Good").check()
    phone.get_by_role("button", name="Check in").click()
    expect(phone.get_by_text(re.compile(r"All \d+ back: checked in by"))).to_be_visible()


def test_each_scan_comes_back_as_it_went_out_and_a_chosen_grade_is_for_one_item_only(
        live_server, factory_for_server, page):
    factory = factory_for_server
    school = factory.school("Riverside Primary")
    kind = factory.instrument_type("Ukulele P", sizes=())
    kit = factory.classroom_set(name="Ukulele set A", instruments=[
        factory.instrument(kind, condition_grade=grade) for grade in (4, 1, 2)])
    set_loan = factory_for_server.check_out_set(kit, school)
    first, second, third = tags_of(live_server.app, kit)
    sign_in(page, live_server, factory.user("school", school=school).email)
    page.goto(f"{live_server.url}/set-loans/{set_loan}/check-in")

    box = page.get_by_label("Scan an item")
    expect(page.get_by_label("As it went out")).to_be_checked()
    box.type(first)  # a handheld scanner: no grade to choose first
    box.press("Enter")
    expect(page.locator("#scan-queue-status")).to_contain_text(f"{first} back in 4 Poor: 1 of 3 back.")
    page.get_by_label("3 Fair").check()  # this one has come back worse
    box.type(second)
    box.press("Enter")
    expect(page.locator("#scan-queue-status")).to_contain_text(f"{second} back in 3 Fair: 2 of 3 back.")
    expect(page.get_by_label("As it went out")).to_be_checked()  # the choice was for that item alone
    expect(page.get_by_role("region", name="Back", exact=True)).to_contain_text("(went out 1 Excellent)")

    # Damaged with no note: asked for the note at once, nothing sent, the box stays ticked.
    page.get_by_label("Damaged: send it to repair").check()
    box.type(third)
    box.press("Enter")
    expect(page.locator("#scan-waiting")).to_contain_text(f"Describe the damage of {third} in the note")
    expect(page.get_by_label("Note")).to_be_focused()
    expect(page.get_by_label("Damaged: send it to repair")).to_be_checked()
    expect(box).to_have_value(third)  # still there, to send once the note is written
    page.get_by_label("Damaged: send it to repair").uncheck()
    box.fill("")

    # A scan that did not get through is listed; scanned again and checked in, it leaves the list,
    # so with nothing else refused the finished set is shown.
    page.route("**/check-in", lambda route: route.abort() if route.request.method == "POST" else route.continue_())
    box.type(third)
    box.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text(f"{third}: not sent (no connection to the server)")
    page.unroute("**/check-in")
    box.type(third)
    box.press("Enter")
    expect(page.get_by_text(re.compile(r"All \d+ back: checked in by"))).to_be_visible()


def test_a_music_lead_checks_a_set_in_with_a_phone_camera(scan_server, factory_for_server, camera_page, tmp_path):
    """The school's lead, with only a phone: the camera reads the items' labels one after another, each
    comes back as it went out, and one chosen damaged waits for its note in view."""
    from .conftest import PHONE

    factory = factory_for_server
    school = factory.school("Riverside Primary")
    kind = factory.instrument_type("Ukulele C", sizes=())
    kit = factory.classroom_set(name="Ukulele set C", instruments=[
        factory.instrument(kind, condition_grade=grade) for grade in (1, 1, 2)])
    set_loan = factory_for_server.check_out_set(kit, school)
    tags = tags_of(scan_server.app, kit)
    lead = factory.user("school", school=school)
    # The camera sees the first two items' labels, a second each, again and again.
    frames = []
    for tag, angle in ((tags[0], 3), (tags[1], -4)):
        frames += [camera_frame(label_image(scan_server.app, tag), angle)] * 10
    phone = camera_page(write_y4m(tmp_path / "set.y4m", frames), **PHONE)

    sign_in(phone, scan_server, lead.email)
    phone.goto(f"{scan_server.url}/set-loans/{set_loan}/check-in")
    expect(phone.get_by_role("button", name="Stop")).not_to_be_visible()
    # The first item the camera reads has come back damaged: chosen before pointing the camera at it.
    phone.get_by_label("4 Poor").check()
    phone.get_by_label("Damaged: send it to repair").check()
    phone.get_by_role("button", name="Scan with the camera").click()
    expect(phone.get_by_role("button", name="Stop")).to_be_visible()
    expect(phone.get_by_role("button", name="Scan with the camera")).not_to_be_visible()

    waiting = phone.locator("#scan-waiting")
    expect(waiting).to_contain_text("Describe the damage of", timeout=CAMERA_TIMEOUT_MS)
    expect(waiting).to_be_in_viewport()  # on the phone's screen, not somewhere below
    damaged = next(tag for tag in tags if tag in waiting.inner_text())
    phone.get_by_label("Note").fill("Bridge came off")
    phone.get_by_role("button", name="Check in").click()
    expect(waiting).not_to_be_visible()

    expect(phone.locator("#progress")).to_have_text("2 of 3 back", timeout=CAMERA_TIMEOUT_MS)
    back = phone.get_by_role("region", name="Back", exact=True)
    expect(back.locator("li", has_text=damaged)).to_contain_text("4 Poor damaged (went out 1 Excellent)")
    other = next(tag for tag in tags[:2] if tag != damaged)
    expect(back.locator("li", has_text=other)).to_contain_text("1 Excellent")  # as it went out
    expect(back.locator("li", has_text=other)).not_to_contain_text("went out")
    expect(phone.get_by_label("As it went out")).to_be_checked()
    phone.get_by_role("button", name="Stop").click()
    expect(phone.locator("#camera-status")).to_have_text("The camera is off.")

    # The third never turned up: reported missing, the set is done and says what happens next.
    phone.on("dialog", lambda dialog: dialog.accept())
    phone.get_by_role("region", name="Still out (1)").get_by_role("button", name="Report missing").click()
    expect(phone.get_by_role("heading", name="1 item did not come back")).to_be_visible()
    expect(phone.locator("#progress")).to_have_text("2 of 3 back, 1 missing")
