"""Agreements, receipts and delivery notes: what the PDFs say, signing, safety and who may fetch them."""
import hashlib
import http.server
import io
import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from loanservice.documents import render, services
from loanservice.documents.models import Agreement
from loanservice.loans import lending, pricing
from loanservice.loans.models import Loan
from loanservice.sets.models import SetLoan
from loanservice.sets.services import check_in_set_item, check_out_set, mark_set_item_missing
from loanservice.timeutil import today

from .conftest import HIRE_CONDITIONS, in_app, login, pdf_text, publish_hire_conditions


def hub(app):
    return services.Hub.from_config(app.config)


@pytest.fixture
def pupil_loan(app, factory):
    """A violin lent to a pupil whose parent has a sign-in; returns (loan_id, parent user, family, pupil)."""
    parent = factory.user("parent")
    school = factory.school("Hillside Primary")
    family = factory.family("Dana O'Neill", email="dana@example.org", user_id=parent.id)
    pupil = factory.pupil("Sam O'Neill", school=school, family=family, year_group=5,
                          remission_category="pupil_premium", remission_verified_on=date(2026, 9, 1))
    kind = factory.instrument_type("Violin", sizes=("1/4", "1/2", "3/4"))
    instrument = factory.instrument(kind, size="1/2", make="Stentor", model="Student II", serial_number="SN-4471",
                                    accessories="case, bow, rosin")
    loan_id = factory.loan(instrument, pupil, started_on=today(), due_on=today() + timedelta(days=60),
                   charges=pricing.Charges(fee_per_term=Decimal("36.40"), charge_per_term=Decimal("14.56"),
                                                 deposit=Decimal("25.00")))
    return loan_id, parent, family, pupil, instrument


def prepare(app, loan_id, fresh=False):
    with in_app(app) as session:
        agreement = services.prepare_agreement(session, None, session.get(Loan, loan_id), hub(app), fresh=fresh)
        session.commit()
        return agreement.id, agreement.sha256


# ---------------------------------------------------------------- safety


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        type(self).hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"x")

    def log_message(self, *args):
        pass


def test_the_url_fetcher_serves_static_files_only_and_fetches_nothing_else(app):
    server = http.server.HTTPServer(("127.0.0.1", 0), _CountingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    remote = f"http://127.0.0.1:{server.server_address[1]}/tracker.png"
    html = (f'<html><head><link rel="stylesheet" href="documents.css"></head><body>'
            f'<img src="file:///etc/passwd"><img src="{remote}"><img src="../config.py">'
            f'<img src="data:image/svg+xml,&lt;svg/&gt;"><p>Hello</p></body></html>')
    fetcher = render.StaticOnlyFetcher()
    try:
        with app.app_context():
            pdf = render.write_pdf(render.html_document(html, fetcher))
    finally:
        server.shutdown()
    assert _CountingHandler.hits == []  # the remote server was never asked
    assert "file:///etc/passwd" in fetcher.refused and remote in fetcher.refused
    assert any(url.endswith("/loanservice/config.py") for url in fetcher.refused)
    assert any(url.startswith("data:") for url in fetcher.refused)
    assert [url.rsplit("/", 1)[1] for url in fetcher.served] == ["documents.css"]
    assert "root:" not in pdf_text(pdf)
    assert render.static_path(render.BASE_URL + "../__init__.py") is None
    assert render.static_path(render.BASE_URL + "documents.css") is not None


def test_typed_values_are_escaped_and_fetch_nothing(app, factory, pupil_loan, monkeypatch):
    loan_id, *_ = pupil_loan
    with in_app(app) as session:
        loan = session.get(Loan, loan_id)
        loan.pupil.family.name = 'Evil <img src="file:///etc/passwd"> Parent'
        loan.accessories = 'case, <img src="http://198.51.100.7/x.png">'
        session.commit()
    publish_hire_conditions(app, 'Terms with <b>odd</b> characters: £ € “quotes” & <script>alert(1)</script>')
    asked = []
    original = render.StaticOnlyFetcher.fetch
    monkeypatch.setattr(render.StaticOnlyFetcher, "fetch", lambda self, url, headers=None: (
        asked.append(url), original(self, url, headers))[1])
    agreement_id, _ = prepare(app, loan_id)
    with in_app(app) as session:
        text = pdf_text(session.get(Agreement, agreement_id).pdf)
    assert [url.rsplit("/", 1)[1] for url in asked] == ["documents.css"]
    assert 'Evil <img src="file:///etc/passwd"> Parent' in text
    assert '<img src="http://198.51.100.7/x.png">' in text
    assert "<script>alert(1)</script>" in text and "£ € “quotes” &" in text


# ---------------------------------------------------------------- the agreement


def test_agreement_names_everything_and_is_archival_and_tagged(app, pupil_loan):
    loan_id, parent, family, pupil, instrument = pupil_loan
    version = publish_hire_conditions(app)
    agreement_id, sha = prepare(app, loan_id)
    with in_app(app) as session:
        agreement = session.get(Agreement, agreement_id)
        assert agreement.hire_conditions.version == version
        data = agreement.pdf
    assert hashlib.sha256(data).hexdigest() == sha
    text = pdf_text(data)
    for expected in ("Demo Music Hub", "1 Music Lane", "store@hub.example", "Dana O'Neill", "dana@example.org",
                     "Sam O'Neill", "Year 5", "Hillside Primary", instrument.asset_tag, "Violin", "1/2",
                     "Stentor Student II", "SN-4471", "case, bow, rosin", "2 Good", f"{today():%-d %b %Y}",
                     f"{today() + timedelta(days=60):%-d %b %Y}", "£36.40", "Pupil premium", "£14.56", "£25.00",
                     f"terms and conditions version {version}", "keep it in its case",
                     "replacement cost within 28 days"):
        assert expected in text, expected
    assert text.count("1 Music Lane") == 1  # the letterhead gives the address once, then phone and email
    reader = PdfReader(io.BytesIO(data))
    root = reader.trailer["/Root"]
    assert "/StructTreeRoot" in root  # tagged, for screen readers
    assert b"pdfaid" in root["/Metadata"].get_object().get_data()  # PDF/A


def test_without_terms_or_hub_settings_there_is_a_clear_message(app, pupil_loan):
    loan_id, *_ = pupil_loan
    with in_app(app) as session, pytest.raises(services.DocumentError, match="no terms and conditions"):
        services.prepare_agreement(session, None, session.get(Loan, loan_id), hub(app))
    with pytest.raises(services.DocumentError, match="HUB_ADDRESS"):
        services.Hub.from_config({**app.config, "HUB_ADDRESS": " "})


def test_terms_are_versioned_and_an_agreement_keeps_its_version(app, pupil_loan):
    loan_id, *_ = pupil_loan
    assert publish_hire_conditions(app) == 1
    first_id, _ = prepare(app, loan_id)
    assert prepare(app, loan_id)[0] == first_id  # the same draft, not a new one each time
    with in_app(app) as session, pytest.raises(services.InvalidInput, match="same as version 1"):
        services.save_hire_conditions(session, None, HIRE_CONDITIONS)
    assert publish_hire_conditions(app, HIRE_CONDITIONS + "\n\nNew clause: no stickers on the case.") == 2
    second_id, _ = prepare(app, loan_id)
    assert second_id != first_id
    with in_app(app) as session:
        assert session.get(Agreement, first_id).hire_conditions.version == 1
        assert session.get(Agreement, second_id).hire_conditions.version == 2
        assert "no stickers" in pdf_text(session.get(Agreement, second_id).pdf)


def test_parent_signs_online_and_the_stored_pdf_is_what_they_saw(app, client, pupil_loan):
    loan_id, parent, *_ = pupil_loan
    publish_hire_conditions(app)
    agreement_id, sha = prepare(app, loan_id)
    login(client, parent)
    page = client.get(f"/loans/{loan_id}/agreement")
    assert page.status_code == 200 and sha in page.get_data(as_text=True)
    # The agreement is a PDF on this page, not text above the box: the box says so and links to it.
    assert (f'<span class="check-text">I have read the <a href="/agreements/{agreement_id}.pdf">'
            'loan agreement (PDF)</a>, '
            "including its terms and conditions, and I agree to them</span></label>") in page.get_data(as_text=True)
    assert "above" not in page.get_data(as_text=True)
    seen = client.get(f"/agreements/{agreement_id}.pdf").data
    assert hashlib.sha256(seen).hexdigest() == sha
    # No tick: refused.
    response = client.post(f"/agreements/{agreement_id}/sign", data={"full_name": "Dana O'Neill", "sha256": sha})
    assert response.status_code == 422 and "Tick the box" in response.get_data(as_text=True)
    # A hash of something else: refused.
    response = client.post(f"/agreements/{agreement_id}/sign",
                           data={"full_name": "Dana O'Neill", "agreed": "y", "sha256": "0" * 64})
    assert response.status_code == 409 and "changed since you opened it" in response.get_data(as_text=True)
    response = client.post(f"/agreements/{agreement_id}/sign",
                           data={"full_name": "  Dana   O'Neill ", "agreed": "y", "sha256": sha})
    assert response.status_code == 303
    with in_app(app) as session:
        agreement = session.get(Agreement, agreement_id)
        assert agreement.signed_name == "Dana O'Neill" and agreement.signature_method == "online"
        assert agreement.signed_by_id == parent.id and agreement.signed_at is not None
        assert hashlib.sha256(agreement.pdf).hexdigest() == agreement.sha256 == sha
        assert agreement.pdf == seen
    # Signed once only, and it never changes.
    response = client.post(f"/agreements/{agreement_id}/sign",
                           data={"full_name": "Dana O'Neill", "agreed": "y", "sha256": sha})
    assert response.status_code == 409 and "already signed" in response.get_data(as_text=True)
    with in_app(app) as session:
        agreement = session.get(Agreement, agreement_id)
        agreement.pdf = b"%PDF-forged"
        with pytest.raises(ValueError, match="never changes"):
            session.commit()
        session.rollback()
        assert session.get(Agreement, agreement_id).sha256 == sha


def test_staff_record_a_desk_signature_and_countersign(app, client, factory, pupil_loan):
    loan_id, *_ = pupil_loan
    publish_hire_conditions(app)
    staff = factory.user("staff", name="Store Keeper")
    login(client, staff)
    assert client.post(f"/loans/{loan_id}/agreement").status_code == 303
    with in_app(app) as session:
        agreement_id = session.scalar(select(Agreement.id).where(Agreement.loan_id == loan_id))
    assert client.post(f"/agreements/{agreement_id}/countersign").status_code == 303  # not signed yet: refused
    with in_app(app) as session:
        assert session.get(Agreement, agreement_id).countersigned_at is None
    response = client.post(f"/agreements/{agreement_id}/desk-signature", data={"signer_name": "Dana O'Neill"})
    assert response.status_code == 303
    assert client.post(f"/agreements/{agreement_id}/countersign").status_code == 303
    with in_app(app) as session:
        agreement = session.get(Agreement, agreement_id)
        assert agreement.signature_method == "desk" and agreement.recorded_by_id == staff.id
        assert agreement.countersigned_by_id == staff.id
    page = client.get(f"/loans/{loan_id}/agreement").get_data(as_text=True)
    assert "signed at the desk, recorded by Store Keeper" in page


def test_only_staff_and_the_hirer_can_fetch_a_loans_documents(app, client, factory, pupil_loan):
    loan_id, parent, *_ = pupil_loan
    publish_hire_conditions(app)
    agreement_id, _ = prepare(app, loan_id)
    urls = [f"/loans/{loan_id}/agreement", f"/agreements/{agreement_id}.pdf"]
    assert client.get(urls[1]).status_code == 302  # signed out: to the sign-in page
    for outsider in (factory.user("parent"), factory.user("school")):
        login(client, outsider)
        for url in urls + [f"/loans/{loan_id}/receipt.pdf"]:
            assert client.get(url).status_code == 404, url
        assert client.post(f"/agreements/{agreement_id}/sign",
                           data={"full_name": "X Y", "agreed": "y", "sha256": "a" * 64}).status_code == 404
        client.post("/logout")
    login(client, parent)
    assert all(client.get(url).status_code == 200 for url in urls)
    client.post("/logout")
    login(client, factory.user("staff"))
    assert all(client.get(url).status_code == 200 for url in urls)


def test_a_return_receipt_for_an_individual_loan(app, client, factory, pupil_loan):
    loan_id, parent, family, pupil, instrument = pupil_loan
    login(client, parent)
    response = client.get(f"/loans/{loan_id}/receipt.pdf")
    assert response.status_code == 409  # not back yet
    with in_app(app) as session:
        lending.check_in(session, None, session.get(Loan, loan_id), grade=3, note="Scratch on the back")
        session.commit()
    response = client.get(f"/loans/{loan_id}/receipt.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = pdf_text(response.data)
    for expected in ("Return receipt", instrument.asset_tag, "Violin 1/2", "Dana O'Neill", "Sam O'Neill",
                     "Returned", f"{today():%-d %b %Y}", "3 Fair", "2 Good", "Scratch on the back"):
        assert expected in text, expected



def test_a_lost_instruments_record_does_not_call_itself_a_return_receipt(app, client, factory, pupil_loan):
    loan_id, parent, family, pupil, instrument = pupil_loan
    with in_app(app) as session:
        lending.mark_lost(session, factory.user("staff", name="Sam Storekeeper"), session.get(Loan, loan_id),
                                "Left on the bus")
        session.commit()
    login(client, parent)
    text = pdf_text(client.get(f"/loans/{loan_id}/receipt.pdf").data)
    assert "Record of a lost instrument" in text and "Recorded by" in text and "Sam Storekeeper" in text
    assert "reported lost or stolen" in text and "Left on the bus" in text
    for wrong in ("Return receipt", "Received by", "what came back"):
        assert wrong not in text, wrong

# ---------------------------------------------------------------- classroom sets


def test_set_delivery_note_and_return_receipt(app, client, factory):
    school = factory.school("Oak Lane Primary", address="Oak Lane\nExampleton EX3 4OL", contact_name="Ms Patel")
    kind = factory.instrument_type("Violin", sizes=("1/4", "1/2"))
    items = [factory.instrument(kind, size=size) for size in ("1/4", "1/2", "1/2")]
    classroom_set = factory.classroom_set(name="Violin set B", instruments=items, tag="SET-VB")
    with in_app(app) as session:
        set_loan = check_out_set(session, None, session.merge(classroom_set), session.merge(school),
                                 due_on=today() + timedelta(days=30))
        session.commit()
        set_loan_id = set_loan.id
    school_user = factory.user("school", school=school)
    login(client, school_user)
    note = client.get(f"/set-loans/{set_loan_id}/delivery-note.pdf")
    assert note.status_code == 200
    text = pdf_text(note.data)
    for expected in ("Delivery note: Violin set B", "Oak Lane Primary", "Ms Patel", "SET-VB", "3 instruments",
                     "Received complete by", *(i.asset_tag for i in items), "1/4", "1/2", "2 Good"):
        assert expected in text, expected
    with in_app(app) as session:
        set_loan = session.get(SetLoan, set_loan_id)
        check_in_set_item(session, None, set_loan, items[0].asset_tag, grade=1)
        check_in_set_item(session, None, set_loan, items[1].asset_tag, grade=4, note="Bridge down", damaged=True)
        session.commit()
    text = pdf_text(client.get(f"/set-loans/{set_loan_id}/receipt.pdf").data)
    # Not due yet: the item still out is at the school, not missing.
    assert "Back 2 of 3" in text and "Still at the school (1)" in text and "Still missing" not in text
    assert "1 Excellent" in text and "4 Poor (damaged): Bridge down" in text
    out_part = text.split("Still at the school (1)", 1)[1]
    assert items[2].asset_tag in out_part and items[0].asset_tag not in out_part
    assert f"These are due back by {today() + timedelta(days=30):%-d %b %Y}." in out_part
    with in_app(app) as session:  # once the set is overdue, what is still out is missing
        session.get(SetLoan, set_loan_id).due_on = today() - timedelta(days=1)
        session.get(SetLoan, set_loan_id).started_on = today() - timedelta(days=2)
        session.commit()
    text = pdf_text(client.get(f"/set-loans/{set_loan_id}/receipt.pdf").data)
    assert "Still missing (1)" in text and "Please return these items" in text
    with in_app(app) as session:
        mark_set_item_missing(session, None, session.get(SetLoan, set_loan_id), items[2].asset_tag, "Lost on a trip")
        session.commit()
    text = pdf_text(client.get(f"/set-loans/{set_loan_id}/receipt.pdf").data)
    assert "Reported missing or lost (1)" in text and "Still missing" not in text
    # Another school's users, and parents, see nothing.
    client.post("/logout")
    for outsider in (factory.user("school"), factory.user("parent")):
        login(client, outsider)
        for url in (f"/set-loans/{set_loan_id}/delivery-note.pdf", f"/set-loans/{set_loan_id}/receipt.pdf"):
            assert client.get(url).status_code == 404
        client.post("/logout")


def test_admin_publishes_terms_from_the_web(app, client, factory):
    login(client, factory.user("admin"))
    assert client.post("/admin/terms-and-conditions", data={"text": HIRE_CONDITIONS}).status_code == 303
    assert client.post("/admin/terms-and-conditions", data={"text": HIRE_CONDITIONS}).status_code == 422
    page = client.get("/admin/terms-and-conditions").get_data(as_text=True)
    assert "Version 1" in page
    client.post("/logout")
    login(client, factory.user("staff"))
    assert client.get("/admin/terms-and-conditions").status_code == 403
