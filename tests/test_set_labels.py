"""A classroom set's own QR label: printed from the set's page, and where scanning it (or an item) leads."""
import re

from sqlalchemy import select

from loanservice.audit.models import AuditEvent
from loanservice.inventory.models import Instrument

from .conftest import decode_pdf, in_app, label_pdf_text, login, tags_of


def test_staff_print_a_sets_label_that_scans_to_its_short_page(app, staff_client, factory):
    kit = factory.classroom_set(size=3, name="Ukulele set A", tag="SET-UKE-A")
    page = staff_client.get(f"/sets/{kit.id}").get_data(as_text=True)
    assert f"/labels/set/{kit.id}" in page and "Print the set's label" in page
    form = staff_client.get(f"/labels/set/{kit.id}")
    assert form.status_code == 200
    assert "Also print a label for each instrument in the set" in form.get_data(as_text=True)

    response = staff_client.post(f"/labels/set/{kit.id}", data={"stock": "L7163", "start": "1"})
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert [text for _, text, _ in decode_pdf(response.data)] == ["HTTP://HUB.TEST/I/SET-UKE-A"]
    text = label_pdf_text(response.data)
    assert "SET-UKE-A" in text and "Ukulele set A" in text and "3 instruments" in text
    with in_app(app) as session:
        assert session.scalars(select(AuditEvent.summary).where(AuditEvent.action == "set.labelled")).all() == [
            "Set label printed on L7163"]
        assert session.scalar(select(Instrument.labelled_at).where(Instrument.labelled_at.is_not(None))) is None


def test_the_sets_label_can_come_with_its_instruments_labels(app, staff_client, factory):
    kit = factory.classroom_set(size=3, tag="SET-VLN-B")
    tags = sorted(tags_of(app, kit))
    response = staff_client.post(f"/labels/set/{kit.id}", data={"stock": "L7160", "start": "2", "with_items": "y"})
    assert [text for _, text, _ in decode_pdf(response.data)] == (
        ["HTTP://HUB.TEST/I/SET-VLN-B"] + [f"HTTP://HUB.TEST/I/{tag}" for tag in tags])
    with in_app(app) as session:
        assert session.scalar(select(Instrument.labelled_at).where(Instrument.labelled_at.is_(None))) is None


def test_a_bad_set_label_request_is_explained_and_records_nothing(app, staff_client, factory):
    kit = factory.classroom_set(size=2)
    response = staff_client.post(f"/labels/set/{kit.id}", data={"stock": "L7163", "start": "99"})
    assert response.status_code == 422 and "sheet" in response.get_data(as_text=True)
    assert staff_client.post("/labels/set/9999", data={"stock": "L7163", "start": "1"}).status_code == 404
    school_client = app.test_client()
    login(school_client, factory.user("school", school=factory.school()))
    assert school_client.post(f"/labels/set/{kit.id}", data={"stock": "L7163", "start": "1"}).status_code == 403
    with in_app(app) as session:
        assert session.scalar(select(AuditEvent.id).where(AuditEvent.action == "set.labelled")) is None


def test_scanning_a_sets_label_opens_the_set_for_staff_and_at_the_scan_station(app, staff_client, factory):
    kit = factory.classroom_set(size=2, name="Djembe set C", tag="SET-DJ-C")
    response = staff_client.get("/i/set-dj-c")
    assert response.status_code == 302 and response.location.endswith(f"/sets/{kit.id}")

    factory.check_out_set(kit, factory.school(name="Holme Primary"))
    station = staff_client.get("/scan", query_string={"code": "HTTP://HUB.TEST/I/SET-DJ-C"})
    page = station.get_data(as_text=True)
    assert station.status_code == 200 and "Djembe set C" in page and "out at Holme Primary" in page
    assert "Check items in" in page and "Unknown tag" not in page
    jump = staff_client.get("/scan", query_string={"code": "SET-DJ-C", "then": "open"})
    assert jump.status_code == 303 and jump.location.endswith(f"/sets/{kit.id}")


def test_the_school_holding_a_set_lands_on_its_check_in_page_from_the_set_or_an_item(app, client, factory):
    school, other = factory.school(), factory.school()
    kit = factory.classroom_set(size=2, tag="SET-UKE-Z")
    item = tags_of(app, kit)[0]
    set_loan_id = factory.check_out_set(kit, school)
    login(client, factory.user("school", school=school))
    for path, lands in (("/i/SET-UKE-Z", f"/set-loans/{set_loan_id}/check-in"),
                        (f"/i/{item}", f"/set-loans/{set_loan_id}/check-in?code={item}")):
        response = client.get(path)
        assert response.status_code == 302 and response.location.endswith(lands)
        page = client.get(response.location).get_data(as_text=True)
        assert "0 of 2 back" in page
        scan_field = re.search(r"<input[^>]*data-scan[^>]*>", page).group(0)
        assert (f'value="{item}"' in scan_field) == (path != "/i/SET-UKE-Z")  # the item is ready to check in

    other_client = app.test_client()
    login(other_client, factory.user("school", school=other))
    for path in ("/i/SET-UKE-Z", f"/i/{item}"):
        response = other_client.get(path)
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and "belongs to" in page and "check-in" not in page


def test_anyone_else_scanning_a_sets_label_sees_whose_it_is(app, client, factory):
    kit = factory.classroom_set(size=2, name="Secret set name", tag="SET-PUB-1")
    factory.check_out_set(kit, factory.school(name="Private Primary"))
    response = client.get("/I/SET-PUB-1")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"This classroom set belongs to {app.config['HUB_NAME']}" in page and "SET-PUB-1" in page
    assert app.config["HUB_CONTACT"] in page
    assert "Private Primary" not in page and "Secret set name" not in page


def test_scanning_the_sets_own_label_while_checking_it_in_says_what_to_scan(app, staff_client, factory):
    kit = factory.classroom_set(size=2, name="Ukulele set Q", tag="SET-UKE-Q")
    factory.classroom_set(size=1, name="Ukulele set R", tag="SET-UKE-R")
    set_loan_id = factory.check_out_set(kit, factory.school())
    for code, said in (("HTTP://HUB.TEST/I/SET-UKE-Q", "SET-UKE-Q is Ukulele set Q's own label"),
                       ("SET-UKE-R", "SET-UKE-R is the label of another set, Ukulele set R")):
        response = staff_client.post(f"/set-loans/{set_loan_id}/check-in", data={"code": code, "grade": "2"},
                                     headers={"Accept": "application/json"})
        assert response.status_code == 409
        answer = response.get_json()
        assert answer["ok"] is False and said in answer["message"] and "one by one" in answer["message"]
    assert "0 of 2 back" in staff_client.get(f"/set-loans/{set_loan_id}/check-in").get_data(as_text=True)


def test_an_instrument_cannot_take_a_sets_tag(staff_client, factory):
    factory.classroom_set(size=1, tag="SET-TAKEN")
    violin = factory.instrument_type("Violin")
    response = staff_client.post("/instruments/new", data={
        "asset_tag": "set-taken", "type_id": violin.id, "size": "4/4", "location": "Store", "condition_grade": "2"})
    assert response.status_code == 409
    assert "SET-TAKEN is already in use: it is a classroom set&#39;s tag." in response.get_data(as_text=True)


def test_the_camera_recognises_a_sets_label(staff_client, factory):
    import io

    import pypdfium2 as pdfium

    kit = factory.classroom_set(size=1, name="Cajon set D", tag="SET-CAJ-D")
    pdf = staff_client.post(f"/labels/set/{kit.id}", data={"stock": "L7163", "start": "1"}).data
    document = pdfium.PdfDocument(pdf)
    page = document[0].render(scale=150 / 72, grayscale=True).to_pil()
    frame = io.BytesIO()
    page.crop((0, 0, 640, 480)).save(frame, "JPEG", quality=80)  # the top left of the sheet, where the label is
    document.close()
    response = staff_client.post("/scan/frame", data=frame.getvalue(), content_type="image/jpeg")
    [result] = response.json["results"]
    assert result["found"] and result["tag"] == "SET-CAJ-D" and result["description"] == "Cajon set D"
    assert result["status"] == "Classroom set" and result["url"].endswith(f"/sets/{kit.id}")
