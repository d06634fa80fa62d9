"""What a parent has: past loans with their receipts, agreements made at lending, terms they signed under."""
from datetime import timedelta

from sqlalchemy import select

from loanservice.documents import services as documents
from loanservice.documents.models import Agreement
from loanservice.inventory.tags import resolve_instrument
from loanservice.loans import lending
from loanservice.loans.models import Loan
from loanservice.timeutil import today

from .conftest import config_for, in_app, login, mail_link, send_mail
from .pages import submit

HIRE_CONDITIONS = "Look after the instrument.\n\nLoss or theft: you pay the replacement value."


def publish_hire_conditions(app, text=HIRE_CONDITIONS):
    with in_app(app) as session:
        version = documents.save_hire_conditions(session, None, text).version
        session.commit()
        return version


def test_lending_makes_the_agreement_and_emails_the_parent_a_link_to_sign(database_url, smtp_server, factory):
    from loanservice import create_app

    app = create_app(config_for(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port))
    factory.app = app
    factory.term("This term", today() - timedelta(days=5), today() + timedelta(days=50))
    publish_hire_conditions(app)
    parent = factory.parent(email="pat@example.org")
    child = factory.child(parent, "Rowan")
    instrument = factory.instrument()
    staff = app.test_client()
    login(staff, factory.user("staff"))
    response = submit(staff, f"/loans/new?tag={instrument.asset_tag}&borrower=pupil-{child.id}", button="Lend")
    assert response.status_code == 303
    with in_app(app) as session:
        loan = session.scalars(select(Loan)).one()
        assert loan.is_open
        assert session.scalar(select(Agreement).where(Agreement.loan_id == loan.id)) is not None
    send_mail(app)
    mails = [m for m in smtp_server.messages if "sign the loan agreement" in m["Subject"]]
    assert [m["To"] for m in mails] == ["pat@example.org"]
    link = mail_link(mails[0], "/loans/")
    parent_client = app.test_client()
    login(parent_client, parent)
    page = parent_client.get(link).get_data(as_text=True)
    assert "Agreement to sign" in page and "Sign online" in page
    assert "No agreement has been made" not in page
    home = parent_client.get("/").get_data(as_text=True)
    assert "Read and sign the loan agreement" in home


def test_the_agreement_page_tells_a_parent_in_words_not_a_fingerprint(app, factory, client):
    factory.term("This term", today() - timedelta(days=5), today() + timedelta(days=50))
    publish_hire_conditions(app)
    parent = factory.parent()
    child = factory.child(parent, "Rowan")
    instrument = factory.instrument()
    with in_app(app) as session:
        loan = lending.check_out(session, None, resolve_instrument(session, instrument.asset_tag),
                                  session.get(type(child), child.id), app.config)
        session.commit()
        loan_id, sha = loan.id, session.scalars(select(Agreement.sha256)).one()
    login(client, parent)
    page = client.get(f"/loans/{loan_id}/agreement").get_data(as_text=True)
    assert "what you read is exactly what is signed" in page
    assert sha not in page.replace(f'value="{sha}"', "")  # only in the sign form's hidden field
    assert "SHA-256" not in page


def test_a_parent_sees_past_loans_with_their_return_receipts(app, factory, client):
    factory.term("This term", today() - timedelta(days=5), today() + timedelta(days=50))
    parent = factory.parent()
    child = factory.child(parent, "Rowan")
    factory.instrument(asset_tag="VLN-OLD")
    factory.instrument(asset_tag="VLN-NEW")
    with in_app(app) as session:
        pupil = session.get(type(child), child.id)
        first = lending.check_out(session, None, resolve_instrument(session, "VLN-OLD"), pupil,
                                   app.config)
        session.flush()
        lending.check_in(session, None, first, grade=2, returned_on=today())
        lending.check_out(session, None, resolve_instrument(session, "VLN-NEW"), pupil, app.config)
        session.commit()
        first_id = first.id
    login(client, parent)
    home = client.get("/").get_data(as_text=True)
    returned = home[home.index("<h3>Returned</h3>"):]
    assert "VLN-OLD" in returned and "VLN-NEW" not in returned
    assert f"Returned {today():%-d %b %Y}" in returned
    assert f'href="/loans/{first_id}/receipt.pdf"' in returned
    receipt = client.get(f"/loans/{first_id}/receipt.pdf")
    assert receipt.status_code == 200 and receipt.mimetype == "application/pdf"


def test_every_version_of_the_terms_can_be_read_and_an_agreement_links_its_own(app, factory, client):
    factory.term("This term", today() - timedelta(days=5), today() + timedelta(days=50))
    publish_hire_conditions(app, "Version one: keep it in its case.")
    parent = factory.parent()
    child = factory.child(parent, "Rowan")
    instrument = factory.instrument()
    with in_app(app) as session:
        loan = lending.check_out(session, None, resolve_instrument(session, instrument.asset_tag),
                                  session.get(type(child), child.id), app.config)
        session.commit()
        loan_id = loan.id
    publish_hire_conditions(app, "Version two: keep it in its case, and insure it.")
    old = client.get("/terms-and-conditions/1").get_data(as_text=True)
    assert "Version one: keep it in its case." in old
    assert 'href="/terms-and-conditions/2">version 2</a>' in old
    assert client.get("/terms-and-conditions/3").status_code == 404
    login(client, parent)
    page = client.get(f"/loans/{loan_id}/agreement").get_data(as_text=True)
    assert '<a href="/terms-and-conditions/1">Version 1</a>' in page
    admin = factory.user("admin")
    client.post("/logout")
    login(client, admin)
    terms_page = client.get("/admin/terms-and-conditions").get_data(as_text=True)
    assert '<a href="/terms-and-conditions/1">Version 1</a>' in terms_page


def test_the_signed_agreement_pdf_fills_its_signature_boxes_and_states_value_and_address(app, factory, client):
    from decimal import Decimal

    from .conftest import pdf_text

    factory.term("This term", today() - timedelta(days=5), today() + timedelta(days=50))
    publish_hire_conditions(app)
    parent = factory.parent(name="Dana Okoro")
    with in_app(app) as session:
        from loanservice.borrowers.models import Family

        family = session.scalar(select(Family).where(Family.user_id == parent.id))
        family.address = "12 Elm Street\nExampleton EX3 4AB"
        session.commit()
    child = factory.child(parent, "Rowan")
    instrument = factory.instrument(replacement_value=Decimal("249.00"))
    with in_app(app) as session:
        loan = lending.check_out(session, None, resolve_instrument(session, instrument.asset_tag),
                                  session.get(type(child), child.id), app.config)
        session.commit()
        loan_id, agreement_id = loan.id, session.scalars(select(Agreement.id)).one()
    login(client, parent)
    unsigned = pdf_text(client.get(f"/agreements/{agreement_id}.pdf").data)
    assert "£249.00" in unsigned
    assert "12 Elm Street, Exampleton EX3 4AB" in unsigned
    assert "Signed online" not in unsigned
    response = submit(client, f"/loans/{loan_id}/agreement", {"full_name": "Dana Okoro", "agreed": "y"},
                      form="full_name")
    assert response.status_code == 303
    with in_app(app) as session:
        agreement = session.get(Agreement, agreement_id)
        signed_at, sha = agreement.signed_at, agreement.sha256
    signed = pdf_text(client.get(f"/agreements/{agreement_id}.pdf").data)
    hirer_box = signed[signed.index("The hirer I have read and agree"):]
    assert hirer_box.startswith(f"The hirer I have read and agree to these terms. Dana Okoro Signed online "
                                f"{signed_at:%-d %b %Y %H:%M} Date and time signed")
    assert sha[:16] in signed.replace(" ", "")
    client.post("/logout")
    login(client, factory.user("staff", name="Sam Store"))
    # The staff page's forms: countersign, then make a new copy.
    assert submit(client, f"/loans/{loan_id}/agreement", form=0, button="Countersign").status_code == 303
    countersigned = pdf_text(client.get(f"/agreements/{agreement_id}.pdf").data)
    assert "Sam Store Countersigned for the hub" in countersigned


def test_an_agreement_made_later_by_staff_is_emailed_to_the_parent(database_url, smtp_server, factory):
    from loanservice import create_app

    app = create_app(config_for(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port))
    factory.app = app
    factory.term("This term", today() - timedelta(days=5), today() + timedelta(days=50))
    parent = factory.parent(email="pat@example.org")
    child = factory.child(parent, "Rowan")
    instrument = factory.instrument()
    with in_app(app) as session:  # lent before the hub wrote its terms: no agreement yet
        loan = lending.check_out(session, None, resolve_instrument(session, instrument.asset_tag),
                                  session.get(type(child), child.id), app.config)
        session.commit()
        loan_id = loan.id
    parent_client = app.test_client()
    login(parent_client, parent)
    page = parent_client.get(f"/loans/{loan_id}/agreement").get_data(as_text=True)
    assert "The hub has not made the agreement for this loan yet" in page
    publish_hire_conditions(app)
    staff = app.test_client()
    login(staff, factory.user("staff"))
    assert submit(staff, f"/loans/{loan_id}/agreement", button="Make the agreement").status_code == 303
    send_mail(app)
    mails = [m for m in smtp_server.messages if "sign the loan agreement" in m["Subject"]]
    assert [m["To"] for m in mails] == ["pat@example.org"]
    assert "Sign online" in parent_client.get(mail_link(mails[0], "/loans/")).get_data(as_text=True)
