"""Browser tests: the real app on a real port, driven by Debian's Chromium via Playwright."""
import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from loanservice import create_app

from ..conftest import config_for, in_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def live_server(database_url):
    app = create_app(config_for(database_url, WTF_CSRF_ENABLED=True))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.app = app
    server.url = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("LOANSERVICE_REQUIRE_BROWSER"):
            pytest.fail(f"Chromium not found at {CHROMIUM}; install Debian's chromium package")
        pytest.skip("Chromium is not installed (sudo apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def sign_in(page, server, email, password="correct-horse-battery"):
    """Sign in through the sign-in page of ``server`` (a live server), as a person would."""
    page.goto(server.url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def assert_accessible(page):
    problems = serious_violations(page)
    assert not problems, f"{page.url}: " + "\n".join(problems)


PHONE = {"viewport": {"width": 375, "height": 740}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def phone(browser):
    context = browser.new_context(**PHONE)
    yield context.new_page()
    context.close()


@pytest.fixture
def factory_for_server(live_server):
    from ..conftest import Factory

    return Factory(live_server.app)


# ---- Scanning (issue 3) ----

# A scan by the camera must land within this; the whole camera test stays well inside 30 seconds.
CAMERA_TIMEOUT_MS = 15_000
VIDEO_SIZE = (640, 480)  # even width and height, as 4:2:0 needs

FAKE_CAMERA_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture
def scan_server(live_server):
    """The live server, with labels whose QR codes point at it (PUBLIC_BASE_URL is its own address)."""
    live_server.app.config["PUBLIC_BASE_URL"] = live_server.url
    return live_server


@pytest.fixture
def camera_page(browser):
    """``camera_page(video)``: a page in a separate Chromium whose camera shows ``video`` (a .y4m), on a loop.

    Launched through the session's Playwright (a second sync_playwright cannot run in the same
    thread), so it is skipped, or fails under LOANSERVICE_REQUIRE_BROWSER, just like ``browser``.
    """
    launched = []
    errors = []

    def open_page(video, **context_options):
        """``context_options``: the browser context's, e.g. a phone's viewport (see ``PHONE``)."""
        fake_camera = browser.browser_type.launch(
            executable_path=CHROMIUM, args=[*FAKE_CAMERA_ARGS, f"--use-file-for-fake-video-capture={video}"])
        launched.append(fake_camera)
        context = fake_camera.new_context(permissions=["camera"], **context_options)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield open_page
    for fake_camera in launched:
        fake_camera.close()
    assert not errors, f"JavaScript errors: {errors}"


def label_image(app, tag, width=540):
    """The instrument's label as the renderer prints it (on the 62 mm tape), rasterised to ``width`` px."""
    import pypdfium2 as pdfium

    from loanservice.inventory.models import Instrument
    from loanservice.labels.render import LabelRenderer
    from loanservice.labels.services import instrument_label
    from loanservice.labels.stocks import get_stock

    with in_app(app) as session:
        instrument = session.query(Instrument).filter_by(asset_tag=tag).one()
        content = instrument_label(instrument, base_url=app.config["PUBLIC_BASE_URL"],
                                   hub_name=app.config["HUB_NAME"])
    stock = get_stock("QL62")
    pdf = LabelRenderer(stock).render([content])
    document = pdfium.PdfDocument(pdf)
    try:
        page = document[0]
        scale = width / page.get_width()
        image = page.render(scale=scale).to_pil().convert("RGB")
        page.close()
    finally:
        document.close()
    return image


def camera_frame(picture, angle=0.0):
    """A camera's view: a desk-coloured frame with ``picture`` large in the middle, a little askew."""
    from PIL import Image

    frame = Image.new("RGB", VIDEO_SIZE, (186, 168, 140))
    if angle:
        picture = picture.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(186, 168, 140))
    frame.paste(picture, ((VIDEO_SIZE[0] - picture.width) // 2, (VIDEO_SIZE[1] - picture.height) // 2))
    return frame


def write_y4m(path, frames, fps=10):
    """A raw YUV 4:2:0 video Chromium's fake camera plays (and loops)."""
    from PIL import Image

    width, height = frames[0].size
    assert width % 2 == 0 and height % 2 == 0
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            y, cb, cr = frame.convert("YCbCr").split()
            half = (width // 2, height // 2)
            out.write(b"FRAME\n" + y.tobytes() + cb.resize(half, Image.BOX).tobytes()
                      + cr.resize(half, Image.BOX).tobytes())
    return path
