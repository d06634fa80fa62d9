"""``flask reservations expire`` and ``flask reservations offer``: safe to run from cron at any frequency."""

import click
from flask import current_app
from flask.cli import AppGroup

from ..extensions import db
from ..terminal import echo
from . import services

reservations_cli = AppGroup("reservations", help="Reservations and waiting lists.")


@reservations_cli.command("expire")
@click.option("--on", "on", type=click.DateTime(formats=["%Y-%m-%d"]), help="Treat this date as today.")
def expire_command(on):
    """Lapse reservations not collected by their deadline, and offer the instruments to the next child."""
    count = services.expire_reservations(db.session, None, current_app.config, on.date() if on else None)
    db.session.commit()
    echo(f"{count} reservation{'s' if count != 1 else ''} lapsed.")


@reservations_cli.command("offer")
def offer_command():
    """Hold every free instrument for the children waiting for its type and size."""
    count = services.offer_all(db.session, None, current_app.config)
    db.session.commit()
    echo(f"{count} instrument{'s' if count != 1 else ''} held for children on waiting lists.")


