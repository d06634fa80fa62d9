"""``flask bookings remind``: safe to run from cron at any frequency (each collection is reminded once)."""
import click
from flask import current_app
from flask.cli import AppGroup

from ..extensions import db
from ..terminal import echo
from . import services

bookings_cli = AppGroup("bookings", help="Bookings of classroom sets.")


@bookings_cli.command("remind")
@click.option("--on", "on", type=click.DateTime(formats=["%Y-%m-%d"]), help="Treat this date as today.")
def remind_command(on):
    """Email each school a week before its set is collected (once per collection)."""
    count = services.remind_collections(db.session, current_app.config, on.date() if on else None)
    db.session.commit()
    echo(f"{count} collection reminder{'s' if count != 1 else ''} queued.")
