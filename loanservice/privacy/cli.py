"""``flask privacy review`` and ``flask privacy anonymise``: safe to run from cron (a second run changes nothing)."""
import click
from flask.cli import AppGroup

from ..errors import LoanServiceError
from ..extensions import db
from ..terminal import CommandError, echo
from . import services

privacy_cli = AppGroup("privacy", help="Children's data: retention and anonymisation.")

_DATE = click.DateTime(formats=["%Y-%m-%d"])


def _as_of(value):
    try:
        return services.check_as_of(value.date() if value else None)
    except LoanServiceError as error:
        raise CommandError(error.message) from None


@privacy_cli.command("review")
@click.option("--as-of", "as_of", type=_DATE, help="Review as of this date (YYYY-MM-DD, not in the future).")
def review_command(as_of):
    """List the families due for anonymisation, why, and what stops any of them."""
    on = _as_of(as_of)
    policy = services.retention_policy(db.session)
    count = 0
    for due in services.due_families(db.session, on, policy):
        count += 1
        state = "will be anonymised" if due.will_go else f"kept: {'; '.join(due.blockers)}"
        echo(f"Family #{due.family_id} {due.name}: due {due.due_on:%Y-%m-%d} ({due.reason}); {state}")
    mail = services.old_mail_count(db.session, policy, on)
    echo(f"{count} famil{'ies' if count != 1 else 'y'} due as of {on:%Y-%m-%d}; "
         f"{mail} email{'s' if mail != 1 else ''} older than {policy.outbox_days} days to purge.")


def _verb(count: int, dry_run: bool) -> str:
    return "would be" if dry_run else ("was" if count == 1 else "were")


@privacy_cli.command("anonymise")
@click.option("--as-of", "as_of", type=_DATE, help="Anonymise as of this date (YYYY-MM-DD, not in the future).")
@click.option("--dry-run", is_flag=True, help="Say what would be done, change nothing.")
def anonymise_command(as_of, dry_run):
    """Anonymise every family due (one transaction each) and purge old emails."""
    on = _as_of(as_of)
    result = services.run_anonymisation(db.session, None, on, dry_run=dry_run)
    for due in result.skipped:
        echo(f"Kept family #{due.family_id}: {'; '.join(due.blockers)}")
    families, bodies = len(result.anonymised), result.mail_purged
    echo(f"{families} famil{'y' if families == 1 else 'ies'} {_verb(families, dry_run)} anonymised; "
         f"{len(result.skipped)} kept; {bodies} old email{'' if bodies == 1 else 's'} "
         f"{_verb(bodies, dry_run)} purged.")
    if result.failed:
        family_id, message = result.failed
        raise CommandError(f"Stopped at family #{family_id}, left as it was: {message}. Run again to finish.")
