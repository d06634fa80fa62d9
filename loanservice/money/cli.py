"""``flask invoices run``: the termly invoice run, safe to rerun (it invoices only what is new)."""
import sys

import click
from flask import current_app
from flask.cli import AppGroup

from ..errors import LoanServiceError
from ..extensions import db
from . import services

invoices_cli = AppGroup("invoices", help="Invoices, payments and debt.")


@invoices_cli.command("run")
@click.option("--term", "term_name", required=True,
              help='The term to invoice, as named on the calendar ("Spring 2027").')
@click.option("--on", "on", type=click.DateTime(formats=["%Y-%m-%d"]), help="The invoices' date (default today).")
@click.option("--dry-run", is_flag=True, help="Say what would be invoiced, and write nothing.")
def run_command(term_name, on, dry_run):
    """Invoice every account for what its loans owe for a term: one invoice per account."""
    bars = []

    def start(count: int) -> None:
        bars.append(click.progressbar(length=count, label="Invoicing", file=sys.stderr))
        bars[0].__enter__()

    try:
        term = services.term_by_name(db.session, term_name)
        run = services.run_invoices(db.session, None, term, current_app.config, on=on.date() if on else None,
                                    total=start, progress=lambda n: bars[0].update(n))
    except LoanServiceError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    finally:
        for bar in bars:
            bar.__exit__(None, None, None)
    for problem in run.no_payer:
        click.echo(f"Not invoiced: {problem}", err=True)
    if not run.numbers:
        db.session.rollback()
        click.echo(f"Nothing new to invoice for {term.name}.")
        return
    numbers = f"{run.numbers[0]} to {run.numbers[-1]}"
    summary = (f"{run.count} invoice{'s' if run.count != 1 else ''} ({numbers}), £{run.total:,.2f} in all; "
               f"remission given £{run.remission:,.2f}.")
    if dry_run:
        db.session.rollback()
        click.echo(f"Dry run, nothing written: would issue {summary}")
        return
    db.session.commit()
    click.echo(f"Issued {summary}")
