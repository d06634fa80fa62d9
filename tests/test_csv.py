"""CSV import (all or nothing, with a row-by-row report) and the asset-register export."""
import csv
import io

from sqlalchemy import func, select

from loanservice.inventory.models import Instrument

from .conftest import in_app
from .pages import submit, submit_on

HEADER = "asset_tag,type,size,make,model,serial_number,location,condition,purchased_on,purchase_cost,funding_source\n"


def upload(client, text, name="stock.csv"):
    data = text.encode() if isinstance(text, str) else text
    return submit(client, "/instruments/import", {"file": (io.BytesIO(data), name)}, form="file")


def count(app):
    with in_app(app) as session:
        return session.scalar(select(func.count()).select_from(Instrument))


def test_a_valid_file_is_previewed_then_imported_in_one_go(app, staff_client, factory):
    factory.instrument_type("Violin", sizes=("1/2", "3/4"))
    factory.instrument_type("Flute", family="woodwind", sizes=())
    text = HEADER + (
        "VN-001,violin,1/2,Stentor,Student I,S1,Store / A1,2,2024-09-01,89.99,DfE capital grant 2024\n"
        ",Flute,,Yamaha,YFL-212,F9,Store / F1,1,01/09/2023,£420,Hub core budget\n"
    )
    response = upload(staff_client, text)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Ready to import 2 instruments" in page
    assert "VN-001" in page
    assert "(next free tag)" in page
    assert count(app) == 0  # a preview changes nothing
    preview = response
    response = submit_on(staff_client, preview, "/instruments/import", form="csv_text")
    assert response.status_code == 303
    assert "Imported 2 instruments" in staff_client.get(response.location).get_data(as_text=True)
    again = submit_on(staff_client, preview, "/instruments/import", form="csv_text")  # Back and confirm again
    assert "already been imported" in staff_client.get(again.location).get_data(as_text=True)
    assert count(app) == 2
    with in_app(app) as session:
        rows = {i.asset_tag: i for i in session.scalars(select(Instrument))}
        assert set(rows) == {"VN-001", "MIX-000001"}
        assert str(rows["MIX-000001"].purchase_cost) == "420.00"
        assert rows["MIX-000001"].purchased_on.isoformat() == "2023-09-01"


def test_any_bad_row_means_nothing_is_imported_and_every_problem_is_listed(app, staff_client, factory):
    factory.instrument_type("Violin", sizes=("1/2", "3/4"))
    factory.instrument(asset_tag="TAKEN-1")
    text = HEADER + (
        "OK-1,Violin,1/2,Stentor,,,Store,2,2024-09-01,10,\n"
        "OK-2,Tuba,,,,,Store,2,,,\n"
        "OK-3,Violin,5/8,,,,Store,2,,,\n"
        "OK-4,Violin,1/2,,,,Store,7,2024-02-30,-5,\n"
        "taken-1,Violin,1/2,,,,Store,2,,,\n"
        "OK-1,Violin,1/2,,,,Store,2,,,\n"
    )
    response = upload(staff_client, text)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Nothing was imported" in page
    for expected in ["Unknown type &#39;Tuba&#39;", "not one of them", "Condition must be 1 to 5",
                     "not a real date", "cannot be negative", "TAKEN-1 is already in use",
                     "Tag OK-1 is also on line 2"]:
        assert expected in page, expected
    assert count(app) == 1


def test_malformed_files_get_clear_messages(app, staff_client, factory):
    factory.instrument_type("Violin")
    cases = [
        (b"\xff\xfe\x00bad", "not UTF-8 text"),
        ("", "The file is empty"),
        ("make,model\nStentor,X\n", "Missing column: type"),
        ("type,colour\nViolin,red\n", "Unknown column: colour"),
        ("type,size\n", "no instruments"),
        ('type,size\nViolin,1/2,extra\n', "more cells than the header"),
    ]
    for content, message in cases:
        response = upload(staff_client, content)
        assert 400 <= response.status_code < 500, message
        assert message in response.get_data(as_text=True), message
    assert upload(staff_client, "type\nViolin\n", name="stock.xlsx").status_code == 422
    assert count(app) == 0


def test_a_confirmed_file_is_checked_again(app, staff_client, factory):
    factory.instrument_type("Violin", sizes=("1/2",))
    response = staff_client.post("/instruments/import", data={"csv_text": "type,size\nViolin,9/9\n"})
    assert response.status_code == 422
    assert count(app) == 0


def test_export_is_an_asset_register_that_imports_back(app, staff_client, factory):
    violin = factory.instrument_type("Violin", sizes=("1/2",))
    factory.instrument(violin, asset_tag="VN-9", funding_source="DfE capital grant 2024",
                       notes="=HYPERLINK(\"http://evil\")")
    response = staff_client.get("/instruments/export.csv")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment; filename=\"asset-register-")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0]["asset_tag"] == "VN-9"
    assert rows[0]["purchase_cost"] == "120.00" and rows[0]["funding_source"] == "DfE capital grant 2024"
    assert rows[0]["status"] == "available"
    assert rows[0]["notes"].startswith("'=")  # a spreadsheet shows it, never runs it
