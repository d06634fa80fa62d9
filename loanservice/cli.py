"""Command-line tools: ``flask users ...`` and ``flask demo ...``. Thin: they call services."""
import click
from flask import Flask
from flask.cli import AppGroup

from .accounts.models import Role
from .errors import LoanServiceError
from .extensions import db
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
    from sqlalchemy import or_, select

    from .accounts.services import create_user
    from .schools.models import School

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
    from .demo.seed import DEMO_LOGINS, database_is_empty, seed

    if if_empty and not database_is_empty(db.session):
        echo("The database already has data; demo seed skipped.")
    else:
        with click.progressbar(length=instruments, label="Adding instruments") as bar:
            seed(db.session, instruments=instruments, progress=bar.update)
        db.session.commit()
        echo(f"Demo hub ready with {instruments} instruments.")
    echo("\nDemo sign-ins (password for each):")
    for email, password, role in DEMO_LOGINS:
        echo(f"  {role:<18} {email:<28} {password}")


def register_cli(app: Flask) -> None:
    from .documents.cli import notices_cli
    from .labels.cli import labels_cli
    from .reservations.cli import reservations_cli

    app.cli.add_command(users_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(labels_cli)
    app.cli.add_command(notices_cli)
    app.cli.add_command(reservations_cli)
