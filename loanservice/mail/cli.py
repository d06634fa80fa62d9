"""``flask mail send``: deliver the outbox, once (cron) or in a loop beside the server."""
import logging
import time

import click
from flask import current_app
from flask.cli import AppGroup

from ..extensions import db
from .sender import send_queued

mail_cli = AppGroup("mail", help="Outgoing mail.")
log = logging.getLogger(__name__)


@mail_cli.command("send")
@click.option("--loop", is_flag=True, help="Keep running, looking for mail every --every seconds.")
@click.option("--every", default=5.0, show_default=True, help="Seconds between looks, with --loop.")
def send_command(loop, every):
    """Send the queued mail that is due; safe to run from cron and in several processes at once."""
    config = current_app.config
    if not config.get("MAIL_SERVER"):
        click.echo("MAIL_SERVER is not set: mail stays queued; staff read it on the Mail page.", err=True)
    while True:
        try:
            result = send_queued(db.session, config)
        except Exception:  # noqa: BLE001  (the loop outlives a database restart; one-shot reports it)
            db.session.rollback()
            if not loop:
                raise
            log.exception("Sending mail failed; trying again in %s seconds", every)
        else:
            if result.sent or result.retrying or result.failed or not loop:
                click.echo(f"{result.sent} sent, {result.retrying} to retry, {len(result.failed)} failed.")
            for failure in result.failed:
                click.echo(f"  failed: {failure}", err=True)
        finally:
            db.session.remove()
        if not loop:
            return
        time.sleep(every)
