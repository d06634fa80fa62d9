"""``flask notices ...``: work out the overdue notices due, email them, and print the rest."""
from datetime import date
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from ..errors import LoanServiceError
from ..extensions import db
from ..terminal import CommandError, echo
from ..timeutil import today
from . import notices as notice_service
from .models import NoticeKind
from .services import Hub

notices_cli = AppGroup("notices", help="Overdue notices.")


@notices_cli.command("run")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), help="The date to run as (default today).")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send and record nothing.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Where to write the printable letters for hirers without email (default letters-DATE.pdf).")
def run_command(as_of, dry_run, output):
    """Send the overdue notices due: email with the letter attached, or one printable PDF for the rest."""
    day: date = as_of.date() if as_of else today()
    try:
        hub = Hub.from_config(current_app.config)
        due = notice_service.due_notices(db.session, day)
        unsent = notice_service.unsent_notices(db.session)
        if not notice_service.stages(db.session) and not notice_service.stages(db.session, NoticeKind.INVOICE):
            raise CommandError("No notice stages are set: a hub manager sets them at /notices/stages.")
        if dry_run:
            echo(f"As of {day:%-d %b %Y}: {len(due)} notices due, {len(unsent)} unsent from earlier runs.")
            for d in due:
                echo(f"  {d.stage.name:<18} {d.days_overdue:>4} days  {d.subject_label:<40} "
                           f"{d.recipient_name} <{d.recipient_email or 'post'}>")
            db.session.rollback()
            return
        target = Path(output or notice_service.print_file_name(day))
        with click.progressbar(length=len(due) + len(unsent), label="Sending notices") as bar:
            result = notice_service.send_notices(db.session, None, day, hub, current_app.config,
                                                 progress=bar.update, write_print_file=target.write_bytes)
    except LoanServiceError as error:
        db.session.rollback()
        raise CommandError(error.message) from None
    echo(f"{result.claimed} new notices; {result.emailed} emailed, {result.printed} to print.")
    if result.queued and not current_app.config.get("MAIL_SERVER"):
        echo(f"{result.queued} emails wait in the outbox: no MAIL_SERVER is set (staff read them on the "
             "Mail page).")
    if result.printed:
        echo(f"Printable letters: {target}")
    if result.held_back:
        echo(notice_service.held_back_summary(len(result.held_back)))
        for name in result.held_back:
            echo(f"  held back: {name} (no postal address)")
    if result.uncertain:
        echo(f"{result.uncertain} notices were being sent when an earlier run stopped; "
                   "check the mail log before sending them by hand.")
    if result.failed:
        for failure in result.failed:
            echo(f"  not sent: {failure}", err=True)
        raise CommandError(f"{len(result.failed)} notices could not be sent; run again to retry them.")
