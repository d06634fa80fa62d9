"""Scanning in a real browser: a handheld scanner typing at the scan station, and a phone camera
(Chromium's fake camera, fed a video of real printed labels) scanning a batch."""
import re
import threading
import time

from PIL import Image
from playwright.sync_api import expect

from loanservice.labels import services as label_services
from loanservice.labels.render import label_url, qr_matrix

from .conftest import CAMERA_TIMEOUT_MS, camera_frame, label_image, sign_in, write_y4m

# A scan must land quickly; the whole camera test stays well inside 30 seconds.
SCAN_TIMEOUT_MS = 10_000


# ---- The scan station, driven as a handheld (keyboard-wedge) scanner drives it ----

def scan(page, text):
    """Type ``text`` as a scanner does, fast and ending with Enter, and wait for the page it leads to.

    Keys go to whatever has focus: if the station's input were not focused, nothing would be
    submitted and this would time out.
    """
    with page.expect_navigation(timeout=SCAN_TIMEOUT_MS):
        page.keyboard.type(text + "\n")


def expect_ready_for_the_next_scan(page):
    code = page.get_by_label("Scan a label, or type an asset tag and press Enter")
    expect(code).to_be_focused()
    expect(code).to_have_value("")


def test_a_handheld_scanner_finds_instruments_says_unknown_tag_and_is_ready_at_once(
        scan_server, factory_for_server, page):
    factory = factory_for_server
    staff = factory.user("staff")
    violin = factory.instrument(factory.instrument_type("Violin", sizes=("3/4",)), size="3/4",
                                location="Store / Shelf B3")
    cello = factory.instrument(factory.instrument_type("Cello", sizes=("4/4",)), size="4/4")
    sign_in(page, scan_server, staff.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Scan", exact=True).click()
    expect(page.get_by_role("heading", name="Scan station")).to_be_visible()
    expect_ready_for_the_next_scan(page)
    result = page.locator("#scan-result")

    # 1. A label's QR code, exactly as the label printer encoded it (upper case, the server's own address).
    payload = label_url(scan_server.app.config["PUBLIC_BASE_URL"], violin.asset_tag)
    assert payload == f"{scan_server.url.upper()}/I/{violin.asset_tag}"
    scan(page, payload)
    found = result.locator(".scan-found")
    expect(found.get_by_role("heading", level=2)).to_have_text(f"{violin.asset_tag} Violin 3/4")
    expect(found).to_contain_text("Store / Shelf B3")
    expect(found.get_by_role("link", name="Record condition")).to_be_visible()
    expect(result.get_by_role("alert")).to_have_count(0)
    expect_ready_for_the_next_scan(page)

    # 2. At once, a bare tag typed in lower case with stray spaces.
    scan(page, f"  {cello.asset_tag.lower()} ")
    expect(found.get_by_role("heading", level=2)).to_have_text(f"{cello.asset_tag} Cello 4/4")
    expect(result).not_to_contain_text(violin.asset_tag)
    expect_ready_for_the_next_scan(page)

    # 3. A tag no instrument has: said clearly, and the station is ready again.
    scan(page, "mix-999999")
    alert = result.get_by_role("alert")
    expect(alert.get_by_role("heading", level=2)).to_have_text("Unknown tag")
    expect(alert).to_contain_text("no instrument has asset tag MIX-999999")
    expect(result.locator(".scan-found")).to_have_count(0)
    expect_ready_for_the_next_scan(page)

    # 4. Someone else's QR code (a web address): not mistaken for a tag.
    scan(page, "https://example.com/x")
    expect(alert.get_by_role("heading", level=2)).to_have_text("Not recognised")
    expect(alert).to_contain_text("not one of this hub's instrument labels")
    expect(alert).to_contain_text("https://example.com/x")
    expect_ready_for_the_next_scan(page)

    # 5. A label from another hub's server, same path shape: still foreign.
    scan(page, f"HTTPS://OTHER-HUB.EXAMPLE/I/{violin.asset_tag}")
    expect(alert.get_by_role("heading", level=2)).to_have_text("Not recognised")
    expect_ready_for_the_next_scan(page)

    # 6. A known tag again after the errors: found, the error gone.
    scan(page, violin.asset_tag)
    expect(found.get_by_role("heading", level=2)).to_have_text(f"{violin.asset_tag} Violin 3/4")
    expect(result.get_by_role("alert")).to_have_count(0)
    expect_ready_for_the_next_scan(page)

    # 7. Set to open the instrument after each scan: the next scan jumps straight to its page.
    page.get_by_label("open the instrument's (or set's) page").check()
    page.get_by_label("Scan a label, or type an asset tag and press Enter").focus()
    scan(page, payload.lower())
    expect(page).to_have_url(f"{scan_server.url}/instruments/{violin.asset_tag}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{violin.asset_tag} Violin 3/4")
    expect(page.get_by_role("link", name="Record condition")).to_be_visible()


def test_a_phone_camera_app_opening_the_label_url_lands_on_the_instrument(
        scan_server, factory_for_server, page, phone):
    factory = factory_for_server
    staff = factory.user("staff")
    violin = factory.instrument(factory.instrument_type("Violin", sizes=("3/4",)), size="3/4",
                                serial_number="SECRET-SERIAL")
    payload = label_url(scan_server.app.config["PUBLIC_BASE_URL"], violin.asset_tag)

    sign_in(page, scan_server, staff.email)
    page.goto(payload)
    expect(page).to_have_url(f"{scan_server.url}/instruments/{violin.asset_tag}")
    expect(page.get_by_role("link", name="Send to repair")).to_be_visible()

    # Anyone else: whose it is and how to return it, nothing more.
    phone.goto(payload)
    expect(phone.get_by_role("heading", level=1)).to_contain_text("This instrument belongs to")
    expect(phone.locator("main")).to_contain_text(violin.asset_tag)
    expect(phone.locator("body")).not_to_contain_text("SECRET-SERIAL")


# ---- Camera scanning: a fake camera showing real printed labels ----

def qr_image(payload, module_px=8):
    """A plain QR code of ``payload`` with a 4-module quiet zone (someone else's sticker)."""
    rows = qr_matrix(payload)
    size = len(rows)
    image = Image.frombytes("L", (size, size), b"".join(row.translate(_TO_PIXELS) for row in rows))
    framed = Image.new("L", (size + 8, size + 8), 255)
    framed.paste(image, (4, 4))
    return framed.resize((framed.width * module_px, framed.height * module_px), Image.NEAREST).convert("RGB")


_TO_PIXELS = bytes([255]) + bytes([0]) * 255  # module 0 is light, non-zero is dark


def test_the_camera_page_recognises_real_labels_from_a_fake_camera_once_each(
        scan_server, factory_for_server, camera_page, tmp_path, monkeypatch):
    factory = factory_for_server
    staff = factory.user("staff")
    violin = factory.instrument(factory.instrument_type("Violin", sizes=("3/4",)), size="3/4")
    cello = factory.instrument(factory.instrument_type("Cello", sizes=("4/4",)), size="4/4")
    foreign = "https://example.com/x"

    # The video: the violin's label, then the cello's, then someone else's QR code; about a second
    # each, looped by Chromium so every code passes the camera again and again.
    frames = []
    for picture, angle in ((label_image(scan_server.app, violin.asset_tag), 3),
                           (label_image(scan_server.app, cello.asset_tag), -4),
                           (qr_image(foreign), 0)):
        frames += [camera_frame(picture, angle)] * 10
    video = write_y4m(tmp_path / "labels.y4m", frames)

    # Count what the server reads in the frames the page sends, to know repeats really happened.
    decoded = []
    lock = threading.Lock()
    real_read = label_services.read_qr_codes

    def counting_read(image_bytes):
        codes = real_read(image_bytes)
        with lock:
            decoded.extend(codes)
        return codes

    monkeypatch.setattr(label_services, "read_qr_codes", counting_read)

    page = camera_page(video)
    sign_in(page, scan_server, staff.email)
    expect(page.get_by_role("heading", name="Instrument store")).to_be_visible()
    page.goto(scan_server.url + "/scan/camera")
    expect(page.get_by_role("status")).to_have_text("The camera is off.")
    page.get_by_role("button", name="Start the camera").click()
    expect(page.get_by_role("button", name="Stop")).to_be_visible()

    scanned = page.locator("#camera-list")
    for instrument, description in ((violin, "Violin 3/4"), (cello, "Cello 4/4")):
        item = scanned.locator("li.found", has=page.get_by_role("link", name=instrument.asset_tag, exact=True))
        expect(item).to_be_visible(timeout=CAMERA_TIMEOUT_MS)
        expect(item).to_contain_text(description)
        expect(item.get_by_role("link")).to_have_attribute("href", f"/instruments/{instrument.asset_tag}")
    expect(scanned.locator("li.unknown")).to_have_text("That code is not one of this hub's instrument labels.",
                                                       timeout=CAMERA_TIMEOUT_MS)
    expect(page.get_by_role("status")).to_contain_text(re.compile(r"recognised|not one of this hub"))

    # Keep scanning until the server has read every code several more times: still one line each.
    payloads = {label_url(scan_server.app.config["PUBLIC_BASE_URL"], violin.asset_tag),
                label_url(scan_server.app.config["PUBLIC_BASE_URL"], cello.asset_tag), foreign}
    deadline = time.monotonic() + CAMERA_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        with lock:
            if all(decoded.count(code) >= 3 for code in payloads):
                break
        page.wait_for_timeout(200)
    with lock:
        assert set(decoded) == payloads, decoded
        assert all(decoded.count(code) >= 3 for code in payloads), decoded
    expect(page.locator("#camera-count")).to_have_text("3")
    expect(scanned.locator("li")).to_have_count(3)

    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_role("status")).to_have_text("The camera is off.")
    expect(page.get_by_role("button", name="Start the camera")).to_be_visible()


def test_the_camera_page_offers_only_start_until_the_camera_is_on(live_server, factory_for_server, page):
    """Stop and Clear are hidden before starting (a .button's display once overrode ``hidden``)."""
    sign_in(page, live_server, factory_for_server.user("staff").email)
    page.goto(live_server.url + "/scan/camera")
    expect(page.get_by_role("button", name="Start the camera")).to_be_visible()
    expect(page.get_by_role("button", name="Stop")).not_to_be_visible()
    expect(page.get_by_role("button", name="Clear the list")).not_to_be_visible()
