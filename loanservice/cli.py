"""Command-line tools: ``flask users ...``, ``flask demo ...`` and ``flask worker``. Thin: they call services."""
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from redis import Redis
from rq import Queue, Worker
from sqlalchemy import or_, select

from .accounts.models import Role
from .accounts.services import create_user
from .bookings.cli import bookings_cli
from .demo.money import bank_statement
from .demo.seed import DEMO_LOGINS, database_is_empty, seed
from .documents.cli import notices_cli
from .errors import LoanServiceError
from .extensions import db
from .labels.cli import labels_cli
from .mail.cli import mail_cli
from .money.cli import invoices_cli
from .privacy.cli import privacy_cli
from .reports.cli import reports_cli
from .reservations.cli import reservations_cli
from .schools.models import School
from .terminal import CommandError, echo

users_cli = AppGroup("users", help="Manage user accounts.")
demo_cli = AppGroup("demo", help="Demo data.")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--school", "school_name", help="The school's name or URN (school users).")
@click.option("--name", default="")
@click.password_option(help="Prompted for when not given.")
def create_user_command(email, role, school_name, name, password):
    """Create a user account."""
    school_id = None
    if school_name:
        school = db.session.scalar(select(School).where(or_(School.name == school_name, School.urn == school_name)))
        if school is None:
            raise CommandError(f"No school called {school_name!r}.")
        school_id = school.id
    try:
        user = create_user(db.session, None, email=email, name=name, role=role, password=password,
                           school_id=school_id)
    except LoanServiceError as error:
        db.session.rollback()
        raise CommandError(error.message) from None
    db.session.commit()
    echo(f"Created {user.role} {user.email}.")


@demo_cli.command("seed")
@click.option("--instruments", default=400, show_default=True, help="How many instruments.")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has users.")
def seed_command(instruments, if_empty):
    """Fill the database with a realistic demo hub."""
    if if_empty and not database_is_empty(db.session):
        echo("The database already has data; demo seed skipped.")
    else:
        with click.progressbar(length=instruments, label="Adding instruments") as bar:
            seed(db.session, instruments=instruments, progress=bar.update)
        db.session.commit()
        echo(f"Demo hub ready with {instruments} instruments.")
        statement = Path(current_app.instance_path) / "demo-bank-statement.csv"
        statement.parent.mkdir(parents=True, exist_ok=True)
        statement.write_text(bank_statement(db.session))
        echo(f"A bank statement to import (Money > Import a bank statement): {statement}")
    echo("\nDemo sign-ins (password for each):")
    for email, password, role in DEMO_LOGINS:
        echo(f"  {role:<18} {email:<28} {password}")


@click.command("worker")
@click.option("--burst", is_flag=True, help="Work off the queued jobs, then stop.")
@click.argument("queues", nargs=-1)
def worker_command(burst, queues):
    """Run background jobs (RQ) with this app: notice runs started from the web, and the mail sender.

    The jobs run inside this app's context, so a job reads the same settings as the web process
    (DATABASE_URL, MAIL_*, HUB_*) and never builds an app of its own.
    """
    url = current_app.config.get("REDIS_URL")
    if not url:
        raise click.ClickException("REDIS_URL is not set: there is no queue to work from.")
    connection = Redis.from_url(url)
    names = queues or (current_app.config["NOTICES_QUEUE"],)
    db.engine.dispose()  # each job's work horse is a fork: let it open its own connections
    worker = Worker([Queue(name, connection=connection) for name in names], connection=connection)
    worker.work(burst=burst, with_scheduler=False)


def register_cli(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(reports_cli)
    app.cli.add_command(labels_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(notices_cli)
    app.cli.add_command(invoices_cli)
    app.cli.add_command(reservations_cli)
    app.cli.add_command(bookings_cli)
    app.cli.add_command(privacy_cli)
    app.cli.add_command(worker_command)
