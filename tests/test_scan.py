"""Scanning: the short page a label leads to, the scan station and camera frames."""
import io
import re
from datetime import date, timedelta

import pytest
import zxingcpp
from sqlalchemy import select

from loanservice.inventory.models import Instrument
from loanservice.inventory.tags import ForeignCode, tag_from_code
from loanservice.sets.models import ClassroomSetItem

from .conftest import in_app, login


@pytest.fixture
def violin(factory):
    instrument_type = factory.instrument_type("Violin")
    return factory.instrument(instrument_type, size="3/4", serial_number="SECRET-SERIAL", location="Holmfirth Primary")


@pytest.mark.parametrize("path", ["/i/{tag}", "/I/{tag}", "/i/{lower}", "/i/%20{tag}%20"])
def test_staff_land_on_the_instrument_with_its_quick_actions(staff_client, violin, path):
    response = staff_client.get(path.format(tag=violin.asset_tag, lower=violin.asset_tag.lower()))
    assert response.status_code == 302
    assert response.location.endswith(f"/instruments/{violin.asset_tag}")
    page = staff_client.get(response.location).get_data(as_text=True)
    assert "Record condition" in page and "Send to repair" in page


def test_anyone_else_sees_whose_it_is_and_how_to_return_it_and_nothing_personal(app, client, factory, violin):
    for who in (None, "school"):
        if who:
            login(client, factory.user(who))
        response = client.get(f"/I/{violin.asset_tag}")
        page = response.get_data(as_text=True)
        assert response.status_code == 200
        assert f"This instrument belongs to {app.config['HUB_NAME']}" in page
        assert app.config["HUB_CONTACT"] in page and "return it" in page and violin.asset_tag in page
        for private in ("SECRET-SERIAL", "Holmfirth Primary", "Stentor", "Record condition"):
            assert private not in page


def test_an_unknown_tag_is_a_helpful_404(app, staff_client):
    response = app.test_client().get("/i/NOPE-1")
    assert response.status_code == 404 and "does not match any" in response.get_data(as_text=True)
    response = staff_client.get("/i/nope-1")
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and "Unknown tag NOPE-1" in page and "Search the instruments" in page


@pytest.mark.parametrize("code", [
    "{tag}", " {lower} ", "HTTP://HUB.TEST/I/{tag}", "http://hub.test/i/{lower}", "HTTP:??HUB.TEST?I?{tag}",
])
def test_the_scan_station_takes_a_url_or_a_bare_tag_and_is_ready_for_the_next(staff_client, violin, code):
    response = staff_client.get("/scan", query_string={"code": code.format(tag=violin.asset_tag,
                                                                          lower=violin.asset_tag.lower())})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert violin.asset_tag in page and "Violin 3/4" in page and "Record condition" in page
    assert 'id="code" name="code" type="text" autofocus' in page and 'value="' not in page.split('id="code"')[1][:80]


def test_the_scan_station_can_open_the_instrument_at_once(staff_client, violin):
    response = staff_client.get("/scan", query_string={"code": violin.asset_tag.lower(), "then": "open"})
    assert response.status_code == 303 and response.location.endswith(f"/instruments/{violin.asset_tag}")


@pytest.mark.parametrize("code, status, message", [
    ("MIX-999999", 404, "Unknown tag"),
    ("https://example.com/i/MIX-000001", 422, "not one of this hub"),
    ("WIFI:S:home;T:WPA;P:secret;;", 422, "not one of this hub"),
])
def test_the_scan_station_says_clearly_what_it_did_not_recognise(staff_client, violin, code, status, message):
    response = staff_client.get("/scan", query_string={"code": code})
    page = response.get_data(as_text=True)
    assert response.status_code == status and message in page and "autofocus" in page


def test_scanning_pages_are_for_staff(client, factory):
    assert client.get("/scan").status_code == 302
    login(client, factory.user("school"))
    assert client.get("/scan").status_code == 403
    assert client.post("/scan/frame", data=b"x").status_code == 403


def test_tag_from_code_refuses_a_foreign_host():
    assert tag_from_code("https://hub.example/loans/i/mix-1", "https://hub.example/loans") == "MIX-1"
    with pytest.raises(ForeignCode):
        tag_from_code("https://other.example/i/MIX-1", "https://hub.example")


def test_a_camera_frame_is_decoded_on_the_server(staff_client, violin):
    from PIL import Image

    barcode = zxingcpp.create_barcode(f"HTTP://HUB.TEST/I/{violin.asset_tag}", zxingcpp.BarcodeFormat.QRCode,
                                      ec_level="Q")
    image = barcode.to_image(scale=6)
    symbol = Image.frombytes("L", (image.shape[1], image.shape[0]), memoryview(image).tobytes())
    frame = Image.new("L", (640, 480), 200)
    frame.paste(symbol, (200, 100))
    buffer = io.BytesIO()
    frame.save(buffer, "JPEG", quality=80)
    response = staff_client.post("/scan/frame", data=buffer.getvalue(), content_type="image/jpeg")
    assert response.status_code == 200
    [result] = response.json["results"]
    assert result["found"] and result["tag"] == violin.asset_tag and result["url"].endswith(violin.asset_tag)

    assert staff_client.post("/scan/frame", data=b"not an image", content_type="image/jpeg").status_code == 400
    assert staff_client.post("/scan/frame", data=b"", content_type="image/jpeg").status_code == 400
    blank = io.BytesIO()
    Image.new("L", (64, 64), 255).save(blank, "PNG")
    assert staff_client.post("/scan/frame", data=blank.getvalue()).json == {"results": []}


def test_the_camera_page_loads_its_script_from_this_site(staff_client):
    response = staff_client.get("/scan/camera")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Start the camera" in page
    assert 'src="/static/scan-camera.js"' in page and "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert staff_client.get("/static/scan-camera.js").status_code == 200


def test_a_stale_staff_session_is_still_stopped_at_the_instrument_page(app, client, factory, violin):
    from loanservice.accounts.models import User

    from .conftest import in_app

    staff = factory.user("staff")
    login(client, staff)
    with in_app(app) as session:
        session.get(User, staff.id).role = "parent"
        session.commit()
    response = client.get(f"/i/{violin.asset_tag}")
    assert response.status_code == 302  # routed on the hint kept at sign-in...
    assert client.get(response.location).status_code == 403  # ...but the page checks the real role


def test_parents_scanning_a_label_see_the_public_page(client, factory, violin):
    login(client, factory.user("parent"))
    response = client.get(f"/i/{violin.asset_tag}")
    assert response.status_code == 200
    assert "return" in response.get_data(as_text=True).lower()


def test_the_scan_station_names_a_set_instruments_set_and_offers_no_lending_of_its_own(app, factory, staff_client):
    kit = factory.classroom_set(size=1, name="Djembe set B")
    with in_app(app) as session:
        tag = session.scalar(select(Instrument.asset_tag).join(ClassroomSetItem)
                             .where(ClassroomSetItem.set_id == kit.id))
    page = staff_client.get("/scan", query_string={"code": tag}).get_data(as_text=True)
    assert "Djembe set B</a>: lent with the set." in page and f"/loans/new?tag={tag}" not in page


@pytest.mark.parametrize("path", ["/i/%E2%98%83", "/i/" + "A" * 40])
def test_a_short_page_for_something_that_cannot_be_a_tag_is_a_404_not_an_error(app, path):
    response = app.test_client().get(path)
    assert response.status_code == 404 and "does not match any" in response.get_data(as_text=True)


def test_an_unknown_label_offers_to_add_its_tag_and_a_foreign_code_does_not(staff_client, violin):
    page = staff_client.get("/scan", query_string={"code": "http://hub.test/i/mix-999999"}).get_data(as_text=True)
    assert "<h2>Unknown tag</h2>" in page and "no instrument has asset tag MIX-999999" in page
    assert "/instruments/new?tag=MIX-999999" in page
    page = staff_client.get("/scan", query_string={"code": "https://example.com/i/MIX-999999"}).get_data(as_text=True)
    assert "<h2>Not recognised</h2>" in page and "/instruments/new" not in page


def _buttons(page: str, label: str) -> list[str]:
    """The link texts of the quick actions for ``label``, as a person reads them."""
    nav = page.split(f'aria-label="Actions for {label}"', 1)[1].split("</nav>", 1)[0]
    return [text.strip() for text in re.findall(r">([^<>]+)</a>", nav)]


def test_the_instrument_page_and_the_scan_station_offer_what_the_rules_allow(app, staff_client, factory, violin):

    tag = violin.asset_tag
    assert _buttons(staff_client.get(f"/instruments/{tag}").get_data(as_text=True), tag) == [
        "Lend", "Record condition", "Send to repair", "Mark missing", "Edit details", "Print label", "Write off…"]
    assert _buttons(staff_client.get("/scan", query_string={"code": tag}).get_data(as_text=True), tag) == [
        "Lend", "Open", "Record condition", "Print label"]

    factory.loan(violin, factory.pupil(), due_on=date.today() + timedelta(days=30))
    assert _buttons(staff_client.get(f"/instruments/{tag}").get_data(as_text=True), tag) == [
        "Check in", "Record condition", "Edit details", "Print label"]
    assert _buttons(staff_client.get("/scan", query_string={"code": tag}).get_data(as_text=True), tag) == [
        "Check in", "Open", "Record condition", "Print label"]


def test_a_written_off_instrument_offers_nothing_but_its_page(app, staff_client, violin):
    from loanservice.inventory.services import write_off
    from loanservice.inventory.tags import resolve_instrument

    with in_app(app) as session:
        write_off(session, None, resolve_instrument(session, violin.asset_tag), "Crushed")
        session.commit()
    page = staff_client.get(f"/instruments/{violin.asset_tag}").get_data(as_text=True)
    assert _buttons(page, violin.asset_tag) == [] and "Record a condition check" not in page
    page = staff_client.get("/scan", query_string={"code": violin.asset_tag}).get_data(as_text=True)
    assert _buttons(page, violin.asset_tag) == ["Open"]
