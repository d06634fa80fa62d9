"""Overdue notices: the holiday rule, stages, sending by SMTP and by post, once each."""
import re
from datetime import date

from sqlalchemy import func, select

from loanservice.borrowers.models import Family
from loanservice.documents import notices
from loanservice.documents.models import Notice, NoticeLetter
from loanservice.loans.calendar import days_of_term, holidays
from loanservice.loans.models import Loan
from loanservice.mail import OutboxMessage

from .conftest import AS_OF, AUTUMN, DUE, SPRING, attachment_text, in_app, login, mail_to, pdf_text, send_mail
from .pages import submit


def test_school_holidays_do_not_count():
    class Term:
        def __init__(self, name, starts_on, ends_on):
            self.starts_on, self.ends_on = starts_on, ends_on

    gaps = holidays([Term(*SPRING), Term(*AUTUMN)])
    assert gaps == [(date(2025, 12, 20), date(2026, 1, 4))]
    assert days_of_term(DUE, AS_OF, gaps) == 23
    assert days_of_term(DUE, date(2025, 12, 19), gaps) == 7
    assert days_of_term(DUE, date(2026, 1, 4), gaps) == 7  # the whole holiday adds nothing
    assert days_of_term(DUE, date(2026, 1, 5), gaps) == 8
    assert days_of_term(DUE, DUE, gaps) == 0
    assert days_of_term(DUE, AS_OF, []) == 39


def run(app, *args):
    return app.test_cli_runner().invoke(args=["notices", "run", *args])


def test_notices_run_emails_prints_and_sends_nothing_twice(app, overdue, smtp_server, tmp_path):
    mail_to(app, smtp_server)
    output = tmp_path / "letters.pdf"
    result = run(app, "--as-of", AS_OF.isoformat(), "-o", str(output))
    assert result.exit_code == 0, result.output
    assert "3 new notices; 2 emailed, 1 to print." in result.output
    by_recipient = {str(m["To"]): m for m in smtp_server.messages}
    assert set(by_recipient) == {"jones@example.org", "music@oaklane.example"}
    # 23 days overdue without holidays, past the final notice's 21: still the reminder first, never a later stage.
    family_letter = attachment_text(by_recipient["jones@example.org"])
    for expected in ("Reminder: instrument overdue", "Mr Jones", "Ava Jones", overdue["emailed"].asset_tag,
                     "Cello", "3/4", "CE-1", "12 Dec 2025", "23 days overdue, not counting school holidays"):
        assert expected in family_letter, expected
    assert "Reminder" in by_recipient["jones@example.org"]["Subject"]
    school_letter = attachment_text(by_recipient["music@oaklane.example"])
    assert "Reminder: classroom set overdue" in school_letter and "Ukulele set A" in school_letter
    assert "Oak Lane Primary" in school_letter and "2 items are still out" in school_letter
    printed = pdf_text(output.read_bytes())
    assert "Mrs Smith" in printed and overdue["posted"].asset_tag in printed and "Mr Jones" not in printed
    assert "4 Elm Road" in printed and "Exampleton EX2 3CD" in printed  # ready for a window envelope
    with in_app(app) as session:
        history = session.scalars(select(Notice).order_by(Notice.id)).all()
        assert [(n.stage.letter, n.channel, n.status, n.as_of) for n in history] == [
            ("reminder", "email", "sent", AS_OF), ("reminder", "post", "sent", AS_OF),
            ("reminder", "email", "sent", AS_OF)]
        assert all(n.pdf.startswith(b"%PDF") for n in history)
    # The same day again: nothing new is sent or printed.
    again = run(app, "--as-of", AS_OF.isoformat(), "-o", str(tmp_path / "again.pdf"))
    assert again.exit_code == 0, again.output
    assert "0 new notices; 0 emailed, 0 to print." in again.output
    assert len(smtp_server.messages) == 2 and not (tmp_path / "again.pdf").exists()
    # The final notice follows the reminder 14 days of term later (21 - 7): not on 2 Feb, on 3 Feb.
    assert "0 new notices" in run(app, "--as-of", "2026-02-02", "-o", str(tmp_path / "early.pdf")).output
    final = run(app, "--as-of", "2026-02-03", "-o", str(tmp_path / "final.pdf"))
    assert "3 new notices" in final.output, final.output
    final_letter = pdf_text((tmp_path / "final.pdf").read_bytes())
    assert "Final notice: instrument overdue" in final_letter
    assert "within 14 days, by 17 Feb 2026" in final_letter
    # The replacement-cost letter follows the final notice 21 days of term later (42 - 21): 24 Feb.
    assert "0 new notices" in run(app, "--as-of", "2026-02-23", "-o", str(tmp_path / "early.pdf")).output
    replacement_run = run(app, "--as-of", "2026-02-24", "-o", str(tmp_path / "later.pdf"))
    assert "3 new notices" in replacement_run.output, replacement_run.output
    replacement = pdf_text((tmp_path / "later.pdf").read_bytes())
    assert "Replacement cost of an instrument not returned" in replacement and "£450.00" in replacement


def test_a_run_before_the_last_one_is_refused_and_a_dry_run_records_nothing(app, overdue, smtp_server):
    mail_to(app, smtp_server)
    dry = run(app, "--as-of", AS_OF.isoformat(), "--dry-run")
    assert dry.exit_code == 0 and "3 notices due" in dry.output and "Reminder" in dry.output
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Notice)) == 0
    assert smtp_server.messages == []
    assert run(app, "--as-of", AS_OF.isoformat(), "-o", "/dev/null").exit_code == 0
    earlier = run(app, "--as-of", "2026-01-19")
    assert earlier.exit_code != 0 and "cannot go back" in earlier.output


def test_a_failure_midway_is_recorded_and_a_rerun_sends_only_the_rest(app, overdue, smtp_server, tmp_path):
    mail_to(app, smtp_server)
    smtp_server.refuse.add("jones@example.org")
    first = run(app, "--as-of", AS_OF.isoformat(), "-o", str(tmp_path / "a.pdf"))
    assert first.exit_code != 0 and "1 notices could not be sent" in first.output
    assert [str(m["To"]) for m in smtp_server.messages] == ["music@oaklane.example"]
    with in_app(app) as session:
        statuses = {n.recipient_name: (n.status, n.error) for n in session.scalars(select(Notice))}
    assert statuses["Mr Jones"][0] == "failed" and "550" in statuses["Mr Jones"][1]
    assert statuses["Ms Patel"][0] == "sent" and statuses["Mrs Smith"][0] == "sent"
    smtp_server.refuse.clear()
    second = run(app, "--as-of", AS_OF.isoformat(), "-o", str(tmp_path / "b.pdf"))
    assert second.exit_code == 0, second.output
    assert "0 new notices; 1 emailed, 0 to print." in second.output
    assert [str(m["To"]) for m in smtp_server.messages] == ["music@oaklane.example", "jones@example.org"]


def test_without_a_mail_server_mail_goes_to_the_outbox_shown_to_staff(app, client, factory, overdue):
    assert not app.config.get("MAIL_SERVER")
    result = run(app, "--as-of", AS_OF.isoformat(), "-o", "/dev/null")
    assert result.exit_code == 0, result.output
    with in_app(app) as session:
        kept = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert sorted(m.recipients for m in kept) == ["jones@example.org", "music@oaklane.example"]
        assert b"application/pdf" in kept[0].message
    login(client, factory.user("parent"))
    assert client.get("/mail").status_code == 403
    client.post("/logout")
    login(client, factory.user("staff"))
    page = client.get("/mail").get_data(as_text=True)
    assert "jones@example.org" in page and "Reminder" in page
    assert "No <code>MAIL_SERVER</code> is set" in page
    assert b"Subject: Reminder" in client.get(f"/mail/{kept[0].id}.eml").data


def test_a_run_from_the_web_without_a_mail_server_says_the_emails_wait(app, client, factory, overdue):
    app.config["MAIL_SERVER"] = None
    login(client, factory.user("staff"))
    response = client.post("/notices/run", data={"as_of": AS_OF.isoformat()}, follow_redirects=True)
    assert "No mail server is set, so the emails wait on the Mail page." in response.get_data(as_text=True)


def test_staff_preview_and_run_from_the_web_and_download_past_notices(app, client, factory, overdue, smtp_server):
    mail_to(app, smtp_server)
    login(client, factory.user("staff"))
    preview = client.get(f"/notices?as_of={AS_OF.isoformat()}").get_data(as_text=True)
    assert "Due as of 20 Jan 2026: 3" in preview and "Mrs Smith" in preview and "jones@example.org" in preview
    assert "no postal address on record" not in preview
    assert "Days overdue (not counting school holidays)" in preview and "school days" not in preview
    assert "Reminder at 7 days overdue" in preview
    response = client.post("/notices/run", data={"as_of": AS_OF.isoformat()}, follow_redirects=True)
    assert "2 emails on their way, 1 to print." in response.get_data(as_text=True)
    assert smtp_server.messages == []  # the request only queued them
    send_mail(app)
    assert len(smtp_server.messages) == 2
    with in_app(app) as session:
        posted = session.scalar(select(Notice).where(Notice.channel == "post"))
        emailed = session.scalar(select(Notice).where(Notice.recipient_name == "Mr Jones"))
    page = client.get("/notices").get_data(as_text=True)
    assert f"/notices/{posted.id}.pdf" in page
    assert "Mrs Smith" in pdf_text(client.get(f"/notices/{posted.id}.pdf").data)
    assert "Mrs Smith" in pdf_text(client.get(f"/notices/letters-{AS_OF.isoformat()}.pdf").data)
    client.post("/logout")
    # The hirer may fetch their own notice; another parent may not.
    with in_app(app) as session:
        family_id = session.get(Notice, emailed.id).loan.pupil.family_id
    parent = factory.user("parent")
    with in_app(app) as session:
        from loanservice.borrowers.models import Family

        session.get(Family, family_id).user_id = parent.id
        session.commit()
    login(client, parent)
    assert client.get(f"/notices/{emailed.id}.pdf").status_code == 200
    assert client.get(f"/notices/{posted.id}.pdf").status_code == 404
    assert client.get("/notices").status_code == 403


def test_admin_sets_stages(app, client, factory):
    login(client, factory.user("admin"))
    page = client.get("/notices/stages").get_data(as_text=True)
    assert "school days" not in page.lower()
    assert "that many days overdue, not counting school holidays" in page and "Days after the due date" in page
    response = client.post("/notices/stages", data={"name": "Gentle nudge", "days_overdue": "3",
                                                    "letter": "reminder"})
    assert response.status_code == 303
    clash = client.post("/notices/stages", data={"name": "Again", "days_overdue": "3", "letter": "final"})
    assert clash.status_code == 422 and "already at 3 days" in clash.get_data(as_text=True)
    with in_app(app) as session:
        assert [(s.name, s.days_overdue, s.letter) for s in notices.stages(session)] == [
            ("Gentle nudge", 3, NoticeLetter.REMINDER)]


def test_a_large_run_is_laid_out_in_chunks_over_worker_processes(app, overdue, smtp_server, tmp_path,
                                                                   monkeypatch):
    """The path big runs take (chunks, forked workers, print files joined), made to apply to three letters."""
    from loanservice.documents import render

    monkeypatch.setattr(render, "PROCESSES", 2)
    monkeypatch.setattr(render, "PARALLEL_FROM", 2)
    monkeypatch.setattr(render, "LETTER_CHUNK", 1)
    monkeypatch.setattr(render, "FIRST_CHUNK", 1)
    forked = []
    real_workers = render.LetterPress._workers
    monkeypatch.setattr(render.LetterPress, "_workers", lambda self: forked.append(1) or real_workers(self))
    mail_to(app, smtp_server)
    output = tmp_path / "letters.pdf"
    result = run(app, "--as-of", AS_OF.isoformat(), "-o", str(output))
    assert result.exit_code == 0, result.output
    assert forked, "the worker processes were not used"
    assert "3 new notices; 2 emailed, 1 to print." in result.output
    assert "Mr Jones" in attachment_text(next(m for m in smtp_server.messages if str(m["To"]) == "jones@example.org"))
    assert "Mrs Smith" in pdf_text(output.read_bytes())
    # Many letters: one PDF each, in order, and one print file with every page in the same order.
    letters = [{"notice_id": i, "stage_name": "Reminder", "letter": "reminder", "as_of": AS_OF, "days_overdue": 9,
                "recipient_name": f"Hirer {i}", "return_by": None, "to_school": False, "pupil_name": "",
                "due_on": DUE, "address": "", "instruments": [], "total_replacement": None} for i in range(7)]
    with app.app_context():
        from loanservice.documents.services import Hub

        rendered = render.render_letters("documents/notice.html", letters, merged=True,
                                         hub=Hub.from_config(app.config))
    assert [pdf_text(p).count("Hirer ") for p in rendered.letters] == [2] * 7  # address and greeting
    assert all(f"Hirer {i}" in pdf_text(p) for i, p in enumerate(rendered.letters))
    merged = pdf_text(rendered.merged)
    assert [merged.index(f"Dear Hirer {i},") for i in range(7)] == sorted(merged.index(f"Dear Hirer {i},")
                                                                         for i in range(7))


def test_the_preview_flags_a_letter_by_post_with_no_address_to_send_it_to(app, client, factory, overdue):
    with in_app(app) as session:
        family = session.scalars(select(Family).where(Family.name == "Mrs Smith")).one()
        family.address = ""
        session.commit()
    login(client, factory.user("staff"))
    preview = client.get(f"/notices?as_of={AS_OF.isoformat()}").get_data(as_text=True)
    row = next(line for line in preview.split("<tr>") if "Mrs Smith" in line)
    assert "no postal address on record" in row
    assert "no postal address on record" not in next(line for line in preview.split("<tr>") if "Mr Jones" in line)


def test_a_run_as_of_a_date_after_today_is_refused_by_the_web_and_the_command(app, client, factory, overdue,
                                                                              smtp_server):
    from datetime import timedelta

    from loanservice.timeutil import today

    mail_to(app, smtp_server)
    future = today() + timedelta(days=1)
    cli = run(app, "--as-of", future.isoformat(), "-o", "/dev/null")
    assert cli.exit_code != 0 and "after today" in cli.output, cli.output
    login(client, factory.user("staff"))
    preview = client.get(f"/notices?as_of={future.isoformat()}").get_data(as_text=True)
    assert "is after today: this is only a preview" in preview
    refused = client.post("/notices/run", data={"as_of": future.isoformat()})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "after today" in page
    assert smtp_server.messages == []
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Notice)) == 0
    # Nothing was recorded, so a normal run still works; the button asks before sending.
    page = client.get(f"/notices?as_of={AS_OF.isoformat()}").get_data(as_text=True)
    assert 'data-confirm="Send the overdue notices' in page and "only a preview" not in page
    assert client.post("/notices/run", data={"as_of": AS_OF.isoformat()}).status_code == 303
    send_mail(app)
    assert len(smtp_server.messages) == 2


def test_the_replacement_letter_mentions_earlier_letters_only_when_one_was_sent(app, overdue, smtp_server, tmp_path):
    mail_to(app, smtp_server)
    # A hub that chases with the replacement-cost letter alone: it is the first letter the hirer gets.
    with in_app(app) as session:
        for stage in notices.stages(session)[:2]:
            notices.remove_stage(session, None, stage)
        session.commit()
    first = run(app, "--as-of", "2026-02-24", "-o", str(tmp_path / "first.pdf"))
    assert first.exit_code == 0, first.output
    letter = pdf_text((tmp_path / "first.pdf").read_bytes())
    assert "Replacement cost of an instrument not returned" in letter
    assert "earlier letters" not in letter and "reminder" not in letter.lower()
    assert ("As the instrument has not been returned and it is now 58 days overdue (not counting school holidays), "
            "we now ask you to pay its replacement cost of £450.00") in letter
    school = attachment_text(next(m for m in smtp_server.messages if str(m["To"]) == "music@oaklane.example"))
    assert ("As these items have not been returned and they are now 58 days overdue "
            "(not counting school holidays)") in school


def test_after_a_final_notice_the_replacement_letter_mentions_it(app, overdue, smtp_server, tmp_path):
    mail_to(app, smtp_server)
    assert run(app, "--as-of", AS_OF.isoformat(), "-o", str(tmp_path / "a.pdf")).exit_code == 0
    assert run(app, "--as-of", "2026-02-03", "-o", str(tmp_path / "b.pdf")).exit_code == 0
    assert run(app, "--as-of", "2026-02-24", "-o", str(tmp_path / "c.pdf")).exit_code == 0
    letter = pdf_text((tmp_path / "c.pdf").read_bytes())
    assert "As the instrument has not been returned despite our earlier letters, we now ask you to pay its " \
           "replacement cost of £450.00" in letter
    # The day's print file, laid out again later, says the same.
    from loanservice.documents.services import Hub

    with in_app(app) as session:
        again = notices.print_file_for(session, date(2026, 2, 24), Hub.from_config(app.config))
    assert "despite our earlier letters" in pdf_text(again)


def test_a_letter_by_post_with_no_address_is_held_back_and_sent_once_the_address_is_added(app, client, factory,
                                                                                         overdue, smtp_server,
                                                                                         tmp_path):
    mail_to(app, smtp_server)
    with in_app(app) as session:
        session.scalars(select(Family).where(Family.name == "Mrs Smith")).one().address = ""
        session.commit()
    output = tmp_path / "letters.pdf"
    first = run(app, "--as-of", AS_OF.isoformat(), "-o", str(output))
    assert first.exit_code == 0, first.output
    assert "3 new notices; 2 emailed, 0 to print." in first.output
    assert "1 letter by post held back (not printed): no postal address on record" in first.output
    assert "held back: Mrs Smith (no postal address)" in first.output
    assert not output.exists()  # nothing unaddressed to print
    with in_app(app) as session:
        held = session.scalar(select(Notice).where(Notice.recipient_name == "Mrs Smith"))
        assert held.status == "failed" and held.sent_at is None and "No postal address" in held.error
    login(client, factory.user("staff"))
    page = client.get("/notices").get_data(as_text=True)
    row = next(line for line in page.split("<tr>") if "Mrs Smith" in line and "failed" in line)
    assert "No postal address on record" in row and "day&#39;s print file" not in row
    assert client.get(f"/notices/letters-{AS_OF.isoformat()}.pdf").status_code == 404
    # From the web, too, the run says what it held back, and keeps holding it back.
    response = client.post("/notices/run", data={"as_of": AS_OF.isoformat()}, follow_redirects=True)
    assert "0 emails on their way, 0 to print. 1 letter by post held back" in response.get_data(as_text=True)
    # Staff add the address: the next run prints it.
    with in_app(app) as session:
        session.scalars(select(Family).where(Family.name == "Mrs Smith")).one().address = "4 Elm Road\nExampleton"
        session.commit()
    again = run(app, "--as-of", AS_OF.isoformat(), "-o", str(output))
    assert again.exit_code == 0, again.output
    assert "0 new notices; 0 emailed, 1 to print." in again.output and "held back" not in again.output
    printed = pdf_text(output.read_bytes())
    assert "Mrs Smith" in printed and "4 Elm Road" in printed
    with in_app(app) as session:
        sent = session.get(Notice, held.id)
        assert sent.status == "sent" and sent.error == ""
    assert len(smtp_server.messages) == 2


def test_admin_change_a_stage_and_remove_one_only_while_no_letter_names_it(app, client, factory, overdue, tmp_path):
    login(client, factory.user("admin"))
    with in_app(app) as session:
        by_name = {s.name: s.id for s in notices.stages(session)}
    reminder, final = by_name["Reminder"], by_name["Final notice"]
    form = client.get(f"/notices/stages/{reminder}/edit").get_data(as_text=True)
    assert 'value="Reminder"' in form and "Remove the stage" in form and "data-confirm" in form
    changed = client.post(f"/notices/stages/{reminder}/edit", data={
        "name": "Gentle reminder", "days_overdue": "10", "letter": "reminder"})
    assert changed.status_code == 303
    assert "Gentle reminder" in client.get("/notices/stages").get_data(as_text=True)
    clash = client.post(f"/notices/stages/{reminder}/edit", data={
        "name": "Gentle reminder", "days_overdue": "21", "letter": "reminder"})
    assert clash.status_code == 422 and "Another stage is already at 21 days." in clash.get_data(as_text=True)

    assert run(app, "--as-of", AS_OF.isoformat(), "--dry-run").exit_code == 0
    sent = run(app, "--as-of", AS_OF.isoformat(), "-o", str(tmp_path / "letters.pdf"))
    assert sent.exit_code == 0, sent.output  # reminders go out: the stage is used
    refused = client.post(f"/notices/stages/{reminder}/remove", follow_redirects=True)
    assert "letters were sent at the stage Gentle reminder" in refused.get_data(as_text=True)
    removed = client.post(f"/notices/stages/{final}/remove", follow_redirects=True)
    assert "The stage is removed." in removed.get_data(as_text=True)
    with in_app(app) as session:
        assert sorted(s.name for s in notices.stages(session)) == ["Gentle reminder", "Replacement cost"]

    staff = app.test_client()
    login(staff, factory.user("staff"))
    assert staff.post(f"/notices/stages/{final}/remove").status_code == 403


# ---------------------------------------------------------------- stages in order, read before sending


def test_a_loan_first_noticed_92_days_late_gets_the_reminder_and_the_later_stages_follow_at_their_intervals(
        app, client, factory, overdue, smtp_server):
    mail_to(app, smtp_server)
    late = date(2026, 3, 30)
    with in_app(app) as session:
        from loanservice.loans.calendar import days_off

        assert days_of_term(DUE, late, days_off(session)) == 92
        due = notices.due_notices(session, late)
    assert [d.stage.name for d in due] == ["Reminder", "Reminder", "Reminder"]
    login(client, factory.user("staff"))
    shown = submit(client, "/notices", {"as_of": late.isoformat()}, form="choose-day")
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200
    assert "Due as of 30 Mar 2026: 3" in page
    assert "Replacement cost" not in page.split('id="due-h"')[1].split("</section>")[0]
    sent = submit(client, f"/notices?as_of={late.isoformat()}", form="send-notices")
    assert sent.status_code == 303
    send_mail(app)
    assert len(smtp_server.messages) == 2
    # The final notice follows the reminder by 14 days of term (21 - 7), the replacement cost by 21 more.
    with in_app(app) as session:
        assert notices.due_notices(session, date(2026, 4, 12)) == []
        assert [d.stage.name for d in notices.due_notices(session, date(2026, 4, 13))] == ["Final notice"] * 3


def test_staff_read_the_letter_a_run_would_send_before_sending_it(app, client, factory, overdue):
    login(client, factory.user("staff"))
    shown = submit(client, "/notices", {"as_of": AS_OF.isoformat()}, form="choose-day")
    links = re.findall(r'href="(/notices/preview/[^"]+)"', shown.get_data(as_text=True))
    assert len(links) == 3
    letters = [client.get(link.replace("&amp;", "&")) for link in links]
    assert [r.mimetype for r in letters] == ["application/pdf"] * 3
    texts = [pdf_text(r.data) for r in letters]
    assert any("Mrs Smith" in t and "4 Elm Road" in t for t in texts)
    assert any("Reminder: classroom set overdue" in t and "Oak Lane Primary" in t for t in texts)
    assert all("23 days overdue" in t for t in texts)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Notice)) == 0  # reading sends and records nothing
    assert client.get(f"/notices/preview/loan/999999.pdf?as_of={AS_OF.isoformat()}").status_code == 404


def test_a_day_that_is_not_a_date_is_shown_beside_the_field(app, client, factory, overdue):
    login(client, factory.user("staff"))
    response = submit(client, "/notices", {"as_of": "30/02/2026"}, form="choose-day")
    assert response.status_code == 422
    assert "Show the notices due as of: Give a date." in response.get_data(as_text=True)


def test_the_notices_page_shows_no_command_and_its_tables_can_be_reached_by_keyboard(app, client, factory, overdue):
    login(client, factory.user("staff"))
    page = client.get(f"/notices?as_of={AS_OF.isoformat()}").get_data(as_text=True)
    assert "flask notices" not in page
    assert '<div class="table-wrap" tabindex="0" role="region" aria-label="Notices due as of 20 Jan 2026">' in page


def test_the_overdue_email_says_what_is_overdue_and_what_to_do(app, overdue, smtp_server):
    mail_to(app, smtp_server)
    assert run(app, "--as-of", AS_OF.isoformat(), "-o", "/dev/null").exit_code == 0
    message = next(m for m in smtp_server.messages if str(m["To"]) == "jones@example.org")
    body = message.get_body(("plain",)).get_content()
    assert overdue["emailed"].asset_tag in body
    assert "Cello 3/4" in body
    assert "was due back on 12 Dec 2025" in body
    assert "Bring it to the instrument store, or give it to your child's music teacher." in body
    assert "01234 567890 - store@hub.example" in body
    assert "see the attached letter" not in body.lower()


def test_a_set_item_reported_missing_is_chased_from_the_school(app, client, factory, overdue, smtp_server):
    from loanservice.sets.models import SetLoan
    from loanservice.sets.services import check_in_set_item, mark_set_item_missing

    mail_to(app, smtp_server)
    with in_app(app) as session:
        set_loan = session.scalars(select(SetLoan)).one()
        back, lost = session.scalars(select(Loan).where(Loan.set_loan_id == set_loan.id).order_by(Loan.id)).all()
        check_in_set_item(session, None, set_loan, back.instrument.asset_tag, grade=2)
        mark_set_item_missing(session, None, set_loan, lost.instrument.asset_tag, "Not found after the concert")
        session.commit()
        lost_tag, set_loan_id = lost.instrument.asset_tag, set_loan.id
        assert session.get(SetLoan, set_loan_id).closed_on is not None  # all accounted for
    login(client, factory.user("staff"))
    listed = client.get("/loans/overdue").get_data(as_text=True)
    row = next(r for r in listed.split("<tr>") if lost_tag in r)
    assert "Reported missing" in row and "Oak Lane Primary" in row
    with in_app(app) as session:
        due = [d for d in notices.due_notices(session, AS_OF) if d.set_loan is not None]
    assert [(d.stage.name, d.recipient_email) for d in due] == [("Reminder", "music@oaklane.example")]
    assert run(app, "--as-of", AS_OF.isoformat(), "-o", "/dev/null").exit_code == 0
    letter = attachment_text(next(m for m in smtp_server.messages if str(m["To"]) == "music@oaklane.example"))
    assert lost_tag in letter
    assert "1 item was reported missing by the school" in letter
