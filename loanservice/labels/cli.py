"""``flask labels ...``: label sheets from the command line. Thin: it calls the same services."""
import click
from flask import current_app
from flask.cli import AppGroup

from ..errors import LoanServiceError
from ..extensions import db
from ..terminal import CommandError, echo
from . import services
from .stocks import get_stock, load_stocks

labels_cli = AppGroup("labels", help="Print QR labels and list label stocks.")


@labels_cli.command("pdf")
@click.option("--stock", "stock_name", default="L7160", show_default=True,
              help="Label stock (see `flask labels stocks`).")
@click.option("--start", default=1, show_default=True, type=int, help="Position of the first free label on the sheet.")
@click.option("--tag", "tags", multiple=True, help="An asset tag; repeat for more.")
@click.option("--all", "scope", flag_value=services.Scope.ALL,
              help="Every instrument in the store (not out on loan, at a repairer, missing or written off).")
@click.option("--unlabelled", "scope", flag_value=services.Scope.UNLABELLED,
              help="Every instrument in the store not yet labelled.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True, allow_dash=False),
              help="The PDF file to write.")
def pdf_command(stock_name, start, tags, scope, output):
    """Write the labels for some instruments to a PDF and record them as labelled."""
    if tags and scope:
        raise click.UsageError("Give --tag, or --all, or --unlabelled, not a mix.")
    if not tags and not scope:
        raise click.UsageError("Say which instruments: --tag T (repeatable), --all or --unlabelled.")
    try:
        stock = get_stock(stock_name)
        stock.check_start(start)
        instruments = services.select_for_labels(db.session, tags=tags, scope=scope or "")
        with click.progressbar(length=len(instruments),
                               label=f"Drawing {len(instruments)} labels on {stock.name}") as bar:
            pdf = services.print_labels(
                db.session, None, instruments, stock, start=start,
                base_url=current_app.config["PUBLIC_BASE_URL"], hub_name=current_app.config["HUB_NAME"],
                progress=bar.update,
            )
        with open(output, "wb") as handle:
            handle.write(pdf)
    except LoanServiceError as error:
        db.session.rollback()
        raise CommandError(error.message) from None
    db.session.commit()
    sheets = (start - 1 + len(instruments) + stock.per_page - 1) // stock.per_page
    echo(f"Wrote {len(instruments)} labels on {sheets} {stock.name} page{'s' if sheets != 1 else ''} "
               f"to {output}.")


@labels_cli.command("stocks")
def stocks_command():
    """List the label stocks in labels/."""
    try:
        stocks = load_stocks()
    except LoanServiceError as error:
        raise CommandError(error.message) from None
    for stock in stocks.values():
        echo(f"{stock.name:<8} {stock.per_page:>3} a page  {stock.title}")
