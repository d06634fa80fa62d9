"""A hub moves in through the browser: schools, families, pupils and running loans from the example files,
then a staff member invited by email sets a password from the link and signs in."""
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from loanservice import create_app

from ..conftest import Factory, config_for, in_app, mail_link, send_mail
from .conftest import sign_in


@pytest.fixture
def mail_server_app(database_url, smtp_server):
    app = create_app(config_for(database_url, WTF_CSRF_ENABLED=True, MAIL_SERVER="127.0.0.1",
                                MAIL_PORT=smtp_server.port))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.app = app
    server.url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = server.url
    yield server
    server.shutdown()


def import_through_the_page(page, server, tmp_path: Path, heading: str, kind: str) -> None:
    """From the Moving in page: download the example file, upload it, check it, import it."""
    page.goto(server.url + "/moving-in")
    with page.expect_download() as download:
        page.get_by_role("link", name=f"an example file of {heading}").click()
    path = tmp_path / f"{kind}.csv"
    download.value.save_as(path)
    page.get_by_role("link", name=f"Import {heading}", exact=True).click()
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Check the file").click()
    page.get_by_role("button", name=f"Import 2 {heading}" if kind != "loans" else "Import 4 running loans").click()
    assert "Imported" in page.locator(".flash, [role=status], main").first.inner_text()


def test_an_admin_moves_a_hub_in_and_invites_a_staff_member(mail_server_app, smtp_server, browser, tmp_path):
    server = mail_server_app
    factory = Factory(server.app)
    admin = factory.user("admin", email="manager@hub.example")
    kind = factory.instrument_type("Violin", sizes=("1/2",))
    for _ in range(4):
        factory.instrument(kind)
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    sign_in(page, server, admin.email)
    for heading, name in (("schools", "schools"), ("families", "families"), ("pupils", "pupils"),
                          ("other borrowers", "others"), ("running loans", "loans")):
        import_through_the_page(page, server, tmp_path, heading, name)
    from loanservice.loans.models import Loan

    with in_app(server.app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 4
    page.goto(server.url + "/borrowers?q=Asha")
    assert "Asha Moving" in page.content()

    page.goto(server.url + "/admin/users")
    page.get_by_role("link", name="Invite a user").click()
    page.get_by_label("Email").fill("nia@hub.example")
    page.get_by_label("Name").fill("Nia Store")
    page.get_by_label("Role").select_option("staff")
    page.get_by_role("button", name="Send the invitation").click()
    assert "Invitation sent to nia@hub.example" in page.locator("main").inner_text()
    context.close()

    send_mail(server.app)
    [message] = smtp_server.messages
    link = mail_link(message, "/invitation/")
    newcomer = browser.new_context()
    page = newcomer.new_page()
    page.goto(server.url + link)
    page.get_by_label("New password").fill("cellos-in-the-corridor")
    page.get_by_label("Password again").fill("cellos-in-the-corridor")
    page.get_by_role("button", name="Set my password").click()
    assert "Your password is set" in page.locator("main").inner_text()
    sign_in(page, server, "nia@hub.example", "cellos-in-the-corridor")
    assert "nia@hub.example" in page.locator("header").inner_text()
    newcomer.close()
