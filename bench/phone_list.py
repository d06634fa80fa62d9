"""Measure: how tall the instrument list is on a phone (375 px wide), one page of 50 instruments.

Builds a SQLite database in a temporary folder through the migrations, seeds the demo hub, serves the
app on a free port, signs in as the demo staff user in Chromium (Playwright) at 375 x 740 and prints
the page's height in CSS pixels: the whole document, and the part above the first instrument.

Usage:  .venv/bin/python bench/phone_list.py [screenshot.png]
(Run with PYTHONPATH pointing at another checkout to measure that one: the figure before a change.)
"""
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from loanservice import create_app  # noqa: E402
from loanservice.config import TestConfig  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGE_SIZE = 50  # the production default


def main() -> None:
    folder = tempfile.mkdtemp()
    url = f"sqlite:///{folder}/phone.db"

    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = url
        PAGE_SIZE = 50

    app = create_app(Config)
    with app.app_context():
        import flask_migrate
        flask_migrate.upgrade()
    result = app.test_cli_runner().invoke(args=["demo", "seed", "--instruments", "120"])
    assert result.exit_code == 0, result.output
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True).new_page()
        page.goto(base + "/login")
        page.get_by_label("Email").fill("staff@demo.hub")
        page.get_by_label("Password").fill("demo-staff-pass")
        page.get_by_role("button", name="Sign in").click()
        page.goto(base + "/instruments")
        rows = page.locator("table.list tbody tr").count()
        height = page.evaluate("document.documentElement.scrollHeight")
        first = page.evaluate("document.querySelector('table.list tbody tr').getBoundingClientRect().top + scrollY")
        if len(sys.argv) > 1:  # a path: a screenshot of the top of the page, to look at
            page.screenshot(path=sys.argv[1], full_page=True, clip={"x": 0, "y": 600, "width": 375, "height": 560})
        print(f"instruments on the page: {rows}")
        print(f"page height at 375 px: {height} px (first instrument at {first:.0f} px; "
              f"{(height - first) / max(rows, 1):.0f} px an instrument)")
        browser.close()
    server.shutdown()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
