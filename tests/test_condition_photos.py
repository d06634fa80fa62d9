"""Condition photos: taken at an inspection, a repair and a check-in, seen in the histories by staff only,
stored small and without the camera's location; bad files and oversized ones are refused with a message."""
import io
import re
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from loanservice import create_app
from loanservice.inventory.models import ConditionCheck, ConditionPhoto
from loanservice.timeutil import today

from .conftest import config_for, in_app, login
from .pages import submit

GPS_IFD = 0x8825


def phone_photo(width=4000, height=3000) -> bytes:
    """A JPEG as a phone takes it: large, with the camera's make and the GPS location in its EXIF."""
    image = Image.new("RGB", (width, height), (180, 120, 60))
    for x in range(0, width, 200):  # some detail, so it is not a trivially small file
        image.paste((20, 20, 20), (x, 0, x + 20, height))
    exif = image.getexif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (51.0, 30.0, 12.5), 3: "W", 4: (0.0, 7.0, 40.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def photo_file(data: bytes, name="crack.jpg"):
    return (io.BytesIO(data), name)


def photo_urls(page_html: str) -> list[str]:
    return re.findall(r'<img src="(/photos/\d+\.jpg)"', page_html)


def count_checks(app) -> int:
    with in_app(app) as session:
        return session.scalar(select(func.count()).select_from(ConditionCheck))


def inspect_with_a_photo(client, tag):
    response = submit(client, f"/instruments/{tag}/condition", {"grade": "3", "photos": photo_file(phone_photo())})
    assert response.status_code == 303


def test_the_test_photo_carries_a_location(app):
    assert Image.open(io.BytesIO(phone_photo())).getexif().get_ifd(GPS_IFD)[1] == "N"


def test_a_photo_at_an_inspection_is_shown_in_the_condition_history(app, staff_client, factory):
    violin = factory.instrument()
    response = submit(staff_client, f"/instruments/{violin.asset_tag}/condition",
                      {"grade": "3", "note": "Crack by the f-hole", "photos": photo_file(phone_photo())})
    assert response.status_code == 303
    page = staff_client.get(f"/instruments/{violin.asset_tag}").get_data(as_text=True)
    history = page.split('id="cond-h"')[1].split("</section>")[0]
    assert len(photo_urls(history)) == 1


def stored_photo(client, tag) -> Image.Image:
    page = client.get(f"/instruments/{tag}").get_data(as_text=True)
    response = client.get(photo_urls(page)[0])
    assert response.mimetype == "image/jpeg"
    return Image.open(io.BytesIO(response.data))


def test_a_stored_photo_has_no_location(app, staff_client, factory):
    violin = factory.instrument()
    inspect_with_a_photo(staff_client, violin.asset_tag)
    assert dict(stored_photo(staff_client, violin.asset_tag).getexif().get_ifd(GPS_IFD)) == {}


def test_a_stored_photo_has_no_exif_at_all(app, staff_client, factory):
    violin = factory.instrument()
    inspect_with_a_photo(staff_client, violin.asset_tag)
    assert len(stored_photo(staff_client, violin.asset_tag).getexif()) == 0


def test_a_stored_photo_is_resized_to_1600_pixels_keeping_its_shape(app, staff_client, factory):
    violin = factory.instrument()
    inspect_with_a_photo(staff_client, violin.asset_tag)
    assert stored_photo(staff_client, violin.asset_tag).size == (1600, 1200)


def test_several_photos_at_once_are_all_kept(app, staff_client, factory):
    violin = factory.instrument()
    submit(staff_client, f"/instruments/{violin.asset_tag}/condition",
           {"grade": "3", "photos": [photo_file(phone_photo(800, 600), "front.jpg"),
                                     photo_file(phone_photo(600, 800), "back.jpg")]})
    page = staff_client.get(f"/instruments/{violin.asset_tag}").get_data(as_text=True)
    assert len(photo_urls(page)) == 2


def test_a_file_that_is_not_an_image_is_refused_with_a_message(app, staff_client, factory):
    violin = factory.instrument()
    response = submit(staff_client, f"/instruments/{violin.asset_tag}/condition",
                      {"grade": "3", "photos": photo_file(b"%PDF-1.4 not a photo", "receipt.pdf")})
    assert response.status_code == 422
    assert "“receipt.pdf” is not a photo this service can read" in response.get_data(as_text=True)


def test_a_refused_photo_records_no_condition_check(app, staff_client, factory):
    violin = factory.instrument()
    before = count_checks(app)
    submit(staff_client, f"/instruments/{violin.asset_tag}/condition",
           {"grade": "3", "photos": [photo_file(phone_photo(800, 600)), photo_file(b"GIF89a broken", "b.gif")]})
    assert count_checks(app) == before


def test_a_photo_over_the_per_photo_limit_is_refused_with_the_limit(database_url, factory):
    app = create_app(config_for(database_url, PHOTO_MAX_BYTES=100_000))
    client = app.test_client()
    login(client, factory.user("staff"))
    violin = factory.instrument()
    response = submit(client, f"/instruments/{violin.asset_tag}/condition",
                      {"grade": "3", "photos": photo_file(phone_photo())})
    assert response.status_code == 422
    assert "“crack.jpg” is larger than 0.1 MB" in response.get_data(as_text=True)


def test_a_50_mb_upload_gets_a_friendly_413_page(app, staff_client, factory):
    violin = factory.instrument()
    response = submit(staff_client, f"/instruments/{violin.asset_tag}/condition",
                      {"grade": "3", "photos": photo_file(b"\xff\xd8" + b"0" * 50_000_000, "huge.jpg")})
    assert response.status_code == 413
    assert "40 MB at most" in response.get_data(as_text=True)


def test_a_photo_sent_to_repair_is_shown_with_the_repair(app, staff_client, factory):
    violin = factory.instrument()
    submit(staff_client, f"/instruments/{violin.asset_tag}/repair",
           {"repairer": "Luthier Ltd", "fault": "Open seam", "photos": photo_file(phone_photo(900, 700))})
    page = staff_client.get(f"/instruments/{violin.asset_tag}").get_data(as_text=True)
    repairs = page.split('id="repair-h"')[1].split("</section>")[0]
    assert len(photo_urls(repairs)) == 1


def checked_in_with_a_photo(factory, client, **fields):
    violin = factory.instrument()
    loan_id = factory.loan(violin, factory.pupil(), due_on=today() + timedelta(days=60))
    response = submit(client, f"/loans/{loan_id}/check-in",
                      {"grade": "4", "note": "Bridge snapped", "photos": photo_file(phone_photo(1200, 900)),
                       **fields})
    assert response.status_code == 303
    return violin, loan_id


def test_a_photo_at_check_in_is_shown_on_the_loans_return_note(app, staff_client, factory):
    _, loan_id = checked_in_with_a_photo(factory, staff_client)
    page = staff_client.get(f"/loans/{loan_id}").get_data(as_text=True)
    assert "Photos at return" in page
    assert len(photo_urls(page)) == 1


def test_a_photo_at_check_in_is_shown_in_the_condition_history(app, staff_client, factory):
    violin, _ = checked_in_with_a_photo(factory, staff_client)
    page = staff_client.get(f"/instruments/{violin.asset_tag}").get_data(as_text=True)
    history = page.split('id="cond-h"')[1].split("</section>")[0]
    assert len(photo_urls(history)) == 1


def test_a_photo_of_damage_at_check_in_goes_with_the_repair_too(app, staff_client, factory):
    violin, _ = checked_in_with_a_photo(factory, staff_client, damaged="y")
    page = staff_client.get(f"/instruments/{violin.asset_tag}").get_data(as_text=True)
    repairs = page.split('id="repair-h"')[1].split("</section>")[0]
    assert len(photo_urls(repairs)) == 1


@pytest.mark.parametrize("role", ["parent", "school"])
def test_only_staff_see_photos(app, client, staff_client, factory, role):
    violin = factory.instrument()
    inspect_with_a_photo(staff_client, violin.asset_tag)
    url = photo_urls(staff_client.get(f"/instruments/{violin.asset_tag}").get_data(as_text=True))[0]
    other = app.test_client()
    login(other, factory.parent() if role == "parent" else factory.user("school"))
    assert other.get(url).status_code == 403


def test_a_missing_photo_is_a_404(app, staff_client):
    assert staff_client.get("/photos/999999.jpg").status_code == 404


def test_photos_are_kept_in_the_database(app, staff_client, factory):
    violin = factory.instrument()
    inspect_with_a_photo(staff_client, violin.asset_tag)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(ConditionPhoto)) == 1
