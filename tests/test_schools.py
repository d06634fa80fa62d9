"""Hub managers keep the schools' details; the address is what set notes and letters carry."""
from datetime import timedelta

from sqlalchemy import select

from loanservice.audit.models import AuditEvent
from loanservice.schools.models import School
from loanservice.sets.services import check_out_set
from loanservice.timeutil import today

from .conftest import in_app, login, pdf_text
from .pages import submit


def test_admin_adds_and_changes_a_school_with_its_address(app, factory, client):
    login(client, factory.user("admin"))
    added = submit(client, "/admin/schools", {
        "name": " Riverside Primary ", "urn": "100123", "contact_name": "Ms Okafor",
        "contact_email": "Music@Riverside.example", "address": "Mill Lane\r\n\r\nExampleton EX1 2AB "})
    assert added.status_code == 303
    page = client.get("/admin/schools").get_data(as_text=True)
    assert "Added Riverside Primary." in page
    assert "Mill Lane\nExampleton EX1 2AB" in page
    with in_app(app) as session:
        school = session.scalars(select(School)).one()
        assert (school.name, school.contact_email) == ("Riverside Primary", "music@riverside.example")

    form = client.get(f"/admin/schools/{school.id}/edit").get_data(as_text=True)
    assert "Mill Lane" in form
    assert 'value="100123"' in form
    changed = submit(client, f"/admin/schools/{school.id}/edit", {
        "contact_name": "Mr Hughes", "address": "2 Station Road\nExampleton EX1 9ZZ"})
    assert changed.status_code == 303
    with in_app(app) as session:
        assert session.get(School, school.id).address == "2 Station Road\nExampleton EX1 9ZZ"
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "school.changed")).one()
        assert event.changes == {"fields": ["address", "contact_name"]}


def test_two_schools_cannot_share_a_name_or_urn_and_nothing_is_saved(app, factory, client):
    factory.school("Oak Lane Primary", urn="100200")
    other = factory.school("Hillcrest")
    login(client, factory.user("admin"))
    same_name = submit(client, "/admin/schools", {"name": "Oak Lane Primary"})
    assert same_name.status_code == 422
    assert "There is already a school called Oak Lane Primary." in same_name.get_data(as_text=True)
    same_urn = submit(client, f"/admin/schools/{other.id}/edit", {"urn": "100200", "address": "New address"})
    assert same_urn.status_code == 422
    assert "Another school has the URN 100200." in same_urn.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(School.address).where(School.id == other.id)) == ""
        assert len(session.scalars(select(School)).all()) == 2
    assert client.get("/admin/schools/999999/edit").status_code == 404


def test_only_admins_change_schools_and_the_delivery_note_carries_the_address(app, factory, client):
    school = factory.school("Riverside Primary", address="Mill Lane\nExampleton EX1 2AB")
    login(client, factory.user("staff"))
    assert client.get(f"/admin/schools/{school.id}/edit").status_code == 403
    assert client.post(f"/admin/schools/{school.id}/edit", data={"name": "Hacked"}).status_code == 403
    kit = factory.classroom_set(size=2, name="Ukulele set A")
    with in_app(app) as session:
        set_loan = check_out_set(session, None, session.merge(kit), session.merge(school), started_on=today(),
                                 due_on=today() + timedelta(days=30))
        session.commit()
        set_loan_id = set_loan.id
    note = pdf_text(client.get(f"/set-loans/{set_loan_id}/delivery-note.pdf").data)
    assert "Riverside Primary" in note and "Mill Lane" in note and "Exampleton EX1 2AB" in note
