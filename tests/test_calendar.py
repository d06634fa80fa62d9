"""The academic calendar: closures within terms are not overdue; terms changed and removed with care."""
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from loanservice.documents import notices
from loanservice.loans import pricing
from loanservice.loans.calendar import days_of_term, holidays
from loanservice.loans.models import AcademicTerm, TermClosure
from loanservice.loans.pricing import Charges
from loanservice.timeutil import today

from .conftest import attachment_text, in_app, login, mail_to
from .pages import submit


class Span:
    def __init__(self, starts_on, ends_on):
        self.starts_on, self.ends_on = starts_on, ends_on


def test_a_closure_within_a_term_is_not_a_day_of_term():
    autumn, spring = Span(date(2025, 9, 3), date(2025, 12, 19)), Span(date(2026, 1, 5), date(2026, 3, 27))
    half_term = Span(date(2025, 10, 27), date(2025, 10, 31))
    off = holidays([spring, autumn], [half_term])
    assert off == [(date(2025, 10, 27), date(2025, 10, 31)), (date(2025, 12, 20), date(2026, 1, 4))]
    assert days_of_term(date(2025, 10, 24), date(2025, 11, 3), off) == 5  # Sat, Sun, (half-term), Sun, Mon
    assert days_of_term(date(2025, 10, 24), date(2025, 11, 3), holidays([spring, autumn])) == 10


def test_admin_adds_a_half_term_and_the_overdue_list_and_notices_leave_it_out(app, client, factory):
    term = factory.term("Autumn", today() - timedelta(days=60), today() + timedelta(days=30))
    factory.loan(factory.instrument(asset_tag="HALF-1"), factory.pupil(name="Ada"),
         started_on=today() - timedelta(days=50), due_on=today() - timedelta(days=14))
    with in_app(app) as session:
        notices.add_usual_stages(session, None)
        session.commit()
    login(client, factory.user("admin"))
    assert "14 days" in client.get("/loans/overdue").get_data(as_text=True)
    added = submit(client, "/terms", {"closure-term": str(term.id), "closure-name": "Half-term",
                                      "closure-starts_on": (today() - timedelta(days=10)).isoformat(),
                                      "closure-ends_on": (today() - timedelta(days=4)).isoformat()},
                   form="add-closure", follow_redirects=True)
    page = added.get_data(as_text=True)
    assert "Added Half-term to Autumn" in page
    assert f"Half-term: {(today() - timedelta(days=10)):%-d %b %Y} to {(today() - timedelta(days=4)):%-d %b %Y}" in page
    overdue = client.get("/loans/overdue").get_data(as_text=True)
    row = next(r for r in overdue.split("<tr>") if "HALF-1" in r)
    assert "7 days" in row
    with in_app(app) as session:
        [due] = notices.due_notices(session, today())
    assert due.days_overdue == 7


def test_a_closure_outside_its_term_or_overlapping_another_is_refused(app, client, factory):
    term = factory.term("Autumn", date(2025, 9, 3), date(2025, 12, 19))
    login(client, factory.user("admin"))
    outside = submit(client, "/terms", {"closure-term": str(term.id), "closure-name": "Half-term",
                                        "closure-starts_on": "2025-12-18", "closure-ends_on": "2025-12-23"},
                     form="add-closure")
    assert outside.status_code == 422
    assert "Autumn runs from 3 Sep to 19 Dec 2025: a closure falls within it." in outside.get_data(as_text=True)
    assert submit(client, "/terms", {"closure-term": str(term.id), "closure-name": "Half-term",
                                     "closure-starts_on": "2025-10-27", "closure-ends_on": "2025-10-31"},
                  form="add-closure").status_code == 303
    clash = submit(client, "/terms", {"closure-term": str(term.id), "closure-name": "INSET day",
                                      "closure-starts_on": "2025-10-31", "closure-ends_on": "2025-10-31"},
                   form="add-closure")
    assert "The dates overlap Half-term (27 Oct to 31 Oct)." in clash.get_data(as_text=True)


def test_admin_removes_a_closure_after_confirming(app, client, factory):
    term = factory.term("Autumn", date(2025, 9, 3), date(2025, 12, 19))
    with in_app(app) as session:
        session.add(TermClosure(term_id=term.id, name="INSET day", starts_on=date(2025, 11, 14),
                                ends_on=date(2025, 11, 14)))
        session.commit()
        closure_id = session.scalar(select(TermClosure.id))
    login(client, factory.user("admin"))
    page = client.get("/terms").get_data(as_text=True)
    assert 'data-confirm="Remove INSET day from Autumn?' in page
    removed = submit(client, "/terms", form=f"remove-closure-{closure_id}", follow_redirects=True)
    assert "Removed INSET day from Autumn." in removed.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(TermClosure)) is None


def test_admin_changes_a_term(app, client, factory):
    term = factory.term("Autum 2025", date(2025, 9, 3), date(2025, 12, 19))
    factory.term("Spring 2026", date(2026, 1, 5), date(2026, 3, 27))
    login(client, factory.user("admin"))
    assert f'href="/terms/{term.id}/edit"' in client.get("/terms").get_data(as_text=True)
    saved = submit(client, f"/terms/{term.id}/edit", {"name": "Autumn 2025", "ends_on": "2025-12-18"},
                   form=0, follow_redirects=True)
    assert "Saved Autumn 2025." in saved.get_data(as_text=True)
    with in_app(app) as session:
        changed = session.get(AcademicTerm, term.id)
        assert (changed.name, changed.ends_on) == ("Autumn 2025", date(2025, 12, 18))
    overlap = submit(client, f"/terms/{term.id}/edit", {"ends_on": "2026-01-06"}, form=0)
    assert overlap.status_code == 422 and "The dates overlap Spring 2026." in overlap.get_data(as_text=True)


def test_a_term_is_removed_after_confirming_unless_charges_or_letters_rely_on_it(app, client, factory):
    unused = factory.term("Summer 2025", date(2025, 4, 22), date(2025, 7, 22))
    charged = factory.term("Autumn 2025", date(2025, 9, 3), date(2025, 12, 19))
    factory.loan(factory.instrument(), factory.pupil(), started_on=date(2025, 9, 10), due_on=date(2025, 12, 19),
         charges=Charges(fee_per_term=Decimal("30.00")))
    with in_app(app) as session:
        pricing.raise_term_charges(session, None, session.get(AcademicTerm, charged.id))
        session.commit()
    login(client, factory.user("admin"))
    form = client.get(f"/terms/{unused.id}/edit").get_data(as_text=True)
    assert 'data-confirm="Remove Summer 2025 and its closures from the calendar?' in form
    refused = submit(client, f"/terms/{charged.id}/edit", form="remove-term", follow_redirects=True)
    assert ("Autumn 2025 cannot be removed: 1 charge was raised for it. Change its name or dates instead."
            in refused.get_data(as_text=True))
    removed = submit(client, f"/terms/{unused.id}/edit", form="remove-term", follow_redirects=True)
    assert "Removed Summer 2025." in removed.get_data(as_text=True)
    with in_app(app) as session:
        assert [t.name for t in session.scalars(select(AcademicTerm))] == ["Autumn 2025"]


def test_a_term_whose_days_an_overdue_letter_counted_stays(app, client, factory, tmp_path):
    spring = factory.term("Spring 2026", date(2026, 1, 5), date(2026, 3, 27))
    factory.loan(factory.instrument(), factory.family(name="Mrs Smith", address="4 Elm Road"),
         started_on=date(2026, 1, 5), due_on=date(2026, 1, 9))
    with in_app(app) as session:
        notices.add_usual_stages(session, None)
        session.commit()
    sent = app.test_cli_runner().invoke(args=["notices", "run", "--as-of", "2026-01-20", "-o",
                                              str(tmp_path / "letters.pdf")])
    assert sent.exit_code == 0, sent.output
    login(client, factory.user("admin"))
    refused = submit(client, f"/terms/{spring.id}/edit", form="remove-term", follow_redirects=True)
    assert "Spring 2026 cannot be removed: 1 overdue letter counted its days." in refused.get_data(as_text=True)


def test_a_final_notice_sent_before_half_term_gives_the_days_to_return_it_in_term_time(app, factory, smtp_server,
                                                                                      tmp_path):

    term = factory.term("Autumn 2025", date(2025, 9, 3), date(2025, 12, 19))
    with in_app(app) as session:
        session.add(TermClosure(term_id=term.id, name="Half-term", starts_on=date(2025, 10, 27),
                                ends_on=date(2025, 10, 31)))
        for stage in notices.add_usual_stages(session, None)[:1]:
            notices.remove_stage(session, None, stage)  # the final notice is the first stage here
        session.commit()
    factory.loan(factory.instrument(), factory.pupil(family=factory.family(email="hirer@example.org")),
         started_on=date(2025, 9, 10), due_on=date(2025, 9, 26))
    mail_to(app, smtp_server)
    sent = app.test_cli_runner().invoke(args=["notices", "run", "--as-of", "2025-10-20", "-o", str(tmp_path / "l.pdf")])
    assert sent.exit_code == 0, sent.output
    letter = attachment_text(smtp_server.messages[0])
    # 14 days from 20 Oct would be 3 Nov; the half-term (27 to 31 Oct) is not counted, so 8 Nov.
    assert "within 19 days, by 8 Nov 2025" in letter


def test_days_of_term_after_a_day_skip_the_days_off():
    from loanservice.loans.calendar import after_days_of_term

    off = [(date(2025, 10, 27), date(2025, 10, 31))]
    assert after_days_of_term(date(2025, 10, 20), 14, off) == date(2025, 11, 8)
    assert days_of_term(date(2025, 10, 20), date(2025, 11, 8), off) == 14
    assert after_days_of_term(date(2025, 10, 20), 3, off) == date(2025, 10, 23)
    assert after_days_of_term(date(2025, 10, 24), 3, off) == date(2025, 11, 1)
