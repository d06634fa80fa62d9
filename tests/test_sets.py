"""Classroom sets: building, lending to a school, checking in item by item; pages and permissions."""
import re
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from loanservice.errors import InvalidInput, LoanServiceError, NotFound
from loanservice.extensions import db
from loanservice.inventory.models import Instrument
from loanservice.inventory.services import send_to_repair
from loanservice.inventory.tags import resolve_instrument
from loanservice.loans.calendar import earliest_start_date
from loanservice.loans.models import Loan
from loanservice.sets import services
from loanservice.sets.models import ClassroomSet, SetLoan
from loanservice.timeutil import today

from .conftest import in_app, login, statements_run, tags_of
from .pages import submit


def scan(app, set_loan_id, code, grade=2, **kw):
    with in_app(app) as session:
        set_loan = services.get_set_loan(session, set_loan_id)
        loan, progress = services.check_in_set_item(session, None, set_loan, code, grade=grade,
                                                    base_url="http://hub.test", **kw)
        session.commit()
        return progress


# ---------------------------------------------------------------- services


def test_a_set_goes_out_to_a_school_as_one_loan_per_item(app, factory):
    kit, school = factory.classroom_set(size=4), factory.school()
    set_loan_id = factory.check_out_set(kit, school)
    with in_app(app) as session:
        loans = session.scalars(select(Loan).where(Loan.set_loan_id == set_loan_id)).all()
        assert len(loans) == 4
        assert {loan.school_id for loan in loans} == {school.id}
        assert {loan.instrument.status for loan in loans} == {"on_loan"}
        assert session.get(SetLoan, set_loan_id).item_count == 4


def test_a_set_with_an_item_in_repair_does_not_go_out_at_all(app, factory):
    kit, school = factory.classroom_set(size=3), factory.school()
    broken = tags_of(app, kit)[1]
    with in_app(app) as session:
        send_to_repair(session, None, resolve_instrument(session, broken), repairer="Luthier")
        session.commit()
    with pytest.raises(LoanServiceError, match=f"{broken} is in repair"):
        factory.check_out_set(kit, school)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Loan)) == 0
        assert session.scalar(select(func.count()).select_from(SetLoan)) == 0


def test_a_set_that_cannot_go_out_names_every_item_in_the_way_and_why(app, factory, staff_client):
    from loanservice.inventory.services import mark_missing, write_off
    from loanservice.loans.lending import open_loan

    kind = factory.instrument_type("Ukulele", sizes=())
    items = [factory.instrument(kind, asset_tag=f"UKE-00{n}") for n in range(1, 8)]
    pupil, orchestra = factory.pupil(name="Ada Lovelace"), factory.other_borrower(name="Youth Orchestra")
    lent = ("UKE-002", "UKE-003", "UKE-007")
    with in_app(app) as session:  # three lent on their own, one of them waiting to be issued
        for tag, borrower, pending in ((lent[0], pupil, False), (lent[1], orchestra, False),
                                       (lent[2], factory.pupil(name="Bo Diddley"), True)):
            open_loan(session, None, resolve_instrument(session, tag, for_update=True), session.merge(borrower),
                      due_on=today() + timedelta(days=30), awaiting_agreement=pending)
        session.commit()
    kit = factory.classroom_set(name="Ukulele set A", instruments=[i for i in items if i.asset_tag not in lent])
    with in_app(app) as session:  # ...and in the set, as a set built before sets refused lent instruments may be
        from loanservice.sets.models import ClassroomSetItem

        for tag in lent:
            session.add(ClassroomSetItem(set_id=kit.id, instrument_id=resolve_instrument(session, tag).id))
        session.commit()
    with in_app(app) as session:
        send_to_repair(session, None, resolve_instrument(session, "UKE-004"), repairer="Luthier")
        mark_missing(session, None, resolve_instrument(session, "UKE-005"))
        write_off(session, None, resolve_instrument(session, "UKE-006"), "Crushed")
        session.commit()
    with statements_run(app) as statements:
        response = staff_client.post(f"/sets/{kit.id}/check-out", data={
            "school_id": str(factory.school(name="Riverside Primary").id), "started_on": today().isoformat(),
            "due_on": (today() + timedelta(days=60)).isoformat()})
    assert response.status_code == 409
    assert ("6 instruments of Ukulele set A cannot go out: UKE-002 is on loan to Ada Lovelace; UKE-003 is on loan "
            "to Youth Orchestra; UKE-004 is in repair; UKE-005 is missing; UKE-006 has been written off; UKE-007 is "
            "held for Bo Diddley until their loan agreement is signed.") in response.get_data(as_text=True)
    # Who has them is one look-up, however many are out.
    assert len([s for s, _ in statements if re.search(r"FROM loan\b", s)]) == 1
    with in_app(app) as session:  # nothing lent
        assert session.scalar(select(func.count()).select_from(SetLoan)) == 0
        assert session.scalar(select(func.count()).select_from(Loan)) == 3
        assert resolve_instrument(session, "UKE-001").status == "available"


def test_a_set_cannot_go_out_twice_or_with_the_due_date_before_the_start(app, factory):
    kit = factory.classroom_set(size=2)
    with pytest.raises(InvalidInput, match="before the start"):
        factory.check_out_set(kit, factory.school(), due_on=today() - timedelta(days=1))
    factory.check_out_set(kit, factory.school())
    with pytest.raises(LoanServiceError, match="already out at"):
        factory.check_out_set(kit, factory.school())


def test_items_come_back_one_by_one_and_the_set_loan_closes_when_all_are_back(app, factory):
    kit, school = factory.classroom_set(size=3), factory.school()
    set_loan_id = factory.check_out_set(kit, school)
    first, second, third = tags_of(app, kit)
    assert scan(app, set_loan_id, first.lower()).summary == "1 of 3 back"
    # A keyboard-wedge scanner types the label's URL.
    assert scan(app, set_loan_id, f"http://hub.test/i/{second}").summary == "2 of 3 back"
    with in_app(app) as session:
        progress = services.progress(session, session.get(SetLoan, set_loan_id), with_items=True)
        assert [loan.instrument.asset_tag for loan in progress.still_out] == [third]
        assert session.get(SetLoan, set_loan_id).closed_on is None
    with pytest.raises(LoanServiceError, match=f"{first} is not on loan: it is already back"):
        scan(app, set_loan_id, first)
    assert scan(app, set_loan_id, third, grade=4, damaged=True, note="Neck cracked").summary == "3 of 3 back"
    with in_app(app) as session:
        assert session.get(SetLoan, set_loan_id).closed_on == today()
        assert resolve_instrument(session, third).status == "in_repair"
    with pytest.raises(LoanServiceError, match="already all back"):
        scan(app, set_loan_id, first)


def test_a_missing_item_is_accounted_for_and_the_set_closes(app, factory):
    kit = factory.classroom_set(size=2)
    set_loan_id = factory.check_out_set(kit, factory.school())
    first, second = tags_of(app, kit)
    scan(app, set_loan_id, first)
    with in_app(app) as session:
        set_loan = services.get_set_loan(session, set_loan_id)
        loan, progress = services.mark_set_item_missing(session, None, set_loan, second, "Not in the cupboard")
        session.commit()
        assert progress.summary == "1 of 2 back, 1 missing"
        assert loan.status == "lost" and resolve_instrument(session, second).status == "missing"
        assert session.get(SetLoan, set_loan_id).closed_on is not None


def test_scanning_an_item_of_another_set_or_not_on_loan_is_refused(app, factory):
    kit, other_kit = factory.classroom_set(size=2), factory.classroom_set(size=2, name="Violin set B")
    loose = factory.instrument()
    set_loan_id = factory.check_out_set(kit, factory.school())
    factory.check_out_set(other_kit, factory.school())
    foreign = tags_of(app, other_kit)[0]
    with pytest.raises(LoanServiceError, match=f"{foreign} belongs to Violin set B"):
        scan(app, set_loan_id, foreign)
    with pytest.raises(LoanServiceError, match=f"{loose.asset_tag} is not part of"):
        scan(app, set_loan_id, loose.asset_tag)
    with pytest.raises(NotFound, match="Unknown tag"):
        scan(app, set_loan_id, "NOPE-1")
    with pytest.raises(InvalidInput, match="not one of this hub's"):
        scan(app, set_loan_id, "https://elsewhere.example/i/X")
    with in_app(app) as session:
        assert session.get(Loan, 1).closed_on is None  # nothing changed
        assert session.get(Loan, 1).instrument.status == "on_loan"


def test_an_instrument_belongs_to_one_set(app, factory):
    kit = factory.classroom_set(size=2)
    taken = tags_of(app, kit)[0]
    with in_app(app) as session:
        with pytest.raises(InvalidInput, match=f"Already in another set: {taken}"):
            services.save_set(session, None, name="Other", tag="SET-OTHER", tags=[taken])


def test_an_instrument_lent_on_its_own_cannot_join_a_set_until_it_is_back(app, factory, staff_client):

    violin = factory.instrument_type("Violin")
    lent, free = factory.instrument(violin), factory.instrument(violin)
    factory.loan(lent, factory.pupil(name="Ada Lovelace"), due_on=today() + timedelta(days=30))
    response = staff_client.post("/sets/new", data={"name": "Violin set Z", "tag": "SET-VLN-Z",
                                                    "tags": f"{free.asset_tag}\n{lent.asset_tag}"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert ("On loan or held on their own, so not for a set until they are back: "
            f"{lent.asset_tag} (with Ada Lovelace).") in page
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(ClassroomSet)) == 0


def test_a_set_tag_or_name_already_taken_is_said_on_its_own_field(app, factory):
    kit = factory.classroom_set(size=1, name="Ukulele set A", tag="SET-UKE-A")
    spare = factory.instrument()
    with in_app(app) as session:
        with pytest.raises(InvalidInput, match="Ukulele set A already has the tag SET-UKE-A.") as tag_clash:
            services.save_set(session, None, name="Ukulele set B", tag="set-uke-a", tags=[spare.asset_tag])
        assert tag_clash.value.field == "tag"
        with pytest.raises(InvalidInput, match="Another set is called Ukulele set A.") as name_clash:
            services.save_set(session, None, name="Ukulele set A", tag="SET-UKE-B", tags=[spare.asset_tag])
        assert name_clash.value.field == "name"
        # Keeping its own name and tag is no clash.
        services.save_set(session, None, name=kit.name, tag=kit.tag, tags=[spare.asset_tag],
                          classroom_set=session.get(ClassroomSet, kit.id))


def test_a_set_out_at_a_school_cannot_be_changed(app, factory):
    kit = factory.classroom_set(size=2)
    factory.check_out_set(kit, factory.school())
    with in_app(app) as session:
        with pytest.raises(LoanServiceError, match="is out at a school"):
            services.save_set(session, None, name=kit.name, tag=kit.tag, tags=tags_of(app, kit)[:1],
                              classroom_set=session.get(ClassroomSet, kit.id))


def test_changing_a_set_adds_and_removes_items(app, factory):
    kit = factory.classroom_set(size=3)
    extra = factory.instrument()
    keep = tags_of(app, kit)[:2]
    with in_app(app) as session:
        services.save_set(session, None, name="Renamed", tag=kit.tag, tags=keep + [extra.asset_tag],
                          classroom_set=session.get(ClassroomSet, kit.id))
        session.commit()
    assert tags_of(app, kit) == sorted(keep + [extra.asset_tag])


def test_checking_in_a_thirty_item_set_costs_the_same_queries_per_scan(app, factory, client):
    school = factory.school()
    kit = factory.classroom_set(size=30)
    small_kit = factory.classroom_set(size=3)
    big_loan, small_loan = factory.check_out_set(kit, school), factory.check_out_set(small_kit, school)
    login(client, factory.user("school", school=school))
    with app.app_context():
        engine = db.engine

    def scan_page(set_loan_id, tag):
        with statements_run(app) as statements:
            response = client.post(f"/set-loans/{set_loan_id}/check-in", data={"code": tag, "grade": "2"})
        assert response.status_code == 303, response.get_data(as_text=True)
        return len(statements)

    big_tags, small_tags = tags_of(app, kit), tags_of(app, small_kit)
    per_scan = [scan_page(big_loan, tag) for tag in big_tags[:-1]]
    # The user; the set loan, the item's loan and instrument, locked in one query; then the batch.
    # On PostgreSQL the batch is one statement. On SQLite it is one SELECT (how much of the set is
    # back, anyone waiting for one like it), the loan and instrument rows, the condition check, the
    # three audit events in one INSERT, and the take-home, if any, ended.
    batch = 1 if engine.dialect.name == "postgresql" else 6
    assert per_scan == [2 + batch] * len(per_scan)
    assert scan_page(small_loan, small_tags[0]) == per_scan[0]  # the set's size does not matter
    # The last item also closes the set loan: the set's name, the update, its audit event.
    assert scan_page(big_loan, big_tags[-1]) == per_scan[0] + 3
    with in_app(app) as session:
        assert session.get(SetLoan, big_loan).closed_on is not None


# ---------------------------------------------------------------- pages and permissions


def test_staff_build_a_set_and_lend_it_to_a_school(app, factory, staff_client):
    kind = factory.instrument_type("Ukulele", sizes=())
    tags = [factory.instrument(kind).asset_tag for _ in range(3)]
    response = staff_client.post("/sets/new", data={"name": "Ukulele set A", "tag": "set-uke-a",
                                                     "tags": "\n".join(tags)})
    assert response.status_code == 303, response.get_data(as_text=True)
    set_id = int(response.location.rstrip("/").rsplit("/", 1)[1])
    school = factory.school(name="Riverside Primary")
    bad = staff_client.post(f"/sets/{set_id}/check-out", data={
        "school_id": str(school.id), "started_on": today().isoformat(),
        "due_on": (today() - timedelta(days=1)).isoformat()})
    assert bad.status_code == 422 and "The due date is before the start date." in bad.get_data(as_text=True)
    typo = staff_client.post(f"/sets/{set_id}/check-out", data={
        "school_id": str(school.id), "started_on": today().isoformat(),
        "due_on": (today() + timedelta(days=365 * 36)).isoformat()})
    assert typo.status_code == 422 and "is too far ahead" in typo.get_data(as_text=True)
    earliest = earliest_start_date(today())
    typo = staff_client.post(f"/sets/{set_id}/check-out", data={
        "school_id": str(school.id), "started_on": (earliest - timedelta(days=1)).isoformat(),
        "due_on": (today() + timedelta(days=90)).isoformat()})
    assert typo.status_code == 422
    assert (f'<p class="error" id="started_on-error">{earliest - timedelta(days=1):%-d %b %Y} is too long ago: a '
            f"loan can start on {earliest:%-d %b %Y}, the start of the previous school year, at the earliest."
            ) in typo.get_data(as_text=True)
    assert "At Riverside Primary" not in staff_client.get("/sets").get_data(as_text=True)  # nothing lent
    response = staff_client.post(f"/sets/{set_id}/check-out", data={
        "school_id": str(school.id), "started_on": today().isoformat(),
        "due_on": (today() + timedelta(days=90)).isoformat()})
    assert response.status_code == 303
    page = staff_client.get(response.location).get_data(as_text=True)
    assert "0 of 3 back" in page and all(tag in page for tag in tags)
    assert "At Riverside Primary" in staff_client.get("/sets").get_data(as_text=True)
    again = staff_client.post(f"/sets/{set_id}/check-out", data={
        "school_id": str(school.id), "started_on": today().isoformat(),
        "due_on": (today() + timedelta(days=90)).isoformat()})
    assert again.status_code == 409 and "already out at Riverside Primary" in again.get_data(as_text=True)


def test_a_school_user_sees_only_its_own_sets_and_checks_items_in(app, factory, client):
    ours, theirs = factory.school(name="Our School"), factory.school(name="Their School")
    our_kit, their_kit = (factory.classroom_set(size=2, name="Our ukes"),
                          factory.classroom_set(size=2, name="Their ukes"))
    our_loan, their_loan = factory.check_out_set(our_kit, ours), factory.check_out_set(their_kit, theirs)
    login(client, factory.user("school", school=ours))

    home = client.get("/").get_data(as_text=True)
    assert "Our ukes" in home and "Their ukes" not in home
    listing = client.get("/sets").get_data(as_text=True)
    assert "Our ukes" in listing and "Their ukes" not in listing
    assert client.get(f"/set-loans/{their_loan}/check-in").status_code == 404
    their_tag = tags_of(app, their_kit)[0]
    assert client.post(f"/set-loans/{their_loan}/check-in", data={"code": their_tag, "grade": "2"}).status_code == 404
    assert client.post(f"/set-loans/{their_loan}/missing", data={"code": their_tag}).status_code == 404
    assert client.get(f"/sets/{our_kit.id}").status_code == 403  # building and lending sets is the store's job

    first, second = tags_of(app, our_kit)
    wrong = client.post(f"/set-loans/{our_loan}/check-in", data={"code": their_tag, "grade": "2"})
    assert wrong.status_code == 409
    assert f"{their_tag} belongs to Their ukes, not Our ukes." in wrong.get_data(as_text=True)
    response = client.post(f"/set-loans/{our_loan}/check-in", data={"code": first, "grade": "3"})
    assert response.status_code == 303
    page = client.get(response.location).get_data(as_text=True)
    assert f"{first} back in 3 Fair: 1 of 2 back." in page and "Still out (1)" in page
    again = client.post(f"/set-loans/{our_loan}/check-in", data={"code": first, "grade": "2"})
    assert again.status_code == 409 and "is not on loan: it is already back" in again.get_data(as_text=True)
    nothing = client.post(f"/set-loans/{our_loan}/missing", data={"code": "", "note": "Not in cupboard"})
    assert nothing.status_code == 422 and "Say which item is missing." in nothing.get_data(as_text=True)
    assert "instrument loans</title>" in nothing.get_data(as_text=True)  # the hub's page, not the default
    response = client.post(f"/set-loans/{our_loan}/missing", data={"code": second, "note": "Not in cupboard"})
    assert response.status_code == 303
    assert "1 of 2 back, 1 missing" in client.get(response.location).get_data(as_text=True)
    found = client.post(f"/set-loans/{our_loan}/check-in", data={"code": second, "grade": "2"})
    assert found.status_code == 409
    assert f"{second} was reported missing on {today():%-d %b %Y}" in found.get_data(as_text=True)
    assert "tell the instrument store it has turned up" in found.get_data(as_text=True)
    # The store itself, scanning it, is told what to do, not to tell the store.
    store = app.test_client()
    login(store, factory.user("staff"))
    found = store.post(f"/set-loans/{our_loan}/check-in", data={"code": second, "grade": "2"}).get_data(as_text=True)
    assert "It has turned up: mark it found on its page (Mark found)." in found
    assert "tell the instrument store" not in found
    with in_app(app) as session:
        assert session.get(SetLoan, our_loan).closed_on == today()
        assert session.get(SetLoan, their_loan).closed_on is None
        assert resolve_instrument(session, their_tag).status == "on_loan"


JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}  # a form posted without JavaScript
NOT_FOUND = "Not found. There is nothing at this address. Check the link, or search from the menu."


@contextmanager
def rendered_templates(app):
    """The names of the templates rendered meanwhile."""
    from flask import template_rendered

    names = []

    def record(sender, template, context, **extra):
        names.append(template.name)

    template_rendered.connect(record, app)
    try:
        yield names
    finally:
        template_rendered.disconnect(record, app)


def back_list(page):
    """The part of the check-in page that lists what is back."""
    return page.split('<h2 id="back-h">Back</h2>', 1)[1]


def test_the_scan_queue_gets_each_scan_answered_in_json_with_the_progress(app, factory, client):
    school = factory.school(name="Our School")
    kit = factory.classroom_set(size=3, name="Our ukes")
    set_loan_id = factory.check_out_set(kit, school)
    first, second, third = tags_of(app, kit)
    login(client, factory.user("school", school=school))
    url = f"/set-loans/{set_loan_id}/check-in"

    with rendered_templates(app) as templates:
        response = client.post(url, data={"code": first.lower(), "grade": "3"}, headers=JSON)
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.json == {
        "ok": True, "message": f"{first} back in 3 Fair: 1 of 3 back.", "tag": first, "summary": "1 of 3 back",
        "back": 1, "lost": 0, "total": 3, "outstanding": 2, "complete": False, "page": url}
    assert templates == []  # no page rendered for a scan
    page = client.get(response.json["page"]).get_data(as_text=True)
    assert "1 of 3 back" in page and "Still out (2)" in page and first in back_list(page)
    assert f"{first} back in" not in page  # the answer said it: nothing was left to flash

    damaged = client.post(url, data={"code": second, "grade": "4", "damaged": "y", "note": "Neck cracked"},
                          headers=JSON)
    assert damaged.json["message"] == f"{second} back in 4 Poor (damaged, sent to repair): 2 of 3 back."
    last = client.post(url, data={"code": third, "grade": "2"}, headers=JSON)
    assert last.status_code == 200
    assert (last.json["back"], last.json["outstanding"], last.json["complete"]) == (3, 0, True)
    assert f"All 3 back: checked in by {today():%-d %b %Y}." in client.get(last.json["page"]).get_data(as_text=True)
    with in_app(app) as session:
        assert session.get(SetLoan, set_loan_id).closed_on == today()


def test_a_wrong_scan_is_refused_in_json_with_the_reason_and_changes_nothing(app, factory, client):
    ours, theirs = factory.school(name="Our School"), factory.school(name="Their School")
    our_kit, their_kit = (factory.classroom_set(size=2, name="Our ukes"),
                          factory.classroom_set(size=2, name="Their ukes"))
    loose = factory.instrument()
    our_loan, their_loan = factory.check_out_set(our_kit, ours), factory.check_out_set(their_kit, theirs)
    their_tag = tags_of(app, their_kit)[0]
    login(client, factory.user("school", school=ours))
    url = f"/set-loans/{our_loan}/check-in"
    for data in ({"code": their_tag, "grade": "2"}, {"code": their_tag}):  # another school's set, as ever
        hidden = client.post(f"/set-loans/{their_loan}/check-in", data=data, headers=JSON)
        # Answered in JSON, as the scan queue asked, by the app's own "not found" (it says no more).
        assert hidden.status_code == 404 and hidden.json == {"ok": False, "message": NOT_FOUND}

    with rendered_templates(app) as templates:
        foreign = client.post(url, data={"code": their_tag, "grade": "2"}, headers=JSON)
        not_ours = client.post(url, data={"code": loose.asset_tag, "grade": "2"}, headers=JSON)
        no_such_grade = client.post(url, data={"code": tags_of(app, our_kit)[0], "grade": "7"}, headers=JSON)
    assert templates == []  # refused without rendering the page
    assert foreign.status_code == 409
    assert foreign.json == {"ok": False, "message": f"{their_tag} belongs to Their ukes, not Our ukes.",
                            "field": "code"}
    assert not_ours.status_code == 409 and not_ours.json["ok"] is False
    assert not_ours.json["message"].startswith(f"{loose.asset_tag} is not part of")
    assert no_such_grade.status_code == 422
    assert no_such_grade.json == {"ok": False, "message": "Not a valid choice.", "field": "grade"}
    with in_app(app) as session:
        assert session.scalar(select(func.count()).where(Loan.closed_on.is_not(None))) == 0
        assert resolve_instrument(session, their_tag).status == "on_loan"
    assert "0 of 2 back" in client.get(url).get_data(as_text=True)


def test_a_json_scan_writes_no_session_cookie_and_the_form_still_redirects_with_the_message(app, factory, client):
    school = factory.school()
    kit = factory.classroom_set(size=3)
    set_loan_id = factory.check_out_set(kit, school)
    first, second, _ = tags_of(app, kit)
    login(client, factory.user("school", school=school))
    url = f"/set-loans/{set_loan_id}/check-in"
    client.get(url)

    scanned = client.post(url, data={"code": first, "grade": "2"}, headers=JSON)
    assert scanned.status_code == 200 and "Set-Cookie" not in scanned.headers
    refused = client.post(url, data={"code": first, "grade": "2"}, headers=JSON)
    assert refused.status_code == 409 and "Set-Cookie" not in refused.headers
    # A browser's own form post (it accepts anything, HTML first) is answered as before.
    posted = client.post(url, data={"code": second, "grade": "2"}, headers=BROWSER)
    assert posted.status_code == 303 and posted.location == url
    assert "Set-Cookie" in posted.headers  # the flash travels in the session
    assert f"{second} back in 2 Good: 2 of 3 back." in client.get(posted.location).get_data(as_text=True)


def test_a_json_scan_still_needs_the_pages_csrf_token(database_url, factory):
    import re

    from loanservice import create_app

    from .conftest import config_for

    app = create_app(config_for(database_url, WTF_CSRF_ENABLED=True))
    client = app.test_client()
    school = factory.school()
    kit = factory.classroom_set(size=2)
    set_loan_id = factory.check_out_set(kit, school)
    first = tags_of(app, kit)[0]
    user = factory.user("school", school=school)
    login_page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    client.post("/login", data={"email": user.email, "password": "correct-horse-battery", "csrf_token": token})
    url = f"/set-loans/{set_loan_id}/check-in"
    page = client.get(url).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)

    forged = client.post(url, data={"code": first, "grade": "2"}, headers=JSON)
    # The scan queue gets the error page's words in JSON, to list beside the scan.
    assert forged.status_code == 400 and forged.json == {
        "ok": False, "message": "This form has expired. The page was open too long or came from elsewhere. "
                                "Go back, reload it and try again."}
    posted = client.post(url, data={"code": first, "grade": "2"}, headers=BROWSER)
    assert posted.status_code == 400 and posted.mimetype == "text/html"
    assert "<h1>This form has expired</h1>" in posted.get_data(as_text=True)
    scanned = client.post(url, data={"code": first, "grade": "2", "csrf_token": token}, headers=JSON)
    assert scanned.status_code == 200 and scanned.json["back"] == 1


def test_parents_cannot_open_set_pages(app, factory, client):
    kit = factory.classroom_set(size=1)
    set_loan_id = factory.check_out_set(kit, factory.school())
    login(client, factory.user("parent"))
    assert client.get("/sets").status_code == 403
    assert client.get(f"/set-loans/{set_loan_id}/check-in").status_code == 403


def test_the_demo_hub_has_sets_out_and_pupils_with_loans(app, client):
    from loanservice.borrowers.models import Pupil

    result = app.test_cli_runner().invoke(args=["demo", "seed", "--instruments", "400"])
    assert result.exit_code == 0, result.output
    with in_app(app) as session:
        statuses = set(session.scalars(select(Loan.status).distinct()))
        assert {"open", "returned", "exchanged"} <= statuses
        assert session.scalar(select(func.count()).where(Loan.closed_on.is_(None), Loan.due_on < today())) > 0
        assert session.scalar(select(func.count()).where(Loan.closed_on.is_(None), Loan.pupil_id.is_not(None),
                                                         Loan.remission_category != "none")) > 0
        assert session.scalar(select(func.count()).select_from(Pupil)) > 0
    client.post("/login", data={"email": "school@demo.hub", "password": "demo-school-pass"})
    home = client.get("/").get_data(as_text=True)
    assert "With you: check items in" in home
    listing = client.get("/sets").get_data(as_text=True)
    link = listing.split('href="/set-loans/', 1)[1].split('"', 1)[0]
    page = client.get(f"/set-loans/{link}").get_data(as_text=True)
    assert " back" in page and "Still out (3)" in page


def test_a_school_lends_a_set_item_home_to_its_own_pupil_with_a_signed_agreement(app, factory, client):
    from loanservice.sets.models import TakeHome

    ours, theirs = factory.school(name="Our School"), factory.school(name="Their School")
    kit = factory.classroom_set(size=2, name="Our violins")
    set_loan_id = factory.check_out_set(kit, ours)
    our_pupil = factory.pupil(name="Priya", school=ours)
    their_pupil = factory.pupil(name="Tom", school=theirs)
    first, second = tags_of(app, kit)
    login(client, factory.user("school", school=ours))
    url = f"/set-loans/{set_loan_id}/take-home"
    page = client.get(f"/set-loans/{set_loan_id}/check-in").get_data(as_text=True)
    assert "Priya" in page and "Tom" not in page  # only the school's own pupils are offered

    signed = {"home-code": first, "home-agreement_signed_on": today().isoformat()}
    other_school = client.post(url, data={**signed, "home-pupil_id": str(their_pupil.id)})
    refused = other_school.get_data(as_text=True)
    # Refused without naming the other school's child: a school sees only its own pupils.
    assert other_school.status_code == 422 and "Choose a pupil of Our School." in refused and "Tom" not in refused
    unsigned = client.post(url, data={"home-code": first, "home-pupil_id": str(our_pupil.id)})
    assert unsigned.status_code == 422 and "signs the loan agreement" in unsigned.get_data(as_text=True)
    late = client.post(url, data={**signed, "home-pupil_id": str(our_pupil.id),
                                  "home-due_on": (today() + timedelta(days=400)).isoformat()})
    assert late.status_code == 422 and "must be back in the set by" in late.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(TakeHome)) == 0

    response = client.post(url, data={**signed, "home-pupil_id": str(our_pupil.id)})
    assert response.status_code == 303
    page = client.get(response.location).get_data(as_text=True)
    assert "at Priya's home" in page
    again = client.post(url, data={**signed, "home-pupil_id": str(our_pupil.id)})
    assert again.status_code == 409 and "already at Priya&#39;s home" in again.get_data(as_text=True)

    # Back in the set, then scanned in with the rest: the take-home ends, the set loan goes on.
    assert client.post(f"/set-loans/{set_loan_id}/back-to-set", data={"code": first}).status_code == 303
    assert client.post(url, data={**signed, "home-code": second,
                                  "home-pupil_id": str(our_pupil.id)}).status_code == 303
    assert client.post(f"/set-loans/{set_loan_id}/check-in", data={"code": second, "grade": "2"}).status_code == 303
    with in_app(app) as session:
        takes = session.scalars(select(TakeHome).order_by(TakeHome.id)).all()
        assert [t.returned_on for t in takes] == [today(), today()]
        assert session.get(SetLoan, set_loan_id).closed_on is None


def test_a_set_is_built_from_tags_however_they_are_separated_and_not_from_lost_instruments(app, factory, staff_client):
    kind = factory.instrument_type("Djembe", family="percussion", sizes=())
    a, b, gone = (factory.instrument(kind) for _ in range(3))
    with in_app(app) as session:
        from loanservice.inventory.services import write_off

        write_off(session, None, resolve_instrument(session, gone.asset_tag), "Split skin")
        session.commit()
    refused = staff_client.post("/sets/new", data={"name": "Drums", "tag": "SET-DRUM",
                                                   "tags": f"{a.asset_tag} {gone.asset_tag}"})
    assert refused.status_code == 422 and f"not for a set: {gone.asset_tag}" in refused.get_data(as_text=True)
    made = staff_client.post("/sets/new", data={"name": "Drums", "tag": "SET-DRUM",
                                                "tags": f"{a.asset_tag.lower()}  {b.asset_tag},\n"})
    assert made.status_code == 303
    assert tags_of(app, session_set(app, "SET-DRUM")) == [a.asset_tag, b.asset_tag]


def session_set(app, tag):
    with in_app(app) as session:
        found = session.scalar(select(ClassroomSet).where(ClassroomSet.tag == tag))
        session.expunge(found)
        return found


def test_the_school_sees_what_went_missing_and_fetches_the_sets_documents(app, factory, client):
    import html

    school = factory.school(name="Our School")
    kit = factory.classroom_set(size=2, name="Our violins")
    set_loan_id = factory.check_out_set(kit, school)
    first, second = tags_of(app, kit)
    login(client, factory.user("school", school=school))
    page = client.get(f"/set-loans/{set_loan_id}/check-in").get_data(as_text=True)
    assert f'href="/set-loans/{set_loan_id}/delivery-note.pdf"' in page
    response = client.post(f"/set-loans/{set_loan_id}/missing", data={"code": first})
    assert response.status_code == 303
    assert client.post(f"/set-loans/{set_loan_id}/check-in", data={"code": second, "grade": "3"}).status_code == 303
    for url in ("/sets", "/"):
        listing = html.unescape(client.get(url).get_data(as_text=True))
        assert "1 missing" in listing and "All back" not in listing, url
        assert f"/set-loans/{set_loan_id}/receipt.pdf" in listing
        assert f"/set-loans/{set_loan_id}/delivery-note.pdf" in listing
    page = client.get(f"/set-loans/{set_loan_id}/check-in").get_data(as_text=True)
    assert f'href="/set-loans/{set_loan_id}/receipt.pdf"' in page


def test_a_backdated_set_loan_cannot_overlap_its_items_last_loans(app, factory):
    kit, school = factory.classroom_set(size=2), factory.school()
    first_loan = factory.check_out_set(kit, school, started_on=today() - timedelta(days=40))
    from loanservice.loans.lending import check_in

    with in_app(app) as session:  # all back ten days ago
        for loan in session.scalars(select(Loan).where(Loan.set_loan_id == first_loan)).all():
            check_in(session, None, loan, grade=2, returned_on=today() - timedelta(days=10))
        session.get(SetLoan, first_loan).closed_on = today() - timedelta(days=10)
        session.commit()
    with pytest.raises(InvalidInput, match="was on loan until .*: a new loan can start on that day at the earliest"):
        factory.check_out_set(kit, school, started_on=today() - timedelta(days=20))
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(SetLoan)) == 1
    factory.check_out_set(kit, school, started_on=today() - timedelta(days=10))


def test_a_take_home_agreement_dated_years_ago_is_refused(app, factory, client):
    ours = factory.school(name="Our School")
    kit = factory.classroom_set(size=1)
    set_loan_id = factory.check_out_set(kit, ours)
    pupil = factory.pupil(name="Priya", school=ours)
    login(client, factory.user("school", school=ours))
    response = client.post(f"/set-loans/{set_loan_id}/take-home", data={
        "home-code": tags_of(app, kit)[0], "home-pupil_id": str(pupil.id), "home-agreement_signed_on": "2010-09-06"})
    assert response.status_code == 422
    assert ("6 Sep 2010 is too long ago for this loan&#39;s agreement: "
            "check the year.") in response.get_data(as_text=True)


def test_a_set_made_by_mistake_can_be_deleted_until_it_has_been_lent(app, factory, staff_client):
    from loanservice.audit.models import AuditEvent
    from loanservice.sets.models import ClassroomSetItem

    mistake = factory.classroom_set(size=2, name="Ukulele set Oops")
    page = staff_client.get(f"/sets/{mistake.id}").get_data(as_text=True)
    assert f'action="/sets/{mistake.id}/delete"' in page and 'data-confirm="Delete Ukulele set Oops?' in page
    response = staff_client.post(f"/sets/{mistake.id}/delete")
    assert response.status_code == 303
    assert "Deleted Ukulele set Oops; its instruments are free" in (
        staff_client.get(response.location).get_data(as_text=True))
    with in_app(app) as session:
        assert session.get(ClassroomSet, mistake.id) is None
        assert session.scalar(select(func.count()).select_from(ClassroomSetItem)) == 0
        assert session.scalar(select(func.count()).select_from(Instrument)) == 2  # the instruments stay
        assert session.scalar(select(AuditEvent.summary).where(AuditEvent.action == "set.deleted")) == (
            f"Deleted Ukulele set Oops ({mistake.tag})")

    lent = factory.classroom_set(size=1, name="Violin set Kept")
    factory.check_out_set(lent, factory.school())
    page = staff_client.get(f"/sets/{lent.id}").get_data(as_text=True)
    assert "Delete the set" not in page
    refused = staff_client.post(f"/sets/{lent.id}/delete")
    assert refused.status_code == 409
    assert "has been lent before: it stays, with its history" in refused.get_data(as_text=True)
    with in_app(app) as session:
        assert session.get(ClassroomSet, lent.id) is not None
    school_client = app.test_client()
    login(school_client, factory.user("school", school=factory.school()))
    assert school_client.post(f"/sets/{lent.id}/delete").status_code == 403


def test_the_store_sees_which_sets_cannot_go_out_and_why_before_trying(app, factory, staff_client):
    kit = factory.classroom_set(size=3, name="Glock set B")
    fine = factory.classroom_set(size=2, name="Glock set C")
    broken = tags_of(app, kit)[1]
    with in_app(app) as session:
        send_to_repair(session, None, resolve_instrument(session, broken), repairer="Luthier")
        session.commit()
    listing = staff_client.get("/sets").get_data(as_text=True)
    row = listing.split("Glock set B", 1)[1].split("</tr>", 1)[0]
    assert "1 item cannot go out" in row
    assert "cannot go out" not in listing.split("Glock set C", 1)[1].split("</tr>", 1)[0]
    page = staff_client.get(f"/sets/{kit.id}").get_data(as_text=True)
    assert "1 instrument of the set cannot go out now, so the set cannot either" in page
    assert f">{broken}</a> is in repair" in page
    assert "cannot go out now" not in staff_client.get(f"/sets/{fine.id}").get_data(as_text=True)


def test_building_a_set_names_the_right_reason_for_each_instrument_in_the_way(app, factory):
    from loanservice.inventory.models import InstrumentStatus
    from loanservice.inventory.services import change_status

    other = factory.classroom_set(size=1, name="Ukulele set B")
    factory.check_out_set(other, factory.school(name="Holme Primary"))
    theirs = tags_of(app, other)[0]
    reserved, free = factory.instrument(), factory.instrument()
    with in_app(app) as session:  # allocated to a child on the waiting list
        change_status(session, None, resolve_instrument(session, reserved.asset_tag), InstrumentStatus.RESERVED,
                      "for Mo")
        session.commit()
    with in_app(app) as session:
        with pytest.raises(InvalidInput, match=re.escape(f"Already in another set: {theirs} (Ukulele set B)")):
            services.save_set(session, None, name="New", tag="SET-NEW", tags=[free.asset_tag, theirs])
        with pytest.raises(InvalidInput, match=re.escape(f"{reserved.asset_tag} (reserved for a child)")):
            services.save_set(session, None, name="New", tag="SET-NEW", tags=[free.asset_tag, reserved.asset_tag])


def test_take_home_says_the_same_for_an_unknown_pupil_and_another_schools(app, factory, client):
    ours = factory.school(name="Our School")
    kit = factory.classroom_set(size=1)
    set_loan_id = factory.check_out_set(kit, ours)
    theirs = factory.pupil(name="Tom", school=factory.school())
    login(client, factory.user("school", school=ours))
    pages = [client.post(f"/set-loans/{set_loan_id}/take-home", data={
        "home-code": tags_of(app, kit)[0], "home-pupil_id": pupil_id, "home-agreement_signed_on": today().isoformat()})
        for pupil_id in (str(theirs.id), "99999")]
    assert [p.status_code for p in pages] == [422, 422]
    assert all("Choose a pupil of Our School." in p.get_data(as_text=True) for p in pages)


def test_a_wrong_scan_after_the_set_is_all_back_says_what_is_wrong_with_it(app, factory, staff_client):
    kit, other = (factory.classroom_set(size=1, name="Ukulele set A"),
                  factory.classroom_set(size=1, name="Ukulele set B"))
    set_loan_id = factory.check_out_set(kit, factory.school())
    scan(app, set_loan_id, tags_of(app, kit)[0])
    for code, said in (("NOPE-9", "Unknown tag: no instrument has asset tag NOPE-9."),
                       (tags_of(app, other)[0], "belongs to Ukulele set B, not Ukulele set A."),
                       (tags_of(app, kit)[0], "Ukulele set A is already all back.")):
        response = staff_client.post(f"/set-loans/{set_loan_id}/check-in", data={"code": code, "grade": "2"},
                                     headers={"Accept": "application/json"})
        assert response.status_code in (404, 409), (code, response.get_json())
        assert said in response.get_json()["message"], (code, response.get_json())


# ---------------------------------------------------------------- each item's own condition


def graded_set(factory, grades, name="Ukulele set G"):
    """A set whose instruments are in the given condition grades, in asset tag order."""
    kind = factory.instrument_type("Ukulele G", sizes=())
    return factory.classroom_set(name=name, instruments=[factory.instrument(kind, condition_grade=g) for g in grades])


def returned_grades(app, set_loan_id):
    """Each item's (grade it went out in, grade it came back in, its instrument's grade now), by tag."""
    with in_app(app) as session:
        return [tuple(row) for row in session.execute(
            select(Loan.condition_at_issue, Loan.condition_at_return, Instrument.condition_grade)
            .join(Loan.instrument).where(Loan.set_loan_id == set_loan_id).order_by(Instrument.asset_tag))]


def test_a_set_item_comes_back_in_the_condition_it_went_out_in_unless_one_is_chosen_for_it(app, factory):
    kit = graded_set(factory, [4, 1, 2])
    set_loan_id = factory.check_out_set(kit, factory.school())
    poor, excellent, good = tags_of(app, kit)
    scan(app, set_loan_id, poor, grade=None)
    scan(app, set_loan_id, excellent, grade=3)
    scan(app, set_loan_id, good, grade=None)
    assert returned_grades(app, set_loan_id) == [(4, 4, 4), (1, 3, 3), (2, 2, 2)]


def test_a_grade_chosen_on_the_page_is_for_one_item_and_the_next_comes_back_as_it_went_out(app, factory, client):
    from .pages import read_form

    school = factory.school()
    kit = graded_set(factory, [4, 1, 2])
    set_loan_id = factory.check_out_set(kit, school)
    poor, excellent, good = tags_of(app, kit)
    login(client, factory.user("school", school=school))
    url = f"/set-loans/{set_loan_id}/check-in"

    page = client.get(url).get_data(as_text=True)
    assert read_form(page, url, "code").values("grade") == [""]  # "As it went out", chosen already
    assert '<input checked id="grade-0" name="grade" type="radio" value=""> As it went out' in page
    first = submit(client, url, {"code": poor}, form="code", follow_redirects=True).get_data(as_text=True)
    assert f"{poor} back in 4 Poor: 1 of 3 back." in first
    second = submit(client, url, {"code": excellent, "grade": 3}, form="code", follow_redirects=True)
    assert f"{excellent} back in 3 Fair: 2 of 3 back." in second.get_data(as_text=True)
    assert read_form(second.get_data(as_text=True), url, "code").values("grade") == [""]  # the choice went back
    third = submit(client, url, {"code": good}, form="code", follow_redirects=True).get_data(as_text=True)
    assert f"{good} back in 2 Good" in third
    assert returned_grades(app, set_loan_id) == [(4, 4, 4), (1, 3, 3), (2, 2, 2)]
    assert "(went out 1 Excellent)" in back_list(third)
    assert back_list(third).count("went out") == 1  # only the item whose grade changed says so


def test_the_scan_queue_posts_each_items_own_grade_from_the_rendered_form(app, factory, client):
    from .pages import fill, read_form

    school = factory.school()
    kit = graded_set(factory, [4, 1])
    set_loan_id = factory.check_out_set(kit, school)
    poor, excellent = tags_of(app, kit)
    login(client, factory.user("school", school=school))
    url = f"/set-loans/{set_loan_id}/check-in"
    rendered = read_form(client.get(url).get_data(as_text=True), url, "code")

    as_it_went = client.post(rendered.action, data=fill(rendered, {"code": poor}), headers=JSON)
    assert as_it_went.json["message"] == f"{poor} back in 4 Poor: 1 of 2 back."
    chosen = client.post(rendered.action, data=fill(rendered, {"code": excellent, "grade": 2}), headers=JSON)
    assert chosen.json["message"] == f"{excellent} back in 2 Good: 2 of 2 back."
    assert returned_grades(app, set_loan_id) == [(4, 4, 4), (1, 2, 2)]


def test_a_finished_set_with_an_item_missing_says_which_and_what_happens_next(app, factory, client):
    from decimal import Decimal

    school = factory.school(name="Our School")
    kind = factory.instrument_type("Violin M", sizes=())
    kit = factory.classroom_set(name="Violin set M", instruments=[
        factory.instrument(kind, replacement_value=Decimal("95.00")) for _ in range(2)])
    set_loan_id = factory.check_out_set(kit, school)
    kept, lost = tags_of(app, kit)
    login(client, factory.user("school", school=school))
    url = f"/set-loans/{set_loan_id}/check-in"
    submit(client, url, {"code": kept}, form="code")
    submit(client, url, form=1)  # "Report missing" beside the one still out

    page = client.get(url).get_data(as_text=True)
    assert "Everything is accounted for" not in page
    assert '<span class="badge status-missing" id="progress" role="status">1 of 2 back, 1 missing</span>' in page
    assert f"Checked in by {today():%-d %b %Y}: 1 back, 1 missing." in page
    missing = page.split('id="missing-next-h"', 1)[1].split("</section>", 1)[0]
    assert "1 item did not come back" in missing
    assert f'<span class="tag">{lost}</span> Violin M: reported missing' in missing
    assert "replacement cost £95.00" in missing
    assert "Our School is charged the replacement cost (£95.00)." in missing
    assert kept not in missing


def test_a_finished_set_with_everything_back_says_all_back(app, factory, client):
    school = factory.school()
    kit = factory.classroom_set(size=2)
    set_loan_id = factory.check_out_set(kit, school)
    for tag in tags_of(app, kit):
        scan(app, set_loan_id, tag)
    login(client, factory.user("school", school=school))
    page = client.get(f"/set-loans/{set_loan_id}/check-in").get_data(as_text=True)
    assert f"All 2 back: checked in by {today():%-d %b %Y}." in page
    assert 'class="badge status-available"' in page
    assert "did not come back" not in page


def test_the_check_in_pages_camera_frames_are_read_for_the_sets_school_only(app, factory, client):
    import io

    import zxingcpp
    from PIL import Image

    ours, theirs = factory.school(name="Our School"), factory.school(name="Their School")
    our_loan = factory.check_out_set(factory.classroom_set(size=1), ours)
    their_loan = factory.check_out_set(factory.classroom_set(size=1), theirs)
    image = zxingcpp.create_barcode("HTTP://HUB.TEST/I/MIX-000001", zxingcpp.BarcodeFormat.QRCode).to_image(scale=6)
    frame = Image.new("L", (640, 480), 200)
    frame.paste(Image.frombytes("L", (image.shape[1], image.shape[0]), memoryview(image).tobytes()), (200, 100))
    jpeg = io.BytesIO()
    frame.save(jpeg, "JPEG", quality=80)
    login(client, factory.user("school", school=ours))

    page = client.get(f"/set-loans/{our_loan}/check-in").get_data(as_text=True)
    assert f'data-frame-url="/set-loans/{our_loan}/frame"' in page and "Scan with the camera" in page
    assert 'id="camera-scan" hidden' in page  # shown by its script: without JavaScript it would do nothing
    read = client.post(f"/set-loans/{our_loan}/frame", data=jpeg.getvalue(), content_type="image/jpeg")
    assert read.status_code == 200 and read.json == {"results": [{"code": "HTTP://HUB.TEST/I/MIX-000001"}]}
    assert client.post(f"/set-loans/{our_loan}/frame", data=b"no image").status_code == 400
    assert client.post(f"/set-loans/{their_loan}/frame", data=jpeg.getvalue()).status_code == 404
    parent = app.test_client()
    login(parent, factory.user("parent"))
    assert parent.post(f"/set-loans/{our_loan}/frame", data=jpeg.getvalue()).status_code == 403


def test_missing_items_with_and_without_a_replacement_value_say_what_is_known(app, factory, client):
    from decimal import Decimal

    school = factory.school(name="Our School")
    kind = factory.instrument_type("Cello M", sizes=())
    kit = factory.classroom_set(name="Cello set M", instruments=[
        factory.instrument(kind, replacement_value=Decimal("400.00")), factory.instrument(kind)])
    set_loan_id = factory.check_out_set(kit, school)
    with in_app(app) as session:
        for tag in tags_of(app, kit):
            services.mark_set_item_missing(session, None, services.get_set_loan(session, set_loan_id), tag)
        session.commit()
    login(client, factory.user("school", school=school))
    page = client.get(f"/set-loans/{set_loan_id}/check-in").get_data(as_text=True)
    assert "2 items did not come back" in page
    assert ("Our School is charged the replacement cost (£400.00, and the store sets the cost of 1 item with no "
            "replacement value).") in page
    assert "If an item turns up, keep it with the set and tell the instrument store" in page
