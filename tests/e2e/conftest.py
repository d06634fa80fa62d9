"""Browser tests: the real app on a real port, driven by Debian's Chromium via Playwright."""
import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from loanservice import create_app

from ..conftest import config_for

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
